"""What 7-bit int8 weights cost against 8-bit ones, on the same audio: the graphs ONNX Runtime
runs on an x86 CPU without VNNI (``asrlive.onnx_backend.int8_saturates``) and with it. Both are
made here whatever this CPU has (7-bit weights never saturate; 8-bit ones only where the CPU
lacks VNNI, so run this on one that has it). CER only: offline and streamed greedy.

    python -m benchmarks.int8_bits [--synth 100 | --data MANIFEST.tsv] [--plan 320/1000/320]
"""

from __future__ import annotations

import argparse

from asrlive import onnx_backend
from asrlive.metrics import cer
from asrlive.model import load_model
from asrlive.planner import ChunkPlan
from asrlive.transcribe import offline_samples, stream_samples
from benchmarks.common import add_speech_and_plan_args, plan_settings, speech


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_speech_and_plan_args(ap)
    args = ap.parse_args()
    models = {}
    for label, saturates in (("8-bit", False), ("7-bit", True)):
        onnx_backend.int8_saturates = lambda saturates=saturates: saturates  # which graph load_model makes
        models[label] = load_model(None, device="cpu", backend="onnxruntime", int8=True, threads=1)
    models["float32"] = load_model(None, device="cpu", backend="onnxruntime", threads=1)
    utts = speech(args, models["float32"].sample_rate)
    plan = ChunkPlan.from_settings(models["float32"].geometry, plan_settings(args))
    refs = [u.text for u in utts]
    print(f"{len(utts)} utterances, plan {args.plan}, greedy\n| weights | offline CER | streamed CER |\n|---|---|---|")
    for label, model in models.items():
        offline = cer(refs, [offline_samples(model, u.audio).text for u in utts])
        streamed = cer(refs, [stream_samples(model, u.audio, plan).text for u in utts])
        print(f"| {label} | {offline:.2%} | {streamed:.2%} |", flush=True)


if __name__ == "__main__":
    main()
