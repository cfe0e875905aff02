"""The transcript: committed text, tentative text visibly apart, optional per-character confidence
colours; and a presentation window that shows it alone in large type."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QTextEdit, QVBoxLayout, QWidget

from ..decoder import Char


def confidence_colour(prob: float) -> str:
    """Red below 0.5, amber to 0.8, the normal text colour above."""
    if prob < 0.5:
        return "#c0392b"
    if prob < 0.8:
        return "#b9770e"
    return ""


def transcript_html(previous: str, chars: list[Char] | None, committed: str, tentative: str,
                    colours: bool, tentative_style: str = "color:#8a8a8a; font-style:italic") -> str:
    parts = [html.escape(previous)]
    if colours and chars:
        # Characters in order, spaces where the committed text has them.
        it = iter(chars)
        for ch in committed:
            if ch == " ":
                parts.append(" ")
                continue
            c = next(it)
            colour = confidence_colour(c.prob)
            esc = html.escape(ch)
            parts.append(f"<span style='color:{colour}'>{esc}</span>" if colour else esc)
    else:
        parts.append(html.escape(committed))
    if tentative:
        parts.append(f"<span style='{tentative_style}'>{html.escape(tentative)}</span>")
    return "".join(parts)


class TranscriptView(QTextEdit):
    """Read-only rich text; redraws only when the text changed."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        font = QFont()
        font.setPointSize(13)
        self.setFont(font)
        self.setPlaceholderText("The transcript appears here. Committed text is black; "
                                "grey italic text is tentative and may still change.")
        self._last = ""

    def show_html(self, content: str) -> None:
        if content != self._last:
            self._last = content
            self.setHtml(content)
            self.verticalScrollBar().setValue(self.verticalScrollBar().maximum())


class PresentationWindow(QWidget):
    """The transcript alone, large, light on dark, for dictation demos. Esc closes it."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.Window)
        self.setWindowTitle("asrlive — presentation")
        self.setStyleSheet("background:#101418;")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignLeft | Qt.AlignBottom)
        self.label.setTextFormat(Qt.RichText)
        font = QFont()
        font.setPointSize(40)
        font.setBold(True)
        self.label.setFont(font)
        self.label.setStyleSheet("color:#f5f5f5; padding:40px;")
        box = QVBoxLayout(self)
        box.addWidget(self.label)
        QShortcut(QKeySequence(Qt.Key_Escape), self, self.close)
        self.resize(1280, 720)

    def show_text(self, committed: str, tentative: str, max_chars: int = 400) -> None:
        # Only the tail fits the screen; cut at a word boundary.
        text = committed[-max_chars:]
        if len(committed) > max_chars and " " in text:
            text = text[text.index(" ") + 1:]
        self.label.setText(transcript_html("", None, text, tentative, False,
                                           tentative_style="color:#6f7780"))
