"""Shared fixtures: tiny random-initialised CTC models in temp folders, synthetic speech."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download
# Journals of test runs go to a throwaway folder, never the user's state directory.
STATE_DIR = tempfile.mkdtemp(prefix="asrlive-test-state-")
os.environ["ASRLIVE_STATE_DIR"] = STATE_DIR
os.environ["ASRLIVE_CACHE_DIR"] = os.path.join(STATE_DIR, "cache")  # exported ONNX graphs too

from asrlive.vocab import BLANK, CHAR_VOCAB, WORD_DELIMITER  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(STATE_DIR, ignore_errors=True)


def make_tiny_model(folder: Path, *, norm: str = "layer", do_normalize: bool = False, seed: int = 0,
                    conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2),
                    with_vocab: bool = True) -> Path:
    """A small random Wav2Vec2ForCTC saved in Hugging Face format (same path as any real model)."""
    import torch
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                              Wav2Vec2ForCTC)

    torch.manual_seed(seed)
    config = Wav2Vec2Config(
        vocab_size=len(CHAR_VOCAB), pad_token_id=CHAR_VOCAB[BLANK],
        conv_dim=tuple(16 for _ in conv_kernel), conv_kernel=tuple(conv_kernel), conv_stride=tuple(conv_stride),
        conv_bias=True, feat_extract_norm=norm, do_stable_layer_norm=(norm == "layer"),
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
    )
    folder.mkdir(parents=True, exist_ok=True)
    Wav2Vec2ForCTC(config).save_pretrained(folder, safe_serialization=True)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                             do_normalize=do_normalize, return_attention_mask=True).save_pretrained(folder)
    if with_vocab:
        (folder / "vocab.json").write_text(json.dumps(CHAR_VOCAB))
        Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), pad_token=BLANK,
                             word_delimiter_token=WORD_DELIMITER).save_pretrained(folder)
    return folder


def make_tiny_whisper_ctc(folder: Path, *, seed: int = 0, d_model: int = 32, layers: int = 2,
                          read_layer: int = 2, head_layers: int = 1, silence_after_ms: float = 0.0) -> Path:
    """A small random asrlive Whisper-encoder CTC folder, in the format the recipe exports."""
    import torch
    from safetensors.torch import save_file
    from asrlive.whisper_ctc import (CTCHead, EncoderShape, HeadShape, LogMel, WhisperEncoder,
                                     folder_config, mel_filters)

    torch.manual_seed(seed)
    enc_shape = EncoderShape(d_model=d_model, layers=layers, heads=2, n_mels=80, max_positions=1500)
    head_shape = HeadShape(read_layer=read_layer, d_model=d_model, layers=head_layers, heads=2,
                           vocab_size=len(CHAR_VOCAB))
    filters = mel_filters(80)
    encoder = WhisperEncoder(enc_shape, LogMel(filters, -7.5))
    state = {k: v for k, v in encoder.state_dict().items() if k != "feature_extractor.mel.filters"}
    folder.mkdir(parents=True, exist_ok=True)
    save_file({**{k: v.half() for k, v in state.items()}, "mel_filters": filters}, str(folder / "encoder.safetensors"))
    save_file(CTCHead(d_model, head_shape).state_dict(), str(folder / "head.safetensors"))
    (folder / "vocab.json").write_text(json.dumps(CHAR_VOCAB))
    extra = {"silence_after_ms": silence_after_ms} if silence_after_ms else {}
    (folder / "config.json").write_text(json.dumps(folder_config(enc_shape, head_shape, -7.5, whisper="random", **extra)))
    return folder


def make_tiny_whisper_seq2seq(folder: Path, *, seed: int = 0) -> Path:
    """A small random Whisper encoder-decoder in transformers' format, with a word-level tokenizer
    over a few letters and the special tokens the streaming peer prompts with."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]
    vocab = {t: i for i, t in enumerate(specials + list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))}
    folder.mkdir(parents=True, exist_ok=True)
    Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>")).save(str(folder / "tokenizer.json"))
    config = WhisperConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                           decoder_ffn_dim=32, max_target_positions=160, decoder_start_token_id=1,
                           eos_token_id=0, pad_token_id=0, bos_token_id=0)
    WhisperForConditionalGeneration(config).save_pretrained(folder, safe_serialization=True)
    return folder


