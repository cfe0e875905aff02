"""Chooses the beam-search decoder's weights on held-out synthetic speech, and says whether beam
search beats greedy decoding there.

    python models/tune_decoder.py --heldout-corpus SHARD.npz [--model M] [--lm DIR_OR_ARPA]
        [--alphas 0.3,0.5,0.8,1.2] [--betas 0,1,2,3] [--widths 16] [--delays 1.0]
        [--unknown-offsets -10] [--write]

The shard is one of ``models/make_corpus.py``'s held-out split (held-out sentences, so the LM has
not seen them as text; held-out voices; festival, an engine training never hears). Emissions are
computed once, offline; every setting decodes the same emissions. The setting with the lowest
WER (then CER) is chosen; ``--write`` stores it in the LM folder's ``attrs.json`` with the figures
that chose it. ``../shared/realspeech`` is never used here: ``models/evaluate.py`` reports it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asrlive.decoding import GREEDY, LM_FOLDER, DecoderSpec, read_lm  # noqa: E402
from asrlive.metrics import cer, wer  # noqa: E402
from asrlive.model import configure_torch_threads, embedded_model_dir, load_model  # noqa: E402
from asrlive.peers import decoded_text  # noqa: E402


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def decode_all(spec: DecoderSpec, model, emissions: list[np.ndarray]) -> tuple[list[str], float]:
    t0 = time.process_time()
    hyps = [decoded_text(model, lp, spec) for lp in emissions]
    return hyps, time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--heldout-corpus", type=Path, required=True)
    ap.add_argument("--model", help="model folder (default: the embedded model)")
    ap.add_argument("--lm", type=Path, help="LM folder or ARPA file (default: the model's language_model/)")
    ap.add_argument("--alphas", type=_floats, default=[0.3, 0.5, 0.8, 1.2])
    ap.add_argument("--betas", type=_floats, default=[0.0, 1.0, 2.0, 3.0])
    ap.add_argument("--widths", type=lambda t: [int(x) for x in t.split(",")], default=[16])
    ap.add_argument("--delays", type=_floats, default=[1.0], help="max_delay_s values (commit delay bound)")
    ap.add_argument("--unknown-offsets", type=_floats, default=[-10.0], help="unknown_offset values")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true", help="store the chosen weights in the LM folder's attrs.json")
    args = ap.parse_args()
    model_dir = Path(args.model) if args.model else embedded_model_dir()
    lm_path = args.lm or model_dir / LM_FOLDER
    lm, _ = read_lm(lm_path)
    configure_torch_threads(args.threads)
    model = load_model(str(model_dir))

    d = np.load(args.heldout_corpus)
    offsets, refs = d["offsets"], [str(t) for t in d["texts"]]
    emissions = [model.log_probs(d["audio"][offsets[i]:offsets[i + 1]].astype(np.float32) / 32767)
                 for i in range(len(refs))]
    audio_s = offsets[-1] / model.sample_rate

    def row(spec: DecoderSpec) -> dict:
        hyps, cpu = decode_all(spec, model, emissions)
        return {"cer": round(cer(refs, hyps), 4), "wer": round(wer(refs, hyps), 4),
                "decode_rtf": round(cpu / audio_s, 4)}

    greedy = row(GREEDY)
    print(json.dumps({"greedy": greedy}), flush=True)
    results = []
    for width, alpha, beta, delay, unknown in product(args.widths, args.alphas, args.betas, args.delays,
                                                      args.unknown_offsets):
        settings = replace(DecoderSpec().beam, width=width, alpha=alpha, beta=beta, max_delay_s=delay,
                           unknown_offset=unknown)
        r = {"width": width, "alpha": alpha, "beta": beta, "max_delay_s": delay, "unknown_offset": unknown,
             **row(DecoderSpec("beam", settings, lm))}
        results.append(r)
        print(json.dumps(r), flush=True)
    no_lm = row(DecoderSpec("beam", replace(DecoderSpec().beam, width=max(args.widths))))
    best = min(results, key=lambda r: (r["wer"], r["cer"]))
    record = {"shard": args.heldout_corpus.name, "utterances": len(refs), "audio_s": round(float(audio_s), 1),
              "greedy": greedy, "beam_without_lm": no_lm, "chosen": best}
    print(json.dumps(record))
    if args.write:
        folder = lm_path if lm_path.is_dir() else lm_path.parent
        chosen = replace(DecoderSpec().beam, width=best["width"], alpha=best["alpha"], beta=best["beta"],
                         max_delay_s=best["max_delay_s"], unknown_offset=best["unknown_offset"])
        (folder / "attrs.json").write_text(json.dumps({**asdict(chosen), "chosen_on": record}, indent=1) + "\n")


if __name__ == "__main__":
    main()
