"""Synthesise a corpus of corrupted multi-engine speech into shards (resumable: finished shards
are kept, and each shard's content depends only on its seed).

    python models/make_corpus.py --out CORPUS --split train --shards 16 [--per-shard 500] [--jobs 2]
    python models/make_corpus.py --out CORPUS --split heldout --shards 1 --per-shard 400

A shard ``{split}-{k:04d}.npz`` holds int16 audio (concatenated), offsets, texts and voice labels.
"""

from __future__ import annotations

import argparse
import random
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from voices import RATE, VoiceError, corrupt, pick_voice, speak  # noqa: E402

from asrlive.textcorpus import load_sentences  # noqa: E402

WORD_LIST = Path("/usr/share/dict/words")
MAX_SECONDS = 12.0


def _texts(split: str):
    sentences = load_sentences(split, max_words=16)
    words = WORD_LIST.read_text().split() if WORD_LIST.exists() else []
    words = [w.upper() for w in words if w.isascii() and w.isalpha() and w.islower() and len(w) > 1]
    return sentences, words


def draw_text(rng: random.Random, sentences: list[str], words: list[str]) -> str:
    """A sentence; sometimes two (dictation runs on), sometimes random words (spelling without
    a sentence to guess from)."""
    r = rng.random()
    if words and r < 0.1:
        return " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
    if r < 0.35:
        return f"{rng.choice(sentences)} {rng.choice(sentences)}"
    return rng.choice(sentences)


def make_shard(out: Path, split: str, index: int, count: int) -> str:
    path = out / f"{split}-{index:04d}.npz"
    if path.exists():
        return f"{path.name}: kept"
    seed = (0 if split == "train" else 10_000_000) + index
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    sentences, words = _texts(split)
    audios, texts, voices = [], [], []
    while len(texts) < count:
        text, voice = draw_text(rng, sentences, words), pick_voice(rng, split)
        try:
            audio = speak(voice, text, rng)
        except VoiceError:
            continue
        audio = corrupt(audio, nrng)
        if audio.size > MAX_SECONDS * RATE or audio.size < RATE // 4:
            continue
        audios.append(np.round(audio * 32767).astype(np.int16))
        texts.append(text)
        voices.append(voice.label)
    offsets = np.cumsum([0] + [a.size for a in audios])
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, audio=np.concatenate(audios), offsets=offsets, texts=np.array(texts), voices=np.array(voices))
    tmp.rename(path)
    return f"{path.name}: {count} utterances, {offsets[-1] / RATE / 3600:.2f} h"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--split", choices=("train", "heldout"), required=True)
    ap.add_argument("--shards", type=int, required=True)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--per-shard", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        jobs = [pool.submit(make_shard, args.out, args.split, k, args.per_shard)
                for k in range(args.first, args.first + args.shards)]
        for job in jobs:
            print(job.result(), flush=True)


if __name__ == "__main__":
    main()
