"""Frame-exact streaming: planner windows, ring, worker, stitched emissions vs offline."""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asrlive.audio.ring import AudioRing
from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.transcribe import offline_samples, stream_samples


def test_plan_snaps_to_frames(tiny_model):
    plan = ChunkPlan.from_settings(tiny_model.geometry, ChunkSettings(chunk_ms=333, left_ms=101, right_ms=49))
    assert (plan.hop_frames, plan.left_frames, plan.right_frames) == (17, 5, 2)
    assert plan.hop_ms == 340 and plan.right_ms == 40
    assert plan.compute_factor == pytest.approx(24 / 17)
    assert plan.latency_ms == pytest.approx(380 + 5)  # hop + right + (RF - J) overhang
    with pytest.raises(ValueError):
        ChunkPlan.from_settings(tiny_model.geometry, ChunkSettings(chunk_ms=0))


def test_windows_start_on_frame_steps_and_cover_frames_once(tiny_model):
    g = tiny_model.geometry
    plan = ChunkPlan.from_settings(g, ChunkSettings(200, 300, 100))
    total, commit, seen = 173, 0, []
    while commit < total:
        w = plan.window(commit, total_frames=total)
        assert w.start_sample % g.jump == 0
        assert g.frames(w.end_sample - w.start_sample) == w.n_frames
        seen.extend(range(w.commit_from, w.commit_to))
        commit = w.commit_to
    assert seen == list(range(total))


def test_ring_contiguous_views_and_overwrite_detection():
    ring = AudioRing(100, 16000)
    data = np.arange(250, dtype=np.float32)
    for i in range(0, 250, 30):
        ring.write(data[i:i + 30])
    assert ring.written == 250 and ring.oldest == 150
    np.testing.assert_array_equal(ring.read(160, 250), data[160:250])  # wraps inside the buffer
    assert ring.read(100, 140) is None  # overwritten
    with pytest.raises(ValueError):
        ring.read(240, 260)


def test_ring_blocking_writer_waits_for_reader():
    ring = AudioRing(64, 16000)
    stop = threading.Event()
    ring.write(np.zeros(60, np.float32), wait_for_room=True)
    done = threading.Event()

    def writer():
        ring.write(np.ones(10, np.float32), wait_for_room=True, stop=stop)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    assert not done.wait(0.2)  # no room until the reader releases
    ring.release(20)
    assert done.wait(5)
    t.join(5)
    np.testing.assert_array_equal(ring.read(60, 70), np.ones(10))


def test_ring_wait_for_wakes_on_close():
    ring = AudioRing(64, 16000)
    stop = threading.Event()
    threading.Timer(0.05, ring.close).start()
    assert ring.wait_for(10, stop) is False and ring.closed


def _signal(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=0, max_value=40000),
    hop=st.integers(min_value=1, max_value=60),
    left=st.integers(min_value=0, max_value=60),
    right=st.integers(min_value=0, max_value=60),
)
def test_streamed_frame_count_equals_offline(tiny_any_model, n, hop, left, right):
    g = tiny_any_model.geometry
    plan = ChunkPlan.from_settings(g, ChunkSettings(hop * g.frame_ms, left * g.frame_ms, right * g.frame_ms))
    x = _signal(n, n)
    streamed = stream_samples(tiny_any_model, x, plan)
    assert streamed.n_frames == g.frames(n) == offline_samples(tiny_any_model, x).n_frames
    assert not np.isnan(streamed.log_probs).any()  # every frame emitted, none skipped
    committed = [f for t in streamed.timings for f in range(t.commit_from, t.commit_to)]
    assert committed == list(range(g.frames(n)))  # each frame exactly once, in order


@pytest.mark.parametrize("hop_ms", [20, 160, 500, 1000])
def test_full_context_streaming_equals_offline(tiny_any_model, hop_ms):
    x = _signal(16000 * 3 + 123, 7)
    plan = ChunkPlan.from_settings(tiny_any_model.geometry, ChunkSettings(hop_ms, 4000, 4000))
    streamed = stream_samples(tiny_any_model, x, plan)
    offline = offline_samples(tiny_any_model, x)
    assert streamed.n_frames == offline.n_frames
    np.testing.assert_allclose(streamed.log_probs, offline.log_probs, atol=1e-4)


def test_short_context_differs_but_stays_aligned(tiny_any_model):
    """With little context the values change (attention sees less) but frames stay aligned."""
    x = _signal(16000 * 2, 3)
    plan = ChunkPlan.from_settings(tiny_any_model.geometry, ChunkSettings(100, 0, 0))
    streamed = stream_samples(tiny_any_model, x, plan)
    offline = offline_samples(tiny_any_model, x)
    assert streamed.n_frames == offline.n_frames
    assert np.abs(streamed.log_probs - offline.log_probs).max() > 1e-3


def test_audio_shorter_than_rf_gives_no_frames(tiny_model):
    plan = ChunkPlan.from_settings(tiny_model.geometry, ChunkSettings(100, 100, 100))
    result = stream_samples(tiny_model, _signal(399, 0), plan)
    assert result.n_frames == 0 and result.text == ""


