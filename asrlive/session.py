"""One streaming run (source -> ring -> worker) with its controls and live statistics.

The GUI and the device tests drive this; it never imports Qt. Stop ends the source and lets the
worker drain what was already captured, so no audio is silently dropped; abort stops at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio.ring import AudioRing
from .audio.sources import ArraySource, FileSource, MicSource
from .decoding import GREEDY, DecoderSpec
from .journal import TranscriptJournal, journal_dir
from .model import CTCModel
from .planner import ChunkPlan
from .emissions import WindowTiming
from .window_reuse import DEFAULT_REUSE, ReuseStats
from .worker import StreamStatus, StreamWorker

RING_SECONDS = 120.0
STATS_WINDOWS = 200
# What a live session keeps for the views to scroll back over: emission rows and window timings
# of the last 15 minutes (about 5.8 MiB of rows at 32 symbols). The transcript is kept whole.
HISTORY_S = 15 * 60


LEVEL_WINDOW_S = 0.1  # the level meter shows the last 100 ms of input


@dataclass(frozen=True)
class InputLevel:
    rms_dbfs: float
    peak: float
    input_overflows: int


@dataclass(frozen=True)
class LatencyStats:
    """Recent-window statistics in milliseconds (None where no window ran yet)."""

    capture_block_ms: float
    queue_wait_p50: float | None
    queue_wait_p95: float | None
    compute_p50: float | None
    compute_p95: float | None
    right_context_wait_p50: float | None
    speech_to_text_p50: float | None
    speech_to_text_p95: float | None
    real_time_factor: float | None
    backlog_ms: float
    skipped_ms: float
    input_overflows: int
    front_end_hit_rate: float | None = None  # window frames whose conv features were reused
    state_hit_rate: float | None = None      # … whose encoder states were reused


class LiveSession:
    def __init__(self, model: CTCModel, plan: ChunkPlan, ring_seconds: float = RING_SECONDS,
                 journal: bool = False, decoder: DecoderSpec = GREEDY, reuse: str = DEFAULT_REUSE):
        self.model = model
        self.decoder = decoder
        self.reuse = reuse
        self.ring = AudioRing(int(ring_seconds * model.sample_rate), model.sample_rate)
        self.worker: StreamWorker | None = None
        self.source: FileSource | MicSource | None = None
        self._plan = plan
        self._stats_from_window = 0  # latency() reads the windows from this one on
        self.capture_block_ms = 0.0
        self.label = ""
        self.journaling = journal
        self.journal: TranscriptJournal | None = None
        self.journal_error: str | None = None
        self._journaled_chars = 0

    def _start(self, source, live: bool, label: str, block_ms: float) -> None:
        if self.worker is not None:
            raise RuntimeError("a session streams once; make a new one")
        self.source = source
        self.label = label
        self.capture_block_ms = block_ms
        g = self.model.geometry
        history_frames = int(HISTORY_S * g.frame_rate)
        self.worker = StreamWorker(self.model, self.ring, self._plan, live=live, keep_frames=history_frames,
                                   keep_windows=history_frames, decoder=self.decoder, reuse=self.reuse, warm=True)
        if self.journaling:
            try:
                self.journal = TranscriptJournal(label, self.model.name)
            except OSError as exc:
                self._journal_failed(exc)
            else:
                self.worker.add_listener(self._journal_commit)
        self.worker.start()
        try:
            source.start()
        except BaseException:
            self.worker.abort()
            self.worker.join()
            raise

    def _journal_failed(self, exc: OSError) -> None:
        """The journal is a safety net: when it cannot be written, transcription goes on without it
        and ``journal_error`` says so."""
        self.journal = None
        self.journal_error = f"transcript journal off: {exc.strerror or exc} ({getattr(exc, 'filename', None) or journal_dir()})"

    def _journal_commit(self, status) -> None:
        if self.journal is None:
            return
        g = self.model.geometry
        try:
            self.journal.append(status.new_text(self._journaled_chars), status.committed_frames * g.frame_seconds)
            self._journaled_chars = status.n_chars
            if status.finished and status.error is None:
                self.journal.close()
        except OSError as exc:
            self._journal_failed(exc)

    def start_file(self, path: Path | str, realtime: bool = True, speed: float = 1.0) -> None:
        block_s = 0.02 if realtime else 0.25
        self._start(FileSource(path, self.ring, realtime=realtime, speed=speed, block_seconds=block_s),
                    live=False, label=str(path), block_ms=block_s * 1000)

    def start_samples(self, samples: np.ndarray, realtime: bool = True, speed: float = 1.0, label: str = "<signal>") -> None:
        self._start(ArraySource(samples, self.ring, realtime=realtime, speed=speed, block_seconds=0.02),
                    live=False, label=label, block_ms=20.0)

    def start_mic(self, device: int | str | None = None, block_ms: float = 20.0) -> None:
        mic = MicSource(self.ring, device=device, block_ms=block_ms)
        self._start(mic, live=True, label=mic.device_name, block_ms=block_ms)

    @property
    def plan(self) -> ChunkPlan:
        return self._plan

    def set_plan(self, plan: ChunkPlan) -> None:
        self._plan = plan
        if self.worker is not None:
            self.worker.set_plan(plan)
            # The figures describe the plan in use: from the first window surely made with it
            # (the one running now may still be the old plan's).
            self._stats_from_window = self.worker.status.windows + 1

    @property
    def status(self) -> StreamStatus | None:
        """The worker's latest published snapshot (None before the run starts)."""
        return self.worker.status if self.worker is not None else None

    def emissions(self, since_frame: int) -> tuple[int, np.ndarray]:
        """(first frame, committed log-prob rows) from ``since_frame`` on, or from the oldest frame
        still kept where that is later."""
        if self.worker is None:
            return since_frame, np.zeros((0, len(self.model.vocab)), np.float32)
        store = self.worker.store
        first = max(since_frame, store.oldest_frame)
        return first, store.committed(first)

    def audio_extent(self) -> tuple[int, int]:
        """(oldest, newest) absolute sample still in the ring, newest exclusive."""
        return self.ring.oldest, self.ring.written

    def audio(self, start: int, end: int) -> np.ndarray | None:
        """Samples [start, end), or None once they have left the ring."""
        return self.ring.read(start, end)

    def window_of(self, frame: int) -> WindowTiming | None:
        """The window (among the kept timings) that committed ``frame``."""
        return None if self.worker is None else self.worker.store.window_of(frame)

    def input_level(self) -> InputLevel:
        """Level of the newest ``LEVEL_WINDOW_S`` of input, for the meter."""
        ring = self.ring
        n = min(ring.written - ring.oldest, int(ring.sample_rate * LEVEL_WINDOW_S))
        block = ring.read(ring.written - n, ring.written) if n > 0 else None
        if block is None or not len(block):
            return InputLevel(-120.0, 0.0, ring.input_overflows)
        rms = float(np.sqrt(np.mean(block ** 2)))
        return InputLevel(20 * np.log10(max(rms, 1e-6)), float(np.max(np.abs(block))), ring.input_overflows)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    @property
    def error(self) -> str | None:
        for obj in (self.source, self.worker):
            err = getattr(obj, "error", None)
            if err is not None:
                return str(err)
        return None

    def stop(self) -> None:
        """End capture; the worker finishes every frame of the audio already captured."""
        if self.source is not None:
            self.source.stop()

    def abort(self, timeout: float = 10.0) -> bool:
        """Stop everything now (closing the window). Returns True when all threads ended."""
        if self.worker is not None:
            self.worker.abort()
        if self.source is not None:
            self.source.stop()
        return self.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.join(timeout) if self.worker is not None else True

    def latency(self) -> LatencyStats:
        g = self.model.geometry
        rate = g.sample_rate
        worker = self.worker
        timings = [t for t in (worker.store.recent_timings(STATS_WINDOWS) if worker else [])
                   if t.index >= self._stats_from_window]

        def pct(values: list[float], q: float) -> float | None:
            return float(np.percentile(values, q)) * 1000 if values else None

        compute = [t.compute for t in timings]
        waits = [t.queue_wait for t in timings]
        rc = [t.right_context_wait for t in timings]
        s2t = [t.finished - t.hop_ready for t in timings]
        hop_s = sum((t.commit_to - t.commit_from) for t in timings) * g.frame_seconds
        frames_done = worker.store.n_frames if worker else 0
        reuse = worker.status.reuse if worker else ReuseStats()
        return LatencyStats(
            capture_block_ms=self.capture_block_ms,
            queue_wait_p50=pct(waits, 50), queue_wait_p95=pct(waits, 95),
            compute_p50=pct(compute, 50), compute_p95=pct(compute, 95),
            right_context_wait_p50=pct(rc, 50),
            speech_to_text_p50=pct(s2t, 50), speech_to_text_p95=pct(s2t, 95),
            real_time_factor=(sum(compute) / hop_s) if hop_s else None,
            # In whole frames: the few samples past the last frame's RF are no frame's, never waiting.
            backlog_ms=max(0, g.frames(self.ring.written) - frames_done) * g.frame_ms,
            skipped_ms=(worker.skipped_samples if worker else 0) * 1000 / rate,
            input_overflows=self.ring.input_overflows,
            front_end_hit_rate=reuse.front_end_hit_rate,
            state_hit_rate=reuse.state_hit_rate,
        )
