"""Entry point of the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path


def run_app(model: str | None = None, audio_file: Path | None = None) -> int:
    import signal

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from ..model import configure_torch_threads
    from .main_window import MainWindow

    configure_torch_threads()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("asrlive")
    window = MainWindow(initial_model=model, initial_file=audio_file, confirm_close=True)
    window.show()
    # Ctrl+C in the terminal closes the window as its close button does (settings saved, the
    # stream stopped) instead of raising KeyboardInterrupt in whatever slot is running. Python
    # runs signal handlers only between bytecodes, hence the idle timer.
    signal.signal(signal.SIGINT, lambda *_: window.close_from_terminal())
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    return app.exec()
