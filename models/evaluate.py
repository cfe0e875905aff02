"""Measures a model's CER and WER, offline and streamed, beside reference recognisers.

    python models/evaluate.py [--model M] [--heldout 200] [--heldout-corpus SHARD.npz]
                              [--realspeech ../shared/realspeech] [--plans 1000/4000/640,320/4000/320]
                              [--old-model models/asrlive-tiny-en] [--pocketsphinx]
                              [--whisper-full DIR] [--ceiling-utterances 100] [--beam] [--threads 2]
                              [--silence-after-ms MS]

(a) held-out synthetic speech: ``--heldout N`` espeak-ng sentences and voice variants that
    training never sees (fixed seed); ``--heldout-corpus`` a shard of ``models/make_corpus.py``
    in the held-out split (held-out voices of the training engines, and festival, an engine
    training never hears), by engine, offline and streamed under each ``--plans`` entry, and with
    ``--whisper-full`` the ceiling on the same audio;
(b) ``../shared/realspeech``: real human speech, reported only (never trained or tuned on): the
    model offline and streamed under each ``--plans`` entry (hop/left/right ms), and on the same
    files in the same run the older model, pocketsphinx's own English model, and full Whisper
    decoding of the encoder's own checkpoint (``models/convert_whisper.py --hf``; the ceiling).
Prints a JSON record; models/README.md quotes it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import time
from pathlib import Path

import numpy as np

from asrlive.audio.files import read_file
from asrlive.bench import plan_label
from asrlive.metrics import cer, char_edits, relative_error_interval, wer
from asrlive.decoding import GREEDY, DecoderSpec, decoder_spec
from asrlive.model import configure_torch_threads, embedded_model_dir, load_model
from asrlive.whisper_ctc import most_frames
from asrlive.peers import WhisperGreedy
from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.synth import random_voice, synthesize
from asrlive.textcorpus import load_sentences, normalise
from asrlive.transcribe import offline_samples, stream_samples


def scores(refs: list[str], hyps: list[str], compute_s: float, audio_s: float) -> dict:
    return {"cer": round(cer(refs, hyps), 4), "wer": round(wer(refs, hyps), 4),
            "compute_s": round(compute_s, 2), "real_time_factor": round(compute_s / audio_s, 4)}


def synthetic(model, n: int, split: str = "heldout", seed: int = 20261121) -> dict:
    """CER on ``n`` espeak-ng sentences of one split spoken by voice variants of the same split."""
    rng = random.Random(seed)
    sentences = rng.sample(load_sentences(split), n)
    refs, hyps = [], []
    for s in sentences:
        audio = synthesize(s, random_voice(rng, split), model.sample_rate)
        refs.append(s)
        hyps.append(offline_samples(model, audio).text)
    return {"utterances": n, "cer": round(cer(refs, hyps), 4), "wer": round(wer(refs, hyps), 4),
            "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps))[:5]]}


def relative_to_offline(refs: list[str], streamed: list[str], offline_edits: list[int]) -> dict:
    """Streamed CER over offline's on the same utterances, with its 95 % paired-bootstrap interval."""
    ratio, lo, hi = relative_error_interval(char_edits(refs, streamed), offline_edits)
    figure = (lambda x: None if math.isnan(x) else round(x, 3))  # JSON has no NaN
    return {"relative_to_offline": figure(ratio), "relative_to_offline_95ci": [figure(lo), figure(hi)]}


def by_engine(refs: list[str], hyps: list[str], engines: list[str]) -> dict:
    out = {}
    for e in sorted(set(engines)):
        pick = [j for j, x in enumerate(engines) if x == e]
        out[e] = {"utterances": len(pick), "cer": round(cer([refs[j] for j in pick], [hyps[j] for j in pick]), 4)}
    return out


