"""The desktop app, offscreen, driven through its widgets with pytest-qt."""

import json
import threading

import numpy as np
import pytest
import soundfile as sf
from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QMessageBox

from asrlive.audio.sources import FileSource
from asrlive.gui.main_window import MainWindow
from asrlive.gui.replay import EMPTY_TITLE
from asrlive.planner import ChunkSettings

FAST = 3  # index of "as fast as possible" in the speed box


def make_window(qtbot, tmp_path, model_dir) -> MainWindow:
    w = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat),
                   initial_model=None if model_dir is None else str(model_dir))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.model is not None, timeout=60000)
    return w


@pytest.fixture
def sentence_wav(tmp_path, spoken_sentence):
    audio, text = spoken_sentence
    path = tmp_path / "sentence.wav"
    sf.write(path, np.concatenate([audio, np.zeros(8000, np.float32)]), 16000)
    return path, text


def stream_file(qtbot, w: MainWindow, path, speed_index: int = FAST) -> None:
    w.source_controls.set_file(str(path))
    w.source_controls.speed.setCurrentIndex(speed_index)
    with qtbot.waitSignal(w.sessionFinished, timeout=120000):
        assert w.start_streaming()


def test_file_mode_shows_what_the_core_transcribes(qtbot, tmp_path, sentence_wav):
    """The embedded model through file mode: the transcript view shows exactly the text the core
    commits for the same file, model, plan and decoder (by default beam search with the model's own
    LM), and it holds the sentence's first and last words (the model reads espeak-ng's voice
    imperfectly: see the spoken_sentence fixture)."""
    from asrlive.transcribe import stream_file as core_stream_file

    path, text = sentence_wav
    w = make_window(qtbot, tmp_path, None)
    stream_file(qtbot, w, path)
    assert w.session.decoder is w.beam and w.beam.lm is not None
    shown = w.transcript.text().strip()
    assert (w.model.backend, w.model.precision) == ("onnxruntime", "float32")  # the app's defaults on a CPU
    expected = core_stream_file(w.model, path, w.session.plan, decoder=w.session.decoder).text
    assert shown and shown == expected
    assert shown.split()[0] == text.split()[0] and shown.split()[-1] == text.split()[-1], shown
    # The latency panel reports the front-end cache the session's windows used.
    reuse = w.session.worker.status.reuse
    assert reuse.front_end_hit_rate > 0.5 and reuse.state_hit_rate == 0
    qtbot.waitUntil(lambda: w.latency.values["reuse"].text() == f"{reuse.front_end_hit_rate:.0%} / 0%", timeout=5000)


def test_decoder_choice_in_the_app_matches_the_core_and_persists(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    """Greedy chosen in the app decodes as the core's greedy decoder does; the choice survives a
    restart; a model without an LM names what Auto and beam search will do."""
    from asrlive.decoding import GREEDY
    from asrlive.transcribe import stream_file as core_stream_file

    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, None)
    assert "LM" in w.model_controls.status.text()
    w.model_controls.set_decoder("greedy")
    stream_file(qtbot, w, path)
    assert w.session.decoder is GREEDY
    expected = core_stream_file(w.model, path, w.session.plan, decoder=GREEDY).text
    assert w.transcript.text().strip() == expected and expected
    w.close()
    again = make_window(qtbot, tmp_path, tiny_model_dir)
    assert again.model_controls.decoder_kind() == "greedy"
    assert again.beam.lm is None and "no LM" in again.model_controls.decoder.itemText(0)


