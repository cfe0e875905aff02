"""Log-mel spectrogram frames for display (25 ms Hann windows, 10 ms hop), in numpy."""

from __future__ import annotations

import numpy as np


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, fmin: float = 20.0, fmax: float | None = None) -> np.ndarray:
    fmax = fmax or sample_rate / 2
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)
    def mel_to_hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)
    mels = np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = mel_to_hz(mels)
    bank = np.zeros((n_mels, len(bins)), np.float32)
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins - lo) / (mid - lo)
        falling = (hi - bins) / (hi - mid)
        bank[i] = np.maximum(0.0, np.minimum(rising, falling))
    return bank


class LogMel:
    """Turns a sample span into log-mel columns; columns start on multiples of the hop so that
    incremental calls line up with one another and with absolute time."""

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0, hop_ms: float = 10.0):
        self.sample_rate = sample_rate
        self.win = int(sample_rate * win_ms / 1000)
        self.hop = int(sample_rate * hop_ms / 1000)
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.window = np.hanning(self.win).astype(np.float32)
        self.bank = mel_filterbank(n_mels, self.n_fft, sample_rate)
        self.n_mels = n_mels

    def columns(self, samples: np.ndarray) -> np.ndarray:
        """(n_columns, n_mels) log10 power for every full window starting at 0, hop, 2*hop, ..."""
        n = 0 if len(samples) < self.win else (len(samples) - self.win) // self.hop + 1
        if n == 0:
            return np.zeros((0, self.n_mels), np.float32)
        idx = np.arange(self.win)[None, :] + self.hop * np.arange(n)[:, None]
        frames = samples[idx] * self.window
        power = np.abs(np.fft.rfft(frames, n=self.n_fft, axis=1)) ** 2
        return np.log10(power @ self.bank.T + 1e-10).astype(np.float32)
