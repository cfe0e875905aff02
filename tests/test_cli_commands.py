"""The devices and live commands without a sound card: errors, exit codes, the JSON summary."""

from types import SimpleNamespace

import pytest

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
    model = SimpleNamespace(backend="onnxruntime", precision="int8")
    summary = _live_summary(StreamStatus(log=decoder.log, text=decoder.cursor(), committed_frames=50), stats, GREEDY,
                            model, "front-end")
    assert summary == {"text": "HELLO", "decoder": "greedy", "frames": 50, "skipped_ms": 1234.6, "input_overflows": 2,
                       "speech_to_text_p50_ms": 621.9, "speech_to_text_p95_ms": None,
                       "real_time_factor": 0.01235, "backend": "onnxruntime", "precision": "int8", "reuse": "front-end",
                       "front_end_hit_rate": 0.7879,
                       "state_hit_rate": None}
