"""The Qt-free transcript history: appends, run separators, Clear in the middle of a word."""

import numpy as np

from asrlive.decoder import GreedyCTCDecoder
from asrlive.transcript_history import TranscriptHistory
from asrlive.vocab import CHAR_VOCAB
from asrlive.worker import StreamStatus

from .test_decoder import path_to_log_probs

VOCAB = list(CHAR_VOCAB)


class FakeRun:
    """A decoder fed window by window, publishing snapshots as the worker does."""

    def __init__(self, path: str):
        self.lp = path_to_log_probs(path)
        self.d = GreedyCTCDecoder(VOCAB, CHAR_VOCAB["<pad>"], "|", 0.02)

    def upto(self, frame: int, right: int = 0) -> StreamStatus:
        self.d.feed(self.d.next_frame, self.lp[self.d.next_frame:frame])
        return StreamStatus(log=self.d.log, text=self.d.cursor(), committed_frames=frame,
                            tentative_text=self.d.preview(self.lp[frame:frame + right]))


def shown(updates) -> str:
    return "".join(u.text for u in updates)


def test_updates_append_exactly_the_committed_text():
    h = TranscriptHistory()
    h.start_run()
    run = FakeRun("__HHHEE_LLL_LLOO__||_WWOORR_LLDD___")
    updates = [h.update(run.upto(f, right=3)) for f in range(0, 36, 4)] + [h.update(run.upto(36))]
    assert shown(updates) == "HELLO WORLD" == h.text()
    assert all(len(u.text) == len(u.probs) for u in updates)
    assert [p is None for p in np.concatenate([u.probs for u in updates if u.probs])].count(True) == 1  # the space


def test_clear_mid_word_drops_the_rest_of_that_word_from_text_and_words():
    h = TranscriptHistory()
    h.start_run()
    run = FakeRun("__HHHEE_LLL_LLOO__||_WWOORR_LLDD___||_AGAIN__")
    h.update(run.upto(24))          # "HELLO WO" shown
    h.clear()
    updates = [h.update(run.upto(36)), h.update(run.upto(len(run.lp)))]  # "RLD", then " AGAIN"
    assert shown(updates) == "AGAIN" == h.text()
    assert [w.text for w in h.words()] == ["AGAIN"]


def test_clear_between_words_keeps_the_next_word():
    h = TranscriptHistory()
    h.start_run()
    run = FakeRun("__HHHEE_LLL_LLOO__||_WWOORR_LLDD___")
    h.update(run.upto(16))          # "HELLO" shown
    h.clear()
    assert shown([h.update(run.upto(36))]) == "WORLD" == h.text()


def test_runs_are_separated_and_continue_the_time_line():
    h = TranscriptHistory()
    out = []
    for _ in range(2):
        h.start_run()
        run = FakeRun("_HI||_YOU__")
        out.append(h.update(run.upto(11)))
    assert shown(out) == "HI YOU\nHI YOU" == h.text()
    words = h.words()
    assert [w.text for w in words] == ["HI", "YOU", "HI", "YOU"]
    assert words[2].start == words[0].start + 11 * 0.02


def test_recovered_text_comes_first_on_its_own_line():
    h = TranscriptHistory()
    h.add_recovered("  OLD TEXT ")
    assert h.full_update().text == "OLD TEXT"
    h.start_run()
    assert h.update(FakeRun("_HI__").upto(5)).text == "\nHI"
    assert h.text() == "OLD TEXT\nHI"


def test_text_recovered_mid_run_goes_before_the_run_which_goes_on():
    """The recovery question can be answered while a run streams: that run keeps showing its words."""
    h = TranscriptHistory()
    h.start_run()
    run = FakeRun("_HI||_YOU__")
    assert h.update(run.upto(3)).text == "HI"
    h.add_recovered("OLD TEXT")
    assert h.full_update().text == "OLD TEXT\nHI"
    assert h.update(run.upto(11)).text == " YOU"
    assert h.text() == "OLD TEXT\nHI YOU" == h.full_update().text
    assert [w.text for w in h.words()] == ["HI", "YOU"]


def test_a_run_going_on_in_the_next_window_recolours_its_character():
    run = FakeRun("HH_")
    run.lp = path_to_log_probs("HH_", confidence=0.9)
    run.lp[0] = path_to_log_probs("H", confidence=0.4)[0]
    h = TranscriptHistory()
    h.start_run()
    first = h.update(run.upto(1))
    assert first.text == "H" and first.probs[0] < 0.5
    second = h.update(run.upto(3))
    assert second.text == "" and second.last_prob > 0.85
