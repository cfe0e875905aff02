"""Error rates for transcripts: character and word error rate by Levenshtein distance, and how
sure a ratio of two systems' error rates on the same utterances is."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def char_edits(refs: Sequence[str], hyps: Sequence[str]) -> list[int]:
    """Character edits per utterance (spaces count)."""
    return [edit_distance(r, h) for r, h in zip(refs, hyps, strict=True)]


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus CER: total character edits over total reference characters (spaces count)."""
    return sum(char_edits(refs, hyps)) / max(1, sum(len(r) for r in refs))


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True))
    return edits / max(1, sum(len(r.split()) for r in refs))


BOOTSTRAP_RESAMPLES = 2000


def relative_error_interval(edits: Sequence[int], base_edits: Sequence[int], level: float = 0.95,
                            seed: int = 0) -> tuple[float, float, float]:
    """One system's corpus error rate over another's on the same utterances (their edits per
    utterance against the same references, so the reference lengths cancel), and a ``level``
    interval by paired bootstrap: utterances are resampled with replacement, both systems' edits
    together, which keeps what the two share (a hard utterance is hard for both) out of the
    interval's width. NaNs where the base system made no error at all."""
    e, b = np.asarray(edits, np.int64), np.asarray(base_edits, np.int64)
    if e.shape != b.shape or e.ndim != 1:
        raise ValueError("edits of both systems are needed for the same utterances")
    if b.sum() == 0:
        return math.nan, math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(e), size=(BOOTSTRAP_RESAMPLES, len(e)))
    num, den = e[picks].sum(axis=1), b[picks].sum(axis=1)
    ratios = num[den > 0] / den[den > 0]
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(e.sum() / b.sum()), float(lo), float(hi)
