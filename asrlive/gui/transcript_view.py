"""The transcript: committed text, tentative text visibly apart, optional per-character confidence
colours; and a presentation window that shows it alone in large type."""

from __future__ import annotations

import html
from itertools import groupby

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QKeySequence, QShortcut, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QLabel, QTextEdit, QVBoxLayout, QWidget

from ..transcript_history import TextUpdate

SHOWN_CHARS = 400          # what fits the presentation screen
PARAGRAPH_CHARS = 600      # the transcript view's longest paragraph, about ten lines
TAIL_CHARS = 2 * SHOWN_CHARS


def confidence_colour(prob: float) -> str:
    """Red below 0.5, amber to 0.8, the normal text colour above."""
    if prob < 0.5:
        return "#c0392b"
    if prob < 0.8:
        return "#b9770e"
    return ""


class TranscriptView(QTextEdit):
    """Read-only transcript that grows by appending: committed text is inserted once, and only
    the tentative tail is replaced on each update. Qt lays out a whole paragraph whenever it
    changes, so a paragraph is closed at the first word boundary after ``PARAGRAPH_CHARS``
    characters (the view shows a line break where the transcript has a space): long transcripts
    then cost no more to refresh than short ones."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        font = QFont()
        font.setPointSize(13)
        self.setFont(font)
        self.setPlaceholderText("The transcript appears here. Committed text is black; "
                                "grey italic text is tentative and may still change.")
        self._committed_len = 0
        self._tentative = ""
        self._paragraph_len = 0
        self._soft_breaks: list[int] = []  # committed-text offsets of spaces shown as paragraph breaks
        self._tentative_format = QTextCharFormat()
        self._tentative_format.setForeground(QColor("#8a8a8a"))
        self._tentative_format.setFontItalic(True)

    @staticmethod
    def _coloured(colour: str) -> QTextCharFormat:
        fmt = QTextCharFormat()
        if colour:
            fmt.setForeground(QColor(colour))
        return fmt

    def apply(self, update: TextUpdate, coloured: bool) -> None:
        """Append ``update``'s committed text (coloured by confidence when asked), recolour the
        last committed character if its posterior rose, and replace the tentative tail."""
        if not update.text and update.last_prob is None and update.tentative == self._tentative:
            return
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.End)
        cursor.movePosition(QTextCursor.Left, QTextCursor.KeepAnchor, len(self._tentative))
        cursor.removeSelectedText()
        if update.last_prob is not None and coloured and self._committed_len:
            cursor.movePosition(QTextCursor.Left, QTextCursor.KeepAnchor, 1)
            cursor.setCharFormat(self._coloured(confidence_colour(update.last_prob)))
            cursor.movePosition(QTextCursor.End)
        text = self._break_paragraphs(update.text)
        index = 0
        for colour, run in groupby(update.probs, key=lambda p: confidence_colour(p) if coloured and p is not None else ""):
            n = len(list(run))
            cursor.insertText(text[index:index + n], self._coloured(colour))
            index += n
        cursor.insertText(update.tentative, self._tentative_format)
        self._committed_len += len(update.text)
        self._tentative = update.tentative
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _break_paragraphs(self, text: str) -> str:
        chars = list(text)
        for i, ch in enumerate(chars):
            if ch == "\n":
                self._paragraph_len = 0
            elif ch == " " and self._paragraph_len >= PARAGRAPH_CHARS:
                chars[i] = "\n"
                self._soft_breaks.append(self._committed_len + i)
                self._paragraph_len = 0
            else:
                self._paragraph_len += 1
        return "".join(chars)

    def text(self) -> str:
        """The committed and tentative text shown, paragraph breaks of long runs read as the
        spaces they stand for."""
        chars = list(self.toPlainText())
        for i in self._soft_breaks:
            chars[i] = " "
        return "".join(chars)

    def colours(self) -> list[str]:
        """The foreground colour of each committed character, "" for the default (for tests)."""
        out = []
        block = self.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                frag = it.fragment()
                brush = frag.charFormat().foreground()
                colour = brush.color().name() if brush.style() != Qt.NoBrush else ""
                out += [colour] * frag.length()
                it += 1
            block = block.next()
            if block.isValid():
                out.append("")  # the paragraph break: a run separator
        return out[:self._committed_len]

    def reset(self) -> None:
        self.clear()
        self._committed_len = 0
        self._tentative = ""
        self._paragraph_len = 0
        self._soft_breaks = []


class PresentationWindow(QWidget):
    """The transcript alone, large, light on dark, full screen, for dictation demos. Esc or F11
    closes it."""

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
        for key in (Qt.Key_Escape, Qt.Key_F11):
            QShortcut(QKeySequence(key), self, self.close)
        self.resize(1280, 720)
        self._tail = ""
        self._tentative = ""

    def apply(self, update: TextUpdate) -> None:
        if update.text or update.tentative != self._tentative:
            self._tail = (self._tail + update.text.replace("\n", " "))[-TAIL_CHARS:]
            self._tentative = update.tentative
            self._show()

    def reset(self, update: TextUpdate = TextUpdate()) -> None:
        self._tail, self._tentative = "", ""
        self.apply(update)
        self._show()

    def _show(self) -> None:
        # Only the tail fits the screen; cut at a word boundary.
        text = self._tail[-SHOWN_CHARS:]
        if len(self._tail) > SHOWN_CHARS and " " in text:
            text = text[text.index(" ") + 1:]
        self.label.setText(f"{html.escape(text)}<span style='color:#6f7780'>{html.escape(self._tentative.replace(chr(10), ' '))}</span>")
