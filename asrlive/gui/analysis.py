"""Receptive-field analysis in the app: the pinned frame's gradient over its window, and the
context-sensitivity sweep that recommends a right context."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from .. import rf_analysis as rfa
from ..session import LiveSession
from .jobs import BackgroundJob
from .screen_fit import resize_within_screen

SWEEP_SECONDS = 8.0


class GradientProbe(BackgroundJob):
    """Computes the pinned frame's input-gradient envelope from the window that committed it;
    ``done((session, frame, times, values))``."""

    def __init__(self, parent=None):
        super().__init__(parent)
        # The float64 copy of the last model probed (hundreds of MB for a base-sized model): one.
        self._net: tuple[object, object] | None = None

    def probe(self, session: LiveSession, frame: int) -> str | None:
        """Start the measurement; returns why it cannot run, or None."""
        g = session.model.geometry
        window = session.window_of(frame)
        if window is None:
            return "that frame is not committed yet"
        start, end = g.window_span(window.first_frame, window.end_frame)
        samples = session.audio(start, end)
        if samples is None:
            return "that frame's audio is no longer in the ring"
        model = session.model
        offset = start / g.sample_rate

        def run():
            # The copy waits for the model's lock, which the live worker holds through each window:
            # here, not on the GUI thread.
            if self._net is None or self._net[0] is not model:
                self._net = (model, rfa.float64_copy(model))
            times, values = rfa.frame_sensitivity(model, samples, frame - window.first_frame, self._net[1])
            return session, frame, times + offset, values

        return None if self.start(run) else "a measurement is already running"


class SensitivityDialog(QDialog):
    """Sweeps right (and left) context on recent audio and plots KL and greedy agreement."""

    applyRightContext = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Context sensitivity")
        resize_within_screen(self, 900, 600)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setBackground("w")
        # One legend for both plots, in a row of its own above them: inside a plot it sat on the
        # curves, which reach every corner between them.
        self.legend = pg.LegendItem(colCount=2, pen=pg.mkPen("#999"), brush=pg.mkBrush("w"), labelTextColor="#222")
        self.legend.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        self.plot.addItem(self.legend, row=0, col=0)
        self.plot.ci.layout.setAlignment(self.legend, Qt.AlignRight)
        self.kl_plot = self.plot.addPlot(row=1, col=0, title="mean KL(offline ‖ streamed) per frame")
        self.kl_plot.setLogMode(y=True)
        self.agree_plot = self.plot.addPlot(row=2, col=0, title="greedy symbol agreement with offline (%)")
        self.agree_plot.setXLink(self.kl_plot)
        self.agree_plot.setLabel("bottom", "context (ms)")
        self.curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}
        for side, colour in (("right", "#c0392b"), ("left", "#1f4e79")):
            pen = pg.mkPen(colour, width=2)
            self.curves[side] = (self.kl_plot.plot(pen=pen), self.agree_plot.plot(pen=pen))
            self.legend.addItem(self.curves[side][0], f"{side} context")
        for p in (self.kl_plot, self.agree_plot):
            p.showGrid(x=True, y=True, alpha=0.3)
        self.status = QLabel("Measures on the last seconds of the current run.")
        self.status.setWordWrap(True)
        self.measure = QPushButton("Measure")
        self.apply = QPushButton("Apply recommended right context")
        self.apply.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.measure)
        row.addWidget(self.apply)
        row.addStretch(1)
        box = QVBoxLayout(self)
        box.addWidget(self.plot, 1)
        box.addWidget(self.status)
        box.addLayout(row)
        self.job = BackgroundJob(self)
        self.job.done.connect(self._show)
        self.job.failed.connect(lambda msg: self.status.setText(f"Measurement failed: {msg}"))
        self.apply.clicked.connect(lambda: self.applyRightContext.emit(self._recommended))
        self._recommended = 0.0
        self.session: LiveSession | None = None
        self.measure.clicked.connect(self.run)

    def run(self) -> None:
        s = self.session
        status = s.status if s is not None else None
        if status is None or status.committed_frames < 60:
            self.status.setText("Stream at least a few seconds of speech first.")
            return
        g = s.model.geometry
        end = status.committed_frames * g.jump
        start = max(s.audio_extent()[0], end - int(SWEEP_SECONDS * g.sample_rate))
        start += -start % g.jump  # on the frame grid, inside the ring
        samples = s.audio(start, end)
        if samples is None:
            self.status.setText("The audio moved out of the ring; try again.")
            return
        model = s.model
        n = g.frames(len(samples))
        reach = rfa.sweep_reach(g.frame_ms)
        every = 2
        contexts = rfa.context_grid(g.frame_ms, every=every)
        # Frames in step with the context grid: each window edge then serves many frames, and the
        # sweep costs one model pass per grid step of audio on each side.
        right_frames = list(rfa.sweepable_frames(n, reach, "right")[::every])
        left_frames = list(rfa.sweepable_frames(n, reach, "left")[::every])
        if not right_frames or not left_frames:
            self.status.setText("Stream at least a few seconds of speech first.")
            return

        def sweep():
            right = rfa.context_sensitivity(model, samples, right_frames, contexts, "right")
            left = rfa.context_sensitivity(model, samples, left_frames, contexts, "left")
            return right, left

        self.status.setText(f"Measuring… (one model pass per {every * g.frame_ms:g} ms of audio on each side)")
        self.job.start(sweep)

    def _show(self, result) -> None:
        right, left = result
        for points, side in ((right, "right"), (left, "left")):
            x = np.array([p.context_ms for p in points])
            kl, agree = self.curves[side]
            kl.setData(x, np.maximum([p.mean_kl for p in points], 1e-8))
            agree.setData(x, [100 * p.agreement for p in points])
        recs = rfa.recommendations(right)
        rec, rec95 = recs["agreement_99"], recs["agreement_95"]
        self._recommended = rec if rec is not None else (rec95 or 0.0)
        self.apply.setEnabled(rec is not None or rec95 is not None)
        say = rfa.describe_context
        (a99, kl99), (a95, kl95) = rfa.STRICT, rfa.LOOSE
        self.status.setText(f"Right context for {a99:.0%} agreement and KL ≤ {kl99:g}: {say(rec)}; "
                            f"for {a95:.0%} and KL ≤ {kl95:g}: {say(rec95)}.")


def attach_gradient_toggle(view, probe: GradientProbe, checkbox) -> None:
    """Measure when the toggle is on and a frame is pinned; draw the result on the waveform. A
    result for another frame or run than the one pinned now is dropped, and the pinned one asked
    for; so is a failure."""
    asked: list[tuple[object, int]] = []  # the (session, frame) measured last

    def request() -> None:
        if not checkbox.isChecked():
            view.sensitivity = None
            return
        if view.session is None or view.pinned_frame is None:
            view.hover_label.setText("Click a frame to pin it; its gradient over the window is then drawn in red.")
            return
        if probe.busy:
            return  # asked again when the running measurement ends
        asked[:] = [(view.session, view.pinned_frame)]
        problem = probe.probe(view.session, view.pinned_frame)
        if problem:
            view.hover_label.setText(f"Gradient sensitivity: {problem}.")

    def show(result) -> None:
        session, frame, times, values = result
        if session is not view.session or frame != view.pinned_frame:
            request()
            return
        if checkbox.isChecked():
            view.sensitivity = (frame, times, values)
            view.refresh()

    def failed(message: str) -> None:
        if asked and asked[0] != (view.session, view.pinned_frame):
            request()  # the failure was for a frame no longer pinned
            return
        view.hover_label.setText(f"Gradient sensitivity failed: {message}")

    checkbox.toggled.connect(lambda _: request())
    view.framePinned.connect(lambda _: request())
    probe.done.connect(show)
    probe.failed.connect(failed)
