"""The main window: wires controls, the streaming session, the views and the GUI timer."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSettings, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QApplication, QCheckBox, QFileDialog, QHBoxLayout, QMainWindow, QMessageBox,
                               QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget)

from ..audio.devices import DeviceError
from ..audio.files import AudioFileError, file_info
from ..decoder import TimedWord
from ..decoding import DecoderSpec, decoder_spec, for_kind, model_folder
from ..export import FORMATS, render, write_atomic
from ..journal import pending_journals, settle
from ..lm import LMError
from ..model import DEFAULT_BACKEND, DEFAULT_PRECISION, PRECISIONS, CTCModel, ModelLoadError, embedded_model_dir, load_model
from ..planner import ChunkPlan, ChunkSettings
from ..session import LiveSession
from ..transcript_history import TextUpdate, TranscriptHistory
from .controls import ChunkControls, LevelMeter, ModelControls, SourceControls
from .latency_panel import LatencyPanel
from .analysis import GradientProbe, SensitivityDialog, attach_gradient_toggle
from .jobs import BackgroundJob
from .replay import ReplayDialog
from .settings import AppSettings, load_geometry_bytes
from .screen_fit import room_for_window
from .stream_view import StreamView
from .transcript_view import PresentationWindow, TranscriptView

FRAME_INTERVAL_MS = 33     # ~30 Hz redraw of the plots
TEXT_EVERY_N_FRAMES = 3    # ~10 Hz for text, level and latency
PREFERRED_SIZE = QSize(1600, 1000)
WINDOW_MARGIN_PX = 6


def default_geometry(available: QRect) -> tuple[QRect, bool]:
    """Where the window opens when no geometry was saved: (rect, maximized). Centred at the preferred
    size where the screen has room for it and a frame; elsewhere the whole available area, maximized
    so that a window manager fits its frame inside the screen too (and without one, as on a bare X
    server, the rect alone fills the screen)."""
    room = room_for_window(available.size())
    if room.width() >= PREFERRED_SIZE.width() and room.height() >= PREFERRED_SIZE.height():
        rect = QRect(QPoint(0, 0), PREFERRED_SIZE)
        rect.moveCenter(available.center())
        return rect, False
    return QRect(available), True


class MainWindow(QMainWindow):
    sessionFinished = Signal()

    def __init__(self, settings_store: QSettings | None = None, initial_model: str | None = None,
                 journaling: bool = True, initial_file: Path | str | None = None, confirm_close: bool = False):
        """``initial_file`` is played as soon as the model has loaded, as one named on the command
        line. ``confirm_close``: closing asks first when the transcript has text never saved (the
        app on a screen; not a window driven by a script or a signal)."""
        super().__init__()
        self.journaling = journaling
        self.confirm_close = confirm_close
        self._print_unsaved = False  # closing from the terminal: unsaved text goes to stdout
        self._saved_text = ""
        self.setWindowTitle("asrlive")
        self.store = settings_store or QSettings("asrlive", "asrlive")
        self.settings = AppSettings.load(self.store)
        self.model: CTCModel | None = None
        self.beam = DecoderSpec("beam")  # beam search with the loaded model's own LM, if it has one
        self.session: LiveSession | None = None
        self.history = TranscriptHistory()
        self._tick = 0
        self._clip_until = 0.0
        self._reported_error = False
        self._reported_journal = False

        self.model_controls = ModelControls()
        self.source_controls = SourceControls()
        self.chunk_controls = ChunkControls()
        self.level = LevelMeter()
        self.latency = LatencyPanel()
        self.start_button = QPushButton("Start")
        self.start_button.setMinimumHeight(36)
        side = QWidget()
        side_box = QVBoxLayout(side)
        for w in (self.model_controls, self.source_controls, self.chunk_controls, self.start_button,
                  self.level, self.latency):
            side_box.addWidget(w)
        side_box.addStretch(1)
        self.side_scroll = scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(330)

        self.view = StreamView(visible_seconds=self.settings.visible_seconds)
        self.transcript = TranscriptView()
        self.confidence_box = QCheckBox("Confidence colours")
        self.confidence_box.setChecked(self.settings.confidence_colours)
        self.confidence_box.toggled.connect(self._redraw_transcript)
        buttons = QHBoxLayout()
        self.copy_button = QPushButton("Copy")
        self.clear_button = QPushButton("Clear")
        self.save_button = QPushButton("Save…")
        self.present_button = QPushButton("Presentation")
        for b in (self.copy_button, self.clear_button, self.save_button, self.present_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.confidence_box)
        lower = QWidget()
        lower_box = QVBoxLayout(lower)
        lower_box.setContentsMargins(0, 0, 0, 0)
        lower_box.addWidget(self.transcript, 1)
        lower_box.addLayout(buttons)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(self.view)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        panes = QSplitter(Qt.Horizontal)
        panes.addWidget(scroll)
        panes.addWidget(splitter)
        panes.setStretchFactor(1, 1)
        central = QWidget()
        central_box = QVBoxLayout(central)
        # Flush against the window's edges, the buttons' outer borders were cut off.
        central_box.setContentsMargins(WINDOW_MARGIN_PX, WINDOW_MARGIN_PX, WINDOW_MARGIN_PX, WINDOW_MARGIN_PX)
        central_box.addWidget(panes)
        self.setCentralWidget(central)
        self.presentation = PresentationWindow(self)

        self.loader = BackgroundJob(self, expected=(ModelLoadError, LMError))
        self.loader.done.connect(self._on_model_loaded)
        self.loader.failed.connect(self._on_model_failed)
        self.model_controls.loadRequested.connect(self.load_model)
        self.model_controls.browseRequested.connect(self._browse_model)
        self.source_controls.openFileRequested.connect(self._choose_file)
        # Saved when picked, not at close: a microphone unplugged for one session stays the choice.
        self.source_controls.devices.activated.connect(
            lambda _: setattr(self.settings, "input_device", self.source_controls.selected_device_name()))
        self.chunk_controls.planChanged.connect(self._on_plan_changed)
        self.start_button.clicked.connect(self.toggle_streaming)
        self.copy_button.clicked.connect(self.copy_transcript)
        self.clear_button.clicked.connect(self.clear_transcript)
        self.save_button.clicked.connect(self._save_dialog)
        self.present_button.clicked.connect(self.toggle_presentation)
        self.view.pausedChanged.connect(self._on_paused)
        self.gradient_probe = GradientProbe(self)
        attach_gradient_toggle(self.view, self.gradient_probe, self.view.gradient_box)
        self.sensitivity_dialog = SensitivityDialog(self)
        self.replay_dialog = ReplayDialog(self)
        self.sensitivity_dialog.applyRightContext.connect(lambda ms: self.chunk_controls.right.setValue(int(round(ms))))
        self._build_menus()
        self._set_start_enabled(False)

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_INTERVAL_MS)
        self.timer.timeout.connect(self.on_tick)
        self.timer.start()

        self.chunk_controls.set_values(ChunkSettings(self.settings.chunk_ms, self.settings.left_ms, self.settings.right_ms))
        self.model_controls.device.setCurrentText(self.settings.compute_device)
        self.model_controls.set_decoder(self.settings.decoder)
        self.source_controls.refresh_devices(self.settings.input_device, rescan=False)
        index = next((i for i, (_, v) in enumerate(SourceControls.SPEEDS)
                      if v == (0.0 if not self.settings.realtime_files else self.settings.file_speed)), 0)
        self.source_controls.speed.setCurrentIndex(index)
        geometry = load_geometry_bytes(self.store)
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            rect, maximized = default_geometry(self.screen().availableGeometry())
            self.setGeometry(rect)
            if maximized:
                self.setWindowState(Qt.WindowMaximized)
        self._play_when_loaded = initial_file is not None
        if initial_file is not None:
            self.source_controls.set_file(str(initial_file))
        source = initial_model if initial_model is not None else (self.settings.model or None)
        self.model_controls.set_source(source)
        self.load_model(source, self.settings.compute_device)
        self.recovery_box: QMessageBox | None = None
        QTimer.singleShot(0, self._offer_recovery)

    def _offer_recovery(self) -> None:
        """A run that crashed or was killed left committed text in its journal: offer it back."""
        pending = pending_journals()
        if not pending:
            return
        words = sum(len(p.text.split()) for p in pending)
        box = QMessageBox(QMessageBox.Question, "Recover transcript",
                          f"{len(pending)} interrupted run(s) left {words} committed words "
                          f"(latest from {pending[-1].started}). Recover them into the transcript?",
                          QMessageBox.Yes | QMessageBox.No, self)
        box.setObjectName("recoveryDialog")

        def answered(button) -> None:
            if box.standardButton(button) == QMessageBox.Yes:
                for p in pending:
                    self.history.add_recovered(p.text)
                self._redraw_transcript()
            for p in pending:
                settle(p)

        box.buttonClicked.connect(answered)
        self.recovery_box = box
        box.open()

    # -- menus and shortcuts ------------------------------------------------------------------
    def _build_menus(self) -> None:
        def action(menu, text, shortcut, slot, checkable=False):
            act = QAction(text, self)
            act.setShortcut(QKeySequence(shortcut))
            act.setCheckable(checkable)
            act.triggered.connect(slot)
            menu.addAction(act)
            self.addAction(act)
            return act

        file_menu = self.menuBar().addMenu("&File")
        action(file_menu, "Open audio file…", "Ctrl+O", self._choose_file)
        action(file_menu, "Save transcript…", "Ctrl+S", self._save_dialog)
        file_menu.addSeparator()
        action(file_menu, "Quit", "Ctrl+Q", self.close)
        controls = self.menuBar().addMenu("&Controls")
        self.start_action = action(controls, "Start / Stop", "Ctrl+R", self.toggle_streaming)
        action(controls, "Copy transcript", "Ctrl+Shift+C", self.copy_transcript)
        action(controls, "Clear transcript", "Ctrl+Shift+X", self.clear_transcript)
        self.pause_action = action(controls, "Pause / follow view", "Ctrl+P",
                                   lambda: self.view.set_paused(not self.view.paused), checkable=True)
        action(controls, "Presentation mode", "F11", self.toggle_presentation)
        analysis = self.menuBar().addMenu("&Analysis")
        action(analysis, "Context sensitivity…", "Ctrl+K", self.show_sensitivity)
        action(analysis, "Replay recent audio…", "Ctrl+Shift+R", self.show_replay)
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction("Keyboard shortcuts", self._show_shortcuts)

    def _show_shortcuts(self) -> None:
        lines = [f"{a.text()}: {a.shortcut().toString()}" for a in self.actions() if not a.shortcut().isEmpty()]
        QMessageBox.information(self, "Keyboard shortcuts", "\n".join(lines))

    # -- model -----------------------------------------------------------------------------------
    def _set_start_enabled(self, enabled: bool) -> None:
        """The Start/Stop button and its shortcut (Ctrl+R) together."""
        self.start_button.setEnabled(enabled)
        self.start_action.setEnabled(enabled)

    def load_model(self, source: str | None, device: str) -> None:
        if self.session is not None and self.session.running:
            self._error("Stop streaming before loading another model.")
            return
        if self.loader.busy:
            self._error("A model is still loading; wait for it before loading another.")
            return
        self._set_start_enabled(False)
        self.model_controls.set_loading(True, f"loading {source or 'the embedded model'}…")
        # The model's language model is read with it, off the GUI thread; a broken one fails the load.
        self.loader.start(lambda: (load_model(source, device=device, backend=DEFAULT_BACKEND,
                                              int8=PRECISIONS[DEFAULT_PRECISION]),
                                   decoder_spec("beam", None, model_folder(source))))

    def _on_model_loaded(self, loaded: tuple[CTCModel, DecoderSpec]) -> None:
        model, self.beam = loaded
        self.model = model
        g = model.geometry
        self.model_controls.set_loading(False, self._model_status())
        self.model_controls.set_decoder(self.model_controls.decoder_kind(), has_lm=self.beam.lm is not None)
        self.settings.model = "" if model.name == str(_embedded_name()) else model.name
        self.settings.compute_device = self.model_controls.device.currentText()
        self.chunk_controls.set_geometry(g)
        self._set_start_enabled(True)
        if self._play_when_loaded:
            self._play_when_loaded = False
            self.start_streaming()

    def _model_status(self) -> str:
        model, g = self.model, self.model.geometry
        lm = f"; LM {len(self.beam.lm.words):,} words" if self.beam.lm else ""
        return (f"{Path(model.name).name or model.name} on {model.device}"
                f" ({'ONNX Runtime' if model.backend == 'onnxruntime' else 'torch'}, {model.precision}): conv RF {g.rf} "
                f"samples ({g.rf * 1000 / g.sample_rate:.0f} ms), frame {g.frame_ms:.0f} ms{lm}")

    def _on_model_failed(self, message: str) -> None:
        self._play_when_loaded = False  # a model loaded later by hand should not start playing unasked
        if self.model is None:
            self.model_controls.set_loading(False, "model not loaded")
        else:
            # The boxes show the model that runs, not the one that failed to load.
            self.model_controls.set_source(self.settings.model or None)
            self.model_controls.device.setCurrentText(self.settings.compute_device)
            self.model_controls.set_loading(False, f"still {self._model_status()} (the new one did not load)")
        self._set_start_enabled(self.model is not None)
        self._error(message)

    def _browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder", self.settings.last_folder)
        if folder:
            self.model_controls.set_source(folder)
            self.load_model(folder, self.model_controls.device.currentText())

    # -- streaming --------------------------------------------------------------------------------
    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Audio file", self.settings.last_folder,
                                              "Audio (*.wav *.flac *.ogg *.mp3);;All files (*)")
        if path:
            self.settings.last_folder = str(Path(path).parent)
            self.source_controls.set_file(path)

    def toggle_streaming(self) -> None:
        if self.session is not None and self.session.running:
            self.stop_streaming()
        else:
            self.start_streaming()

    def start_streaming(self) -> bool:
        if self.model is None or self.chunk_controls.plan is None or self.loader.busy:
            self._error("No model is loaded yet." if self.model is None else "A model is still loading.")
            return False
        if self.session is not None and self.session.running:
            return False
        decoder = for_kind(self.model_controls.decoder_kind(), self.beam)
        session = LiveSession(self.model, self.chunk_controls.plan, journal=self.journaling, decoder=decoder)
        try:
            if self.source_controls.file.isChecked():
                if not self.source_controls.path:
                    raise AudioFileError("choose an audio file first (File → Open audio file…)")
                file_info(Path(self.source_controls.path))
                speed = self.source_controls.file_speed()
                session.start_file(self.source_controls.path, realtime=speed > 0, speed=speed or 1.0)
            else:
                if self.source_controls.selected_device() is None:
                    # None listed when the app opened (no sound server yet): look again before failing.
                    self.source_controls.refresh_devices()
                device = self.source_controls.selected_device()
                session.start_mic(None if device is None else device.index)
        except (AudioFileError, DeviceError, OSError, RuntimeError) as exc:
            self._error(str(exc))
            return False
        self.session = session
        self.history.start_run()
        self._reported_error = False
        self._reported_journal = False
        self.view.reset(session)
        self.sensitivity_dialog.session = session
        self.replay_dialog.follow(session, decoder)
        self.start_button.setText("Stop")
        self.source_controls.refresh.setEnabled(False)  # a PortAudio rescan would kill the stream
        return True

    def stop_streaming(self) -> None:
        """Stop capture; the audio already captured is still transcribed."""
        if self.session is not None:
            self.session.stop()
            self.start_button.setText("Stopping…")
            self._set_start_enabled(False)

    def _on_plan_changed(self, plan: ChunkPlan) -> None:
        s = self.chunk_controls.settings()
        self.settings.chunk_ms, self.settings.left_ms, self.settings.right_ms = s.chunk_ms, s.left_ms, s.right_ms
        if self.session is not None and self.session.running:
            self.session.set_plan(plan)

    # -- timer -----------------------------------------------------------------------------------
    def on_tick(self) -> None:
        session = self.session
        if session is None:
            return
        self.view.refresh()
        self._tick += 1
        finished = session.status is not None and not session.running
        if self._tick % TEXT_EVERY_N_FRAMES == 0 or finished:
            self._update_text()
            self._update_level()
            self.latency.show_stats(session.latency())
        if session.journal_error and not self._reported_journal:
            self._reported_journal = True
            self._error(f"{session.journal_error}. Streaming goes on, but the transcript is not saved as it "
                        "comes: save it before closing.")
        if session.error and not self._reported_error:
            self._reported_error = True
            session.stop()
            self._error(f"Streaming stopped: {session.error}. The transcript so far is kept.")
        if finished and self.start_button.text() != "Start":
            self.start_button.setText("Start")
            self._set_start_enabled(True)
            self.source_controls.refresh.setEnabled(True)
            self.sessionFinished.emit()

    def current_text(self) -> tuple[str, str]:
        """(committed, tentative) of everything since the last Clear."""
        status = self.session.status if self.session is not None else None
        return self.history.text(), "" if status is None else status.tentative_text

    def _update_text(self) -> None:
        status = self.session.status if self.session is not None else None
        if status is not None:
            self._show_update(self.history.update(status))

    def _show_update(self, update: TextUpdate) -> None:
        self.transcript.apply(update, self.confidence_box.isChecked())
        self.presentation.apply(update)

    def _redraw_transcript(self) -> None:
        """The whole transcript drawn again (colours switched, recovered text put before the run):
        the one update that costs the whole transcript."""
        update = self.history.full_update()
        status = self.session.status if self.session is not None else None
        tentative = status.tentative_text if status is not None else ""
        whole = TextUpdate(update.text, update.probs, None, tentative)
        self.transcript.reset()
        self.transcript.apply(whole, self.confidence_box.isChecked())
        self.presentation.reset(whole)

    def _update_level(self) -> None:
        level = self.session.input_level()
        now = time.monotonic()
        if level.peak >= 0.999:
            self._clip_until = now + 1.0
        self.level.show_level(level.rms_dbfs, now < self._clip_until, level.input_overflows)

    # -- transcript actions ----------------------------------------------------------------------
    def copy_transcript(self) -> None:
        committed, _ = self.current_text()
        QGuiApplication.clipboard().setText(committed)

    def clear_transcript(self) -> None:
        self._update_text()  # what is committed now is what Clear hides
        self.history.clear()
        self.transcript.reset()
        self.presentation.reset()

    def all_words(self) -> list[TimedWord]:
        """Words since the last Clear, on one time line across runs."""
        return self.history.words()

    def save_transcript(self, path: Path) -> None:
        """Write the transcript in the format its suffix names (.txt, .srt, .vtt, .json)."""
        committed, words = self.history.text(), self.history.words()
        fmt = path.suffix.lower().lstrip(".")
        record = {"text": committed, "words": [w.as_dict() for w in words], "model": self.model.name if self.model else None}
        write_atomic(path, render(fmt if fmt in FORMATS else "txt", committed, words, record))
        self._saved_text = committed

    def _save_dialog(self) -> bool:
        """Ask where, then save; whether the transcript was saved."""
        path, chosen = QFileDialog.getSaveFileName(
            self, "Save transcript", self.settings.last_folder,
            "Text (*.txt);;SubRip (*.srt);;WebVTT (*.vtt);;JSON with word times (*.json)")
        if not path:
            return False
        target = Path(path)
        if target.suffix.lower().lstrip(".") not in FORMATS and "*." in chosen:
            # A name typed without an extension takes the chosen type's, so the format is the one picked.
            target = target.with_name(target.name + chosen[chosen.index("*.") + 1:chosen.index(")")])
            # The dialog asked about replacing the name as typed, not this one.
            if target.exists() and QMessageBox.question(
                    self, "Save transcript", f"{target.name} already exists. Replace it?") != QMessageBox.Yes:
                return False
        try:
            self.save_transcript(target)
        except OSError as exc:
            self._error(f"Could not save {target}: {exc.strerror or exc}")
            return False
        return True

    def toggle_presentation(self) -> None:
        if self.presentation.isVisible():
            self.presentation.close()
        else:
            self.presentation.showFullScreen()

    def show_sensitivity(self) -> None:
        self.sensitivity_dialog.session = self.session
        self.sensitivity_dialog.show()
        self.sensitivity_dialog.raise_()

    def show_replay(self) -> None:
        if self.session is None:
            self._error("Nothing to replay yet: stream from the microphone or a file first.")
            return
        self.replay_dialog.open_for(self.session, self.session.decoder)

    def _on_paused(self, paused: bool) -> None:
        self.pause_action.setChecked(paused)

    # -- errors and shutdown -----------------------------------------------------------------------
    def _error(self, message: str) -> None:
        box = QMessageBox(QMessageBox.Warning, "asrlive", message, QMessageBox.Ok, self)
        box.setObjectName("errorDialog")
        box.open()  # not exec(): the GUI timer keeps running behind the dialog

    def _may_close(self) -> bool:
        """Whether the window may close now: with ``confirm_close``, a transcript with text never
        saved is saved or given up first (or the close is cancelled)."""
        if not self.confirm_close:
            return True
        committed = self._unsaved_text()
        if not committed:
            return True
        answer = QMessageBox.question(
            self, "Close asrlive", f"The transcript ({len(committed.split())} words) has not been saved. "
            "Save it before closing?", QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if not self.confirm_close:  # Ctrl+C in the terminal while the question was open
            return True
        if answer == QMessageBox.Save:
            return self._save_dialog()
        return answer == QMessageBox.Discard

    def _unsaved_text(self) -> str:
        """The committed transcript as of the run's latest snapshot, or "" when it was saved as it is."""
        self._update_text()
        committed = self.history.text()
        return "" if committed == self._saved_text else committed

    def close_from_terminal(self) -> None:
        """Ctrl+C in the terminal: close without a question (the terminal may be all the user
        sees, as with a virtual screen); a transcript never saved goes to stdout instead."""
        self.confirm_close = False
        self._print_unsaved = True
        question = QApplication.activeModalWidget()
        if question is not None:
            # A close already asks (a close inside it would be ignored): its answer is dropped
            # and that close goes on.
            question.reject()
        else:
            self.close()

    def closeEvent(self, event) -> None:
        if not self._may_close():
            event.ignore()
            return
        # Gone from the screen at once; the waits below can take as long as a replay still running.
        for window in (self.replay_dialog, self.sensitivity_dialog, self.presentation, self):
            window.hide()
        self._play_when_loaded = False  # a load ending during the waits must not start a run
        self.timer.stop()
        if self.session is not None:
            self.session.abort()
        self.loader.wait()
        self.gradient_probe.wait()
        self.sensitivity_dialog.job.wait()
        self.replay_dialog.job.wait()
        self.presentation.close()
        self.settings.confidence_colours = self.confidence_box.isChecked()
        self.settings.decoder = self.model_controls.decoder_kind()
        speed = self.source_controls.file_speed()
        self.settings.realtime_files = speed > 0
        self.settings.file_speed = speed or 1.0
        self.settings.save(self.store)
        self.store.setValue("window_geometry", self.saveGeometry())
        self.store.sync()
        if self._print_unsaved and (committed := self._unsaved_text()):  # after the abort: the run's last words
            print(committed, flush=True)
        super().closeEvent(event)


def _embedded_name() -> str:
    return str(embedded_model_dir())
