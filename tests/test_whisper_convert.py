"""The CTranslate2 reader and the mapping of Whisper's tensors onto asrlive's encoder and onto
transformers' Whisper, on a small file written here in the same format."""

import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from whisper_ct2 import CT2FormatError, asrlive_encoder_state, encoder_shape_of, hf_whisper_state, read_ct2  # noqa: E402

from asrlive.whisper_ctc import EncoderShape, LogMel, WhisperEncoder, sinusoids  # noqa: E402

D, MELS, VOCAB, HEADS = 16, 80, 40, 2
DTYPE_IDS = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(path: Path, tensors: dict[str, np.ndarray], aliases: dict[str, str], spec: str = "WhisperSpec") -> None:
    out = [struct.pack("<I", 6), _string(spec), struct.pack("<I", 3), struct.pack("<I", len(tensors))]
    for name, array in tensors.items():
        out += [_string(name), struct.pack("<B", array.ndim), struct.pack("<" + "I" * array.ndim, *array.shape),
                struct.pack("<BI", DTYPE_IDS[array.dtype], array.nbytes), array.tobytes()]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [_string(alias), _string(target)]
    path.write_bytes(b"".join(out))


def whisper_like(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def w(*shape):
        return rng.standard_normal(shape).astype(np.float16)

    t = {"encoder/num_heads": np.array(HEADS, np.int16), "decoder/num_heads": np.array(HEADS, np.int16),
         "encoder/conv1/weight": w(D, MELS, 3), "encoder/conv1/bias": w(D),
         "encoder/conv2/weight": w(D, D, 3), "encoder/conv2/bias": w(D),
         "encoder/position_encodings/encodings": sinusoids(30, D).numpy().astype(np.float16),
         "encoder/layer_norm/gamma": w(D), "encoder/layer_norm/beta": w(D),
         "decoder/embeddings/weight": w(VOCAB, D), "decoder/position_encodings/encodings": w(12, D),
         "decoder/layer_norm/gamma": w(D), "decoder/layer_norm/beta": w(D)}
    for part in ("encoder", "decoder"):
        p = f"{part}/layer_0"
        qkv_bias = w(3 * D)
        qkv_bias[D:2 * D] = 0  # Whisper's key projection has no bias
        t |= {f"{p}/self_attention/linear_0/weight": w(3 * D, D), f"{p}/self_attention/linear_0/bias": qkv_bias,
              f"{p}/self_attention/linear_1/weight": w(D, D), f"{p}/self_attention/linear_1/bias": w(D),
              f"{p}/self_attention/layer_norm/gamma": w(D), f"{p}/self_attention/layer_norm/beta": w(D),
              f"{p}/ffn/layer_norm/gamma": w(D), f"{p}/ffn/layer_norm/beta": w(D),
              f"{p}/ffn/linear_0/weight": w(4 * D, D), f"{p}/ffn/linear_0/bias": w(4 * D),
              f"{p}/ffn/linear_1/weight": w(D, 4 * D), f"{p}/ffn/linear_1/bias": w(D)}
    kv_bias = w(2 * D)
    kv_bias[:D] = 0
    t |= {"decoder/layer_0/attention/linear_0/weight": w(D, D), "decoder/layer_0/attention/linear_0/bias": w(D),
          "decoder/layer_0/attention/linear_1/weight": w(2 * D, D), "decoder/layer_0/attention/linear_1/bias": kv_bias,
          "decoder/layer_0/attention/linear_2/weight": w(D, D), "decoder/layer_0/attention/linear_2/bias": w(D),
          "decoder/layer_0/attention/layer_norm/gamma": w(D), "decoder/layer_0/attention/layer_norm/beta": w(D)}
    return t


@pytest.fixture()
def ct2_file(tmp_path):
    tensors = whisper_like(np.random.default_rng(0))
    path = tmp_path / "model.bin"
    write_ct2(path, tensors, {"decoder/projection/weight": "decoder/embeddings/weight"})
    return path, tensors


def test_reader_returns_every_tensor_and_alias(ct2_file):
    path, tensors = ct2_file
    read = read_ct2(path)
    for name, array in tensors.items():
        np.testing.assert_array_equal(read[name], array)
    np.testing.assert_array_equal(read["decoder/projection/weight"], tensors["decoder/embeddings/weight"])


def test_encoder_loads_strictly_with_split_attention(ct2_file):
    path, tensors = ct2_file
    read = read_ct2(path)
    shape = EncoderShape(**encoder_shape_of(read))
    assert (shape.d_model, shape.layers, shape.heads, shape.n_mels) == (D, 1, HEADS, MELS)
    encoder = WhisperEncoder(shape, LogMel(torch.ones(MELS, 201), -7.5))
    state = {k: torch.from_numpy(v.astype(np.float32)) for k, v in asrlive_encoder_state(read).items()}
    state["feature_extractor.mel.filters"] = torch.ones(MELS, 201)
    encoder.load_state_dict(state, strict=True)
    qkv = tensors["encoder/layer_0/self_attention/linear_0/weight"].astype(np.float32)
    np.testing.assert_array_equal(encoder.blocks[0].k.weight.detach().numpy(), qkv[D:2 * D])


def test_transformers_whisper_loads_strictly(ct2_file):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    read = read_ct2(ct2_file[0])
    config = WhisperConfig(vocab_size=VOCAB, num_mel_bins=MELS, d_model=D, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=HEADS, decoder_attention_heads=HEADS, encoder_ffn_dim=4 * D,
                           decoder_ffn_dim=4 * D, max_source_positions=30, max_target_positions=12,
                           pad_token_id=0, bos_token_id=1, eos_token_id=1, decoder_start_token_id=1)
    model = WhisperForConditionalGeneration(config)
    model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in hf_whisper_state(read).items()},
                          strict=True)


def test_other_specs_and_truncated_files_are_refused(tmp_path, ct2_file):
    other = tmp_path / "other.bin"
    write_ct2(other, {"x": np.zeros(3, np.float32)}, {}, spec="TransformerSpec")
    with pytest.raises(CT2FormatError, match="not Whisper"):
        read_ct2(other)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(ct2_file[0].read_bytes()[:5000])
    with pytest.raises((CT2FormatError, struct.error, ValueError)):
        read_ct2(cut)


def test_mel_filters_survive_the_converters_save_in_layout(tmp_path):
    """Each of Whisper's mel filters is one run of adjacent FFT bins, centres rising. The first
    converter's bank was ``.T.astype(float32)``, a Fortran-ordered array whose bytes
    safetensors.numpy writes as if C-ordered: every filter came out scrambled across the
    spectrum. This guards the layout through the same save."""
    from safetensors.numpy import load_file, save_file

    from asrlive.whisper_ctc import mel_filters

    save_file({"mel_filters": mel_filters(80).numpy()}, str(tmp_path / "f.safetensors"))
    bank = load_file(tmp_path / "f.safetensors")["mel_filters"]
    np.testing.assert_array_equal(bank, mel_filters(80).numpy())
    centres = []
    for row in bank:
        bins = np.flatnonzero(row)
        assert bins.size and np.all(np.diff(bins) == 1)
        centres.append(int(np.argmax(row)))
    assert centres == sorted(centres) and centres[-1] > 150
