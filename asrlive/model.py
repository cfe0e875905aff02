"""Loading a CTC model and running it: Hugging Face CTC models (wav2vec2, HuBERT, WavLM,
data2vec-audio) and asrlive's own Whisper-encoder CTC folders (``asrlive.whisper_ctc``; the
embedded default is one).

Hugging Face models, from a local folder or a hub id, go through the Auto classes. Weights load
from safetensors when the model has them, remote code never runs, and the network is touched
only when the user names a hub id that is not cached.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import one_line
from .geometry import Geometry
from .whisper_ctc_folder import is_whisper_ctc, read_config

EMBEDDED_MODEL_NAME = "asrlive-whisper-base-ctc"


class ModelLoadError(RuntimeError):
    """The named model cannot be used; the message says why in one line."""


def embedded_model_dir() -> Path:
    """Where the shipped default model lives: in the package when installed, in models/ in a checkout."""
    packaged = Path(__file__).resolve().parent / "embedded_model"
    if (packaged / "config.json").exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "models" / EMBEDDED_MODEL_NAME


def compute_threads(threads: int | None = None) -> int:
    """Leave a core for audio capture and the GUI: compute gets all but one unless told otherwise."""
    return threads if threads else max(1, (os.cpu_count() or 2) - 1)


def configure_torch_threads(threads: int | None = None) -> int:
    """Give torch ``compute_threads(threads)`` threads."""
    import torch

    n = compute_threads(threads)
    torch.set_num_threads(n)
    return n


# transformers asks the hub's safetensors conversion bot about a hub model's pickled weights even
# with local files only (from a background thread), and online it would ask the bot to convert
# them: asrlive wants neither. Set once, here: the environment is not for switching per load.
os.environ.setdefault("DISABLE_SAFETENSORS_CONVERSION", "1")


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def load_geometry(source: str | os.PathLike | None = None) -> Geometry:
    """The model's geometry from its config files alone (no weights loaded)."""
    where, local = _resolve(source)
    if local and is_whisper_ctc(Path(where)):
        return _whisper_ctc_geometry(Path(where))
    _quiet_transformers()
    return _hf_geometry(where, local, _hf_config(where, local))


def _resolve(source: str | os.PathLike | None) -> tuple[str, bool]:
    """Where the model is, a local folder (``~`` expanded) or a hub id, and whether it is local.
    A hub id that is not cached must be fetchable: checked here, before transformers loads."""
    if source is None:
        path = embedded_model_dir()
        if not (path / "config.json").exists():
            raise ModelLoadError(f"the embedded model is missing from {path}; pass --model")
    else:
        try:
            path = Path(source).expanduser()
        except RuntimeError as exc:  # "~nosuchuser/..."
            raise ModelLoadError(f"{source}: {one_line(exc)}") from exc
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"{path}: a model is a folder with config.json, not a file")
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path}: not a model folder (no config.json)")
        return str(path), True
    if not _looks_like_hub_id(str(source)):
        raise ModelLoadError(f"{source}: no such folder, and not a hub id of the form 'org/name'")
    try:
        _check_hub(str(source))
    except ValueError as exc:  # huggingface_hub's check of the id's characters
        raise ModelLoadError(f"{source}: not a valid hub id ({one_line(exc)})") from exc
    return str(source), False


def _fetch(loader, where: str, local: bool, **kw):
    """``loader.from_pretrained(where)`` from the files at hand, the hub asked only where a hub
    id's files are not cached: asking it about a cached model costs requests per file (and
    retries for about a minute where it cannot be reached, forever where it never answers).
    ``local``: never ask the hub."""
    try:
        return loader.from_pretrained(where, local_files_only=True, trust_remote_code=False, **kw)
    except OSError:
        if local:
            raise
    try:
        return loader.from_pretrained(where, trust_remote_code=False, **kw)
    except OSError as exc:
        raise ModelLoadError(f"{where}: not in the local Hugging Face cache, and the hub does not give it "
                             f"({one_line(exc)})") from exc


