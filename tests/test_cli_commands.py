"""The devices and live commands without a sound card: errors, exit codes, the JSON summary."""

import errno
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from asrlive.audio.devices import InputDevice
from asrlive.audio.sources import ArraySource
from asrlive.cli import EXIT_DEVICE, main


@pytest.fixture
def no_devices(monkeypatch):
    monkeypatch.setattr("asrlive.audio.devices.list_input_devices", lambda rescan=False: [])


@pytest.mark.parametrize("json_flag,stdout", [([], ""), (["--json"], "[]\n")])
def test_devices_without_any_is_an_error_with_or_without_json(no_devices, capsys, json_flag, stdout):
    assert main(["devices", *json_flag]) == EXIT_DEVICE
    out, err = capsys.readouterr()
    assert out == stdout
    assert err == "asrlive: error: no audio input devices found\n"


def test_live_reports_a_missing_device_before_loading_the_model(no_devices, tmp_path, capsys):
    # The model does not exist either: the device error coming out shows the model was not tried.
    assert main(["live", "--model", str(tmp_path / "no-such-model")]) == EXIT_DEVICE
    assert capsys.readouterr().err == "asrlive: error: no audio input devices found\n"


def test_live_summary_rounds_times_and_ratios():
    from asrlive.cli import _live_summary
    from asrlive.decoder import GreedyCTCDecoder
    from asrlive.decoding import GREEDY
    from asrlive.vocab import CHAR_VOCAB
    from asrlive.session import LatencyStats
    from asrlive.worker import StreamStatus

    from .test_decoder import path_to_log_probs

    stats = LatencyStats(capture_block_ms=20.0, queue_wait_p50=None, queue_wait_p95=None, compute_p50=None,
                         compute_p95=None, right_context_wait_p50=None, speech_to_text_p50=621.9432150001012,
                         speech_to_text_p95=None, real_time_factor=0.012345678, backlog_ms=0.0,
                         skipped_ms=1234.5678, input_overflows=2, front_end_hit_rate=0.787878, state_hit_rate=None)
    decoder = GreedyCTCDecoder(list(CHAR_VOCAB), CHAR_VOCAB["<pad>"], "|", 0.02)
    decoder.feed(0, path_to_log_probs("_HEL_LO_"))
    session = SimpleNamespace(
        worker=SimpleNamespace(status=StreamStatus(log=decoder.log, text=decoder.cursor(), committed_frames=50)),
        latency=lambda: stats, model=SimpleNamespace(backend="onnxruntime", precision="int8", sample_rate=16000),
        label="USB mic", ring=SimpleNamespace(written=24001))
    summary = _live_summary(session, GREEDY, "front-end")
    assert summary == {"text": "HELLO", "device": "USB mic", "audio_s": 1.5, "decoder": "greedy", "frames": 50,
                       "skipped_ms": 1234.6, "input_overflows": 2,
                       "speech_to_text_p50_ms": 621.9, "speech_to_text_p95_ms": None,
                       "real_time_factor": 0.01235, "backend": "onnxruntime", "precision": "int8", "reuse": "front-end",
                       "front_end_hit_rate": 0.7879,
                       "state_hit_rate": None}


# -- live runs on a stand-in microphone: a signal played at real-time pace -----------------------

NOISE_S = 6.0


class FakeMic(ArraySource):
    """Takes MicSource's place: plays NOISE_S seconds of noise (which the tiny model reads as some
    text) at real-time pace, then ends as an unplugged device would."""

    started = threading.Event()
    last: "FakeMic | None" = None

    def __init__(self, ring, device=None, block_ms: float = 20.0):
        noise = (np.random.default_rng(0).standard_normal(int(NOISE_S * 16000)) * 0.2).astype(np.float32)
        super().__init__(noise, ring, realtime=True, block_seconds=block_ms / 1000)
        self.device_name = "fake mic"
        FakeMic.last = self
        FakeMic.started.set()


@pytest.fixture
def fake_mic(monkeypatch, tmp_path):
    FakeMic.started.clear()
    device = InputDevice(0, "fake mic", "test", 1, 16000.0, True)
    monkeypatch.setattr("asrlive.audio.devices.list_input_devices", lambda rescan=False: [device])
    monkeypatch.setattr("asrlive.session.MicSource", FakeMic)
    monkeypatch.setenv("ASRLIVE_STATE_DIR", str(tmp_path / "state"))
    return FakeMic


def when_captured(seconds: float, action) -> threading.Thread:
    """Run ``action`` on a thread once the stand-in microphone has delivered ``seconds`` of audio."""
    def run() -> None:
        assert FakeMic.started.wait(120)
        assert FakeMic.last.ring.wait_for(int(seconds * 16000), threading.Event(), timeout=120)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def live_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("asrlive")]


def summary_of(err: str) -> dict:
    return json.loads(err.strip().splitlines()[-1])


