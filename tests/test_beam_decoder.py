"""CTC prefix beam search with a word LM: same text as greedy on clear paths, the LM choosing
between close spellings, streaming that commits only what every hypothesis agrees on, and the
ARPA reader's arithmetic and errors."""

import gzip
import math

import numpy as np
import pytest

from asrlive.beam_decoder import BeamCTCDecoder, BeamSettings
from asrlive.decoding import GREEDY, decoder_spec, read_lm
from asrlive.lm import LMError, WordLM
from asrlive.vocab import CHAR_VOCAB

from .test_decoder import FRAME_S, PATH, VOCAB, new_decoder, path_to_log_probs

BLANK = CHAR_VOCAB["<pad>"]

# A toy trigram model: HELLO WORLD is likely, WORLB is not a word.
ARPA = """\\data\\
ngram 1=6
ngram 2=4

\\1-grams:
-2.0\t<unk>\t0
-99\t<s>\t-0.5
-1.0\t</s>\t0
-1.0\tHELLO\t-0.3
-1.2\tWORLD\t-0.2
-1.5\tWORD\t-0.2

\\2-grams:
-0.2\t<s> HELLO
-0.1\tHELLO WORLD
-0.3\tWORLD </s>
-0.4\tWORD </s>

\\end\\
"""


@pytest.fixture
def lm(tmp_path) -> WordLM:
    path = tmp_path / "toy.arpa.gz"
    with gzip.open(path, "wt") as f:
        f.write(ARPA)
    return WordLM.load(path)


def beam(lm=None, **settings) -> BeamCTCDecoder:
    return BeamCTCDecoder(VOCAB, BLANK, "|", FRAME_S, BeamSettings(**settings), lm)


def ambiguous(second: str, first: str, p_second: float) -> np.ndarray:
    """HELLO WOR?L? where the last letter is ``second`` with p_second and ``first`` with the rest
    of 0.9: acoustics that slightly prefer one spelling."""
    lp = path_to_log_probs("__HHEELL_LLOO__||__WWOORRLL_XX___")
    x = lp.shape[0] - 5
    p = np.full(len(VOCAB), 0.1 / (len(VOCAB) - 2))
    p[CHAR_VOCAB[second]], p[CHAR_VOCAB[first]] = p_second, 0.9 - p_second
    lp[x] = lp[x + 1] = np.log(p)
    return lp


def test_without_lm_a_clear_path_reads_as_greedy():
    lp = path_to_log_probs(PATH)
    g, b = new_decoder(), beam()
    for d in (g, b):
        d.feed(0, lp)
        d.finish()
    assert b.committed_text() == g.committed_text() == "HELLO WORLD"
    assert [(w.text, round(w.start, 2)) for w in b.timed_words()] == [(w.text, round(w.start, 2)) for w in g.timed_words()]


def test_the_lm_picks_the_word_it_knows_where_acoustics_barely_prefer_another(lm):
    lp = ambiguous("B", "D", 0.48)
    g, b = new_decoder(), beam(lm, alpha=1.0, beta=0.0)
    for d in (g, b):
        d.feed(0, lp)
        d.finish()
    assert g.committed_text() == "HELLO WORLB"
    assert b.committed_text() == "HELLO WORLD"
    # Clear acoustics still win over the LM: a word it does not know, spelt unambiguously (with
    # no extra unknown-word offset: two frames of this toy path cannot outweigh the default -10).
    b2 = beam(lm, alpha=1.0, beta=0.0, unknown_offset=0.0)
    b2.feed(0, ambiguous("B", "D", 0.89))
    b2.finish()
    assert b2.committed_text() == "HELLO WORLB"


@pytest.mark.parametrize("window", [1, 3, 7, 50])
def test_streaming_commits_only_agreed_text_and_ends_as_one_pass(lm, window):
    lp = ambiguous("B", "D", 0.48)
    whole = beam(lm, alpha=1.0, beta=0.0)
    whole.feed(0, lp)
    whole.finish()
    d = beam(lm, alpha=1.0, beta=0.0)
    committed = ""
    for start in range(0, len(lp), window):
        d.feed(start, lp[start:start + window])
        now = d.committed_text()
        assert now.startswith(committed)  # committed text only grows
        tentative = d.preview(lp[start + window:start + window + 5])
        assert (now + tentative).startswith(now)
        committed = now
        if start + window < len(lp) - 8:  # the ambiguous letter is not decided before its frames
            assert "WORLB" not in now and "WORLD" not in now
    d.finish()
    assert d.committed_text() == whole.committed_text() == "HELLO WORLD"
    assert [w.text for w in d.timed_words()] == ["HELLO", "WORLD"]


def test_preview_changes_nothing(lm):
    lp = ambiguous("B", "D", 0.48)
    d = beam(lm)
    d.feed(0, lp[:20])
    before = (d.committed_text(), d.cursor())
    tentative = d.preview(lp[20:])
    assert d.committed_text() + tentative == "HELLO WORLD"
    assert (d.committed_text(), d.cursor()) == before
    d.feed(20, lp[20:])
    d.finish()
    assert d.committed_text() == "HELLO WORLD"


def test_gaps_and_pauses_end_words():
    lp = path_to_log_probs("__HHEE__LLOO__")
    d = beam()
    d.feed(0, lp[:6])
    d.skip_to(30)
    d.feed(30, lp[6:])
    pause = path_to_log_probs("|_AA" + "_" * 40 + "BB_")
    d.feed(30 + len(lp) - 6, pause)
    d.finish()
    assert d.committed_text() == "HE LO A B"
    with pytest.raises(ValueError, match="expected frame"):
        d.feed(0, lp)


