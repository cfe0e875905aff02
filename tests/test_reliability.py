"""Nothing lost, nothing unsafe: journal and recovery after kill -9, atomic exports, safe model
loading, bounded memory under back-pressure and for very long files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from asrlive.audio.ring import AudioRing
from asrlive.audio.sources import ArraySource
from asrlive.cli import main
from asrlive.export import write_atomic
from asrlive.journal import TranscriptJournal, pending_journals, read_journal
from asrlive.model import ModelLoadError, load_model
from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.transcribe import stream_file
from asrlive.worker import StreamWorker
from tests.conftest import make_tiny_model


def test_journal_survives_kill_9_and_is_offered_back(tmp_path, tiny_model_dir, tiny_model):
    wav = tmp_path / "long.wav"
    sf.write(wav, (np.random.default_rng(0).standard_normal(16000 * 30) * 0.2).astype(np.float32), 16000)
    state = tmp_path / "state"
    script = textwrap.dedent(f"""
        from asrlive.model import load_model
        from asrlive.planner import ChunkPlan, ChunkSettings
        from asrlive.session import LiveSession
        m = load_model({str(tiny_model_dir)!r}, device="cpu")
        s = LiveSession(m, ChunkPlan.from_settings(m.geometry, ChunkSettings(200, 500, 100)), journal=True)
        s.start_file({str(wav)!r}, realtime=True, speed=4.0)
        s.wait(120)
    """)
    env = {**os.environ, "ASRLIVE_STATE_DIR": str(state)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    folder = state / "journal"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for a few committed windows on disk
        files = list(folder.glob("*.jsonl")) if folder.exists() else []
        if files and len(read_journal(files[0])[1]) > 20:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    pending = pending_journals(folder)
    assert len(pending) == 1
    # What was journaled is exactly a prefix of what the same stream commits.
    full = stream_file(tiny_model, wav, ChunkPlan.from_settings(tiny_model.geometry, ChunkSettings(200, 500, 100)))
    assert len(pending[0].text) > 20 and full.text.startswith(pending[0].text)
    out = subprocess.run([sys.executable, "-m", "asrlive", "recover", "--settle"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert pending[0].text in out.stdout
    assert pending_journals(folder) == []  # settled: not offered again


def _died(journal: TranscriptJournal) -> None:
    """The journal's file closed without the closing line, as when its process dies."""
    journal._file.close()


def test_clean_stop_closes_the_journal(tmp_path):
    journal = TranscriptJournal("test", "m", tmp_path)
    journal.append("HELLO", 1.0)
    journal.append(" WORLD", 2.0)
    journal.close()
    assert pending_journals(tmp_path) == []


def test_a_run_still_going_on_is_not_offered_back_until_it_dies(tmp_path):
    """Another asrlive's live journal is not pending: recovering (and settling) it there would
    leave nothing to recover if that run then crashed."""
    journal = TranscriptJournal("test", "m", tmp_path)
    journal.append("HELLO WORLD", 1.0)
    assert pending_journals(tmp_path) == []
    _died(journal)
    assert [p.text for p in pending_journals(tmp_path)] == ["HELLO WORLD"]


def test_gui_offers_recovery(qtbot, tmp_path, monkeypatch, tiny_model_dir):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QMessageBox

    from asrlive.gui.main_window import MainWindow

    monkeypatch.setenv("ASRLIVE_STATE_DIR", str(tmp_path / "state"))
    TranscriptJournal("mic", "m").append("RECOVER THESE WORDS", 3.0)  # never closed: a crash
    w = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.IniFormat), initial_model=str(tiny_model_dir))
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.recovery_box is not None and w.recovery_box.isVisible(), timeout=10000)
    w.recovery_box.button(QMessageBox.Yes).click()
    assert "RECOVER THESE WORDS" in w.transcript.toPlainText()
    assert pending_journals() == []


def test_atomic_export_never_leaves_half_a_file(tmp_path):
    target = tmp_path / "t.txt"
    target.write_text("old transcript\n")
    # Fails part-way through writing: the first half is written, the lone surrogate is not.
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "new transcript " * 1000 + "\udcff")
    assert target.read_text() == "old transcript\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_atomic_export_gets_the_umask_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "t.srt", "1\n")
    finally:
        os.umask(old)
    assert (tmp_path / "t.srt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_pickle_weights_refused_by_default(tmp_path, capsys):
    import torch
    from safetensors.torch import load_file

    folder = make_tiny_model(tmp_path / "m")
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")  # the old pickled format
    weights.unlink()
    with pytest.raises(ModelLoadError, match="safetensors"):
        load_model(folder, device="cpu")
    assert load_model(folder, device="cpu", allow_pickle=True).geometry.rf == 400
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    assert main(["transcribe", "--model", str(folder), str(wav)]) == 4
    assert main(["transcribe", "--model", str(folder), "--allow-pickle", str(wav)]) == 0


def test_remote_code_never_runs(tmp_path):
    folder = make_tiny_model(tmp_path / "m")
    marker = tmp_path / "ran"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCTC": "evil.EvilForCTC", "AutoConfig": "evil.EvilConfig"}
    config["model_type"] = "evil"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError):
        load_model(folder, device="cpu")
    assert not marker.exists()


