"""What streaming costs per window and per audio second, for the embedded model and the
wav2vec2-base and wav2vec2-large-lv60 architectures (random weights: timing only), beside the
transformers ASR pipeline at the same chunk settings on the same audio, all in one run.

    python -m benchmarks.stream_perf [--threads 2] [--seconds 30] [--arch default,base,large-lv60]
        [--windows-ms 500,1000,2000,4000] [--repeats 20] [--out FILE.json]

Part 1, per-window compute p50 / p95 against window length: one model call per window, float32
and int8, the variants taking turns. Part 2, compute per audio second of whole streams of the
same audio under each arch's plans: asrlive's streaming path (float32 torch with its default
reuse and with none, int8 torch, ONNX Runtime float32 (the app's default) and ONNX Runtime
int8) and the transformers pipeline with
``chunk_length_s`` = left + hop + right and ``stride_length_s`` = (left, right) where it can load
the model (not asrlive's own folders: there the naive per-window forward, reuse "none", is the
peer). Each stream of a round runs in turn, rounds repeat; a stream's cost is its wall time
(decoding included), and ratios divide the peer's median by each path's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from asrlive.model import DEFAULT_BACKEND, CTCModel, configure_torch_threads, load_model
from asrlive.peers import TransformersPipeline
from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.transcribe import stream_samples
from asrlive.vocab import BLANK, WORD_DELIMITER
from benchmarks.common import pct, speech_file, window_ms_in_turns

# The architectures' shapes as published (facebook/wav2vec2-base, facebook/wav2vec2-large-lv60):
# base has a group-norm feature encoder and no waveform normalisation, large-lv60 layer norm and
# per-utterance normalisation.
ARCHS = {
    "base": ({}, False),
    "large-lv60": ({"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                    "intermediate_size": 4096, "feat_extract_norm": "layer", "do_stable_layer_norm": True,
                    "conv_bias": True}, True),
}
PLANS = {"default": ["1000/2000/500", "320/1000/320"], "base": ["1000/2000/500", "320/1000/320"],
         "large-lv60": ["1000/2000/500", "320/640/320"]}


def random_wav2vec2(folder: Path, arch: str) -> Path:
    """A Wav2Vec2ForCTC of the named architecture with random weights and a character vocabulary."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    from asrlive.vocab import CHAR_VOCAB

    shape, normalise = ARCHS[arch]
    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=len(CHAR_VOCAB), pad_token_id=CHAR_VOCAB[BLANK], **shape)
    Wav2Vec2ForCTC(config).save_pretrained(folder, safe_serialization=True)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=normalise,
                             return_attention_mask=normalise).save_pretrained(folder)
    (folder / "vocab.json").write_text(json.dumps(CHAR_VOCAB))
    Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), pad_token=BLANK, word_delimiter_token=WORD_DELIMITER).save_pretrained(folder)
    return folder


def window_times(models: dict[str, CTCModel], audio: np.ndarray, windows_ms: list[float], repeats: int) -> list[dict]:
    rows = []
    for ms in windows_ms:
        spent = window_ms_in_turns(models, audio[:int(ms * 16)], repeats)
        rows += [{"window_ms": ms, "variant": k, "p50_ms": round(pct(v, 50), 1), "p95_ms": round(pct(v, 95), 1)}
                 for k, v in spent.items()]
    return rows


