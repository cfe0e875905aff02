"""Where text labels go so that no two overprint: the heatmap's row labels, the greedy path's
letters and the bench plots' point labels. Pure geometry in pixels; the views measure the text
and place the items."""

from __future__ import annotations

from collections.abc import Sequence

GAP_PX = 1.0  # clear space between two labels' glyphs, so neighbours read as separate
POINT_LABEL_RINGS = 6  # how far out a point's label may move: 3 label-heights past the nearest ring


def pick_row_labels(extents_px: Sequence[tuple[float, float]], row_px: float, order: Sequence[int]) -> list[int]:
    """Rows whose labels fit without touching another. Row i is centred ``i * row_px`` above row 0;
    its glyphs reach ``extents_px[i] = (up, down)`` pixels above and below that centre. Rows are
    tried in ``order``, so earlier ones win where there is no room for all."""
    placed: list[int] = []
    for i in order:
        if all(_clear(extents_px, row_px, max(i, j), min(i, j)) for j in placed):
            placed.append(i)
    return sorted(placed)


def _clear(extents_px: Sequence[tuple[float, float]], row_px: float, upper: int, lower: int) -> bool:
    return (upper - lower) * row_px >= extents_px[upper][1] + extents_px[lower][0] + GAP_PX


def pack_in_rows(centres_px: Sequence[float], widths_px: Sequence[float], rows: int) -> list[int | None]:
    """Row of each label (centred at ``centres_px``, in ascending order), the lowest where it clears
    the label before it in that row; None where no row has room (that label is not shown)."""
    row_end = [float("-inf")] * rows
    out: list[int | None] = []
    for centre, width in zip(centres_px, widths_px):
        left = centre - width / 2
        row = next((r for r in range(rows) if left >= row_end[r] + GAP_PX), None)
        if row is not None:
            row_end[row] = centre + width / 2
        out.append(row)
    return out


Rect = tuple[float, float, float, float]  # left, top, right, bottom in pixels, y down


def place_point_labels(points_px: Sequence[tuple[float, float]], sizes_px: Sequence[tuple[float, float]],
                       marker_px: float, bounds_px: Rect) -> list[tuple[float, float] | None]:
    """Top-left corner of each point's label (``sizes_px`` are (width, height)), the first free one
    of eight places around the point, tried on rings half a label-height further out each time, so that
    no label covers another label or any point's marker and all stay inside ``bounds_px``. Points
    earlier in the list choose first. None where no place is free (that label is not drawn)."""
    half = marker_px / 2 + GAP_PX
    markers = [(x - half, y - half, x + half, y + half) for x, y in points_px]
    placed: list[Rect] = []
    out: list[tuple[float, float] | None] = []
    for (x, y), (w, h) in zip(points_px, sizes_px):
        spot = None
        for ring in range(POINT_LABEL_RINGS):
            d = half + 2 * GAP_PX + ring * h / 2
            for left, top in ((x + d, y - h), (x + d, y), (x - d - w, y - h), (x - d - w, y),
                              (x - w / 2, y - d - h), (x - w / 2, y + d), (x + d, y - h / 2), (x - d - w, y - h / 2)):
                r = (left, top, left + w, top + h)
                inside = bounds_px[0] <= r[0] and r[2] <= bounds_px[2] and bounds_px[1] <= r[1] and r[3] <= bounds_px[3]
                if inside and not any(_overlap(r, o) for o in placed + markers):
                    spot = r
                    break
            if spot is not None:
                break
        if spot is not None:
            placed.append(spot)
        out.append(None if spot is None else spot[:2])
    return out


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] + GAP_PX and b[0] < a[2] + GAP_PX and a[1] < b[3] + GAP_PX and b[1] < a[3] + GAP_PX
