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
    return cer_of_edits(char_edits(refs, hyps), refs)


def cer_of_edits(edits: Sequence[int], refs: Sequence[str]) -> float:
    return sum(edits) / max(1, sum(len(r) for r in refs))


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True))
    return edits / max(1, sum(len(r.split()) for r in refs))


BOOTSTRAP_RESAMPLES = 2000
# Fewer utterances than this give a bootstrap interval narrower than the truth (one gives none
# at all): the ratio is still reported, its interval is not.
MIN_BOOTSTRAP_UTTERANCES = 10


def relative_error_interval(edits: Sequence[int], base_edits: Sequence[int], level: float = 0.95,
                            seed: int = 0) -> tuple[float, float, float]:
    """One system's corpus error rate over another's on the same utterances (their edits per
    utterance against the same references, so the reference lengths cancel), and a ``level``
    interval by paired bootstrap: utterances are resampled with replacement, both systems' edits
    together, which keeps what the two share (a hard utterance is hard for both) out of the
    interval's width. Utterances are the unit, so where one speaker says several of them the
    interval holds for these speakers, not for others. A resample in which the base system makes
    no error counts as an infinite ratio (none if neither system errs). The interval's ends are
    NaN below ``MIN_BOOTSTRAP_UTTERANCES`` utterances, and everything is NaN where the base
    system made no error at all."""
    e, b = np.asarray(edits, np.int64), np.asarray(base_edits, np.int64)
    if e.shape != b.shape or e.ndim != 1:
        raise ValueError("edits of both systems are needed for the same utterances")
    if b.sum() == 0:
        return math.nan, math.nan, math.nan
    ratio = float(e.sum() / b.sum())
    if len(e) < MIN_BOOTSTRAP_UTTERANCES:
        return ratio, math.nan, math.nan
    picks = np.random.default_rng(seed).integers(0, len(e), size=(BOOTSTRAP_RESAMPLES, len(e)))
    num, den = e[picks].sum(axis=1), b[picks].sum(axis=1)
    keep = (den > 0) | (num > 0)
    with np.errstate(divide="ignore"):
        ratios = num[keep] / den[keep]
    # Order statistics rather than interpolation, which infinite ratios would turn into NaN.
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return ratio, float(lo), float(hi)
