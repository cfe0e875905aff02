"""Persistent settings behind one typed wrapper over QSettings."""

from __future__ import annotations

from dataclasses import dataclass, fields

from PySide6.QtCore import QByteArray, QSettings

from ..decoding import DEFAULT_DECODER
from ..planner import ChunkSettings


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
            setattr(out, f.name, value)
        return out

    def save(self, store: QSettings) -> None:
        for f in fields(self):
            store.setValue(f.name, getattr(self, f.name))
        store.sync()


def load_geometry_bytes(store: QSettings) -> QByteArray | None:
    raw = store.value("window_geometry")
    return raw if isinstance(raw, QByteArray) else None
