"""Compute time of one window of the default chunk plan, for two or more models in the same run,
taking turns so that whatever else the machine does weighs on each alike.

    python -m benchmarks.window_compute --model A --model B [--windows 60] [--threads 1]

Prints p50 / p95 per model and each model's p50 as a ratio to the first one's.
"""

from __future__ import annotations

import argparse

import numpy as np

from asrlive.model import configure_torch_threads, load_model
from asrlive.planner import ChunkPlan, ChunkSettings
from benchmarks.common import pct, window_ms_in_turns


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True, help="a model folder or hub id; give two or more")
    ap.add_argument("--windows", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    configure_torch_threads(args.threads)
    models = [load_model(m, device="cpu") for m in args.model]
    plan = ChunkPlan.from_settings(models[0].geometry, ChunkSettings())
    g = plan.geometry
    steady = plan.window(plan.left_frames)  # a window with its full left context
    n = steady.end_sample - steady.start_sample
    audio = (np.random.default_rng(0).standard_normal(n) * 0.05).astype(np.float32)
    times = list(window_ms_in_turns({str(i): m for i, m in enumerate(models)}, audio, args.windows).values())
    print(f"window of {n} samples ({n / g.sample_rate:.2f} s: the default plan's left + hop + right), "
          f"{args.windows} windows each, {args.threads} thread(s)")
    base = pct(times[0], 50)
    for name, spent in zip(args.model, times):
        print(f"{name}: p50 {pct(spent, 50):.1f} ms, p95 {pct(spent, 95):.1f} ms, ratio {pct(spent, 50) / base:.2f}x")


if __name__ == "__main__":
    main()
