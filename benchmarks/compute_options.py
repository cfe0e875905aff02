"""Accuracy and compute of each way to run the windows, on the same audio in one run: float32
or int8 weights, on torch or ONNX Runtime, and what a window reuses from the ones before
(nothing, the front end, or the left context's encoder states). Each utterance is streamed once per option in turn, so machine
load weighs on every option alike.

    python -m benchmarks.compute_options [--model M] [--data MANIFEST.tsv | --synth N]
        [--plan 320/1000/320] [--decoder greedy] [--threads 2] [--options LABEL ...] [--out FILE.json]

Prints CER, WER, compute per audio second and per-window p50 / p95 for each option, with each
option's compute as a ratio to the naive per-window float32 forward (reuse "none").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from asrlive.decoding import DECODERS, decoder_spec, model_folder
from asrlive.metrics import cer, wer
from asrlive.model import configure_torch_threads, load_model
from asrlive.planner import ChunkPlan
from asrlive.transcribe import offline_samples, stream_samples
from benchmarks.common import add_speech_and_plan_args, pct, plan_settings, speech

# (label, how the model runs, reuse); the first is the reference the ratios divide by.
OPTIONS = [("float32, no reuse", "float32", "none"), ("float32, front end", "float32", "front-end"),
           ("float32, states", "float32", "states"), ("int8, no reuse", "int8", "none"),
           ("int8, front end", "int8", "front-end"), ("int8, states", "int8", "states"),
           ("onnxruntime, no reuse", "onnxruntime", "none"), ("onnxruntime, front end", "onnxruntime", "front-end"),
           ("onnxruntime int8, no reuse", "onnxruntime int8", "none"),
           ("onnxruntime int8, front end", "onnxruntime int8", "front-end")]
LOADS = {"float32": {}, "int8": {"int8": True}, "onnxruntime": {"backend": "onnxruntime"},
         "onnxruntime int8": {"backend": "onnxruntime", "int8": True}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model")
    add_speech_and_plan_args(ap)
    ap.add_argument("--decoder", default="greedy", choices=DECODERS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--options", nargs="+", choices=[label for label, *_ in OPTIONS], metavar="LABEL",
                    help="only these options (quoted labels as in the table), beside the first, which the "
                         "ratios divide by: long windows make the whole table take an hour")
    ap.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = ap.parse_args()
    options = [o for o in OPTIONS if o is OPTIONS[0] or not args.options or o[0] in args.options]
    configure_torch_threads(args.threads)
    models = {k: load_model(args.model, device="cpu", threads=args.threads, **kw) for k, kw in LOADS.items()
              if any(q == k for _, q, _ in options)}
    sr = models["float32"].sample_rate
    utts = speech(args, sr)
    plan = ChunkPlan.from_settings(models["float32"].geometry, plan_settings(args))
    audio_s = sum(len(u.audio) for u in utts) / sr
    decoder = decoder_spec(args.decoder, None, model_folder(args.model))
    hyps = {label: [] for label, *_ in options}
    windows = {label: [] for label, *_ in options}
    hits = {label: [] for label, *_ in options}
    offline = {q: [] for q in models}
    for i, u in enumerate(utts, 1):
        for label, q, reuse in options:
            t = stream_samples(models[q], u.audio, plan, decoder=decoder, reuse=reuse)
            hyps[label].append(t.text)
            windows[label].extend(w.compute for w in t.timings)
            hits[label].append(t.reuse_stats)
        for q, model in models.items():
            offline[q].append(offline_samples(model, u.audio, decoder=decoder).text)
        print(f"\r{i}/{len(utts)} utterances", end="", flush=True)
    print()
    refs = [u.text for u in utts]
    base = sum(windows[OPTIONS[0][0]])
    rows = []
    for label, q, reuse in options:
        ms = np.array(windows[label]) * 1000
        frames = sum(h["frames"] for h in hits[label])
        rows.append({"option": label, "runs": q, "reuse": reuse, "cer": round(cer(refs, hyps[label]), 4),
                     "wer": round(wer(refs, hyps[label]), 4),
                     "compute_ms_per_audio_s": round(ms.sum() / audio_s, 1),
                     "window_p50_ms": round(pct(ms, 50), 1), "window_p95_ms": round(pct(ms, 95), 1),
                     "compute_ratio": round(base / (ms.sum() / 1000), 2),
                     "front_end_hit_rate": round(sum(h["front_end_hit_rate"] * h["frames"] for h in hits[label]) / frames, 3),
                     "state_hit_rate": round(sum(h["state_hit_rate"] * h["frames"] for h in hits[label]) / frames, 3)})
    record = {"model": models["float32"].name, "plan": args.plan, "decoder": args.decoder, "threads": args.threads,
              "utterances": len(utts), "audio_s": round(audio_s, 1),
              "offline_cer": {k: round(cer(refs, h), 4) for k, h in offline.items()},
              "options": rows}
    print(f"{len(utts)} utterances, {audio_s:.0f} s, plan {args.plan}, decoder {args.decoder}, {args.threads} threads; "
          "offline CER " + ", ".join(f"{k} {v:.2%}" for k, v in record["offline_cer"].items()))
    print("| option | CER | WER | compute ms / audio s | window p50 / p95 ms | × less compute | front-end hits | state hits |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['option']} | {r['cer']:.2%} | {r['wer']:.2%} | {r['compute_ms_per_audio_s']:.0f} | "
              f"{r['window_p50_ms']:.1f} / {r['window_p95_ms']:.1f} | {r['compute_ratio']:.2f} | "
              f"{r['front_end_hit_rate']:.0%} | {r['state_hit_rate']:.0%} |")
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s)")
