"""Training recipe for the Whisper-encoder CTC model: cache the frozen encoder's outputs once,
train the CTC head on them, export a model folder.

    python models/train_whisper_ctc.py cache --corpus CORPUS --encoder models/whisper-base-encoder \
        --layers 4,6 --feats FEATS
    python models/train_whisper_ctc.py train --feats FEATS --run RUN --read-layer 6 \
        [--head-layers 2 --head-dim 256] [--minutes 60] [--device cpu|cuda]
    python models/train_whisper_ctc.py export --run RUN --encoder models/whisper-base-encoder --out MODEL

The encoder never trains, so each utterance goes through it once (``cache``) and a training step
costs only the head: that is what makes the recipe practical on a 2-core CPU. ``train`` resumes
from ``RUN/last.pt`` when it exists, evaluates greedy CER on the held-out shards every
``--eval-every`` steps, and keeps the best head by that CER in ``RUN/best.pt``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from asrlive.metrics import cer  # noqa: E402
from asrlive.vocab import BLANK, CHAR_VOCAB, WORD_DELIMITER, encode_text  # noqa: E402
from asrlive.whisper_ctc import (  # noqa: E402
    CTCHead, EncoderShape, HeadShape, LogMel, WhisperEncoder, folder_config, read_encoder,
)

# Fixed log-mel floor (log10 power), in place of Whisper's per-window max - 8, which would make
# every frame depend on the loudest one in its window: Whisper's clamp for a window whose
# log-mel maximum is 0.5, set by hand.
MEL_FLOOR = -7.5
ID_TO_SYMBOL = {i: s for s, i in CHAR_VOCAB.items()}


def load_encoder(folder: Path) -> tuple[WhisperEncoder, dict]:
    meta = json.loads((folder / "encoder.json").read_text())
    state = read_encoder(folder / "encoder.safetensors")
    enc = WhisperEncoder(EncoderShape(**meta["encoder"]), LogMel(state["feature_extractor.mel.filters"], MEL_FLOOR))
    enc.load_state_dict(state, strict=True)
    return enc.eval(), meta


# --- cache ------------------------------------------------------------------------------------

def cache(args) -> None:
    enc, meta = load_encoder(args.encoder)
    layers = [int(x) for x in args.layers.split(",")]
    args.feats.mkdir(parents=True, exist_ok=True)
    (args.feats / "encoder.json").write_text(json.dumps(meta, indent=2))
    for shard in sorted(args.corpus.glob("*.npz")):
        if shard.name.endswith(".tmp.npz"):
            continue
        done = args.feats / f"{shard.stem}.json"
        if done.exists():
            continue
        d = np.load(shard)
        offsets, audio = d["offsets"], d["audio"]
        outs: dict[int, list[np.ndarray]] = {n: [] for n in layers}
        frames = []
        t0 = time.time()
        with torch.inference_mode():
            for i in range(len(offsets) - 1):
                x = torch.from_numpy(audio[offsets[i]:offsets[i + 1]].astype(np.float32) / 32767)[None]
                for n, h in enc.hiddens(x, set(layers)).items():
                    outs[n].append(h[0].numpy().astype(np.float16))
                frames.append(h.shape[1])
        for n in layers:
            np.save(args.feats / f"{shard.stem}.L{n}.npy", np.concatenate(outs[n]))
        done.write_text(json.dumps({"frames": frames, "texts": d["texts"].tolist(), "voices": d["voices"].tolist()}))
        print(f"{shard.name}: {len(frames)} utterances in {time.time() - t0:.0f} s", flush=True)


# --- data -------------------------------------------------------------------------------------

def length_batches(lengths: list[int], rng: random.Random, max_frames: int) -> list[list[int]]:
    """Indices in length-sorted batches of at most ``max_frames`` padded frames, in random order."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] + rng.random())
    batches, cur, longest = [], [], 0
    for i in order:
        if cur and max(longest, lengths[i]) * (len(cur) + 1) > max_frames:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, lengths[i])
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


