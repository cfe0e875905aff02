"""Window distillation: teach the CTC head to read the windows the chunk planner makes as well as
it reads whole utterances.

    python models/window_distil.py cache --corpus CORPUS --encoder ENCODER --feats WFEATS \
        --shards train-0000,...  [--plan random|HOP/LEFT/RIGHT] [--layer 6]
    python models/window_distil.py train --feats FEATS --window-feats WFEATS \
        --teacher RUN/best.pt|MODEL_FOLDER --run RUN-W [--steps 1500] [--adapt-layers N --encoder ENCODER]

The encoder is frozen and sees only the window when streaming, so a window's frames differ from
the same frames computed with the whole utterance around them; a head trained on whole
utterances then reads streamed audio worse than offline audio. Here the encoder runs once on
every planner window of each cached utterance (``cache``, the planner's own ``ChunkPlan.window``
with the stream's end known, as the worker's flush makes them), and the head is trained
(``train``, starting from the teacher's weights) so that on each window's committed frames it
gives the posteriors the teacher gives offline on the whole utterance (KL divergence), with the
right-context frames at a lower weight and whole utterances mixed in so offline decoding keeps
the teacher's output. No transcript has to be split at window edges: the teacher's frame
posteriors already say what each frame holds. Checkpoints are chosen by greedy CER on the held-out
shard streamed at the two reference plans and offline (their mean); ``train`` resumes from
``RUN/last.pt`` and writes ``RUN/best.pt``, which ``train_whisper_ctc.py export`` exports.

A head alone cannot undo what the encoder lost by seeing only the window. ``--adapt-layers N``
also trains copies of the encoder's top N layers (and its final LayerNorm): the windows and whole
utterances are then cached at layer read_layer − N, the teacher still reads layer read_layer of
the unchanged encoder, and the export ships the adapted layers beside the head.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))
from asrlive.geometry import Geometry  # noqa: E402
from asrlive.metrics import cer  # noqa: E402
from asrlive.planner import ChunkPlan, ChunkSettings  # noqa: E402
from asrlive.whisper_ctc import CONV_KERNEL, CONV_STRIDE, CTCHead, HeadShape, WhisperEncoder  # noqa: E402
from train_whisper_ctc import (  # noqa: E402
    Features, add_schedule_args, greedy, learning_rate, length_batches, load_encoder, new_optimizer,
    optimizer_step, resume, save_checkpoint,
)

GEOMETRY = Geometry(CONV_KERNEL, CONV_STRIDE)
# The app's default plan once the left context went to 4 s (its right context is 640 ms now) and
# the short-hop plan the issues measure, as distilling again used them; held-out windows are
# cached at both, and a quarter of training utterances each. The other half draw a plan from the
# grid below, so the head also serves the plans users tune to.
REFERENCE_PLANS = {"default": (1000, 4000, 500), "hop320": (320, 4000, 320)}
RANDOM_HOPS_MS = (160, 320, 640, 1000)
RANDOM_LEFTS_MS = (1000, 2000, 4000)
RANDOM_RIGHTS_MS = (0, 160, 320, 500, 640)
# KL weights of a window's frames: committed frames are the output; right-context frames are
# only shown as tentative text and recomputed by the next window.
RIGHT_CONTEXT_WEIGHT = 0.3


def plan_of(ms: tuple[int, int, int]) -> ChunkPlan:
    return ChunkPlan.from_settings(GEOMETRY, ChunkSettings(*map(float, ms)))


def draw_plan(rng: random.Random) -> tuple[int, int, int]:
    u = rng.random()
    if u < 0.25:
        return REFERENCE_PLANS["default"]
    if u < 0.5:
        return REFERENCE_PLANS["hop320"]
    return rng.choice(RANDOM_HOPS_MS), rng.choice(RANDOM_LEFTS_MS), rng.choice(RANDOM_RIGHTS_MS)


# --- cache ------------------------------------------------------------------------------------

def cache(args) -> None:
    enc, meta = load_encoder(args.encoder)
    args.feats.mkdir(parents=True, exist_ok=True)
    (args.feats / "encoder.json").write_text(json.dumps(meta, indent=2))
    tag = "random" if args.plan == "random" else args.plan.replace("/", "-")
    for name in args.shards.split(","):
        stem = f"{name}.{tag}"
        done = args.feats / f"{stem}.json"
        if done.exists():
            continue
        d = np.load(args.corpus / f"{name}.npz")
        offsets, audio = d["offsets"], d["audio"]
        rng = random.Random(f"{name}:{tag}")
        rows, feats, t0 = [], [], time.time()
        with torch.inference_mode():
            for u in range(len(offsets) - 1):
                x = audio[offsets[u]:offsets[u + 1]].astype(np.float32) / 32767
                ms = draw_plan(rng) if args.plan == "random" else tuple(int(v) for v in args.plan.split("/"))
                total = GEOMETRY.frames(len(x))
                wins = plan_of(ms).windows(total)
                by_len: dict[int, list] = {}
                for w in wins:  # windows of one length run as one batch
                    by_len.setdefault(w.end_sample - w.start_sample, []).append(w)
                out = {}
                for n, ws in by_len.items():
                    batch = torch.from_numpy(np.stack([x[w.start_sample:w.end_sample] for w in ws]))
                    h = enc.hidden(batch, args.layer)
                    for w, hw in zip(ws, h):
                        assert len(hw) == w.n_frames, (len(hw), w)
                        out[w.commit_from] = hw.numpy().astype(np.float16)
                for w in wins:
                    feats.append(out[w.commit_from])
                    rows.append([u, w.first_frame, w.commit_from, w.commit_to, w.end_frame, *ms])
        np.save(args.feats / f"{stem}.L{args.layer}.npy", np.concatenate(feats))
        done.write_text(json.dumps({"windows": rows, "texts": d["texts"].tolist(), "voices": d["voices"].tolist()}))
        print(f"{stem}: {len(rows)} windows of {len(offsets) - 1} utterances in {time.time() - t0:.0f} s", flush=True)


# --- data -------------------------------------------------------------------------------------

class Windows:
    """Cached window features of some shards, each window with the absolute frames it holds."""

    def __init__(self, wfeats: Path, stems: list[str], layer: int):
        self.items: list[tuple[str, int, np.ndarray, tuple[int, int, int, int], tuple[int, int, int]]] = []
        for stem in stems:
            meta = json.loads((wfeats / f"{stem}.json").read_text())
            arr = np.load(wfeats / f"{stem}.L{layer}.npy", mmap_mode="r")
            shard = stem.split(".")[0]
            start = 0
            for u, first, c0, c1, end, *ms in meta["windows"]:
                n = end - first
                self.items.append((shard, u, arr[start:start + n], (first, c0, c1, end), tuple(ms)))
                start += n


def teacher_posteriors(teacher: CTCHead, data: Features) -> list[np.ndarray]:
    """The teacher's offline log-probs of every utterance (float16)."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(data.items), 64):
            idx = list(range(start, min(start + 64, len(data.items))))
            x, pad, _ = data.collate(idx)
            logp = torch.log_softmax(teacher(x, pad).float(), -1)
            out += [logp[j, :len(data.items[i][0])].numpy().astype(np.float16) for j, i in enumerate(idx)]
    return out


