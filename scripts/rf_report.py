"""Writes docs/receptive-field.md and its plots: analytic vs gradient-measured receptive fields,
locality facts and context sensitivity, for the embedded Whisper-encoder model, the older trained
wav2vec2-architecture model (``models/asrlive-tiny-en``) and the wav2vec2-base architecture.

    QT_QPA_PLATFORM=offscreen python scripts/rf_report.py [--out docs] [--skip-base]

wav2vec2-base is built from its default config with random weights (no download): enough for the
geometry and the locality facts, which do not depend on training; its sensitivity sweep is not
meaningful untrained and is not run. The embedded model's sweep uses its trained weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from asrlive import rf_analysis as rfa
from asrlive.model import configure_torch_threads, load_model
from asrlive.synth import Voice, synthesize


def speech(sample_rate: int = 16000) -> np.ndarray:
    return np.concatenate([
        synthesize("A FIGURE WITH CURVES ALWAYS OFFERS A LOT OF INTERESTING ANGLES", Voice("en-us", words_per_minute=160), sample_rate),
        synthesize("NO ONE IS FIT TO BE TRUSTED WITH POWER", Voice("en-gb", "m4", 150), sample_rate),
    ])


def base_model_dir(folder: Path) -> Path:
    """wav2vec2-base's architecture (Wav2Vec2Config defaults), random weights, our vocabulary."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the recipe's save_hf, in models/
    from models.train import save_hf

    from asrlive.vocab import CHAR_VOCAB

    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(vocab_size=len(CHAR_VOCAB), pad_token_id=0))
    save_hf(model, folder)
    # wav2vec2-base-960h normalises every input window; keep that in the architecture copy.
    cfg = json.loads((folder / "processor_config.json").read_text())
    cfg["feature_extractor"]["do_normalize"] = True
    (folder / "processor_config.json").write_text(json.dumps(cfg, indent=2))
    return folder


def plot_png(path: Path, title: str, series: list[tuple[str, np.ndarray, np.ndarray, str]], xlabel: str,
             ylabel: str, log_y: bool = False, marks: list[tuple[float, str]] = ()) -> None:
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    plot = pg.PlotWidget(background="w")
    plot.resize(900, 420)
    item = plot.getPlotItem()
    item.setTitle(title, color="#222")
    item.setLabel("bottom", xlabel)
    item.setLabel("left", ylabel)
    item.addLegend(offset=(-10, 10))
    item.showGrid(x=True, y=True, alpha=0.25)
    if log_y:
        item.setLogMode(y=True)
    for name, x, y, colour in series:
        item.plot(x, y, pen=pg.mkPen(colour, width=2), name=name)
    for x, colour in marks:
        item.addItem(pg.InfiniteLine(x, angle=90, pen=pg.mkPen(colour, style=pg.QtCore.Qt.DashLine)))
    plot.show()  # laid out at its size first: unlaid, the export cut the title and ran the x label into the ticks
    QApplication.processEvents()
    exporter = pg.exporters.ImageExporter(item)
    exporter.parameters()["width"] = plot.width()
    exporter.export(str(path))


