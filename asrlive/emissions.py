"""The emission store: per-frame log-probabilities by absolute frame index, and per-window timings."""

from __future__ import annotations

import threading
from collections import deque
from itertools import islice
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WindowTiming:
    """What one window cost and waited for (seconds, monotonic clock)."""

    index: int
    first_frame: int
    commit_from: int
    commit_to: int
    end_frame: int
    audio_ready: float   # when the window's last sample was in the ring
    hop_ready: float     # when the last committed frame's samples were in the ring
    began: float         # the worker started on the window (reading the ring)
    started: float       # model call began
    finished: float      # model call ended
    decoded: float       # decoded and stored, ready to publish

    @property
    def queue_wait(self) -> float:
        return max(0.0, self.started - self.audio_ready)

    @property
    def compute(self) -> float:
        return self.finished - self.started

    @property
    def outside_model(self) -> float:
        """The worker's own cost of the window: reading the ring, decoding, storing."""
        return (self.started - self.began) + (self.decoded - self.finished)

    @property
    def right_context_wait(self) -> float:
        return max(0.0, self.audio_ready - self.hop_ready)


class EmissionStore:
    """Committed frames (rows of log-probs) appended in order; skipped audio leaves NaN rows so
    the row index stays the absolute frame index. Rows live in fixed-size blocks, so appending
    never copies what is already stored, and a live session keeps only the newest ``keep_frames``
    rows (older blocks are dropped whole; the transcript is kept by the decoder's log, not here)
    and the newest ``keep_windows`` timings. Safe to read from another thread."""

    BLOCK_FRAMES = 4096

    def __init__(self, vocab_size: int, keep_frames: int | None = None, keep_windows: int | None = None):
        self.vocab_size = vocab_size
        self.keep_frames = keep_frames
        self._blocks: list[np.ndarray] = []
        self._first_block = 0  # absolute index of _blocks[0]
        self._count = 0
        self.skipped_frames = 0
        self.timings: deque[WindowTiming] = deque(maxlen=keep_windows)
        self._lock = threading.Lock()

    @property
    def n_frames(self) -> int:
        return self._count

    @property
    def oldest_frame(self) -> int:
        """The first frame still held."""
        return min(self._count, self._first_block * self.BLOCK_FRAMES)

    def _spans(self, start: int, end: int):
        """(rows of one block, their offset from ``start``) for each block that frames [start, end) cross."""
        pos = start
        while pos < end:
            block, offset = divmod(pos, self.BLOCK_FRAMES)
            n = min(self.BLOCK_FRAMES - offset, end - pos)
            yield self._blocks[block - self._first_block][offset:offset + n], pos - start
            pos += n

    def _write(self, first_frame: int, rows: np.ndarray) -> None:
        end = first_frame + len(rows)
        while (self._first_block + len(self._blocks)) * self.BLOCK_FRAMES < end:
            self._blocks.append(np.full((self.BLOCK_FRAMES, self.vocab_size), np.nan, np.float32))
        for dest, at in self._spans(first_frame, end):
            dest[:] = rows[at:at + len(dest)]

    def _drop_old(self) -> None:
        if self.keep_frames is None:
            return
        keep_from_block = max(0, self._count - self.keep_frames) // self.BLOCK_FRAMES
        while self._first_block < keep_from_block and self._blocks:
            self._blocks.pop(0)
            self._first_block += 1

    def commit(self, first_frame: int, log_probs: np.ndarray) -> None:
        """Append rows for absolute frames [first_frame, first_frame + len(log_probs))."""
        with self._lock:
            if first_frame < self._count:
                raise ValueError(f"frame {first_frame} committed twice (store holds {self._count})")
            # Skipped frames stay NaN: new blocks start as NaN.
            self.skipped_frames += first_frame - self._count
            self._write(first_frame, log_probs)
            self._count = first_frame + len(log_probs)
            self._drop_old()

    def add_timing(self, timing: WindowTiming) -> None:
        with self._lock:
            self.timings.append(timing)

    def recent_timings(self, n: int) -> list[WindowTiming]:
        with self._lock:
            return list(islice(reversed(self.timings), n))[::-1]

    def window_of(self, frame: int) -> WindowTiming | None:
        """The kept timing of the window that committed ``frame``."""
        with self._lock:
            return next((t for t in reversed(self.timings) if t.commit_from <= frame < t.commit_to), None)

    def committed(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """A copy of committed rows [start, end); ``start`` must not be older than ``oldest_frame``."""
        with self._lock:
            end = self._count if end is None else min(end, self._count)
            if start < self.oldest_frame:
                raise ValueError(f"frame {start} was dropped (the store keeps frames from {self.oldest_frame})")
            out = np.empty((max(0, end - start), self.vocab_size), np.float32)
            for src, at in self._spans(start, end):
                out[at:at + len(src)] = src
            return out

    def all_frames(self) -> np.ndarray:
        """Every row still held (all of them unless ``keep_frames`` dropped the oldest)."""
        return self.committed(self.oldest_frame)