class Features:
    """Cached encoder outputs of one split, in memory as float16."""

    def __init__(self, feats: Path, shards: str, layer: int, limit_shards: int | None = None):
        """``shards``: a glob of shard names, e.g. ``train-*`` or ``train-0003``."""
        self.items: list[tuple[np.ndarray, list[int], str, str]] = []
        metas = sorted(feats.glob(f"{shards}.json"))[:limit_shards]
        for meta_path in metas:
            meta = json.loads(meta_path.read_text())
            arr = np.load(feats / f"{meta_path.stem}.L{layer}.npy", mmap_mode="r")
            starts = np.cumsum([0] + meta["frames"])
            for i, text in enumerate(meta["texts"]):
                self.items.append((np.asarray(arr[starts[i]:starts[i + 1]]), encode_text(text), text, meta["voices"][i]))
        if not self.items:
            raise SystemExit(f"no cached {shards} features for layer {layer} in {feats}")

    def batches(self, rng: random.Random, max_frames: int) -> list[list[int]]:
        return length_batches([len(it[0]) for it in self.items], rng, max_frames)

    def collate(self, idx: list[int], rng: np.random.Generator | None = None):
        feats = [self.items[i][0] for i in idx]
        t = max(len(f) for f in feats)
        x = torch.zeros(len(idx), t, feats[0].shape[1])
        pad = torch.ones(len(idx), t, dtype=torch.bool)
        for j, f in enumerate(feats):
            x[j, : len(f)] = torch.from_numpy(f.astype(np.float32))
            pad[j, : len(f)] = False
            if rng is not None:  # time masks: the head must read a word from its neighbours
                for _ in range(rng.integers(0, 3)):
                    w = int(rng.integers(1, 8))
                    s = int(rng.integers(0, max(1, len(f) - w)))
                    x[j, s:s + w] = 0.0
        labels = [torch.tensor(self.items[i][1]) for i in idx]
        return x, pad, labels


def greedy(logits: torch.Tensor, n: int) -> str:
    ids = logits[:n].argmax(-1).tolist()
    out, prev = [], None
    for i in ids:
        if i != prev and i != CHAR_VOCAB[BLANK]:
            out.append(ID_TO_SYMBOL[i])
        prev = i
    text = "".join(" " if s == WORD_DELIMITER else s for s in out if len(s) == 1 or s == WORD_DELIMITER)
    return " ".join(text.split())


def evaluate(head: CTCHead, data: Features, device: str) -> dict:
    head.eval()
    refs, hyps, by_engine = [], [], {}
    with torch.inference_mode():
        for start in range(0, len(data.items), 32):
            idx = list(range(start, min(start + 32, len(data.items))))
            x, pad, _ = data.collate(idx)
            logits = head(x.to(device), pad.to(device)).float().cpu()
            for j, i in enumerate(idx):
                ref, hyp = data.items[i][2], greedy(logits[j], len(data.items[i][0]))
                refs.append(ref)
                hyps.append(hyp)
                by_engine.setdefault(data.items[i][3].split(":")[0], []).append((ref, hyp))
    head.train()
    return {"cer": cer(refs, hyps), "n": len(refs),
            "by_engine": {e: round(cer([r for r, _ in p], [h for _, h in p]), 4) for e, p in sorted(by_engine.items())},
            "examples": list(zip(refs[:3], hyps[:3]))}


# --- train ------------------------------------------------------------------------------------

def add_schedule_args(parser: argparse.ArgumentParser, lr: float, warmup: int, steps: int, decay_steps: int,
                      batch_frames: int) -> None:
    """The training-loop options both recipes take (defaults differ per recipe)."""
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--warmup", type=int, default=warmup)
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--decay-steps", type=int, default=decay_steps)
    parser.add_argument("--batch-frames", type=int, default=batch_frames)
    parser.add_argument("--feature-dropout", type=float, default=0.1)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--minutes", type=float, default=1e9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)


