"""Two hours of a synthetic emission stream through everything the worker does per window besides
the model (emission store, decoder, tentative preview, snapshot) and the transcript history the
views read: the work per window, counted as memory allocated, must not grow with the session."""

import tracemalloc

import numpy as np

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


def test_per_window_work_does_not_grow_with_the_transcript():
    words = "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG".split()
    pattern = path_to_log_probs(sentence_path(words), confidence=0.8)
    cycle = len(pattern)
    stream = np.concatenate([pattern, pattern])  # room for the right context past a cycle's end
    vocab = list(CHAR_VOCAB)
    decoder = GreedyCTCDecoder(vocab, CHAR_VOCAB["<pad>"], "|", 0.02)
    store = EmissionStore(len(vocab), keep_frames=KEEP_FRAMES, keep_windows=KEEP_FRAMES)
    history = TranscriptHistory()
    history.start_run()
    allocated = []
    tracemalloc.start()
    try:
        for w in range(WINDOWS):
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
    sentences = WINDOWS * HOP // cycle
    assert history.text().split() == words * sentences + words[:len(status.committed_text.split()) - len(words) * sentences]
    # The median window: an occasional append that regrows a list or starts a block is amortised.
    first_ten, last_ten = np.median(allocated[:600]), np.median(allocated[-600:])
    assert last_ten <= 1.2 * first_ten, (first_ten, last_ten)
    assert store.n_frames - store.oldest_frame <= KEEP_FRAMES + EmissionStore.BLOCK_FRAMES
