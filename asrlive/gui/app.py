"""Entry point of the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path


def run_app(model: str | None = None, audio_file: Path | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from ..model import configure_torch_threads
    from .main_window import MainWindow

    configure_torch_threads()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("asrlive")
    window = MainWindow(initial_model=model, initial_file=audio_file)
    window.show()
    return app.exec()
