"""The chunk-plan benchmark: every plan and peer on the same audio, every column filled."""

import math

import numpy as np
import pytest
import soundfile as sf

from asrlive.bench import COLUMNS, BenchError, read_manifest, recommend, run_bench, synthetic_utterances
from asrlive.bench_report import write_outputs
from asrlive.cli import main
from asrlive.metrics import relative_error_interval
from asrlive.planner import ChunkSettings

from .conftest import make_tiny_whisper_ct2, make_tiny_whisper_seq2seq

PLANS = [ChunkSettings(320, 1000, 320), ChunkSettings(1000, 1000, 320)]
# Columns that do not apply to a peer: it has no plan of its own to bound latency, no emissions
# to compare with offline, no tentative text.
NOT_FOR_PEERS = {"algorithmic_latency_ms", "kl_to_offline", "tentative_contradicted"}
# Three utterances are too few for a bootstrap interval: the ratio to offline is given, its ends are not.
INTERVAL_ENDS = {"cer_vs_offline_lo", "cer_vs_offline_hi"}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


@pytest.fixture(scope="module")
def utterances():
    return synthetic_utterances(3, 16000)


def test_tiny_bench_fills_every_column_and_offline_beats_naive_chunks(tmp_path, embedded_model, utterances):
    whisper = make_tiny_whisper_seq2seq(tmp_path / "whisper")
    progress = []
    rows = run_bench(embedded_model, utterances, PLANS, whisper=whisper, whisper_hop_ms=1000,
                     progress=lambda what, done, total: progress.append((done, total)))
    systems = [r.system for r in rows]
    assert systems[:2] == ["asrlive (greedy)"] * 2 and "offline (whole utterance, greedy)" in systems
    assert systems.count("naive chunks, no context") == 2 and any(s.startswith("Whisper LocalAgreement") for s in systems)
    assert progress[-1][0] == progress[-1][1] and [d for d, _ in progress] == list(range(1, len(progress) + 1))
    for r in rows:
        record = r.as_dict()
        assert list(record) == COLUMNS
        peer = not r.system.startswith("asrlive")
        assert all(record[k] is None for k in INTERVAL_ENDS)
        for key in COLUMNS[2:]:
            if peer and key in NOT_FOR_PEERS and not (key == "algorithmic_latency_ms" and "naive" in r.system):
                continue
            if key in INTERVAL_ENDS:
                continue
            assert _finite(record[key]), (r.system, key, record[key])
    offline = next(r for r in rows if r.system.startswith("offline"))
    for naive in (r for r in rows if r.system.startswith("naive")):
        assert offline.cer <= naive.cer
    assert offline.cer > 0 and offline.cer_vs_offline == 1
    for r in rows:
        assert r.cer_vs_offline == pytest.approx(r.cer / offline.cer)
    assert recommend(rows) in rows[:2]
    written = write_outputs(rows, tmp_path / "out", "tiny")
    assert {p.name for p in written} == {"bench.md", "bench.csv", "bench.json", "cer-vs-latency.png",
                                         "compute-vs-latency.png"}
    assert all(p.stat().st_size > 0 for p in written)
    assert (tmp_path / "out" / "bench.csv").read_text().splitlines()[0].split(",") == COLUMNS
    table = (tmp_path / "out" / "bench.md").read_text()
    assert "CER / offline (95 % CI)" in table and "| 1.00 |" in table
    assert ',1.0,,,' in (tmp_path / "out" / "bench.csv").read_text()  # no interval: empty cells, not "nan"
    assert "NaN" not in (tmp_path / "out" / "bench.json").read_text()


def test_the_whisper_peer_runs_faster_whisper_in_its_own_process(tmp_path, embedded_model, utterances,
                                                                 monkeypatch):
    """A CTranslate2 folder is run by faster-whisper (as whisper_streaming runs it) in a child
    process, measured like every other peer, and the child is gone afterwards."""
    import multiprocessing

    from asrlive import ct2_whisper

    # CTranslate2 4.8.5's int8 path through oneDNN (CPUs without MKL: AMD) corrupts the heap on
    # this toy model, whatever its sizes; real Whisper checkpoints run int8 there.
    monkeypatch.setattr(ct2_whisper, "COMPUTE_TYPE", "float32")
    folder = make_tiny_whisper_ct2(tmp_path / "whisper-ct2")
    rows = run_bench(embedded_model, utterances[:2], PLANS[:1], whisper=folder, whisper_hop_ms=1000)
    row = next(r for r in rows if r.system.startswith("Whisper LocalAgreement"))
    assert "faster-whisper float32, beam 5" in row.system
    # This model's transcripts come out empty, so the text latency is undefined; accuracy and
    # compute are measured all the same.
    assert row.cer == row.wer == 1.0
    assert all(_finite(v) and v > 0 for v in (row.step_compute_p50_ms, row.step_compute_p95_ms,
                                              row.compute_ms_per_audio_s, row.real_time_factor)), row
    assert not [p for p in multiprocessing.active_children() if p.name == "asrlive-faster-whisper"]