def test_plan_change_mid_stream_keeps_frames_exact(tiny_model):
    from asrlive.audio.sources import ArraySource
    from asrlive.worker import StreamWorker

    g = tiny_model.geometry
    x = _signal(16000 * 4, 11)
    ring = AudioRing(16000 * 10, 16000)
    first = ChunkPlan.from_settings(g, ChunkSettings(200, 200, 100))
    second = ChunkPlan.from_settings(g, ChunkSettings(500, 1000, 300))
    worker = StreamWorker(tiny_model, ring, first)
    reached, changed = threading.Event(), threading.Event()

    def hold_after_third_window(status) -> None:
        # The worker waits here, between windows, while this thread swaps the plan: the swap
        # lands at the same frame however fast either thread runs.
        if status.windows == 3 and not status.finished:
            reached.set()
            changed.wait(30)

    worker.add_listener(hold_after_third_window)
    source = ArraySource(x, ring)
    worker.start()
    source.start()
    assert reached.wait(30), worker.error
    worker.set_plan(second)
    changed.set()
    assert worker.join(30)
    source.stop()
    hops = [t.commit_to - t.commit_from for t in worker.store.timings]
    assert hops[:3] == [first.hop_frames] * 3 and set(hops[3:-1]) == {second.hop_frames}
    assert worker.store.n_frames == g.frames(len(x)) and not np.isnan(worker.store.all_frames()).any()


def test_live_backlog_skips_ahead_and_counts(tiny_model):
    """A live source that outruns the model: the worker jumps to the newest audio and counts the gap."""
    from asrlive.worker import StreamWorker

    g = tiny_model.geometry
    ring = AudioRing(16000 * 20, 16000)
    ring.write(_signal(16000 * 10, 5))  # ten seconds arrive before the worker looks
    plan = ChunkPlan.from_settings(g, ChunkSettings(200, 200, 100))
    worker = StreamWorker(tiny_model, ring, plan, live=True, max_backlog_s=1.0)
    ring.close()
    worker.run()
    assert worker.skipped_samples > 16000 * 8
    assert worker.store.skipped_frames * g.jump == worker.skipped_samples
    assert worker.store.n_frames == g.frames(16000 * 10)


def test_streaming_past_the_ring_keeps_every_windows_context(tiny_model):
    """A file three times the ring's length, read as fast as the worker goes: the reader waits for
    room, so every window still gets its whole left context and every frame comes out once.
    (Releasing the ring before a window's left context is read would shrink some windows.)"""
    from asrlive.audio.sources import ArraySource
    from asrlive.worker import MAX_LEFT_CONTEXT_S, StreamWorker

    g = tiny_model.geometry
    ring_s = MAX_LEFT_CONTEXT_S + 4
    ring = AudioRing(int(16000 * ring_s), 16000)
    x = _signal(int(16000 * ring_s * 3), 11)
    plan = ChunkPlan.from_settings(g, ChunkSettings(1000, 2000, 300))
    worker = StreamWorker(tiny_model, ring, plan)
    source = ArraySource(x, ring)
    source.start()
    worker.run()
    source.stop()
    assert worker.error is None and source.error is None
    total = g.frames(len(x))
    timings = list(worker.store.timings)
    assert [(t.first_frame, t.end_frame) for t in timings] == [
        (max(0, t.commit_from - plan.left_frames), min(total, t.commit_to + plan.right_frames)) for t in timings]
    assert [t.commit_from for t in timings] == list(range(0, total, plan.hop_frames))
    assert worker.store.n_frames == total and not np.isnan(worker.store.all_frames()).any()


@pytest.mark.parametrize("settings_", [ChunkSettings(float("nan"), 0, 0), ChunkSettings(1000, float("inf"), 0),
                                       ChunkSettings(1000, 25000, 4020)])
def test_settings_no_stream_can_run_are_refused(settings_):
    with pytest.raises(ValueError):
        settings_.check()


def test_window_and_its_kept_past_longer_than_the_ring_still_stream(tiny_model):
    """A 4.5 s window in a 6 s ring, the file three times the ring: the ring keeps less than its
    usual 10 s before a window rather than make the blocked reader wait for audio forever."""
    from asrlive.audio.sources import ArraySource
    from asrlive.worker import StreamWorker

    g = tiny_model.geometry
    ring = AudioRing(16000 * 6, 16000)
    x = _signal(16000 * 18, 5)
    worker = StreamWorker(tiny_model, ring, ChunkPlan.from_settings(g, ChunkSettings(1000, 3000, 500)))
    source = ArraySource(x, ring)
    source.start()
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    runner.join(300)
    source.stop()
    assert not runner.is_alive() and worker.error is None and worker.store.n_frames == g.frames(len(x))
    with pytest.raises(ValueError, match="does not fit"):
        StreamWorker(tiny_model, AudioRing(16000 * 2, 16000), ChunkPlan.from_settings(g, ChunkSettings(1000, 1000, 500)))


def test_audio_longer_than_one_pass_is_read_in_windows_stitched_frame_exactly():
    """A model that takes at most N frames a pass reads longer audio in overlapping windows; with
    a network whose frames see only their own receptive field, the stitched frames equal one pass."""
    import types

    import torch

    from asrlive.geometry import Geometry
    from asrlive.model import LONG_FORM_CONTEXT_FRAMES, CTCModel

    geometry = Geometry((400, 3, 3), (160, 1, 2))  # the Whisper front end's shape

    class LocalNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv1d(1, 5, geometry.rf, stride=geometry.jump)

        def forward(self, x):
            return types.SimpleNamespace(logits=self.conv(x[:, None]).transpose(1, 2))

    model = CTCModel(LocalNet(), "local", list("_abcd"), 0, None, geometry, "cpu", torch.float32, False,
                     max_window_frames=2 * LONG_FORM_CONTEXT_FRAMES + 100)
    x = _signal(16000 * 37 + 77, 3)
    stitched = model.log_probs(x)
    model.max_window_frames = None
    whole = model.log_probs(x)
    assert stitched.shape == whole.shape == (geometry.frames(len(x)), 5)
    np.testing.assert_allclose(stitched, whole, atol=1e-5)
