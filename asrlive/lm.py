"""A word n-gram language model read from an ARPA file (plain or gzip), for beam-search decoding.

Scores are natural-log probabilities with the usual back-off: P(w | h) is the longest n-gram of
h + w that the model holds, times the back-off weights of the shorter histories it skipped. The
model files asrlive ships are small (``models/lm``), so a dictionary per order is enough and the
app needs no compiled LM library.
"""

from __future__ import annotations

import gzip
import math
from pathlib import Path

LN10 = math.log(10.0)


class LMError(ValueError):
    pass


class WordLM:
    def __init__(self, orders: list[dict[tuple[str, ...], tuple[float, float]]], path: str = "<memory>"):
        """``orders[n - 1]`` maps each n-gram to (log10 prob, log10 back-off), as in ARPA."""
        if not orders or not orders[0]:
            raise LMError(f"{path}: no unigrams")
        self.path = path
        self.order = len(orders)
        self._orders = orders
        self._unk = orders[0].get(("<unk>",), (-100.0, 0.0))[0] * LN10
        self._cache: dict[tuple[tuple[str, ...], str], float] = {}
        self.words = frozenset(w for (w,) in orders[0] if not w.startswith("<"))
        # Each prefix's most likely completion (unigram, ln): the look-ahead a beam search
        # scores an open word by, so spellings that lead to likely words are kept.
        best: dict[str, float] = {}
        for (w,), (logp, _) in orders[0].items():
            if not w.startswith("<"):
                for i in range(1, len(w) + 1):
                    if best.get(w[:i], -math.inf) < logp:
                        best[w[:i]] = logp
        self._best_completion = {p: v * LN10 for p, v in best.items()}

    @classmethod
    def load(cls, path: Path | str) -> "WordLM":
        path = Path(path)
        if not path.is_file():
            raise LMError(f"language model {path} not found")
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as f:
                return cls(_parse_arpa(f, str(path)), str(path))
        except (OSError, UnicodeDecodeError, EOFError) as exc:
            raise LMError(f"{path}: not a readable ARPA language model ({exc})") from None

    def score(self, history: tuple[str, ...], word: str) -> float:
        """ln P(word | history); ``history`` starts with "<s>" at a sentence start."""
        history = history[len(history) - self.order + 1:] if self.order > 1 else ()
        key = (history, word)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = self._score(history, word) if word in self.words or word == "</s>" else self._unk
            if len(self._cache) > 200_000:  # bounded for hours of dictation
                self._cache.clear()
        return cached

    def _score(self, history: tuple[str, ...], word: str) -> float:
        backoff = 0.0
        for start in range(len(history) + 1):
            context = history[start:]
            hit = self._orders[len(context)].get(context + (word,))
            if hit is not None:
                return (hit[0] + backoff) * LN10
            found = self._orders[len(context) - 1].get(context) if context else None
            backoff += found[1] if found else 0.0
        return self._unk

    def best_completion(self, partial: str) -> float | None:
        """ln P (unigram) of the likeliest word that starts with ``partial``; None if none does."""
        return self._best_completion.get(partial)


def _parse_arpa(lines, path: str) -> list[dict[tuple[str, ...], tuple[float, float]]]:
    counts: list[int] = []
    orders: list[dict[tuple[str, ...], tuple[float, float]]] = []
    section = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("\\"):
            if line == "\\data\\" or line == "\\end\\":
                section = 0
            elif line.endswith("-grams:"):
                section = int(line[1:line.index("-")])
                if section != len(orders) + 1:
                    raise LMError(f"{path}: {section}-grams out of order")
                orders.append({})
            continue
        if section == 0:
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            continue
        parts = line.split()
        n = section
        if len(parts) not in (n + 1, n + 2):
            raise LMError(f"{path}: malformed {n}-gram line {line[:60]!r}")
        orders[-1][tuple(parts[1:n + 1])] = (float(parts[0]), float(parts[n + 1]) if len(parts) == n + 2 else 0.0)
    if not counts:
        raise LMError(f"{path}: no \\data\\ header: not an ARPA file")
    if [len(o) for o in orders] != counts:
        raise LMError(f"{path}: n-gram counts {[len(o) for o in orders]} differ from the header's {counts}")
    return orders
