"""What warming up buys a stream's first windows: the app's default model and precision, each
way in fresh processes (one-off costs are per process), cold against warmed up
(``asrlive.window_reuse.warm_up``) before the same stream, the two taking turns.

    python -m benchmarks.warm_up [--plan 320/1000/320] [--threads 2] [--rounds 5] [--windows 6]

Prints the per-window compute of the first windows, median over rounds, and the warm-up's own
time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np


def child(plan_text: str, threads: int, warm: bool, windows: int) -> dict:
    """One fresh process's run: load, warm up or not, stream one utterance."""
    from asrlive.bench import synthetic_utterances
    from asrlive.model import DEFAULT_BACKEND, DEFAULT_PRECISION, PRECISIONS, configure_torch_threads, load_model
    from asrlive.planner import ChunkPlan, ChunkSettings
    from asrlive.transcribe import stream_samples
    from asrlive.window_reuse import warm_up

    configure_torch_threads(threads)
    model = load_model(None, device="cpu", backend=DEFAULT_BACKEND, int8=PRECISIONS[DEFAULT_PRECISION], threads=threads)
    plan = ChunkPlan.from_settings(model.geometry, ChunkSettings(*(float(v) for v in plan_text.split("/"))))
    audio = synthetic_utterances(1, model.sample_rate)[0].audio
    t0 = time.perf_counter()
    if warm:
        warm_up(model, plan)
    spent = time.perf_counter() - t0
    timings = stream_samples(model, audio, plan).timings[:windows]
    return {"warm_up_ms": spent * 1000, "windows_ms": [w.compute * 1000 for w in timings],
            "backend": model.backend, "precision": model.precision}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plan", default="320/1000/320")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--child", choices=["cold", "warm"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.plan, args.threads, args.child == "warm", args.windows)))
        return
    runs = {"cold": [], "warm": []}
    for _ in range(args.rounds):
        for kind in runs:
            out = subprocess.run([sys.executable, "-m", "benchmarks.warm_up", "--child", kind, "--plan", args.plan,
                                  "--threads", str(args.threads), "--windows", str(args.windows)],
                                 capture_output=True, text=True, check=True, timeout=600)
            runs[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    first = runs["cold"][0]
    print(f"plan {args.plan}, {args.threads} threads, {first['backend']} {first['precision']}, "
          f"median of {args.rounds} fresh processes each")
    print("| stream | warm-up ms | " + " | ".join(f"window {i + 1} ms" for i in range(args.windows)) + " |")
    print("|---|---|" + "---|" * args.windows)
    for kind, results in runs.items():
        per_window = np.median([r["windows_ms"] for r in results], axis=0)
        warm_ms = np.median([r["warm_up_ms"] for r in results])
        print(f"| {kind} | {warm_ms:.0f} | " + " | ".join(f"{v:.1f}" for v in per_window) + " |")


if __name__ == "__main__":
    main()
