"""Input-device lookup through sounddevice: by index, by name substring, or the default."""

from __future__ import annotations

from dataclasses import dataclass


class DeviceError(RuntimeError):
    """No usable input device; the message names what was asked for."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    host_api: str
    channels: int
    default_rate: float
    is_default: bool


def rescan_devices() -> None:
    """Re-initialise PortAudio so devices plugged in (or servers started) since are seen.
    Only while no stream is open: PortAudio invalidates every stream on re-initialisation."""
    import sounddevice as sd

    sd._terminate()
    sd._initialize()


def _query(rescan: bool) -> tuple[list, list, int]:
    """PortAudio's (devices, host APIs, default input index)."""
    import sounddevice as sd

    try:
        if rescan:
            rescan_devices()
        return sd.query_devices(), sd.query_hostapis(), sd.default.device[0]
    except sd.PortAudioError as exc:
        raise DeviceError(f"cannot list audio devices: {exc}") from exc


def list_input_devices(rescan: bool = False) -> list[InputDevice]:
    """Input devices, the default first."""
    devices, apis, default_in = _query(rescan)
    found = [
        InputDevice(i, d["name"], apis[d["hostapi"]]["name"], d["max_input_channels"],
                    d["default_samplerate"], i == default_in)
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]
    return sorted(found, key=lambda d: (not d.is_default, d.index))


def _by_name(devices: list[InputDevice], spec: str) -> InputDevice:
    """The device whose whole name is ``spec``, else the one whose name contains it (any case);
    several candidates are an error, not a guess: "usbmic" must not open "usbmic_silent"."""
    want = spec.lower()
    matches = [d for d in devices if d.name.lower() == want] or [d for d in devices if want in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(f"{d.index} '{d.name}' [{d.host_api}]" for d in matches)
        raise DeviceError(f"'{spec}' names {len(matches)} input devices ({listed}): give its index")
    outputs = [d["name"] for d in _query(False)[0] if want in d["name"].lower() and d["max_input_channels"] == 0]
    if outputs:
        raise DeviceError(f"'{outputs[0]}' is an output device, with no input channels (see 'asrlive devices')")
    raise DeviceError(f"no input device whose name contains '{spec}' (see 'asrlive devices')")


def find_input_device(spec: int | str | None) -> InputDevice:
    """The device ``spec`` names (an index, a whole name or a unique part of one), or the default."""
    devices = list_input_devices()
    if not devices:
        raise DeviceError("no audio input devices found")
    if spec is None or spec == "":
        return devices[0]
    if isinstance(spec, int) or str(spec).isdigit():
        matches = [d for d in devices if d.index == int(spec)]
        if not matches:
            raise DeviceError(f"no input device with index {spec} (see 'asrlive devices')")
        return matches[0]
    return _by_name(devices, str(spec))


def resolve_input_device(spec: int | str | None, want_rate: int) -> tuple[int, str, int]:
    """(index, name, rate to open at). The model rate if the device accepts it, else its default rate."""
    import sounddevice as sd

    chosen = find_input_device(spec)
    try:
        sd.check_input_settings(device=chosen.index, channels=1, samplerate=want_rate, dtype="float32")
        rate = want_rate
    except (sd.PortAudioError, ValueError):
        rate = int(chosen.default_rate)
    return chosen.index, chosen.name, rate
