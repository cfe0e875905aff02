"""Reusing work across overlapping windows: exact for the front end, counted, and the fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.transcribe import offline_samples, stream_samples
from asrlive.window_reuse import (REBASE_FRAMES, FrameCache, PlainRunner, Wav2Vec2Runner, WhisperRunner,
                                  new_runner)

from .conftest import make_tiny_model


def _signal(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def test_frame_cache_keeps_a_contiguous_run():
    cache = FrameCache()
    cache.put(10, torch.arange(5)[:, None])       # frames 10..14
    cache.put(15, torch.arange(5, 8)[:, None])    # continues the run
    assert (cache.start, cache.end) == (10, 18) and cache.covers(12, 18) and not cache.covers(9, 12)
    assert cache.get(12, 15)[:, 0].tolist() == [2, 3, 4]
    cache.drop_before(16)
    assert (cache.start, cache.end) == (16, 18) and cache.get(16, 18)[:, 0].tolist() == [6, 7]
    cache.put(30, torch.zeros(2, 1))              # a gap: a new run
    assert (cache.start, cache.end) == (30, 32) and not cache.covers(16, 18)


@pytest.mark.parametrize("plan_ms", [(320, 1000, 320), (100, 600, 0), (500, 4000, 4000)])
def test_front_end_reuse_equals_the_uncached_path(tiny_any_model, plan_ms):
    """Both front ends that are local (layer-norm wav2vec2, the fixed-floor log-mel Whisper
    stack): reused features give the same log-probs as computing every window from its samples."""
    plan = ChunkPlan.from_settings(tiny_any_model.geometry, ChunkSettings(*plan_ms))
    x = _signal(16000 * 4 + 77, 3)
    cached = stream_samples(tiny_any_model, x, plan, reuse="front-end")
    plain = stream_samples(tiny_any_model, x, plan, reuse="none")
    np.testing.assert_allclose(cached.log_probs, plain.log_probs, atol=1e-4)
    assert cached.text == plain.text
    assert plain.reuse_stats["front_end_hit_rate"] == 0.0
    # Every frame a window shares with the window before is reused; the rest are computed.
    spans = [(t.first_frame, t.end_frame) for t in cached.timings]
    reused = sum(max(0, min(prev_end, end) - first) for (_, prev_end), (first, end) in zip(spans, spans[1:]))
    assert cached.reuse_stats["front_end_hit_rate"] == pytest.approx(reused / sum(e - f for f, e in spans), abs=1e-4)


def test_embedded_model_front_end_reuse_on_speech(embedded_model, spoken_sentence):
    audio, _ = spoken_sentence
    plan = ChunkPlan.from_settings(embedded_model.geometry, ChunkSettings(320, 1000, 320))
    cached = stream_samples(embedded_model, audio, plan)  # the default reuse
    plain = stream_samples(embedded_model, audio, plan, reuse="none")
    np.testing.assert_allclose(cached.log_probs, plain.log_probs, atol=1e-4)
    assert cached.reuse_stats["front_end_hit_rate"] > 0.7


def test_models_whose_front_end_is_not_local_run_every_window_whole(tmp_path):
    """Group norm over the window (wav2vec2-base) or per-window waveform normalisation make a
    frame's features depend on the whole window: those models are never cached."""
    from asrlive.model import load_model

    group = load_model(make_tiny_model(tmp_path / "g", norm="group"), device="cpu")
    normalised = load_model(make_tiny_model(tmp_path / "n", do_normalize=True), device="cpu")
    layer = load_model(make_tiny_model(tmp_path / "l"), device="cpu")
    assert isinstance(new_runner(group, "front-end"), PlainRunner)
    assert isinstance(new_runner(normalised, "front-end"), PlainRunner)
    assert isinstance(new_runner(layer, "front-end"), Wav2Vec2Runner)
    assert isinstance(new_runner(layer, "states"), Wav2Vec2Runner)  # states: Whisper encoders only
    assert isinstance(new_runner(layer, "none"), PlainRunner)
    with pytest.raises(ValueError, match="reuse 'all'"):
        new_runner(layer, "all")


