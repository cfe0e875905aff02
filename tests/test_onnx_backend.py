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


def _ops(graph_path) -> dict[str, str]:
    import onnx

    return {node.name: node.op_type for node in onnx.load(str(graph_path)).graph.node}


@pytest.mark.parametrize("which", ["whisper", "transformers"])
def test_int8_on_onnxruntime_quantises_weights_but_keep_float_layers(own_cache, tiny_whisper_model, tiny_model_dir,
                                                                     tiny_model, which, monkeypatch):
    from asrlive import onnx_backend

    monkeypatch.setattr(onnx_backend, "int8_saturates", lambda: False)  # full 8-bit weights, as on this CPU
    folder, fp = (tiny_whisper_model.name, tiny_whisper_model) if which == "whisper" else (tiny_model_dir, tiny_model)
    said = []
    q = load_model(folder, device="cpu", backend="auto", int8=True, progress=said.append)
    assert q.backend == "onnxruntime" and q.int8 and any("int8" in m for m in said)
    graphs = next(own_cache.iterdir())
    name = "rest" if which == "whisper" else "model"
    int8_graphs = list(graphs.glob(f"{name}-int8*.onnx"))
    assert len(int8_graphs) == 1 and (graphs / f"{name}.onnx").exists()
    ops = _ops(int8_graphs[0])
    kept = {n: op for n, op in ops.items() if ("/fc2" in n or "/output_dense/" in n) and op == "MatMul"}
    quantised = [n for n, op in ops.items() if op in ("MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM")]
    assert kept and len(kept) == sum("fc2" in n or "output_dense" in n for n, op in _ops(graphs / f"{name}.onnx").items()
                                     if op == "MatMul")
    assert len(quantised) >= 2 * len(kept)
    x = _signal(16000 * 2 + 7, 9)
    lf, lq = fp.log_probs(x), q.log_probs(x)
    assert lf.shape == lq.shape and 0 < np.abs(np.exp(lf) - np.exp(lq)).max() < 0.1
    plan = ChunkPlan.from_settings(q.geometry, ChunkSettings(320, 1000, 320))
    assert stream_samples(q, x, plan).n_frames == offline_samples(q, x).n_frames
    made = int8_graphs[0].stat().st_mtime_ns
    said.clear()
    load_model(folder, device="cpu", backend="onnxruntime", int8=True, progress=said.append)
    assert said == [] and int8_graphs[0].stat().st_mtime_ns == made  # quantised once, then cached
    # Precision "auto": int8 where ONNX Runtime runs the model, float32 on torch.
    assert load_model(folder, device="cpu", backend="auto", int8=None).precision == "int8"
    assert load_model(folder, device="cpu", backend="torch", int8=None).precision == "float32"


def test_reused_states_pick_torch_so_the_precision_reported_is_what_ran(own_cache, tiny_whisper_model, tiny_model_dir):
    """Reused states run on torch; on the auto backend the CLI loads the model there, rather than
    exporting it to ONNX Runtime and reporting int8 weights that the states never use."""
    from asrlive.cli import _model_and_plan, build_parser
    from asrlive.onnx_backend import int8_saturates

    expected = {("states", "auto"): ("torch", "float32"),
                ("front-end", "auto"): ("onnxruntime", "float32" if int8_saturates() else "int8"),
                ("front-end", "float32"): ("onnxruntime", "float32")}  # the defaults
    for (reuse, precision), ran in expected.items():
        args = build_parser().parse_args(["transcribe", "--model", tiny_whisper_model.name, "--reuse", reuse,
                                          "--precision", precision, "--device", "cpu", "--threads", "1", "x.wav"])
        model, _ = _model_and_plan(args, ChunkSettings())
        assert (model.backend, model.precision) == ran, (reuse, precision)
    # A wav2vec2 model has no encoder states to reuse (it falls back to the front-end cache), so
    # it keeps ONNX Runtime.
    args = build_parser().parse_args(["transcribe", "--model", str(tiny_model_dir), "--reuse", "states",
                                      "--device", "cpu", "--threads", "1", "x.wav"])
    assert _model_and_plan(args, ChunkSettings())[0].backend == "onnxruntime"