def make_tiny_whisper_ct2(folder: Path, *, seed: int = 0) -> Path:
    """A small Whisper encoder-decoder in CTranslate2's format (what faster-whisper runs), with
    the special tokens faster-whisper looks up, converted by ctranslate2's own converter. Its
    decoder's final layer norm outputs one constant vector, which ranks the end of text first
    and "A" second: every decode is at most a token long (a version that suppressed every
    token but "A" crashed faster-whisper's process now and then)."""
    import torch
    from ctranslate2.converters import TransformersConverter
    from tokenizers import Tokenizer, models
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    # Whisper's order: text tokens, then the special ones, <|notimestamps|> last before the
    # timestamps (CTranslate2 reads every id after it as a timestamp).
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>", "<|0.00|>", "<|0.02|>"]
    # Unknown text maps to <unk>: faster-whisper suppresses the ids its symbol list encodes to.
    vocab = {t: i for i, t in enumerate(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ["<unk>"] + specials)}
    eot, sot = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    hf = folder.with_name(folder.name + "-hf")
    hf.mkdir(parents=True, exist_ok=True)
    Tokenizer(models.WordLevel(vocab, unk_token="<unk>")).save(str(hf / "tokenizer.json"))
    config = WhisperConfig(vocab_size=len(vocab), d_model=16, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                           decoder_ffn_dim=32, max_target_positions=448, decoder_start_token_id=sot,
                           eos_token_id=eot, pad_token_id=eot, bos_token_id=eot)
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():
        direction = torch.ones(16)
        model.model.decoder.layer_norm.weight.zero_()
        model.model.decoder.layer_norm.bias.copy_(direction)
        embed = model.model.decoder.embed_tokens.weight  # tied to the output projection
        embed.zero_()
        embed[eot] = 5.2 * direction
        embed[vocab["A"]] = 5 * direction
    model.save_pretrained(hf, safe_serialization=True)
    TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(str(folder), force=True)
    return folder


@pytest.fixture(scope="session")
def tiny_whisper_model(tmp_path_factory):
    from asrlive.model import configure_torch_threads, load_model

    configure_torch_threads(1)
    return load_model(make_tiny_whisper_ctc(tmp_path_factory.mktemp("tinyw") / "model"), device="cpu")


@pytest.fixture(scope="session")
def tiny_whisper_silence_model(tmp_path_factory):
    """A Whisper-encoder CTC model that reads every input with 500 ms of silence after it, as the
    embedded one does."""
    from asrlive.model import configure_torch_threads, load_model

    configure_torch_threads(1)
    folder = make_tiny_whisper_ctc(tmp_path_factory.mktemp("tinyws") / "model", silence_after_ms=500)
    return load_model(folder, device="cpu")


@pytest.fixture(scope="session", params=["wav2vec2", "whisper-ctc", "whisper-ctc-silence"])
def tiny_any_model(request):
    """Each kind of model the core streams: a wav2vec2 conv stack, a Whisper log-mel front end,
    and one that reads silence after each input."""
    return request.getfixturevalue({"wav2vec2": "tiny_model", "whisper-ctc": "tiny_whisper_model",
                                    "whisper-ctc-silence": "tiny_whisper_silence_model"}[request.param])


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from asrlive.model import configure_torch_threads, load_model

    configure_torch_threads(1)
    return load_model(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def embedded_model():
    from asrlive.model import configure_torch_threads, embedded_model_dir, load_model

    if not (embedded_model_dir() / "config.json").exists():
        pytest.fail(f"the embedded model is missing from {embedded_model_dir()}")
    configure_torch_threads(1)
    return load_model(None, device="cpu")


@pytest.fixture(scope="session")
def spoken_sentence() -> tuple[np.ndarray, str]:
    """A short sentence that is not in the training text, in espeak-ng's plain American voice, at 16 kHz.

    The embedded model reads espeak-ng's voices worse than people (19 % held-out CER): it makes
    "THE WAVERES ICETODAY" of this one, streamed as the PulseAudio test puts it."""
    from asrlive.synth import Voice, synthesize

    text = "THE WEATHER IS NICE TODAY"
    return synthesize(text, Voice(accent="en-us", words_per_minute=150)), text
