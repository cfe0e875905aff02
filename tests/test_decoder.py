"""Greedy CTC decoding across window boundaries, committed vs tentative text, word times."""

import numpy as np
import pytest

from asrlive.decoder import GreedyCTCDecoder
from asrlive.vocab import CHAR_VOCAB

VOCAB = list(CHAR_VOCAB)
FRAME_S = 0.02


def path_to_log_probs(path: str, confidence: float = 0.9) -> np.ndarray:
    """One frame per character of ``path``: '_' is blank, '|' the word delimiter."""
    ids = [CHAR_VOCAB["<pad>"] if ch == "_" else CHAR_VOCAB[ch] for ch in path]
    probs = np.full((len(ids), len(VOCAB)), (1 - confidence) / (len(VOCAB) - 1), np.float32)
    probs[np.arange(len(ids)), ids] = confidence
    return np.log(probs)


def new_decoder() -> GreedyCTCDecoder:
    return GreedyCTCDecoder(VOCAB, CHAR_VOCAB["<pad>"], "|", FRAME_S)


# Runs of one symbol (HHH, LLL) and a doubled letter separated by a blank (L_L).
PATH = "__HHHEE_LLL_LLOO__||_WWOORR_LLDD___"


def test_offline_decode():
    d = new_decoder()
    d.feed(0, path_to_log_probs(PATH))
    assert d.committed_text() == "HELLO WORLD"
    words = d.timed_words()
    assert [w.text for w in words] == ["HELLO", "WORLD"]
    assert words[0].start == pytest.approx(2 * FRAME_S)
    assert words[0].end == pytest.approx(16 * FRAME_S)
    assert words[1].start == pytest.approx(21 * FRAME_S)
    assert all(w.confidence == pytest.approx(0.9, abs=1e-5) for w in words)


@pytest.mark.parametrize("split", range(1, len(PATH)))
def test_word_across_window_boundary_is_decoded_once(split):
    lp = path_to_log_probs(PATH)
    d = new_decoder()
    d.feed(0, lp[:split])
    d.feed(split, lp[split:])
    assert d.committed_text() == "HELLO WORLD"
    assert [w.text for w in d.timed_words()] == ["HELLO", "WORLD"]


@pytest.mark.parametrize("split", [4, 9, 12, 24])
def test_tentative_text_extends_committed(split):
    lp = path_to_log_probs(PATH)
    d = new_decoder()
    d.feed(0, lp[:split])
    committed = d.committed_text()
    tentative = d.preview(lp[split:])
    assert committed + tentative == "HELLO WORLD"
    assert d.committed_text() == committed  # preview changed nothing
    assert d.next_frame == split


def test_frames_must_follow_on():
    d = new_decoder()
    d.feed(0, path_to_log_probs("__H"))
    with pytest.raises(ValueError):
        d.feed(5, path_to_log_probs("E"))


def test_skipped_audio_breaks_words():
    d = new_decoder()
    d.feed(0, path_to_log_probs("HE"))
    d.skip_to(10)
    d.feed(10, path_to_log_probs("LO"))
    assert d.committed_text() == "HE LO"


def test_nan_rows_are_gaps():
    lp = path_to_log_probs("HE__LO")
    lp[2:4] = np.nan
    d = new_decoder()
    d.feed(0, lp)
    assert d.committed_text() == "HE LO"


@pytest.mark.parametrize("split", [3, 20, 30])
def test_a_long_pause_ends_a_word_without_a_delimiter(split):
    """Sentence-final words are followed by silence, not by '|': a pause of more than
    PAUSE_ENDS_WORD_S between two characters separates them, wherever the windows are cut."""
    from asrlive.decoder import PAUSE_ENDS_WORD_S

    pause = round(PAUSE_ENDS_WORD_S / FRAME_S)
    lp = path_to_log_probs("DOG" + "_" * (pause + 1) + "SO" + "_" * (pause - 1) + "ON")
    d = new_decoder()
    d.feed(0, lp[:split])
    assert d.committed_text() + d.preview(lp[split:]) == "DOG SOON"
    d.feed(split, lp[split:])
    assert d.committed_text() == "DOG SOON"
    assert [w.text for w in d.timed_words()] == ["DOG", "SOON"]
