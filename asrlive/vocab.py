"""The character vocabulary shared with facebook/wav2vec2-base-960h, so models are drop-in."""

from __future__ import annotations

BLANK = "<pad>"
WORD_DELIMITER = "|"
CHAR_VOCAB: dict[str, int] = {
    sym: i
    for i, sym in enumerate(
        ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D",
         "L", "U", "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
    )
}


def encode_text(text: str) -> list[int]:
    """Map normalised text (A-Z, apostrophe, space) to label ids; spaces become the delimiter."""
    return [CHAR_VOCAB[WORD_DELIMITER if ch == " " else ch] for ch in text]
