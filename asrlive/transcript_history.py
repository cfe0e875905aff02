"""The transcript a user reads, copies and saves: every run since the last Clear, on one time line.

Qt-free: the main window feeds it the worker's snapshots and shows the ``TextUpdate`` it returns.
Committed text only grows (``asrlive.decoder``), so an update appends the characters committed
since the last one: its cost does not grow with the transcript. Whole-transcript reads (``text``,
``words``) are for copying and saving.
"""

from __future__ import annotations

from dataclasses import dataclass

from .decoder import Char, CommittedLog, LogCursor, TimedWord, words_at

RUN_SEPARATOR = "\n"


def _probs_of(pieces: list[str], chars: list[Char]) -> list[float | None]:
    """One entry per character of the joined ``pieces``: the character's posterior at the end of
    its piece, None for the space or separator before it."""
    probs: list[float | None] = []
    for piece, ch in zip(pieces, chars):
        probs.extend([None] * (len(piece) - 1) + [ch.prob])
    return probs


@dataclass(frozen=True)
class TextUpdate:
    """What to add to a shown transcript. ``probs`` has one entry per character of ``text``: the
    committed character's posterior, or None for spaces and run separators. ``last_prob`` is set
    when the posterior of the last character shown before ``text`` has risen since (its run of
    frames went on)."""

    text: str = ""
    probs: tuple[float | None, ...] = ()
    last_prob: float | None = None
    tentative: str = ""


@dataclass
class _Run:
    """One run's share of the transcript: its log from character ``first_char`` on (later than 0
    after a Clear), as of ``cursor``; ``offset_s`` places it on the time line."""

    log: CommittedLog | None
    cursor: LogCursor = LogCursor()
    first_char: int = 0
    offset_s: float = 0.0
    duration_s: float = 0.0
    recovered_text: str = ""  # a run recovered from a journal: text alone, no log
    shown: int = 0            # characters of the log already returned by update
    last_shown: Char | None = None
    skip_to_word: bool = False  # a Clear came mid-word: first_char moves on to the next word's start

    def text(self) -> str:
        if self.log is None:
            return self.recovered_text
        return self.log.text(self.first_char, self.cursor.n_chars).lstrip()

    def words(self) -> list[TimedWord]:
        if self.log is None:
            return []
        return [w.shifted(self.offset_s) for w in words_at(self.log, self.cursor, self.first_char)]


class TranscriptHistory:
    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._current: _Run | None = None
        self._shown_any = False  # whether a separator goes before the next run's first character

    def _time_line_end(self) -> float:
        return sum(r.duration_s for r in self._runs) + (self._current.duration_s if self._current else 0.0)

    def start_run(self) -> None:
        """A new run starts; the current one (if any) keeps what it last showed."""
        if self._current is not None:
            self._runs.append(self._current)
            self._current = None
        self._current = _Run(None, offset_s=self._time_line_end())

    def add_recovered(self, text: str) -> None:
        """Text recovered from an interrupted run's journal, as a finished run before the current
        one, which goes on; redraw from ``full_update``."""
        run = _Run(None, recovered_text=text.strip())
        self._runs.append(run)
        self._shown_any = self._shown_any or bool(run.recovered_text)

    def update(self, status) -> TextUpdate:
        """Take a worker snapshot (``StreamStatus``) of the current run; returns what to add."""
        run = self._current
        if run is None or status.log is None:
            return TextUpdate(tentative=status.tentative_text)
        run.log, run.cursor = status.log, status.text
        run.duration_s = status.committed_frames * status.log.frame_seconds
        log, n = run.log, status.text.n_chars
        if run.skip_to_word:
            # The rest of the word Clear cut into is not shown (nor copied or saved).
            while run.first_char < n and not log.pieces[run.first_char].startswith(" "):
                run.first_char += 1
            run.skip_to_word = run.first_char >= n
        last_prob = None
        if run.last_shown is not None:
            now = status.text.last_char if run.shown == n else log.chars[run.shown - 1]
            if now is not None and now.prob != run.last_shown.prob:
                last_prob = now.prob
                run.last_shown = now
        start = max(run.shown, run.first_char)
        if n <= start:
            return TextUpdate(last_prob=last_prob, tentative=self._tentative(run, status))
        pieces = log.pieces[start:n]
        if run.shown <= run.first_char:  # the run's first visible character: no leading space
            pieces = [pieces[0].lstrip()] + pieces[1:]
            if self._shown_any:
                pieces[0] = RUN_SEPARATOR + pieces[0]
        chars = log.chars[start:n - 1] + [status.text.last_char]
        run.shown, run.last_shown = n, chars[-1]
        self._shown_any = True
        return TextUpdate("".join(pieces), tuple(_probs_of(pieces, chars)), last_prob, self._tentative(run, status))

    def _tentative(self, run: _Run, status) -> str:
        tentative = status.tentative_text
        if run.shown <= run.first_char:  # nothing of this run shown yet
            tentative = tentative.lstrip()
            if tentative and self._shown_any:
                tentative = RUN_SEPARATOR + tentative
        return tentative

    def clear(self) -> None:
        """Forget everything shown; the current run goes on from its next character."""
        self._runs.clear()
        self._shown_any = False
        if self._current is not None:
            cur = self._current
            self._current = _Run(cur.log, cur.cursor, first_char=cur.shown, duration_s=cur.duration_s,
                                 shown=cur.shown, skip_to_word=cur.shown > 0)

    def _all_runs(self) -> list[_Run]:
        return self._runs + ([self._current] if self._current is not None else [])

    def full_update(self) -> TextUpdate:
        """Everything since the last Clear, as one update onto an empty view (recolouring)."""
        text, probs = [], []
        for run in self._all_runs():
            if run.log is None:
                part, part_probs = run.recovered_text, [None] * len(run.recovered_text)
            else:
                n = run.shown
                start = run.first_char
                pieces = run.log.pieces[start:n]
                if not pieces:
                    continue
                pieces = [pieces[0].lstrip()] + pieces[1:]
                part, part_probs = "".join(pieces), _probs_of(pieces, run.log.chars[start:n])
            if not part:
                continue
            if text:
                text.append(RUN_SEPARATOR)
                probs.append(None)
            text.append(part)
            probs.extend(part_probs)
        return TextUpdate("".join(text), tuple(probs))

    def text(self) -> str:
        """The committed transcript since the last Clear, runs on separate lines."""
        return RUN_SEPARATOR.join(t for t in (r.text() for r in self._all_runs()) if t)

    def words(self) -> list[TimedWord]:
        """Every word since the last Clear, on one time line across runs."""
        return [w for r in self._all_runs() for w in r.words()]