def _in_cache(where: str, filename: str) -> bool:
    """Whether the Hugging Face cache holds ``filename`` of hub model ``where``."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(where, filename), str)


def _cache_knows(where: str, filename: str) -> bool:
    """Whether the Hugging Face cache holds ``filename`` of hub model ``where``, or remembers
    that the model has no such file."""
    from huggingface_hub import try_to_load_from_cache

    return try_to_load_from_cache(where, filename) is not None


def _hf_config(where: str, local: bool):
    """A Hugging Face model's config, refused where its frames would not be the conv stack's."""
    from transformers import AutoConfig

    try:
        config = _fetch(AutoConfig, where, local)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{where}: unreadable model config ({one_line(exc)})") from exc
    if getattr(config, "add_adapter", False):
        # The adapter's padded strided convs subsample the conv stack's frames again: the
        # geometry, and every window's frame count streaming relies on, would be wrong.
        raise ModelLoadError(f"{where}: add_adapter=True in the config: the adapter subsamples the conv "
                             "front end's frames, which asrlive cannot stream frame-exactly")
    return config


# What wav2vec2's feature extractor does when a model has no preprocessor_config.json.
DEFAULT_SAMPLE_RATE, DEFAULT_DO_NORMALIZE = 16000, True


def _hf_geometry(where: str, local: bool, config) -> Geometry:
    """``config``'s geometry, with the sample rate and input normalisation of the model's
    feature extractor (``DEFAULT_SAMPLE_RATE`` and ``DEFAULT_DO_NORMALIZE`` where it has none)."""
    from transformers import AutoFeatureExtractor

    # A hub model known to have no preprocessor_config.json is not asked about it again.
    try:
        extractor = _fetch(AutoFeatureExtractor, where, local or _cache_knows(where, "preprocessor_config.json"))
        rate = int(getattr(extractor, "sampling_rate", DEFAULT_SAMPLE_RATE))
        norm = bool(getattr(extractor, "do_normalize", False))
    except (OSError, ValueError, ModelLoadError):
        rate, norm = DEFAULT_SAMPLE_RATE, DEFAULT_DO_NORMALIZE
    try:
        return Geometry.from_config(config, sample_rate=rate, do_normalize=norm)
    except ValueError as exc:
        raise ModelLoadError(f"{where}: {exc}") from exc


def _symbols_by_id(vocab_map: dict[str, int]) -> list[str]:
    """Symbol of each output index ('' where the vocabulary skips one)."""
    vocab = [""] * (max(vocab_map.values()) + 1)
    for sym, i in vocab_map.items():
        vocab[i] = sym
    return vocab


def _whisper_ctc_geometry(folder: Path) -> Geometry:
    try:
        config = read_config(folder)
        return Geometry(kernels=tuple(config["conv_kernel"]), strides=tuple(config["conv_stride"]),
                        sample_rate=int(config["sampling_rate"]), do_normalize=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{folder}: unreadable asrlive model config ({type(exc).__name__}: {exc})") from exc


def _load_whisper_ctc(folder: Path, device: str, half: bool) -> CTCModel:
    import torch

    from .whisper_ctc import load_whisper_ctc, most_frames

    geometry = _whisper_ctc_geometry(folder)
    try:
        vocab_map = json.loads((folder / "vocab.json").read_text())
        model, config = load_whisper_ctc(folder)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"{folder}: the model does not load ({one_line(exc)})") from exc
    vocab = _symbols_by_id(vocab_map)
    if len(vocab) != config["head"]["vocab_size"] or config["blank"] not in vocab_map:
        raise ModelLoadError(f"{folder}: vocab.json does not match the model's {config['head']['vocab_size']} outputs")
    dev = pick_device(device)
    dtype = torch.float16 if half and dev != "cpu" else torch.float32
    model.to(dev, dtype).eval()
    delim = config.get("word_delimiter")
    return CTCModel(model=model, name=str(folder), vocab=vocab, blank_id=vocab_map[config["blank"]],
                    word_delimiter=delim if delim in vocab_map else None, geometry=geometry, device=dev,
                    dtype=dtype, do_normalize=False, max_window_frames=most_frames(model))


# Feed-forward output layers stay float32: their input is a GELU output whose outlier channels
# per-tensor int8 activations clip (Whisper's fc2, wav2vec2's output_dense). Quantising the
# embedded model's fc2 layers alone costs 1.3 points of CER on held-out synthetic speech.
KEEP_FLOAT = (".fc2", ".feed_forward.output_dense")


def quantized_int8(net):
    """``net`` with its linear and LSTM layers (but ``KEEP_FLOAT``) dynamically quantised to
    int8 (CPU only): int8 weights, activations quantised per call. torch.ao's eager API is
    deprecated but still in the pinned torch; its fbgemm kernels make this fast on x86."""
    import warnings

    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    chosen = {name: default_dynamic_qconfig for name, module in net.named_modules()
              if isinstance(module, (torch.nn.Linear, torch.nn.LSTM)) and not name.endswith(KEEP_FLOAT)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(net, chosen, dtype=torch.qint8)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"device '{requested}' asked for, but CUDA is not available here")
        if requested == "mps" and not torch.backends.mps.is_available():
            raise ModelLoadError("device 'mps' asked for, but MPS is not available here")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


# Context on each side of a frame when audio longer than one pass is read offline: past 4 s the
# embedded model's output no longer changes with more (its card: "Left context").
LONG_FORM_CONTEXT_FRAMES = 250


@dataclass
class CTCModel:
    """A loaded CTC acoustic model with what streaming needs to know about it."""

    model: object
    name: str
    vocab: list[str]
    blank_id: int
    word_delimiter: str | None
    geometry: Geometry
    device: str
    dtype: object
    do_normalize: bool
    int8: bool = False
    backend: str = "torch"  # what runs the network: "torch" or "onnxruntime"
    max_window_frames: int | None = None  # the most frames one forward pass takes (None: no limit)

    def __post_init__(self) -> None:
        # Inference on one model from two threads at once is not safe on every backend.
        self._lock = threading.Lock()

    @property
    def precision(self) -> str:
        """The weights' arithmetic: "int8", "float16" or "float32"."""
        return "int8" if self.int8 else str(self.dtype).removeprefix("torch.")

    @property
    def sample_rate(self) -> int:
        return self.geometry.sample_rate

    def log_probs(self, samples: np.ndarray) -> np.ndarray:
        """Per-frame log-probabilities (frames x vocab, float32) for one window of samples."""
        import torch

        n_frames = self.geometry.frames(len(samples))
        if n_frames == 0:
            return np.zeros((0, len(self.vocab)), np.float32)
        if self.max_window_frames is not None and n_frames > self.max_window_frames:
            return self._long_form_log_probs(samples)
        x = np.asarray(samples, dtype=np.float32)
        if self.do_normalize:
            # What the model's feature extractor does: zero mean, unit variance over the window.
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)

        def logits():
            inputs = torch.from_numpy(np.ascontiguousarray(x))[None].to(self.device, self.dtype)
            return self.model(inputs).logits[0]

        return self.infer(logits, n_frames)

    def _long_form_log_probs(self, samples: np.ndarray) -> np.ndarray:
        """Audio longer than one pass takes, in the longest windows the model takes, each frame
        from the window where it has LONG_FORM_CONTEXT_FRAMES of context on both sides (less at
        the ends): frame-exact, as streaming is."""
        from .planner import ChunkPlan

        context = LONG_FORM_CONTEXT_FRAMES
        plan = ChunkPlan(self.geometry, self.max_window_frames - 2 * context, context, context)
        parts = []
        for w in plan.windows(self.geometry.frames(len(samples))):
            lp = self.log_probs(samples[w.start_sample:w.end_sample])
            parts.append(lp[w.commit_from - w.first_frame:w.commit_to - w.first_frame])
        return np.concatenate(parts)

    def infer(self, logits, n_frames: int) -> np.ndarray:
        """Log-probabilities (frames x vocab, float32) of ``logits()``, a (frames, vocab) tensor
        made by this model, which is called under the model's lock and inference mode."""
        import torch

        with self._lock, torch.inference_mode():
            out = torch.log_softmax(logits().float(), dim=-1).cpu().numpy()
        if out.shape[0] != n_frames:
            raise RuntimeError(f"model gave {out.shape[0]} frames for a window the geometry says has {n_frames}")
        return out


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not source.startswith((".", "~"))