def test_sigterm_ends_live_as_ctrl_c_does_and_keeps_the_text(fake_mic, tiny_model_dir, capsys):
    """kill, timeout and systemd send SIGTERM: capture stops, what was captured is transcribed and
    printed, as on Ctrl+C, and pytest's own handler is back afterwards."""
    before = signal.getsignal(signal.SIGTERM)
    when_captured(1.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
    code = main(["live", "--model", str(tiny_model_dir), "--threads", "1", "--json-summary"])
    out, err = capsys.readouterr()
    summary = summary_of(err)
    assert code == 0, err
    assert 1.5 <= summary["audio_s"] < NOISE_S and summary["device"] == "fake mic"  # stopped, not played out
    assert out.strip() and out == summary["text"] + "\n"
    assert signal.getsignal(signal.SIGTERM) is before and not live_threads()


def test_seconds_counts_captured_audio(fake_mic, tiny_model_dir, capsys):
    assert main(["live", "--model", str(tiny_model_dir), "--threads", "1", "--seconds", "1", "--json-summary"]) == 0
    assert 1.0 <= summary_of(capsys.readouterr().err)["audio_s"] < NOISE_S


def test_stdout_that_fails_ends_live_with_one_line_naming_the_journal(fake_mic, tiny_model_dir, capsys, monkeypatch):
    """A full disk behind stdout: no traceback, no thread left running, the text in the journal."""
    class Full:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Full())
    code = main(["live", "--model", str(tiny_model_dir), "--threads", "1"])
    err = capsys.readouterr().err.splitlines()
    assert code == 3 and not live_threads()
    assert err[-1].startswith("asrlive: error: cannot write the transcript to stdout: No space left on device; "
                              "the committed text is in "), err
    journal = Path(err[-1].rsplit(" ", 1)[1])
    assert json.loads(journal.read_text().splitlines()[1])["text"]


def test_a_journal_folder_that_cannot_be_written_is_a_warning_not_a_stop(fake_mic, tiny_model_dir, capsys,
                                                                       monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ASRLIVE_STATE_DIR", str(blocker))
    assert main(["live", "--model", str(tiny_model_dir), "--threads", "1", "--seconds", "1"]) == 0
    out, err = capsys.readouterr()
    assert out.strip()
    assert (f"asrlive: warning: transcript journal off: Not a directory ({blocker / 'journal'}); "
            "the text is only printed") in err.splitlines()


def test_second_ctrl_c_stops_the_drain_and_keeps_what_is_committed():
    """The first Ctrl+C stops capture and waits for the worker; a second one stops that wait."""
    from asrlive.cli import _follow_live

    calls = []
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    session = SimpleNamespace(worker=SimpleNamespace(wait_update=interrupted), wait=interrupted,
                              stop=lambda: calls.append("stop"), abort=lambda: calls.append("abort"))
    assert _follow_live(session, None) == (0, True) and calls == ["stop", "abort"]


def test_a_listed_device_that_will_not_open_is_one_line_exit_5(monkeypatch, tiny_model_dir, capsys):
    """PortAudio lists it, then cannot open it (the sound server went away meanwhile)."""
    import sounddevice as sd

    def refuse(*args, **kwargs):
        raise sd.PortAudioError("Error opening InputStream: Illegal combination of I/O devices")

    device = InputDevice(3, "gone mic", "ALSA", 1, 16000.0, True)
    monkeypatch.setattr("asrlive.audio.devices.list_input_devices", lambda rescan=False: [device])
    monkeypatch.setattr("asrlive.audio.devices.resolve_input_device", lambda spec, rate: (3, "gone mic", rate))
    monkeypatch.setattr(sd, "InputStream", refuse)
    assert main(["live", "--model", str(tiny_model_dir), "--no-journal"]) == EXIT_DEVICE
    assert capsys.readouterr().err.splitlines()[-1] == (
        "asrlive: error: cannot open input device 'gone mic': Error opening InputStream: Illegal combination of "
        "I/O devices")


@pytest.mark.parametrize("spec,expected", [
    ("usbmic", "usbmic"),                   # the whole name wins over a longer name containing it
    ("USB Camera", "USB Camera: Audio"),    # a unique part of a name, any case
    ("2", "usbmic"),                        # an index
])
def test_devices_are_found_by_whole_name_then_unique_part(monkeypatch, spec, expected):
    from asrlive.audio import devices

    monkeypatch.setattr(devices, "_query", lambda rescan: FAKE_PORTAUDIO)
    assert devices.find_input_device(spec).name == expected


@pytest.mark.parametrize("spec,message", [
    ("mic", "'mic' names 2 input devices (1 'usbmic_silent' [ALSA], 2 'usbmic' [ALSA]): give its index"),
    ("speakers", "'HDMI speakers' is an output device, with no input channels (see 'asrlive devices')"),
    ("nothing", "no input device whose name contains 'nothing' (see 'asrlive devices')"),
])
def test_ambiguous_or_output_only_device_names_are_refused(monkeypatch, spec, message):
    from asrlive.audio import devices

    monkeypatch.setattr(devices, "_query", lambda rescan: FAKE_PORTAUDIO)
    with pytest.raises(devices.DeviceError) as caught:
        devices.find_input_device(spec)
    assert str(caught.value) == message


def _portaudio_device(name: str, inputs: int) -> dict:
    return {"name": name, "hostapi": 0, "max_input_channels": inputs, "default_samplerate": 48000.0}


FAKE_PORTAUDIO = ([_portaudio_device("HDMI speakers", 0), _portaudio_device("usbmic_silent", 1),
                   _portaudio_device("usbmic", 1), _portaudio_device("USB Camera: Audio", 2)],
                  [{"name": "ALSA"}], 1)
