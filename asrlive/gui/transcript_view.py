"""The transcript: committed text, tentative text visibly apart, optional per-character confidence
colours; and a presentation window that shows it alone in large type."""

from __future__ import annotations

import html
from itertools import groupby

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QLabel, QTextEdit, QVBoxLayout, QWidget

from ..decoder import Char


def confidence_colour(prob: float) -> str:
    """Red below 0.5, amber to 0.8, the normal text colour above."""
    if prob < 0.5:
        return "#c0392b"
    if prob < 0.8:
        return "#b9770e"
    return ""


def char_colours(text: str, chars: list[Char]) -> list[str]:
    """A colour per character of ``text``, whose non-space characters are ``chars`` in order."""
    probs = iter(chars)
    return ["" if ch.isspace() else confidence_colour(next(probs).prob) for ch in text]


class TranscriptView(QTextEdit):
    """Read-only transcript that grows by appending: committed text is inserted once, and only
    the tentative tail is replaced on each update, so long transcripts cost no more to refresh
    than short ones."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        font = QFont()
        font.setPointSize(13)
        self.setFont(font)
        self.setPlaceholderText("The transcript appears here. Committed text is black; "
                                "grey italic text is tentative and may still change.")
        self._committed = ""
        self._tentative = ""
        self._tentative_format = QTextCharFormat()
        self._tentative_format.setForeground(QColor("#8a8a8a"))
        self._tentative_format.setFontItalic(True)

    @property
    def committed(self) -> str:
        return self._committed

    def show_text(self, committed: str, tentative: str, colours: list[str] | None = None) -> None:
        """``colours``: one CSS colour (or "") per character of ``committed``, or None for plain."""
        if committed == self._committed and tentative == self._tentative:
            return
        if not committed.startswith(self._committed):
            self.clear()
            self._committed = ""
            self._tentative = ""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        cursor.movePosition(QTextCursor.Left, QTextCursor.KeepAnchor, len(self._tentative))
        cursor.removeSelectedText()
        start = len(self._committed)
        new = committed[start:]
        plain = QTextCharFormat()
        if colours is None:
            cursor.insertText(new, plain)
        else:
            for colour, run in groupby(range(start, len(committed)), key=lambda i: colours[i]):
                fmt = QTextCharFormat()
                if colour:
                    fmt.setForeground(QColor(colour))
                cursor.insertText("".join(committed[i] for i in run), fmt)
        cursor.insertText(tentative, self._tentative_format)
        self._committed, self._tentative = committed, tentative
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def reset(self) -> None:
        self.clear()
        self._committed = ""
        self._tentative = ""


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
        self.label.setText(f"{html.escape(text)}<span style='color:#6f7780'>{html.escape(tentative)}</span>")
