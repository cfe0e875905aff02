"""Per-window compute of the embedded model streamed on a GPU, float32 against float16, each
warmed up first (``asrlive.window_reuse.warm_up``), taking turns on the same audio: the GPU
line of the streaming-compute issue (p95 per window at hop 320 ms).

    python -m benchmarks.gpu_window --audio SPEECH.wav [--device cuda] [--plan 320/4000/320]
                                    [--rounds 3] [--threads 2] [--out FILE.json]

The audio is any speech file made beforehand (repeated to at least 30 s): a GPU machine has
no espeak-ng, nor soundfile and soxr to read it, which ``models/gpu_bundle.sh`` packs
(``docs/performance.md`` says how to carry them). Prints, per precision, the device, the
warm-up's time, per-window compute p50 / p95 over every round and compute per audio second,
whether float32 ran with TF32 kernels, and how far float16 moves the emissions from float32's
(mean KL per frame, as ``asrlive bench``'s "KL to offline", the share of frames whose best
symbol changes) and the transcript. ``--device cpu`` runs it anywhere, in float32 only (half
precision is for GPUs: the loader keeps float32 on a CPU).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

MIN_AUDIO_S = 30.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--audio", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--plan", default="320/4000/320")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="torch's CPU threads")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if not args.audio.is_file():
        ap.error(f"{args.audio}: no such file")

    import torch

    from asrlive.audio.files import read_file
    from asrlive.bench import kl_divergence
    from asrlive.metrics import cer
    from asrlive.model import configure_torch_threads, load_model
    from asrlive.planner import ChunkPlan, ChunkSettings
    from asrlive.transcribe import stream_samples
    from asrlive.window_reuse import warm_up

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("no CUDA device here; --device cpu times the CPU")
    configure_torch_threads(args.threads)
    first = load_model(None, device=args.device)
    on_gpu = str(first.device).startswith("cuda")
    models = {"float32": first} | ({"float16": load_model(None, device=args.device, half=True)} if on_gpu else {})
    speech = read_file(args.audio, first.sample_rate)
    audio = np.tile(speech, int(np.ceil(MIN_AUDIO_S * first.sample_rate / len(speech))))
    plan = ChunkPlan.from_settings(first.geometry, ChunkSettings(*(float(v) for v in args.plan.split("/"))))

    warm, windows, last = {}, {n: [] for n in models}, {}
    for name, model in models.items():
        t0 = time.perf_counter()
        warm_up(model, plan)
        warm[name] = time.perf_counter() - t0
    for _ in range(args.rounds):
        for name, model in models.items():  # in turns, so drift in clocks or load weighs on each alike
            last[name] = stream_samples(model, audio, plan)
            windows[name] += [t.compute for t in last[name].timings]
    seconds = args.rounds * len(audio) / first.sample_rate
    record = {"device": torch.cuda.get_device_name(first.device) if on_gpu else str(first.device),
              "torch": torch.__version__, "threads": args.threads,
              "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
              "plan_ms": args.plan, "audio_s": round(len(audio) / first.sample_rate, 1), "rounds": args.rounds,
              "precisions": {}}
    for name in models:
        ms = np.array(windows[name]) * 1000
        record["precisions"][name] = {
            "warm_up_ms": round(warm[name] * 1000, 1), "windows": len(ms),
            "window_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "window_p95_ms": round(float(np.percentile(ms, 95)), 2),
            "compute_ms_per_audio_s": round(float(ms.sum()) / seconds, 2)}
    if "float16" in last:
        a, b = last["float32"], last["float16"]
        record["float16_vs_float32"] = {
            "kl_per_frame": round(kl_divergence(a.log_probs, b.log_probs), 5),
            "best_symbol_changed": round(float(np.mean(a.log_probs.argmax(1) != b.log_probs.argmax(1))), 4),
            "transcript_cer": round(cer([a.text], [b.text]), 4)}
    text = json.dumps(record, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
