"""Measured receptive fields: gradient spans, locality of conv features, context sensitivity."""

import json

import numpy as np
import pytest

from asrlive import rf_analysis as rfa
from asrlive.cli import main
from asrlive.model import load_model
from tests.conftest import make_tiny_model

CONFIGS = [
    ((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)),   # wav2vec2
    ((12, 4, 2, 2, 3, 4), (5, 3, 2, 1, 1, 1)),         # odd strides, stride-1 tail
    ((5, 3, 2), (2, 2, 1)),
    ((7, 5, 4), (3, 4, 2)),
]


@pytest.mark.parametrize("kernels,strides", CONFIGS)
def test_conv_gradient_span_equals_analytic_rf(tmp_path, kernels, strides):
    model = load_model(make_tiny_model(tmp_path / "m", conv_kernel=kernels, conv_stride=strides), device="cpu")
    g = model.geometry
    x = (np.random.default_rng(0).standard_normal(6000) * 0.1).astype(np.float32)
    n = g.frames(len(x))
    for frame in (0, 1, n // 2, n - 1):
        assert rfa.nonzero_span(rfa.conv_gradient(model, x, frame)) == g.frame_span(frame)


def test_whisper_front_end_gradient_span_equals_analytic_rf(tiny_whisper_model):
    """Log-mel window (400 samples, hop 160) and two valid k=3 convs: 1040-sample RF, 320-sample
    step. Whisper's periodic Hann window weighs its first sample by exactly zero, so the measured
    span starts one sample into the analytic one."""
    g = tiny_whisper_model.geometry
    assert (g.rf, g.jump) == (1040, 320)
    x = (np.random.default_rng(0).standard_normal(8000) * 0.1).astype(np.float32)
    n = g.frames(len(x))
    for frame in (0, 1, n // 2, n - 1):
        start, end = g.frame_span(frame)
        assert rfa.nonzero_span(rfa.conv_gradient(tiny_whisper_model, x, frame)) == (start + 1, end)


def test_whisper_front_end_is_local(tiny_whisper_model):
    """A fixed log-mel floor instead of Whisper's per-window maximum: audio outside a frame's RF
    does not change its conv features, however loud."""
    x = (np.random.default_rng(1).standard_normal(16000) * 0.01).astype(np.float32)
    frame = 5
    edit = np.zeros_like(x)
    edit[tiny_whisper_model.geometry.frame_span(frame)[1]:] = 0.9
    assert rfa.conv_feature_change(tiny_whisper_model, x, frame, edit) == 0.0


def test_group_norm_breaks_conv_locality_layer_norm_keeps_it(tmp_path):
    x = (np.random.default_rng(1).standard_normal(16000) * 0.1).astype(np.float32)
    layer = load_model(make_tiny_model(tmp_path / "layer", norm="layer"), device="cpu")
    group = load_model(make_tiny_model(tmp_path / "group", norm="group"), device="cpu")
    frame = 5
    a, b = layer.geometry.frame_span(frame)
    edit = np.zeros_like(x)
    edit[b + 3200:] = np.random.default_rng(2).standard_normal(len(x) - b - 3200) * 0.3
    assert rfa.conv_feature_change(layer, x, frame, edit) == 0.0
    assert rfa.conv_feature_change(group, x, frame, edit) > 1e-2
    # And the gradient shows it: GroupNorm spreads a conv frame's dependence over the window.
    assert rfa.nonzero_span(rfa.conv_gradient(group, x, frame)) == (0, len(x) - len(x) % 5)


def test_attention_reaches_past_the_conv_rf(tiny_any_model):
    x = (np.random.default_rng(3).standard_normal(32000) * 0.1).astype(np.float32)
    grad = rfa.output_gradient(tiny_any_model, x, 20)
    a, b = tiny_any_model.geometry.frame_span(20)
    first, last = rfa.nonzero_span(grad)
    assert first < a and last > b  # the whole model sees beyond the 25 ms conv RF
    eff = rfa.effective_rf(grad, 20, (a + b) / 2)
    lefts = [eff.spans[p][0] for p in rfa.MASS_LEVELS]
    assert lefts == sorted(lefts)  # more mass needs a wider span


def test_whisper_sensitivity_reaches_offline_with_all_context(tiny_whisper_model):
    x = (np.random.default_rng(4).standard_normal(32000) * 0.1).astype(np.float32)
    points = rfa.context_sensitivity(tiny_whisper_model, x, [10, 30, 50], [0, 40, 2500], side="right")
    assert points[-1].mean_kl < 1e-6 and points[0].mean_kl > 1e-4


def test_sensitivity_converges_to_offline(tiny_model):
    x = (np.random.default_rng(4).standard_normal(48000) * 0.1).astype(np.float32)
    frames = list(range(10, 80, 7))
    contexts = [0, 20, 40, 80, 160, 320, 640, 1500]
    points = rfa.context_sensitivity(tiny_model, x, frames, contexts, side="right")
    kl = [p.mean_kl for p in points]
    assert kl[-1] < 1e-6 and points[-1].agreement == 1.0  # full context: the offline result
    assert kl[0] > 10 * max(kl[-1], 1e-9)
    rises = sum(b > a * 1.5 + 1e-9 for a, b in zip(kl, kl[1:]))
    assert rises <= 1  # monotone-ish
    left = rfa.context_sensitivity(tiny_model, x, [90, 100, 110], [0, 200, 2500], side="left")
    assert left[-1].mean_kl < 1e-6 and left[0].mean_kl > left[-1].mean_kl


def test_shared_window_passes_equal_one_window_per_frame_and_context(tiny_model):
    """The sweep's prefix/suffix sharing must give exactly what cutting each frame its own window
    gives."""
    g = tiny_model.geometry
    x = (np.random.default_rng(5).standard_normal(40000) * 0.1).astype(np.float32)
    offline = tiny_model.log_probs(x)
    total = len(offline)
    frames, contexts = list(range(20, 60)), [0, 20, 60, 140, 300]
    for side in ("right", "left"):
        expected = []
        for ctx in contexts:
            n = int(round(ctx / g.frame_ms))
            kl, agree = [], []
            for f in frames:
                first, end = (0, min(total, f + 1 + n)) if side == "right" else (max(0, f - n), total)
                window = x[first * g.jump: first * g.jump + g.samples_for_frames(end - first)]
                row = tiny_model.log_probs(window)[f - first]
                kl.append(max(0.0, float(np.sum(np.exp(offline[f]) * (offline[f] - row)))))
                agree.append(float(np.argmax(row) == np.argmax(offline[f])))
            expected.append((ctx, np.mean(kl), np.mean(agree)))
        got = rfa.context_sensitivity(tiny_model, x, frames, contexts, side=side)
        assert [p.context_ms for p in got] == contexts
        np.testing.assert_allclose([p.mean_kl for p in got], [e[1] for e in expected], rtol=1e-6, atol=1e-9)
        assert [p.agreement for p in got] == [e[2] for e in expected]


def test_sweep_frames_takes_every_frame_when_it_can():
    assert rfa.sweep_frames(range(2, 10), 100) == list(range(2, 10))
    spread = rfa.sweep_frames(range(0, 1000), 50)
    assert len(spread) == 50 and spread[0] == 0 and spread[-1] == 999
    assert rfa.sweep_frames(range(5, 5), 10) == []
    # A frame is swept only where the whole reach of context exists on that side.
    assert rfa.sweepable_frames(100, 50, "right") == range(2, 49)
    assert rfa.sweepable_frames(100, 50, "left") == range(50, 98)
    assert len(rfa.sweepable_frames(40, 50, "right")) == 0


def test_recommend_picks_first_stable_context():
    pts = [rfa.SensitivityPoint(c, kl, ag) for c, kl, ag in
           [(0, 0.5, 0.8), (20, 0.01, 0.995), (40, 0.2, 0.9), (60, 0.01, 0.99), (80, 0.0, 1.0)]]
    assert rfa.recommend(pts) == 60
    assert rfa.recommend(pts[:3]) is None


def test_rf_cli_empirical_json(tiny_model_dir, capsys, tmp_path):
    import soundfile as sf

    wav = tmp_path / "x.wav"
    sf.write(wav, (np.random.default_rng(5).standard_normal(40000) * 0.1).astype(np.float32), 16000)
    assert main(["rf", "--model", str(tiny_model_dir), "--empirical", "--audio", str(wav), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    for row in record["empirical"]["frames"]:
        assert row["conv_gradient_span"] == row["analytic_span"]
    assert record["conv_feature_change_outside_rf"] == 0.0


def test_rf_cli_sensitivity_table(tiny_model_dir, capsys, tmp_path):
    import soundfile as sf

    wav = tmp_path / "x.wav"
    sf.write(wav, (np.random.default_rng(6).standard_normal(56000) * 0.1).astype(np.float32), 16000)
    assert main(["rf", "--model", str(tiny_model_dir), "--sensitivity", "--audio", str(wav), "--frames", "4"]) == 0
    out = capsys.readouterr().out
    assert "Right-context sensitivity over 4 frames" in out and "Recommended right context" in out
    assert main(["rf", "--model", str(tiny_model_dir), "--sensitivity", "--audio", str(wav), "--frames", "1"]) == 2
    assert "--frames must be at least 4" in capsys.readouterr().err


def test_context_grid_spans_the_sweep_reach_in_whole_frames():
    assert rfa.sweep_reach(20.0) == 50
    grid = rfa.context_grid(20.0)
    assert grid[0] == 0 and grid[-1] == rfa.SWEEP_REACH_MS and len(grid) == 51
    assert rfa.context_grid(20.0, every=2) == grid[::2]
    # A frame step that does not divide the reach stops short of it rather than past it.
    assert rfa.context_grid(30.0)[-1] == 990
    assert rfa.describe_context(None) == f"not within {rfa.SWEEP_REACH_MS} ms"
    assert rfa.describe_context(140.0) == "140 ms"


def test_rf_empirical_names_what_makes_a_front_end_not_local(tmp_path, capsys):
    """The verdict comes from the measurement: per-window normalisation is not local either."""
    import soundfile as sf

    folder = make_tiny_model(tmp_path / "normalising", do_normalize=True)
    wav = tmp_path / "x.wav"
    sf.write(wav, (np.random.default_rng(5).standard_normal(40000) * 0.1).astype(np.float32), 16000)
    assert main(["rf", "--model", str(folder), "--empirical", "--audio", str(wav), "--threads", "1"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("conv features of frame"))
    assert "more than 100 ms" in line and line.endswith("(not local: per-window input normalisation)"), line


def test_rf_empirical_on_audio_too_short_for_the_probe_is_one_line(tiny_model_dir, tmp_path, capsys):
    import soundfile as sf

    wav = tmp_path / "short.wav"
    sf.write(wav, (np.random.default_rng(5).standard_normal(3300) * 0.1).astype(np.float32), 16000)
    assert main(["rf", "--model", str(tiny_model_dir), "--empirical", "--audio", str(wav), "--threads", "1"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "audio too short for analysis: 0.21 s (10 frames)" in err[0], err


def test_the_locality_probe_margin_is_time_not_samples():
    from asrlive.geometry import Geometry

    wide, narrow = Geometry((400,), (160,), 16000), Geometry((200,), (80,), 8000)
    assert rfa.locality_edit_start(wide, 20) - wide.frame_span(10)[1] == 1600
    assert rfa.locality_edit_start(narrow, 20) - narrow.frame_span(10)[1] == 800
