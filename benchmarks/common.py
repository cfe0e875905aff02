"""Helpers shared by the benchmarks: test speech, RSS readings, percentiles."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf

from asrlive.synth import random_voice, synthesize
from asrlive.textcorpus import load_sentences


def speech_file(path: Path, seconds: float, seed: int = 0, sample_rate: int = 16000) -> Path:
    """Held-out sentences by held-out voices with short pauses, written incrementally to ``path``."""
    rng = random.Random(seed)
    sentences = load_sentences("heldout")
    written = 0
    with sf.SoundFile(path, "w", sample_rate, 1, subtype="PCM_16") as f:
        while written < seconds * sample_rate:
            audio = synthesize(rng.choice(sentences), random_voice(rng, "heldout"), sample_rate)
            audio = np.concatenate([audio * 0.7, np.zeros(int(0.4 * sample_rate), np.float32)])
            audio = audio[: int(seconds * sample_rate) - written]
            f.write(audio)
            written += len(audio)
    return path


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))
