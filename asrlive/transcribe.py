"""Whole-file transcription through the streaming core (or one offline pass), with a summary."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio.files import AudioFileError, file_info, read_available
from .audio.ring import AudioRing
from .audio.sources import ArraySource, FileSource, input_level
from .decoder import TimedWord
from .emissions import WindowTiming
from .model import CTCModel
from .planner import ChunkPlan
from .decoding import GREEDY, DecoderSpec
from .window_reuse import DEFAULT_REUSE
from .worker import StreamStatus, StreamWorker

RING_SECONDS = 60.0
# About one syllable: shorter audio cannot hold a whole word, so whatever text it gives is a
# fragment ("TH" from 0.1 s), worth a warning.
SHORT_AUDIO_S = 0.25


@dataclass
class Transcript:
    source: str
    text: str
    words: list[TimedWord]
    log_probs: np.ndarray
    duration_s: float
    plan: ChunkPlan | None
    timings: list[WindowTiming]
    offline_compute_s: float | None = None
    input_peak: float | None = None
    clipped_fraction: float | None = None
    reuse_stats: dict | None = None  # ReuseStats.as_dict() of a streamed run
    read_error: str | None = None    # why the file broke off; the text is of the audio before it

    @property
    def n_frames(self) -> int:
        return len(self.log_probs)

    def timing_summary(self) -> dict[str, float | int]:
        if self.plan is None:
            compute = self.offline_compute_s or 0.0
            return {"windows": 1, "compute_total_s": round(compute, 4),
                    "real_time_factor": round(compute / self.duration_s, 4) if self.duration_s else 0.0}
        compute = np.array([t.compute for t in self.timings]) if self.timings else np.zeros(1)
        wait = np.array([t.queue_wait for t in self.timings]) if self.timings else np.zeros(1)
        return {
            "windows": len(self.timings),
            "compute_p50_ms": round(float(np.percentile(compute, 50)) * 1000, 3),
            "compute_p95_ms": round(float(np.percentile(compute, 95)) * 1000, 3),
            "queue_wait_p50_ms": round(float(np.percentile(wait, 50)) * 1000, 3),
            "queue_wait_p95_ms": round(float(np.percentile(wait, 95)) * 1000, 3),
            "compute_total_s": round(float(compute.sum()), 4),
            "real_time_factor": round(float(compute.sum()) / self.duration_s, 4) if self.duration_s else 0.0,
            "reuse": self.reuse_stats,
        }

    def as_dict(self) -> dict:
        g = None if self.plan is None else self.plan.describe()
        return {
            "path": self.source,
            "text": self.text,
            "words": [w.as_dict() for w in self.words],
            "frames": self.n_frames,
            "duration_s": round(self.duration_s, 4),
            "mode": "offline" if self.plan is None else "streaming",
            "settings": g,
            "timing": self.timing_summary(),
            "input": {"peak": None if self.input_peak is None else round(self.input_peak, 5),
                      "clipped_fraction": None if self.clipped_fraction is None else round(self.clipped_fraction, 6)},
        }

    def warnings(self) -> list[str]:
        """Input problems worth telling the user about (the transcript is still produced)."""
        out = []
        if self.n_frames == 0:
            out.append(f"{self.duration_s:.2f} s of audio is shorter than the model's receptive field: no frames, no text")
        elif self.duration_s < SHORT_AUDIO_S:
            out.append(f"only {self.duration_s:.2f} s of audio (under {SHORT_AUDIO_S} s): too short for a reliable transcript")
        if self.input_peak is not None and self.input_peak < 1e-4:
            out.append("the audio is silent (peak below -80 dBFS)")
        if self.clipped_fraction and self.clipped_fraction > 1e-3:
            out.append(f"{self.clipped_fraction * 100:.1f}% of samples are clipped; accuracy may suffer")
        return out


def _run_stream(model: CTCModel, source_factory: Callable[[AudioRing], FileSource], plan: ChunkPlan,
                name: str, progress: Callable[[int], None] | None, decoder: DecoderSpec,
                listener: Callable[[StreamStatus], None] | None = None, reuse: str = DEFAULT_REUSE) -> Transcript:
    ring = AudioRing(int(RING_SECONDS * model.sample_rate), model.sample_rate)
    source = source_factory(ring)
    worker = StreamWorker(model, ring, plan, decoder=decoder, reuse=reuse)
    if listener is not None:
        worker.add_listener(listener)
    done = threading.Event()
    if progress is not None:
        def report() -> None:
            while not done.wait(0.2):
                progress(worker.store.n_frames * model.geometry.jump)
        threading.Thread(target=report, daemon=True).start()
    source.start()
    try:
        worker.run()
    finally:
        done.set()
        source.stop()
    # A file that breaks off mid-way (a cut FLAC) keeps the text of what was read before it.
    read_error = source.error if isinstance(source.error, AudioFileError) and ring.written else None
    if source.error is not None and read_error is None:
        raise source.error
    if worker.error is not None:
        raise worker.error
    final = worker.status
    return Transcript(
        source=name,
        text=final.committed_text,
        words=final.words(),
        log_probs=worker.store.all_frames(),
        duration_s=ring.written / model.sample_rate,
        plan=plan,
        timings=list(worker.store.timings),
        input_peak=source.peak,
        clipped_fraction=source.clipped_samples / max(1, ring.written),
        reuse_stats=final.reuse.as_dict(),
        read_error=None if read_error is None else str(read_error).removeprefix(f"{name}: "),
    )


def stream_file(model: CTCModel, path: Path | str, plan: ChunkPlan, realtime: bool = False,
                progress: Callable[[int], None] | None = None, decoder: DecoderSpec = GREEDY,
                reuse: str = DEFAULT_REUSE) -> Transcript:
    """Stream a file through ring, planner, worker and decoder, as the live app does."""
    file_info(Path(path))  # fail early, in this thread, on a file that cannot be opened
    return _run_stream(model, lambda ring: FileSource(path, ring, realtime=realtime), plan, str(path), progress,
                       decoder, reuse=reuse)


def stream_samples(model: CTCModel, samples: np.ndarray, plan: ChunkPlan, name: str = "<array>",
                   decoder: DecoderSpec = GREEDY, listener: Callable[[StreamStatus], None] | None = None,
                   reuse: str = DEFAULT_REUSE) -> Transcript:
    """``listener(status)`` runs on the worker after every window (``StreamWorker.add_listener``)."""
    return _run_stream(model, lambda ring: ArraySource(samples, ring), plan, name, None, decoder, listener,
                       reuse)


def offline_samples(model: CTCModel, samples: np.ndarray, name: str = "<array>",
                    decoder: DecoderSpec = GREEDY) -> Transcript:
    """One forward pass over the whole signal: the reference that streaming is compared with."""
    import time

    t0 = time.monotonic()
    log_probs = model.log_probs(samples)
    compute = time.monotonic() - t0
    text_decoder = decoder.new(model)
    text_decoder.feed(0, log_probs)
    text_decoder.finish()
    peak, clipped = input_level(samples)
    return Transcript(name, text_decoder.committed_text(), text_decoder.timed_words(), log_probs,
                      len(samples) / model.sample_rate, None, [], compute, peak, clipped / max(1, len(samples)))


def offline_file(model: CTCModel, path: Path | str, decoder: DecoderSpec = GREEDY) -> Transcript:
    """As streaming does, a file that breaks off keeps the text of what was read before it."""
    samples, error = read_available(path, model.sample_rate)
    transcript = offline_samples(model, samples, str(path), decoder)
    if error is not None:
        transcript.read_error = str(error).removeprefix(f"{path}: ")
    return transcript
