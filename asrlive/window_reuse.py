"""Running a stream's windows without recomputing what the previous windows already computed.

Consecutive windows overlap: at hop 320 / left 1000 / right 320 ms a window is 82 frames, of which
66 were in the window before. Two kinds of reuse, both on the absolute frame grid:

- **Front end** (exact): a frame's conv features are a function of its own receptive field's
  samples when the front end is local (the Whisper encoder's fixed-floor log-mel and valid convs;
  a wav2vec2 feature encoder with layer norm and no per-window waveform normalisation). Features
  are kept per absolute frame and only the frames new to a window are computed. Results equal
  the uncached path to float rounding.
- **Left-context states** (an approximation, the Whisper encoder only, ``reuse`` "states"): each
  transformer layer's keys and values for the left-context frames are the ones computed when
  those frames were committed, so a window runs its layers only on its hop and right context, and
  the left context's top-layer output is reused for the head. The left context then sees its own
  past instead of this window's future; positions stay consistent by counting from a base frame
  that moves (one full, exact window) when a stream's positions would pass ``REBASE_FRAMES``.

A runner serves one stream: a worker makes one per stream and a skipped stretch of audio simply
misses the cache. ``ReuseStats`` counts what was reused, for the latency panel and summaries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .model import CTCModel
from .planner import ChunkPlan, Window

# Positions past this many frames from the base frame force a full window that restarts them
# (Whisper was trained on windows that start at position 0; the head on windows of up to 5 s).
REBASE_FRAMES = 250

# What a stream may reuse: nothing (every window from its samples), the front end (exact), or
# the front end and the left context's encoder states (approximate).
REUSE = ("none", "front-end", "states")
DEFAULT_REUSE = "front-end"


@dataclass
class ReuseStats:
    """Frames the windows spanned and how many of them came from a cache."""

    windows: int = 0
    frames: int = 0
    front_end_reused: int = 0
    states_reused: int = 0

    def count(self, window: Window) -> None:
        self.windows += 1
        self.frames += window.n_frames

    @property
    def front_end_hit_rate(self) -> float | None:
        """None before any window ran."""
        return self.front_end_reused / self.frames if self.frames else None

    @property
    def state_hit_rate(self) -> float | None:
        return self.states_reused / self.frames if self.frames else None

    def as_dict(self) -> dict[str, float | int | None]:
        def rounded(rate: float | None) -> float | None:
            return None if rate is None else round(rate, 4)

        return {"windows": self.windows, "frames": self.frames,
                "front_end_hit_rate": rounded(self.front_end_hit_rate), "state_hit_rate": rounded(self.state_hit_rate)}


class FrameCache:
    """Rows for a contiguous run of absolute frames, stacked along ``axis`` of one tensor."""

    def __init__(self, axis: int = 0):
        self.axis = axis
        self.start = 0
        self.rows = None

    @property
    def end(self) -> int:
        return self.start if self.rows is None else self.start + self.rows.shape[self.axis]

    def covers(self, first: int, end: int) -> bool:
        return self.rows is not None and self.start <= first and end <= self.end

    def get(self, first: int, end: int):
        return self.rows.narrow(self.axis, first - self.start, end - first)

    def put(self, first: int, rows) -> None:
        """Store ``rows`` as frames from ``first``: appended when they continue the run, else
        they start a new one."""
        import torch

        if self.rows is not None and first == self.end:
            self.rows = torch.cat([self.rows, rows], self.axis)
        else:
            self.start, self.rows = first, rows

    def drop_before(self, frame: int) -> None:
        if self.rows is not None and frame > self.start:
            keep = max(0, self.end - frame)
            self.rows = self.rows.narrow(self.axis, self.rows.shape[self.axis] - keep, keep)
            self.start = frame if keep else self.end


class PlainRunner:
    """Every window from its samples up: the reference, and any model whose front end is not local."""

    def __init__(self, model: CTCModel):
        self.model = model
        self.stats = ReuseStats()

    def log_probs(self, window: Window, samples: np.ndarray) -> np.ndarray:
        self.stats.count(window)
        return self.model.log_probs(samples)


class _FrontEndCache:
    """Conv features (frames, channels) by absolute frame; computes only the frames not cached."""

    def __init__(self, model: CTCModel, extract):
        self.model = model
        self.extract = extract  # (1, samples) tensor -> (frames, channels)
        self.cache = FrameCache()

    def features(self, window: Window, samples: np.ndarray, stats: ReuseStats):
        """Features of the window's frames, (frames, channels)."""
        import torch

        first, end = window.first_frame, window.end_frame
        cache = self.cache
        have = min(cache.end, end) if cache.rows is not None and cache.start <= first < cache.end else first
        if have < end:
            offset = (have - first) * self.model.geometry.jump
            x = torch.from_numpy(np.ascontiguousarray(samples[offset:], np.float32))[None]
            cache.put(have, self.extract(x.to(self.model.device, self.model.dtype)))
        stats.front_end_reused += have - first
        feats = cache.get(first, end)
        cache.drop_before(first)
        return feats


