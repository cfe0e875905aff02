"""Training step time of the embedded model's recipe on this machine, three ways on the same
utterances: random batches (the recipe before step 1750), length-grouped batches (the recipe
since), and length-grouped batches with the first conv layers frozen (the recipe since step
10000). Prints seconds per step, padding, and the ratio to random batches.

torch.compile was tried as a third way and left out: every new batch shape recompiled, which made
it far slower than eager over six differently shaped batches, and the recipe's own steps with it
were no faster than eager ones.

    python -m benchmarks.train_step [--batches 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import Wav2Vec2ForCTC

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
import train  # noqa: E402  (models/ is a folder of scripts, not a package)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frozen-conv-layers", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    # The long-sentence, augmented phase of the curriculum: what every step after 1500 looks like.
    stream = train.SpeechStream(0, torch.multiprocessing.Value("i", train.SHORT_UNTIL_STEP), 16)
    utterances = stream.utterances()
    pool = [next(utterances) for _ in range(16 * args.batches)]
    random_batches = [train.collate(pool[i: i + 16]) for i in range(0, len(pool), 16)]
    by_length = sorted(pool, key=lambda u: len(u[0]))
    grouped = [train.collate(by_length[i: i + 16]) for i in range(0, len(pool), 16)]
    random.Random(0).shuffle(grouped)

    full = Wav2Vec2ForCTC(train.model_config()).train()
    frozen = Wav2Vec2ForCTC(train.model_config()).train()
    train.freeze_conv_layers(frozen, args.frozen_conv_layers)

    def seconds_per_step(model, batches, bf16: bool = False) -> float:
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        times = []
        for audio, mask, labels, _ in batches[:1] + batches:  # the first call's allocations untimed
            start = time.perf_counter()
            train.training_loss(model, audio, mask, labels, "cpu", bf16).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            times.append(time.perf_counter() - start)
        return statistics.mean(times[1:])

    padded = lambda batches: sum(b[0].numel() for b in batches) / sum(len(u[0]) for u in pool)  # noqa: E731
    results = {
        "random batches": (seconds_per_step(full, random_batches), padded(random_batches)),
        "length-grouped batches": (seconds_per_step(full, grouped), padded(grouped)),
        f"grouped, {args.frozen_conv_layers} conv frozen": (seconds_per_step(frozen, grouped), padded(grouped)),
        f"grouped, {args.frozen_conv_layers} conv frozen, bf16": (seconds_per_step(frozen, grouped, bf16=True),
                                                                  padded(grouped)),
    }
    audio_s = sum(len(u[0]) for u in pool) / 16000 / args.batches
    print(f"{args.batches} batches of 16 utterances, {audio_s:.1f} s of audio per batch, "
          f"{args.threads} threads, {train.TRANSFORMER_LAYERS} transformer layers")
    base = results["random batches"][0]
    for name, (sec, pad) in results.items():
        print(f"{name:36s} {sec:6.2f} s/step  padded/real samples {pad:4.2f}  ratio {sec / base:4.2f}x")


if __name__ == "__main__":
    main()
