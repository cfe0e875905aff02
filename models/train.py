"""Training recipe for the embedded default model (a small Wav2Vec2ForCTC on espeak-ng speech).

    python models/train.py --run-dir RUN [--device cpu|cuda] [--steps N]

Seeded and resumable: every --ckpt-every steps it writes RUN/last.pt (model, optimiser,
scheduler, step, RNG states) and, when held-out CER improves, RUN/best/ in Hugging Face format.
Rerunning the same command resumes from RUN/last.pt. Loss and held-out CER go to RUN/log.jsonl.
Held-out CER uses sentences and voice variants that training never sees (asrlive.textcorpus and
asrlive.synth split them by hash).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from transformers import (
    Wav2Vec2Config,
    Wav2Vec2CTCTokenizer,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    Wav2Vec2Processor,
)

from asrlive.metrics import cer
from asrlive.synth import augment, random_voice, synthesize
from asrlive.textcorpus import load_sentences
from asrlive.vocab import BLANK, CHAR_VOCAB, WORD_DELIMITER, encode_text

SAMPLE_RATE = 16000
# Curriculum: short, clean utterances until CTC leaves its all-blank plateau, then long ones with
# noise, level and band-limit augmentation.
SHORT_UNTIL_STEP = 1500
CLEAN_UNTIL_STEP = 1000
# Batches are cut from a pool of this many batches' worth of utterances sorted by length, so a
# batch pads little: random batches of 1 to 14 word sentences are half padding
# (benchmarks/train_step.py measures padding and step time both ways).
POOL_BATCHES = 8
WORD_LIST = Path("/usr/share/dict/american-english")
# Weights are evaluated and exported as an exponential moving average (over about the last 1000
# steps): with a constant learning rate the average comes close to what a decayed run reaches,
# so a session can stop training whenever it must and still ship a settled model.
EMA_DECAY = 0.999
TRANSFORMER_LAYERS = 8


def model_config(layers: int = TRANSFORMER_LAYERS) -> Wav2Vec2Config:
    return Wav2Vec2Config(
        vocab_size=len(CHAR_VOCAB),
        pad_token_id=CHAR_VOCAB[BLANK],
        conv_dim=(32, 64, 128, 128, 256, 256, 256),
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        conv_bias=True,
        feat_extract_norm="layer",  # per-frame LayerNorm keeps conv features local (streaming)
        do_stable_layer_norm=True,  # pre-LN transformer: trains from scratch at a higher LR
        hidden_size=192,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=768,
        num_conv_pos_embeddings=32,
        num_conv_pos_embedding_groups=16,
        # No dropout and no time masking: every utterance is freshly synthesised, so there is
        # nothing to overfit, and drawing dropout masks is a visible share of a CPU step.
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )


class SpeechStream(IterableDataset):
    """Endless batches of (audio, label ids, text) from espeak-ng, grouped by length; each worker
    draws its own seed. The training step is shared with the loader processes so the curriculum
    follows it."""

    def __init__(self, seed: int, shared_step, batch_size: int):
        self.seed = seed
        self.shared_step = shared_step
        self.batch_size = batch_size
        self.sentences = load_sentences("train")
        words = WORD_LIST.read_text().split() if WORD_LIST.exists() else []
        self.words = [w.upper() for w in words if w.isascii() and w.isalpha() and w.islower() and len(w) > 1]

    def __iter__(self):
        utterances = self.utterances()
        rng = random.Random(self.seed + 1)
        while True:
            pool = sorted((next(utterances) for _ in range(POOL_BATCHES * self.batch_size)),
                          key=lambda u: len(u[0]))
            batches = [pool[i: i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
            rng.shuffle(batches)
            yield from (collate(b) for b in batches)

    def utterances(self):
        """Endless single (audio, label ids, text), following the curriculum."""
        info = get_worker_info()
        seed = self.seed + (info.id if info else 0) * 7919
        rng, nrng = random.Random(seed), np.random.default_rng(seed)
        by_len: dict[int, list[str]] = {}
        for s in self.sentences:
            by_len.setdefault(len(s.split()), []).append(s)
        while True:
            step = self.shared_step.value
            limit = 5 if step < SHORT_UNTIL_STEP else 14
            if self.words and rng.random() < 0.15:
                text = " ".join(rng.choice(self.words) for _ in range(rng.randint(1, min(6, limit))))
            else:
                n = rng.choice([k for k in by_len if k <= limit])
                text = rng.choice(by_len[n])
            audio = synthesize(text, random_voice(rng), SAMPLE_RATE)
            if step >= CLEAN_UNTIL_STEP:
                audio = augment(audio, nrng, SAMPLE_RATE)
            else:
                audio = audio * np.float32(10 ** (nrng.uniform(-12.0, 0.0) / 20))
            yield audio, encode_text(text), text


def collate(batch):
    lengths = [len(a) for a, _, _ in batch]
    audio = torch.zeros(len(batch), max(lengths))
    mask = torch.zeros(len(batch), max(lengths), dtype=torch.long)
    labels = torch.full((len(batch), max(len(lab) for _, lab, _ in batch)), -100)
    for i, (a, lab, _) in enumerate(batch):
        audio[i, : len(a)] = torch.from_numpy(a)
        mask[i, : len(a)] = 1
        labels[i, : len(lab)] = torch.tensor(lab)
    return audio, mask, labels, [t for _, _, t in batch]


def training_loss(model: Wav2Vec2ForCTC, audio: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                  device: str, bf16: bool) -> torch.Tensor:
    """The batch's CTC loss. With ``bf16`` the forward pass runs under bfloat16 autocast; the
    weights and their gradients stay float32, and transformers takes the log-softmax for CTC in
    float32."""
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
        return model(audio.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss


def heldout_set(n: int, seed: int = 1234) -> list[tuple[np.ndarray, str]]:
    rng = random.Random(seed)
    sentences = rng.sample(load_sentences("heldout"), n)
    return [(synthesize(s, random_voice(rng, "heldout"), SAMPLE_RATE), s) for s in sentences]


def greedy_text(logits: torch.Tensor) -> str:
    id_to_sym = {i: s for s, i in CHAR_VOCAB.items()}
    ids = torch.unique_consecutive(logits.argmax(-1)).tolist()
    text = "".join(id_to_sym[i] for i in ids if i != CHAR_VOCAB[BLANK])
    return " ".join(text.replace(WORD_DELIMITER, " ").split())


@torch.inference_mode()
def evaluate(model: Wav2Vec2ForCTC, clips, device: str) -> float:
    model.eval()
    hyps = [greedy_text(model(torch.from_numpy(a)[None].to(device)).logits[0]) for a, _ in clips]
    model.train()
    return cer([t for _, t in clips], hyps)


def grown_from(folder: Path) -> Wav2Vec2ForCTC:
    """The model of ``folder`` with transformer layers appended up to TRANSFORMER_LAYERS, computing
    the same function: each new pre-LN layer's attention and feed-forward output projections
    start at zero, so it passes its input through unchanged until training moves them."""
    small = Wav2Vec2ForCTC.from_pretrained(folder, use_safetensors=True)
    have = small.config.num_hidden_layers
    model = Wav2Vec2ForCTC(model_config())
    source, target = small.state_dict(), model.state_dict()
    mismatched = [k for k, v in source.items() if k not in target or target[k].shape != v.shape]
    if mismatched or have > TRANSFORMER_LAYERS:
        raise ValueError(f"{folder} does not match the recipe's architecture ({len(mismatched)} "
                         f"tensors differ, e.g. {mismatched[:1]}; {have} layers)")
    model.load_state_dict(source, strict=False)
    with torch.no_grad():
        for layer in model.wav2vec2.encoder.layers[have:]:
            for proj in (layer.attention.out_proj, layer.feed_forward.output_dense):
                proj.weight.zero_()
                proj.bias.zero_()
    return model


def freeze_conv_layers(model: Wav2Vec2ForCTC, n: int) -> None:
    """Keep the first ``n`` conv layers fixed. transformers marks the waveform itself as needing a
    gradient (for gradient checkpointing, unused here); unmarked, backward stops at the first
    trained layer instead of running through every conv layer down to the input."""
    encoder = model.wav2vec2.feature_extractor
    encoder._requires_grad = False
    for layer in encoder.conv_layers[:n]:
        layer.requires_grad_(False)


def save_hf(model: Wav2Vec2ForCTC, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    vocab_file = out / "vocab.json"
    vocab_file.write_text(json.dumps(CHAR_VOCAB))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(vocab_file), unk_token="<unk>", pad_token=BLANK, word_delimiter_token=WORD_DELIMITER
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0,
        do_normalize=False, return_attention_mask=True,
    )
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=250)
    ap.add_argument("--eval-clips", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-from", type=Path, help="start from these weights (an exported model folder) "
                    "when RUN has no checkpoint, e.g. to continue from the shipped model on a new machine")
    ap.add_argument("--start-step", type=int, default=0, help="with --init-from: the step those weights reached")
    ap.add_argument("--decay-steps", type=int, default=2000,
                    help="the learning rate falls linearly to 5 %% over the last this many of --steps")
    ap.add_argument("--frozen-conv-layers", type=int, default=0,
                    help="keep the first N conv layers as they are: at 3200-800 frames/s they are most of "
                    "a CPU step's backward pass, and once trained they change little")
    ap.add_argument("--bf16", action="store_true",
                    help="run the forward pass under bfloat16 autocast (weights, optimiser state, CTC "
                    "loss and evaluation stay float32): 0.7-0.9x the step time on this machine's AVX-512 "
                    "BF16 CPU (benchmarks/train_step.py)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    step, best = 0, float("inf")
    last = args.run_dir / "last.pt"
    if not last.exists() and args.init_from is not None:
        model = grown_from(args.init_from).to(args.device)
        step = args.start_step
        print(f"initialised from {args.init_from} at step {step}", flush=True)
    else:
        model = Wav2Vec2ForCTC(model_config()).to(args.device)
    freeze_conv_layers(model, args.frozen_conv_layers)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    first_step = step

    def lr_at(sched_step: int) -> float:
        """Warm-up, constant, then a linear decay over the last --decay-steps: the end of the run
        can move (resume with another --steps) without redoing the schedule."""
        at = first_step + sched_step
        if sched_step < args.warmup:
            return (sched_step + 1) / args.warmup
        return max(0.05, min(1.0, (args.steps - at) / max(1, args.decay_steps)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(EMA_DECAY))
    if last.exists():
        state = torch.load(last, map_location=args.device, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        first_step = state["first_step"]
        sched.load_state_dict(state["sched"])
        step, best = state["step"], state["best"]
        torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the device too
        print(f"resumed at step {step}, best CER {best:.3f}", flush=True)

    shared_step = torch.multiprocessing.Value("i", step)
    stream = SpeechStream(args.seed + step, shared_step, args.batch)
    loader = DataLoader(stream, batch_size=None, num_workers=args.workers,
                        persistent_workers=args.workers > 0)
    clips = heldout_set(args.eval_clips)
    log = (args.run_dir / "log.jsonl").open("a")
    model.train()
    t0 = time.time()
    for audio, mask, labels, _ in loader:
        if step >= args.steps:
            break
        loss = training_loss(model, audio, mask, labels, args.device, args.bf16)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        ema.update_parameters(model)
        step += 1
        shared_step.value = step
        record = {"step": step, "loss": round(loss.item(), 4), "lr": sched.get_last_lr()[0],
                  "sec": round(time.time() - t0, 1)}
        if step % args.ckpt_every == 0 or step == args.steps:  # the last step always counts
            record["heldout_cer"] = round(evaluate(ema.module, clips, args.device), 4)
            if record["heldout_cer"] < best:
                best = record["heldout_cer"]
                save_hf(ema.module, args.run_dir / "best")
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "sched": sched.state_dict(), "first_step": first_step, "step": step,
                        "best": best, "torch_rng": torch.get_rng_state()}, last.with_suffix(".tmp"))
            last.with_suffix(".tmp").replace(last)
        if step % 25 == 0 or "heldout_cer" in record:
            log.write(json.dumps(record) + "\n")
            log.flush()
            print(record, flush=True)


if __name__ == "__main__":
    main()
