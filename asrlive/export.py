"""Transcript files: TXT, JSON, SRT and WebVTT, written atomically."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for hints: the CLI imports this module before numpy is needed
    from .decoder import TimedWord

MAX_CUE_CHARS = 42
MAX_CUE_SECONDS = 6.0


def _cues(words: list[TimedWord]) -> list[tuple[float, float, str]]:
    cues: list[tuple[float, float, str]] = []
    current: list[TimedWord] = []
    for w in words:
        text = " ".join(x.text for x in current + [w])
        if current and (len(text) > MAX_CUE_CHARS or w.end - current[0].start > MAX_CUE_SECONDS):
            cues.append((current[0].start, current[-1].end, " ".join(x.text for x in current)))
            current = []
        current.append(w)
    if current:
        cues.append((current[0].start, current[-1].end, " ".join(x.text for x in current)))
    return cues


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(words: list[TimedWord]) -> str:
    blocks = [f"{i}\n{_stamp(a, ',')} --> {_stamp(b, ',')}\n{t}\n" for i, (a, b, t) in enumerate(_cues(words), 1)]
    return "\n".join(blocks)


def to_vtt(words: list[TimedWord]) -> str:
    blocks = [f"{_stamp(a, '.')} --> {_stamp(b, '.')}\n{t}\n" for a, b, t in _cues(words)]
    return "WEBVTT\n\n" + "\n".join(blocks)


FORMATS = ("txt", "json", "srt", "vtt")


def render(fmt: str, text: str, words: list[TimedWord], record: dict) -> str:
    """A transcript in one of ``FORMATS``: its text, its timed words (SRT, WebVTT), or ``record``,
    its JSON form, on one line (so that several files printed together are JSON Lines). The CLI
    and the app both write through this."""
    if fmt == "txt":
        return text + "\n"
    if fmt == "json":
        return json.dumps(record) + "\n"
    if fmt == "srt":
        return to_srt(words)
    if fmt == "vtt":
        return to_vtt(words)
    raise ValueError(f"unknown transcript format {fmt!r}; one of {', '.join(FORMATS)}")


def write_atomic(path: Path | str, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so a crash never leaves half a file."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # Created with 0o666 so the umask decides the mode, as for any other file the user writes
    # (mkstemp's 0o600 would make every transcript private).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
