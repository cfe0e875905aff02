"""Other ways to run the embedded model's windows on the CPU, against eager torch in the same run:
ONNX Runtime (the model exported with torch.onnx's dynamo exporter, a dynamic sample axis) and
``torch.compile`` (inductor, dynamic shapes). Per-window p50 / p95 at each window length, the
backends taking turns, plus each one's one-off cost (export or compile) and its largest logit
difference from eager.

    pip install -e ".[perf]"    # onnxruntime, onnx, onnxscript: needed only here
    python -m benchmarks.backends [--threads 2] [--windows-ms 1640,3500] [--repeats 40] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from asrlive.model import configure_torch_threads, load_model
from benchmarks.common import pct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows-ms", default="1640,3500", help="window lengths: 320/1000/320 and 1000/2000/500")
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    try:
        import onnxruntime as ort
    except ImportError:
        raise SystemExit("benchmarks.backends: needs onnxruntime, onnx and onnxscript: pip install -e '.[perf]'")
    import torch

    warnings.filterwarnings("ignore")
    configure_torch_threads(args.threads)
    model = load_model(None, device="cpu")

    class Logits(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, samples):
            return self.net(samples).logits

    eager = Logits(model.model).eval()
    lengths = [int(float(ms) * 16) for ms in args.windows_ms.split(",")]
    rng = np.random.default_rng(0)
    inputs = [torch.from_numpy((rng.standard_normal(n) * 0.05).astype(np.float32))[None] for n in lengths]
    record: dict = {"threads": args.threads, "torch": torch.__version__, "onnxruntime": ort.__version__, "setup_s": {}}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        path = str(Path(tmp) / "model.onnx")
        t0 = time.perf_counter()
        torch.onnx.export(eager, (inputs[0],), path, input_names=["samples"], output_names=["logits"], dynamo=True,
                          dynamic_shapes={"samples": {1: torch.export.Dim("n", min=2000, max=16000 * 30)}})
        record["setup_s"]["onnx export"] = round(time.perf_counter() - t0, 1)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        compiled = torch.compile(eager, dynamic=True)
        t0 = time.perf_counter()
        compiled(inputs[0])
        record["setup_s"]["torch.compile"] = round(time.perf_counter() - t0, 1)
        runs = {"eager torch": lambda x: eager(x).numpy(),
                "onnxruntime": lambda x: session.run(None, {"samples": x.numpy()})[0],
                "torch.compile": lambda x: compiled(x).numpy()}
        rows = []
        for ms, x in zip(args.windows_ms.split(","), inputs):
            ref = runs["eager torch"](x)
            spent = {k: [] for k in runs}
            diff = {k: float(np.abs(run(x) - ref).max()) for k, run in runs.items()}  # also the warm-up
            for _ in range(args.repeats):
                for k, run in runs.items():
                    t0 = time.perf_counter()
                    run(x)
                    spent[k].append((time.perf_counter() - t0) * 1000)
            base = pct(spent["eager torch"], 50)
            rows += [{"window_ms": float(ms), "backend": k, "p50_ms": round(pct(v, 50), 1), "p95_ms": round(pct(v, 95), 1),
                      "speed_vs_eager": round(base / pct(v, 50), 2), "max_logit_diff": diff[k]} for k, v in spent.items()]
    record["windows"] = rows
    print(f"{args.threads} threads; one-off: " + ", ".join(f"{k} {v} s" for k, v in record["setup_s"].items()))
    print("| window ms | backend | p50 ms | p95 ms | × eager speed | max logit diff |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['window_ms']:.0f} | {r['backend']} | {r['p50_ms']} | {r['p95_ms']} | {r['speed_vs_eager']} | "
              f"{r['max_logit_diff']:.1e} |")
    if args.out:
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
