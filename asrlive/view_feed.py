"""What the stream view draws, tapped from a live session: per-frame posteriors, a waveform
envelope and log-mel columns, each the newest ``HISTORY_S`` of the session by absolute index.

Qt-free, apart from the drawing: the view calls ``pull`` once per GUI tick and draws from the
rows held here; ``pull`` costs the audio and frames that arrived since the last call.
"""

from __future__ import annotations

import numpy as np

from .melspec import LogMel
from .session import HISTORY_S, LiveSession

ENVELOPE_PER_SECOND = 100  # waveform min/max buckets per second


class RecentRows:
    """The newest ``keep`` rows of a stream appended over time, by absolute row index. Storage is
    ``keep`` plus a quarter: when full, the newest ``keep`` rows move to the front, so an
    appended row is copied about five times in all, and memory stays bounded however long the
    session runs."""

    def __init__(self, width: int, keep: int, dtype=np.float32):
        self.keep = keep
        self._data = np.zeros((min(keep + keep // 4, 1024), width), dtype)
        self._first = 0  # absolute index of _data[0]
        self.count = 0   # rows appended in all

    @property
    def first(self) -> int:
        """The oldest row still held."""
        return max(self._first, self.count - self.keep)

    def extend(self, rows: np.ndarray) -> None:
        if len(rows) >= self.keep:
            self.count += len(rows) - self.keep
            rows = rows[-self.keep:]
            self._first = self.count  # all that was held is older than these rows
        held = self.count - self._first
        if held + len(rows) > len(self._data):
            capacity = self.keep + self.keep // 4
            if len(self._data) < capacity:  # still growing towards the bound
                bigger = np.zeros((min(capacity, max(2 * len(self._data), held + len(rows))), self._data.shape[1]),
                                  self._data.dtype)
                bigger[:held] = self._data[:held]
                self._data = bigger
            if held + len(rows) > len(self._data):
                drop = held + len(rows) - self.keep
                self._data[:held - drop] = self._data[drop:held]
                self._first += drop
                held -= drop
        self._data[held:held + len(rows)] = rows
        self.count += len(rows)

    def view(self, start: int, end: int) -> tuple[int, np.ndarray]:
        """(first index, rows) of the held rows in [start, end)."""
        start = max(start, self.first)
        end = min(end, self.count)
        if end <= start:
            return start, self._data[:0]
        return start, self._data[start - self._first:end - self._first]

    def row(self, index: int) -> np.ndarray | None:
        if not self.first <= index < self.count:
            return None
        return self._data[index - self._first]


class ViewFeed:
    def __init__(self, session: LiveSession):
        self.session = session
        g = session.model.geometry
        self.logmel = LogMel(g.sample_rate)
        self.probs = RecentRows(len(session.model.vocab), int(HISTORY_S * g.frame_rate))
        self.envelope = RecentRows(2, HISTORY_S * ENVELOPE_PER_SECOND)
        self.mel = RecentRows(self.logmel.n_mels, int(HISTORY_S * g.sample_rate / self.logmel.hop))
        self.env_samples = 0  # audio covered by the envelope (samples)
        self._mel_samples = 0

    def pull(self) -> None:
        """Append what arrived since the last call."""
        s = self.session
        first, rows = s.emissions(self.probs.count)
        if first > self.probs.count:  # frames dropped before they were pulled: a gap
            self.probs.extend(np.full((first - self.probs.count, rows.shape[1]), np.nan, np.float32))
        if len(rows):
            self.probs.extend(np.exp(rows))
        oldest, written = s.audio_extent()
        bucket = s.model.sample_rate // ENVELOPE_PER_SECOND
        start = max(self.env_samples, oldest)
        end = start + (written - start) // bucket * bucket
        if end > start:
            block = s.audio(start, end)
            if block is not None:
                if start > self.env_samples:  # the view fell behind the ring: pad the gap
                    self.envelope.extend(np.zeros(((start - self.env_samples) // bucket, 2), np.float32))
                pairs = block.reshape(-1, bucket)
                self.envelope.extend(np.stack([pairs.min(axis=1), pairs.max(axis=1)], axis=1))
            self.env_samples = end
        lm = self.logmel
        mel_start = max(self._mel_samples, oldest)
        cols = max(0, (written - mel_start - lm.win) // lm.hop + 1)
        if cols > 0:
            block = s.audio(mel_start, mel_start + (cols - 1) * lm.hop + lm.win)
            if block is not None:
                self.mel.extend(lm.columns(block))
            self._mel_samples = mel_start + cols * lm.hop
