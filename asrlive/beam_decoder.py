"""Streaming CTC prefix beam search, optionally with a word n-gram language model.

Each hypothesis is a prefix of characters and word ends (a chain of ``_Node``) with the
probability of the frames so far ending in a blank and in its last symbol. A word's LM score
(``alpha`` × ln P(word | previous words) + ``beta``, and ``unknown_offset`` for a word the LM
does not know) is added when the word ends. While a word is open it is scored provisionally by
look-ahead: the unigram of the likeliest word it can still become, or an unknown word's score
once no word starts with it, so spellings that lead nowhere fall behind early, but a spelling
on its way to a rare word is not favoured over one on its way to an unknown one.

Streaming: after every window the characters on which *all* surviving hypotheses agree are
committed to the log (they can no longer change: every later hypothesis extends one of these);
the best hypothesis's remainder, with the window's right-context frames decoded on a copy of the
beam, is the tentative text. At a gap or at the end of the stream the best hypothesis is
committed whole. The committed log's contract is the greedy decoder's (``asrlive.decoder``).

Word breaks follow the greedy decoder: a delimiter, or a pause of ``PAUSE_ENDS_WORD_S``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .decoder import Char, CommittedLog, LogReads, check_follows, pause_frames, symbol_classes
from .lm import WordLM

NEG_INF = -math.inf


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    return a if b == NEG_INF else a + math.log1p(math.exp(b - a))


@dataclass(frozen=True)
class BeamSettings:
    width: int = 32
    alpha: float = 0.5             # LM weight (natural-log units)
    beta: float = 1.0              # bonus per word
    token_min_logp: float = -8.0   # symbols less likely than this in a frame are not tried
    prune_logp: float = -12.0      # hypotheses this far below the best are dropped
    max_delay_s: float = 1.0       # text older than this is decided: hypotheses that differ there are dropped
    # Added to a word the LM does not know, beside its <unk> probability: without it, one
    # unknown run-together spelling of several rare words costs less than the words themselves.
    unknown_offset: float = -10.0


@dataclass(eq=False, slots=True)
class _Node:
    """The last symbol of a prefix (a character, or " " for a word end); the prefix is the chain
    of parents. Compared by identity: two nodes are one prefix only if they are the same object."""

    parent: "_Node | None"
    symbol: str
    depth: int
    frame: int
    last_frame: int
    prob: float
    history: tuple[str, ...]   # the LM's context: the last words before the open one
    partial: str               # the open word's characters
    lm: float                  # LM score of the closed words (weighted, bonuses included)
    ahead: float = 0.0         # the open word's provisional LM score (look-ahead), replaced when it ends
    onset: bool = False        # ``frame`` is a frame where the character beat blank
    children: dict = field(default_factory=dict)

    @property
    def is_char(self) -> bool:
        return self.symbol != " " and self.depth > 0


def _touch(node: _Node, frame: int, lp: float, blank: float) -> None:
    """A character's timing: it starts at the first frame where it beats blank (a hypothesis may
    try it, faintly, earlier) and lasts while the following frames do too; its confidence is
    its peak over that run. Later frames of the same symbol are another character's."""
    if lp <= blank:
        return
    if not node.onset:
        node.frame, node.last_frame, node.onset = frame, frame, True
    elif frame == node.last_frame + 1:
        node.last_frame = frame
    else:
        return
    node.prob = max(node.prob, math.exp(lp))


