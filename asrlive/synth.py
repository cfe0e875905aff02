"""Synthetic English speech from espeak-ng, at the model rate, with optional augmentation.

Training, tests and benchmarks all draw audio from here. Voice variants are split into a
training set and a held-out set by a hash of their name, so held-out evaluation uses voices the
model never heard.
"""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)
# Variants that whisper, croak or imitate robots are far from any microphone a user has.
_UNNATURAL_VARIANTS = {
    "Demonic", "announcer", "UniRobot", "anikaRobot", "whisper", "whisperf", "croak",
    "robosoft", "robosoft2", "robosoft3", "robosoft4", "robosoft5", "robosoft6", "robosoft7",
    "robosoft8", "kaukovalta", "Tweaky", "fast",
}
HELD_OUT_VARIANT_PER_MILLE = 200
BAND_LIMIT_PROBABILITY = 0.2
# Noise as a desk or headset microphone in a room adds it. White noise at the 8 dB SNR of the
# first recipe buried the fricatives that tell one spelling from another, in a model that still
# underfits clean speech (see models/README.md).
NOISE_PROBABILITY = 0.4
NOISE_SNR_DB = (15.0, 45.0)


class SynthError(RuntimeError):
    """espeak-ng is missing or failed."""


def espeak_binary() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise SynthError("espeak-ng not found: install Debian's 'espeak-ng' package")
    return path


def _variant_held_out(name: str) -> bool:
    digest = hashlib.sha1(name.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < HELD_OUT_VARIANT_PER_MILLE


def list_variants(split: str) -> list[str]:
    """Voice-variant file names of one split ('train' or 'heldout'), from the installed espeak-ng."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}")
    out = subprocess.run(
        [espeak_binary(), "--voices=variant"], capture_output=True, text=True, check=True
    ).stdout
    names = sorted(
        line.split()[4].removeprefix("!v/")
        for line in out.splitlines()[1:]
        if len(line.split()) >= 5
    )
    names = [n for n in names if n not in _UNNATURAL_VARIANTS]
    return [n for n in names if _variant_held_out(n) == (split == "heldout")]


@dataclass(frozen=True)
class Voice:
    accent: str = "en-us"
    variant: str | None = None
    words_per_minute: int = 160
    pitch: int = 50
    word_gap_10ms: int = 0

    def espeak_args(self) -> list[str]:
        name = self.accent if self.variant is None else f"{self.accent}+{self.variant}"
        return ["-v", name, "-s", str(self.words_per_minute), "-p", str(self.pitch),
                "-g", str(self.word_gap_10ms)]


def synthesize(text: str, voice: Voice = Voice(), sample_rate: int = 16000) -> np.ndarray:
    """Speak ``text`` with espeak-ng and return mono float32 samples at ``sample_rate``."""
    proc = subprocess.run(
        [espeak_binary(), *voice.espeak_args(), "--stdout", "--", text],
        capture_output=True, check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        raise SynthError(f"espeak-ng failed for {voice}: {proc.stderr.decode(errors='replace').strip()}")
    audio, native_rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if native_rate != sample_rate:
        audio = soxr.resample(audio, native_rate, sample_rate, quality="HQ").astype(np.float32)
    return audio


def random_voice(rng: random.Random, split: str = "train") -> Voice:
    variants = list_variants_cached(split)
    return Voice(
        accent=rng.choice(ACCENTS),
        variant=rng.choice(variants + [None]) if split == "train" else rng.choice(variants),
        words_per_minute=rng.randint(125, 215),
        pitch=rng.randint(25, 75),
        word_gap_10ms=rng.choice([0, 0, 0, 1, 2, 4, 8]),
    )


_variant_cache: dict[str, list[str]] = {}


def list_variants_cached(split: str) -> list[str]:
    if split not in _variant_cache:
        _variant_cache[split] = list_variants(split)
    return _variant_cache[split]


def band_limit(audio: np.ndarray, sample_rate: int = 16000, narrow_rate: int = 8000) -> np.ndarray:
    """What a ``narrow_rate`` recording of this audio holds, back at ``sample_rate``: a round trip
    through the narrow rate removes everything above its Nyquist frequency, as an 8 kHz file or a
    telephone-band microphone does."""
    narrow = soxr.resample(audio, sample_rate, narrow_rate, quality="HQ")
    return soxr.resample(narrow, narrow_rate, sample_rate, quality="HQ")[: audio.size].astype(np.float32)


def augment(audio: np.ndarray, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Random band-limiting, gain, padding silence and additive (white or brown-ish) noise: robustness
    to 8 kHz sources, level and noise for a model that does not normalise its input per utterance."""
    if rng.random() < BAND_LIMIT_PROBABILITY:
        audio = band_limit(audio, sample_rate)
    lead = np.zeros(int(rng.uniform(0.0, 0.4) * sample_rate), np.float32)
    tail = np.zeros(int(rng.uniform(0.0, 0.4) * sample_rate), np.float32)
    out = np.concatenate([lead, audio, tail])
    out *= np.float32(10 ** (rng.uniform(-28.0, 2.0) / 20))
    if rng.random() < NOISE_PROBABILITY:
        noise = rng.standard_normal(out.size).astype(np.float32)
        if rng.random() < 0.5:
            noise = np.cumsum(noise).astype(np.float32)
            noise -= np.convolve(noise, np.ones(400, np.float32) / 400, mode="same")
        speech_rms = float(np.sqrt(np.mean(out[lead.size: lead.size + audio.size] ** 2)) + 1e-9)
        noise_rms = float(np.sqrt(np.mean(noise**2)) + 1e-9)
        snr_db = rng.uniform(*NOISE_SNR_DB)
        out += noise * np.float32(speech_rms / noise_rms / 10 ** (snr_db / 20))
    return np.clip(out, -1.0, 1.0)