def test_int8_weights_take_7_bits_where_the_kernels_may_saturate(own_cache, tiny_whisper_model, monkeypatch):
    """Without VNNI, ONNX Runtime's x86 kernels add uint8 x int8 products in pairs into int16:
    7-bit weights keep every sum in range. The setting is part of the graph's name, so graphs
    made with other settings are never reused."""
    import onnx

    from asrlive import onnx_backend

    monkeypatch.setattr(onnx_backend, "int8_saturates", lambda: True)
    # 7-bit weights cost over a point of CER: the default precision stays float32 there.
    assert load_model(tiny_whisper_model.name, device="cpu", backend="auto", int8=None).precision == "float32"
    q = load_model(tiny_whisper_model.name, device="cpu", backend="onnxruntime", int8=True)
    graphs = next(own_cache.iterdir())
    (graph,) = graphs.glob("rest-int8-7bit-*.onnx")
    assert q.precision == "int8"
    weights = [onnx.numpy_helper.to_array(t) for t in onnx.load(str(graph)).graph.initializer if t.data_type == 3]
    assert weights and max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    x = _signal(16000 * 2 + 7, 9)
    assert np.abs(np.exp(tiny_whisper_model.log_probs(x)) - np.exp(q.log_probs(x))).max() < 0.1
    monkeypatch.setattr(onnx_backend, "int8_saturates", lambda: False)
    load_model(tiny_whisper_model.name, device="cpu", backend="onnxruntime", int8=True)
    assert len(list(graphs.glob("rest-int8-*.onnx"))) == 2  # 8-bit weights: another graph


def test_when_int8_weights_cannot_be_made_the_default_runs_float32(own_cache, tiny_whisper_model, monkeypatch):
    """A failed quantisation (a full or read-only cache, a tool error) keeps the float32 export
    and, for the default precision, runs it; int8 asked for by name is refused on ONNX Runtime."""
    import onnxruntime.quantization

    from asrlive import onnx_backend

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", broken)
    monkeypatch.setattr(onnx_backend, "int8_saturates", lambda: False)  # "auto" asks for int8 on any CPU
    said = []
    auto = load_model(tiny_whisper_model.name, device="cpu", backend="auto", int8=None, progress=said.append)
    assert auto.backend == "onnxruntime" and auto.precision == "float32"
    assert any("int8 weights cannot be made" in m and "running float32" in m for m in said), said
    said.clear()
    load_model(tiny_whisper_model.name, device="cpu", backend="auto", int8=None, progress=said.append)
    assert not any("preparing" in m for m in said)  # the float32 export was kept, not redone
    with pytest.raises(ModelLoadError, match="int8 weights cannot be made"):
        load_model(tiny_whisper_model.name, device="cpu", backend="onnxruntime", int8=True)
    assert load_model(tiny_whisper_model.name, device="cpu", backend="auto", int8=True).backend == "torch"


def test_where_onnxruntime_cannot_run(own_cache, tiny_whisper_model):
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


def test_onnxruntime_reads_the_silence_after_as_torch_does(own_cache, tiny_whisper_silence_model):
    ort = load_model(tiny_whisper_silence_model.name, device="cpu", backend="onnxruntime", threads=1)
    x = _signal(16000 * 2 + 99, 4)
    np.testing.assert_allclose(ort.log_probs(x), tiny_whisper_silence_model.log_probs(x), atol=1e-3)
    plan = ChunkPlan.from_settings(ort.geometry, ChunkSettings(320, 1000, 320))
    np.testing.assert_allclose(stream_samples(ort, x, plan).log_probs,
                               stream_samples(tiny_whisper_silence_model, x, plan, reuse="none").log_probs, atol=1e-3)


def test_the_export_is_redone_when_the_code_it_was_traced_from_changes(tiny_whisper_model, monkeypatch):
    """The cache key covers the source the graphs come from (this package's Whisper model and
    exporter, or transformers' modelling code and version), not only the weights; where no
    source can be read (a sourceless install) it still makes a key."""
    import inspect
    from pathlib import Path

    from asrlive import onnx_backend

    net, folder = tiny_whisper_model.model, Path(tiny_whisper_model.name)
    key = onnx_backend.export_key(net, folder)
    assert onnx_backend.export_key(net, folder) == key
    real = inspect.getsource
    monkeypatch.setattr(onnx_backend.inspect, "getsource", lambda module: real(module) + "# a change\n")
    assert onnx_backend.export_key(net, folder) != key

    def sourceless(module):
        raise OSError("could not get source code")

    monkeypatch.setattr(onnx_backend.inspect, "getsource", sourceless)
    assert onnx_backend.export_key(net, folder) not in (key, "")


def test_a_model_whose_files_cannot_be_read_for_the_key_runs_on_torch(own_cache, tiny_whisper_model, monkeypatch):
    from asrlive import onnx_backend

    def unreadable(net, folder):
        raise PermissionError(13, "Permission denied", str(folder / "head.safetensors"))

    monkeypatch.setattr(onnx_backend, "export_key", unreadable)
    assert load_model(tiny_whisper_model.name, device="cpu", backend="auto").backend == "torch"
    with pytest.raises(ModelLoadError, match="Permission denied"):
        load_model(tiny_whisper_model.name, device="cpu", backend="onnxruntime")
