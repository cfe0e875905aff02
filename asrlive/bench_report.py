"""The benchmark's outputs: a Markdown table, CSV, JSON and two PNG scatter plots (one point per
asrlive plan, peers marked), so plans can be chosen by numbers."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

from .bench import COLUMNS, RECOMMEND_WITHIN, Row, near_offline, recommend

HEADERS = {
    "system": "system", "plan": "hop/left/right ms", "cer": "CER", "wer": "WER",
    "algorithmic_latency_ms": "algorithmic latency ms", "latency_p50_ms": "speech end → text p50 ms",
    "latency_p95_ms": "p95 ms", "step_compute_p50_ms": "compute per step p50 ms", "step_compute_p95_ms": "p95 ms",
    "compute_ms_per_audio_s": "compute ms per audio s", "real_time_factor": "RTF",
    "kl_to_offline": "KL to offline", "tentative_contradicted": "tentative contradicted",
}


def format_cell(key: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if key in ("cer", "wer", "tentative_contradicted"):
        return f"{value * 100:.1f} %"
    if key in ("real_time_factor", "kl_to_offline"):
        return f"{value:.3f}"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS[c] for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    best = recommend(rows)
    for r in rows:
        cells = [format_cell(c, getattr(r, c)) for c in COLUMNS]
        if r is best:
            cells[1] = f"**{cells[1]}** (recommended)"
        lines.append("| " + " | ".join(cells) + " |")
    if best is not None:
        near = f"within {RECOMMEND_WITHIN * 100:.0f} % (relative) of offline decoding's"
        why = (f"the lowest p50 latency among asrlive plans whose CER is {near}" if near_offline(best, rows)
               else f"no plan's CER is {near}, so the plan with the lowest CER")
        lines += ["", f"Recommended plan: {best.plan} ms, {why}."]
    return "\n".join(lines) + "\n"


def write_outputs(rows: list[Row], out: Path, title: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "bench.md", out / "bench.csv", out / "bench.json"]
    (out / "bench.md").write_text(f"# {title}\n\n" + markdown(rows))
    with (out / "bench.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow(r.as_dict())
    (out / "bench.json").write_text(json.dumps({"title": title, "rows": [r.as_dict() for r in rows]}, indent=1) + "\n")
    for name, y, label in (("cer-vs-latency.png", "cer", "CER"),
                           ("compute-vs-latency.png", "compute_ms_per_audio_s", "compute ms per audio second")):
        scatter_png(out / name, rows, y, label, title)
        written.append(out / name)
    return written


PEER_COLOURS = ["#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]


def scatter_png(path: Path, rows: list[Row], y_key: str, y_label: str, title: str) -> None:
    import pyqtgraph as pg
    import pyqtgraph.exporters
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        # A plot file needs no screen: without this, Qt aborts the process where there is none.
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        QApplication([])
    plot = pg.PlotWidget(background="w")
    plot.resize(900, 520)
    item = plot.getPlotItem()
    item.setTitle(f"{y_label} against latency: {title}", color="#222", size="10pt")
    item.setLabel("bottom", "latency p50 (ms)")
    item.setLabel("left", y_label)
    item.addLegend(offset=(-10, 10))
    item.showGrid(x=True, y=True, alpha=0.25)
    scale = 100.0 if y_key == "cer" else 1.0
    ours = [r for r in rows if r.system.startswith("asrlive") and not math.isnan(r.latency_p50_ms)]
    if ours:
        item.plot([r.latency_p50_ms for r in ours], [getattr(r, y_key) * scale for r in ours], pen=None, symbol="o",
                  symbolBrush="#1f77b4", symbolSize=9, name="asrlive plans")
        for r in ours:
            text = pg.TextItem(r.plan, color="#1f77b4", anchor=(0, 1))
            text.setPos(r.latency_p50_ms, getattr(r, y_key) * scale)
            item.addItem(text)
    peers: dict[str, list[Row]] = {}
    for r in rows:
        if not r.system.startswith("asrlive") and not math.isnan(r.latency_p50_ms):
            peers.setdefault(r.system, []).append(r)
    for (name, group), colour in zip(peers.items(), PEER_COLOURS):
        item.plot([r.latency_p50_ms for r in group], [getattr(r, y_key) * scale for r in group], pen=None,
                  symbol="t", symbolBrush=colour, symbolSize=12, name=name)
        for r in group:
            if r.plan:
                text = pg.TextItem(r.plan, color=colour, anchor=(0, 1))
                text.setPos(r.latency_p50_ms, getattr(r, y_key) * scale)
                item.addItem(text)
    if y_key == "cer":
        item.setLabel("left", "CER (%)")
    plot.show()  # lays the scene out at its size, so the export frames every point
    item.getViewBox().autoRange(padding=0.12)
    exporter = pg.exporters.ImageExporter(item)
    exporter.parameters()["width"] = 900
    exporter.export(str(path))