def learning_rate(args: argparse.Namespace, step: int) -> float:
    """Warm-up, constant, then a linear fall to 5 % over the last ``--decay-steps`` of ``--steps``."""
    warm = min(1.0, (step + 1) / args.warmup)
    fall = max(0.05, min(1.0, (args.steps - step) / max(1, args.decay_steps)))
    return args.lr * warm * fall


def save_checkpoint(run: Path, head: torch.nn.Module, opt: torch.optim.Optimizer, step: int, best, log: list) -> None:
    """``RUN/last.pt``, written whole or not at all: what ``train`` resumes from."""
    torch.save({"head": head.state_dict(), "opt": opt.state_dict(), "step": step, "best": best, "log": log},
               run / "last.tmp")
    (run / "last.tmp").rename(run / "last.pt")


def new_optimizer(head: torch.nn.Module, lr: float) -> torch.optim.AdamW:
    return torch.optim.AdamW(head.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)


def resume(run: Path, head: torch.nn.Module, opt: torch.optim.Optimizer, best_name: str) -> tuple[int, object, list]:
    """(step, best, log) from ``RUN/last.pt`` into ``head`` and ``opt`` when it exists, else a fresh start."""
    last = run / "last.pt"
    if not last.exists():
        return 0, None, []
    ck = torch.load(last, map_location="cpu", weights_only=False)
    head.load_state_dict(ck["head"])
    opt.load_state_dict(ck["opt"])
    print(f"resumed at step {ck['step']} (best {best_name} {ck['best']})", flush=True)
    return ck["step"], ck["best"], ck["log"]


def optimizer_step(args: argparse.Namespace, head: torch.nn.Module, opt: torch.optim.Optimizer,
                   loss: torch.Tensor, step: int) -> None:
    """One update at the schedule's learning rate for ``step``, gradients clipped to norm 1."""
    for g in opt.param_groups:
        g["lr"] = learning_rate(args, step)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
    opt.step()


