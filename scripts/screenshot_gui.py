"""Screenshots of the app for docs/: run under a real X server (e.g. xvfb-run).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_gui.py docs/screenshot.png [--model M] [--state idle|mid|done]

`idle`: the window once the model has loaded, before any stream. `mid` (the default): a few
sentences spoken by espeak-ng, streamed through file mode in real time, grabbed once `--at` seconds
have been transcribed. `done`: one short sentence (2.9 s with its pause) streamed to its end.
`replay`: the few sentences streamed to their end, then the Replay dialog (the session's plan
beside hop 320 / left 1000 / right 320 ms) once both runs are shown; the dialog is grabbed.
The window keeps its default geometry, which fills a 1600×1000 screen.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from asrlive.gui.main_window import MainWindow
from asrlive.model import configure_torch_threads
from asrlive.synth import Voice, synthesize

TEXT = ["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG", "SPEECH RECOGNITION IN REAL TIME",
        "EVERY FRAME HAS ITS OWN RECEPTIVE FIELD"]
GAP_SAMPLES = 8000  # half a second of silence after each sentence
AS_FAST_AS_POSSIBLE = 3  # index in the app's speed box


def speech(sentences: list[str]) -> np.ndarray:
    voice = Voice("en-us", words_per_minute=150)
    gap = np.zeros(GAP_SAMPLES, np.float32)
    return np.concatenate([np.concatenate([synthesize(t, voice), gap]) for t in sentences]) * 0.8


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--state", choices=("idle", "mid", "done", "replay"), default="mid",
                    help="before any stream, mid-stream, or after a short file has finished")
    ap.add_argument("--at", type=float, default=6.0, help="mid: seconds of audio streamed before the grab")
    args = ap.parse_args()
    configure_torch_threads(1)
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        window = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat), initial_model=args.model,
                            journaling=False)
        window.confidence_box.setChecked(True)
        window.show()

        def grab() -> None:
            window.on_tick()
            app.processEvents()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            (window.replay_dialog if args.state == "replay" else window).grab().save(str(args.out))
            streamed = window.session.ring.written / 16000 if window.session else 0.0
            print(f"saved {args.out} ({args.state}, {streamed:.1f} s streamed)")
            window.close()
            app.quit()

        def start_when_loaded() -> None:
            if window.model is None:
                QTimer.singleShot(100, start_when_loaded)
                return
            if args.state == "idle":
                grab()
                return
            wav = tmp / "demo.wav"
            sf.write(wav, speech(TEXT if args.state in ("mid", "replay") else TEXT[1:2]), 16000)
            window.source_controls.set_file(str(wav))
            if args.state in ("done", "replay"):
                window.source_controls.speed.setCurrentIndex(AS_FAST_AS_POSSIBLE)
                window.sessionFinished.connect(grab if args.state == "done" else replay)
                window.start_streaming()
                return
            window.start_streaming()
            QTimer.singleShot(100, grab_mid_stream)

        def replay() -> None:
            window.show_replay()
            dialog = window.replay_dialog
            dialog.job.done.connect(lambda _: QTimer.singleShot(200, grab))
            dialog.run()

        def grab_mid_stream() -> None:
            s = window.session
            if s.ring.written < args.at * 16000 and s.running:
                QTimer.singleShot(100, grab_mid_stream)
                return
            window.view.selected_frame = window.view.n_frames - 40
            grab()

        start_when_loaded()
        return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
