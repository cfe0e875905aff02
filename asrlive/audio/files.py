"""Audio files in: any rate and channel count soundfile reads, mixed to mono, resampled by soxr."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


class AudioFileError(ValueError):
    """A file that cannot be used as audio; the message names the file and the reason."""


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise AudioFileError(f"{path}: no such file")
    if path.is_dir():
        raise AudioFileError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioFileError(f"{path}: file is empty")
    if not os.access(path, os.R_OK):
        raise AudioFileError(f"{path}: not readable (permission denied)")
    try:
        # Bytes, not str: soundfile encodes a str path strictly, which fails on a name that is not
        # valid in the file system's encoding (Python keeps such names as surrogates).
        return sf.SoundFile(os.fsencode(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        reason = getattr(exc, "error_string", None) or exc  # libsndfile's reason, without the path again
        raise AudioFileError(f"{path}: not a readable audio file ({reason})") from exc


def file_info(path: Path) -> tuple[int, int, float]:
    """(sample rate, channels, seconds) of an audio file."""
    with _open(Path(path)) as f:
        return f.samplerate, f.channels, f.frames / f.samplerate if f.samplerate else 0.0


def _wav_declared_frames(path: Path) -> int | None:
    """Frames the data chunk of a RIFF/WAVE header declares; None when the header does not say
    (size 0 or 0xFFFFFFFF, as recorders write before they finish) or is not plain RIFF."""
    with open(path, "rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while len(chunk := f.read(8)) == 8:
            kind, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if kind == b"data":
                return size // block_align if block_align and size not in (0, 0xFFFFFFFF) else None
            if kind == b"fmt ":
                block_align = int.from_bytes(f.read(size)[12:14], "little")
            else:
                f.seek(size, os.SEEK_CUR)
            f.seek(size % 2, os.SEEK_CUR)  # chunks are padded to even sizes
    return None


def truncation(path: Path) -> tuple[float, float] | None:
    """(seconds the header declares, seconds present) of a WAV file cut short, else None.

    libsndfile reports only the frames present, so a WAV cut off in a copy or a crash reads as
    a shorter, valid file; the header's data size is what tells. Raises AudioFileError for a
    file that does not open as audio, so this doubles as the up-front check of an input."""
    path = Path(path)
    with _open(path) as f:
        rate, present, is_wav = f.samplerate, f.frames, f.format in ("WAV", "WAVEX")
    if present == 0:
        raise AudioFileError(f"{path}: contains no audio samples")
    declared = _wav_declared_frames(path) if is_wav else None
    if declared is None or declared <= present or not rate:
        return None
    return declared / rate, present / rate


def iter_file_blocks(path: Path | str, sample_rate: int, block_seconds: float = 0.5) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks at ``sample_rate``, reading the file incrementally, so memory
    stays bounded however long the file is."""
    path = Path(path)
    with _open(path) as f:
        native = f.samplerate
        resampler = None if native == sample_rate else soxr.ResampleStream(native, sample_rate, 1, dtype="float32", quality="HQ")
        block_frames = max(1, int(block_seconds * native))
        any_frames = False
        while True:
            try:
                data = f.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise AudioFileError(f"{path}: truncated or corrupt audio ({exc})") from exc
            last = len(data) < block_frames
            any_frames |= len(data) > 0
            mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
            if not np.all(np.isfinite(mono)):
                raise AudioFileError(f"{path}: contains NaN or infinite samples")
            out = mono if resampler is None else resampler.resample_chunk(mono, last=last)
            if len(out):
                yield np.ascontiguousarray(out, dtype=np.float32)
            if last:
                break
        if not any_frames:
            raise AudioFileError(f"{path}: contains no audio samples")


def read_available(path: Path | str, sample_rate: int) -> tuple[np.ndarray, AudioFileError | None]:
    """The file's samples up to where it breaks off (a cut FLAC or MP3), and why it broke off, or
    None for a whole file. Raises AudioFileError when nothing before the break reads."""
    blocks: list[np.ndarray] = []
    try:
        for block in iter_file_blocks(path, sample_rate):
            blocks.append(block)
    except AudioFileError as exc:
        if not blocks:
            raise
        return np.concatenate(blocks), exc
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32), None


def read_file(path: Path | str, sample_rate: int) -> np.ndarray:
    """The whole file as one mono float32 array at ``sample_rate``; a file that breaks off is an
    AudioFileError."""
    samples, error = read_available(path, sample_rate)
    if error is not None:
        raise error
    return samples
