"""CTC decoding over stitched emissions, incremental across windows, into an append-only log.

The contract every decoder keeps: committed text only grows. Characters, once committed, are
appended to a ``CommittedLog`` and never removed or changed (a character's confidence may still
rise while its run of frames continues); a decoder that changes its mind does so only in the
tentative text, which is replaced on every window. The journal, the transcript view, the CLI's
live printing and the exports all rely on this and read the log by position.

Every call that runs per window costs the new frames, never the transcript so far: the log is
appended to, and readers keep their own cursors into it.

The greedy decoder's state carried between calls (the last frame's symbol and the open word) is
what makes a repeat or a blank that straddles a window boundary collapse exactly as offline.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# A pause this long between two characters ends a word even without a delimiter: CTC models emit
# the delimiter between words of one utterance but not across the silence after it, so without
# this, the last word of one sentence and the first of the next would run together.
PAUSE_ENDS_WORD_S = 0.5


@dataclass(frozen=True, slots=True)
class Char:
    symbol: str
    frame: int        # first frame of its run
    last_frame: int   # last frame of its run
    prob: float       # highest posterior within its run


@dataclass(frozen=True, slots=True)
class TimedWord:
    text: str
    start: float
    end: float
    confidence: float

    def as_dict(self) -> dict[str, float | str]:
        return {"word": self.text, "start": round(self.start, 3), "end": round(self.end, 3),
                "confidence": round(self.confidence, 4)}

    def shifted(self, seconds: float) -> "TimedWord":
        return TimedWord(self.text, self.start + seconds, self.end + seconds, self.confidence)


class CommittedLog:
    """Committed characters and closed words, append-only. ``pieces[i]`` is the text that character
    i adds: its symbol, after a space when it starts a word that follows another, so the committed
    text is ``"".join(pieces)``. Only the last character is ever replaced (by a longer run of the
    same symbol); readers on other threads read by the counts a snapshot gives them."""

    def __init__(self, frame_seconds: float):
        self.frame_seconds = frame_seconds
        self.chars: list[Char] = []
        self.pieces: list[str] = []
        self.words: list[TimedWord] = []   # closed words; the open one is chars[open_from:]
        self.word_starts: list[int] = []   # each closed word's first character
        self.open_from: int | None = None  # first character of the open word

    # -- the only writes: what committing text means, for every decoder ---------------------------
    def append(self, char: Char, starts_word: bool) -> None:
        """Commit ``char``; ``starts_word`` closes the open word first and opens a new one."""
        piece = char.symbol
        if starts_word or self.open_from is None:
            self.close_word()
            piece = " " + piece if self.chars else piece
            self.open_from = len(self.chars)
        self.chars.append(char)
        self.pieces.append(piece)

    def extend_last(self, char: Char) -> None:
        """The last character's run went on (same symbol, later last frame, maybe higher prob)."""
        assert char.symbol == self.chars[-1].symbol
        self.chars[-1] = char

    def close_word(self) -> None:
        if self.open_from is not None:
            self.words.append(self.word_of(self.open_from, len(self.chars)))
            self.word_starts.append(self.open_from)
            self.open_from = None

    def text(self, start: int = 0, end: int | None = None) -> str:
        """Committed text of characters [start, end)."""
        return "".join(self.pieces[start:end])

    def word_of(self, first: int, end: int) -> TimedWord:
        chars = self.chars[first:end]
        fs = self.frame_seconds
        return TimedWord("".join(c.symbol for c in chars), chars[0].frame * fs, (chars[-1].last_frame + 1) * fs,
                         float(np.mean([c.prob for c in chars])))


@dataclass(frozen=True, slots=True)
class LogCursor:
    """How much of a ``CommittedLog`` one moment covers: characters [0, n_chars), closed words
    [0, n_words), and the open word from ``open_from`` (None when no word is open)."""

    n_chars: int = 0
    n_words: int = 0
    open_from: int | None = None
    last_char: Char | None = None  # chars[n_chars - 1] as it was at that moment


class CTCDecoder(Protocol):
    """What the worker needs of a decoder."""

    log: CommittedLog

    @property
    def next_frame(self) -> int: ...

    def feed(self, first_frame: int, log_probs: np.ndarray) -> None: ...

    def skip_to(self, frame: int) -> None: ...

    def finish(self) -> None: ...

    def preview(self, log_probs: np.ndarray) -> str: ...

    def cursor(self) -> LogCursor: ...

    def committed_text(self) -> str: ...

    def timed_words(self) -> list[TimedWord]: ...


class LogReads:
    """The reads every decoder offers over its log."""

    log: CommittedLog

    def cursor(self) -> LogCursor:
        chars = self.log.chars
        return LogCursor(len(chars), len(self.log.words), self.log.open_from, chars[-1] if chars else None)

    # -- whole-transcript reads: O(transcript), for the end of a stream and for tests ------------
    def committed_text(self) -> str:
        return self.log.text()

    def timed_words(self) -> list[TimedWord]:
        return words_at(self.log, self.cursor())


def symbol_classes(vocab: list[str], word_delimiter: str | None) -> tuple[set[int], set[int]]:
    """Ids of word delimiters, and of special tokens (<s>, </s>, <unk>, ...) that are never part
    of the text but do break a repeat."""
    delimiters = {" "} | ({word_delimiter} if word_delimiter else set())
    return ({i for i, s in enumerate(vocab) if s in delimiters},
            {i for i, s in enumerate(vocab) if s.startswith("<") and s.endswith(">") and len(s) > 2})