def rf_section(name: str, model, audio: np.ndarray, out: Path, slug: str) -> list[str]:
    g = model.geometry
    probe = rfa.locality_probe(model, audio)
    measured = probe["measured"]
    if g.pos_conv_kernel:
        front = (f"Positional conv {g.pos_conv_kernel} frames -> {g.rf_with_pos_conv} samples "
                 f"({g.rf_with_pos_conv * 1000 / g.sample_rate:.0f} ms) before attention; "
                 f"feat_extract_norm={g.feat_extract_norm}, do_normalize={g.do_normalize}.")
    else:
        front = ("Log-mel front end (the first 'kernel' is the STFT window, its stride the hop) with a fixed "
                 "floor, then valid convs; sinusoidal positions, no positional conv.")
    lines = [f"### {name}", "",
             f"Conv kernels {list(g.kernels)}, strides {list(g.strides)}: analytic conv RF **{g.rf} samples "
             f"({g.rf * 1000 / g.sample_rate:.1f} ms)**, frame step {g.jump} samples ({g.frame_ms:.0f} ms). "
             f"{front} Window: {len(audio)} samples ({len(audio) / g.sample_rate:.2f} s) of espeak-ng speech.", "",
             "| frame | analytic span | conv-gradient span (nonzero) | 50 % mass L / R (ms) | 90 % L / R | 99 % L / R | whole-model gradient nonzero |",
             "|---|---|---|---|---|---|---|"]
    for r in measured["frames"]:
        lines.append(f"| {r['frame']} | {tuple(r['analytic_span'])} | {rfa.span_text(r['conv_gradient_span'])} | "
                     + " | ".join(f"{r[f'mass{p}_left_ms']:.0f} / {r[f'mass{p}_right_ms']:.0f}" for p in (50, 90, 99))
                     + f" | {tuple(r['nonzero_span_samples'])} |")
    mid = probe["middle_frame"]
    full = rfa.output_gradient(model, audio, mid)
    conv = rfa.conv_gradient(model, audio, mid)
    t = (np.arange(len(audio)) - (g.frame_span(mid)[0] + g.rf / 2)) / g.sample_rate * 1000
    keep = np.abs(t) <= 1500
    bucket = 16
    m = keep.sum() // bucket * bucket
    tx = t[keep][:m].reshape(-1, bucket).mean(axis=1)
    fy = full[keep][:m].reshape(-1, bucket).max(axis=1)
    cy = conv[keep][:m].reshape(-1, bucket).max(axis=1)
    png = f"rf-gradient-{slug}.png"
    plot_png(out / png, f"{name}: |d output / d input| around frame {mid} (normalised)",
             [("whole model", tx, fy / max(fy.max(), 1e-30), "#c0392b"),
              ("conv encoder only", tx, cy / max(cy.max(), 1e-30), "#1f4e79")],
             "time relative to the frame centre (ms)", "gradient magnitude",
             marks=[(-g.rf / 2 / g.sample_rate * 1000, "#1f4e79"), (g.rf / 2 / g.sample_rate * 1000, "#1f4e79")])
    lines += ["", f"![gradient of frame {mid}]({png})", ""]
    change, by_distance = probe["conv_feature_change_outside_rf"], probe["output_change_by_distance"]
    lines += [f"Conv features of frame {mid} when only samples more than {rfa.OUTSIDE_RF_MARGIN_S * 1000:.0f} ms past its RF change: max relative "
              f"change **{change:.2e}** ({rfa.locality_verdict(change, g, model.do_normalize)}).", "",
              f"Log-prob change (max abs) of frame {probe['quarter_frame']} from a 20 ms noise burst d ms after its conv RF: "
              + ", ".join(f"{d:.0f} ms: {v:.3f}" for d, v in by_distance)
              + " — attention" + (" (and the positional conv)" if g.pos_conv_kernel else "")
              + " carries information far past the conv RF.", ""]
    return lines


