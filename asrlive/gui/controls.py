"""Control panels: model, audio source, chunking (snapped to frames) and the level meter."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QRadioButton, QSpinBox, QVBoxLayout, QWidget)

from ..audio.devices import DeviceError, InputDevice, list_input_devices
from ..geometry import Geometry
from ..model import EMBEDDED_MODEL_NAME
from ..planner import ChunkPlan, ChunkSettings

EMBEDDED_LABEL = f"Embedded ({EMBEDDED_MODEL_NAME})"
FILE_LABEL_PX = 170  # beside the Open… button in the side panel


class ModelControls(QGroupBox):
    loadRequested = Signal(object, str)  # source (None = embedded), compute device
    browseRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Model", parent)
        self.source = QComboBox()
        self.source.setEditable(True)
        self.source.addItem(EMBEDDED_LABEL)
        self.source.setToolTip("The embedded model, a local model folder, or a Hugging Face hub id "
                               "(e.g. facebook/wav2vec2-base-960h; needs internet unless cached)")
        self.device = QComboBox()
        self.device.addItems(["auto", "cpu", "cuda"])
        self.browse = QPushButton("Folder…")
        self.load = QPushButton("Load")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setMaximumHeight(8)
        self.busy.hide()
        self.status = QLabel("no model loaded")
        self.status.setWordWrap(True)
        self.decoder = QComboBox()
        self.decoder.addItem("Auto", "auto")
        self.decoder.addItem("Greedy", "greedy")
        self.decoder.addItem("Beam search + LM", "beam")
        self.decoder.setToolTip("Beam search weighs close spellings with the model's word language model; "
                                "Auto uses it when the model has one, greedy otherwise. Used from the next Start")
        row = QHBoxLayout()
        row.addWidget(self.device)
        row.addWidget(self.browse)
        row.addWidget(self.load)
        decoder_row = QHBoxLayout()
        decoder_row.addWidget(QLabel("Decoder"))
        decoder_row.addWidget(self.decoder, 1)
        box = QVBoxLayout(self)
        box.addWidget(self.source)
        box.addLayout(row)
        box.addLayout(decoder_row)
        box.addWidget(self.busy)
        box.addWidget(self.status)
        self.load.clicked.connect(self._request)
        self.browse.clicked.connect(self.browseRequested)

    def selected_source(self) -> str | None:
        text = self.source.currentText().strip()
        return None if text in ("", EMBEDDED_LABEL) else text

    def set_source(self, source: str | None) -> None:
        self.source.setCurrentText(source or EMBEDDED_LABEL)

    def decoder_kind(self) -> str:
        return self.decoder.currentData()

    def set_decoder(self, kind: str, has_lm: bool | None = None) -> None:
        """Select ``kind``; ``has_lm`` (once a model is loaded) names the beam entry for what it does."""
        if has_lm is not None:
            self.decoder.setItemText(0, "Auto: beam search + LM" if has_lm else "Auto: greedy (model has no LM)")
            self.decoder.setItemText(2, "Beam search + LM" if has_lm else "Beam search (model has no LM)")
        index = self.decoder.findData(kind)
        if index >= 0:
            self.decoder.setCurrentIndex(index)

    def _request(self) -> None:
        self.loadRequested.emit(self.selected_source(), self.device.currentText())

    def set_loading(self, loading: bool, text: str) -> None:
        self.busy.setVisible(loading)
        self.load.setEnabled(not loading)
        self.browse.setEnabled(not loading)
        self.status.setText(text)


class SourceControls(QGroupBox):
    openFileRequested = Signal()

    SPEEDS = [("real time (1×)", 1.0), ("2×", 2.0), ("4×", 4.0), ("as fast as possible", 0.0)]

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Audio source", parent)
        self.mic = QRadioButton("Microphone")
        self.file = QRadioButton("File")
        self.mic.setChecked(True)
        self.devices = QComboBox()
        self.devices.setMinimumWidth(180)
        self.refresh = QPushButton("↻")
        self.refresh.setToolTip("Refresh the input-device list")
        self.refresh.setMaximumWidth(32)
        self.file_label = QLabel("no file chosen")
        self.file_label.setWordWrap(True)
        self.open = QPushButton("Open…")
        self.speed = QComboBox()
        for text, value in self.SPEEDS:
            self.speed.addItem(text, value)
        self.path: str | None = None
        box = QVBoxLayout(self)
        box.addWidget(self.mic)
        row = QHBoxLayout()
        row.addWidget(self.devices, 1)
        row.addWidget(self.refresh)
        box.addLayout(row)
        box.addWidget(self.file)
        row2 = QHBoxLayout()
        row2.addWidget(self.file_label, 1)
        row2.addWidget(self.open)
        box.addLayout(row2)
        box.addWidget(self.speed)
        self.refresh.clicked.connect(lambda: self.refresh_devices())
        self.open.clicked.connect(self.openFileRequested)

    def refresh_devices(self, keep: str = "", rescan: bool = True) -> None:
        """List the input devices again, keeping the one named ``keep`` (else the current one)
        chosen. Each entry holds its InputDevice: two devices may share a name."""
        current = keep or self.selected_device_name()
        self.devices.clear()
        try:
            devices = list_input_devices(rescan=rescan)
        except (DeviceError, OSError) as exc:
            self.devices.addItem(f"(no devices: {exc})", None)
            return
        if not devices:
            self.devices.addItem("(no input devices: start the sound server, then ↻)", None)
        for d in devices:
            mark = "default — " if d.is_default else ""
            self.devices.addItem(f"{mark}{d.name} [{d.host_api}]", d)
        names = [d.name for d in devices]
        if current in names:
            self.devices.setCurrentIndex(names.index(current))

    def selected_device(self) -> InputDevice | None:
        """The chosen device; None when none is listed."""
        return self.devices.currentData()

    def selected_device_name(self) -> str:
        """What the settings keep: a name, since indices change between sessions."""
        device = self.selected_device()
        return device.name if device is not None else ""

    def set_file(self, path: str) -> None:
        self.path = path
        # The name alone, elided, so a long path cannot widen the side panel; the tooltip has it all.
        name = Path(path).name or path
        self.file_label.setText(self.file_label.fontMetrics().elidedText(name, Qt.ElideMiddle, FILE_LABEL_PX))
        self.file_label.setToolTip(path)
        self.file.setChecked(True)

    def file_speed(self) -> float:
        return float(self.speed.currentData())


class ChunkControls(QGroupBox):
    """Hop and context sizes in ms; every value snaps to whole frames of the model."""

    planChanged = Signal(object)  # ChunkPlan

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Chunking", parent)
        self.geometry_: Geometry | None = None
        self.hop, self.left, self.right = QSpinBox(), QSpinBox(), QSpinBox()
        for spin, lo, hi in ((self.hop, 20, 10000), (self.left, 0, 10000), (self.right, 0, 5000)):
            spin.setRange(lo, hi)
            spin.setSuffix(" ms")
            spin.setSingleStep(20)
            spin.setKeyboardTracking(False)  # apply on Enter/arrows, not on every keystroke
            spin.valueChanged.connect(self._changed)
        self.summary = QLabel("–")
        self.summary.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Hop (chunk)", self.hop)
        form.addRow("Left context", self.left)
        form.addRow("Right context", self.right)
        form.addRow(self.summary)
        self.plan: ChunkPlan | None = None

    def set_values(self, settings: ChunkSettings) -> None:
        for spin, value in ((self.hop, settings.chunk_ms), (self.left, settings.left_ms), (self.right, settings.right_ms)):
            spin.blockSignals(True)
            spin.setValue(int(round(value)))
            spin.blockSignals(False)
        self._changed()

    def set_geometry(self, geometry: Geometry) -> None:
        self.geometry_ = geometry
        step = max(1, int(round(geometry.frame_ms)))
        for spin in (self.hop, self.left, self.right):
            spin.setSingleStep(step)
        self.hop.setMinimum(step)
        self._changed()

    def settings(self) -> ChunkSettings:
        return ChunkSettings(self.hop.value(), self.left.value(), self.right.value())

    def _changed(self) -> None:
        if self.geometry_ is None:
            return
        plan = ChunkPlan.from_settings(self.geometry_, self.settings())
        for spin, ms in ((self.hop, plan.hop_ms), (self.left, plan.left_ms), (self.right, plan.right_ms)):
            if spin.value() != int(round(ms)):
                spin.blockSignals(True)
                spin.setValue(int(round(ms)))
                spin.blockSignals(False)
        self.summary.setText(
            f"{plan.hop_frames} + {plan.left_frames} + {plan.right_frames} frames (hop, left, right)\n"
            f"algorithmic latency {plan.latency_ms:.0f} ms · compute ×{plan.compute_factor:.2f}")
        if plan != self.plan:
            self.plan = plan
            self.planChanged.emit(plan)


class LevelMeter(QGroupBox):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Input level", parent)
        self.bar = QProgressBar()
        self.bar.setRange(-60, 0)
        # The reading sits beside the bar: drawn over it, it is unreadable where the fill ends.
        self.bar.setTextVisible(False)
        self.reading = QLabel()
        self.reading.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        self.reading.setMinimumWidth(self.reading.fontMetrics().horizontalAdvance("-60 dBFS") + 4)
        self.clip = QLabel("clip")
        self.clip.setAlignment(Qt.AlignCenter)
        self.clip.setMinimumWidth(40)
        self.overflow = QLabel("overflows 0")
        row = QHBoxLayout(self)
        row.addWidget(self.bar, 1)
        row.addWidget(self.reading)
        row.addWidget(self.clip)
        row.addWidget(self.overflow)
        self._alarms: tuple[bool, bool] | None = None
        self.show_level(-60.0, False, 0)

    def show_level(self, dbfs: float, clipped: bool, overflows: int) -> None:
        shown = int(max(-60.0, min(0.0, dbfs)))
        self.bar.setValue(shown)
        self.reading.setText(f"{shown} dBFS")
        self.overflow.setText(f"overflows {overflows}")
        # Restyling repolishes the widget, so it happens only when a state flips, not every tick.
        if (clipped, overflows > 0) == self._alarms:
            return
        self._alarms = (clipped, overflows > 0)
        self.clip.setStyleSheet("background:#c0392b; color:white; border-radius:3px" if clipped
                                else "color:#999; border:1px solid #ccc; border-radius:3px")
        self.overflow.setStyleSheet("color:#c0392b" if overflows else "")
