"""What a user would otherwise run, measured the same way as asrlive's own streaming: each peer
turns one utterance into a list of commit events (audio time when the text was committed,
compute included; the committed text so far) and per-step compute times.

- ``offline``: the model on the whole utterance, same decoder (the accuracy ceiling; commits at
  the end).
- ``pipeline``: the transformers ASR pipeline with ``chunk_length_s``/``stride_length_s`` set to
  the plan (Hugging Face CTC models only; commits at the end, as the pipeline returns once).
- ``naive_chunks``: back-to-back chunks of the hop with no context, each decoded greedily alone
  and the texts joined (the usual live demo).
- ``WhisperLocalAgreement``: an encoder-decoder Whisper re-decoding the growing buffer every hop
  and committing the longest word prefix on which two successive hypotheses agree (the
  LocalAgreement-2 policy of ufal/whisper_streaming, written here from its description), run
  either as that project runs it by default, faster-whisper (CTranslate2) on the model folder the
  registry packages ship, or by transformers' own Whisper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ct2_whisper import MAX_SECONDS, FasterWhisper
from .decoding import GREEDY, DecoderSpec
from .model import CTCModel
from .textcorpus import normalise


@dataclass
class PeerRun:
    events: list[tuple[float, str]] = field(default_factory=list)  # (commit time s, committed text)
    step_compute: list[float] = field(default_factory=list)        # seconds per model call

    @property
    def text(self) -> str:
        return self.events[-1][1] if self.events else ""


def decoded_text(model: CTCModel, log_probs: np.ndarray, decoder: DecoderSpec = GREEDY) -> str:
    text_decoder = decoder.new(model)
    text_decoder.feed(0, log_probs)
    text_decoder.finish()
    return text_decoder.committed_text()


def offline(model: CTCModel, audio: np.ndarray, decoder: DecoderSpec = GREEDY) -> PeerRun:
    """The whole utterance at once, decoded by ``decoder`` (the one the plans use)."""
    t0 = time.perf_counter()
    text = decoded_text(model, model.log_probs(audio), decoder)
    cost = time.perf_counter() - t0
    return PeerRun([(len(audio) / model.sample_rate + cost, text)], [cost])


def naive_chunks(model: CTCModel, audio: np.ndarray, hop_samples: int) -> PeerRun:
    run, pieces = PeerRun(), []
    for start in range(0, len(audio), hop_samples):
        chunk = audio[start:start + hop_samples]
        t0 = time.perf_counter()
        piece = decoded_text(model, model.log_probs(chunk))
        cost = time.perf_counter() - t0
        run.step_compute.append(cost)
        if piece:
            pieces.append(piece)
        run.events.append(((start + len(chunk)) / model.sample_rate + cost, " ".join(pieces)))
    return run


class TransformersPipeline:
    """The transformers ASR pipeline over the same model object and its folder's tokenizer."""

    def __init__(self, model: CTCModel):
        from transformers import AutoFeatureExtractor, AutoTokenizer, pipeline

        folder = Path(model.name)
        if not (folder / "tokenizer_config.json").exists() and not (folder / "vocab.json").exists():
            raise ValueError(f"{model.name}: no tokenizer for the transformers pipeline")
        if not hasattr(model.model, "config") or getattr(model.model.config, "model_type", "") == "asrlive-whisper-ctc":
            raise ValueError(f"{model.name}: the transformers pipeline cannot load asrlive's own model folders")
        self.sample_rate = model.sample_rate
        self.pipe = pipeline("automatic-speech-recognition", model=getattr(model.model, "torch_net", model.model),
                             tokenizer=AutoTokenizer.from_pretrained(folder),
                             feature_extractor=AutoFeatureExtractor.from_pretrained(folder), device=-1)

    def run(self, audio: np.ndarray, hop_ms: float, left_ms: float, right_ms: float) -> PeerRun:
        chunk_s = (left_ms + hop_ms + right_ms) / 1000
        t0 = time.perf_counter()
        out = self.pipe(np.asarray(audio, np.float32), chunk_length_s=chunk_s,
                        stride_length_s=(left_ms / 1000, right_ms / 1000))
        cost = time.perf_counter() - t0
        return PeerRun([(len(audio) / self.sample_rate + cost, normalise(out["text"]))], [cost])