def heldout_corpus(model, shard: Path, plans: list[ChunkSettings], whisper_full: Path | None,
                   ceiling_utterances: int) -> dict:
    """Offline CER by engine on a held-out corpus shard, streamed CER at each of ``plans``, and with
    ``whisper_full`` the ceiling: Whisper's own decoding of the shard's first ``ceiling_utterances``
    (the shard is in random order), beside this model's CER on the same ones."""
    d = np.load(shard)
    offsets = d["offsets"]
    refs, hyps, engines, audios = [], [], [], []
    for i, (text, voice) in enumerate(zip(d["texts"], d["voices"])):
        audio = d["audio"][offsets[i]:offsets[i + 1]].astype(np.float32) / 32767
        audios.append(audio)
        refs.append(str(text))
        hyps.append(offline_samples(model, audio).text)
        engines.append(str(voice).split(":")[0])
    offline_edits = char_edits(refs, hyps)
    streamed = {}
    for settings in plans:
        plan = ChunkPlan.from_settings(model.geometry, settings)
        streamed_hyps = [stream_samples(model, a, plan).text for a in audios]
        streamed[plan_label(plan)] = {
            "cer": round(cer(refs, streamed_hyps), 4)} | relative_to_offline(refs, streamed_hyps, offline_edits)
    out = {"shard": str(shard), "utterances": len(refs), "cer": round(cer(refs, hyps), 4),
           "wer": round(wer(refs, hyps), 4), "by_engine": by_engine(refs, hyps, engines), "streamed": streamed,
           "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps))[:5]]}
    if whisper_full is not None:
        n = min(ceiling_utterances, len(audios))
        seconds = sum(a.size for a in audios[:n]) / model.sample_rate
        out["whisper_full"], whisper_hyps = whisper_full_scores(whisper_full, audios[:n], refs[:n], seconds)
        out["whisper_full"] |= {"utterances": n, "this_model_cer": round(cer(refs[:n], hyps[:n]), 4),
                                "by_engine": by_engine(refs[:n], whisper_hyps, engines[:n])}
    return out


def parse_plans(text: str) -> list[ChunkSettings]:
    plans = []
    for item in filter(None, text.split(",")):
        hop, left, right = (float(x) for x in item.split("/"))
        plans.append(ChunkSettings(hop, left, right))
    return plans


def pocketsphinx_hyps(audios: list[np.ndarray]) -> tuple[list[str], float]:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=16000)
    hyps, t0 = [], time.monotonic()
    for audio in audios:
        decoder.start_utt()
        decoder.process_raw((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
        decoder.end_utt()
        hyps.append(normalise(re.sub(r"\(\d+\)", "", decoder.hyp().hypstr)) if decoder.hyp() else "")
    return hyps, time.monotonic() - t0


def whisper_full_hyps(folder: Path, audios: list[np.ndarray]) -> tuple[list[str], float]:
    """Whisper's own encoder-decoder (``asrlive.peers.WhisperGreedy``) on each whole file."""
    whisper = WhisperGreedy(folder)
    t0 = time.monotonic()
    hyps = [whisper.transcribe(a) for a in audios]
    return hyps, time.monotonic() - t0


def whisper_full_scores(folder: Path, audios: list[np.ndarray], refs: list[str],
                        seconds: float) -> tuple[dict, list[str]]:
    """The ceiling's scores, and its normalised hypotheses."""
    raw, t = whisper_full_hyps(folder, audios)
    hyps = [normalise(h) for h in raw]
    # Whisper writes numbers as numerals, which the character alphabet drops: the same measure
    # on the files it wrote no numeral for.
    keep = [i for i, h in enumerate(raw) if not re.search(r"\d", h)]
    return {"model": str(folder)} | scores(refs, hyps, t, seconds) | {"without_numeral_files": {
        "files": len(keep), "cer": round(cer([refs[i] for i in keep], [hyps[i] for i in keep]), 4),
        "wer": round(wer([refs[i] for i in keep], [hyps[i] for i in keep]), 4)}}, hyps


def _decoded(model, audios: list[np.ndarray], refs: list[str], seconds: float, plans: list[ChunkSettings],
             decoder: DecoderSpec) -> dict:
    """One decoder, offline and streamed under each plan. ``real_time_factor`` counts the model's
    compute; ``worker_real_time_factor`` adds the worker's own time per window (decoding included)."""
    t0 = time.monotonic()
    runs = [offline_samples(model, a, decoder=decoder) for a in audios]
    offline_hyps = [r.text for r in runs]
    offline_edits = char_edits(refs, offline_hyps)
    out = {"offline": scores(refs, offline_hyps, sum(r.offline_compute_s for r in runs), seconds)
           | {"with_decoding_real_time_factor": round((time.monotonic() - t0) / seconds, 4)}, "streamed": {}}
    for settings in plans:
        plan = ChunkPlan.from_settings(model.geometry, settings)
        runs = [stream_samples(model, a, plan, decoder=decoder) for a in audios]
        timings = [t for r in runs for t in r.timings]
        compute = [t.compute for t in timings]
        outside = [t.outside_model for t in timings]
        hyps = [r.text for r in runs]
        out["streamed"][plan_label(plan)] = scores(refs, hyps, sum(compute), seconds) | {
            "worker_real_time_factor": round((sum(compute) + sum(outside)) / seconds, 4),
            "window_compute_p50_ms": round(float(np.percentile(compute, 50)) * 1000, 1),
            "window_compute_p95_ms": round(float(np.percentile(compute, 95)) * 1000, 1),
            "window_outside_model_p95_ms": round(float(np.percentile(outside, 95)) * 1000, 2)} | relative_to_offline(
            refs, hyps, offline_edits)
    return out


def realspeech(model, folder: Path, plans: list[ChunkSettings], old_model, with_pocketsphinx: bool,
               whisper_full: Path | None, beam: DecoderSpec | None) -> dict:
    rows = list(csv.DictReader((folder / "manifest.tsv").open(), delimiter="\t"))
    audios = [read_file(folder / row["path"], 16000) for row in rows]
    refs = [normalise(row["transcript"]) for row in rows]
    seconds = sum(a.size for a in audios) / 16000
    out = {"files": len(rows), "seconds": round(seconds, 1)}
    out |= _decoded(model, audios, refs, seconds, plans, GREEDY)
    if beam is not None:
        out["beam"] = {"decoder": beam.describe()} | _decoded(model, audios, refs, seconds, plans, beam)
    if old_model is not None:
        runs = [offline_samples(old_model, a) for a in audios]
        out["old_model"] = {"model": old_model.name} | scores(
            refs, [r.text for r in runs], sum(r.offline_compute_s for r in runs), seconds)
    if with_pocketsphinx:
        hyps, t = pocketsphinx_hyps(audios)
        out["pocketsphinx"] = scores(refs, hyps, t, seconds)
    if whisper_full is not None:
        out["whisper_full"], _ = whisper_full_scores(whisper_full, audios, refs, seconds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--heldout", type=int, default=200)
    ap.add_argument("--heldout-corpus", type=Path)
    ap.add_argument("--realspeech", type=Path)
    # The app's default plan and the short-hop plan the issues measure, with the default left context.
    ap.add_argument("--plans", default=f"{ChunkSettings().label},320/4000/320",
                    help="streamed plans (realspeech and --heldout-corpus), hop/left/right ms, comma-separated")
    ap.add_argument("--old-model", help="a second model measured offline on realspeech in the same run")
    ap.add_argument("--pocketsphinx", action="store_true")
    ap.add_argument("--whisper-full", type=Path, help="a transformers Whisper folder (the ceiling), on realspeech and --heldout-corpus")
    # Whisper's 30 s decoding costs about 7 s per utterance on 2 threads.
    ap.add_argument("--ceiling-utterances", type=int, default=100,
                    help="--whisper-full on the first N utterances of --heldout-corpus")
    ap.add_argument("--beam", action="store_true",
                    help="realspeech decoded by beam search with the model's LM too, beside greedy")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--silence-after-ms", type=float,
                    help="a Whisper-encoder model read with this much silence after each input instead of its "
                         "config's silence_after_ms (how the card chose it)")
    args = ap.parse_args()
    configure_torch_threads(args.threads)
    model = load_model(args.model, device="cpu")
    record: dict = {"model": model.name, "threads": args.threads}
    if args.silence_after_ms is not None:
        model.model.silence_after = round(args.silence_after_ms * model.sample_rate / 1000)
        model.max_window_frames = most_frames(model.model)
        record["silence_after_ms"] = args.silence_after_ms
    if args.heldout:
        record["heldout_synthetic_espeak"] = synthetic(model, args.heldout)
    if args.heldout_corpus:
        record["heldout_synthetic_engines"] = heldout_corpus(model, args.heldout_corpus, parse_plans(args.plans),
                                                            args.whisper_full, args.ceiling_utterances)
    if args.realspeech:
        old = load_model(args.old_model, device="cpu") if args.old_model else None
        folder = Path(args.model) if args.model else embedded_model_dir()
        beam = decoder_spec("beam", None, folder) if args.beam else None
        record["realspeech"] = realspeech(model, args.realspeech, parse_plans(args.plans), old,
                                          args.pocketsphinx, args.whisper_full, beam)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
