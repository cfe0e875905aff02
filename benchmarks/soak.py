"""Soak: a long speech file streamed through the full core (file source -> ring -> planner ->
worker -> store -> decoder) as fast as it goes. Checks that every frame is emitted exactly once
and prints throughput and RSS growth.

    python benchmarks/soak.py [--minutes 30] [--model M] [--threads 1]
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from asrlive.audio.ring import AudioRing
from asrlive.audio.sources import FileSource
from asrlive.worker import StreamWorker
from benchmarks.common import model_with_default_plan, rss_mib, run_arguments, speech_file


def main() -> None:
    args = run_arguments(default_minutes=30.0)
    model, plan = model_with_default_plan(args)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "soak.wav"
        speech_file(path, args.minutes * 60)
        model.log_probs(np.zeros(16000 * 3, np.float32))  # warm-up before measuring
        ring = AudioRing(16000 * 60, 16000)
        worker = StreamWorker(model, ring, plan)
        source = FileSource(path, ring, realtime=False, block_seconds=0.5)
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample_rss() -> None:
            while not done.wait(5.0):
                samples.append((time.monotonic(), rss_mib()))

        rss_start = rss_mib()
        threading.Thread(target=sample_rss, daemon=True).start()
        t0 = time.monotonic()
        source.start()
        worker.run()
        wall = time.monotonic() - t0
        done.set()
        rss_end = rss_mib()
    g = model.geometry
    frames = worker.store.all_frames()
    committed = [f for t in worker.store.timings for f in range(t.commit_from, t.commit_to)]
    once = committed == list(range(g.frames(ring.written)))
    audio_s = ring.written / g.sample_rate
    peak = max([rss_start, rss_end] + [r for _, r in samples])
    # RSS growth over the run's second half: steady state, after buffers and caches filled.
    half = [r for t, r in samples if t - t0 > wall / 2] or [rss_end]
    print(f"model: {model.name}  plan: {plan.describe()}")
    print(f"audio: {audio_s / 60:.1f} min, {g.frames(ring.written)} frames; wall {wall:.1f} s "
          f"-> {audio_s / wall:.1f}x real time")
    print(f"every frame emitted exactly once: {once}; NaN frames: {int(np.isnan(frames).any(axis=1).sum())}; "
          f"skipped samples: {worker.skipped_samples}")
    print(f"RSS: start {rss_start:.0f} MiB, end {rss_end:.0f} MiB, peak {peak:.0f} MiB, growth {rss_end - rss_start:.1f} MiB "
          f"(second half: {max(half) - min(half):.1f} MiB); emission store holds {frames.nbytes / 2**20:.1f} MiB")
    print(f"error: {worker.error}")


if __name__ == "__main__":
    main()
