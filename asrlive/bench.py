"""Chunk-plan benchmark: every plan, and every peer (``asrlive.peers``), on the same utterances
with the same model in one run, measured the same way.

Latency is measured, not assumed: each utterance is followed by ``TRAILING_SILENCE_S`` of
silence, its speech end is the end of the last frame the model (offline) reads as a character,
and a system's latency is the audio time at which its committed text first equals its final
text, plus the compute it spent to get there, minus that speech end: what a user would wait,
at real-time pace, if compute never queued. ``algorithmic`` latency is the plan's own bound
(hop + right context + the RF's reach beyond one frame step).
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .decoder import symbol_classes
from .decoding import GREEDY, DecoderSpec
from .metrics import cer_of_edits, char_edits, relative_error_interval, wer
from .model import CTCModel
from .peers import PeerRun, TransformersPipeline, WhisperLocalAgreement, naive_chunks, offline
from .planner import ChunkPlan, ChunkSettings
from .textcorpus import normalise
from .window_reuse import DEFAULT_REUSE

TRAILING_SILENCE_S = 1.5


class BenchError(ValueError):
    pass


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: np.ndarray
    text: str


@dataclass
class Row:
    """One line of the table: asrlive at one plan, or a peer."""

    system: str
    plan: str
    cer: float
    wer: float
    # CER over offline decoding's on the same utterances, with its 95 % paired-bootstrap interval
    # (``asrlive.metrics.relative_error_interval``): whether a plan's cost is more than the noise
    # of this set of recordings. None where offline is the reference itself (replay).
    cer_vs_offline: float | None
    cer_vs_offline_lo: float | None
    cer_vs_offline_hi: float | None
    algorithmic_latency_ms: float | None
    latency_p50_ms: float
    latency_p95_ms: float
    step_compute_p50_ms: float
    step_compute_p95_ms: float
    compute_ms_per_audio_s: float
    real_time_factor: float
    kl_to_offline: float | None = None
    tentative_contradicted: float | None = None

    def as_dict(self) -> dict:
        """Floats rounded; NaN (a figure that cannot be had) as None, which JSON can hold."""
        return {k: (None if math.isnan(v) else round(v, 4)) if isinstance(v, float) else v
                for k, v in asdict(self).items()}


COLUMNS = [f for f in Row.__dataclass_fields__]


def read_manifest(path: Path) -> list[tuple[str, Path, str]]:
    """(id, audio path, transcript) from a TSV with id, path and transcript columns; paths are
    relative to the manifest's folder. Every file is checked to exist before anything loads."""
    from .audio.files import AudioFileError, truncation

    if not path.is_file():
        raise BenchError(f"manifest {path} not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not part of "id"
            # No quoting: a transcript that opens with a quote mark must not swallow the rows after it.
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            rows = [(reader.line_num, row) for row in reader]
            header = reader.fieldnames or []
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if not {"id", "path", "transcript"} <= set(header):
        raise BenchError(f"{path}: needs a header with id, path and transcript columns (tab-separated)")
    if not rows:
        raise BenchError(f"{path}: no utterances under the header")
    entries, seen = [], set()
    for line, r in rows:
        if r["id"] is None or r["path"] is None or r["transcript"] is None:
            raise BenchError(f"{path}:{line}: fewer than the header's {len(header)} tab-separated fields")
        text = normalise(r["transcript"])
        if not r["id"] or not r["path"] or not text:
            raise BenchError(f"{path}:{line}: empty id, path or transcript")
        if r["id"] in seen:
            raise BenchError(f"{path}:{line}: id {r['id']!r} appears twice")
        seen.add(r["id"])
        audio = path.parent / r["path"]
        try:
            truncation(audio)  # headers only: every file opens as audio before the model loads
        except AudioFileError as exc:
            raise BenchError(f"{path}:{line}: {exc}") from exc
        entries.append((r["id"], audio, text))
    return entries


def load_utterances(entries: list[tuple[str, Path, str]], sample_rate: int) -> list[Utterance]:
    from .audio.files import read_file

    return [Utterance(uid, read_file(p, sample_rate), text) for uid, p, text in entries]


def synthetic_sentences(n: int, seed: int = 20261202) -> tuple[random.Random, list[str]]:
    """``n`` held-out sentences and the generator that goes on to pick their voices; BenchError
    when the held-out split has fewer."""
    from .textcorpus import load_sentences

    pool = load_sentences("heldout", min_words=4)
    if n > len(pool):
        raise BenchError(f"--synth {n}: the held-out sentences number {len(pool)}")
    rng = random.Random(seed)
    return rng, rng.sample(pool, n)


def synthetic_utterances(n: int, sample_rate: int, seed: int = 20261202) -> list[Utterance]:
    """``n`` held-out sentences spoken by held-out espeak-ng voice variants (training saw neither)."""
    from .synth import random_voice, synthesize

    rng, sentences = synthetic_sentences(n, seed)
    return [Utterance(f"synth-{i:03d}", synthesize(s, random_voice(rng, "heldout"), sample_rate), s)
            for i, s in enumerate(sentences)]


def with_trailing_silence(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return np.concatenate([audio, np.zeros(int(TRAILING_SILENCE_S * sample_rate), np.float32)])


def speech_end_s(model: CTCModel, log_probs: np.ndarray, n_samples: int) -> float:
    """End of the last frame whose best symbol is a character (the audio's end if none is)."""
    best = log_probs.argmax(axis=1) if len(log_probs) else np.zeros(0, int)
    delimiters, silent = symbol_classes(model.vocab, model.word_delimiter)
    frames = np.flatnonzero(~np.isin(best, [model.blank_id, *delimiters, *silent]))
    g = model.geometry
    if not len(frames):
        return n_samples / g.sample_rate
    last = int(frames[-1])
    return g.window_span(last, last + 1)[1] / g.sample_rate


def latency_s(events: list[tuple[float, str]], speech_end: float) -> float | None:
    """When the committed text first reached its final value, after the speech ended."""
    if not events or not events[-1][1]:
        return None
    final = events[-1][1]
    first = next(t for t, text in events if text == final)
    return first - speech_end


def kl_divergence(p_log: np.ndarray, q_log: np.ndarray) -> float:
    """Mean over frames of KL(p || q), both log-probabilities."""
    return float(np.mean(np.sum(np.exp(p_log) * (p_log - q_log), axis=1)))


@dataclass
class _Streamed:
    run: PeerRun
    log_probs: np.ndarray
    contradicted: int
    tentative_windows: int


def stream_once(model: CTCModel, audio: np.ndarray, plan: ChunkPlan, decoder: DecoderSpec,
                reuse: str = DEFAULT_REUSE) -> _Streamed:
    """asrlive's own streaming path, window by window, with each window's commit event."""
    from .transcribe import stream_samples

    g, seen = model.geometry, []

    def listen(status) -> None:
        if status.window is not None and not status.finished:
            w = status.window
            end = g.window_span(w.first_frame, w.end_frame)[1]
            seen.append((end / g.sample_rate, w.decoded - w.began, status.committed_text, status.tentative_text))

    transcript = stream_samples(model, audio, plan, decoder=decoder, listener=listen, reuse=reuse)
    run, spent = PeerRun(), 0.0
    for end_s, cost, text, _ in seen:
        spent = cost
        run.events.append((end_s + cost, text))
        run.step_compute.append(cost)
    run.events.append((len(audio) / g.sample_rate + spent, transcript.text))  # the end of the stream
    final = transcript.text
    tentative = [(c, t) for _, _, c, t in seen if t.strip()]
    contradicted = sum(not final.startswith(c + t) for c, t in tentative)
    return _Streamed(run, transcript.log_probs, contradicted, len(tentative))


def _row(system: str, plan: str, refs: list[str], runs: list[PeerRun], speech_ends: list[float],
         audio_s: float, algorithmic_ms: float | None, offline_edits: list[int] | None, kl: float | None = None,
         contradicted: float | None = None) -> Row:
    hyps = [r.text for r in runs]
    edits = char_edits(refs, hyps)
    relative = (None,) * 3 if offline_edits is None else relative_error_interval(edits, offline_edits)
    lat = [x for r, e in zip(runs, speech_ends) if (x := latency_s(r.events, e)) is not None]
    steps = [c for r in runs for c in r.step_compute]
    total = sum(steps)
    pct = (lambda v, q: float(np.percentile(v, q)) * 1000 if v else math.nan)
    return Row(system, plan, cer_of_edits(edits, refs), wer(refs, hyps), *relative,
               algorithmic_ms, pct(lat, 50), pct(lat, 95), pct(steps, 50), pct(steps, 95), total / audio_s * 1000,
               total / audio_s, kl, contradicted)


def plan_label(plan: ChunkPlan) -> str:
    return plan.settings().label


def run_bench(model: CTCModel, utterances: list[Utterance], plans: list[ChunkSettings], *,
              decoder: DecoderSpec = GREEDY, whisper: Path | None = None, whisper_hop_ms: float = 1000.0,
              progress: Callable[[str, int, int], None] | None = None, reuse: str = DEFAULT_REUSE) -> list[Row]:
    """Rows for every plan, then the peers: offline, the transformers pipeline (when it can load
    the model) and naive chunks at each distinct hop, and Whisper LocalAgreement when ``whisper``
    names a Whisper folder (``asrlive.peers.WhisperLocalAgreement``; loaded first, so a bad
    folder fails before the plans run)."""
    if not utterances:
        raise BenchError("no utterances to benchmark")
    if whisper is None:
        return _bench_rows(model, utterances, plans, decoder, None, whisper_hop_ms, progress, reuse)
    with WhisperLocalAgreement(whisper) as la:
        return _bench_rows(model, utterances, plans, decoder, la, whisper_hop_ms, progress, reuse)


def _bench_rows(model: CTCModel, utterances: list[Utterance], plans: list[ChunkSettings], decoder: DecoderSpec,
                la: WhisperLocalAgreement | None, whisper_hop_ms: float,
                progress: Callable[[str, int, int], None] | None, reuse: str) -> list[Row]:
    sr = model.sample_rate
    audios = [with_trailing_silence(u.audio, sr) for u in utterances]
    refs = [u.text for u in utterances]
    audio_s = sum(len(a) for a in audios) / sr
    built = [ChunkPlan.from_settings(model.geometry, s) for s in plans]
    pipe = None
    try:
        pipe = TransformersPipeline(model)
    except ValueError:
        pass
    hops = sorted({p.hop_ms for p in built})
    total = len(audios) * (1 + len(built) + len(hops) * (1 + (pipe is not None)) + (la is not None))
    done = 0

    def tick(what: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(what, done, total)

    offline_runs, offline_lp, ends = [], [], []
    for a in audios:
        lp = model.log_probs(a)
        offline_lp.append(lp)
        ends.append(speech_end_s(model, lp, len(a)))
        offline_runs.append(offline(model, a, decoder))
        tick("offline")
    base = char_edits(refs, [r.text for r in offline_runs])
    rows = []
    for plan in built:
        streamed = []
        for a in audios:
            streamed.append(stream_once(model, a, plan, decoder, reuse))
            tick(plan_label(plan))
        kl = float(np.mean([kl_divergence(o, s.log_probs) for o, s in zip(offline_lp, streamed)]))
        windows = sum(s.tentative_windows for s in streamed)
        rows.append(_row(f"asrlive ({decoder.describe()})", plan_label(plan), refs, [s.run for s in streamed], ends,
                         audio_s, plan.latency_ms, base, kl, sum(s.contradicted for s in streamed) / max(1, windows)))
    rows.append(_row(f"offline (whole utterance, {decoder.describe()})", "", refs, offline_runs, ends, audio_s, None, base))
    for hop in hops:
        plan = next(p for p in built if p.hop_ms == hop)
        hop_samples = plan.hop_frames * model.geometry.jump
        runs = []
        for a in audios:
            runs.append(naive_chunks(model, a, hop_samples))
            tick(f"naive {hop:g}")
        rows.append(_row("naive chunks, no context", f"{hop:g}/0/0", refs, runs, ends, audio_s,
                         ChunkPlan(model.geometry, plan.hop_frames, 0, 0).latency_ms, base))
        if pipe is not None:
            runs = []
            for a in audios:
                runs.append(pipe.run(a, plan.hop_ms, plan.left_ms, plan.right_ms))
                tick(f"pipeline {hop:g}")
            rows.append(_row("transformers pipeline (torch float32)", plan_label(plan), refs, runs, ends, audio_s, None, base))
    if la is not None:
        hop_samples = int(whisper_hop_ms * sr / 1000)
        runs = []
        for a in audios:
            runs.append(la.run(a, hop_samples, sr))
            tick("whisper")
        rows.append(_row(f"Whisper LocalAgreement-2 ({la.name})", f"{whisper_hop_ms:g}/growing/0", refs, runs,
                         ends, audio_s, None, base))
    return rows


RECOMMEND_WITHIN = 0.10  # relative CER above offline's that the recommended plan may cost


def near_offline(row: Row, rows: list[Row]) -> bool:
    """Whether ``row``'s CER is within ``RECOMMEND_WITHIN`` (relative) of offline decoding's."""
    base = next(r for r in rows if r.system.startswith("offline"))
    return row.cer <= base.cer * (1 + RECOMMEND_WITHIN)


def recommend(rows: list[Row]) -> Row | None:
    """The asrlive plan with the lowest p50 latency whose CER is near offline's (the fastest plan
    that costs little accuracy); if none is, the plan with the lowest CER."""
    ours = [r for r in rows if r.system.startswith("asrlive") and not math.isnan(r.latency_p50_ms)]
    if not ours or not any(r.system.startswith("offline") for r in rows):
        return None
    good = [r for r in ours if near_offline(r, rows)] or [min(ours, key=lambda r: r.cer)]
    return min(good, key=lambda r: r.latency_p50_ms)


@dataclass
class Replay:
    """One recording re-run under several plans: per plan a row (CER and WER against the
    offline transcript of the same audio, which stands in for a reference), its text and emissions."""

    offline_text: str
    rows: list[Row]
    texts: list[str]
    emissions: list[np.ndarray]


def replay_plans(model: CTCModel, audio: np.ndarray, plans: list[ChunkPlan], decoder: DecoderSpec = GREEDY) -> Replay:
    sr = model.sample_rate
    base = offline(model, audio, decoder)
    offline_lp = model.log_probs(audio)
    end = speech_end_s(model, offline_lp, len(audio))
    rows, texts, emissions = [], [], []
    for plan in plans:
        s = stream_once(model, audio, plan, decoder)
        rows.append(_row(f"asrlive ({decoder.describe()})", plan_label(plan), [base.text], [s.run], [end],
                         len(audio) / sr, plan.latency_ms, None, kl_divergence(offline_lp, s.log_probs),
                         s.contradicted / max(1, s.tentative_windows)))
        texts.append(s.run.text)
        emissions.append(s.log_probs)
    return Replay(base.text, rows, texts, emissions)
