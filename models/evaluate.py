"""Measures the embedded (or any) model's CER with offline greedy decoding.

    python models/evaluate.py [--model M] [--heldout 200] [--training-fit N]
                              [--realspeech ../shared/realspeech] [--pocketsphinx]

(a) held-out synthetic speech: sentences and voice variants that training never sees (fixed seed),
    and optionally the same measure on training sentences and voices, to tell underfitting from
    overfitting;
(b) ../shared/realspeech: real human speech, reported only (never trained or tuned on), optionally
    beside pocketsphinx's own English model on the same files as an independent reference.
Prints a JSON record; models/README.md quotes it.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import time
from pathlib import Path

import numpy as np

from asrlive.audio.files import read_file
from asrlive.metrics import cer, wer
from asrlive.model import configure_torch_threads, load_model
from asrlive.synth import random_voice, synthesize
from asrlive.textcorpus import load_sentences, normalise
from asrlive.transcribe import offline_samples


def synthetic(model, n: int, split: str = "heldout", seed: int = 20261121) -> dict:
    """CER on ``n`` sentences of one split spoken by voice variants of the same split."""
    rng = random.Random(seed)
    sentences = rng.sample(load_sentences(split), n)
    refs, hyps = [], []
    for s in sentences:
        audio = synthesize(s, random_voice(rng, split), model.sample_rate)
        refs.append(s)
        hyps.append(offline_samples(model, audio).text)
    return {"utterances": n, "cer": round(cer(refs, hyps), 4), "wer": round(wer(refs, hyps), 4),
            "examples": [{"ref": r, "hyp": h} for r, h in list(zip(refs, hyps))[:5]]}


def realspeech(model, folder: Path, with_pocketsphinx: bool) -> dict:
    rows = list(csv.DictReader((folder / "manifest.tsv").open(), delimiter="\t"))
    refs, hyps, ps_hyps = [], [], []
    decoder = None
    if with_pocketsphinx:
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=16000)
    t_model = t_ps = 0.0
    for row in rows:
        audio = read_file(folder / row["path"], 16000)
        refs.append(normalise(row["transcript"]))
        t = time.monotonic()
        hyps.append(offline_samples(model, audio).text)
        t_model += time.monotonic() - t
        if decoder is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            t = time.monotonic()
            decoder.start_utt()
            decoder.process_raw(pcm.tobytes(), full_utt=True)
            decoder.end_utt()
            t_ps += time.monotonic() - t
            ps_hyps.append(normalise(re.sub(r"\(\d+\)", "", decoder.hyp().hypstr)) if decoder.hyp() else "")
    seconds = sum(float(r["seconds"]) for r in rows)
    out = {"files": len(rows), "seconds": round(seconds, 1), "cer": round(cer(refs, hyps), 4),
           "wer": round(wer(refs, hyps), 4), "compute_s": round(t_model, 2)}
    if decoder is not None:
        out["pocketsphinx"] = {"cer": round(cer(refs, ps_hyps), 4), "wer": round(wer(refs, ps_hyps), 4),
                               "compute_s": round(t_ps, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None)
    ap.add_argument("--heldout", type=int, default=200)
    ap.add_argument("--training-fit", type=int, default=0, metavar="N",
                    help="also measure CER on N training sentences spoken by training voices")
    ap.add_argument("--realspeech", type=Path)
    ap.add_argument("--pocketsphinx", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    configure_torch_threads(args.threads)
    model = load_model(args.model, device="cpu")
    record = {"model": model.name, "heldout_synthetic": synthetic(model, args.heldout)}
    if args.training_fit:
        # Training sentences and voices: far below the held-out CER would mean the model
        # memorises; the same means it still underfits and needs more training, not more data.
        record["training_synthetic"] = synthetic(model, args.training_fit, "train")
    if args.realspeech:
        record["realspeech"] = realspeech(model, args.realspeech, args.pocketsphinx)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