class BeamCTCDecoder(LogReads):
    def __init__(self, vocab: list[str], blank_id: int, word_delimiter: str | None, frame_seconds: float,
                 settings: BeamSettings = BeamSettings(), lm: WordLM | None = None):
        self.vocab = vocab
        self.blank_id = blank_id
        self.settings = settings
        self.lm = lm
        self._pause_frames = pause_frames(frame_seconds)
        self._max_delay = max(1, round(settings.max_delay_s / frame_seconds))
        self._delimiter_ids, silent_ids = symbol_classes(vocab, word_delimiter)
        self._char_ids = np.array(sorted(set(range(len(vocab))) - self._delimiter_ids - silent_ids - {blank_id}), int)
        self._delimiter_list = np.array(sorted(self._delimiter_ids), int)
        self._id = {symbol: i for i, symbol in enumerate(vocab)}
        self._context = lm.order - 1 if lm is not None else 0
        self.log = CommittedLog(frame_seconds)
        self._committed = self._root = _Node(None, " ", 0, -1, -1, 0.0, ("<s>",), "", 0.0)
        self._beams: dict[_Node, tuple[float, float]] = {self._root: (0.0, NEG_INF)}
        self._next_frame = 0

    @property
    def next_frame(self) -> int:
        return self._next_frame

    # -- LM terms --------------------------------------------------------------------------------
    def _word_end_score(self, node: _Node, sentence_end: bool = False) -> float:
        if self.lm is None:
            return self.settings.beta
        s = self.lm.score(node.history, node.partial)
        if sentence_end:
            s += self.lm.score(node.history + (node.partial,), "</s>")
        unknown = 0.0 if node.partial in self.lm.words else self.settings.unknown_offset
        return self.settings.alpha * s + self.settings.beta + unknown

    def _look_ahead(self, partial: str) -> float:
        """An open word's provisional score: the unigram of the likeliest word it can still
        become, or an unknown word's score once no word starts with it."""
        if self.lm is None:
            return 0.0
        best = self.lm.best_completion(partial)
        if best is None:
            return self.settings.alpha * self.lm.score((), "<unk>") + self.settings.unknown_offset
        return self.settings.alpha * best

    # -- prefix tree -----------------------------------------------------------------------------
    def _child(self, node: _Node, symbol: str, frame: int, prob: float, alive) -> _Node:
        """The prefix ``node`` + ``symbol``: the existing node while ``alive(node)`` says it is in
        the beam, else a new one (a pruned node's timing belongs to a path that died)."""
        child = node.children.get(symbol)
        if child is not None and alive(child):
            return child
        if symbol == " ":
            history = node.history + (node.partial,)
            history = history[max(0, len(history) - self._context):] if self._context else ()
            child = _Node(node, " ", node.depth + 1, frame, frame, prob, history, "", node.lm + self._word_end_score(node))
        else:
            partial = node.partial + symbol
            child = _Node(node, symbol, node.depth + 1, frame, frame, prob, node.history, partial, node.lm,
                          self._look_ahead(partial))
        node.children[symbol] = child
        return child

    def _score(self, node: _Node, pb: float, pnb: float) -> float:
        return _logadd(pb, pnb) + node.lm + node.ahead

    # -- one frame -------------------------------------------------------------------------------
    def _step(self, beams: dict, frame: int, row: np.ndarray, live: bool) -> dict:
        """Beams after one more frame. ``live``: timing and confidence of existing characters may
        be updated (not when previewing on a copy)."""
        s = self.settings
        blank = float(row[self.blank_id])
        chars = self._char_ids[row[self._char_ids] > s.token_min_logp].tolist()
        delim = float(row[self._delimiter_list].max()) if len(self._delimiter_list) else NEG_INF
        try_delim = delim > s.token_min_logp
        nxt: dict[_Node, list[float]] = {}
        fresh: set[_Node] = set()

        def child(node: _Node, symbol: str, prob: float) -> _Node:
            c = self._child(node, symbol, frame, prob, lambda n: n in beams or n in nxt or n in fresh)
            fresh.add(c)
            return c

        def add(node: _Node, pb: float, pnb: float) -> None:
            cur = nxt.get(node)
            if cur is None:
                nxt[node] = [pb, pnb]
            else:
                cur[0], cur[1] = _logadd(cur[0], pb), _logadd(cur[1], pnb)

        for node, (pb, pnb) in beams.items():
            total = _logadd(pb, pnb)
            add(node, total + blank, NEG_INF)
            if node.is_char:
                lp = float(row[self._id[node.symbol]])
                add(node, NEG_INF, pnb + lp)  # the last character's run goes on
                if live:
                    _touch(node, frame, lp, blank)
            if try_delim:
                if node.is_char:
                    add(child(node, " ", 0.0), NEG_INF, total + delim)
                else:  # repeated or leading delimiters collapse into one word end
                    add(node, NEG_INF, total + delim)
            for k in chars:
                lp = float(row[k])
                symbol = self.vocab[k]
                base = node
                if node.is_char and frame - node.last_frame > self._pause_frames:
                    base = child(node, " ", 0.0)
                extended = child(base, symbol, math.exp(lp))
                if live:
                    _touch(extended, frame, lp, blank)
                if base is node and symbol == node.symbol:
                    add(extended, NEG_INF, pb + lp)  # a repeat needs a blank between
                else:
                    add(extended, NEG_INF, total + lp)
        ranked = sorted(nxt.items(), key=lambda kv: self._score(kv[0], *kv[1]), reverse=True)[: s.width]
        best = self._score(ranked[0][0], *ranked[0][1])
        kept = {n: (pb, pnb) for n, (pb, pnb) in ranked if self._score(n, pb, pnb) >= best + s.prune_logp}
        return self._decide_old_text(kept, ranked[0][0], frame)

    def _decide_old_text(self, beams: dict, best: _Node, frame: int) -> dict:
        """Bound the commit delay: the best hypothesis's text before ``frame - max_delay`` is
        decided, and hypotheses that differ from it there are dropped."""
        decided = best
        while decided.depth > self._committed.depth and decided.frame > frame - self._max_delay:
            decided = decided.parent
        if decided.depth <= self._committed.depth:
            return beams
        return {n: v for n, v in beams.items() if self._up_to(n, decided.depth) is decided}

    # -- commit ----------------------------------------------------------------------------------
    def _path(self, node: _Node) -> list[_Node]:
        """Nodes after the committed one up to ``node``, oldest first."""
        path = []
        while node is not self._committed:
            path.append(node)
            node = node.parent
        return path[::-1]

    def _common_ancestor(self) -> _Node:
        nodes = list(self._beams)
        depth = min(n.depth for n in nodes)
        nodes = [self._up_to(n, depth) for n in nodes]
        while any(n is not nodes[0] for n in nodes):
            nodes = [n.parent for n in nodes]
        return nodes[0]

    @staticmethod
    def _up_to(node: _Node, depth: int) -> _Node:
        while node.depth > depth:
            node = node.parent
        return node

    def _commit_to(self, node: _Node) -> None:
        last = self.log.chars[-1] if self.log.chars else None
        if last is not None and self._committed.is_char and (
                last.last_frame, last.prob) != (self._committed.last_frame, self._committed.prob):
            self.log.extend_last(Char(last.symbol, last.frame, self._committed.last_frame, self._committed.prob))
        for n in self._path(node):
            if n.symbol == " ":
                self.log.close_word()
            else:
                self.log.append(Char(n.symbol, n.frame, n.last_frame, n.prob), starts_word=n.parent.symbol == " ")
        # Older prefixes are never walked again: let them go, and the siblings they hold.
        node.parent = None
        self._committed = node

    def _best(self, beams: dict, sentence_end: bool) -> _Node:
        def final(item) -> float:
            node, (pb, pnb) = item
            end = self._word_end_score(node, sentence_end) - node.ahead if node.is_char else 0.0
            return self._score(node, pb, pnb) + end
        return max(beams.items(), key=final)[0]

    def _commit_best(self, sentence_end: bool) -> None:
        best = self._best(self._beams, sentence_end)
        if best.is_char:
            best = self._child(best, " ", best.last_frame, 0.0, lambda n: False)
        self._commit_to(best)
        self._beams = {best: (0.0, NEG_INF)}

    # -- the decoder interface -------------------------------------------------------------------
    def feed(self, first_frame: int, log_probs: np.ndarray) -> None:
        """Decode frames [first_frame, first_frame + len(log_probs)) and commit what all
        hypotheses agree on; must follow on from the last call."""
        check_follows(self._next_frame, first_frame)
        finite = np.isfinite(log_probs).all(axis=1)
        for i, row in enumerate(log_probs):
            if finite[i]:
                self._beams = self._step(self._beams, first_frame + i, row, live=True)
            else:
                self._commit_best(sentence_end=False)
        self._next_frame = first_frame + len(log_probs)
        self._commit_to(self._common_ancestor())

    def skip_to(self, frame: int) -> None:
        """Skipped audio up to ``frame``: no word spans it, so the best hypothesis is committed."""
        if frame > self._next_frame:
            self._commit_best(sentence_end=False)
            self._next_frame = frame

    def finish(self) -> None:
        """The stream ended: the best hypothesis, its last word scored as a sentence end, is committed."""
        self._commit_best(sentence_end=True)
        self.log.close_word()

    def preview(self, log_probs: np.ndarray) -> str:
        """The best hypothesis's text after the committed characters, with ``log_probs`` (the
        frames right after the committed ones) decoded on a copy of the beam."""
        beams = self._beams
        for i, row in enumerate(log_probs):
            if not np.isfinite(row).all():
                break
            beams = self._step(beams, self._next_frame + i, row, live=False)
        out, word_open = [], self.log.open_from is not None
        for n in self._path(self._best(beams, sentence_end=False)):
            if n.symbol == " ":
                word_open = False
            else:
                out.append(n.symbol if word_open else (" " + n.symbol if self.log.chars or out else n.symbol))
                word_open = True
        return "".join(out)
