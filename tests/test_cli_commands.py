"""The devices and live commands without a sound card: errors, exit codes, the JSON summary."""

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
