"""English sentences for synthetic speech, normalised to the CTC character alphabet.

The source is Debian's fortune databases (packages ``fortunes`` and ``fortunes-min``): plain
English text that installs from the package registry on a machine with no other internet.
Sentences are split into train and held-out sets by a hash of their normalised text, so the
split is fixed across machines and runs without storing any list.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

FORTUNE_DIR = Path("/usr/share/games/fortunes")
ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")
HELD_OUT_PER_MILLE = 50  # 5 % of sentences are never used for training

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Tokens that espeak-ng would not read as the letters we transcribe (numbers, abbreviations,
# acronyms it spells out, URLs, code) make the label disagree with the audio: drop the sentence.
_UNSPEAKABLE = re.compile(r"[0-9@#$%^&*_=+<>/\\|{}\[\]~`]|\b[A-Z]{2,}\b|\w\.\w|\b(?:Mr|Mrs|Dr|St|vs|etc)\.")


def normalise(text: str) -> str:
    """Upper-case, turn dashes into spaces, drop other punctuation, collapse blanks."""
    text = text.upper().replace("-", " ").replace("\u2019", "'")
    text = "".join(ch if ch in ALPHABET else (" " if ch.isspace() else "") for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"(^|\s)'+|'+(\s|$)", r"\1\2", text).strip()


def _is_held_out(sentence: str) -> bool:
    digest = hashlib.sha1(sentence.encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < HELD_OUT_PER_MILLE


def _raw_entries(fortune_dir: Path) -> list[str]:
    entries: list[str] = []
    for path in sorted(fortune_dir.iterdir()):
        if path.suffix or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        entries.extend(text.split("\n%\n"))
    return entries


def load_sentences(
    split: str, min_words: int = 1, max_words: int = 14, fortune_dir: Path = FORTUNE_DIR
) -> list[str]:
    """Return the sorted, de-duplicated normalised sentences of one split ('train' or 'heldout')."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}")
    if not fortune_dir.is_dir():
        raise FileNotFoundError(
            f"{fortune_dir} not found: install Debian's 'fortunes' package (apt-get install fortunes)"
        )
    found: set[str] = set()
    for entry in _raw_entries(fortune_dir):
        # Attribution lines ("-- Someone") and indented verse/code are not running prose.
        lines = [ln for ln in entry.splitlines() if ln.strip() and not ln.lstrip().startswith("--")]
        for sentence in _SENTENCE_END.split(" ".join(ln.strip() for ln in lines)):
            if _UNSPEAKABLE.search(sentence):
                continue
            norm = normalise(sentence)
            if norm and min_words <= len(norm.split()) <= max_words:
                found.add(norm)
    want_held_out = split == "heldout"
    return sorted(s for s in found if _is_held_out(s) == want_held_out)