HUB_PROBE_SECONDS = 3.0


def _hub_reachable(endpoint: str, timeout: float = HUB_PROBE_SECONDS) -> bool:
    """Whether a TCP connection to the hub (or the proxy in front of it) opens within
    ``timeout``. Runs on a daemon thread so a hanging name lookup is bounded too."""
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    url = urlsplit(endpoint)
    proxy = None if urllib.request.proxy_bypass(url.hostname or "") else urllib.request.getproxies().get(url.scheme)
    target = urlsplit(proxy) if proxy else url
    port = target.port or (443 if target.scheme == "https" else 80)
    opened = threading.Event()

    def probe() -> None:
        try:
            socket.create_connection((target.hostname, port), timeout=timeout).close()
            opened.set()
        except OSError:
            pass

    prober = threading.Thread(target=probe, name="asrlive-hub-probe", daemon=True)
    prober.start()
    prober.join(timeout)
    return opened.is_set()


def _check_hub(where: str) -> None:
    """Fail at once, in one line, when a hub model that is not cached cannot be fetched:
    without this, huggingface_hub retries for about 30 s and logs each retry."""
    from huggingface_hub import constants

    if _in_cache(where, "config.json"):
        return
    if constants.HF_HUB_OFFLINE:
        raise ModelLoadError(f"{where}: not in the local Hugging Face cache, and the hub is off (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set)")
    if not _hub_reachable(constants.ENDPOINT):
        raise ModelLoadError(f"{where}: not in the local Hugging Face cache, and the hub "
                             f"({constants.ENDPOINT}) cannot be reached")


