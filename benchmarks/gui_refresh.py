"""GUI refresh cost with 60 s of heatmap history on screen, at the app's 30 Hz timer.

    xvfb-run -a -s "-screen 0 1600x1000x24" python -m benchmarks.gui_refresh [--model M] [--history 60]

Streams a speech file in real time (as a microphone would deliver it) until 60 s are in the
views, then measures, while streaming goes on, the GUI thread's CPU time per frame (tick to tick:
pulling from the core, redrawing, and the paints the event loop runs for it) and overall.
Takes about 75 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from asrlive.gui.main_window import FRAME_INTERVAL_MS
from asrlive.model import configure_torch_threads
from benchmarks.common import pct, speech_file
from benchmarks.window_driver import drive_ticks, ready_window


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--ticks", type=int, default=300)
    ap.add_argument("--history", type=float, default=60.0)
    args = ap.parse_args()
    configure_torch_threads(1)
    app = QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        wav = tmp / "speech.wav"
        speech_file(wav, args.history + 30)
        w = ready_window(app, tmp, args.model, wav, speed_index=0, journaling=False)  # real time
        w.view.visible_seconds = args.history
        w.start_streaming()
        drive_ticks(app, lambda: w.on_tick() if w.session.audio_extent()[1] < args.history * 16000 else app.quit())
        frame_ms: list[float] = []
        started: list[float] = []  # GUI-thread CPU and wall clock at the first measured tick
        last_cpu = [0.0]

        def tick() -> None:
            # A frame's cost is the GUI thread's CPU time from one tick to the next: the pull and
            # redraw here plus the paints the event loop runs for them afterwards. The first tick
            # only starts the clock: the interval before it also holds the paints left over from
            # the fill phase, which would count two frames as one.
            w.on_tick()
            now = time.thread_time()
            if not started:
                started.extend((now, time.monotonic()))
            else:
                frame_ms.append((now - last_cpu[0]) * 1000)
            last_cpu[0] = now
            if len(frame_ms) >= args.ticks:
                app.quit()

        drive_ticks(app, tick)
        cpu, wall = time.thread_time() - started[0], time.monotonic() - started[1]
        frames_shown = w.view.heat_image.image.shape[1]
        print(f"platform: {app.platformName()}  history on screen: {frames_shown} frames "
              f"({frames_shown * w.model.geometry.frame_ms / 1000:.0f} s) x {len(w.model.vocab)} symbols")
        print(f"ticks: {len(frame_ms)} at {1000 / FRAME_INTERVAL_MS:.0f} Hz over {wall:.1f} s")
        print(f"GUI-thread time per frame: p50 {pct(frame_ms, 50):.2f} ms, p95 {pct(frame_ms, 95):.2f} ms, "
              f"max {max(frame_ms):.2f} ms")
        print(f"GUI thread CPU: {100 * cpu / wall:.1f} % of one core")
        w.close()


if __name__ == "__main__":
    main()