class Wav2Vec2Runner:
    """Front-end reuse for a transformers ``Wav2Vec2ForCTC`` whose feature encoder is local
    (``wav2vec2_front_end_is_local``); the rest of its forward pass as transformers runs it."""

    def __init__(self, model: CTCModel):
        self.model = model
        self.net = model.model
        self.stats = ReuseStats()
        self._front = _FrontEndCache(model, lambda x: self.net.wav2vec2.feature_extractor(x)[0].transpose(0, 1))

    def log_probs(self, window: Window, samples: np.ndarray) -> np.ndarray:
        def logits():
            base = self.net.wav2vec2
            hidden, _ = base.feature_projection(self._front.features(window, samples, self.stats)[None])
            return self.net.lm_head(base.encoder(hidden).last_hidden_state)[0]

        self.stats.count(window)
        return self.model.infer(logits, self.model.geometry.frames(len(samples)))


def wav2vec2_front_end_is_local(model: CTCModel) -> bool:
    """Whether each frame's conv features depend on its own receptive field only: layer norm
    per frame, not group norm over the whole window (wav2vec2-base), and no per-window
    normalisation of the waveform (``do_normalize``). On ONNX Runtime the model is one graph:
    there is nothing to reuse."""
    config = getattr(model.model, "config", None)
    return (type(model.model).__name__ == "Wav2Vec2ForCTC" and not model.do_normalize
            and getattr(config, "feat_extract_norm", None) == "layer" and not getattr(config, "add_adapter", False))