def test_state_reuse_streams_every_frame_and_rebases_positions(tiny_whisper_model):
    """Left-context states are an approximation: the frame grid and count stay exact, the
    windows past the first reuse their left context, and a long stream restarts positions
    (a full window) before they pass the rebase bound."""
    g = tiny_whisper_model.geometry
    plan = ChunkPlan.from_settings(g, ChunkSettings(320, 1000, 320))
    x = _signal(int((REBASE_FRAMES * 3) * g.jump), 5)
    seen = []
    runner = new_runner(tiny_whisper_model, "states")
    assert isinstance(runner, WhisperRunner)
    original = runner.log_probs

    def spy(window, samples):
        out = original(window, samples)
        seen.append((window, runner._base))
        return out

    runner.log_probs = spy
    commit, frames = 0, []
    total = g.frames(len(x))
    while commit < total:
        w = plan.window(commit, total_frames=total if plan.window(commit).end_frame > total else None)
        frames.append(runner.log_probs(w, x[w.start_sample:w.end_sample])[commit - w.first_frame:w.commit_to - w.first_frame])
        commit = w.commit_to
    assert sum(len(f) for f in frames) == total == offline_samples(tiny_whisper_model, x).n_frames
    assert all(np.isfinite(f).all() for f in frames)
    assert all(w.end_frame - base <= REBASE_FRAMES for w, base in seen)
    bases = {base for _, base in seen}
    assert len(bases) >= 3  # rebased more than once over the stream
    stats = runner.stats
    assert 0.3 < stats.state_hit_rate < stats.front_end_hit_rate < 1


def test_int8_quantises_linear_layers_and_stays_close(tmp_path, tiny_whisper_model):
    from asrlive.model import ModelLoadError, load_model

    folder = tiny_whisper_model.name
    q = load_model(folder, device="cpu", int8=True)
    kinds = {name: type(m).__module__ for name, m in q.model.named_modules()}
    assert q.int8 and "quantized" in kinds["encoder.blocks.0.fc1"] and "quantized" in kinds["head.lstm.fwd.0"]
    assert "quantized" not in kinds["encoder.blocks.0.fc2"]  # KEEP_FLOAT
    x = _signal(16000 * 2, 9)
    fp, lq = tiny_whisper_model.log_probs(x), q.log_probs(x)
    assert fp.shape == lq.shape and np.abs(np.exp(fp) - np.exp(lq)).max() < 0.1
    with pytest.raises(ModelLoadError, match="CPU only"):
        load_model(folder, device="cuda", int8=True)


def test_live_session_latency_reports_what_windows_reused(tiny_model):
    """What the latency panel and ``live --json-summary`` read: the session's published hit rates."""
    from asrlive.session import LiveSession

    plan = ChunkPlan.from_settings(tiny_model.geometry, ChunkSettings(200, 400, 100))
    session = LiveSession(tiny_model, plan)
    assert session.latency().front_end_hit_rate is None  # no window yet: nothing to report
    session.start_samples(_signal(16000 * 3, 6), realtime=False)
    assert session.wait(60)
    stats = session.latency()
    assert 0.3 < stats.front_end_hit_rate < 1 and stats.state_hit_rate == 0
    assert stats.front_end_hit_rate == session.worker.status.reuse.front_end_hit_rate
    assert stats.backlog_ms == 0  # the stream ended: nothing waits, though a partial frame is left
    # A new plan's figures start with its own windows, not the last 200 of the old plan's.
    assert stats.compute_p50 is not None
    session.set_plan(ChunkPlan.from_settings(tiny_model.geometry, ChunkSettings(1000, 400, 300)))
    assert session.latency().compute_p50 is None and session.latency().speech_to_text_p50 is None



