"""Two hours of a synthetic emission stream through everything the worker does per window besides
the model (emission store, decoder, tentative preview, snapshot) and the transcript history the
views read: the work per window, counted as memory allocated, must not grow with the session."""

import tracemalloc

import numpy as np
import pytest

from asrlive.beam_decoder import BeamCTCDecoder
from asrlive.decoder import GreedyCTCDecoder
from asrlive.emissions import EmissionStore
from asrlive.transcript_history import TranscriptHistory
from asrlive.vocab import CHAR_VOCAB
from asrlive.worker import StreamStatus

from .test_decoder import path_to_log_probs

HOP, RIGHT = 50, 25          # 1 s windows with 0.5 s of right context, at 20 ms frames
WINDOWS = 2 * 3600           # two hours
KEEP_FRAMES = 15 * 60 * 50   # what a live session keeps for the views


def sentence_path(words: list[str]) -> str:
    """Two frames a letter, a blank between letters, the delimiter between words, then a pause."""
    path = "||".join("_".join(ch * 2 for ch in word) for word in words) + "_" * 40
    return path + "_" * (-len(path) % HOP)


@pytest.mark.parametrize("decoder_class, windows, compared, confidence", [
    (GreedyCTCDecoder, WINDOWS, 600, 0.8),
    # 20 minutes, peaky posteriors as a trained model gives (beam search tries every symbol
    # above e^-8 in every frame, and would insert faint ones in long blank runs of a flat floor)
    (BeamCTCDecoder, 1200, 200, 0.999),
])
def test_per_window_work_does_not_grow_with_the_transcript(decoder_class, windows, compared, confidence):
    words = "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG".split()
    pattern = path_to_log_probs(sentence_path(words), confidence=confidence)
    cycle = len(pattern)
    stream = np.concatenate([pattern, pattern])  # room for the right context past a cycle's end
    vocab = list(CHAR_VOCAB)
    decoder = decoder_class(vocab, CHAR_VOCAB["<pad>"], "|", 0.02)
    store = EmissionStore(len(vocab), keep_frames=KEEP_FRAMES, keep_windows=KEEP_FRAMES)
    history = TranscriptHistory()
    history.start_run()
    allocated = []
    tracemalloc.start()
    try:
        for w in range(windows):
            first = w * HOP
            at = first % cycle
            rows, right = stream[at:at + HOP], stream[at + HOP:at + HOP + RIGHT]
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            store.commit(first, rows)
            decoder.feed(first, rows)
            status = StreamStatus(log=decoder.log, text=decoder.cursor(), tentative_text=decoder.preview(right),
                                  committed_frames=store.n_frames, windows=w + 1)
            history.update(status)
            allocated.append(tracemalloc.get_traced_memory()[1] - base)
    finally:
        tracemalloc.stop()
    sentences = windows * HOP // cycle
    assert history.text().split() == words * sentences + words[:len(status.committed_text.split()) - len(words) * sentences]
    # The median window: an occasional append that regrows a list or starts a block is amortised.
    first_ten, last_ten = np.median(allocated[:compared]), np.median(allocated[-compared:])
    assert last_ten <= 1.2 * first_ten, (first_ten, last_ten)
    assert store.n_frames - store.oldest_frame <= KEEP_FRAMES + EmissionStore.BLOCK_FRAMES
