"""The heatmap's symbol axis: a label per vocabulary row where the rows are tall enough, and where
they are not, the blank and the symbols before special tokens, never two labels over each other."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QFont, QFontMetricsF

from .label_layout import pick_row_labels


def symbol_label(sym: str, blank: bool) -> str:
    if blank:
        return "∅ blank"
    return "␣" if sym in ("|", " ") else sym


def is_special(sym: str) -> bool:
    """<s>, </s>, <unk>, <pad>…: tokens the greedy path of a CTC model hardly ever takes."""
    return len(sym) > 2 and sym.startswith("<") and sym.endswith(">")


class SymbolAxis(pg.AxisItem):
    def __init__(self) -> None:
        super().__init__("left")
        self.enableAutoSIPrefix(False)
        self.setStyle(tickFont=QFont())  # set, not inherited, so that the measured font is the drawn one
        self.labels: list[str] = []
        self._extents: list[tuple[float, float]] = []
        self._order: list[int] = []

    def set_symbols(self, vocab: list[str], blank_id: int) -> None:
        """One row per symbol of ``vocab``; an empty list shows no ticks at all."""
        self.labels = [symbol_label(s, i == blank_id) for i, s in enumerate(vocab)]
        metrics = QFontMetricsF(self.style["tickFont"])
        # The axis centres each label's line box on its row: the baseline sits this far below.
        baseline = metrics.ascent() - metrics.height() / 2
        self._extents = []
        for label in self.labels:
            glyphs = metrics.tightBoundingRect(label)
            self._extents.append((-(baseline + glyphs.top()), baseline + glyphs.bottom()))
        self._order = sorted(range(len(vocab)),
                             key=lambda i: (0 if i == blank_id else 2 if is_special(vocab[i]) else 1, i))
        self.picture = None  # pyqtgraph's cached drawing of the axis
        self.update()

    def shown_rows(self, low: float, high: float, length_px: float) -> list[int]:
        """Rows labelled when rows ``low``..``high`` span ``length_px`` pixels of axis."""
        if not self.labels or high <= low or length_px <= 0:
            return []
        rows = pick_row_labels(self._extents, length_px / (high - low), self._order)
        return [i for i in rows if low <= i <= high]

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        return [(1.0, [float(i) for i in self.shown_rows(minVal, maxVal, size)])]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [self.labels[int(round(v))] for v in values]
