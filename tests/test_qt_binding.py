"""Guards against a Qt binding that leaks references to None: PySide6 6.12.0 decrements None's
refcount on every call of a void method, and Python 3.11 aborts once it reaches zero, which a GUI
timer reaches within minutes."""

import sys

from PySide6.QtWidgets import QLabel


def test_void_qt_calls_keep_none_refcount(qtbot):
    label = QLabel("x")
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("y")
        label.update()
    assert abs(sys.getrefcount(None) - before) < 100