def streamed_cer(head: torch.nn.Module, wins: Windows, utts: Features, plan: tuple[int, int, int]) -> float:
    """Greedy CER of the held-out utterances streamed at ``plan``: each window's committed frames,
    concatenated, exactly what the worker keeps."""
    chosen = [w for w in wins.items if w[4] == plan]
    frames: dict[int, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for start in range(0, len(chosen), 256):
            part = chosen[start:start + 256]
            t = max(len(w[2]) for w in part)
            x = torch.zeros(len(part), t, part[0][2].shape[1])
            pad = torch.ones(len(part), t, dtype=torch.bool)
            for j, w in enumerate(part):
                x[j, :len(w[2])] = torch.from_numpy(w[2].astype(np.float32))
                pad[j, :len(w[2])] = False
            logits = head(x, pad)
            for j, (_, u, _, (first, c0, c1, _), _) in enumerate(part):
                frames.setdefault(u, []).append(logits[j, c0 - first:c1 - first])
    refs = [utts.items[u][2] for u in sorted(frames)]
    hyps = [greedy(torch.cat(frames[u]), 10**9) for u in sorted(frames)]
    return cer(refs, hyps)


def offline_cer(head: torch.nn.Module, utts: Features) -> float:
    hyps = []
    with torch.inference_mode():
        for start in range(0, len(utts.items), 64):
            idx = list(range(start, min(start + 64, len(utts.items))))
            x, pad, _ = utts.collate(idx)
            logits = head(x, pad)
            hyps += [greedy(logits[j], len(utts.items[i][0])) for j, i in enumerate(idx)]
    return cer([it[2] for it in utts.items], hyps)


def evaluate(head: torch.nn.Module, wins: Windows, utts: Features) -> dict:
    head.eval()
    out = {name: round(streamed_cer(head, wins, utts, ms), 4) for name, ms in REFERENCE_PLANS.items()}
    out["offline"] = round(offline_cer(head, utts), 4)
    out["score"] = round(float(np.mean(list(out.values()))), 4)
    head.train()
    return out


# --- train ------------------------------------------------------------------------------------

class Student(torch.nn.Module):
    """The head, behind the encoder's top ``adapt`` layers (copies, trained with it) when it reads
    an earlier layer's cached output; with ``adapt`` 0, the head alone."""

    def __init__(self, head: CTCHead, encoder: WhisperEncoder | None, adapt: int):
        super().__init__()
        self.head = head
        self.blocks = torch.nn.ModuleList(copy.deepcopy(encoder.blocks[len(encoder.blocks) - adapt:]) if adapt else [])
        self.ln_post = copy.deepcopy(encoder.ln_post) if adapt else None
        self.first_adapted = len(encoder.blocks) - adapt if adapt else 0  # index of the first copied layer

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, key_padding)
        if self.ln_post is not None:
            x = self.ln_post(x)
        return self.head(x, key_padding)

    def weights(self) -> dict:
        """best.pt's record: the head's weights as ``head`` (what ``train_whisper_ctc.py export``
        ships), and the adapted encoder layers, named as in the encoder, as ``encoder_top``."""
        top = {}
        for n, block in enumerate(self.blocks, start=self.first_adapted):
            top |= {f"blocks.{n}.{k}": v for k, v in block.state_dict().items()}
        if self.ln_post is not None:
            top |= {f"ln_post.{k}": v for k, v in self.ln_post.state_dict().items()}
        return {"head": self.head.state_dict(), "encoder_top": top}


