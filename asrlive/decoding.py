"""Which CTC decoder turns emissions into text: the user's choice, checked (and its language model
read) before any model loads, and the factory the worker calls once per stream.

A model folder may carry a word language model in ``language_model/`` (the layout Hugging Face's
``Wav2Vec2ProcessorWithLM`` uses): an ARPA file (``.arpa`` or ``.arpa.gz``) and ``attrs.json``
with the beam-search weights chosen for that model (``alpha``, ``beta``, ``width``). The
embedded model ships one (``models/build_lm.py``, weights from ``models/tune_decoder.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .beam_decoder import BeamCTCDecoder, BeamSettings
from .decoder import CTCDecoder, GreedyCTCDecoder
from .lm import LMError, WordLM

# "auto": beam search when there is a language model to search with (``--lm``, or the model
# folder's own), else greedy. Without an LM, beam search reads no better than greedy here and
# costs more; with the embedded model's LM it lowers WER by a third (the model card).
DECODERS = ("auto", "greedy", "beam")
DEFAULT_DECODER = "auto"
LM_FOLDER = "language_model"
NO_LM = "none"


@dataclass(frozen=True)
class DecoderSpec:
    kind: str = "greedy"
    beam: BeamSettings = BeamSettings()
    lm: WordLM | None = None

    def new(self, model) -> CTCDecoder:
        args = (model.vocab, model.blank_id, model.word_delimiter, model.geometry.frame_seconds)
        if self.kind == "beam":
            return BeamCTCDecoder(*args, settings=self.beam, lm=self.lm)
        return GreedyCTCDecoder(*args)

    def describe(self) -> str:
        if self.kind != "beam":
            return "greedy"
        b = self.beam
        lm = f", LM {Path(self.lm.path).name} (alpha {b.alpha:g}, beta {b.beta:g})" if self.lm else ", no LM"
        return f"beam {b.width}{lm}"


GREEDY = DecoderSpec()


def model_folder(source: str | None) -> Path | None:
    """The local folder a model source names (the embedded model's for None); None for a hub id."""
    from .model import embedded_model_dir

    folder = embedded_model_dir() if source is None else Path(source).expanduser()
    return folder if folder.is_dir() else None


def read_lm(path: Path) -> tuple[WordLM, BeamSettings]:
    """A language model and the beam settings stored beside it: ``path`` is an ARPA file, or a
    ``language_model`` folder holding one and ``attrs.json``."""
    settings = BeamSettings()
    if path.is_dir():
        attrs = path / "attrs.json"
        if attrs.is_file():
            try:
                stored = json.loads(attrs.read_text())
            except (OSError, ValueError) as exc:
                raise LMError(f"{attrs}: unreadable ({exc})") from None
            known = {f.name: f.type for f in fields(BeamSettings)}
            settings = replace(settings, **{k: (int if k == "width" else float)(v)
                                            for k, v in stored.items() if k in known})
        arpas = sorted(p for p in path.iterdir() if p.name.endswith((".arpa", ".arpa.gz")))
        if len(arpas) != 1:
            kenlm_bin = any(p.suffix == ".bin" for p in path.iterdir())
            raise LMError(f"{path}: expected one .arpa or .arpa.gz file, found {len(arpas)}"
                          + (" (KenLM binary files are not read: convert to ARPA)" if kenlm_bin else ""))
        path = arpas[0]
    return WordLM.load(path), settings


def decoder_spec(kind: str, lm: str | None, model_dir: Path | None) -> DecoderSpec:
    """The decoder for ``--decoder``/``--lm``. Beam search uses ``lm``, else the model folder's
    own language model when it has one; ``--lm none`` searches without one."""
    if kind not in DECODERS:
        raise ValueError(f"unknown decoder {kind!r}: choose {', '.join(DECODERS)}")
    if kind == "greedy":
        if lm is not None:
            raise ValueError("--lm needs --decoder beam or auto")
        return GREEDY
    return for_kind(kind, _beam_spec(lm, model_dir))


def for_kind(kind: str, beam: DecoderSpec) -> DecoderSpec:
    """The decoder ``kind`` names, given beam search as this model allows it: ``auto`` is beam
    search only when it has a language model."""
    return beam if kind == "beam" or (kind == "auto" and beam.lm is not None) else GREEDY


def _beam_spec(lm: str | None, model_dir: Path | None) -> DecoderSpec:
    if lm == NO_LM:
        return DecoderSpec("beam")
    if lm is None:
        if model_dir is None or not (model_dir / LM_FOLDER).is_dir():
            return DecoderSpec("beam")
        where = model_dir / LM_FOLDER
    else:
        where = Path(lm).expanduser()
        if not where.exists():
            raise LMError(f"language model {where} not found")
    word_lm, settings = read_lm(where)
    return DecoderSpec("beam", settings, word_lm)
