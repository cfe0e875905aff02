"""For the benchmarks that drive the main window under Xvfb: a window ready to play a file, and
the GUI timer's ticks driven by the benchmark at the app's own interval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from asrlive.gui.main_window import FRAME_INTERVAL_MS, MainWindow


def ready_window(app: QApplication, tmp: Path, model: str | None, wav: Path, speed_index: int,
                 journaling: bool) -> MainWindow:
    """A 1600×1000 window with confidence colours on, its model loaded and ``wav`` chosen at the
    speed box's ``speed_index``; its own timer stopped, since the benchmark ticks it."""
    w = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.IniFormat), initial_model=model, journaling=journaling)
    w.resize(1600, 1000)
    w.show()
    w.confidence_box.setChecked(True)
    w.timer.stop()
    while w.model is None:
        app.processEvents()
    w.source_controls.set_file(str(wav))
    w.source_controls.speed.setCurrentIndex(speed_index)
    return w


def drive_ticks(app: QApplication, tick: Callable[[], None]) -> None:
    """Call ``tick`` every FRAME_INTERVAL_MS until it calls ``app.quit()``."""
    timer = QTimer()
    timer.setInterval(FRAME_INTERVAL_MS)
    timer.timeout.connect(tick)
    timer.start()
    app.exec()
    timer.stop()
