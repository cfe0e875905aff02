"""A two-hour session through the whole app: per-window cost outside the model, GUI refresh cost
and memory, first ten minutes against last ten.

    xvfb-run -a -s "-screen 0 1600x1000x24" python -m benchmarks.long_session [--minutes 120] \
        [--model M] [--threads 1]

Writes a speech file of ``--minutes`` (two minutes of held-out synthetic sentences, repeated)
and plays it through the main window as fast as the worker goes, the default chunk plan,
journaling and confidence colours on, the GUI timer's 30 Hz ticks driven here. Records, by
position in the audio: each window's time outside the model (reading the ring, decoding,
storing: ``WindowTiming.outside_model``) and the journal and snapshot listeners' time after it,
each GUI tick's thread CPU time (pull, redraw and the paints that follow, tick to tick, as
``benchmarks.gui_refresh``), and the process RSS every half minute of audio. Two hours take
about 15 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PySide6.QtWidgets import QApplication

from asrlive.model import configure_torch_threads
from benchmarks.common import pct, rss_mib, speech_file
from benchmarks.window_driver import drive_ticks, ready_window

LOOP_S = 120.0
EDGE_S = 600.0  # the first and last ten minutes


def long_speech_file(path: Path, seconds: float) -> None:
    loop_path = path.with_suffix(".loop.wav")
    speech_file(loop_path, LOOP_S)
    loop, rate = sf.read(loop_path, dtype="int16")
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as f:
        left = int(seconds * rate)
        while left > 0:
            f.write(loop[:left])
            left -= len(loop)


def summary(label: str, unit: str, pos_s: np.ndarray, values: np.ndarray, total_s: float) -> str:
    first, last = values[pos_s < EDGE_S], values[pos_s >= total_s - EDGE_S]
    p50 = (pct(first, 50), pct(last, 50))
    p95 = (pct(first, 95), pct(last, 95))
    return (f"| {label} | {len(first)} / {len(last)} | {p50[0]:.3f} / {p50[1]:.3f} {unit} | {p50[1] / p50[0]:.2f} "
            f"| {p95[0]:.3f} / {p95[1]:.3f} {unit} | {p95[1] / p95[0]:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    configure_torch_threads(args.threads)
    total_s = args.minutes * 60
    app = QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["ASRLIVE_STATE_DIR"] = str(tmp / "state")
        wav = tmp / "long.wav"
        long_speech_file(wav, total_s)
        w = ready_window(app, tmp, args.model, wav, speed_index=3, journaling=True)  # as fast as possible
        windows: list[tuple[float, float, float, float]] = []  # (audio s, outside model, model, publish) in ms
        frame_s = w.model.geometry.frame_ms / 1000
        t_start = time.monotonic()
        w.start_streaming()

        def on_window(status) -> None:
            t = status.window
            if t is not None and not status.finished:
                windows.append((t.commit_to * frame_s, t.outside_model * 1000, t.compute * 1000,
                                (time.monotonic() - t.decoded) * 1000))

        w.session.worker.add_listener(on_window)  # last: runs after the journal's listener
        ticks: list[tuple[float, float]] = []  # (audio s, GUI thread CPU ms tick to tick)
        rss: list[tuple[float, float]] = []
        last_cpu = [time.thread_time()]

        def tick() -> None:
            w.on_tick()
            now = time.thread_time()
            pos = w.session.status.committed_frames * frame_s if w.session.status else 0.0
            ticks.append((pos, (now - last_cpu[0]) * 1000))
            last_cpu[0] = now
            if not rss or pos >= rss[-1][0] + 30:
                rss.append((pos, rss_mib()))
            if not w.session.running and w.session.status is not None and w.session.status.finished:
                app.quit()

        drive_ticks(app, tick)
        wall = time.monotonic() - t_start
        words = len(w.current_text()[0].split())
        w.close()
    win = np.array(windows)
    tk = np.array(ticks[1:])  # the first tick's interval holds start-up work
    print(f"{args.minutes:.0f} min of speech through the main window in {wall / 60:.1f} min "
          f"({len(win)} windows, {len(tk)} GUI ticks, {words} words); torch threads {args.threads}")
    print("| per window or tick | count first / last 10 min | p50 first / last | ratio | p95 first / last | ratio |")
    print("|---|---|---|---|---|---|")
    print(summary("worker, outside the model", "ms", win[:, 0], win[:, 1], total_s))
    print(summary("worker, listeners (journal, snapshot reader)", "ms", win[:, 0], win[:, 3], total_s))
    print(summary("model (for scale)", "ms", win[:, 0], win[:, 2], total_s))
    print(summary("GUI refresh (thread CPU, tick to tick)", "ms", tk[:, 0], tk[:, 1], total_s))
    r = np.array(rss)
    at = {m: float(np.interp(m * 60, r[:, 0], r[:, 1])) for m in (10, 30, 60, 90, args.minutes)}
    print("RSS (MiB) by audio position: " + ", ".join(f"{m:.0f} min {v:.0f}" for m, v in at.items()))
    print(f"RSS growth from 10 min to the end: {at[args.minutes] - at[10]:.0f} MiB")


if __name__ == "__main__":
    main()
