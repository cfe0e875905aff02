"""Measures one lever on the streaming gap without training: which positional embeddings a
window's frames get.

    python models/position_probe.py --corpus CORPUS/heldout-0000.npz [--model M]
                                    [--plans 1000/4000/500,320/4000/320] [--threads 2]

The app adds Whisper's positions 0, 1, … from each window's first frame (as whisper.cpp's
``audio_ctx`` does), so a frame's position streamed is its distance from the window's start;
offline it is its distance from the start of the file. Here each plan is streamed both ways on
the same held-out synthetic shard, greedy: positions from the window's start (the app), and
positions of the frames' place in the stream (capped so a window ends at the encoder's last
position). Prints a JSON record; the model card quotes it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))
from asrlive.bench import plan_label  # noqa: E402
from asrlive.metrics import cer  # noqa: E402
from asrlive.model import configure_torch_threads, embedded_model_dir, load_geometry  # noqa: E402
from asrlive.planner import ChunkPlan  # noqa: E402
from asrlive.whisper_ctc import followed_by_silence, load_whisper_ctc  # noqa: E402
from evaluate import parse_plans  # noqa: E402
from train_whisper_ctc import greedy  # noqa: E402


def stream_text(net, geometry, audio: np.ndarray, plan: ChunkPlan, stream_positions: bool) -> str:
    total = geometry.frames(audio.size)
    frames = []
    with torch.inference_mode():
        for w in plan.windows(total):
            x = torch.from_numpy(audio[w.start_sample:w.end_sample])[None]
            feats = net.features(x)
            n = feats.shape[1]
            feats = followed_by_silence(net, x, feats)  # read as the app reads a window
            limit = net.encoder.shape.max_positions - feats.shape[1]
            first = min(w.first_frame, limit) if stream_positions else 0
            logits = net.from_features(net.encoder.with_positions(feats, first))[0, :n]
            frames.append(logits[w.commit_from - w.first_frame:w.commit_to - w.first_frame])
    return greedy(torch.cat(frames), 10**9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True, help="a held-out shard of models/make_corpus.py")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--plans", default="1000/4000/500,320/4000/320")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    configure_torch_threads(args.threads)
    folder = args.model or embedded_model_dir()
    geometry = load_geometry(folder)
    net, _ = load_whisper_ctc(folder)
    d = np.load(args.corpus)
    offsets = d["offsets"]
    audios = [d["audio"][offsets[i]:offsets[i + 1]].astype(np.float32) / 32767 for i in range(len(offsets) - 1)]
    refs = [str(t) for t in d["texts"]]
    record: dict = {"model": str(folder), "corpus": str(args.corpus), "utterances": len(refs)}
    with torch.inference_mode():
        offline = [greedy(net(torch.from_numpy(a)[None]).logits[0], 10**9) for a in audios]
    record["offline_cer"] = round(cer(refs, offline), 4)
    for settings in parse_plans(args.plans):
        plan = ChunkPlan.from_settings(geometry, settings)
        key = plan_label(plan)
        for name, stream_positions in (("window_positions", False), ("stream_positions", True)):
            c = cer(refs, [stream_text(net, geometry, a, plan, stream_positions) for a in audios])
            record.setdefault(key, {})[name] = {"cer": round(c, 4), "relative_to_offline": round(c / record["offline_cer"], 3)}
        print(json.dumps({key: record[key]}), file=sys.stderr, flush=True)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
