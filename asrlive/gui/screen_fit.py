"""Window sizes that fit the screen they open on."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

FRAME_ROOM = QSize(40, 80)  # a window manager's title bar and borders, unknown until the window shows


def room_for_window(available: QSize) -> QSize:
    """The largest window whose frame still fits in a screen's ``available`` area."""
    return available - FRAME_ROOM


def resize_within_screen(widget: QWidget, width: int, height: int) -> None:
    """Resize ``widget`` to ``width`` x ``height``, or to what its screen leaves room for."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    room = room_for_window(screen.availableGeometry().size()) if screen is not None else QSize(width, height)
    widget.resize(min(width, room.width()), min(height, room.height()))
