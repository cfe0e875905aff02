"""Receptive fields measured, not assumed: input gradients of one output frame, locality checks,
and how a frame's posteriors converge as left or right context grows.

Everything runs on a CTCModel from ``asrlive.model``; gradients are taken in float64 on a copy of
the model so the live model (and its float16 weights on a GPU) is untouched.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .geometry import Geometry
from .model import CTCModel

MASS_LEVELS = (0.5, 0.9, 0.99)
# The longest context the sensitivity sweep measures on either side. Each frame step more costs
# one model pass per side, and only frames with this much audio on a side are swept, so a longer
# reach needs longer recordings; the default plan's right context (640 ms) lies inside it.
SWEEP_REACH_MS = 1000


def float64_copy(model: CTCModel):
    """A float64 CPU copy of the network, for gradients that must not underflow to zero (the
    torch network behind an ONNX Runtime one)."""
    import torch

    with model._lock:
        net = copy.deepcopy(getattr(model.model, "torch_net", model.model)).to("cpu", torch.float64).eval()
    return net


def _prepare(model: CTCModel, samples: np.ndarray):
    import torch

    x = torch.tensor(np.asarray(samples, np.float64))[None]
    x.requires_grad_(True)
    if model.do_normalize:
        xin = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
    else:
        xin = x
    return x, xin


def conv_gradient(model: CTCModel, samples: np.ndarray, frame: int, net=None) -> np.ndarray:
    """|d features[frame] / d input| for the conv feature encoder alone (every channel, summed
    with random signs so no channel's gradient can cancel another's)."""
    import torch

    net = net or float64_copy(model)
    x, xin = _prepare(model, samples)
    feats = net.base_model.feature_extractor(xin)[0]  # (channels, frames)
    weights = torch.tensor(np.random.default_rng(0).choice([-1.0, 1.0], feats.shape[0]), dtype=torch.float64)
    (feats[:, frame] * weights).sum().backward()
    return x.grad[0].abs().numpy()


def output_gradient(model: CTCModel, samples: np.ndarray, frame: int, net=None) -> np.ndarray:
    """|d log p(argmax symbol at frame) / d input| through the whole model."""
    import torch

    net = net or float64_copy(model)
    x, xin = _prepare(model, samples)
    logp = torch.log_softmax(net(xin).logits[0], dim=-1)
    logp[frame, int(torch.argmax(logp[frame]))].backward()
    return x.grad[0].abs().numpy()


def nonzero_span(gradient: np.ndarray, rel_tol: float = 0.0) -> tuple[int, int]:
    """Half-open span [first, last + 1) of samples whose gradient is above ``rel_tol`` * max."""
    idx = np.flatnonzero(gradient > rel_tol * gradient.max())
    return (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 0)


def span_text(span) -> str:
    """A measured span for a table; an empty one means no input sample moves the output, as in
    digital silence under a fixed log-mel floor, where every mel bin sits on the floor."""
    return "none (silence)" if tuple(span) == (0, 0) else str(tuple(span))


@dataclass(frozen=True)
class EffectiveRF:
    """Central spans holding a share of the gradient mass, in samples relative to the frame centre
    (left extent, right extent)."""

    frame: int
    centre_sample: float
    spans: dict[float, tuple[float, float]]
    nonzero: tuple[int, int]

    def as_dict(self, sample_rate: int) -> dict:
        ms = 1000.0 / sample_rate
        return {
            "frame": self.frame,
            "nonzero_span_samples": list(self.nonzero),
            **{f"mass{int(p * 100)}_left_ms": round(lr[0] * ms, 2) for p, lr in self.spans.items()},
            **{f"mass{int(p * 100)}_right_ms": round(lr[1] * ms, 2) for p, lr in self.spans.items()},
        }


def effective_rf(gradient: np.ndarray, frame: int, centre: float) -> EffectiveRF:
    mass = np.cumsum(gradient) / max(gradient.sum(), 1e-300)
    spans = {}
    for p in MASS_LEVELS:
        lo = float(np.searchsorted(mass, (1 - p) / 2))
        hi = float(np.searchsorted(mass, (1 + p) / 2)) + 1
        spans[p] = (max(0.0, centre - lo), max(0.0, hi - centre))
    return EffectiveRF(frame, centre, spans, nonzero_span(gradient))


def measure_rf(model: CTCModel, samples: np.ndarray, frames: list[int]) -> dict:
    """Analytic conv RF, gradient-measured conv span and whole-model effective RF for ``frames``."""
    g = model.geometry
    net = float64_copy(model)
    rows = []
    for f in frames:
        conv = conv_gradient(model, samples, f, net)
        full = output_gradient(model, samples, f, net)
        a, b = g.frame_span(f)
        eff = effective_rf(full, f, (a + b) / 2)
        rows.append({"frame": f, "analytic_span": [a, b], "conv_gradient_span": list(nonzero_span(conv)),
                     **eff.as_dict(g.sample_rate)})
    return {"rf_samples": g.rf, "jump_samples": g.jump, "window_samples": len(samples), "frames": rows}


def conv_feature_change(model: CTCModel, samples: np.ndarray, frame: int, edit: np.ndarray) -> float:
    """Largest change of the conv features of ``frame`` when ``edit`` (same length as samples,
    zero inside the frame's RF) is added to the input, relative to the features' scale."""
    import torch

    net = float64_copy(model)
    with torch.no_grad():
        feats = []
        for x in (samples, samples + edit):
            _, xin = _prepare(model, x)
            feats.append(net.base_model.feature_extractor(xin.detach())[0][:, frame].numpy())
    return float(np.abs(feats[1] - feats[0]).max() / (np.abs(feats[0]).max() + 1e-12))


def output_change_by_distance(model: CTCModel, samples: np.ndarray, frame: int,
                              distances_ms: list[float], burst_ms: float = 20.0) -> list[tuple[float, float]]:
    """How much the frame's log-probs move (max abs) when a short noise burst is added
    ``distance`` ms after the frame's RF: attention, the positional conv and any global norm
    show here even though the conv RF has ended."""
    g = model.geometry
    a, b = g.frame_span(frame)
    base = model.log_probs(samples)[frame]
    burst = int(burst_ms * g.sample_rate / 1000)
    noise = np.random.default_rng(1).standard_normal(burst).astype(np.float32) * 0.3
    out = []
    for d in distances_ms:
        start = b + int(d * g.sample_rate / 1000)
        if start + burst > len(samples):
            break
        x = samples.copy()
        x[start:start + burst] += noise
        out.append((d, float(np.abs(model.log_probs(x)[frame] - base).max())))
    return out


@dataclass(frozen=True)
class SensitivityPoint:
    context_ms: float
    mean_kl: float       # KL(offline || with this context), nats, averaged over frames
    agreement: float     # share of frames whose greedy symbol equals the offline one


def _kl(p_log: np.ndarray, q_log: np.ndarray) -> np.ndarray:
    return np.sum(np.exp(p_log) * (p_log - q_log), axis=-1)


def context_sensitivity(model: CTCModel, samples: np.ndarray, frames: list[int], contexts_ms: list[float],
                        side: str = "right") -> list[SensitivityPoint]:
    """For each context length, recompute each frame in a window with that much context on ``side``
    (and all there is on the other) and compare it with the offline pass.

    One model pass serves many (frame, context) pairs: with all left context, the window of frame
    f with r frames of right context is the prefix of the audio that ends r frames after f, so the
    prefix ending at frame e gives every frame before e its right-context-(e - f) output at once;
    likewise suffixes for left context. The cost is one pass per distinct window edge, so a sweep
    over every frame of a clip costs about as many passes as the clip has frames, not frames ×
    contexts."""
    if side not in ("right", "left"):
        raise ValueError("side is 'right' or 'left'")
    g = model.geometry
    frames = sorted(set(frames))
    offline = model.log_probs(samples)
    total = len(offline)
    steps = [int(round(ctx / g.frame_ms)) for ctx in contexts_ms]
    by_edge: dict[int, list[tuple[int, int]]] = {}
    for f in frames:
        for i, n in enumerate(steps):
            edge = min(total, f + 1 + n) if side == "right" else max(0, f - n)
            by_edge.setdefault(edge, []).append((f, i))
    kls = np.zeros((len(steps), len(frames)))
    agree = np.zeros((len(steps), len(frames)))
    column = {f: j for j, f in enumerate(frames)}
    for edge, uses in by_edge.items():
        if side == "right":
            first, window = 0, samples[: g.samples_for_frames(edge)]
        else:
            first = edge
            window = samples[edge * g.jump: edge * g.jump + g.samples_for_frames(total - edge)]
        lp = model.log_probs(window)
        for f, i in uses:
            row = lp[f - first]
            kls[i, column[f]] = max(0.0, float(_kl(offline[f], row)))
            agree[i, column[f]] = float(np.argmax(row) == np.argmax(offline[f]))
    return [SensitivityPoint(ctx, float(kls[i].mean()), float(agree[i].mean())) for i, ctx in enumerate(contexts_ms)]


def sweep_reach(frame_ms: float) -> int:
    """SWEEP_REACH_MS in whole frames of ``frame_ms``."""
    return int(SWEEP_REACH_MS / frame_ms)


def context_grid(frame_ms: float, every: int = 1) -> list[float]:
    """The contexts (ms) a sweep measures: every ``every`` frames from none up to the reach."""
    return [round(k * frame_ms, 3) for k in range(0, sweep_reach(frame_ms) + 1, every)]


def describe_context(context_ms: float | None) -> str:
    """A recommendation from ``recommend`` in words."""
    return f"not within {SWEEP_REACH_MS} ms" if context_ms is None else f"{context_ms:.0f} ms"


# The locality probe's protocol, the same for `asrlive rf --empirical` and the RF report.
BURST_DISTANCES_MS = [0, 20, 50, 100, 200, 500, 1000, 2000]
OUTSIDE_RF_MARGIN_S = 0.1  # the edit starts this far past the middle frame's RF


def locality_edit_start(g: Geometry, n_frames: int) -> int:
    """First sample the locality probe changes: ``OUTSIDE_RF_MARGIN_S`` past the middle frame's RF
    (audio that ends before it is too short for the probe)."""
    return g.frame_span(n_frames // 2)[1] + int(OUTSIDE_RF_MARGIN_S * g.sample_rate)


def locality_verdict(change: float, g: Geometry, do_normalize: bool) -> str:
    """The probe's conv-feature change in words, with what makes a front end non-local."""
    if change == 0.0:
        return "local: exactly unchanged"
    causes = [why for why, on in (("GroupNorm over time in conv layer 0", g.feat_extract_norm == "group"),
                                  ("per-window input normalisation", do_normalize)) if on]
    return f"not local: {'; '.join(causes) or 'a front end that reads the whole window'}"


def locality_probe(model: CTCModel, samples: np.ndarray) -> dict:
    """Gradient-measured RFs of five frames across the window; how much the middle frame's conv
    features change when only samples more than 100 ms past its RF change (0 for a local front
    end); and how far a noise burst moves the quarter frame's log-probs, by distance past its RF."""
    g = model.geometry
    n = g.frames(len(samples))
    mid, quarter = n // 2, n // 4
    edit = np.zeros_like(samples)
    start = locality_edit_start(g, n)
    edit[start:] = np.random.default_rng(0).standard_normal(len(samples) - start) * 0.1
    return {"measured": measure_rf(model, samples, sorted({1, quarter, mid, 3 * n // 4, n - 2})),
            "middle_frame": mid, "conv_feature_change_outside_rf": conv_feature_change(model, samples, mid, edit),
            "quarter_frame": quarter,
            "output_change_by_distance": output_change_by_distance(model, samples, quarter, BURST_DISTANCES_MS)}


@dataclass(frozen=True)
class SensitivitySweep:
    right: list[SensitivityPoint]
    left: list[SensitivityPoint]
    right_frames: int
    left_frames: int


def sensitivity_sweep(model: CTCModel, samples: np.ndarray, most_frames: int | None = None) -> SensitivitySweep:
    """Right context (left: all) and left context (right: all) against offline, on every frame
    that has the sweep's reach of audio on that side, or ``most_frames`` of them spread evenly."""
    g = model.geometry
    n = g.frames(len(samples))
    reach = sweep_reach(g.frame_ms)
    contexts = context_grid(g.frame_ms)
    out = {}
    for side in ("right", "left"):
        frames = sweepable_frames(n, reach, side)
        chosen = list(frames) if most_frames is None else sweep_frames(frames, most_frames)
        out[side] = (context_sensitivity(model, samples, chosen, contexts, side) if chosen else [], len(chosen))
    return SensitivitySweep(out["right"][0], out["left"][0], out["right"][1], out["left"][1])


def sweepable_frames(n_frames: int, reach: int, side: str) -> range:
    """The frames with ``reach`` frames of audio on ``side`` (and two frames' margin at the other
    end), so every context length up to ``reach`` is a real window for them."""
    if side not in ("right", "left"):
        raise ValueError("side is 'right' or 'left'")
    return range(2, n_frames - reach - 1) if side == "right" else range(reach, n_frames - 2)


def sweep_frames(frames: range, most: int) -> list[int]:
    """Up to ``most`` of ``frames``, evenly spread: all of them when there are no more, so
    neighbouring frames share their window edges in ``context_sensitivity``."""
    if len(frames) <= most:
        return list(frames)
    return sorted({frames[int(round(i))] for i in np.linspace(0, len(frames) - 1, most)})


# The two recommendation levels every front end reports: (greedy agreement, mean KL) targets.
STRICT = (0.99, 0.05)
LOOSE = (0.95, 0.2)


def recommendations(points: list[SensitivityPoint]) -> dict[str, float | None]:
    """The recommended context at both levels, keyed as the JSON records have them."""
    return {"agreement_99": recommend(points, *STRICT), "agreement_95": recommend(points, *LOOSE)}


def recommend(points: list[SensitivityPoint], agreement: float = STRICT[0], max_kl: float = STRICT[1]) -> float | None:
    """Smallest context whose agreement and KL meet the targets, and every longer one does too."""
    ok = [p.agreement >= agreement and p.mean_kl <= max_kl for p in points]
    for i, p in enumerate(points):
        if all(ok[i:]):
            return p.context_ms
    return None


def frame_sensitivity(model: CTCModel, samples: np.ndarray, frame_in_window: int, net=None,
                      buckets_per_second: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude of one frame over its window, as a peak envelope normalised to 1:
    (bucket start times in seconds from the window start, values)."""
    grad = output_gradient(model, samples, frame_in_window, net)
    bucket = max(1, model.sample_rate // buckets_per_second)
    n = len(grad) // bucket
    env = grad[: n * bucket].reshape(n, bucket).max(axis=1)
    env /= max(float(env.max()), 1e-300)
    return np.arange(n) * bucket / model.sample_rate, env
