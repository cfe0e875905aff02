"""Ways to run the embedded model's windows on the CPU, against eager torch in the same run:
ONNX Runtime (asrlive's own backend, ``--backend onnxruntime``: the model exported in two
graphs), in float32 (the app's default) and with int8 weights, and ``torch.compile`` (inductor, dynamic shapes). Per-window p50 / p95 at each window
length, the backends taking turns, each one's one-off cost (export or compile), and its largest
log-probability difference from eager torch.

    python -m benchmarks.backends [--threads 2] [--windows-ms 1640,3500] [--repeats 40] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from asrlive.model import configure_torch_threads, load_model
from benchmarks.common import pct, window_ms_in_turns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows-ms", default="1640,3500", help="window lengths: 320/1000/320 and 1000/2000/500")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import onnxruntime
    import torch

    warnings.filterwarnings("ignore")
    configure_torch_threads(args.threads)
    eager = load_model(None, device="cpu", backend="torch")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ASRLIVE_CACHE_DIR"] = tmp  # a cold export, timed
        t0 = time.perf_counter()
        ort = load_model(None, device="cpu", backend="onnxruntime", threads=args.threads)
        setup = {"onnxruntime export and load": time.perf_counter() - t0}
        t0 = time.perf_counter()
        ort_int8 = load_model(None, device="cpu", backend="onnxruntime", int8=True, threads=args.threads)
        setup["onnxruntime int8 quantisation and load"] = time.perf_counter() - t0
    compiled_net = torch.compile(eager.model, dynamic=True)
    compiled = replace(eager, model=compiled_net)
    lengths = [int(float(ms) * 16) for ms in args.windows_ms.split(",")]
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal(n) * 0.05).astype(np.float32) for n in lengths]
    t0 = time.perf_counter()
    compiled.log_probs(inputs[0])
    setup["torch.compile first call"] = time.perf_counter() - t0
    runs = {"eager torch": eager, "onnxruntime": ort, "onnxruntime int8": ort_int8, "torch.compile": compiled}
    rows = []
    for ms, x in zip(args.windows_ms.split(","), inputs):
        ref = eager.log_probs(x)
        diff = {k: float(np.abs(m.log_probs(x) - ref).max()) for k, m in runs.items()}
        spent = window_ms_in_turns(runs, x, args.repeats)
        base = pct(spent["eager torch"], 50)
        rows += [{"window_ms": float(ms), "backend": k, "p50_ms": round(pct(v, 50), 1), "p95_ms": round(pct(v, 95), 1),
                  "speed_vs_eager": round(base / pct(v, 50), 2), "max_log_prob_diff": diff[k]} for k, v in spent.items()]
    record = {"threads": args.threads, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
              "setup_s": {k: round(v, 1) for k, v in setup.items()}, "windows": rows}
    print(f"{args.threads} threads; one-off: " + ", ".join(f"{k} {v} s" for k, v in record["setup_s"].items()))
    print("| window ms | backend | p50 ms | p95 ms | × eager speed | max log-prob diff |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['window_ms']:.0f} | {r['backend']} | {r['p50_ms']} | {r['p95_ms']} | {r['speed_vs_eager']} | "
              f"{r['max_log_prob_diff']:.1e} |")
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