@pytest.mark.parametrize("settings", [ChunkSettings(320, 1000, 320), ChunkSettings(1000, 2000, 500)])
def test_warm_up_runs_every_window_shape_a_stream_opens_with(tiny_whisper_model, settings):
    from asrlive.window_reuse import warm_up

    g = tiny_whisper_model.geometry
    plan = ChunkPlan.from_settings(g, settings)
    warmed = {w.end_sample - w.start_sample for w in warm_up(tiny_whisper_model, plan)}
    streamed = stream_samples(tiny_whisper_model, _signal(16000 * 8, 11), plan)
    whole = [w for w in streamed.timings if w.end_frame - w.commit_to == plan.right_frames]  # not the end's flush
    lengths = {np.subtract(*g.window_span(w.first_frame, w.end_frame)[::-1]) for w in whole}
    assert len(whole) > len(warmed) and lengths <= warmed
    import threading

    stopped = threading.Event()
    stopped.set()
    assert warm_up(tiny_whisper_model, plan, stop=stopped) == [] == warm_up(tiny_whisper_model, plan, budget_s=0)


def test_a_warmed_live_session_streams_exactly_as_a_cold_one(tiny_whisper_model):
    """The warm-up runs on its own runner: nothing of its silence reaches the stream's cache."""
    from asrlive.session import LiveSession

    plan = ChunkPlan.from_settings(tiny_whisper_model.geometry, ChunkSettings(320, 1000, 320))
    x = _signal(16000 * 4 + 123, 12)
    session = LiveSession(tiny_whisper_model, plan)
    session.start_samples(x, realtime=False)
    assert session.wait(60) and session.worker.warm
    _, rows = session.emissions(0)
    cold = stream_samples(tiny_whisper_model, x, plan)
    np.testing.assert_allclose(rows, cold.log_probs, atol=1e-5)


def test_silence_after_is_read_and_dropped(tiny_whisper_silence_model, tiny_whisper_model):
    """A model with ``silence_after_ms`` reads each input as if that much digital silence followed
    its last frame: its logits are those of the input's frames with the zeros appended, cut to the
    input's frames (samples past the last frame are left out); the silence takes its positions
    from the most frames one pass takes."""
    from asrlive.whisper_ctc import whisper_ctc_logits

    net = tiny_whisper_silence_model.model
    assert net.silence_after == 8000
    x = torch.from_numpy(_signal(16000 + 555, 5))[None]
    n = tiny_whisper_silence_model.geometry.frames(x.shape[1])
    padded = torch.cat([x[:, :(n - 1) * 320 + 1040], torch.zeros(1, 8000)], 1)
    with torch.inference_mode():
        expected = net.from_features(net.encoder.with_positions(net.features(padded), 0))[:, :n]
        np.testing.assert_allclose(whisper_ctc_logits(net, x).numpy(), expected.numpy(), atol=1e-5)
    assert tiny_whisper_silence_model.max_window_frames == 1500 - 25
    assert tiny_whisper_model.max_window_frames == 1500 and tiny_whisper_model.model.silence_after == 0


def test_a_window_longer_than_one_pass_is_read_in_pieces(tiny_whisper_silence_model):
    """The silence takes positions too, so a 30 s window (the planner's longest) is more than one
    pass of a model that reads 500 ms after it: it is read as offline reads long audio."""
    model = tiny_whisper_silence_model
    plan = ChunkPlan.from_settings(model.geometry, ChunkSettings(20000, 9000, 1000))
    assert plan.window_frames > model.max_window_frames
    x = _signal(16000 * 31, 2)
    cached = stream_samples(model, x, plan)
    assert cached.n_frames == model.geometry.frames(len(x))
    np.testing.assert_allclose(cached.log_probs, stream_samples(model, x, plan, reuse="none").log_probs, atol=1e-4)