def stream_costs(models: dict[str, CTCModel], audio: np.ndarray, plan_text: str, rounds: int) -> list[dict]:
    hop, left, right = (float(v) for v in plan_text.split("/"))
    fp32, q8 = models["float32"], models["int8"]
    plan = ChunkPlan.from_settings(fp32.geometry, ChunkSettings(hop, left, right))
    try:
        pipe = TransformersPipeline(fp32)
    except ValueError:
        pipe = None
    paths = {
        "asrlive float32, no reuse (naive per-window forward)": lambda: stream_samples(fp32, audio, plan, reuse="none"),
        "asrlive float32 torch": lambda: stream_samples(fp32, audio, plan),
        "asrlive int8": lambda: stream_samples(q8, audio, plan),
    }
    if "onnxruntime" in models:
        paths["asrlive onnxruntime float32 (the app's default)"] = lambda: stream_samples(models["onnxruntime"], audio, plan)
    if "onnxruntime int8" in models:
        paths["asrlive onnxruntime int8"] = lambda: stream_samples(models["onnxruntime int8"], audio, plan)
    if pipe is not None:
        paths["transformers pipeline float32"] = lambda: pipe.run(audio, plan.hop_ms, plan.left_ms, plan.right_ms)
    spent = {k: [] for k in paths}
    hits = {}
    for _ in range(rounds):
        for k, run in paths.items():
            t0 = time.perf_counter()
            out = run()
            spent[k].append(time.perf_counter() - t0)  # wall time of the whole stream, decoding included
            hits[k] = getattr(out, "reuse_stats", None) or {}
    audio_s = len(audio) / 16000
    peer = "transformers pipeline float32" if pipe is not None else next(iter(paths))
    peer_cost = np.median(spent[peer])
    return [{"plan": plan_text, "path": k, "peer": peer, "compute_ms_per_audio_s": round(np.median(v) / audio_s * 1000, 1),
             "real_time_factor": round(np.median(v) / audio_s, 3), "less_compute_than_peer": round(peer_cost / np.median(v), 2),
             "front_end_hit_rate": hits[k].get("front_end_hit_rate")} for k, v in spent.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=30.0, help="speech streamed in part 2")
    ap.add_argument("--arch", default="default,base,large-lv60")
    ap.add_argument("--windows-ms", default="500,1000,2000,4000")
    ap.add_argument("--repeats", type=int, default=20, help="calls per window length and variant")
    ap.add_argument("--rounds", type=int, default=3, help="times each stream runs in part 2")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    configure_torch_threads(args.threads)
    import torch

    record = {"threads": args.threads, "torch": torch.__version__, "cpu": _cpu_name(), "archs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        from asrlive.audio.files import read_file

        speech_file(Path(tmp) / "speech.wav", args.seconds)
        audio = read_file(Path(tmp) / "speech.wav", 16000)
        for arch in args.arch.split(","):
            source = None if arch == "default" else str(random_wav2vec2(Path(tmp) / arch, arch))
            models = {"float32": load_model(source, device="cpu"), "int8": load_model(source, device="cpu", int8=True)}
            ort = load_model(source, device="cpu", backend=DEFAULT_BACKEND, threads=args.threads)
            if ort.backend != "torch":
                models["onnxruntime"] = ort
                models["onnxruntime int8"] = load_model(source, device="cpu", backend="onnxruntime", int8=True,
                                                        threads=args.threads)
            per_window = window_times(models, audio, [float(v) for v in args.windows_ms.split(",")], args.repeats)
            streams = [row for p in PLANS[arch] for row in stream_costs(models, audio, p, args.rounds)]
            record["archs"][arch] = {"per_window": per_window, "streams": streams}
            _print(arch, per_window, streams)
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")


def _cpu_name() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


def _print(arch: str, per_window: list[dict], streams: list[dict]) -> None:
    print(f"\n## {arch}\n\n| window ms | variant | p50 ms | p95 ms |\n|---|---|---|---|")
    for r in per_window:
        print(f"| {r['window_ms']:.0f} | {r['variant']} | {r['p50_ms']} | {r['p95_ms']} |")
    print("\n| plan | path | compute ms / audio s | RTF | × less than the peer | front-end hits |\n|---|---|---|---|---|---|")
    for r in streams:
        hit = "–" if r["front_end_hit_rate"] is None else f"{r['front_end_hit_rate']:.0%}"
        print(f"| {r['plan']} | {r['path']} | {r['compute_ms_per_audio_s']} | {r['real_time_factor']} | "
              f"{r['less_compute_than_peer']} | {hit} |")


if __name__ == "__main__":
    main()