class WhisperRunner:
    """Front-end reuse, and with ``reuse_states`` left-context state reuse, for asrlive's
    Whisper-encoder CTC models (on torch or ONNX Runtime; reused states always run on torch,
    which takes cached keys and values)."""

    def __init__(self, model: CTCModel, reuse_states: bool):
        self.model = model
        self.net = model.model
        self.reuse_states = reuse_states
        self.stats = ReuseStats()
        self._front = _FrontEndCache(model, lambda x: self.net.features(x)[0])
        self._keys_values = FrameCache(axis=3)  # (layers, 2, heads, frames, head_dim)
        self._top = FrameCache()                # (frames, d_model): the read layer's output
        self._base = 0

    def log_probs(self, window: Window, samples: np.ndarray) -> np.ndarray:
        import torch

        from .whisper_ctc import followed_by_silence

        if self.model.max_window_frames is not None and window.n_frames > self.model.max_window_frames:
            self.stats.count(window)
            return self.model.log_probs(samples)  # more than one pass takes: read in pieces, as offline

        def logits():
            enc = self.net.encoder
            feats = self._front.features(window, samples, self.stats)
            n_frames = feats.shape[0]
            if self.net.silence_after:
                x = torch.from_numpy(np.ascontiguousarray(samples, np.float32))[None].to(feats.device, feats.dtype)
                feats = followed_by_silence(self.net, x, feats[None])[0]
            n_left = window.commit_from - window.first_frame
            reuse = (self.reuse_states and n_left > 0 and window.first_frame >= self._base
                     and window.end_frame - self._base <= REBASE_FRAMES
                     and self._keys_values.covers(window.first_frame, window.commit_from)
                     and self._top.covers(window.first_frame, window.commit_from))
            if reuse:
                past_kv = self._keys_values.get(window.first_frame, window.commit_from)
                past = [(past_kv[n, 0][None], past_kv[n, 1][None]) for n in range(past_kv.shape[0])]
                x = enc.with_positions(feats[n_left:][None], window.commit_from - self._base)
                top_new, own = enc.attend(x, self.net.read_layer, past)
                top = torch.cat([self._top.get(window.first_frame, window.commit_from), top_new[0]])
                self.stats.states_reused += n_left
                new_from = window.commit_from
            elif self.reuse_states:
                # A full window: every frame's states count from the new base, so all are kept.
                self._base = window.first_frame
                top_new, own = enc.attend(enc.with_positions(feats[None], 0), self.net.read_layer)
                top = top_new[0]
                new_from = window.first_frame
            else:
                return self.net.from_features(enc.with_positions(feats[None], 0))[0, :n_frames]
            self._remember(window, new_from, top, own)
            return self.net.head(top[None])[0, :n_frames]

        self.stats.count(window)
        return self.model.infer(logits, self.model.geometry.frames(len(samples)))

    def _remember(self, window: Window, new_from: int, top, own) -> None:
        """Keep the keys, values and top-layer output of frames [new_from, commit_to), the
        frames this window computed (``own``: each layer's keys and values), for later windows."""
        import torch

        kv = torch.stack([torch.stack([k[0], v[0]]) for k, v in own])[:, :, :, :window.commit_to - new_from]
        self._keys_values.put(new_from, kv)
        self._top.put(new_from, top[new_from - window.first_frame:window.commit_to - window.first_frame])
        next_first = window.commit_to - (window.commit_from - window.first_frame)
        self._keys_values.drop_before(next_first)
        self._top.drop_before(next_first)


def new_runner(model: CTCModel, reuse: str = DEFAULT_REUSE):
    """The runner for one stream of ``model`` with the reuse asked for, or as much of it as the
    model allows (``asrlive.window_reuse``)."""
    from .onnx_backend import OnnxWhisperCTC
    from .whisper_ctc import WhisperCTC

    if reuse not in REUSE:
        raise ValueError(f"reuse {reuse!r}: choose from {', '.join(REUSE)}")
    if reuse != "none" and isinstance(model.model, (WhisperCTC, OnnxWhisperCTC)):
        return WhisperRunner(model, reuse_states=reuse == "states")
    if reuse != "none" and wav2vec2_front_end_is_local(model):
        return Wav2Vec2Runner(model)
    return PlainRunner(model)


def warm_up(model: CTCModel, plan: ChunkPlan, reuse: str = DEFAULT_REUSE, budget_s: float | None = None,
            stop=None) -> list[Window]:
    """Run the windows a stream of ``plan`` opens with, on silence, through a throwaway runner:
    the start windows, whose left context grows, and two steady ones (the first to read the
    front-end cache as a stream will). Each shape's one-off costs (ONNX Runtime's first run at a
    length, a GPU's kernel selection) are then paid before the stream rather than by its first
    windows. No window starts once ``budget_s`` has passed or ``stop`` (an Event) is set.
    Returns the windows run."""
    runner = new_runner(model, reuse)
    steady = -(-plan.left_frames // plan.hop_frames)  # the first window with its whole left context
    began = time.monotonic()
    done = []
    for k in range(steady + 2):
        if (stop is not None and stop.is_set()) or (budget_s is not None and time.monotonic() - began >= budget_s):
            break
        window = plan.window(k * plan.hop_frames)
        runner.log_probs(window, np.zeros(window.end_sample - window.start_sample, np.float32))
        done.append(window)
    return done
