"""Greedy CTC decoding over stitched emissions, incremental across windows.

The state carried between calls (the last frame's symbol and the open word) is what makes a
repeat or a blank that straddles a window boundary collapse exactly as it would offline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# A pause this long between two characters ends a word even without a delimiter: CTC models emit
# the delimiter between words of one utterance but not across the silence after it, so without
# this, the last word of one sentence and the first of the next would run together.
PAUSE_ENDS_WORD_S = 0.5


@dataclass
class Char:
    symbol: str
    frame: int        # first frame of its run
    last_frame: int   # last frame of its run
    prob: float       # highest posterior within its run


@dataclass
class Word:
    chars: list[Char] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(c.symbol for c in self.chars)

    @property
    def start_frame(self) -> int:
        return self.chars[0].frame

    @property
    def end_frame(self) -> int:
        """Exclusive."""
        return self.chars[-1].last_frame + 1

    @property
    def confidence(self) -> float:
        return float(np.mean([c.prob for c in self.chars]))


@dataclass(frozen=True)
class TimedWord:
    text: str
    start: float
    end: float
    confidence: float

    def as_dict(self) -> dict[str, float | str]:
        return {"word": self.text, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(self.confidence, 4)}


class GreedyCTCDecoder:
    def __init__(self, vocab: list[str], blank_id: int, word_delimiter: str | None, frame_seconds: float):
        self.vocab = vocab
        self.blank_id = blank_id
        self.frame_seconds = frame_seconds
        self._pause_frames = max(1, round(PAUSE_ENDS_WORD_S / frame_seconds))
        delimiters = {" "} | ({word_delimiter} if word_delimiter else set())
        self._delimiter_ids = {i for i, s in enumerate(vocab) if s in delimiters}
        # <s>, </s>, <unk> and friends: never part of the text, but they do break a repeat.
        self._silent_ids = {i for i, s in enumerate(vocab) if s.startswith("<") and s.endswith(">") and len(s) > 2}
        self._prev: int | None = None
        self._next_frame = 0
        self.words: list[Word] = []
        self._open = Word()

    @property
    def next_frame(self) -> int:
        return self._next_frame

    def _step(self, state: tuple[int | None, Word, list[Word]], frame: int, row: np.ndarray) -> tuple[int | None, Word]:
        prev, open_word, closed = state
        if not np.all(np.isfinite(row)):
            # A gap (skipped audio): a word cannot span it.
            if open_word.chars:
                closed.append(open_word)
            return None, Word()
        idx = int(np.argmax(row))
        prob = math.exp(float(row[idx]))
        if idx == prev:
            if open_word.chars and idx not in self._delimiter_ids | self._silent_ids | {self.blank_id}:
                ch = open_word.chars[-1]
                ch.last_frame = frame
                ch.prob = max(ch.prob, prob)
            return prev, open_word
        if idx in self._delimiter_ids:
            if open_word.chars:
                closed.append(open_word)
                open_word = Word()
        elif idx != self.blank_id and idx not in self._silent_ids:
            if open_word.chars and frame - open_word.chars[-1].last_frame > self._pause_frames:
                closed.append(open_word)
                open_word = Word()
            open_word.chars.append(Char(self.vocab[idx], frame, frame, prob))
        return idx, open_word

    def feed(self, first_frame: int, log_probs: np.ndarray) -> None:
        """Commit frames [first_frame, first_frame + len(log_probs)); must follow on from the last."""
        if first_frame != self._next_frame:
            raise ValueError(f"decoder expected frame {self._next_frame}, got {first_frame}")
        prev, open_word = self._prev, self._open
        for i, row in enumerate(log_probs):
            prev, open_word = self._step((prev, open_word, self.words), first_frame + i, row)
        self._prev, self._open = prev, open_word
        self._next_frame = first_frame + len(log_probs)

    def skip_to(self, frame: int) -> None:
        """Skipped audio up to ``frame``: close the open word, as a NaN row would."""
        if frame > self._next_frame:
            self._prev, self._open = self._step((self._prev, self._open, self.words), frame,
                                                np.full(len(self.vocab), np.nan))
            self._next_frame = frame

    def preview(self, log_probs: np.ndarray) -> str:
        """Text that the frames right after the committed ones would add (tentative), without
        committing them. Committed text is always a prefix of committed + tentative."""
        closed = list(self.words)
        open_copy = Word([Char(c.symbol, c.frame, c.last_frame, c.prob) for c in self._open.chars])
        prev = self._prev
        for i, row in enumerate(log_probs):
            prev, open_copy = self._step((prev, open_copy, closed), self._next_frame + i, row)
        full = " ".join([w.text for w in closed] + ([open_copy.text] if open_copy.chars else []))
        return full[len(self.committed_text()):]

    def committed_text(self) -> str:
        parts = [w.text for w in self.words] + ([self._open.text] if self._open.chars else [])
        return " ".join(parts)

    def timed_words(self, include_open: bool = True) -> list[TimedWord]:
        words = self.words + ([self._open] if include_open and self._open.chars else [])
        fs = self.frame_seconds
        return [TimedWord(w.text, w.start_frame * fs, w.end_frame * fs, w.confidence) for w in words]

    def committed_chars(self) -> list[Char]:
        """Committed characters in order, with their posteriors (for confidence colouring)."""
        return [c for w in self.words for c in w.chars] + list(self._open.chars)