def test_arpa_scores_back_off(lm):
    ln10 = math.log(10)
    assert lm.score(("<s>",), "HELLO") == pytest.approx(-0.2 * ln10)
    # WORD after HELLO: no bigram, so back-off(HELLO) + P(WORD)
    assert lm.score(("<s>", "HELLO"), "WORD") == pytest.approx((-0.3 - 1.5) * ln10)
    assert lm.score(("HELLO",), "ZEBRA") == pytest.approx(-2.0 * ln10)  # unknown word
    assert lm.best_completion("WOR") == pytest.approx(-1.2 * ln10)  # WORLD beats WORD
    assert lm.best_completion("WORLB") is None


@pytest.mark.parametrize("text, message", [
    ("just some words\n", "not an ARPA file"),
    (ARPA.replace("-0.1\tHELLO WORLD\n", ""), "differ from the header"),
    (ARPA.replace("-1.0\tHELLO\t-0.3", "-1.0"), "malformed 1-gram"),
])
def test_bad_arpa_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(LMError, match=message):
        WordLM.load(path)


def test_decoder_spec_checks_choices_and_reads_a_model_folders_lm(tmp_path):
    assert decoder_spec("greedy", None, None) is GREEDY
    with pytest.raises(ValueError, match="--lm needs --decoder beam or auto"):
        decoder_spec("greedy", "x.arpa", None)
    with pytest.raises(LMError, match="not found"):
        decoder_spec("beam", str(tmp_path / "missing.arpa"), None)
    folder = tmp_path / "model" / "language_model"
    folder.mkdir(parents=True)
    (folder / "lm.arpa").write_text(ARPA)
    (folder / "attrs.json").write_text('{"alpha": 0.7, "beta": 2.5, "width": 8}')
    spec = decoder_spec("beam", None, tmp_path / "model")
    assert (spec.beam.alpha, spec.beam.beta, spec.beam.width) == (0.7, 2.5, 8) and spec.lm is not None
    assert decoder_spec("beam", "none", tmp_path / "model").lm is None
    # auto: beam search where there is an LM to search with, greedy where there is none
    assert decoder_spec("auto", None, tmp_path / "model").lm is not None
    assert decoder_spec("auto", "none", tmp_path / "model") is GREEDY
    assert decoder_spec("auto", None, tmp_path) is GREEDY
    assert decoder_spec("auto", str(folder / "lm.arpa"), None).kind == "beam"
    (folder / "lm.bin").write_bytes(b"x")
    (folder / "lm.arpa").unlink()
    with pytest.raises(LMError, match="KenLM binary"):
        read_lm(folder)


def test_the_embedded_model_ships_a_language_model():
    from asrlive.model import embedded_model_dir

    spec = decoder_spec("beam", None, embedded_model_dir())
    assert spec.lm is not None and spec.lm.order == 3 and len(spec.lm.words) > 50_000
    assert spec.lm.score(("<s>",), "THE") > spec.lm.score(("<s>",), "XYLOPHONES")


def test_cli_beam_search_writes_what_the_core_decodes(tmp_path, spoken_sentence, embedded_model, capsys):
    import soundfile as sf

    from asrlive.cli import main
    from asrlive.model import embedded_model_dir
    from asrlive.planner import ChunkPlan, ChunkSettings
    from asrlive.transcribe import stream_file

    audio, text = spoken_sentence
    wav = tmp_path / "s.wav"
    sf.write(wav, audio, 16000)
    assert main(["transcribe", "--decoder", "beam", "--precision", "float32", str(wav)]) == 0
    shown = capsys.readouterr().out.strip()
    spec = decoder_spec("beam", None, embedded_model_dir())
    plan = ChunkPlan.from_settings(embedded_model.geometry, ChunkSettings())
    assert shown == stream_file(embedded_model, wav, plan, decoder=spec).text
    assert shown.split()[0] == text.split()[0], shown


def test_worker_snapshots_with_beam_search_only_grow(spoken_sentence, embedded_model):
    """Through the worker at hop 320 ms, window by window: each snapshot's committed text extends
    the last one's, and the final snapshot holds everything (no tentative text left)."""
    from asrlive.audio.ring import AudioRing
    from asrlive.audio.sources import ArraySource
    from asrlive.model import embedded_model_dir
    from asrlive.planner import ChunkPlan, ChunkSettings
    from asrlive.worker import StreamWorker

    audio, _ = spoken_sentence
    spec = decoder_spec("beam", None, embedded_model_dir())
    ring = AudioRing(60 * 16000, 16000)
    plan = ChunkPlan.from_settings(embedded_model.geometry, ChunkSettings(320, 1000, 320))
    worker = StreamWorker(embedded_model, ring, plan, decoder=spec)
    seen = []
    worker.add_listener(lambda s: seen.append((s.committed_text, s.tentative_text, s.finished)))
    source = ArraySource(np.concatenate([audio, np.zeros(8000, np.float32)]), ring)
    source.start()
    worker.run()
    assert worker.error is None and len(seen) > 5
    for (before, _, _), (after, _, _) in zip(seen, seen[1:]):
        assert after.startswith(before)
    assert any(tentative for _, tentative, _ in seen[:-1])
    assert seen[-1][2] and seen[-1][1] == "" and seen[-1][0] == worker.decoder.committed_text()
    words = worker.status.words()
    assert " ".join(w.text for w in words) == seen[-1][0]
    for w, nxt in zip(words, words[1:]):  # word times in order, never overlapping
        assert w.start < w.end <= nxt.start