def test_a_broken_ct2_whisper_fails_in_one_line_before_the_plans_run(tmp_path, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"):
        (folder / name).write_text("not a model")
    code = main(["bench", "--synth", "1", "--chunk-ms", "320", "--right-ms", "320", "--decoder", "greedy",
                 "--whisper", str(folder)])
    out, err = capsys.readouterr()
    err = err.strip().splitlines()
    assert code == 4 and len(err) == 1 and "faster-whisper" in err[0] and str(folder) in err[0], err
    assert out == ""  # no plan ran: the table would be printed


def test_the_transformers_pipeline_peer_runs_a_hugging_face_model(tiny_model, utterances):
    rows = run_bench(tiny_model, utterances, PLANS[:1])
    pipe = next(r for r in rows if r.system == "transformers pipeline (torch float32)")
    assert pipe.plan == "320/1000/320"
    assert all(_finite(getattr(pipe, k)) for k in COLUMNS[2:] if k not in NOT_FOR_PEERS | INTERVAL_ENDS)


def test_the_interval_of_a_cer_ratio_is_narrow_when_utterances_agree_and_wide_when_they_do_not():
    base = [10] * 40
    steady = [12] * 40  # every utterance 1.2 × worse: resampling cannot move the ratio
    ratio, lo, hi = relative_error_interval(steady, base)
    assert ratio == lo == hi == pytest.approx(1.2)
    erratic = [24, 0] * 20  # the same 1.2 × overall, from utterances that disagree
    ratio, lo, hi = relative_error_interval(erratic, base)
    assert ratio == pytest.approx(1.2) and lo < 1.0 and hi > 1.4
    assert relative_error_interval(erratic, base) == (ratio, lo, hi)  # seeded: reruns agree
    assert all(math.isnan(x) for x in relative_error_interval([1, 2], [0, 0]))
    ratio, lo, hi = relative_error_interval([6] * 9, [5] * 9)  # too few utterances for an interval
    assert ratio == pytest.approx(1.2) and math.isnan(lo) and math.isnan(hi)
    # Offline's errors all in one of ten utterances: many resamples miss it, and their ratio is
    # infinite, not dropped, so the interval's top is unbounded.
    ratio, lo, hi = relative_error_interval([2] * 10, [10] + [0] * 9)
    assert ratio == 2 and 0 < lo < 2 and hi == math.inf
    with pytest.raises(ValueError):
        relative_error_interval([1, 2], [1])


def test_manifest_problems_are_reported_before_any_model_loads(tmp_path, capsys):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(8000, np.float32), 16000)
    manifest = tmp_path / "m.tsv"
    manifest.write_text("id\tpath\ttranscript\na\ta.wav\thello there\nb\tb.wav\tgone\n")
    with pytest.raises(BenchError, match="b.wav: no such file"):
        read_manifest(manifest)
    assert main(["bench", "--data", str(manifest), "--model", str(tmp_path / "no-model")]) == 3
    assert "m.tsv:3:" in capsys.readouterr().err
    (tmp_path / "bad.tsv").write_text("a.wav\thello\n")
    assert main(["bench", "--data", str(tmp_path / "bad.tsv")]) == 3
    assert main(["bench"]) == 2
    assert main(["bench", "--synth", "2", "--chunk-ms", "-80"]) == 2


def test_local_agreement_commits_what_two_hypotheses_agree_on():
    from asrlive.peers import local_agreement

    script = iter(["the cat", "the cap sat", "the cap sat on", "the cap sat on a mat", "the cap sat on the mat"])
    run = local_agreement(lambda audio: next(script), np.zeros(50), hop_samples=10, sample_rate=10)
    assert [text for _, text in run.events] == ["", "THE", "THE CAP SAT", "THE CAP SAT ON",
                                                "THE CAP SAT ON THE MAT"]  # the end: the last hypothesis stands
    assert [round(t) for t, _ in run.events] == [1, 2, 3, 4, 5] and len(run.step_compute) == 5