class WhisperGreedy:
    """Whisper's own encoder-decoder from a transformers folder (``models/convert_whisper.py
    --hf``): greedy English transcription of up to 30 s, the input padded to 30 s as Whisper
    expects; the text as Whisper writes it (numerals, punctuation, case)."""

    def __init__(self, folder: Path, max_new_tokens: int = 200):
        import torch
        from transformers import PreTrainedTokenizerFast, WhisperFeatureExtractor, WhisperForConditionalGeneration
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        self.torch = torch
        self.model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
        self.tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
        self.extractor = WhisperFeatureExtractor()
        vocab = self.tokenizer.get_vocab()
        prompt = ["<|startoftranscript|>"] + (["<|en|>", "<|transcribe|>"] if "<|en|>" in vocab else []) + [
            "<|notimestamps|>"]
        self.start = torch.tensor([[vocab[t] for t in prompt]])
        self.max_new_tokens = min(max_new_tokens, self.model.config.max_target_positions - self.start.shape[1])
        self.name = folder.name

    def transcribe(self, audio: np.ndarray) -> str:
        feats = self.extractor(audio[-int(MAX_SECONDS * 16000):], sampling_rate=16000,
                               return_tensors="pt").input_features
        with self.torch.inference_mode():
            ids = self.model.generate(feats, decoder_input_ids=self.start, max_new_tokens=self.max_new_tokens)
        return self.tokenizer.decode(ids[0], skip_special_tokens=True)


def is_ct2_whisper(folder: Path) -> bool:
    """Whether ``folder`` is a CTranslate2 Whisper (faster-whisper's format) rather than a
    transformers one."""
    return (folder / "model.bin").is_file()


def local_agreement(transcribe: Callable[[np.ndarray], str], audio: np.ndarray, hop_samples: int,
                    sample_rate: int) -> PeerRun:
    """LocalAgreement-2: every hop the whole buffer so far is transcribed again, and the words on
    which this hypothesis and the previous one agree, beyond what is committed, are committed; at
    the end of the stream the last hypothesis stands."""
    run, committed, previous = PeerRun(), [], []
    ends = list(range(hop_samples, len(audio), hop_samples)) + [len(audio)]
    for end in ends:
        t0 = time.perf_counter()
        words = normalise(transcribe(audio[:end])).split()
        cost = time.perf_counter() - t0
        run.step_compute.append(cost)
        if end == len(audio):
            committed = committed + words[len(committed):]
        else:
            for a, b in zip(words[len(committed):], previous[len(committed):]):
                if a != b:
                    break
                committed = committed + [a]
        previous = words
        run.events.append((end / sample_rate + cost, " ".join(committed)))
    return run


class WhisperLocalAgreement:
    """Whisper streamed by LocalAgreement-2 (``local_agreement``), from a CTranslate2 folder run
    by faster-whisper (``asrlive.ct2_whisper``, as many threads as torch has) or a transformers
    one (``WhisperGreedy``). Close it (or use it as a context manager) to stop faster-whisper's
    process."""

    def __init__(self, folder: Path):
        import torch

        if is_ct2_whisper(folder):
            self.whisper = FasterWhisper(folder, threads=torch.get_num_threads())
            self.name = f"{folder.name}, faster-whisper {self.whisper.compute_type}, beam {self.whisper.beam_size}"
        else:
            self.whisper = WhisperGreedy(folder)
            self.name = f"{folder.name}, transformers, greedy"

    def close(self) -> None:
        if isinstance(self.whisper, FasterWhisper):
            self.whisper.close()

    def __enter__(self) -> "WhisperLocalAgreement":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, audio: np.ndarray, hop_samples: int, sample_rate: int = 16000) -> PeerRun:
        return local_agreement(self.whisper.transcribe, audio, hop_samples, sample_rate)