def test_replay_reruns_recent_audio_under_two_plans(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    """After a stream, Replay runs the kept audio under the session's plan and another: both
    transcripts and heatmaps shown, one table row per plan with finite numbers."""
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.show_replay()
    assert _error_dialog(w) is not None  # nothing streamed yet
    _error_dialog(w).close()
    stream_file(qtbot, w, path)
    w.show_replay()
    d = w.replay_dialog
    assert d.isVisible() and d.plans[0].settings() == w.session.plan.settings()
    assert d.plans[1].settings() == ChunkSettings(320, ChunkSettings.left_ms, 320)  # a plan worth comparing
    room = d.screen().availableGeometry()
    assert d.width() <= room.width() and d.height() <= room.height()  # opens inside the screen
    assert [plot.plotItem.titleLabel.text for plot in d.plots] == [EMPTY_TITLE] * 2  # says how to fill them
    d.plans[1].set_values(ChunkSettings(320, 640, 320))
    with qtbot.waitSignal(d.job.done, timeout=120000):
        assert d.run()
    result = d.result
    n_frames = w.model.geometry.frames(len(w.session.audio(*w.session.audio_extent())))
    assert [len(e) for e in result.emissions] == [n_frames, n_frames]
    assert [text.toPlainText() for text in d.texts] == result.texts
    assert [image.image.shape for image in d.maps] == [(len(w.model.vocab), n_frames)] * 2
    assert d.table.rowCount() == 2 and d.table.item(1, 0).text() == "320/640/320"
    assert d.plots[1].plotItem.titleLabel.text == "320/640/320 ms: per-frame probabilities"
    assert all(d.table.item(i, 1).text().endswith("%") for i in range(2))


def _axis_specs(axis) -> tuple[list, list]:
    """pyqtgraph's (tick marks, labels) for what the axis would paint now."""
    from PySide6.QtGui import QImage, QPainter

    image = QImage(10, 10, QImage.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return ticks, texts


def _axis_marks(axis) -> tuple[int, list[str]]:
    """(number of tick marks, label texts) the axis would paint now."""
    ticks, texts = _axis_specs(axis)
    return len(ticks), [text for _, _, text in texts]


def test_idle_view_shows_no_stand_in_data(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    """Before any stream: no zone block or legend, no ticks on the empty log-mel and symbol axes,
    an empty time axis over the visible span and a line saying how to start; then the data's."""
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.show()
    qtbot.waitExposed(w)
    v = w.view
    assert not any(item.isVisible() for item in (v.zone_left, v.zone_hop, v.zone_right, v.zone_legend, v.rf_region))
    assert v.placeholder.isVisible() and "Start a stream" in v.placeholder.toPlainText()
    assert _axis_marks(v.mel_plot.getAxis("left")) == (0, [])
    assert _axis_marks(v.heat_plot.getAxis("left")) == (0, [])
    assert v.wave_plot.viewRange()[0] == pytest.approx([0.0, v.visible_seconds])
    assert "1" in _axis_marks(v.blank_plot.getAxis("bottom"))[1]
    for plot in (v.wave_plot, v.mel_plot, v.heat_plot, v.blank_plot):
        assert "(x" not in plot.getAxis("left").labelString()  # no SI-prefix scale of a made-up range
    stream_file(qtbot, w, path)
    w.on_tick()
    assert not v.placeholder.isVisible()
    assert all(item.isVisible() for item in (v.zone_left, v.zone_hop, v.zone_right, v.zone_legend, v.rf_region))
    assert "20" in _axis_marks(v.mel_plot.getAxis("left"))[1]
    assert "∅ blank" in _axis_marks(v.heat_plot.getAxis("left"))[1]


def test_time_axis_fits_a_finished_stream_shorter_than_it(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    duration = sf.info(str(path)).duration
    assert duration < w.view.visible_seconds
    stream_file(qtbot, w, path)
    w.on_tick()
    assert w.view.wave_plot.viewRange()[0] == pytest.approx([0.0, duration], abs=0.02)
    # Longer than the axis: the axis keeps its span and shows the end.
    w.view.visible_seconds = 1.0
    stream_file(qtbot, w, path)
    w.on_tick()
    assert w.view.wave_plot.viewRange()[0] == pytest.approx([duration - 1.0, duration], abs=0.02)


def test_heatmap_holds_every_frame(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.view.visible_seconds = 60.0
    stream_file(qtbot, w, path)
    w.on_tick()
    expected = w.model.geometry.frames(w.session.ring.written)
    assert w.view.n_frames == expected == w.session.worker.store.n_frames
    image = w.view.heat_image.image
    assert image.shape == (len(w.model.vocab), expected)
    probs = np.exp(w.session.worker.store.all_frames())
    best = probs.argmax(axis=1)
    path = best != w.model.blank_id
    # Greedy-path cells are marked; every other cell shows its probability on 0..254.
    assert (image[best[path], np.flatnonzero(path)] == 255).all()
    mask = np.ones_like(image, bool)
    mask[best[path], np.flatnonzero(path)] = False
    np.testing.assert_allclose(image[mask], (probs.T * 254).astype(np.uint8)[mask], atol=1)


def _shown_char_labels(view) -> list[tuple[float, float, str]]:
    return sorted((item.pos().x(), item.pos().y(), item.toPlainText())
                  for item in view._char_labels if item.isVisible())


def _overprinted_char_labels(view) -> list[tuple[str, str]]:
    """Pairs of shown letters in one row whose glyph advances (at the current scale) touch."""
    from PySide6.QtGui import QFontMetricsF

    x_per_px = view.blank_plot.getViewBox().viewPixelSize()[0]
    m = QFontMetricsF(view._label_font)
    by_row: dict[float, list[tuple[float, float, str]]] = {}
    for x, y, text in _shown_char_labels(view):
        width = m.horizontalAdvance(text)
        by_row.setdefault(round(y, 6), []).append((x / x_per_px - width / 2, x / x_per_px + width / 2, text))
    return [(a[2], b[2]) for row in by_row.values() for a, b in zip(row, row[1:]) if b[0] < a[1]]


def test_character_labels_follow_the_greedy_path_without_overprinting(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.show()
    stream_file(qtbot, w, path)
    w.on_tick()
    best = np.exp(w.session.worker.store.all_frames()).argmax(axis=1)
    runs = [i for i in range(len(best)) if best[i] != w.model.blank_id and (i == 0 or best[i] != best[i - 1])]
    duration = len(best) * w.view.frame_s
    w.view.set_paused(True)  # hold each zoom while the labels are laid out
    shown = {}
    for span in (duration, 0.6, 15.0):
        w.view.wave_plot.setXRange(0, span, padding=0)
        w.on_tick()
        labels = _shown_char_labels(w.view)
        assert not _overprinted_char_labels(w.view)
        for x, _, text in labels:
            sym = w.model.vocab[best[int(x / w.view.frame_s)]]
            assert text == ("␣" if sym in ("|", " ") else sym)
        shown[span] = len([x for x, _, _ in labels if x < span])
    # Zoomed in, every run of a symbol has room for its letter; zoomed out, some give way.
    assert shown[0.6] == len([i for i in runs if (i + 0.5) * w.view.frame_s < 0.6])
    assert 0 < shown[15.0] < shown[duration] < len(runs)


def test_file_named_at_start_plays_once_the_model_has_loaded(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    """`asrlive gui --file F` plays F: nothing to click once the model is in."""
    path, _ = sentence_wav
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    store.setValue("realtime_files", False)  # as fast as possible
    w = MainWindow(store, initial_model=str(tiny_model_dir), initial_file=path, journaling=False)
    qtbot.addWidget(w)
    assert w.source_controls.file.isChecked() and w.source_controls.path == str(path)
    with qtbot.waitSignal(w.sessionFinished, timeout=60000):
        pass
    assert w.session.label.endswith(path.name)
    assert w.session.worker.store.n_frames == w.model.geometry.frames(w.session.ring.written) > 0


class GatedFileSource(FileSource):
    """A file source that sends nothing until the test opens ``gate``, so a test can act on the
    session before the first window runs, whatever the machine's speed."""

    gate = threading.Event()

    def _blocks(self):
        while not self.gate.wait(0.05):
            if self._stop.is_set():  # the window closed before the gate opened
                return iter(())
        return super()._blocks()


def test_chunk_change_while_streaming_applies_to_next_windows(qtbot, tmp_path, sentence_wav, tiny_model_dir,
                                                              monkeypatch):
    path, _ = sentence_wav
    monkeypatch.setattr("asrlive.session.FileSource", GatedFileSource)
    monkeypatch.setattr(GatedFileSource, "gate", threading.Event())
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.chunk_controls.hop.setValue(1000)
    w.chunk_controls.right.setValue(500)
    w.source_controls.set_file(str(path))
    w.source_controls.speed.setCurrentIndex(FAST)
    assert w.start_streaming()
    held, resume = threading.Event(), threading.Event()

    def hold_after_first_window(status) -> None:
        # Runs on the worker thread between windows: it waits there while the test changes the
        # plan, so the change lands before the second window however fast the worker is.
        if status.windows == 1 and not status.finished:
            held.set()
            resume.wait(30)

    w.session.worker.add_listener(hold_after_first_window)
    GatedFileSource.gate.set()
    qtbot.waitUntil(held.is_set, timeout=30000)
    w.chunk_controls.hop.setValue(200)
    w.chunk_controls.right.setValue(100)
    resume.set()
    assert w.session.plan.hop_frames == 10 and w.session.plan.right_frames == 5
    with qtbot.waitSignal(w.sessionFinished, timeout=60000):
        pass
    timings = list(w.session.worker.store.timings)
    total = w.model.geometry.frames(w.session.ring.written)
    assert (timings[0].commit_to - timings[0].commit_from, timings[0].end_frame - timings[0].commit_to) == (50, 25)
    assert len(timings) > 2
    for t in timings[1:]:  # the new plan, clipped only where the stream ends
        assert t.commit_to - t.commit_from == min(10, total - t.commit_from)
        assert t.end_frame == min(t.commit_to + 5, total)
    assert w.session.worker.store.n_frames == total


def test_hover_shows_the_stored_top5(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    w.on_tick()
    store = w.session.worker.store.all_frames()
    frame = len(store) // 2
    info = w.view.frame_info(frame)
    row = np.exp(store[frame])
    expected = np.argsort(row)[::-1][:5]
    assert [p for _, p in info.top] == pytest.approx(row[expected].tolist())
    assert info.time_s == pytest.approx(frame * 0.02)
    w.view.set_paused(True)  # keep the x range still while we point at it
    w.view.wave_plot.setXRange(0, len(store) * 0.02, padding=0)
    scene = w.view.heat_plot.vb.mapViewToScene(QPointF((frame + 0.5) * 0.02, 3.0))
    with qtbot.waitSignal(w.view.frameHovered) as blocker:
        w.view._on_mouse_moved(scene)
    assert blocker.args[0].frame == frame
    assert f"frame {frame} " in w.view.hover_label.text()


def test_click_pauses_and_scrubbing_keeps_range(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    w.view.set_paused(True)
    w.view.wave_plot.setXRange(0.2, 1.2, padding=0)
    w.on_tick()
    x0, x1 = w.view.wave_plot.viewRange()[0]
    assert (round(x0, 3), round(x1, 3)) == (0.2, 1.2)
    assert w.pause_action.isChecked()


def test_save_writes_valid_files(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    committed, _ = w.current_text()
    for suffix in (".txt", ".srt", ".vtt", ".json"):
        w.save_transcript(tmp_path / f"out{suffix}")
    assert (tmp_path / "out.txt").read_text().strip() == committed.strip()
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["text"] == committed and len(record["words"]) == len(committed.split())
    assert all(w_["start"] <= w_["end"] for w_ in record["words"])
    srt = (tmp_path / "out.srt").read_text()
    assert srt.startswith("1\n") and " --> " in srt
    assert (tmp_path / "out.vtt").read_text().startswith("WEBVTT\n")


def test_close_while_streaming_leaves_no_thread(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.source_controls.set_file(str(path))
    w.source_controls.speed.setCurrentIndex(0)  # real time: still running when we close
    assert w.start_streaming()
    qtbot.waitUntil(lambda: w.session.worker.store.n_frames > 0, timeout=30000)
    assert w.session.running
    w.close()
    assert not [t.name for t in threading.enumerate() if t.name.startswith("asrlive")]


def test_stop_keeps_audio_already_captured(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.source_controls.set_file(str(path))
    w.source_controls.speed.setCurrentIndex(0)
    assert w.start_streaming()
    qtbot.waitUntil(lambda: w.session.ring.written > 16000, timeout=30000)
    with qtbot.waitSignal(w.sessionFinished, timeout=30000):
        w.stop_streaming()
    assert w.session.worker.store.n_frames == w.model.geometry.frames(w.session.ring.written)


def _error_dialog(w):
    return next((b for b in w.findChildren(QMessageBox) if b.objectName() == "errorDialog" and b.isVisible()), None)


def test_bad_file_shows_dialog(qtbot, tmp_path, tiny_model_dir):
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all" * 10)
    w.source_controls.set_file(str(bad))
    assert not w.start_streaming()
    qtbot.waitUntil(lambda: _error_dialog(w) is not None, timeout=5000)
    assert "bad.wav" in _error_dialog(w).text()


def test_start_looks_for_devices_again_and_a_device_that_will_not_open_is_a_dialog(qtbot, tmp_path, tiny_model_dir,
                                                                                    monkeypatch):
    """No device was listed when the window opened (no sound server yet); Start lists them again,
    opens the one that is there by its index, and PortAudio's refusal is a dialog, not a traceback."""
    import sounddevice as sd

    from asrlive.audio.devices import InputDevice

    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.source_controls.mic.setChecked(True)
    monkeypatch.setattr("asrlive.gui.controls.list_input_devices", lambda rescan=True: [])
    w.source_controls.refresh_devices()
    assert w.source_controls.selected_device() is None
    server_up = [InputDevice(7, "usbmic", "ALSA", 1, 48000.0, True), InputDevice(8, "usbmic", "JACK", 2, 48000.0, False)]
    monkeypatch.setattr("asrlive.gui.controls.list_input_devices", lambda rescan=True: server_up)
    opened = []

    def refuse(*args, **kwargs):
        opened.append(kwargs["device"])
        raise sd.PortAudioError("Error opening InputStream: Device unavailable")

    monkeypatch.setattr("asrlive.audio.devices.resolve_input_device", lambda spec, rate: (spec, "usbmic", rate))
    monkeypatch.setattr(sd, "InputStream", refuse)
    assert not w.start_streaming()
    assert opened == [7]
    qtbot.waitUntil(lambda: _error_dialog(w) is not None, timeout=5000)
    assert _error_dialog(w).text() == "cannot open input device 'usbmic': Error opening InputStream: Device unavailable"
    assert w.start_button.text() == "Start"
    w.source_controls.devices.setCurrentIndex(1)  # the same name on another host API is told apart
    _error_dialog(w).close()
    assert not w.start_streaming() and opened == [7, 8]


def test_bad_model_shows_dialog_and_keeps_window(qtbot, tmp_path, tiny_model_dir):
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    (tmp_path / "empty").mkdir()
    w.model_controls.set_source(str(tmp_path / "empty"))  # as Folder… does
    w.load_model(str(tmp_path / "empty"), "cpu")
    qtbot.waitUntil(lambda: _error_dialog(w) is not None, timeout=30000)
    assert "config.json" in _error_dialog(w).text()
    assert w.model is not None and w.start_button.isEnabled()
    # The boxes name the model that still runs, not the one that failed.
    assert w.model_controls.selected_source() == str(tiny_model_dir)
    assert w.model_controls.status.text().startswith("still ")


def test_default_geometry_fits_the_screen():
    from PySide6.QtCore import QRect

    from asrlive.gui.main_window import PREFERRED_SIZE, default_geometry

    assert default_geometry(QRect(0, 0, 1600, 1000)) == (QRect(0, 0, 1600, 1000), True)
    assert default_geometry(QRect(0, 0, 1366, 740)) == (QRect(0, 0, 1366, 740), True)
    rect, maximized = default_geometry(QRect(0, 30, 2560, 1410))
    assert not maximized and rect.size() == PREFERRED_SIZE
    assert QRect(0, 30, 2560, 1410).contains(rect) and rect.center() == QRect(0, 30, 2560, 1410).center()


def test_window_at_1600x1000_clips_nothing(qtbot, tmp_path, tiny_model_dir):
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtWidgets import QWidget

    w = make_window(qtbot, tmp_path, tiny_model_dir)
    assert w.minimumSizeHint().width() <= 1366  # a laptop screen, maximized, shows it whole too
    w.setWindowState(Qt.WindowNoState)
    w.setGeometry(QRect(0, 0, 1600, 1000))
    w.show()
    qtbot.waitUntil(lambda: w.size().toTuple() == (1600, 1000) and w.view.isVisible(), timeout=5000)
    assert w.side_scroll.verticalScrollBar().maximum() == 0  # every control shows without scrolling
    inner = w.rect().adjusted(2, 2, -2, -2)  # a border drawn on the window's last pixel looks cut off
    widgets: list[QWidget] = [w.copy_button, w.clear_button, w.save_button, w.present_button, w.confidence_box,
                              w.start_button, w.view.follow_button, w.view.gradient_box, w.latency]
    for widget in widgets:
        rect = QRect(widget.mapTo(w, widget.rect().topLeft()), widget.size())
        assert inner.contains(rect), (type(widget).__name__, rect)


def test_settings_persist(qtbot, tmp_path, tiny_model_dir):
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.chunk_controls.hop.setValue(640)
    w.chunk_controls.right.setValue(300)
    w.confidence_box.setChecked(True)
    w.close()
    w2 = make_window(qtbot, tmp_path, tiny_model_dir)
    assert (w2.chunk_controls.hop.value(), w2.chunk_controls.right.value()) == (640, 300)
    assert w2.confidence_box.isChecked()


def test_settings_store_only_choices_so_new_defaults_reach_old_users(tmp_path):
    from PySide6.QtCore import QSettings

    from asrlive.gui.settings import AppSettings
    from asrlive.planner import ChunkSettings

    old = QSettings(str(tmp_path / "old.ini"), QSettings.IniFormat)  # written by a version that stored every field
    old.setValue("left_ms", 2000.0)
    old.setValue("right_ms", 500.0)
    old.setValue("chunk_ms", 640.0)
    loaded = AppSettings.load(old)
    assert (loaded.left_ms, loaded.right_ms, loaded.chunk_ms) == (ChunkSettings.left_ms, ChunkSettings.right_ms, 640.0)
    loaded.left_ms = 2000.0  # chosen now, so kept
    loaded.save(old)
    again = AppSettings.load(QSettings(str(tmp_path / "old.ini"), QSettings.IniFormat))
    assert (again.left_ms, again.chunk_ms) == (2000.0, 640.0)
    fresh = QSettings(str(tmp_path / "fresh.ini"), QSettings.IniFormat)
    AppSettings(chunk_ms=320.0).save(fresh)
    assert fresh.value("chunk_ms") is not None and fresh.value("left_ms") is None


def test_presentation_mode_and_saving_the_transcript(qtbot, tmp_path, sentence_wav, tiny_model_dir, monkeypatch):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    w.toggle_presentation()
    committed, _ = w.current_text()
    assert w.presentation.isVisible()
    assert committed.split()[-1] in w.presentation.label.text()
    # The name typed without an extension takes the chosen type's: SubRip, not text in "notes".
    monkeypatch.setattr("asrlive.gui.main_window.QFileDialog.getSaveFileName",
                        lambda *args, **kw: (str(tmp_path / "notes"), "SubRip (*.srt)"))
    w._save_dialog()
    assert (tmp_path / "notes.srt").read_text().startswith("1\n00:00:")


def test_long_file_path_does_not_widen_the_side_panel(qtbot, tmp_path, tiny_model_dir):
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    width = w.source_controls.sizeHint().width()
    long_path = str(tmp_path / ("a_very_long_recording_name_without_spaces_" * 4 + ".wav"))
    w.source_controls.set_file(long_path)
    assert w.source_controls.sizeHint().width() <= width
    assert w.source_controls.file_label.toolTip() == long_path and w.source_controls.path == long_path


def test_gradient_toggle_draws_pinned_frame_sensitivity(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    w.on_tick()
    frame = w.view.n_frames // 2
    w.view.set_paused(True)
    w.view.gradient_box.setChecked(True)
    with qtbot.waitSignal(w.gradient_probe.done, timeout=60000) as blocker:
        w.view.pin(frame)
    session, got_frame, times, values = blocker.args[0]
    assert session is w.session and got_frame == frame and values.max() == pytest.approx(1.0)
    # The peak lies near the frame itself.
    peak_t = times[int(np.argmax(values))]
    assert abs(peak_t - (frame + 0.5) * 0.02) < 0.5
    assert w.view.sensitivity_curve.isVisible()


def test_sensitivity_dialog_recommends(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    w.show_sensitivity()
    with qtbot.waitSignal(w.sensitivity_dialog.job.done, timeout=120000):
        w.sensitivity_dialog.measure.click()
    assert "Right context for 99% agreement" in w.sensitivity_dialog.status.text()
    assert len(w.sensitivity_dialog.kl_plot.listDataItems()) == 2
    assert all(len(curve.xData) > 5 for pair in w.sensitivity_dialog.curves.values() for curve in pair)


def test_sensitivity_legend_is_opaque_and_off_the_curves(qtbot):
    from asrlive.gui.analysis import SensitivityDialog

    dialog = SensitivityDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    legend = dialog.legend
    assert [label.text for _, label in legend.items] == ["right context", "left context"]
    assert legend.opts["brush"].color().alpha() == 255
    box = legend.sceneBoundingRect()
    assert box.width() > 50 and box.height() > 10
    for plot in (dialog.kl_plot, dialog.agree_plot):
        assert not box.intersects(plot.vb.sceneBoundingRect())


def test_level_meter_shows_reading_and_alarms(qtbot):
    from asrlive.gui.controls import LevelMeter

    meter = LevelMeter()
    qtbot.addWidget(meter)
    meter.show_level(-23.4, clipped=True, overflows=0)
    assert meter.reading.text() == "-23 dBFS" and meter.bar.value() == -23
    assert "background" in meter.clip.styleSheet() and meter.overflow.styleSheet() == ""
    meter.show_level(-80.0, clipped=False, overflows=2)
    assert meter.reading.text() == "-60 dBFS"
    assert "background" not in meter.clip.styleSheet() and "#c0392b" in meter.overflow.styleSheet()
    assert meter.overflow.text() == "overflows 2"


def _drawn_labels(axis) -> list[tuple[float, str]]:
    """(pixel row, text) of each label the axis would paint now."""
    return [(rect.center().y(), text) for rect, _, text in _axis_specs(axis)[1]]


def _glyphs_overlap(axis, drawn) -> list[tuple[str, str]]:
    """Pairs of drawn labels whose glyphs (not their line boxes) touch."""
    from PySide6.QtGui import QFontMetricsF

    m = QFontMetricsF(axis.style["tickFont"])
    boxes = []
    for y, text in drawn:
        glyphs = m.tightBoundingRect(text)
        baseline = y - m.height() / 2 + m.ascent()
        boxes.append((baseline + glyphs.top(), baseline + glyphs.bottom(), text))
    boxes.sort()
    return [(a[2], b[2]) for a, b in zip(boxes, boxes[1:]) if b[0] < a[1] + 1]


@pytest.mark.parametrize("height", [180, 300, 420, 900])
def test_symbol_axis_labels_never_overprint(qtbot, height):
    """At any height every drawn row label clears its neighbours; rows tall enough get every
    label, and where they are crowded the special tokens (<s>, </s>, <unk>) give way first."""
    import pyqtgraph as pg

    from asrlive.gui.symbol_axis import SymbolAxis, is_special, symbol_label
    from asrlive.vocab import BLANK, CHAR_VOCAB

    vocab = list(CHAR_VOCAB)
    widget = pg.GraphicsLayoutWidget()
    qtbot.addWidget(widget)
    axis = SymbolAxis()
    plot = widget.addPlot(axisItems={"left": axis})
    axis.set_symbols(vocab, CHAR_VOCAB[BLANK])
    axis.setWidth(70)  # as in the app: wide enough for every label
    plot.setYRange(-0.5, len(vocab) - 0.5, padding=0)
    widget.resize(400, height)
    widget.show()
    qtbot.waitUntil(lambda: abs(axis.geometry().height() - plot.vb.height()) < 1 and plot.vb.height() > height / 2,
                    timeout=5000)
    drawn = _drawn_labels(axis)
    texts = [t for _, t in drawn]
    assert not _glyphs_overlap(axis, drawn)
    assert "∅ blank" in texts and "|" not in texts
    labels = [symbol_label(s, s == BLANK) for s in vocab]
    if plot.vb.height() / len(vocab) >= 14:
        assert texts == labels
    # A symbol gives way only to a neighbouring symbol, never to a special token.
    shown = {labels.index(t) for t in texts}
    ordinary = [i for i, s in enumerate(vocab) if s == BLANK or not is_special(s)]
    assert all(shown & {i - 2, i - 1, i + 1, i + 2} & set(ordinary) for i in ordinary if i not in shown)


def test_confidence_colours_match_the_characters_they_colour(qtbot, tmp_path, sentence_wav):
    """Streamed with colours on (appended window by window, a character's colour fixed up when its
    run of frames goes on in the next window), and again after switching colours off and on (one
    rebuild): every committed character carries the colour of its own final posterior."""
    from asrlive.gui.transcript_view import confidence_colour

    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, None)  # the embedded model: real, mixed confidences
    w.confidence_box.setChecked(True)
    w.chunk_controls.hop.setValue(160)  # many windows: many runs cut at a window's end
    stream_file(qtbot, w, path)
    status = w.session.status
    text = w.transcript.text()
    assert text == status.committed_text and len(text) > 10
    expected, chars = [], iter(status.log.chars)
    for ch in text:
        expected.append("" if ch.isspace() else confidence_colour(next(chars).prob))
    assert len(set(expected)) > 1, "the sentence should mix confident and unsure characters"
    assert [c.lower() for c in w.transcript.colours()] == expected
    w.confidence_box.setChecked(False)
    assert set(w.transcript.colours()) == {""}
    w.confidence_box.setChecked(True)
    assert [c.lower() for c in w.transcript.colours()] == expected


def test_runs_and_clear_keep_text_and_words_together(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    """Two runs show on two lines; Clear hides what was shown, and the words saved afterwards are
    exactly the words of the text shown afterwards."""
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    first = w.session.status.committed_text
    stream_file(qtbot, w, path)
    assert w.transcript.text() == first + "\n" + first == w.current_text()[0]
    words = w.all_words()
    assert [x.text for x in words] == (first + " " + first).split()
    assert words[len(first.split())].start >= words[len(first.split()) - 1].end  # one time line
    w.clear_transcript()
    assert w.transcript.text() == "" and w.current_text()[0] == "" and w.all_words() == []
    stream_file(qtbot, w, path)
    assert w.transcript.text() == first and [x.text for x in w.all_words()] == first.split()


def test_transcript_view_keeps_paragraphs_short_and_text_whole(qtbot):
    """Qt lays out a whole paragraph on every change, so a long run is shown in paragraphs of at
    most about PARAGRAPH_CHARS: the text read back is still exactly what was appended."""
    from asrlive.gui.transcript_view import PARAGRAPH_CHARS, TranscriptView
    from asrlive.transcript_history import TextUpdate

    v = TranscriptView()
    qtbot.addWidget(v)
    appended = []
    for i in range(400):
        piece = ("\n" if i == 200 else "") + ("HELLO " if i else "HELLO") + "WORLD"
        v.apply(TextUpdate(piece, (None,) * len(piece), None, " TENTATIVE"), coloured=False)
        appended.append(piece)
    assert v.text() == "".join(appended) + " TENTATIVE"
    blocks = v.toPlainText().split("\n")
    assert len(blocks) > 2 * len("".join(appended)) // (2 * PARAGRAPH_CHARS)
    assert max(len(b) for b in blocks) <= PARAGRAPH_CHARS + len(" TENTATIVE") + 12


def test_no_run_starts_while_a_model_loads(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    """Ctrl+R is disabled with the Start button while another model loads: a run started then
    would stream the old model under the new one's name and plan."""
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.source_controls.set_file(str(path))
    old = w.model
    w.load_model(str(tiny_model_dir), "cpu")
    assert not w.start_button.isEnabled() and not w.start_action.isEnabled()
    w.start_action.trigger()
    assert w.session is None
    assert not w.start_streaming() and w.session is None
    qtbot.waitUntil(lambda: w.model is not old, timeout=60000)
    assert w.start_button.isEnabled() and w.start_action.isEnabled()


def test_a_new_run_follows_live_and_the_dialogs_follow_it(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    """A view paused on one run follows the next live; the sensitivity sweep and the replay act
    on the newest run, opened before it or not."""
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    w.show_sensitivity()
    stream_file(qtbot, w, path)
    first = w.session
    w.show_replay()
    w.view.set_paused(True)
    w.view.pin(w.view.n_frames // 2)
    w.view.sensitivity = (w.view.pinned_frame, np.zeros(2), np.zeros(2))
    assert w.pause_action.isChecked()
    stream_file(qtbot, w, path)
    assert w.session is not first
    assert not w.view.paused and not w.pause_action.isChecked()
    assert w.view.pinned_frame is None and w.view.sensitivity is None
    assert w.sensitivity_dialog.session is w.session and w.replay_dialog.session is w.session


def test_a_gradient_for_a_frame_no_longer_pinned_is_not_drawn(qtbot, tmp_path, sentence_wav, tiny_model_dir):
    path, _ = sentence_wav
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    stream_file(qtbot, w, path)
    w.view.set_paused(True)
    w.view.pin(10)
    w.view.gradient_box.setChecked(True)
    with qtbot.waitSignal(w.gradient_probe.done, timeout=60000):
        w.view.pin(20)  # while frame 10's measurement runs, frame 20's is asked for again afterwards
    qtbot.waitUntil(lambda: w.view.sensitivity is not None, timeout=60000)
    assert w.view.sensitivity[0] == 20
    w.view.set_paused(False)  # follow live: the pin goes, and its curve with it
    assert w.view.sensitivity is None


def app_with_a_transcript(qtbot, tmp_path, model_dir, path) -> MainWindow:
    """The app as run_app makes it (asking before closing), on screen, after streaming ``path``."""
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), initial_model=str(model_dir),
                   journaling=False, confirm_close=True)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.model is not None, timeout=60000)
    w.show()
    stream_file(qtbot, w, path)
    return w


def test_closing_with_a_transcript_never_saved_asks_first(qtbot, tmp_path, sentence_wav, tiny_model_dir, monkeypatch):
    w = app_with_a_transcript(qtbot, tmp_path, tiny_model_dir, sentence_wav[0])
    w.on_tick()
    asked = []

    def answer(button):
        def question(*args, **kwargs):
            asked.append(args[2])
            return button
        monkeypatch.setattr("asrlive.gui.main_window.QMessageBox.question", question)

    answer(QMessageBox.Cancel)
    assert not w.close() and w.isVisible() and "has not been saved" in asked[-1]
    answer(QMessageBox.Save)
    monkeypatch.setattr("asrlive.gui.main_window.QFileDialog.getSaveFileName",
                        lambda *args, **kw: (str(tmp_path / "kept.txt"), "Text (*.txt)"))
    assert w.close() and not w.isVisible()
    assert (tmp_path / "kept.txt").read_text().strip() == w.history.text() != ""
    asked.clear()
    w.show()
    assert w.close() and not asked  # saved, nothing new since: no question


def test_ctrl_c_in_the_terminal_closes_without_asking_and_prints_the_unsaved_text(qtbot, tmp_path, sentence_wav,
                                                                                  tiny_model_dir, capsys):
    w = app_with_a_transcript(qtbot, tmp_path, tiny_model_dir, sentence_wav[0])
    w.close_from_terminal()
    assert not w.isVisible()
    assert capsys.readouterr().out.strip() == w.history.text() != ""


def test_ctrl_c_while_the_close_question_is_open_still_closes(qtbot, tmp_path, sentence_wav, tiny_model_dir,
                                                              monkeypatch, capsys):
    w = app_with_a_transcript(qtbot, tmp_path, tiny_model_dir, sentence_wav[0])

    def ctrl_c_meanwhile(*args, **kwargs):
        w.close_from_terminal()  # its own close is ignored by Qt: this one is under way
        return QMessageBox.Cancel

    monkeypatch.setattr("asrlive.gui.main_window.QMessageBox.question", ctrl_c_meanwhile)
    w.close()
    assert not w.isVisible()
    assert capsys.readouterr().out.strip() == w.history.text() != ""


def test_the_input_device_is_remembered_when_picked_not_when_missing(qtbot, tmp_path, tiny_model_dir, monkeypatch):
    """A saved microphone that is not there this session (unplugged) is still the choice next time."""
    from asrlive.audio.devices import InputDevice

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)
    store.setValue("input_device", "usb headset")
    devices = [InputDevice(0, "built-in", "ALSA", 2, 48000.0, True), InputDevice(1, "webcam", "ALSA", 1, 16000.0, False)]
    monkeypatch.setattr("asrlive.gui.controls.list_input_devices", lambda rescan=True: devices)
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    assert w.source_controls.selected_device_name() == "built-in"
    w.close()
    w = make_window(qtbot, tmp_path, tiny_model_dir)
    assert w.settings.input_device == "usb headset"
    w.source_controls.devices.setCurrentIndex(1)
    w.source_controls.devices.activated.emit(1)  # as a pick by the user
    w.close()
    assert make_window(qtbot, tmp_path, tiny_model_dir).source_controls.selected_device_name() == "webcam"
