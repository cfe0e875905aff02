"""Where text labels go so that no two overprint: the heatmap's row labels and the greedy path's
letters. Pure geometry in pixels; the views measure the text and place the items."""

from __future__ import annotations

from collections.abc import Sequence

GAP_PX = 1.0  # clear space between two labels' glyphs, so neighbours read as separate


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
