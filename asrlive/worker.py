"""The CTC worker: waits on the ring, runs the model on each planned window, keeps the hop's frames.

``StreamWorker.run`` is the whole loop; a thread runs it for live use, the CLI and tests call it
directly once the source is started. Plans may be swapped while streaming: the next window uses
the new one, and the committed-frame cursor carries on, so no frame is emitted twice or skipped.
"""

from __future__ import annotations

import threading
import time
from copy import copy
from dataclasses import dataclass, field

from .audio.ring import AudioRing
from .decoder import CommittedLog, LogCursor, TimedWord, words_at
from .decoding import GREEDY, DecoderSpec
from .emissions import EmissionStore, WindowTiming
from .model import CTCModel
from .planner import ChunkPlan, Window
from .window_reuse import DEFAULT_REUSE, ReuseStats, new_runner, warm_up

# How far behind the newest left context may reach; the ring frees older samples for writers.
MAX_LEFT_CONTEXT_S = 10.0


@dataclass(frozen=True)
class StreamStatus:
    """One immutable snapshot of progress, published after every window for any reader thread.
    The committed text is read through ``log`` (append-only) up to ``text``'s counts, so a
    snapshot costs the same at the end of a two-hour session as at its start."""

    log: CommittedLog | None = None
    text: LogCursor = LogCursor()
    tentative_text: str = ""
    committed_frames: int = 0
    windows: int = 0
    window: WindowTiming | None = None  # the window this snapshot follows
    skipped_samples: int = 0
    backlog_samples: int = 0
    finished: bool = False
    error: str | None = None
    plan: dict = field(default_factory=dict)
    reuse: ReuseStats = field(default_factory=ReuseStats)  # a copy: what the windows so far reused

    @property
    def n_chars(self) -> int:
        return self.text.n_chars

    def new_text(self, since_char: int) -> str:
        """Committed text added after the first ``since_char`` characters."""
        return "" if self.log is None else self.log.text(since_char, self.text.n_chars)

    @property
    def committed_text(self) -> str:
        """All committed text: O(transcript), for the end of a stream and for tests."""
        return self.new_text(0)

    def words(self) -> list[TimedWord]:
        """All words, the open one included: O(transcript), for exports."""
        return [] if self.log is None else words_at(self.log, self.text)


