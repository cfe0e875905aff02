"""Frame-exact chunk planning: windows of [left context | hop | right context] whose frames are
the model's own frames at absolute indices.

Every window starts on a multiple of the frame step J, so frame i of a window is absolute frame
window_first + i; the hop's frames are committed, left-context frames are dropped, right-context
frames are shown as tentative and recomputed by the next window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .geometry import Geometry

# The Whisper encoder's 30 s of positions, and half the file ring (transcribe.RING_SECONDS), so
# every window fits in both; streaming never needs longer ones.
MAX_WINDOW_MS = 30_000.0


@dataclass(frozen=True)
class ChunkSettings:
    """What the user asks for, in milliseconds."""

    chunk_ms: float = 1000.0
    # Left context costs compute, never latency. The embedded model's streamed CER keeps falling
    # to about 4 s of it and no further (held-out synthetic dev set: models/evaluate.py, card).
    left_ms: float = 4000.0
    # The shortest right context tried whose streamed CER on the held-out synthetic dev set is
    # within 1.10x offline's (500 ms read 1.107x; 640 ms 1.095x; 800 ms 1.083x): model card.
    right_ms: float = 640.0

    @property
    def label(self) -> str:
        """"hop/left/right" in ms, as the CLI's plan options and the reports write a plan."""
        return f"{self.chunk_ms:g}/{self.left_ms:g}/{self.right_ms:g}"

    def check(self) -> None:
        """Raise ValueError for settings no model can plan with (needs no model, so the CLI
        checks them before loading one)."""
        if not all(math.isfinite(v) for v in (self.chunk_ms, self.left_ms, self.right_ms)):
            raise ValueError("chunk and context sizes must be finite numbers of ms")
        if self.chunk_ms <= 0 or self.left_ms < 0 or self.right_ms < 0:
            raise ValueError("chunk must be > 0 ms and contexts >= 0 ms")
        window_ms = self.chunk_ms + self.left_ms + self.right_ms
        if window_ms > MAX_WINDOW_MS:
            raise ValueError(f"a window (left + chunk + right) of {window_ms:g} ms is longer than "
                             f"{MAX_WINDOW_MS:g} ms, the longest asrlive streams")


@dataclass(frozen=True)
class ChunkPlan:
    """Settings snapped to whole frames of one model's geometry."""

    geometry: Geometry
    hop_frames: int
    left_frames: int
    right_frames: int

    @classmethod
    def from_settings(cls, geometry: Geometry, settings: ChunkSettings) -> "ChunkPlan":
        settings.check()
        step = geometry.frame_ms
        return cls(
            geometry=geometry,
            hop_frames=max(1, round(settings.chunk_ms / step)),
            left_frames=round(settings.left_ms / step),
            right_frames=round(settings.right_ms / step),
        )

    def _ms(self, frames: int) -> float:
        return frames * self.geometry.frame_ms

    @property
    def hop_ms(self) -> float:
        return self._ms(self.hop_frames)

    @property
    def left_ms(self) -> float:
        return self._ms(self.left_frames)

    @property
    def right_ms(self) -> float:
        return self._ms(self.right_frames)

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency of a hop's first frame, the one that waits longest: the hop and the
        right context, plus the conv RF's overhang past the last frame step."""
        g = self.geometry
        return self._ms(self.hop_frames + self.right_frames) + (g.rf - g.jump) * 1000.0 / g.sample_rate

    @property
    def window_frames(self) -> int:
        """Frames of a window with its whole left and right context."""
        return self.left_frames + self.hop_frames + self.right_frames

    @property
    def compute_factor(self) -> float:
        """Frames computed per frame committed in steady state."""
        return self.window_frames / self.hop_frames

    def window(self, commit_from: int, total_frames: int | None = None) -> "Window":
        """The window that commits frames from ``commit_from``. ``total_frames`` is known once
        the stream has ended: then the window is clipped to what exists (end-of-stream flush)."""
        first = max(0, commit_from - self.left_frames)
        commit_to = commit_from + self.hop_frames
        last = commit_to + self.right_frames  # exclusive
        if total_frames is not None:
            commit_to = min(commit_to, total_frames)
            last = min(last, total_frames)
        start, end = self.geometry.window_span(first, last)
        return Window(first_frame=first, commit_from=commit_from, commit_to=commit_to, end_frame=last,
                      start_sample=start, end_sample=end)

    def windows(self, total_frames: int) -> list["Window"]:
        """Every window of a stream whose length is known, ``total_frames`` frames, in order."""
        return [self.window(c, total_frames) for c in range(0, total_frames, self.hop_frames)]

    def newest_commit_from(self, total_frames: int) -> int:
        """Where the newest complete window of ``total_frames`` starts committing."""
        return total_frames - self.hop_frames - self.right_frames

    def settings(self) -> ChunkSettings:
        return ChunkSettings(self.hop_ms, self.left_ms, self.right_ms)

    def describe(self) -> dict[str, float | int]:
        return {
            "hop_frames": self.hop_frames, "left_frames": self.left_frames,
            "right_frames": self.right_frames, "hop_ms": self.hop_ms, "left_ms": self.left_ms,
            "right_ms": self.right_ms, "latency_ms": round(self.latency_ms, 3),
            "compute_factor": round(self.compute_factor, 4),
        }


@dataclass(frozen=True)
class Window:
    """Absolute frames [first_frame, end_frame) computed from samples [start_sample, end_sample);
    frames [commit_from, commit_to) are kept, the ones after are tentative."""

    first_frame: int
    commit_from: int
    commit_to: int
    end_frame: int
    start_sample: int
    end_sample: int

    @property
    def n_frames(self) -> int:
        return self.end_frame - self.first_frame
