"""Persistent settings behind one typed wrapper over QSettings."""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtCore import QByteArray, QSettings

from ..decoding import DEFAULT_DECODER
from ..planner import ChunkSettings

# Stores written before format 2 held every field, defaults included, so a better default never
# reached anyone who had opened the app once. Format 2 stores only what differs from the defaults;
# in an older store, a value equal to the default of its time is read as "not chosen".
FORMAT = 2
FORMAT_1_DEFAULTS = {"left_ms": 2000.0, "right_ms": 500.0}  # format-1 defaults that have changed since


@dataclass
class AppSettings:
    model: str = ""           # "" is the embedded model
    compute_device: str = "auto"
    decoder: str = DEFAULT_DECODER
    input_device: str = ""    # "" is the system default
    chunk_ms: float = ChunkSettings.chunk_ms  # the planner's defaults, as in the CLI
    left_ms: float = ChunkSettings.left_ms
    right_ms: float = ChunkSettings.right_ms
    realtime_files: bool = True
    file_speed: float = 1.0
    confidence_colours: bool = False
    visible_seconds: float = 10.0
    last_folder: str = ""

    @classmethod
    def load(cls, store: QSettings) -> "AppSettings":
        out = cls()
        old_format = store.value("settings_format") is None
        for f in fields(cls):
            raw = store.value(f.name)
            if raw is None:
                continue
            try:
                if f.type == "bool":
                    value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
                elif f.type == "float":
                    value = float(raw)
                else:
                    value = str(raw)
            except (TypeError, ValueError):
                continue  # a damaged entry falls back to the default
            if old_format and FORMAT_1_DEFAULTS.get(f.name) == value:
                continue
            setattr(out, f.name, value)
        return out

    def save(self, store: QSettings) -> None:
        defaults = type(self)()
        for f in fields(self):
            value = getattr(self, f.name)
            if value == getattr(defaults, f.name):
                store.remove(f.name)
            else:
                store.setValue(f.name, value)
        store.setValue("settings_format", FORMAT)
        store.sync()


def load_geometry_bytes(store: QSettings) -> QByteArray | None:
    raw = store.value("window_geometry")
    return raw if isinstance(raw, QByteArray) else None
