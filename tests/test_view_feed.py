"""The views' bounded history: rows by absolute index, the newest ``keep`` held, storage bounded."""

import numpy as np

from asrlive.view_feed import RecentRows


def test_recent_rows_keep_the_newest_rows_by_absolute_index():
    rng = np.random.default_rng(0)
    rows = RecentRows(2, keep=100)
    n = 0
    for _ in range(300):
        k = int(rng.integers(0, 40)) if rng.random() < 0.95 else 150  # now and then more than keep at once
        rows.extend(np.arange(n, n + k, dtype=np.float32)[:, None].repeat(2, 1))
        n += k
        assert rows.count == n and rows.first == max(0, n - 100)
        first, held = rows.view(0, n)
        assert first == rows.first and (held[:, 0] == np.arange(first, n)).all()
        first, part = rows.view(n - 30, n - 10)
        assert (part[:, 0] == np.arange(first, n - 10)).all()
        assert rows.row(n - 1) is None or rows.row(n - 1)[0] == n - 1
        assert rows.row(rows.first - 1) is None
        assert len(rows._data) <= 125  # keep plus a quarter, however long it runs
