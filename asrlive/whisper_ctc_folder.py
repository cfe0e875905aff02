"""What marks a folder as an asrlive Whisper-encoder CTC model, readable without importing torch."""

from __future__ import annotations

import json
from pathlib import Path

MODEL_TYPE = "asrlive-whisper-ctc"


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())


def is_whisper_ctc(folder: Path) -> bool:
    try:
        return read_config(folder).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False