def pause_frames(frame_seconds: float) -> int:
    return max(1, round(PAUSE_ENDS_WORD_S / frame_seconds))


class GreedyCTCDecoder(LogReads):
    def __init__(self, vocab: list[str], blank_id: int, word_delimiter: str | None, frame_seconds: float):
        self.vocab = vocab
        self.blank_id = blank_id
        self.frame_seconds = frame_seconds
        self._pause_frames = pause_frames(frame_seconds)
        self._delimiter_ids, silent_ids = symbol_classes(vocab, word_delimiter)
        self._no_text_ids = self._delimiter_ids | silent_ids | {blank_id}
        self.log = CommittedLog(frame_seconds)
        self._prev: int | None = None
        self._next_frame = 0

    @property
    def next_frame(self) -> int:
        return self._next_frame

    def _action(self, prev: int | None, open_word: bool, last_frame: int, frame: int, idx: int) -> str:
        """What a frame whose best symbol is ``idx`` does to the text, given the symbol before it,
        whether a word is open and its last character's last frame: "gap" (-1: skipped audio,
        which no word spans), "extend" (the last character's run goes on), "close" (a
        delimiter), "new_word" or "char" (a character starting a word or continuing one), or ""."""
        if idx < 0:
            return "gap"
        if idx == prev:
            return "extend" if open_word and idx not in self._no_text_ids else ""
        if idx in self._delimiter_ids:
            return "close"
        if idx in self._no_text_ids:
            return ""
        return "char" if open_word and frame - last_frame <= self._pause_frames else "new_word"

    def _step(self, frame: int, idx: int, prob: float) -> None:
        log = self.log
        open_word = log.open_from is not None
        action = self._action(self._prev, open_word, log.chars[-1].last_frame if open_word else 0, frame, idx)
        self._prev = None if action == "gap" else idx
        if action == "extend":
            last = log.chars[-1]
            log.extend_last(Char(last.symbol, last.frame, frame, max(last.prob, prob)))
        elif action in ("gap", "close"):
            log.close_word()
        elif action:
            log.append(Char(self.vocab[idx], frame, frame, prob), starts_word=action == "new_word")

    @staticmethod
    def _best(log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best symbol per row (-1 for a row with NaN: a gap) and its posterior."""
        finite = np.isfinite(log_probs).all(axis=1) if len(log_probs) else np.zeros(0, bool)
        idx = np.where(finite, np.argmax(np.nan_to_num(log_probs, nan=-np.inf), axis=1), -1)
        best = np.take_along_axis(log_probs, np.maximum(idx, 0)[:, None], axis=1)[:, 0] if len(idx) else idx
        return idx, best

    def feed(self, first_frame: int, log_probs: np.ndarray) -> None:
        """Commit frames [first_frame, first_frame + len(log_probs)); must follow on from the last."""
        check_follows(self._next_frame, first_frame)
        idx, best = self._best(log_probs)
        for i, (k, lp) in enumerate(zip(idx.tolist(), best.tolist())):
            self._step(first_frame + i, k, math.exp(lp) if k >= 0 else 0.0)
        self._next_frame = first_frame + len(log_probs)

    def skip_to(self, frame: int) -> None:
        """Skipped audio up to ``frame``: close the open word, as a NaN row would."""
        if frame > self._next_frame:
            self._step(frame, -1, 0.0)
            self._next_frame = frame

    def finish(self) -> None:
        """The stream ended: the open word is closed."""
        self.log.close_word()

    def preview(self, log_probs: np.ndarray) -> str:
        """Text that the frames right after the committed ones would add (tentative), without
        committing them. Committed text is always a prefix of committed + tentative."""
        prev, open_word = self._prev, self.log.open_from is not None
        last_frame = self.log.chars[-1].last_frame if open_word else 0
        have_text = bool(self.log.chars)
        out = []
        idx, _ = self._best(log_probs)
        for i, k in enumerate(idx.tolist()):
            frame = self._next_frame + i
            action = self._action(prev, open_word, last_frame, frame, k)
            prev = None if action == "gap" else k
            if action == "extend":
                last_frame = frame
            elif action in ("gap", "close"):
                open_word = False
            elif action:
                out.append(" " + self.vocab[k] if action == "new_word" and have_text else self.vocab[k])
                open_word, have_text, last_frame = True, True, frame
        return "".join(out)


def check_follows(expected: int, first_frame: int) -> None:
    if first_frame != expected:
        raise ValueError(f"decoder expected frame {expected}, got {first_frame}")


def words_at(log: CommittedLog, cursor: LogCursor, from_char: int = 0) -> list[TimedWord]:
    """Every word as of ``cursor``, the open one included; from character ``from_char`` on, a
    word cut by it kept as the fragment that follows (what the text shows after a Clear)."""
    k = max(0, bisect_right(log.word_starts, from_char, 0, cursor.n_words) - 1)
    words = []
    for i in range(k, cursor.n_words):
        start = log.word_starts[i]
        end = log.word_starts[i + 1] if i + 1 < cursor.n_words else (
            cursor.open_from if cursor.open_from is not None else cursor.n_chars)
        if end <= from_char:
            continue
        words.append(log.words[i] if start >= from_char else log.word_of(from_char, end))
    if cursor.open_from is not None and cursor.n_chars > max(cursor.open_from, from_char):
        words.append(log.word_of(max(cursor.open_from, from_char), cursor.n_chars))
    return words
