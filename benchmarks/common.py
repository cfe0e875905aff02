"""Helpers shared by the benchmarks: arguments and model set-up, test speech, RSS readings,
per-window timings, percentiles."""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asrlive.bench import Utterance, load_utterances, read_manifest, synthetic_utterances
from asrlive.model import CTCModel, configure_torch_threads, load_model
from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.synth import random_voice, synthesize
from asrlive.textcorpus import load_sentences


def speech_file(path: Path, seconds: float, seed: int = 0, pause_s: float = 0.4,
                sample_rate: int = 16000) -> list[float]:
    """Held-out sentences by held-out voices, each followed by ``pause_s`` of silence, written
    incrementally to ``path`` and cut at ``seconds``. Returns the end time (s) of every utterance
    that fits whole."""
    rng = random.Random(seed)
    sentences = load_sentences("heldout")
    total = int(seconds * sample_rate)
    ends, written = [], 0
    with sf.SoundFile(path, "w", sample_rate, 1, subtype="PCM_16") as f:
        while written < total:
            speech = synthesize(rng.choice(sentences), random_voice(rng, "heldout"), sample_rate) * 0.7
            piece = np.concatenate([speech, np.zeros(int(pause_s * sample_rate), np.float32)])[: total - written]
            f.write(piece)
            if len(piece) >= len(speech):
                ends.append((written + len(speech)) / sample_rate)
            written += len(piece)
    return ends


def run_arguments(default_minutes: float) -> argparse.Namespace:
    """--minutes of audio, --model and --threads: what the streaming benchmarks take."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=default_minutes)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    return ap.parse_args()


def add_speech_and_plan_args(ap: argparse.ArgumentParser) -> None:
    """--data MANIFEST or --synth N (the speech) and --plan HOP/LEFT/RIGHT: what the accuracy
    benchmarks take; ``speech`` and ``plan_settings`` read them."""
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="manifest TSV (id, path, transcript)")
    src.add_argument("--synth", type=int, help="this many held-out synthetic utterances")
    ap.add_argument("--plan", default="320/1000/320", help="hop/left/right in ms")


def speech(args: argparse.Namespace, sample_rate: int) -> list[Utterance]:
    return (synthetic_utterances(args.synth, sample_rate) if args.synth
            else load_utterances(read_manifest(args.data), sample_rate))


def plan_settings(args: argparse.Namespace) -> ChunkSettings:
    return ChunkSettings(*(float(v) for v in args.plan.split("/")))


def model_with_default_plan(args: argparse.Namespace) -> tuple[CTCModel, ChunkPlan]:
    """The model on CPU with ``args.threads`` torch threads, and the plan a user gets without
    chunk options."""
    configure_torch_threads(args.threads)
    model = load_model(args.model, device="cpu")
    return model, ChunkPlan.from_settings(model.geometry, ChunkSettings())


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def pct(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def window_ms_in_turns(models: dict[str, CTCModel], samples: np.ndarray, repeats: int) -> dict[str, list[float]]:
    """Milliseconds of each model's ``log_probs(samples)``, ``repeats`` times, the models taking
    turns so that whatever else the machine does weighs on each alike; one warm-up call each first."""
    for model in models.values():
        model.log_probs(samples)
    spent: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.log_probs(samples)
            spent[name].append((time.perf_counter() - start) * 1000)
    return spent
