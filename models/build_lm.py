"""Builds the word n-gram language model that the beam-search decoder can use (``--lm``).

    python models/build_lm.py [--lmplz PATH] [--order 3] [--out models/asrlive-whisper-base-ctc/language_model/lm.arpa.gz]

Text: the training sources of the synthetic speech corpus, and nothing else: the training split
of Debian's fortune sentences (``asrlive.textcorpus``; the held-out split stays out, so the
decoder's weights can be chosen on held-out synthetic speech it has not seen as text), plus each
word of ``/usr/share/dict/words`` once as a one-word line, so that words the sentences never use
still have a unigram (the corpus draws random dictionary words too).

Tool: KenLM's ``lmplz`` (modified Kneser-Ney), built from the ``kenlm`` source package on PyPI by
``models/build_lmplz.sh``; bigrams and trigrams seen once are pruned to keep the file small.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asrlive.textcorpus import load_sentences  # noqa: E402

HERE = Path(__file__).resolve().parent
WORD_LIST = Path("/usr/share/dict/words")


def training_text() -> list[str]:
    lines = load_sentences("train", max_words=100)
    if WORD_LIST.exists():
        words = {w.upper() for w in WORD_LIST.read_text().split()
                 if w.isascii() and w.isalpha() and w.islower() and len(w) > 1}
        lines += sorted(words)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lmplz", default=shutil.which("lmplz") or str(HERE.parent.parent / "wk/kenlm/build/bin/lmplz"))
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "asrlive-whisper-base-ctc" / "language_model" / "lm.arpa.gz")
    args = ap.parse_args()
    if not Path(args.lmplz).is_file():
        sys.exit(f"error: lmplz not found at {args.lmplz}: build it with models/build_lmplz.sh or pass --lmplz")
    text = "\n".join(training_text()) + "\n"
    prune = ["0"] + ["1"] * (args.order - 1)
    with tempfile.TemporaryDirectory() as tmp:
        arpa = Path(tmp) / "lm.arpa"
        subprocess.run([args.lmplz, "-o", str(args.order), "--prune", *prune, "-S", "20%", "-T", tmp,
                        "--discount_fallback", "--arpa", str(arpa)], input=text.encode(), check=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0 so the same text gives the same bytes.
        with open(arpa, "rb") as src, open(args.out, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
            shutil.copyfileobj(src, dst)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"{args.out}: {args.out.stat().st_size / 1e6:.2f} MB, {len(text.splitlines())} lines, sha256 {digest}")


if __name__ == "__main__":
    main()
