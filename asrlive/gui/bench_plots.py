"""The benchmark's two PNG scatter plots (one point per asrlive plan, peers marked), drawn by
pyqtgraph without a screen; ``asrlive.bench_report`` writes them beside its tables."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..bench import Row

PEER_COLOURS = ["#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"]
MARKER_PX = 11


def _label_points(box, labels: list[tuple[str, str, float, float]]) -> None:
    """Each point's plan beside it, placed so no two labels overprint (plans close in latency and
    CER crowd one corner); a label set apart from its point gets a thin line to it."""
    import pyqtgraph as pg
    from PySide6.QtCore import QPointF

    from .label_layout import place_point_labels

    texts = [pg.TextItem(plan, color=colour, anchor=(0, 0)) for plan, colour, _, _ in labels]
    points = [box.mapViewToScene(QPointF(x, y)) for _, _, x, y in labels]
    sizes = [(t.boundingRect().width(), t.boundingRect().height()) for t in texts]
    frame = box.sceneBoundingRect()
    spots = place_point_labels([(p.x(), p.y()) for p in points], sizes, MARKER_PX,
                               (frame.left(), frame.top(), frame.right(), frame.bottom()))
    for text, point, (w, h), (_, colour, x, y), spot in zip(texts, points, sizes, labels, spots):
        if spot is None:
            continue  # no room: the table has the figures
        text.setPos(box.mapSceneToView(QPointF(*spot)))
        box.addItem(text)
        centre = QPointF(spot[0] + w / 2, spot[1] + h / 2)
        if abs(centre.x() - point.x()) > w / 2 + MARKER_PX or abs(centre.y() - point.y()) > h / 2 + MARKER_PX:
            nearest = QPointF(min(max(point.x(), spot[0]), spot[0] + w), min(max(point.y(), spot[1]), spot[1] + h))
            end = box.mapSceneToView(nearest)
            box.addItem(pg.PlotDataItem([x, end.x()], [y, end.y()], pen=pg.mkPen(colour, width=0.8)))


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
    points: list[tuple[Row, str]] = []  # each plotted point with its colour
    ours = [r for r in rows if r.system.startswith("asrlive") and not math.isnan(r.latency_p50_ms)]
    if ours:
        item.plot([r.latency_p50_ms for r in ours], [getattr(r, y_key) * scale for r in ours], pen=None, symbol="o",
                  symbolBrush="#1f77b4", symbolSize=MARKER_PX, name="asrlive plans")
        points += [(r, "#1f77b4") for r in ours]
    peers: dict[str, list[Row]] = {}
    for r in rows:
        if not r.system.startswith("asrlive") and not math.isnan(r.latency_p50_ms):
            peers.setdefault(r.system, []).append(r)
    for (name, group), colour in zip(peers.items(), PEER_COLOURS):
        item.plot([r.latency_p50_ms for r in group], [getattr(r, y_key) * scale for r in group], pen=None,
                  symbol="t", symbolBrush=colour, symbolSize=MARKER_PX, name=name)
        points += [(r, colour) for r in group]
    if y_key == "cer":
        item.setLabel("left", "CER (%)")
    plot.show()  # lays the scene out at its size, so the export frames every point
    QApplication.processEvents()
    # A long title makes the plot wider than the widget, which would clip the view's right edge
    # (and the legend anchored there): the widget grows to the plot, and the PNG takes its width.
    if item.size().width() > plot.width():
        plot.resize(math.ceil(item.size().width()), plot.height())
        QApplication.processEvents()
    box = item.getViewBox()
    box.autoRange(padding=0.12)
    QApplication.processEvents()
    _label_points(box, [(r.plan, colour, r.latency_p50_ms, getattr(r, y_key) * scale) for r, colour in points if r.plan])
    exporter = pg.exporters.ImageExporter(item)
    exporter.parameters()["width"] = plot.width()
    exporter.export(str(path))