def test_local_model_loads_without_network(tiny_model_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("network access while loading a local model")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    assert load_model(tiny_model_dir, device="cpu").vocab[0] == "<pad>"


class SlowModel:
    """The tiny model behind a fixed extra compute time: a model slower than real time."""

    def __init__(self, model, seconds: float):
        self._model, self._seconds = model, seconds

    def __getattr__(self, name):
        return getattr(self._model, name)

    def log_probs(self, samples):
        time.sleep(self._seconds)  # stands in for compute, not for synchronisation
        return self._model.log_probs(samples)


def test_back_pressure_skips_ahead_with_bounded_backlog(tiny_model):
    g = tiny_model.geometry
    slow = SlowModel(tiny_model, 0.05)
    ring = AudioRing(16000 * 8, 16000)
    plan = ChunkPlan.from_settings(g, ChunkSettings(100, 200, 100))  # 10 windows per second of audio
    worker = StreamWorker(slow, ring, plan, live=True, max_backlog_s=1.0, reuse="none")  # through log_probs
    worst = [0]
    worker.add_listener(lambda s: worst.__setitem__(0, max(worst[0], s.backlog_samples)))
    signal_ = (np.random.default_rng(2).standard_normal(16000 * 40) * 0.1).astype(np.float32)
    source = ArraySource(signal_, ring, realtime=True, speed=4.0)  # 4x real time, lossy like a mic
    worker.start()
    source.start()
    assert worker.join(60)
    assert worker.skipped_samples > 0
    assert worker.store.n_frames == g.frames(len(signal_))
    window = plan.window(0)
    assert worst[0] <= 16000 * 1.0 + window.end_sample + 16000 * 0.5
    assert not np.isnan(worker.store.all_frames()[-plan.hop_frames:]).any()  # the end is transcribed


def test_very_long_file_streams_in_bounded_memory(tmp_path, tiny_model_dir):
    """Peak RSS of transcribing 20 minutes stays close to that of 1 minute."""
    rng = np.random.default_rng(3)
    peaks = {}
    for minutes in (1, 20):
        path = tmp_path / f"{minutes}min.flac"
        with sf.SoundFile(path, "w", 16000, 1) as f:
            for _ in range(minutes):
                f.write((rng.standard_normal(16000 * 60) * 0.05).astype(np.float32))
        code = textwrap.dedent(f"""
            import resource, sys
            from asrlive.cli import main
            rc = main(["transcribe", "--model", {str(tiny_model_dir)!r}, "--threads", "1", "--chunk-ms", "2000",
                       "-o", {str(tmp_path / f'{minutes}.txt')!r}, {str(path)!r}])
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            sys.exit(rc)
        """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        peaks[minutes] = int(done.stdout.split()[-1]) / 1024  # MiB
    assert peaks[20] - peaks[1] < 60, peaks


def test_a_file_system_without_locks_still_keeps_the_journal(tmp_path, monkeypatch):
    import errno
    import fcntl

    def no_locks(f, how):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    journal = TranscriptJournal("test", "m", tmp_path)
    journal.append("HELLO WORLD", 1.0)
    _died(journal)
    assert [p.text for p in pending_journals(tmp_path)] == ["HELLO WORLD"]


def test_old_closed_journals_are_pruned(tmp_path):
    from asrlive import journal as jmod

    for i in range(jmod.KEEP_CLOSED + 5):
        j = TranscriptJournal("x", "m", tmp_path)
        j.path.rename(tmp_path / f"2000{i:04d}.jsonl")  # distinct, ordered names
        j.path = tmp_path / f"2000{i:04d}.jsonl"
        j.append("TEXT", 1.0)
        j.close()
    crashed = TranscriptJournal("y", "m", tmp_path)
    crashed.append("KEEP ME", 1.0)
    _died(crashed)
    TranscriptJournal("z", "m", tmp_path).close()
    names = sorted(p.name for p in tmp_path.glob("*.jsonl"))
    assert len(names) <= jmod.KEEP_CLOSED + 2
    assert [p.text for p in pending_journals(tmp_path)] == ["KEEP ME"]


def test_journals_opened_in_the_same_second_never_share_a_file(tmp_path):
    """Runs started together (a replay beside a live run) keep their own journals: closing one
    must leave the other pending."""
    journals = [TranscriptJournal(f"run {i}", "m", tmp_path) for i in range(300)]
    for i, journal in enumerate(journals):
        journal.append(f"RUN {i}", 1.0)
        if i % 2:
            journal.close()
        else:
            _died(journal)
    assert len({j.path for j in journals}) == len(journals)
    # A file of the same name from another process (same pid, another container) is not reused.
    from asrlive import journal as jmod

    taken = tmp_path / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(jmod._JOURNAL_NUMBERS) + 1:04d}.jsonl"
    taken.write_text("OTHER\n")
    assert TranscriptJournal("next", "m", tmp_path).path != taken and taken.read_text() == "OTHER\n"
    assert sorted(p.text for p in pending_journals(tmp_path)) == sorted(f"RUN {i}" for i in range(0, 300, 2))


def test_mic_stop_is_bounded_when_portaudio_abort_hangs():
    """With the sound server gone behind ALSA, PortAudio's abort can block for good: stopping
    must still close the rings and return, so the app's stop button never freezes."""
    import sounddevice as sd

    from asrlive.audio import sources

    release = threading.Event()

    class HangingStream:
        def abort(self):
            release.wait(60)

        def close(self):
            pass

    ring = AudioRing(16000, 16000)
    mic = sources.MicSource.__new__(sources.MicSource)  # no device here: only stop() is exercised
    mic.ring, mic._capture_ring, mic._relay, mic._sd = ring, ring, None, sd
    mic._stop, mic._stream = threading.Event(), HangingStream()
    stopped = threading.Event()
    threading.Thread(target=lambda: (mic.stop(), stopped.set()), daemon=True).start()
    try:
        assert stopped.wait(sources.CLOSE_SECONDS + 30)
        assert ring.closed and not release.is_set()
    finally:
        release.set()