def load_teacher(path: Path) -> tuple[dict, dict, int]:
    """(head weights, head.json-style meta, step) of a ``train_whisper_ctc.py`` checkpoint
    (RUN/best.pt) or of an exported model folder, so a shipped head can be distilled again."""
    if path.is_dir():
        from safetensors.torch import load_file

        config = json.loads((path / "config.json").read_text())
        meta = {"head": config["head"], "encoder": json.loads((path / "encoder.json").read_text())}
        weights = load_file(str(path / "head.safetensors"))
        if any(k.startswith("encoder.") for k in weights):
            raise SystemExit(f"{path} adapts encoder layers: a teacher reads the unchanged encoder's cached outputs")
        return weights, meta, config["trained"]["step"]
    ck = torch.load(path, map_location="cpu", weights_only=False)
    return ck["head"], json.loads((path.parent / "head.json").read_text()), ck["step"]


def train(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    weights, meta, teacher_step = load_teacher(args.teacher)
    shape = HeadShape(**meta["head"])
    d_in = meta["encoder"]["encoder"]["d_model"]
    teacher = CTCHead(d_in, shape).eval()
    teacher.load_state_dict(weights)
    head = CTCHead(d_in, shape)
    head.load_state_dict(weights)
    # Adapting the encoder's top layers: the student reads an earlier layer's cached output.
    if args.adapt_layers and args.encoder is None:
        raise SystemExit("--adapt-layers needs --encoder")
    read = shape.read_layer - args.adapt_layers
    student = Student(head, load_encoder(args.encoder)[0] if args.adapt_layers else None, args.adapt_layers)
    args.run.mkdir(parents=True, exist_ok=True)
    (args.run / "head.json").write_text(json.dumps(meta | {"distilled_from": str(args.teacher),
                                                          "distilled_from_step": teacher_step,
                                                          "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))
    opt = new_optimizer(student, args.lr)
    step, best, log = resume(args.run, student, opt, "score")

    train_stems = sorted(p.stem for p in args.window_feats.glob("train-*.json"))
    shards = sorted({s.split(".")[0] for s in train_stems})
    utts = {s: Features(args.feats, s, read) for s in shards}
    teacher_reads = utts if read == shape.read_layer else {s: Features(args.feats, s, shape.read_layer) for s in shards}
    targets = {s: teacher_posteriors(teacher, teacher_reads[s]) for s in shards}
    wins = Windows(args.window_feats, train_stems, read)
    # One item list: every window, and every whole utterance as a window of its own (offline).
    items = [(w[2], targets[w[0]][w[1]], w[3]) for w in wins.items]
    for s in shards:
        for u, it in enumerate(utts[s].items):
            n = len(it[0])
            items.append((it[0], targets[s][u], (0, 0, n, n)))
    dev_utts = Features(args.feats, "heldout-*", read)
    dev_wins = Windows(args.window_feats, [f"heldout-0000.{'-'.join(map(str, ms))}" for ms in REFERENCE_PLANS.values()],
                       read)
    print(f"{len(wins.items)} training windows and {len(items) - len(wins.items)} whole utterances; "
          f"{len(dev_utts.items)} held out", flush=True)
    if step == 0 and not log:
        ev = evaluate(student, dev_wins, dev_utts)
        log.append({"step": 0, **ev})
        print(json.dumps(log[-1]), flush=True)
        best = ev["score"]
        torch.save({**student.weights(), "step": 0, "dev": ev}, args.run / "best.pt")

    rng = random.Random(args.seed + step)
    lengths = [len(it[0]) for it in items]
    deadline = time.time() + args.minutes * 60
    t0, losses = time.time(), []
    while step < args.steps and time.time() < deadline:
        for idx in length_batches(lengths, rng, args.batch_frames):
            if step >= args.steps or time.time() >= deadline:
                break
            t = max(lengths[i] for i in idx)
            x = torch.zeros(len(idx), t, items[idx[0]][0].shape[1])
            target = torch.zeros(len(idx), t, items[idx[0]][1].shape[1])
            weight = torch.zeros(len(idx), t)
            pad = torch.ones(len(idx), t, dtype=torch.bool)
            for j, i in enumerate(idx):
                feats, post, (first, c0, c1, end) = items[i]
                n = end - first
                x[j, :n] = torch.from_numpy(feats.astype(np.float32))
                target[j, :n] = torch.from_numpy(post[first:end].astype(np.float32))
                pad[j, :n] = False
                weight[j, c0 - first:c1 - first] = 1.0
                weight[j, c1 - first:n] = RIGHT_CONTEXT_WEIGHT
            if args.feature_dropout:
                x = F.dropout(x, args.feature_dropout)
            logp = torch.log_softmax(student(x, pad).float(), -1)
            kl = (target.exp() * (target - logp)).sum(-1)
            loss = (kl * weight).sum() / weight.sum()
            optimizer_step(args, student, opt, loss, step)
            step += 1
            losses.append(loss.item())
            if step % args.eval_every == 0 or step == args.steps:
                ev = evaluate(student, dev_wins, dev_utts)
                log.append({"step": step, "kl": round(float(np.mean(losses)), 4), **ev, "lr": learning_rate(args, step),
                            "s_per_step": round((time.time() - t0) / len(losses), 3)})
                print(json.dumps(log[-1]), flush=True)
                losses, t0 = [], time.time()
                if ev["score"] < best:
                    best = ev["score"]
                    torch.save({**student.weights(), "step": step, "dev": ev}, args.run / "best.pt")
                save_checkpoint(args.run, student, opt, step, best, log)
    save_checkpoint(args.run, student, opt, step, best, log)
    print(f"stopped at step {step}; best held-out score {best}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--corpus", type=Path, required=True)
    c.add_argument("--encoder", type=Path, required=True)
    c.add_argument("--feats", type=Path, required=True)
    c.add_argument("--shards", required=True, help="comma-separated shard names, e.g. train-0000,train-0001")
    c.add_argument("--plan", default="random", help="'random' (a plan per utterance) or HOP/LEFT/RIGHT in ms")
    c.add_argument("--layer", type=int, default=6)
    c.add_argument("--threads", type=int, default=1)
    t = sub.add_parser("train")
    t.add_argument("--feats", type=Path, required=True, help="whole-utterance features (train_whisper_ctc.py cache)")
    t.add_argument("--window-feats", type=Path, required=True)
    t.add_argument("--teacher", type=Path, required=True, help="a RUN/best.pt of train_whisper_ctc.py, or an exported model folder")
    t.add_argument("--run", type=Path, required=True)
    add_schedule_args(t, lr=5e-4, warmup=100, steps=1500, decay_steps=500, batch_frames=6000)
    t.add_argument("--adapt-layers", type=int, default=0,
                   help="also train copies of the encoder's top N layers (needs layer read_layer - N cached)")
    t.add_argument("--encoder", type=Path, help="the encoder folder whose top layers --adapt-layers trains")
    args = ap.parse_args()
    if args.cmd == "cache":
        torch.set_num_threads(args.threads)
        cache(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