# What may run a model: "auto" is ONNX Runtime where it can (a model from a local folder on the
# CPU, not in half precision; docs/performance.md), else torch.
BACKENDS = ("auto", "torch", "onnxruntime")
DEFAULT_BACKEND = "auto"
# Weights' precision, as load_model's ``int8``: "auto" is int8 where ONNX Runtime runs the model
# with full 8-bit weights, else float32 (on an x86 CPU without VNNI the weights would take 7 bits,
# at over a point of CER). The default is float32: with the 4 s left context, int8 costs 0.53
# points of CER on realspeech at hop 320 ms, past the 0.3-point rule (docs/performance.md).
PRECISIONS = {"auto": None, "float32": False, "int8": True}
DEFAULT_PRECISION = "float32"


def load_model(source: str | os.PathLike | None = None, device: str = "auto", half: bool = False,
               allow_pickle: bool = False, int8: bool | None = False, backend: str = "torch",
               threads: int | None = None, progress=None) -> CTCModel:
    """Load a CTC model from a local folder or a hub id (``None``: the embedded default).

    Weights load from safetensors only, unless ``allow_pickle``: a pickled checkpoint can run
    arbitrary code when unpickled. ``int8``: dynamic int8 quantisation (CPU only), by whichever
    backend runs the network; None: int8 if ONNX Runtime runs it (``PRECISIONS``). ``backend``:
    one of BACKENDS; ONNX Runtime runs ``threads`` threads (``compute_threads``), and
    ``progress(message)`` hears about a first-time export."""
    if int8 and device not in ("auto", "cpu"):
        raise ModelLoadError(f"int8 runs on the CPU only (device {device!r} asked for); on a GPU use half precision")
    if backend not in BACKENDS:
        raise ModelLoadError(f"backend {backend!r}: choose from {', '.join(BACKENDS)}")
    try:
        model = _load_float(source, "cpu" if int8 else device, half, allow_pickle)
    except ModelLoadError:
        raise
    except Exception as exc:  # damaged files make the format libraries raise almost anything
        raise ModelLoadError(f"{source or embedded_model_dir()}: the model does not load ({one_line(exc)})") from exc
    if backend != "torch":
        _use_onnxruntime(model, backend == "onnxruntime", compute_threads(threads), int8, progress)
    if int8 and model.backend == "torch":
        model.model = quantized_int8(model.model)
    model.int8 = model.model.int8 if model.backend == "onnxruntime" else bool(int8)
    return model


def _use_onnxruntime(model: CTCModel, required: bool, threads: int, int8: bool | None, progress) -> None:
    """Run ``model``'s network on ONNX Runtime where it can; ``required``: fail where it cannot.
    ``int8`` as load_model's: None (precision "auto") takes int8 weights where they are
    full 8-bit and can be made, float32 on ONNX Runtime in their place elsewhere."""
    import torch

    from .onnx_backend import Int8Unavailable, OnnxUnavailable, int8_saturates, on_onnxruntime

    folder = Path(model.name)
    if not folder.is_dir() or model.device != "cpu" or model.dtype != torch.float32:
        if required:
            raise ModelLoadError("ONNX Runtime runs models from a local folder on the CPU only, not in half "
                                 "precision; use --backend torch")
        return
    # 7-bit weights cost over a point of CER (docs/performance.md): float32 by default there.
    wanted = int8 if int8 is not None else not int8_saturates()
    try:
        try:
            net = on_onnxruntime(model.model, folder, threads, wanted, progress)
        except Int8Unavailable as exc:
            if int8:  # int8 asked for by name: not float32 in its place
                raise
            if progress is not None:
                progress(f"{exc}; running float32")
            net = on_onnxruntime(model.model, folder, threads, False, progress)
        model.model, model.backend = net, "onnxruntime"
    except OnnxUnavailable as exc:
        if required:
            raise ModelLoadError(str(exc)) from exc
        if progress is not None:
            progress(f"{exc}; running on torch")


