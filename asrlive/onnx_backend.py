"""ONNX Runtime for asrlive's Whisper-encoder CTC models and transformers' wav2vec2-family CTC
models on the CPU, in float32 or with int8 weights.

A model is exported once per weights and library version with torch.onnx's TorchScript exporter
(dynamic length axes; torch 2.13's dynamo exporter fixes an LSTM's length to the example's) and
the graphs are cached. A Whisper-encoder model becomes two graphs, the front end (samples → conv
features) and the rest (features with positions → logits), so the worker can still cache
features per frame (``asrlive.window_reuse``); a transformers model becomes one graph
(input values → logits). ONNX Runtime runs them 1.5× (the embedded model) to 2× (wav2vec2-large)
faster than eager torch with the same float32 arithmetic (``docs/performance.md``). Everything
runs in ONNX Runtime's threads: mixing its thread pool with torch's on the same cores costs more
than the front end itself. Gradients (the RF tools) and the transformers pipeline use the torch
network, ``torch_net``.

With ``int8`` the graph's weighted matrix products and LSTMs (but ``KEEP_FLOAT``'s layers) are
dynamically quantised by ONNX Runtime's own tool: int8 weights, activations quantised per call
(VNNI kernels where the CPU has them). The front end stays float32: it is a few per cent of a
window and the cache reuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import one_line
from .whisper_ctc import CTCOutput, WhisperCTC, whisper_ctc_logits

OPSET = 17


class OnnxUnavailable(RuntimeError):
    """ONNX Runtime (or the exporter's packages) cannot be used here; the message says why."""


def cache_dir() -> Path:
    """Where exported graphs are kept: ``$ASRLIVE_CACHE_DIR``, else ``$XDG_CACHE_HOME/asrlive``."""
    base = os.environ.get("ASRLIVE_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asrlive"
    return Path(base) / "onnx"


def export_key(net: torch.nn.Module, folder: Path) -> str:
    """A name for the exported graphs of ``net``, loaded from ``folder``: its config and weights,
    the torch and ONNX Runtime versions, and the source of the code the graphs are traced from
    (this module and the one defining ``net``'s class: asrlive's Whisper model, or transformers'
    modelling code, which changes with its version), so a change to any of them exports again."""
    import onnxruntime

    digest = hashlib.sha256(f"{torch.__version__} {onnxruntime.__version__} {OPSET}".encode())
    for name in sorted({__name__, type(net).__module__}):
        digest.update(_code_of(sys.modules[name]).encode())
    for path in sorted(folder.glob("*.json")) + sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(path.name.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def _code_of(module) -> str:
    """A module's source, or where none is readable (a sourceless or compiled install) its name
    and its package's version; with the package's version either way, for code it shares."""
    package = sys.modules.get(module.__name__.partition(".")[0])
    version = f"{module.__name__} {getattr(package, '__version__', '')}"
    try:
        return version + inspect.getsource(module)
    except (OSError, TypeError):
        return version


class _Part(torch.nn.Module):
    """One method of the network as a module, for the exporter (the network a submodule, so its
    weights are the graph's parameters)."""

    def __init__(self, net: torch.nn.Module, method: str):
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = getattr(self.net, self.method)(x)
        return out.logits if hasattr(out, "logits") else out


def _export_one(net: torch.nn.Module, method: str, example: torch.Tensor, path: Path, name: str) -> None:
    """Export ``method`` to ``path``, quietly (the exporter prints progress and warnings)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    try:
        logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            # The TorchScript exporter: torch 2.13's dynamo exporter fixes the LSTM's length to
            # the example's.
            torch.onnx.export(_Part(net, method).eval(), (example,), str(path), input_names=[name], output_names=["out"],
                              dynamo=False, dynamic_axes={name: {1: "length"}, "out": {1: "frames"}}, opset_version=OPSET)
    finally:
        logger.setLevel(level)


def export(net: torch.nn.Module, folder: Path) -> None:
    """Write ``net``'s graphs into ``folder``: ``front.onnx`` and ``rest.onnx`` for a
    Whisper-encoder model, ``model.onnx`` for a transformers one (each with its weights file).
    Atomically: they are written beside it and the folder renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".export-") as tmp:
        if isinstance(net, WhisperCTC):
            _export_one(net, "features", torch.zeros(1, 16000), Path(tmp) / "front.onnx", "samples")
            _export_one(net, "from_features", torch.zeros(1, 50, net.encoder.shape.d_model), Path(tmp) / "rest.onnx",
                        "frames")
        else:
            _export_one(net, "forward", torch.zeros(1, 16000), Path(tmp) / "model.onnx", "input_values")
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / _LAST[isinstance(net, WhisperCTC)]).exists():  # not another process that got there first
                raise
        os.makedirs(tmp, exist_ok=True)  # for TemporaryDirectory's clean-up


# The graph written last, whose presence says an export is complete, and the one int8 weights
# are made for: a transformers model's, a Whisper-encoder model's.
_LAST = {False: "model.onnx", True: "rest.onnx"}


class Int8Unavailable(OnnxUnavailable):
    """The int8 graph cannot be made or run here (the float32 graphs may still run)."""


def _keeps_float(node_name: str) -> bool:
    """Whether the graph node ``node_name`` belongs to a module that ``KEEP_FLOAT`` keeps float32:
    the TorchScript exporter names a node by its module scope with "/" for "." ("_N" added to
    repeated scope names; a Whisper-encoder graph has the leaf names only, e.g. "/fc2_3/MatMul"),
    then the operator."""
    from .model import KEEP_FLOAT

    scope = ".".join(re.sub(r"_\d+$", "", part) for part in node_name.split("/")[:-1])
    return scope.endswith(KEEP_FLOAT)


def int8_saturates() -> bool:
    """Whether ONNX Runtime's uint8 x int8 kernels may saturate here: on x86 without VNNI they
    add products in pairs into int16, which full-range int8 weights can overflow. A CPU whose
    flags cannot be read counts as such."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return True
    return "avx512_vnni" not in flags and "avx_vnni" not in flags


# What the int8 graph is made with; its file name carries a digest of them, so a change makes a
# new graph instead of reusing one made with other settings.
QUANT_OPS = ("MatMul", "LSTM")


def int8_graph(path: Path, progress=None) -> Path:
    """``path``'s graph with int8 weights beside it, made once: weighted MatMuls and LSTMs
    quantised dynamically, ``KEEP_FLOAT``'s layers and activation-by-activation products
    (attention) left float32. Where the kernels may saturate (``int8_saturates``) the weights
    take 7 bits, as ONNX Runtime advises. ``progress(message)`` is told before the graph is made.
    Raises ``Int8Unavailable`` when it cannot be made."""
    from .model import KEEP_FLOAT

    seven_bit = int8_saturates()
    settings = hashlib.sha256(repr((KEEP_FLOAT, QUANT_OPS, seven_bit, "MatMulConstBOnly")).encode()).hexdigest()[:8]
    out = path.with_name(f"{path.stem}-int8{'-7bit' if seven_bit else ''}-{settings}.onnx")
    if out.exists():
        return out
    if progress is not None:
        progress(f"making int8 weights for {path.name} (once) in {path.parent}")
    # The tool logs advice through the root logger, which would install a stderr handler for the
    # whole process (logging.basicConfig) if the root had none: a silent handler prevents that.
    silent = logging.NullHandler()
    root = logging.getLogger()
    root.addHandler(silent)
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graph = onnx.load(str(path), load_external_data=False)
        keep = [node.name for node in graph.graph.node if _keeps_float(node.name)]
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".int8-") as tmp:
            staged = Path(tmp) / out.name
            quantize_dynamic(str(path), str(staged), weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANT_OPS),
                             nodes_to_exclude=keep, reduce_range=seven_bit, extra_options={"MatMulConstBOnly": True})
            os.replace(staged, out)
    except Exception as exc:  # the tool and the file system raise many kinds; each means: no int8 here
        raise Int8Unavailable(f"int8 weights cannot be made for {path.name} ({one_line(exc)})") from exc
    finally:
        root.removeHandler(silent)
    return out


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    # Idle threads sleep instead of spinning, so they leave the cores to audio, GUI and decoder.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x.numpy(), np.float32)})[0])


class OnnxWhisperCTC:
    """A Whisper-encoder CTC model run by ONNX Runtime, with ``WhisperCTC``'s inference interface."""

    def __init__(self, net: WhisperCTC, folder: Path, threads: int, int8_rest: Path | None = None):
        """``int8_rest``: the rest's int8 graph (``int8_graph``) to run instead of its float32 one."""
        self._front = _session(folder / "front.onnx", threads)
        self._rest = _session(int8_rest or folder / "rest.onnx", threads)
        self.int8 = int8_rest is not None
        self.torch_net = net
        self.encoder = net.encoder
        self.head = net.head
        self.read_layer = net.read_layer
        self.silence_after = net.silence_after

    def features(self, samples: torch.Tensor) -> torch.Tensor:
        return _run(self._front, samples)

    def from_features(self, frames: torch.Tensor) -> torch.Tensor:
        return _run(self._rest, frames)

    def __call__(self, samples: torch.Tensor) -> CTCOutput:
        return CTCOutput(whisper_ctc_logits(self, samples))


class OnnxTransformersCTC:
    """A transformers CTC model run by ONNX Runtime: input values → ``CTCOutput`` with logits."""

    def __init__(self, net: torch.nn.Module, folder: Path, threads: int, int8_model: Path | None = None):
        """``int8_model``: the model's int8 graph (``int8_graph``) to run instead of its float32 one."""
        self._model = _session(int8_model or folder / "model.onnx", threads)
        self.int8 = int8_model is not None
        self.torch_net = net
        self.config = net.config

    def __call__(self, input_values: torch.Tensor) -> CTCOutput:
        return CTCOutput(_run(self._model, input_values))


def on_onnxruntime(net: torch.nn.Module, folder: Path, threads: int, int8: bool = False, progress=None):
    """``net`` (loaded from model folder ``folder``) on ONNX Runtime, with int8 weights if
    ``int8``, exporting it first unless the cache has it; ``progress(message)`` is told before an
    export or quantisation (seconds to a minute). Raises ``Int8Unavailable`` where only the int8
    graph fails (the float32 graphs are kept), ``OnnxUnavailable`` where ONNX Runtime cannot run
    the model."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise OnnxUnavailable(f"onnxruntime is not installed ({exc})") from exc
    whisper = isinstance(net, WhisperCTC)
    wrap = OnnxWhisperCTC if whisper else OnnxTransformersCTC
    try:
        graphs = cache_dir() / export_key(net, folder)
    except OSError as exc:  # the model files cannot be read for the key: torch reads them its own way
        raise OnnxUnavailable(f"ONNX Runtime cannot run {folder.name} ({one_line(exc)})") from exc

    def load():
        return wrap(net, graphs, threads, int8_graph(graphs / _LAST[whisper], progress) if int8 else None)

    if (graphs / _LAST[whisper]).exists():
        try:
            return load()
        except Int8Unavailable:
            raise
        except Exception:  # a damaged cache (ONNX Runtime raises its own kinds): export again
            shutil.rmtree(graphs, ignore_errors=True)
    if progress is not None:
        progress(f"preparing {folder.name} for ONNX Runtime (once per model and version) in {graphs}")
    try:
        export(net, graphs)
        return load()
    except Int8Unavailable:
        raise
    except Exception as exc:  # the exporter and the runtime raise many kinds; each means: stay on torch
        raise OnnxUnavailable(f"ONNX Runtime cannot run {folder.name} ({one_line(exc)})") from exc
