"""Replay: the session's recent audio (the ring keeps two minutes) re-run under two chunk plans
side by side: both transcripts, both emission heatmaps, and the benchmark's numbers for that
audio (``asrlive.bench.replay_plans``; CER against the offline transcript of the same audio)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (QDialog, QGridLayout, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSpinBox,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..bench import COLUMNS, Replay, replay_plans
from ..bench_report import HEADERS, format_cell
from ..decoding import DecoderSpec
from ..model import CTCModel
from ..planner import ChunkSettings
from ..session import RING_SECONDS, LiveSession
from .controls import ChunkControls
from .symbol_axis import SymbolAxis
from .jobs import BackgroundJob
from .screen_fit import resize_within_screen

# The offline transcript is the reference here, so the ratio to offline's CER does not apply.
# Plan B until the user sets another: hop 320 / right 320 ms, the low-latency plan the embedded
# model's card measures beside the default, with the default left context.
PLAN_B = ChunkSettings(320.0, ChunkSettings.left_ms, 320.0)
# Until the first run the plots hold nothing; say what fills them.
EMPTY_TITLE = "Run both to see each plan's per-frame probabilities"
SHOWN = [c for c in COLUMNS if c != "system" and not c.startswith("cer_vs_offline")]


class ReplayDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Replay recent audio with other chunk settings")
        resize_within_screen(self, 1200, 760)
        self.job = BackgroundJob(self)
        self.job.done.connect(self._show)
        self.job.failed.connect(self._failed)
        self.session: LiveSession | None = None
        self.decoder: DecoderSpec | None = None
        self.seconds = QSpinBox()
        self.seconds.setRange(1, math.ceil(RING_SECONDS))  # a run asks for at most what is kept
        self.seconds.setValue(60)
        self.seconds.setSuffix(" s")
        self.run_button = QPushButton("Run both")
        self.run_button.clicked.connect(self.run)
        self.status = QLabel("")
        self.status.setWordWrap(True)  # a long offline transcript must not widen the dialog
        self.plans = [ChunkControls(), ChunkControls()]
        self.plans[0].setTitle("Plan A (the session's)")
        self.plans[1].setTitle("Plan B")
        self.plans[1].set_values(PLAN_B)
        self.maps: list[pg.ImageItem] = []
        self.plots: list[pg.PlotWidget] = []
        self.axes: list[SymbolAxis] = []
        self.texts: list[QPlainTextEdit] = []
        grid = QGridLayout()
        for col, controls in enumerate(self.plans):
            axis = SymbolAxis()
            plot = pg.PlotWidget(axisItems={"left": axis})
            plot.setLabel("bottom", "time (s)")
            plot.setTitle(EMPTY_TITLE)
            image = pg.ImageItem(axisOrder="row-major")
            image.setLookupTable(pg.colormap.get("viridis").getLookupTable())
            plot.addItem(image)
            text = QPlainTextEdit()
            text.setReadOnly(True)
            text.setPlaceholderText("This plan's transcript of the replayed audio")
            text.setMaximumHeight(110)
            grid.addWidget(controls, 0, col)
            grid.addWidget(plot, 1, col)
            grid.addWidget(text, 2, col)
            self.maps.append(image)
            self.plots.append(plot)
            self.axes.append(axis)
            self.texts.append(text)
        grid.setRowStretch(1, 1)
        self.table = QTableWidget(0, len(SHOWN))
        self.table.setHorizontalHeaderLabels([HEADERS[c] for c in SHOWN])
        self.table.verticalHeader().hide()
        self.table.setFixedHeight(100)
        self.table.resizeColumnsToContents()
        top = QHBoxLayout()
        top.addWidget(QLabel("Replay the last"))
        top.addWidget(self.seconds)
        top.addWidget(self.run_button)
        top.addWidget(self.status, 1)
        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addLayout(grid, 1)
        box.addWidget(self.table)
        self.result: Replay | None = None

    def follow(self, session: LiveSession, decoder: DecoderSpec) -> None:
        """Replay ``session`` (the newest run) from now on; its plan is plan A."""
        self.session, self.decoder = session, decoder
        for controls in self.plans:
            controls.set_geometry(session.model.geometry)
        self.plans[0].set_values(session.plan.settings())

    def open_for(self, session: LiveSession, decoder: DecoderSpec) -> None:
        self.follow(session, decoder)
        g = session.model.geometry
        oldest, newest = session.audio_extent()
        kept_s = (newest - oldest) / g.sample_rate
        self.status.setText(f"{kept_s:.1f} s of audio kept")
        if self.result is None:  # empty plots on the scales a run will fill
            for plot, axis in zip(self.plots, self.axes):
                axis.set_symbols(session.model.vocab, session.model.blank_id)
                plot.setRange(xRange=(0, kept_s), yRange=(-0.5, len(session.model.vocab) - 0.5), padding=0)
        self.show()
        self.raise_()

    def run(self) -> bool:
        session, plans = self.session, [c.plan for c in self.plans]
        if session is None or None in plans:
            return False
        oldest, newest = session.audio_extent()
        start = max(oldest, newest - self.seconds.value() * session.model.sample_rate)
        audio = session.audio(start, newest)
        if audio is None or not len(audio):
            self.status.setText("no audio kept to replay")
            return False
        model, decoder = session.model, self.decoder
        if not self.job.start(lambda: (model, replay_plans(model, audio, plans, decoder))):
            return False
        self.run_button.setEnabled(False)
        self.status.setText(f"running {len(audio) / model.sample_rate:.1f} s of audio under both plans…")
        return True

    def _show(self, ran: tuple[CTCModel, Replay]) -> None:
        model, result = ran  # the model it ran on: the session may have changed since
        self.result = result
        self.run_button.setEnabled(True)
        self.status.setText(f"offline transcript (the reference for CER): {result.offline_text[:120]}")
        dt = model.geometry.frame_seconds
        for plot, image, axis, text, lp, words, row in zip(self.plots, self.maps, self.axes, self.texts,
                                                          result.emissions, result.texts, result.rows):
            plot.setTitle(f"{row.plan} ms: per-frame probabilities")
            axis.set_symbols(model.vocab, model.blank_id)
            image.setImage(np.exp(lp).T if len(lp) else np.zeros((len(model.vocab), 1)), levels=(0, 1))
            image.setRect(QRectF(0, -0.5, max(1, len(lp)) * dt, len(model.vocab)))
            plot.autoRange(padding=0)  # the empty plots' fixed scales must not outlive them
            text.setPlainText(words)
        self.table.setRowCount(len(result.rows))
        for i, row in enumerate(result.rows):
            for j, key in enumerate(SHOWN):
                self.table.setItem(i, j, QTableWidgetItem(format_cell(key, getattr(row, key))))
        self.table.resizeColumnsToContents()

    def _failed(self, message: str) -> None:
        self.run_button.setEnabled(True)
        self.status.setText(f"replay failed: {message}")