class StreamWorker:
    def __init__(self, model: CTCModel, ring: AudioRing, plan: ChunkPlan, *, live: bool = False,
                 max_backlog_s: float = 3.0, keep_frames: int | None = None, keep_windows: int | None = None,
                 decoder: DecoderSpec = GREEDY, reuse: str = DEFAULT_REUSE, warm: bool = False):
        """``keep_frames``/``keep_windows``: how many of the newest emission rows and window
        timings the store keeps (None: all, for a file transcribed whole). ``reuse``: what
        windows reuse from the ones before (``asrlive.window_reuse``). ``warm``: run the plan's
        window shapes once on silence before the first window (``window_reuse.warm_up``), while
        the ring fills with its audio (no longer than that takes)."""
        if ring.sample_rate != model.sample_rate:
            raise ValueError(f"ring at {ring.sample_rate} Hz, model at {model.sample_rate} Hz")
        self.model = model
        self.ring = ring
        self._check_fits(plan)
        self._plan = plan
        self.live = live
        self.max_backlog_samples = int(max_backlog_s * ring.sample_rate)
        self.store = EmissionStore(len(model.vocab), keep_frames, keep_windows)
        self.decoder = decoder.new(model)
        self.runner = new_runner(model, reuse)
        self.reuse = reuse
        self.warm = warm
        self.skipped_samples = 0
        self.error: BaseException | None = None
        self.status = StreamStatus(plan=plan.describe())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._windows = 0
        self._tentative = ""
        self._listeners: list = []
        self._updated = threading.Condition()

    def add_listener(self, fn) -> None:
        """``fn(status)`` runs on the worker thread after every window and at the end; keep it short."""
        self._listeners.append(fn)

    def wait_update(self, seen_windows: int, timeout: float | None = None) -> StreamStatus:
        """Block until more than ``seen_windows`` windows ran, the stream ended, or ``timeout``."""
        with self._updated:
            self._updated.wait_for(lambda: self.status.windows > seen_windows or self.status.finished, timeout)
            return self.status

    @property
    def plan(self) -> ChunkPlan:
        return self._plan

    def set_plan(self, plan: ChunkPlan) -> None:
        """Use ``plan`` from the next window on."""
        if plan.geometry != self.model.geometry:
            raise ValueError("plan made for another model's geometry")
        self._check_fits(plan)
        self._plan = plan

    def _check_fits(self, plan: ChunkPlan) -> None:
        # A window longer than the ring would wait for audio a blocked writer never delivers.
        full = plan.window(plan.left_frames)  # the first window with its whole left context
        if full.end_sample - full.start_sample > self.ring.capacity:
            raise ValueError(f"a window of {(full.end_sample - full.start_sample) / self.ring.sample_rate:.1f} s "
                             f"does not fit in the {self.ring.capacity / self.ring.sample_rate:.0f} s audio ring")

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="asrlive-ctc", daemon=True)
        self._thread.start()

    def abort(self) -> None:
        """Stop after the current window without draining (window closing, app exit)."""
        self._stop.set()
        self.ring.wake()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Process windows until the ring is closed and drained, or ``abort`` is called."""
        try:
            if self.warm:
                # Within the time the first window's audio takes to arrive, so the warm-up never
                # puts the stream behind.
                first = self._plan.window(0)
                warm_up(self.model, self._plan, self.reuse, budget_s=first.end_sample / self.model.sample_rate,
                        stop=self._stop)
            self._loop()
        except BaseException as exc:
            self.error = exc
        finally:
            self.decoder.finish()
            self._publish(finished=True)

    def _loop(self) -> None:
        g = self.model.geometry
        commit_from = 0
        while not self._stop.is_set():
            plan = self._plan
            window = plan.window(commit_from)
            have = self.ring.wait_for(window.end_sample, self._stop)
            if self._stop.is_set():
                return
            if not have:
                total = g.frames(self.ring.written)
                if commit_from >= total:
                    return  # closed and every frame emitted
                window = plan.window(commit_from, total_frames=total)
            if self.live:
                commit_from = self._skip_if_behind(plan, commit_from)
                window = plan.window(commit_from) if have else window
            window = self._fit_to_ring(plan, window)
            if window is None:  # the audio for these frames is gone (overwritten): skip past it
                commit_from = self._skip_to(plan.newest_commit_from(g.frames(self.ring.written)), commit_from)
                continue
            if not self._process(window):
                continue  # a live writer lapped us mid-read: _fit_to_ring skips ahead next time
            commit_from = window.commit_to
            self.ring.release(self._keep_from(plan.window(commit_from)))

    def _keep_from(self, upcoming: Window) -> int:
        """The oldest sample the ring keeps: MAX_LEFT_CONTEXT_S before the upcoming window, less
        where the window would then not fit beside it (a blocked writer could not deliver it)."""
        sample_rate = self.model.geometry.sample_rate
        wanted = upcoming.start_sample - int(MAX_LEFT_CONTEXT_S * sample_rate)
        return max(0, min(upcoming.start_sample, max(wanted, upcoming.end_sample - self.ring.capacity)))

    def _skip_to(self, frame: int, commit_from: int) -> int:
        if frame <= commit_from:
            return commit_from
        self.skipped_samples += (frame - commit_from) * self.model.geometry.jump
        self.decoder.skip_to(frame)
        return frame

    def _skip_if_behind(self, plan: ChunkPlan, commit_from: int) -> int:
        """Live policy: when the backlog passes max_backlog, drop the oldest audio and jump to the
        newest complete window, so the transcript stays live; the gap is counted and left as NaN
        frames in the store."""
        window = plan.window(commit_from)
        if self.ring.written - window.end_sample <= self.max_backlog_samples:
            return commit_from
        return self._skip_to(plan.newest_commit_from(self.model.geometry.frames(self.ring.written)), commit_from)

    def _fit_to_ring(self, plan: ChunkPlan, window: Window) -> Window | None:
        """Shrink the left context if its oldest samples are no longer in the ring."""
        if window.start_sample >= self.ring.oldest:
            return window
        g = self.model.geometry
        first = -(-self.ring.oldest // g.jump)
        if first > window.commit_from:
            return None
        return Window(first, window.commit_from, window.commit_to, window.end_frame,
                      first * g.jump, window.end_sample)

    def _process(self, window: Window) -> bool:
        g = self.model.geometry
        began = time.monotonic()
        audio_ready = self.ring.time_of(window.end_sample - 1)
        hop_end = g.window_span(window.first_frame, window.commit_to)[1]
        hop_ready = self.ring.time_of(hop_end - 1)
        samples = self.ring.read(window.start_sample, window.end_sample)
        if samples is None:
            return False
        started = time.monotonic()
        log_probs = self.runner.log_probs(window, samples)
        finished = time.monotonic()
        lo, hi = window.commit_from - window.first_frame, window.commit_to - window.first_frame
        self.store.commit(window.commit_from, log_probs[lo:hi])
        self.decoder.feed(window.commit_from, log_probs[lo:hi])
        self._tentative = self.decoder.preview(log_probs[hi:])
        timing = WindowTiming(self._windows, window.first_frame, window.commit_from, window.commit_to,
                              window.end_frame, audio_ready, hop_ready, began, started, finished,
                              time.monotonic())
        self.store.add_timing(timing)
        self._windows += 1
        self._publish(timing)
        return True

    def _publish(self, timing: WindowTiming | None = None, finished: bool = False) -> None:
        self.status = StreamStatus(
            log=self.decoder.log,
            text=self.decoder.cursor(),
            tentative_text="" if finished else self._tentative,
            committed_frames=self.store.n_frames,
            windows=self._windows,
            window=timing or self.status.window,
            skipped_samples=self.skipped_samples,
            backlog_samples=max(0, self.ring.written - self.store.n_frames * self.model.geometry.jump),
            finished=finished,
            error=None if self.error is None else f"{type(self.error).__name__}: {self.error}",
            plan=self._plan.describe(),
            reuse=copy(self.runner.stats),
        )
        for fn in self._listeners:
            fn(self.status)
        with self._updated:
            self._updated.notify_all()