def _load_float(source: str | os.PathLike | None = None, device: str = "auto", half: bool = False,
               allow_pickle: bool = False) -> CTCModel:
    where, local = _resolve(source)
    if local and is_whisper_ctc(Path(where)):
        return _load_whisper_ctc(Path(where), device, half)
    import torch
    from transformers import AutoModelForCTC, AutoTokenizer
    from transformers.models.auto.modeling_auto import MODEL_FOR_CTC_MAPPING_NAMES

    _quiet_transformers()
    config = _hf_config(where, local)
    # Converted checkpoints often have no architectures: their model type decides, and the
    # weights must then hold the CTC head (checked once they load).
    if config.model_type not in MODEL_FOR_CTC_MAPPING_NAMES or (
        config.architectures and not any(a.endswith("ForCTC") for a in config.architectures)
    ):
        raise ModelLoadError(f"{where}: not a CTC model (model type '{config.model_type}', "
                             f"architectures {config.architectures})")
    try:
        tokenizer = _fetch(AutoTokenizer, where, local)
    except (OSError, ValueError, TypeError, ModelLoadError) as exc:
        raise ModelLoadError(f"{where}: no usable CTC vocabulary (vocab.json / tokenizer files)") from exc
    if getattr(tokenizer, "pad_token_id", None) is None or not tokenizer.get_vocab():
        raise ModelLoadError(f"{where}: the tokenizer has no vocabulary or no pad (blank) token")
    geometry = _hf_geometry(where, local, config)

    dev = pick_device(device)
    dtype = torch.float16 if half and dev != "cpu" else torch.float32
    if not allow_pickle and _pickled_only(where, local):
        raise ModelLoadError(f"{where}: no .safetensors weights; pickled weights (.bin) are refused "
                             "unless --allow-pickle is given (they can run code when loaded)")
    try:
        # Mismatched weights load random-initialised, to be named below rather than in the
        # report transformers would log (which _quiet_transformers hides).
        model, info = _fetch(AutoModelForCTC, where, local, use_safetensors=None if allow_pickle else True,
                             dtype=dtype, output_loading_info=True, ignore_mismatched_sizes=True)
    except ModelLoadError:
        raise
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{where}: weights do not load ({one_line(exc)})") from exc
    _check_loaded(where, model, info)
    model.to(dev).eval()

    vocab_map = tokenizer.get_vocab()
    vocab = _symbols_by_id(vocab_map)
    out_dim = model.config.vocab_size
    if len(vocab) < out_dim:
        vocab += [f"<{i}>" for i in range(len(vocab), out_dim)]
    vocab = vocab[:out_dim]
    delim = getattr(tokenizer, "word_delimiter_token", None)
    return CTCModel(
        model=model,
        name=where,
        vocab=vocab,
        blank_id=int(tokenizer.pad_token_id),
        word_delimiter=delim if delim in vocab_map else None,
        geometry=geometry,
        device=dev,
        dtype=dtype,
        do_normalize=bool(geometry.do_normalize),
    )


SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def _pickled_only(where: str, local: bool) -> bool:
    """Whether the weights at hand are pickled only: a local folder without .safetensors, or a
    hub model whose cache holds pickled weights and no safetensors ones (to be refused as such,
    not looked for on the hub as if the model were not cached)."""
    if local:
        return not any(Path(where).glob("*.safetensors"))
    return (any(_in_cache(where, name) for name in PICKLED_WEIGHTS)
            and not any(_in_cache(where, name) for name in SAFE_WEIGHTS))


def _check_loaded(where: str, model, info: dict) -> None:
    """Refuse a model that would run on random weights: ones the checkpoint has in another shape
    than the config's, or a CTC head the checkpoint lacks."""
    mismatched = {key: (found, wanted) for key, found, wanted in info["mismatched_keys"]}
    if mismatched:
        order = {key: i for i, key in enumerate(model.state_dict())}
        first = min(mismatched, key=lambda key: order.get(key, len(order)))
        found, wanted = mismatched[first]
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        raise ModelLoadError(f"{where}: the weights do not fit the config: {first} is {tuple(found)} in the "
                             f"weights, {tuple(wanted)} by the config{more}")
    if any(key.startswith("lm_head.") for key in info["missing_keys"]):
        raise ModelLoadError(f"{where}: the weights have no CTC head (lm_head), which would be random: "
                             "not a model fine-tuned for CTC")
