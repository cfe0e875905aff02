"""A preallocated float32 sample ring with an absolute sample counter.

Every sample is stored twice (at i and i + capacity), so any span of up to ``capacity`` samples is
one contiguous slice: readers never stitch two pieces. ``write`` allocates no buffers and holds the
lock only to publish the new count, so a PortAudio callback may call it.

Two writer policies: a live source (microphone) never waits and overwrites the oldest samples,
and the reader notices what it missed; a file source read faster than real time waits for room
so no sample is lost.
"""

from __future__ import annotations

import threading
import time

import numpy as np


class AudioRing:
    _STAMPS = 8192

    def __init__(self, capacity: int, sample_rate: int):
        if capacity <= 0:
            raise ValueError("ring capacity must be positive")
        self.capacity = int(capacity)
        self.sample_rate = int(sample_rate)
        self._buf = np.zeros(2 * self.capacity, dtype=np.float32)
        self._written = 0
        self._writing = 0  # end of the samples being copied in: their slots may be overwritten now
        self._released = 0
        self._closed = False
        self._cond = threading.Condition()
        self.input_overflows = 0  # reported by the capture device (PortAudio status flags)
        # When each write landed, so readers can tell how long a sample waited. Preallocated and
        # circular: the callback must not allocate.
        self._stamp_count = np.zeros(self._STAMPS, np.int64)
        self._stamp_time = np.zeros(self._STAMPS, np.float64)
        self._n_stamps = 0

    @property
    def written(self) -> int:
        """Absolute count of samples written since the stream began."""
        return self._written

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self._written - self.capacity)

    @property
    def closed(self) -> bool:
        return self._closed

    def write(self, block: np.ndarray, wait_for_room: bool = False, stop: threading.Event | None = None) -> bool:
        """Append mono samples. With ``wait_for_room`` the call writes as the reader releases
        room, blocking until all is written (returns False if ``stop`` was set while waiting)."""
        n = len(block)
        if n == 0:
            return True
        if wait_for_room:
            # As much as there is room for, then wait for more: a reader waiting for the first
            # samples of this block gets them whatever the block's size.
            done = 0
            while done < n:
                with self._cond:
                    while self._written - self._released >= self.capacity:
                        if stop is not None and stop.is_set():
                            return False
                        self._cond.wait(0.1 if stop is not None else None)
                    room = self.capacity - (self._written - self._released)
                self._append(block[done:done + room])
                done += min(room, n - done)
            return True
        if n > self.capacity:
            # Only the newest capacity samples can be kept; count the rest as written.
            with self._cond:
                self._written += n - self.capacity
            block = block[n - self.capacity:]
        self._append(block)
        return True

    def _append(self, block: np.ndarray) -> None:
        n = len(block)
        cap = self.capacity
        with self._cond:
            self._writing = self._written + n
        pos = self._written % cap
        first = min(n, cap - pos)
        self._buf[pos:pos + first] = block[:first]
        self._buf[pos + cap:pos + cap + first] = block[:first]
        if n > first:
            rest = n - first
            self._buf[:rest] = block[first:]
            self._buf[cap:cap + rest] = block[first:]
        now = time.monotonic()
        with self._cond:
            self._written += n
            slot = self._n_stamps % self._STAMPS
            self._stamp_count[slot] = self._written
            self._stamp_time[slot] = now
            self._n_stamps += 1
            self._cond.notify_all()

    def time_of(self, sample: int) -> float:
        """Monotonic time at which absolute ``sample`` was written (the oldest stamp if it is older
        than the stamps kept; now if it is not written yet)."""
        with self._cond:
            n = min(self._n_stamps, self._STAMPS)
            if n == 0 or sample >= self._written:
                return time.monotonic()
            newest = (self._n_stamps - 1) % self._STAMPS
            order = (np.arange(n) + (newest + 1 - n)) % self._STAMPS
            counts = self._stamp_count[order]
            k = int(np.searchsorted(counts, sample, side="right"))
            return float(self._stamp_time[order[min(k, n - 1)]])

    def close(self) -> None:
        """Mark the end of the stream: readers stop waiting for more."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def release(self, upto: int) -> None:
        """The reader no longer needs samples before ``upto``: waiting writers may reuse them."""
        with self._cond:
            if upto > self._released:
                self._released = upto
                self._cond.notify_all()

    def wait_for(self, upto: int, stop: threading.Event, timeout: float | None = None) -> bool:
        """Block until ``upto`` samples were written, the ring is closed, or ``stop`` is set.
        Returns True when the samples are there."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._written >= upto or self._closed or stop.is_set(), timeout
            )
            return self._written >= upto

    def wake(self) -> None:
        """Wake waiting readers (after setting their stop event or changing what they wait for)."""
        with self._cond:
            self._cond.notify_all()

    def read(self, start: int, end: int) -> np.ndarray | None:
        """A copy of absolute samples [start, end), or None if part of it was already overwritten."""
        if not 0 <= start <= end <= self._written:
            raise ValueError(f"span [{start}, {end}) outside written [0, {self._written})")
        if end - start > self.capacity:
            return None
        if start < self.oldest:
            return None
        pos = start % self.capacity
        out = self._buf[pos:pos + (end - start)].copy()
        # A live writer may have lapped us while copying: the copy is only good if no slot of it
        # was being written meanwhile (``_writing`` moves before the copy-in, ``_written`` after).
        return out if start >= self._writing - self.capacity else None
