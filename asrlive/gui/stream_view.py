"""Waveform (with RF and window zones), log-mel strip, CTC posterior heatmap and blank curve,
on one shared time axis. Pulled from the core on the GUI timer; nothing here is pushed per chunk.

Hover shows a frame's top-5 symbols; a click pauses following so the user can drag back through
the history while capture continues; a second click (or End) follows live again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..session import LiveSession
from ..view_feed import ENVELOPE_PER_SECOND, ViewFeed
from .label_layout import pack_in_rows
from .symbol_axis import SymbolAxis, symbol_label

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

MAX_WAVE_POINTS = 2400     # coarser envelope beyond this: more is invisible at screen width
PATH_LEVEL = 255           # heatmap value reserved for the greedy path's cells
LABEL_MAX_SECONDS = 20.0   # character labels only when the visible span is short enough to read
MAX_LABELS = 150
LABEL_ROW_PX = 15
LABEL_ROWS = 2             # the headroom above P(blank) = 1 holds two rows of letters
HOVER_HINT = ("Hover over the plots to inspect a frame; click to pin it and pause, drag to scrub back, "
              "double-click to follow live again.")


@dataclass(frozen=True)
class FrameInfo:
    """What hovering a frame shows."""

    frame: int
    time_s: float
    top: list[tuple[str, float]]  # (symbol, probability), best first


class StreamView(QWidget):
    frameHovered = Signal(object)  # FrameInfo or None
    pausedChanged = Signal(bool)
    framePinned = Signal(int)

    def __init__(self, parent: QWidget | None = None, visible_seconds: float = 10.0):
        super().__init__(parent)
        self.session: LiveSession | None = None
        self.visible_seconds = visible_seconds
        self.paused = False
        self.selected_frame: int | None = None
        self.pinned_frame: int | None = None
        # 255 levels of viridis for probabilities; the last entry, red, marks the greedy path.
        self._lut = pg.colormap.get("viridis").getLookupTable(nPts=256)
        self._lut[PATH_LEVEL] = (255, 40, 40)
        self._mel_lut = pg.colormap.get("magma").getLookupTable(nPts=256)

        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.setBackground("w")
        self.wave_plot = self.layout_widget.addPlot(row=0, col=0)
        self.mel_plot = self.layout_widget.addPlot(row=1, col=0)
        self.symbol_axis = SymbolAxis()
        self.heat_plot = self.layout_widget.addPlot(row=2, col=0, axisItems={"left": self.symbol_axis})
        self.blank_plot = self.layout_widget.addPlot(row=3, col=0)
        layout = self.layout_widget.ci.layout
        for row, stretch in enumerate((3, 2, 5, 2)):
            layout.setRowStretchFactor(row, stretch)
        for plot in (self.mel_plot, self.heat_plot, self.blank_plot):
            plot.setXLink(self.wave_plot)
        for plot in (self.wave_plot, self.mel_plot, self.heat_plot, self.blank_plot):
            plot.getAxis("left").setWidth(70)
            plot.setMenuEnabled(False)
            plot.hideButtons()
        self.wave_plot.setLabel("left", "waveform")
        self.wave_plot.setYRange(-1, 1, padding=0)
        self.mel_plot.setLabel("left", "log-mel")
        self.heat_plot.setLabel("left", "symbol")
        self.blank_plot.setLabel("left", "P(blank)")
        self.blank_plot.setLabel("bottom", "time (s)")
        self.blank_plot.setYRange(0, 1.45, padding=0)  # headroom for two rows of character labels
        self.blank_plot.getAxis("left").setTicks([[(v, f"{v:.1f}") for v in (0, 0.2, 0.4, 0.6, 0.8, 1.0)], []])
        for plot in (self.wave_plot, self.mel_plot, self.heat_plot):
            plot.hideAxis("bottom")  # one time axis, at the bottom, is enough to read and to paint

        self.wave_curve = self.wave_plot.plot(pen=pg.mkPen("#1f4e79", width=1))
        self.zone_left = pg.LinearRegionItem(movable=False, brush=QColor(160, 160, 160, 60), pen=pg.mkPen(None))
        self.zone_hop = pg.LinearRegionItem(movable=False, brush=QColor(40, 170, 80, 70), pen=pg.mkPen(None))
        self.zone_right = pg.LinearRegionItem(movable=False, brush=QColor(240, 150, 30, 70), pen=pg.mkPen(None))
        self.rf_region = pg.LinearRegionItem(movable=False, brush=QColor(200, 30, 30, 90), pen=pg.mkPen("#c81e1e"))
        for item in (self.zone_left, self.zone_hop, self.zone_right, self.rf_region):
            item.setZValue(-5)
            self.wave_plot.addItem(item)
        self.zone_legend = pg.TextItem(anchor=(0, 0), color="#333")
        self.zone_legend.setHtml(
            "<span style='background:#ddd'>&nbsp;left context (dropped)&nbsp;</span> "
            "<span style='background:#a8e0b8'>&nbsp;hop (committed)&nbsp;</span> "
            "<span style='background:#f7d3a0'>&nbsp;right context (tentative)&nbsp;</span> "
            "<span style='color:#c81e1e'>&#9632; frame RF</span>")
        self.wave_plot.addItem(self.zone_legend, ignoreBounds=True)
        self.sensitivity_curve = self.wave_plot.plot(pen=pg.mkPen("#c81e1e", width=1.5))
        self.cursor_lines = [pg.InfiniteLine(angle=90, pen=pg.mkPen("#c81e1e", style=Qt.DashLine))
                             for _ in range(4)]
        for plot, line in zip((self.wave_plot, self.mel_plot, self.heat_plot, self.blank_plot), self.cursor_lines):
            plot.addItem(line, ignoreBounds=True)
            line.hide()

        self.mel_image = pg.ImageItem(axisOrder="row-major")
        self.mel_image.setLookupTable(self._mel_lut)
        self.mel_plot.addItem(self.mel_image)
        self.heat_image = pg.ImageItem(axisOrder="row-major")
        self.heat_image.setLookupTable(self._lut)
        self.heat_plot.addItem(self.heat_image)
        self.blank_curve = self.blank_plot.plot(pen=pg.mkPen("#333", width=1))
        self.blank_curve.setDownsampling(auto=True, method="peak")  # about one point per pixel
        self.blank_curve.setClipToView(True)
        self._char_labels: list[pg.TextItem] = []
        self.placeholder = pg.TextItem(anchor=(0.5, 0.5), color="#777")
        self.placeholder.setText("Start a stream (microphone or file) to see its waveform, log-mel spectrum,\n"
                                 "CTC posteriors per symbol and P(blank) here, on one time axis.")
        self.heat_plot.addItem(self.placeholder, ignoreBounds=True)
        self._label_font = QFont()
        self._label_metrics = QFontMetricsF(self._label_font)

        self.hover_label = QLabel(HOVER_HINT)
        self.hover_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        # Its one long line would otherwise set the window's minimum width, wider than a laptop screen.
        self.hover_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.follow_button = QPushButton("Follow live")
        self.follow_button.setEnabled(False)
        self.follow_button.clicked.connect(lambda: self.set_paused(False))
        self.gradient_box = QCheckBox("Gradient sensitivity of the pinned frame")
        self.gradient_box.setToolTip("Red curve on the waveform: |d log p / d input| of the pinned frame "
                                     "over the window that committed it (needs a backward pass)")
        bar = QHBoxLayout()
        bar.addWidget(self.hover_label, 1)
        bar.addWidget(self.gradient_box)
        bar.addWidget(self.follow_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.layout_widget, 1)
        box.addLayout(bar)

        self.layout_widget.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.layout_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self._set_interactive(False)
        self.sensitivity: tuple[int, np.ndarray, np.ndarray] | None = None
        self.reset(None)

    # -- state ---------------------------------------------------------------------------------
    def reset(self, session: LiveSession | None) -> None:
        """Show ``session`` from its start (or nothing), following it live."""
        self.set_paused(False)
        self.session = session
        self.selected_frame = None
        self.pinned_frame = None
        self.sensitivity = None
        for line in self.cursor_lines:
            line.hide()
        self.hover_label.setText(HOVER_HINT)
        self.heat_image.clear()
        self.mel_image.clear()
        self.wave_curve.setData([], [])
        self.blank_curve.setData([], [])
        # Zones and labels appear with the data they describe; until then nothing stands in for it.
        for item in (self.zone_left, self.zone_hop, self.zone_right, self.zone_legend, self.rf_region,
                     *self._char_labels):
            item.hide()
        self.placeholder.setVisible(session is None)
        self.mel_plot.getAxis("left").setTicks([[], []] if session is None else None)  # None: automatic
        if session is None:
            self.symbol_axis.set_symbols([], 0)
            self.mel_plot.setYRange(0, 1, padding=0)
            self.heat_plot.setYRange(0, 1, padding=0)
            self.wave_plot.setXRange(0, self.visible_seconds, padding=0)
            self.placeholder.setPos(self.visible_seconds / 2, 0.5)
            return
        m = session.model
        g = m.geometry
        self.frame_s = g.frame_seconds
        self.vocab = m.vocab
        self.blank_id = m.blank_id
        self.feed = ViewFeed(session)
        self.symbol_axis.set_symbols(m.vocab, m.blank_id)
        self.heat_plot.setYRange(-0.5, len(m.vocab) - 0.5, padding=0)
        self.mel_plot.setYRange(0, self.feed.logmel.n_mels, padding=0)
        self._drawn_state = None

    @property
    def n_frames(self) -> int:
        return 0 if self.session is None else self.feed.probs.count

    def frame_info(self, frame: int) -> FrameInfo | None:
        row = None if self.session is None else self.feed.probs.row(frame)
        if row is None:
            return None
        if not np.all(np.isfinite(row)):
            return FrameInfo(frame, frame * self.frame_s, [])
        order = np.argsort(row)[::-1][:5]
        return FrameInfo(frame, frame * self.frame_s,
                         [(self.vocab[i] if i != self.blank_id else "<blank>", float(row[i])) for i in order])

    def set_paused(self, paused: bool) -> None:
        if paused != self.paused:
            self.paused = paused
            self._set_interactive(paused)
            self.follow_button.setEnabled(paused)
            if not paused:
                self.pinned_frame = None
                self.sensitivity = None  # it belongs to the pin
            self.pausedChanged.emit(paused)

    def _set_interactive(self, on: bool) -> None:
        for plot in (self.wave_plot, self.mel_plot, self.heat_plot, self.blank_plot):
            plot.setMouseEnabled(x=on, y=False)

    def refresh(self) -> None:
        """One GUI-timer tick: pull what is new and redraw the visible range."""
        if self.session is None:
            return
        status = self.session.status
        finished = status is not None and status.finished  # read first: the pull then has every frame
        self.feed.pull()
        now = max(self.feed.env_samples / self.session.model.sample_rate, self.feed.probs.count * self.frame_s)
        if not self.paused:
            if finished and 0 < now < self.visible_seconds:
                # A stream shorter than the axis: fit the axis to it rather than leave most of it empty.
                self.wave_plot.setXRange(0, now, padding=0)
            else:
                t1 = max(now, self.visible_seconds)
                self.wave_plot.setXRange(t1 - self.visible_seconds, t1, padding=0)
        (x0, x1) = self.wave_plot.viewRange()[0]
        state = (self.feed.probs.count, self.feed.envelope.count, self.feed.mel.count, round(x0, 4), round(x1, 4),
                 self.selected_frame, self.pinned_frame, id(self.sensitivity),
                 status.windows if status else 0)
        if state != self._drawn_state:  # nothing new: skip the redraw (and the repaint it causes)
            self._drawn_state = state
            self._draw(x0, x1)

    def _draw(self, x0: float, x1: float) -> None:
        dt = self.frame_s
        f0, probs = self.feed.probs.view(int(x0 / dt) - 1, int(x1 / dt) + 2)
        if len(probs):
            finite = np.nan_to_num(probs, nan=0.0)
            # uint8 levels 0..254 for probability; the greedy path's non-blank cells get PATH_LEVEL.
            image = np.ascontiguousarray((finite.T * (PATH_LEVEL - 1)).astype(np.uint8))
            best = np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1)
            on_path = (best != self.blank_id) & np.isfinite(probs[:, 0])
            image[best[on_path], np.flatnonzero(on_path)] = PATH_LEVEL
            self.heat_image.setImage(image, autoLevels=False, levels=(0, 255))
            self.heat_image.setRect(QRectF(f0 * dt, -0.5, len(probs) * dt, len(self.vocab)))
            t = (np.arange(f0, f0 + len(probs)) + 0.5) * dt
            self.blank_curve.setData(t, probs[:, self.blank_id], connect="finite")
            best = best.astype(np.float32)
            best[~on_path] = np.nan
            if x1 - x0 <= LABEL_MAX_SECONDS:
                self._place_char_labels(f0, best)
            else:
                for item in self._char_labels:
                    item.hide()
        b0, env = self.feed.envelope.view(int(x0 * ENVELOPE_PER_SECOND), int(x1 * ENVELOPE_PER_SECOND) + 1)
        if len(env):
            k = max(1, -(-2 * len(env) // MAX_WAVE_POINTS))
            n = len(env) // k
            if k > 1:
                env = np.stack([env[: n * k, 0].reshape(n, k).min(axis=1), env[: n * k, 1].reshape(n, k).max(axis=1)], axis=1)
            t = np.repeat((b0 + (np.arange(len(env)) + 0.5) * k) / ENVELOPE_PER_SECOND, 2)
            self.wave_curve.setData(t, env.reshape(-1), skipFiniteCheck=True)
        lm = self.feed.logmel
        col_s = lm.hop / lm.sample_rate
        c0, mel = self.feed.mel.view(int(x0 / col_s), int(x1 / col_s) + 1)
        if len(mel):
            self.mel_image.setImage(np.ascontiguousarray(mel.T), autoLevels=False, levels=(-6.0, 2.0))
            # A column's window is centred win/2 after its start.
            offset = lm.win / 2 / lm.sample_rate - col_s / 2
            self.mel_image.setRect(QRectF(c0 * col_s + offset, 0, len(mel) * col_s, lm.n_mels))
        self._draw_zones()

    def _place_char_labels(self, f0: int, best: np.ndarray) -> None:
        """The greedy path's characters, one label per new symbol run, on the blank curve."""
        changes = [i for i in range(len(best)) if np.isfinite(best[i]) and (i == 0 or best[i] != best[i - 1])]
        changes = changes[-MAX_LABELS:]
        while len(self._char_labels) < len(changes):
            item = pg.TextItem(anchor=(0.5, 1.0), color="#b00000")
            item.setFont(self._label_font)
            self.blank_plot.addItem(item, ignoreBounds=True)
            self._char_labels.append(item)
        texts = [symbol_label(self.vocab[int(best[i])], False) for i in changes]
        xs = [(f0 + i + 0.5) * self.frame_s for i in changes]
        # Letters a frame or two apart would print over each other: each takes the lowest row
        # where it clears its neighbour at the current scale, and is left out where none does.
        x_per_px, y_per_px = self.blank_plot.getViewBox().viewPixelSize()
        widths = [self._label_metrics.horizontalAdvance(t) for t in texts]
        rows = pack_in_rows([x / x_per_px for x in xs], widths, LABEL_ROWS)
        for item, text, x, row in zip(self._char_labels, texts, xs, rows):
            if row is None:
                item.hide()
                continue
            item.setText(text)
            item.setPos(x, 1.03 + row * LABEL_ROW_PX * y_per_px)
            item.show()
        for item in self._char_labels[len(changes):]:
            item.hide()

    def _draw_zones(self) -> None:
        status = self.session.status
        t = status.window if status is not None else None
        g = self.session.model.geometry
        rate = g.sample_rate
        for item in (self.zone_left, self.zone_hop, self.zone_right, self.zone_legend):
            item.setVisible(t is not None)
        if t is not None:
            fs = g.frame_seconds
            self.zone_left.setRegion((t.first_frame * fs, t.commit_from * fs))
            self.zone_hop.setRegion((t.commit_from * fs, t.commit_to * fs))
            self.zone_right.setRegion((t.commit_to * fs, g.window_span(t.first_frame, t.end_frame)[1] / rate))
            self.zone_legend.setPos(self.wave_plot.viewRange()[0][0], 1.0)
        frame = next((f for f in (self.selected_frame, self.pinned_frame) if f is not None), self.feed.probs.count - 1)
        self.rf_region.setVisible(frame >= 0)
        if frame >= 0:
            a, b = g.frame_span(frame)
            self.rf_region.setRegion((a / rate, b / rate))
        if self.sensitivity is not None:
            _, times, values = self.sensitivity
            self.sensitivity_curve.setData(times, values)
            self.sensitivity_curve.show()
        else:
            self.sensitivity_curve.hide()

    # -- mouse -------------------------------------------------------------------------------------
    def _on_mouse_moved(self, pos) -> None:
        if self.session is None:
            return
        inside = any(p.sceneBoundingRect().contains(pos) for p in
                     (self.wave_plot, self.mel_plot, self.heat_plot, self.blank_plot))
        if not inside:
            self.selected_frame = None
            for line in self.cursor_lines:
                line.hide()
            self.frameHovered.emit(None)
            return
        t = self.wave_plot.vb.mapSceneToView(pos).x()
        frame = int(np.floor(t / self.frame_s))
        info = self.frame_info(frame)
        self.selected_frame = frame if info is not None else None
        for line in self.cursor_lines:
            line.setPos((frame + 0.5) * self.frame_s)
            line.setVisible(info is not None)
        if info is not None:
            top = ", ".join(f"{'∅' if s == '<blank>' else s} {p:.2f}" for s, p in info.top) or "skipped audio"
            self.hover_label.setText(f"frame {info.frame}  t={info.time_s:.2f} s   top-5: {top}")
        self.frameHovered.emit(info)

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != Qt.LeftButton or self.session is None:
            return
        if event.double():
            self.set_paused(False)
            return
        t = self.wave_plot.vb.mapSceneToView(event.scenePos()).x()
        frame = int(np.floor(t / self.frame_s))
        self.set_paused(True)
        if self.frame_info(frame) is not None:
            self.pin(frame)

    def pin(self, frame: int) -> None:
        """Hold the RF overlay (and the gradient probe) on ``frame``."""
        self.pinned_frame = frame
        self.framePinned.emit(frame)
