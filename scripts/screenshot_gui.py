"""Screenshot of the app mid-stream, for docs/: run under a real X server (e.g. xvfb-run).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_gui.py docs/screenshot.png [--model M]

Speaks a few sentences with espeak-ng, streams them through file mode in real time, and grabs the
window once `--at` seconds have been transcribed.
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


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", default=None)
    ap.add_argument("--at", type=float, default=6.0, help="seconds of audio streamed before the grab")
    args = ap.parse_args()
    configure_torch_threads(1)
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        gap = np.zeros(8000, np.float32)
        audio = np.concatenate([np.concatenate([synthesize(t, Voice("en-us", words_per_minute=150)), gap]) for t in TEXT])
        wav = tmp / "demo.wav"
        sf.write(wav, audio * 0.8, 16000)
        window = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat), initial_model=args.model)
        window.resize(1600, 1000)
        window.confidence_box.setChecked(True)
        window.show()
        window.source_controls.set_file(str(wav))

        def start_when_loaded() -> None:
            if window.model is None:
                QTimer.singleShot(100, start_when_loaded)
                return
            window.start_streaming()
            QTimer.singleShot(100, grab_when_ready)

        def grab_when_ready() -> None:
            s = window.session
            if s.ring.written < args.at * 16000 and s.running:
                QTimer.singleShot(100, grab_when_ready)
                return
            window.view.selected_frame = window.view.n_frames - 40
            window.on_tick()
            app.processEvents()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(args.out))
            print(f"saved {args.out} at {s.ring.written / 16000:.1f} s streamed")
            window.close()
            app.quit()

        start_when_loaded()
        return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
