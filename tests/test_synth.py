"""The synthetic speech source that training, tests and benchmarks share: fixed held-out splits,
audio at the requested rate, and augmentation that does what it says."""

import numpy as np
import pytest

from asrlive.synth import Voice, augment, band_limit, list_variants, synthesize
from asrlive.textcorpus import ALPHABET, load_sentences


def test_sentence_splits_are_disjoint_and_normalised():
    train, heldout = load_sentences("train"), load_sentences("heldout")
    assert len(heldout) > 200 and len(train) > 10 * len(heldout)
    assert not set(train) & set(heldout)
    assert all(set(s) <= ALPHABET for s in heldout)


def test_voice_variant_splits_are_disjoint():
    train, heldout = list_variants("train"), list_variants("heldout")
    assert train and heldout
    assert not set(train) & set(heldout)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_synthesis_comes_at_the_requested_rate(rate):
    audio = synthesize("HELLO THERE", Voice(words_per_minute=160), rate)
    assert audio.dtype == np.float32
    assert 0.5 * rate < audio.size < 2.0 * rate
    assert np.abs(audio).max() > 0.05


def _energy_above(audio: np.ndarray, hz: float, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(audio.size, 1 / rate)
    return float(spectrum[freqs > hz].sum() / spectrum.sum())


def test_band_limit_removes_what_an_8khz_recording_cannot_hold():
    audio = synthesize("SIX SHEEP SAT STILL", Voice(words_per_minute=160))
    assert _energy_above(audio, 4200) > 0.01
    narrow = band_limit(audio)
    assert narrow.size == audio.size
    assert _energy_above(narrow, 4200) < 1e-4
    # What is below 3.5 kHz stays where it was (no delay, same level).
    assert np.corrcoef(narrow, audio)[0, 1] > 0.8


def test_augment_keeps_samples_finite_and_in_range():
    audio = synthesize("A QUICK CHECK", Voice())
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = augment(audio, rng)
        assert out.dtype == np.float32
        assert out.size >= audio.size
        assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