def test_bench_writes_its_plots_without_a_screen(tmp_path, tiny_model_dir):
    """No display and no Qt platform chosen (a plain ssh session, a CI job): the plots are drawn
    offscreen instead of Qt aborting the process after the whole run."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "asrlive", "bench", "--synth", "1", "--model", str(tiny_model_dir),
                          "--chunk-ms", "320", "--right-ms", "320", "--decoder", "greedy", "--out", str(out)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert all((out / name).stat().st_size > 0 for name in ("cer-vs-latency.png", "compute-vs-latency.png", "bench.md"))


def test_plot_labels_of_crowded_points_never_overprint():
    """Plans close in latency and CER crowd one corner of the bench plots; each label still finds a
    place of its own, off every marker and inside the plot."""
    from itertools import combinations

    from asrlive.gui.label_layout import place_point_labels

    points = [(285.0, 400.0), (304.0, 414.0), (351.0, 406.0), (372.0, 417.0), (448.0, 413.0), (467.0, 420.0),
              (514.0, 414.0), (530.0, 421.0), (141.0, 80.0), (600.0, 300.0)]
    sizes = [(80.0, 22.0)] * len(points)
    bounds = (53.0, 31.0, 899.0, 482.0)
    spots = place_point_labels(points, sizes, 11.0, bounds)
    assert None not in spots
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(spots, sizes)]
    markers = [(x - 5.5, y - 5.5, x + 5.5, y + 5.5) for x, y in points]
    apart = lambda a, b: a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]  # noqa: E731
    assert all(apart(a, b) for a, b in combinations(rects, 2))
    assert all(apart(r, m) for r in rects for m in markers)
    assert all(bounds[0] <= r[0] and r[2] <= bounds[2] and bounds[1] <= r[1] and r[3] <= bounds[3] for r in rects)
    # Each label is as near its point as the crowd allows: an uncrowded point's label touches its marker's ring.
    (x, y), (sx, sy) = points[8], spots[8]
    assert abs(sx - (x + 5.5)) < 6 and abs(sy + 22 - y) < 6


def test_a_long_title_widens_the_plot_instead_of_clipping_its_legend(tmp_path):
    """A long data description made the plot wider than its widget and the export cut the legend
    off at the right edge; the image now holds the whole plot, with a margin right of the legend."""
    from PySide6.QtGui import QImage

    from asrlive.bench import Row
    from asrlive.gui.bench_plots import scatter_png

    rows = [Row("asrlive (greedy)", "320/4000/320", 0.13, 0.4, 1.18, 1.1, 1.3, 640, 550, 700, 100, 130, 290, 0.3),
            Row("offline (whole utterance, greedy)", "", 0.11, 0.37, 1, 1, 1, None, 1960, 2500, 40, 60, 28, 0.03)]
    path = tmp_path / "plot.png"
    scatter_png(path, rows, "compute_ms_per_audio_s", "compute ms per audio second", "a title " * 30)
    image = QImage(str(path))
    assert image.width() > 900
    margin = [image.pixelColor(x, y).lightness() for x in range(image.width() - 6, image.width())
              for y in range(20, 140)]
    assert min(margin) > 200  # background and faint grid lines: no text runs into the edge


@pytest.mark.parametrize("body,words", [
    (b"id\tpath\ttranscript\n", "no utterances"),
    (b"id\tpath\ttranscript\na\ta.wav\n", "fewer than the header's 3"),
    (b"id\tpath\ttranscript\na\ta.wav\thi\na\ta.wav\tho\n", "id 'a' appears twice"),
    (b"id\tpath\ttranscript\na\ta.wav\t  \n", "empty id, path or transcript"),
    (b"id\tpath\ttranscript\na\ta.wav\tcaf\xe9\n", "not UTF-8"),
    (b"id\tpath\ttranscript\na\ttext.wav\thi\n", "not a readable audio file"),
    (b"id\tpath\ttranscript\na\ta.wav\thi\n\nb\tgone.wav\tho\n", "m.tsv:4: .*gone.wav: no such file"),
])
def test_bad_manifests_are_refused_with_the_reason(tmp_path, body, words):
    sf.write(tmp_path / "a.wav", np.zeros(8000, np.float32), 16000)
    (tmp_path / "text.wav").write_text("not audio")
    (tmp_path / "m.tsv").write_bytes(body)
    with pytest.raises(BenchError, match=words):
        read_manifest(tmp_path / "m.tsv")


def test_manifest_with_a_byte_order_mark_or_quote_marks_reads(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(8000, np.float32), 16000)
    (tmp_path / "m.tsv").write_bytes('\ufeffid\tpath\ttranscript\na\ta.wav\t"hello\nb\ta.wav\tthere"\n'.encode())
    assert [(uid, text) for uid, _, text in read_manifest(tmp_path / "m.tsv")] == [("a", "HELLO"), ("b", "THERE")]