def sensitivity_section(model, audio: np.ndarray, out: Path) -> list[str]:
    sweep = rfa.sensitivity_sweep(model, audio)
    right, left = sweep.right, sweep.left
    plot_png(out / "sensitivity-kl.png", "Mean KL(offline ‖ streamed) of a frame vs context",
             [("right context (left: all)", np.array([p.context_ms for p in right]), np.maximum([p.mean_kl for p in right], 1e-6), "#c0392b"),
              ("left context (right: all)", np.array([p.context_ms for p in left]), np.maximum([p.mean_kl for p in left], 1e-6), "#1f4e79")],
             "context (ms)", "KL (nats)", log_y=True)
    plot_png(out / "sensitivity-agreement.png", "Greedy symbol agreement with offline vs context",
             [("right context", np.array([p.context_ms for p in right]), np.array([100 * p.agreement for p in right]), "#c0392b"),
              ("left context", np.array([p.context_ms for p in left]), np.array([100 * p.agreement for p in left]), "#1f4e79")],
             "context (ms)", "agreement (%)")
    say = rfa.describe_context
    rec_r, rec_l = rfa.recommendations(right), rfa.recommendations(left)
    (a99, kl99), (a95, kl95) = rfa.STRICT, rfa.LOOSE
    lines = [f"Frames measured: {sweep.right_frames} for right context, {sweep.left_frames} for left context, so 99 % "
             f"agreement allows {sweep.right_frames // 100} and {sweep.left_frames // 100} disagreeing frames.", "",
             "| right context (ms) | mean KL | agreement | | left context (ms) | mean KL | agreement |", "|---|---|---|---|---|---|---|"]
    for i in range(0, len(right), 5):
        r = right[i]
        lcell = next((p for p in left if p.context_ms == r.context_ms), None)
        lines.append(f"| {r.context_ms:.0f} | {r.mean_kl:.4f} | {100 * r.agreement:.1f} % | | "
                     + (f"{lcell.context_ms:.0f} | {lcell.mean_kl:.4f} | {100 * lcell.agreement:.1f} % |" if lcell else " | | |"))
    lines += ["", "![KL](sensitivity-kl.png)", "", "![agreement](sensitivity-agreement.png)", "",
              f"Recommended right context: **{say(rec_r['agreement_99'])}** for {a99 * 100:g} % greedy agreement and "
              f"KL ≤ {kl99:g}; {say(rec_r['agreement_95'])} for {a95 * 100:g} % and KL ≤ {kl95:g}. "
              f"Left context: {say(rec_l['agreement_99'])} ({a99 * 100:g} %), {say(rec_l['agreement_95'])} ({a95 * 100:g} %).", ""]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--skip-base", action="store_true")
    args = ap.parse_args()
    configure_torch_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    audio = speech()
    embedded = load_model(None, device="cpu")
    older = load_model(Path(__file__).resolve().parents[1] / "models" / "asrlive-tiny-en", device="cpu")
    doc = ["# Receptive field: analytic, measured, and what it means for chunking", "",
           "Written by `QT_QPA_PLATFORM=offscreen python scripts/rf_report.py`; every number below is measured by it. "
           "The same measurements are available as `asrlive rf --empirical` and `asrlive rf --sensitivity`.", "",
           "Method: the **conv-gradient span** is the set of input samples with nonzero gradient of one frame's conv "
           "features (all channels, random signs) — it must equal the analytic RF exactly. The **whole-model** "
           "gradient is d log p(argmax symbol) / d input; its central spans holding 50 / 90 / 99 % of the gradient "
           "mass are given left / right of the frame centre. Gradients are taken in float64.", "",
           "## Receptive fields", ""]
    doc += rf_section(f"Embedded model ({Path(embedded.name).name})", embedded, audio, args.out, "embedded")
    doc += rf_section(f"Older trained wav2vec2-architecture model ({Path(older.name).name})", older, audio, args.out, "tiny")
    if not args.skip_base:
        with tempfile.TemporaryDirectory() as tmp:
            base = load_model(base_model_dir(Path(tmp) / "base"), device="cpu")
            doc += rf_section("wav2vec2-base architecture (random weights)", base, audio, args.out, "base")
    doc += ["## What breaks locality", "",
            "- **Positional conv**: a grouped conv over frames (128 frames = 2.56 s in wav2vec2-base, 32 in "
            "asrlive-tiny-en) mixes neighbouring frames before attention. The Whisper encoder has none: its positions "
            "are fixed sinusoids, cut to the window.",
            "- **Self-attention** sees the whole window: the whole-model gradient is nonzero across the entire window "
            "(last column of the tables), so no conv-RF-sized window reproduces offline output exactly.",
            "- **GroupNorm over time** in conv layer 0 (`feat_extract_norm=\"group\"`, wav2vec2-base): even the conv "
            "features of a frame change when distant samples change (measured above); with "
            "`feat_extract_norm=\"layer\"` (asrlive-tiny-en) they are exactly unchanged.",
            "- **Whisper's own front end** is not local either: a centred STFT and padded convs make edge frames see "
            "zeros, and its log-mel is clamped at the window's maximum − 8. asrlive runs the same weights unpadded with "
            "a fixed floor, so the embedded model's conv features are exactly unchanged by distant samples (measured above).",
            "- **Per-window input normalisation** (`do_normalize=True`, wav2vec2-base-960h): the window's mean and "
            "variance scale every frame; neither shipped model normalises its input.", "",
            "## Context sensitivity of the embedded model", "",
            f"Every frame of the utterance that has {rfa.SWEEP_REACH_MS} ms after it is recomputed in a window that ends *r* ms after it "
            "(all left context available), and compared with the offline pass: mean KL and greedy-symbol agreement "
            "(silent frames included, as a stream has them). Likewise for left context with all right context, for "
            f"every frame with {rfa.SWEEP_REACH_MS} ms before it. One model pass over a prefix of the audio serves every frame inside "
            "it at once, so the sweep costs one pass per window edge. This is the curve behind the chunk settings.", ""]
    doc += sensitivity_section(embedded, audio, args.out)
    (args.out / "receptive-field.md").write_text("\n".join(doc) + "\n")
    print(f"wrote {args.out / 'receptive-field.md'}")


if __name__ == "__main__":
    main()
