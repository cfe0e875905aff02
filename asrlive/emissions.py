"""The emission store: per-frame log-probabilities by absolute frame index, and per-window timings."""

from __future__ import annotations

import threading
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
    started: float       # model call began
    finished: float      # model call ended

    @property
    def queue_wait(self) -> float:
        return max(0.0, self.started - self.audio_ready)

    @property
    def compute(self) -> float:
        return self.finished - self.started

    @property
    def right_context_wait(self) -> float:
        return max(0.0, self.audio_ready - self.hop_ready)


class EmissionStore:
    """Committed frames (rows of log-probs) appended in order; skipped audio leaves NaN rows so
    the row index stays the absolute frame index. The tentative frames of the latest window are
    kept apart and replaced on every window. Safe to read from another thread via ``snapshot``."""

    def __init__(self, vocab_size: int, initial_frames: int = 4096):
        self.vocab_size = vocab_size
        self._rows = np.full((initial_frames, vocab_size), np.nan, np.float32)
        self._count = 0
        self._tentative = np.zeros((0, vocab_size), np.float32)
        self._tentative_from = 0
        self.skipped_frames = 0
        self.timings: list[WindowTiming] = []
        self._lock = threading.Lock()

    @property
    def n_frames(self) -> int:
        return self._count

    def _grow(self, need: int) -> None:
        if need <= len(self._rows):
            return
        bigger = np.full((max(need, 2 * len(self._rows)), self.vocab_size), np.nan, np.float32)
        bigger[: self._count] = self._rows[: self._count]
        self._rows = bigger

    def commit(self, first_frame: int, log_probs: np.ndarray) -> None:
        """Append rows for absolute frames [first_frame, first_frame + len(log_probs))."""
        with self._lock:
            if first_frame < self._count:
                raise ValueError(f"frame {first_frame} committed twice (store holds {self._count})")
            end = first_frame + len(log_probs)
            self._grow(end)
            if first_frame > self._count:
                self.skipped_frames += first_frame - self._count
                self._rows[self._count:first_frame] = np.nan
            self._rows[first_frame:end] = log_probs
            self._count = end

    def set_tentative(self, first_frame: int, log_probs: np.ndarray) -> None:
        with self._lock:
            self._tentative_from = first_frame
            self._tentative = np.array(log_probs, dtype=np.float32, copy=True)

    def add_timing(self, timing: WindowTiming) -> None:
        with self._lock:
            self.timings.append(timing)

    def committed(self, start: int = 0, end: int | None = None) -> np.ndarray:
        """A copy of committed rows [start, end)."""
        with self._lock:
            end = self._count if end is None else min(end, self._count)
            return self._rows[start:end].copy()

    def tentative(self) -> tuple[int, np.ndarray]:
        with self._lock:
            return self._tentative_from, self._tentative.copy()

    def all_frames(self) -> np.ndarray:
        return self.committed()