def train(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    enc_meta = json.loads((args.feats / "encoder.json").read_text())
    shape = HeadShape(read_layer=args.read_layer, d_model=args.head_dim, layers=args.head_layers,
                      heads=max(1, args.head_dim // 64), vocab_size=len(CHAR_VOCAB), kind=args.head)
    args.run.mkdir(parents=True, exist_ok=True)
    head = CTCHead(enc_meta["encoder"]["d_model"], shape).to(args.device)
    opt = new_optimizer(head, args.lr)
    step, best, log = resume(args.run, head, opt, "CER")
    (args.run / "head.json").write_text(json.dumps({"head": shape.__dict__, "encoder": enc_meta,
                                                    "args": {k: str(v) for k, v in vars(args).items()}}, indent=2))
    train_set = Features(args.feats, "train-*", args.read_layer, args.train_shards)
    dev_set = Features(args.feats, "heldout-*", args.read_layer)
    print(f"{len(train_set.items)} training utterances, {len(dev_set.items)} held out", flush=True)
    ctc = torch.nn.CTCLoss(blank=CHAR_VOCAB[BLANK], zero_infinity=True)
    deadline = time.time() + args.minutes * 60
    rng, nrng = random.Random(args.seed + step), np.random.default_rng(args.seed + step)

    t0, losses = time.time(), []
    while step < args.steps and time.time() < deadline:
        for idx in train_set.batches(rng, args.batch_frames):
            if step >= args.steps or time.time() >= deadline:
                break
            x, pad, labels = train_set.collate(idx, nrng)
            x = x.to(args.device)
            if args.feature_dropout:
                x = torch.nn.functional.dropout(x, args.feature_dropout)
            logits = head(x, pad.to(args.device))
            logp = torch.log_softmax(logits.float(), -1).transpose(0, 1)
            lengths = (~pad).sum(1)
            loss = ctc(logp, torch.cat(labels).to(args.device), lengths.to(args.device),
                       torch.tensor([len(lab) for lab in labels]))
            optimizer_step(args, head, opt, loss, step)
            step += 1
            losses.append(loss.item())
            if step % args.eval_every == 0 or step == args.steps:
                ev = evaluate(head, dev_set, args.device)
                entry = {"step": step, "loss": round(float(np.mean(losses)), 4), "dev_cer": round(ev["cer"], 4),
                         "by_engine": ev["by_engine"], "lr": learning_rate(args, step), "s_per_step": round((time.time() - t0) / len(losses), 3)}
                log.append(entry)
                print(json.dumps(entry), "|", ev["examples"][0][1], flush=True)
                losses, t0 = [], time.time()
                if best is None or ev["cer"] < best:
                    best = ev["cer"]
                    torch.save({"head": head.state_dict(), "step": step, "dev": ev}, args.run / "best.pt")
                save_checkpoint(args.run, head, opt, step, best, log)
    save_checkpoint(args.run, head, opt, step, best, log)
    print(f"stopped at step {step}; best held-out CER {best}", flush=True)


# --- export -----------------------------------------------------------------------------------

def export(args) -> None:
    from safetensors.torch import save_file

    meta = json.loads((args.run / "head.json").read_text())
    best = torch.load(args.run / "best.pt", map_location="cpu", weights_only=False)
    enc_meta = json.loads((args.encoder / "encoder.json").read_text())
    if enc_meta["encoder"] != meta["encoder"]["encoder"]:
        raise SystemExit(f"{args.encoder} is not the encoder this head was trained on")
    args.out.mkdir(parents=True, exist_ok=True)
    # Encoder layers a window-distillation run adapted ship beside the head, in float16 as the
    # encoder's own weights are, so encoder.safetensors stays the unchanged pretrained file.
    adapted = {f"encoder.{k}": v.half() for k, v in best.get("encoder_top", {}).items()}
    save_file({k: v.contiguous() for k, v in (best["head"] | adapted).items()}, str(args.out / "head.safetensors"))
    for name in ("encoder.safetensors", "encoder.json", "LICENSE-whisper.txt"):
        shutil.copy(args.encoder / name, args.out / name)
    (args.out / "vocab.json").write_text(json.dumps(CHAR_VOCAB, indent=1) + "\n")
    # A CTC run's dev record has its CER by engine; a window-distillation run's (window_distil.py)
    # the streamed and offline CERs it chose by.
    trained = {"step": best["step"], "heldout": best["dev"]}
    if "distilled_from" in meta:
        trained["distilled_from_step"] = meta["distilled_from_step"]
    config = folder_config(EncoderShape(**enc_meta["encoder"]), HeadShape(**meta["head"]), MEL_FLOOR,
                           silence_after_ms=args.silence_after_ms, whisper=enc_meta["whisper"], trained=trained)
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    print(f"exported step {best['step']} (held-out {best['dev']}) to {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--corpus", type=Path, required=True)
    c.add_argument("--encoder", type=Path, required=True)
    c.add_argument("--layers", default="6")
    c.add_argument("--feats", type=Path, required=True)
    c.add_argument("--threads", type=int, default=1)
    t = sub.add_parser("train")
    t.add_argument("--feats", type=Path, required=True)
    t.add_argument("--run", type=Path, required=True)
    t.add_argument("--read-layer", type=int, required=True)
    t.add_argument("--head", choices=("lstm", "transformer"), default="lstm")
    t.add_argument("--head-layers", type=int, default=2)
    t.add_argument("--head-dim", type=int, default=192, help="LSTM units per direction, or transformer width")
    add_schedule_args(t, lr=1e-3, warmup=300, steps=20000, decay_steps=3000, batch_frames=12000)
    t.add_argument("--train-shards", type=int)
    t.add_argument("--device", default="cpu")
    e = sub.add_parser("export")
    e.add_argument("--run", type=Path, required=True)
    e.add_argument("--encoder", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    # Chosen on the dev shard after training (the card's "Silence after the window").
    e.add_argument("--silence-after-ms", type=float, default=2000.0)
    args = ap.parse_args()
    if args.cmd == "cache":
        torch.set_num_threads(args.threads)
        cache(args)
    elif args.cmd == "train":
        train(args)
    else:
        export(args)


if __name__ == "__main__":
    main()
