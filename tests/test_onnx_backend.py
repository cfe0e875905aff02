"""ONNX Runtime for asrlive's Whisper-encoder models: same outputs as torch, cached exports,
and a clear refusal or a quiet fallback where it cannot run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asrlive.model import ModelLoadError, load_model
from asrlive.planner import ChunkPlan, ChunkSettings
from asrlive.transcribe import offline_samples, stream_samples


@pytest.fixture()
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASRLIVE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


def _signal(n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.1).astype(np.float32)


def test_onnxruntime_gives_torch_outputs_and_streams_frame_exact(own_cache, tiny_whisper_model):
    said = []
    ort = load_model(tiny_whisper_model.name, device="cpu", backend="onnxruntime", threads=1, progress=said.append)
    assert ort.backend == "onnxruntime" and len(said) == 1 and "preparing" in said[0]
    assert sorted(p.name for p in next(own_cache.iterdir()).iterdir()) == ["front.onnx", "rest.onnx"]
    x = _signal(16000 * 3 + 55, 1)
    np.testing.assert_allclose(ort.log_probs(x), tiny_whisper_model.log_probs(x), atol=1e-3)
    plan = ChunkPlan.from_settings(ort.geometry, ChunkSettings(320, 4000, 4000))
    streamed, offline = stream_samples(ort, x, plan), offline_samples(ort, x)
    assert streamed.n_frames == offline.n_frames
    np.testing.assert_allclose(streamed.log_probs, offline.log_probs, atol=1e-4)  # front-end reuse included
    assert streamed.reuse_stats["front_end_hit_rate"] > 0.5
    # Reused states run on torch, which takes cached keys and values: frame-exact all the same.
    states = stream_samples(ort, x, ChunkPlan.from_settings(ort.geometry, ChunkSettings(320, 1000, 320)), reuse="states")
    assert states.n_frames == offline.n_frames and states.reuse_stats["state_hit_rate"] > 0


def test_export_is_cached_and_a_damaged_cache_is_rebuilt(own_cache, tiny_whisper_model):
    folder = tiny_whisper_model.name
    load_model(folder, device="cpu", backend="onnxruntime")
    said = []
    load_model(folder, device="cpu", backend="onnxruntime", progress=said.append)
    assert said == []  # the second load exports nothing
    rest = next(own_cache.iterdir()) / "rest.onnx"
    rest.write_bytes(rest.read_bytes()[:1000])
    again = load_model(folder, device="cpu", backend="onnxruntime", progress=said.append)
    assert again.backend == "onnxruntime" and len(said) == 1
    x = _signal(16000, 2)
    np.testing.assert_allclose(again.log_probs(x), tiny_whisper_model.log_probs(x), atol=1e-3)


def test_gradients_still_use_the_torch_network(own_cache, tiny_whisper_model):
    from asrlive.rf_analysis import float64_copy

    ort = load_model(tiny_whisper_model.name, device="cpu", backend="onnxruntime")
    net = float64_copy(ort)
    assert next(net.parameters()).dtype.is_floating_point and next(net.parameters()).requires_grad


def test_transformers_models_run_on_onnxruntime_as_one_graph(own_cache, tiny_model_dir, tiny_model):
    ort = load_model(tiny_model_dir, device="cpu", backend="onnxruntime")
    assert ort.backend == "onnxruntime"
    assert [p.name for p in next(own_cache.iterdir()).iterdir() if p.suffix == ".onnx"] == ["model.onnx"]
    x = _signal(16000 * 2 + 99, 3)
    np.testing.assert_allclose(ort.log_probs(x), tiny_model.log_probs(x), atol=1e-4)
    plan = ChunkPlan.from_settings(ort.geometry, ChunkSettings(320, 1000, 320))
    streamed = stream_samples(ort, x, plan)
    assert streamed.text == stream_samples(tiny_model, x, plan).text
    assert streamed.reuse_stats["front_end_hit_rate"] == 0  # the graph is whole: features are not cached
    from asrlive.peers import TransformersPipeline

    assert TransformersPipeline(ort).run(x, 320, 1000, 320).text is not None  # the pipeline runs the torch network


def test_where_onnxruntime_cannot_run(own_cache, tiny_whisper_model):
    with pytest.raises(ModelLoadError, match="int8 runs on torch"):
        load_model(tiny_whisper_model.name, device="cpu", backend="onnxruntime", int8=True)
    assert load_model(tiny_whisper_model.name, device="cpu", backend="auto", int8=True).backend == "torch"
    with pytest.raises(ModelLoadError, match="backend 'tensorrt'"):
        load_model(tiny_whisper_model.name, device="cpu", backend="tensorrt")
    from asrlive.onnx_backend import OnnxUnavailable, on_onnxruntime

    class Unexportable(torch.nn.Module):
        def forward(self, x):
            return torch.stft(x, 64, return_complex=True)  # the TorchScript exporter refuses complex STFT

    with pytest.raises(OnnxUnavailable, match="cannot run"):
        on_onnxruntime(Unexportable(), own_cache.parent, 1)

def test_log_mel_dft_conv_equals_the_stft():
    """The front end's power spectrum is a strided conv with windowed DFT kernels (it exports and
    runs fast in ONNX Runtime); it is torch.stft's to float rounding."""
    from asrlive.whisper_ctc import MEL_HOP, N_FFT, LogMel, mel_filters

    x = torch.from_numpy(_signal(16000 * 2 + 321, 4))[None]
    filters = mel_filters(80)
    stft = torch.stft(x, N_FFT, MEL_HOP, window=torch.hann_window(N_FFT), center=False, return_complex=True)
    want = (torch.clamp(filters @ stft.abs() ** 2, min=1e-10).log10().clamp(min=-7.5) + 4) / 4
    torch.testing.assert_close(LogMel(filters, -7.5)(x), want, atol=1e-5, rtol=1e-5)
