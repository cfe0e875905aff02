"""The benchmark's outputs: a Markdown table, CSV, JSON and two PNG scatter plots (one point per
asrlive plan, peers marked), so plans can be chosen by numbers."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from .bench import COLUMNS, RECOMMEND_WITHIN, Row, near_offline, recommend

HEADERS = {
    "system": "system", "plan": "hop/left/right ms", "cer": "CER", "wer": "WER",
    "cer_vs_offline": "CER / offline (95 % CI)",
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
    if key.startswith("cer_vs_offline"):
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


# The table gives the interval in its ratio's cell; CSV and JSON keep its ends apart.
TABLE_COLUMNS = [c for c in COLUMNS if c not in ("cer_vs_offline_lo", "cer_vs_offline_hi")]


def table_cell(row: Row, key: str) -> str:
    cell = format_cell(key, getattr(row, key))
    if key == "cer_vs_offline" and row.cer_vs_offline_lo is not None and not math.isnan(row.cer_vs_offline_lo):
        cell += f" ({format_cell(key, row.cer_vs_offline_lo)}–{format_cell(key, row.cer_vs_offline_hi)})"
    return cell


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS[c] for c in TABLE_COLUMNS) + " |", "|" + "---|" * len(TABLE_COLUMNS)]
    best = recommend(rows)
    for r in rows:
        cells = [table_cell(r, c) for c in TABLE_COLUMNS]
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
    from .gui.bench_plots import scatter_png  # Qt draws the plots: imported only to write them

    for name, y, label in (("cer-vs-latency.png", "cer", "CER"),
                           ("compute-vs-latency.png", "compute_ms_per_audio_s", "compute ms per audio second")):
        scatter_png(out / name, rows, y, label, title)
        written.append(out / name)
    return written
