"""Command line: ``asrlive rf | transcribe | devices | gui``."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from .decoding import DECODERS, DEFAULT_DECODER, DecoderSpec, decoder_spec, model_folder
from .export import FORMATS
from .planner import ChunkPlan, ChunkSettings
from .model import BACKENDS, DEFAULT_BACKEND, DEFAULT_PRECISION, PRECISIONS
from .window_reuse import DEFAULT_REUSE, REUSE

if TYPE_CHECKING:
    import numpy as np

    from .model import CTCModel
    from .session import LiveSession

EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_MODEL = 4
EXIT_DEVICE = 5


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error, instead of the usage block."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"asrlive: error: {message} (see {self.prog} --help)\n")


class CLIError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got '{text}'")
    return values


def _cmd_rf(args: argparse.Namespace) -> int:
    from .geometry import Geometry, format_table, layer_fields
    from .model import ModelLoadError, load_geometry

    if (args.kernels is None) != (args.strides is None):
        raise CLIError("--kernels and --strides go together", EXIT_USAGE)
    if args.kernels is not None:
        if args.model is not None:
            raise CLIError("give either --model or --kernels/--strides, not both", EXIT_USAGE)
        try:
            fields = layer_fields(args.kernels, args.strides, args.fs)
        except ValueError as exc:
            raise CLIError(str(exc), EXIT_USAGE) from exc
        geometry = Geometry(tuple(args.kernels), tuple(args.strides), args.fs)
        title = f"kernels {args.kernels}, strides {args.strides}, {args.fs} Hz"
    else:
        try:
            geometry = load_geometry(args.model)
        except ModelLoadError as exc:
            raise CLIError(str(exc), EXIT_MODEL) from exc
        fields = geometry.layers
        title = f"model {args.model or 'embedded default'}"
    if args.empirical or args.sensitivity:
        if args.kernels is not None:
            raise CLIError("--empirical and --sensitivity measure a model: use --model, not --kernels", EXIT_USAGE)
        return _rf_measured(args, geometry)
    if args.json:
        record = geometry.as_dict()
        record["source"] = title
        print(json.dumps(record, indent=2))
        return 0
    print(f"Receptive field: {title}")
    print(format_table(fields))
    print(f"conv RF {geometry.rf} samples ({geometry.rf * 1000 / geometry.sample_rate:.2f} ms), "
          f"frame step {geometry.jump} samples ({geometry.frame_ms:.2f} ms, {geometry.frame_rate:.2f} frames/s)")
    if geometry.pos_conv_kernel:
        print(f"positional conv: {geometry.pos_conv_kernel} frames -> {geometry.rf_with_pos_conv} samples "
              f"({geometry.rf_with_pos_conv * 1000 / geometry.sample_rate:.0f} ms) before attention, "
              "which sees the whole window")
    if geometry.feat_extract_norm == "group":
        print("feat_extract_norm=group: GroupNorm over time in conv layer 0 makes every frame depend on the whole window")
    if geometry.do_normalize:
        print("do_normalize=True: per-window input normalisation makes every frame depend on the whole window")
    return 0


def _analysis_audio(args: argparse.Namespace, sample_rate: int) -> np.ndarray:
    import numpy as np

    from .audio.files import AudioFileError, read_file
    from .synth import Voice, synthesize

    if args.audio is not None:
        try:
            return read_file(args.audio, sample_rate)
        except AudioFileError as exc:
            raise CLIError(str(exc), EXIT_BAD_INPUT) from exc
    # Held-out text, two voices: about six seconds of speech.
    return np.concatenate([
        synthesize("A FIGURE WITH CURVES ALWAYS OFFERS A LOT OF INTERESTING ANGLES", Voice("en-us", words_per_minute=160), sample_rate),
        synthesize("NO ONE IS FIT TO BE TRUSTED WITH POWER", Voice("en-gb", "m4", 150), sample_rate),
    ])


def _rf_measured(args: argparse.Namespace, geometry) -> int:
    from . import rf_analysis as rfa
    from .model import ModelLoadError, configure_torch_threads, load_model

    _check_threads(args)
    if args.sensitivity and args.frames < 4:
        raise CLIError(f"--frames must be at least 4, got {args.frames}", EXIT_USAGE)
    if args.audio is not None:
        _check_audio(args.audio)
    configure_torch_threads(args.threads)
    try:
        model = load_model(args.model, device="cpu")
    except ModelLoadError as exc:
        raise CLIError(str(exc), EXIT_MODEL) from exc
    audio = _analysis_audio(args, geometry.sample_rate)
    n = geometry.frames(len(audio))
    if n < 10 or (args.empirical and rfa.locality_edit_start(geometry, n) >= len(audio)):
        raise CLIError(f"audio too short for analysis: {len(audio) / geometry.sample_rate:.2f} s "
                       f"({n} frames)", EXIT_BAD_INPUT)
    if model.max_window_frames is not None and n > model.max_window_frames:
        # The measurements run the network on the whole clip at once (gradients, context sweeps).
        raise CLIError(f"audio too long for analysis: {n} frames, and the model takes at most "
                       f"{model.max_window_frames} in one pass", EXIT_BAD_INPUT)
    record: dict = {"model": model.name, "analytic": geometry.as_dict(), "audio_seconds": round(len(audio) / geometry.sample_rate, 3)}
    lines: list[str] = []
    if args.empirical:
        probe = rfa.locality_probe(model, audio)
        measured = probe["measured"]
        record["empirical"] = measured
        record["conv_feature_change_outside_rf"] = probe["conv_feature_change_outside_rf"]
        record["output_change_by_distance"] = probe["output_change_by_distance"]
        lines.append(f"Analytic conv RF {geometry.rf} samples ({geometry.rf * 1000 / geometry.sample_rate:.1f} ms), "
                     f"step {geometry.jump}; window {len(audio)} samples")
        lines.append(f"{'frame':>6} {'analytic span':>16} {'conv grad span':>16} {'50% L/R ms':>14} {'90% L/R ms':>14} {'99% L/R ms':>14} {'grad != 0':>16}")
        for r in measured["frames"]:
            lines.append(
                f"{r['frame']:>6} {str(tuple(r['analytic_span'])):>16} {rfa.span_text(r['conv_gradient_span']):>16} "
                + " ".join(f"{r[f'mass{p}_left_ms']:>6.0f}/{r[f'mass{p}_right_ms']:<7.0f}" for p in (50, 90, 99))
                + f" {str(tuple(r['nonzero_span_samples'])):>16}")
        change = record["conv_feature_change_outside_rf"]
        lines.append(f"conv features of frame {probe['middle_frame']} when only samples more than "
                     f"{rfa.OUTSIDE_RF_MARGIN_S * 1000:.0f} ms outside its RF change: max relative change {change:.2e} "
                     f"({rfa.locality_verdict(change, model.geometry, model.do_normalize)})")
        lines.append("log-prob change of frame %d from a 20 ms burst d ms after its RF: %s" % (
            probe["quarter_frame"], ", ".join(f"{d:.0f} ms: {v:.3f}" for d, v in record["output_change_by_distance"])))
    if args.sensitivity:
        if len(rfa.sweepable_frames(n, rfa.sweep_reach(geometry.frame_ms), "right")) < 4:
            raise CLIError(f"audio too short for a {rfa.SWEEP_REACH_MS} ms right-context sweep", EXIT_BAD_INPUT)
        sweep = rfa.sensitivity_sweep(model, audio, args.frames)
        right, left = sweep.right, sweep.left
        rec, rec_left = rfa.recommendations(right), rfa.recommendations(left)
        record["right_context"] = [p.__dict__ for p in right]
        record["left_context"] = [p.__dict__ for p in left]
        record["recommended_right_ms"] = rec
        record["recommended_left_ms"] = rec_left
        lines.append(f"Right-context sensitivity over {sweep.right_frames} frames (left context: all):")
        lines.append(f"{'right ms':>9} {'mean KL':>10} {'agree':>7}")
        for p in right[::5] + ([right[-1]] if (len(right) - 1) % 5 else []):
            lines.append(f"{p.context_ms:>9.0f} {p.mean_kl:>10.4f} {p.agreement * 100:>6.1f}%")
        lines.append(f"Left-context sensitivity over {sweep.left_frames} frames (right context: all):")
        for p in left[::5] + ([left[-1]] if left and (len(left) - 1) % 5 else []):
            lines.append(f"{p.context_ms:>9.0f} {p.mean_kl:>10.4f} {p.agreement * 100:>6.1f}%")
        say = rfa.describe_context
        lines.append(f"Recommended right context: {say(rec['agreement_99'])} for 99% greedy agreement and KL <= 0.05; "
                     f"{say(rec['agreement_95'])} for 95% and KL <= 0.2")
        lines.append(f"Recommended left context: {say(rec_left['agreement_99'])} for 99% / KL <= 0.05; "
                     f"{say(rec_left['agreement_95'])} for 95% / KL <= 0.2")
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print("\n".join(lines))
    return 0


def _progress_printer(total_samples: int):
    def show(done: int) -> None:
        frac = min(1.0, done / max(1, total_samples))
        bar = "#" * int(frac * 30)
        print(f"\r[{bar:<30}] {frac * 100:5.1f}%", end="", file=sys.stderr, flush=True)
    return show


def _make_folder(folder: Path, flag: str) -> None:
    """Make the output folder ``folder`` names (it may exist), or a CLIError saying why not."""
    if folder.exists() and not folder.is_dir():
        raise CLIError(f"{flag} {folder}: is a file; it names a folder here", EXIT_USAGE)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"{flag} {folder}: cannot make the folder ({exc.strerror})", EXIT_USAGE) from exc
    _check_writable(folder, flag)


def _check_writable(folder: Path, flag: str) -> None:
    if not os.access(folder, os.W_OK):
        raise CLIError(f"{flag}: cannot write in {folder}", EXIT_USAGE)


def _checked_outputs(paths: list[Path], out: Path | None, ext: str, flag: str) -> list[Path | None]:
    """Where each input's output goes (``out`` is a file for one input, else a folder, made here),
    checked before the model loads: the folder is writable, no output overwrites an input, no two
    inputs write the same file."""
    if out is None:
        return [None] * len(paths)
    if len(paths) == 1 and not out.is_dir():
        targets = [out]
        if not out.parent.is_dir():
            raise CLIError(f"{flag} {out}: no such folder {out.parent}", EXIT_USAGE)
        _check_writable(out.parent, flag)
    else:
        _make_folder(out, flag)
        targets = [out / f"{p.stem}.{ext}" for p in paths]
    inputs = {p.resolve(): p for p in paths}
    writers: dict[Path, Path] = {}
    for path, target in zip(paths, targets):
        if target.resolve() in inputs:
            raise CLIError(f"{flag} {target}: would overwrite the input {inputs[target.resolve()]}", EXIT_USAGE)
        if target in writers:
            raise CLIError(f"{flag}: {writers[target]} and {path} would both write {target}", EXIT_USAGE)
        writers[target] = path
    return targets


def _render(transcript, fmt: str) -> str:
    from .export import render

    return render(fmt, transcript.text, transcript.words, transcript.as_dict())


def _save_emissions(path: Path, transcript, model) -> None:
    import numpy as np

    g = model.geometry
    tmp = path.with_name(f".{path.name}.tmp.npz")
    try:
        np.savez_compressed(tmp, log_probs=transcript.log_probs, vocab=np.array(model.vocab),
                            blank_id=model.blank_id, frame_seconds=g.frame_seconds,
                            sample_rate=g.sample_rate, rf_samples=g.rf, jump_samples=g.jump)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)  # after a failure: no half-written file left behind


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


# The bench's plan grid by default: hops and right contexts from 80 ms up, the app's left context.
BENCH_PLANS = {"chunk_ms": [80.0, 160.0, 320.0, 640.0, 1000.0], "left_ms": [ChunkSettings.left_ms],
               "right_ms": [0.0, 80.0, 160.0, 320.0, 640.0]}


def _add_model_and_plan_args(parser: argparse.ArgumentParser, plan_lists: dict[str, list[float]] | None = None) -> None:
    """The options that _model_and_plan reads; chunk defaults are the planner's. With
    ``plan_lists`` each chunk option takes comma-separated values (defaults from it)."""
    parser.add_argument("--model", help="model folder or hub id (default: the embedded model)")
    parser.add_argument("--device", default="auto", help="compute device: auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--half", action="store_true", help="float16 weights on a GPU")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help="weights' arithmetic on the CPU: float32 (the default), int8 (dynamic quantisation, on "
                        "either backend: less compute, more errors; docs/performance.md), or auto (int8 where ONNX "
                        "Runtime runs the model and the CPU has VNNI or is not x86, else float32)")
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND,
                        help="what runs the model: auto (the default: ONNX Runtime for a model from a local folder "
                        "on the CPU, exported once and cached; else torch), torch, or onnxruntime")
    parser.add_argument("--reuse", choices=REUSE, default=DEFAULT_REUSE,
                        help="what each window reuses from the ones before: none, front-end (the default; exact) "
                        "or states (also the left context's encoder states; approximate)")
    parser.add_argument("--allow-pickle", action="store_true", help="accept pickled .bin weights (trusted models only)")
    for flag, help_text in (("--chunk-ms", "hop: audio committed per window"), ("--left-ms", "left context per window"),
                            ("--right-ms", "right context (look-ahead) per window")):
        dest = flag[2:].replace("-", "_")
        if plan_lists is None:
            parser.add_argument(flag, type=float, default=getattr(ChunkSettings, dest), help=help_text)
        else:
            parser.add_argument(flag, type=_float_list, default=plan_lists[dest],
                                help=f"{help_text}; comma-separated (default {','.join(f'{v:g}' for v in plan_lists[dest])})")
    parser.add_argument("--threads", type=int, help="torch threads (default: all cores but one)")
    parser.add_argument("--decoder", choices=DECODERS, default=DEFAULT_DECODER,
                        help="auto (the default): beam search when there is a language model, else greedy; "
                        "greedy; or beam (CTC prefix beam search, with a word LM when there is one)")
    parser.add_argument("--lm", help="ARPA file or language_model folder for beam search "
                        "(default: the model's own, if it has one; 'none' for no LM)")


def _checked_decoder(args: argparse.Namespace) -> DecoderSpec:
    """The decoder and its language model, read before the model loads."""
    from .lm import LMError

    try:
        return decoder_spec(args.decoder, args.lm, model_folder(args.model))
    except LMError as exc:
        raise CLIError(str(exc), EXIT_BAD_INPUT) from exc
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from exc


DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _checked_settings(args: argparse.Namespace) -> ChunkSettings:
    """The chunk settings and compute options, checked before anything slow is imported or
    loaded, so a typo fails at once rather than after the model has loaded."""
    settings = ChunkSettings(args.chunk_ms, args.left_ms, args.right_ms)
    _check_plan(settings)
    _check_compute(args)
    return settings


def _check_plan(settings: ChunkSettings) -> None:
    try:
        settings.check()
    except ValueError as exc:
        raise CLIError(str(exc), EXIT_USAGE) from exc


def _check_compute(args: argparse.Namespace) -> None:
    if not DEVICE_PATTERN.fullmatch(args.device):
        raise CLIError(f"--device must be auto, cpu, cuda, cuda:N or mps, got '{args.device}'", EXIT_USAGE)
    _check_threads(args)
    if args.precision == "int8" and args.device not in ("auto", "cpu"):
        raise CLIError(f"--precision int8 runs on the CPU only, not --device {args.device}; use --half on a GPU",
                       EXIT_USAGE)
    if _reuses_whisper_states(args) and args.backend == "onnxruntime":
        raise CLIError("--reuse states runs the encoder on torch (it feeds cached keys and values to its layers); "
                       "drop --backend onnxruntime", EXIT_USAGE)


def _check_threads(args: argparse.Namespace) -> None:
    if args.threads is not None and args.threads < 1:
        raise CLIError(f"--threads must be at least 1, got {args.threads}", EXIT_USAGE)


def _reuses_whisper_states(args: argparse.Namespace) -> bool:
    """Whether ``--reuse states`` will reuse encoder states: only Whisper-encoder models have them
    (other models fall back to the front-end cache). Reads the folder's config, not the model."""
    from .whisper_ctc_folder import is_whisper_ctc

    folder = model_folder(args.model)
    return getattr(args, "reuse", None) == "states" and folder is not None and is_whisper_ctc(folder)


def _tell_terminal(message: str) -> None:
    """A note for a person at a terminal (a first-time export's pause); scripts see only errors."""
    if sys.stderr.isatty():
        print(f"asrlive: {message}", file=sys.stderr)


def _model_and_plan(args: argparse.Namespace, settings: ChunkSettings):
    """The model and chunk plan that transcribe and live share, or a CLIError."""
    from .model import ModelLoadError, configure_torch_threads, load_model

    # Reused states run on torch whatever runs the rest, so the auto backend picks torch for them
    # and the precision reported is the one that ran.
    backend = "torch" if _reuses_whisper_states(args) else args.backend
    try:
        model = load_model(args.model, device=args.device, half=args.half, allow_pickle=args.allow_pickle,
                           int8=PRECISIONS[args.precision], backend=backend, threads=args.threads, progress=_tell_terminal)
    except ModelLoadError as exc:
        raise CLIError(str(exc), EXIT_MODEL) from exc
    configure_torch_threads(args.threads)  # after loading: a model that cannot load fails before torch is imported
    return model, _model_plan_fits(model, settings)


def _model_plan_fits(model: CTCModel, settings: ChunkSettings) -> ChunkPlan:
    """The plan of ``settings`` for ``model``, or a CLIError if its window is longer than the model takes."""
    plan = ChunkPlan.from_settings(model.geometry, settings)
    if model.max_window_frames is not None and plan.window_frames > model.max_window_frames:
        raise CLIError(f"a window of {plan.window_frames} frames (plan {settings.label} ms); the model takes at "
                       f"most {model.max_window_frames}", EXIT_USAGE)
    return plan


def _check_audio(path: Path) -> None:
    """A CLIError unless ``path`` opens as audio; reads the header only, so it runs before the model loads."""
    from .audio.files import AudioFileError, truncation

    try:
        truncation(path)
    except AudioFileError as exc:
        raise CLIError(str(exc), EXIT_BAD_INPUT) from exc


class _Input(NamedTuple):
    path: Path
    usable: bool
    truncation: tuple[float, float] | None  # (seconds declared, seconds present) of a WAV cut short


def _check_inputs(paths: list[Path]) -> list[_Input]:
    """Which inputs open as audio, and which are cut short; an error line for each that does not
    open. Only headers are read, so a missing or broken file is reported before the model loads."""
    from .audio.files import AudioFileError, truncation

    checked = []
    for path in paths:
        try:
            checked.append(_Input(path, True, truncation(path)))
        except AudioFileError as exc:
            print(f"asrlive: error: {exc}", file=sys.stderr)
            checked.append(_Input(path, False, None))
    return checked


def _transcribe_one(args: argparse.Namespace, model, plan, decoder: DecoderSpec, path: Path):
    from .audio.files import file_info
    from .transcribe import offline_file, stream_file

    if args.offline:
        return offline_file(model, path, decoder)
    progress = None
    if sys.stderr.isatty():
        _, _, seconds = file_info(path)
        if seconds > 30:
            progress = _progress_printer(int(seconds * model.sample_rate))
    transcript = stream_file(model, path, plan, realtime=args.realtime, progress=progress, decoder=decoder,
                             reuse=args.reuse)
    if progress is not None:
        print(file=sys.stderr)
    return transcript


def _cmd_transcribe(args: argparse.Namespace) -> int:
    settings = _checked_settings(args)
    decoder = _checked_decoder(args)
    paths = [Path(p) for p in args.audio]
    inputs = _check_inputs(paths)
    failures = sum(not i.usable for i in inputs)
    if failures == len(inputs):
        return EXIT_BAD_INPUT
    outputs = _checked_outputs(paths, args.output, args.format, "--output")
    emissions = _checked_outputs(paths, args.emissions, "npz", "--emissions")
    if clash := {o for o in outputs if o is not None} & set(emissions):
        raise CLIError(f"--output and --emissions would both write {clash.pop()}", EXIT_USAGE)
    from .audio.files import AudioFileError
    from .export import write_atomic

    model, plan = _model_and_plan(args, settings)
    # Several transcripts on stdout in txt need their file named; JSON carries its own "path".
    labelled = args.format == "txt" and len(paths) > 1
    for (path, usable, cut), out, em in zip(inputs, outputs, emissions):
        if not usable:
            continue
        try:
            transcript = _transcribe_one(args, model, plan, decoder, path)
        except AudioFileError as exc:
            print(f"asrlive: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        warnings = transcript.warnings()
        if transcript.read_error is not None:
            warnings.append(f"{transcript.read_error} after {transcript.duration_s:.2f} s; transcribed what is there")
            failures += 1
        if cut is not None:
            # The partial text is kept and written; the exit code still says the input was bad.
            warnings.append(f"truncated: header says {cut[0]:.2f} s, {cut[1]:.2f} s present; transcribed what is there")
            failures += 1
        for warning in warnings:
            print(f"asrlive: warning: {path}: {warning}", file=sys.stderr)
        text = _render(transcript, args.format)
        if out is None and labelled:
            text = f"{path}: {text}"
        if out is not None:
            try:
                write_atomic(out, text)
            except OSError as exc:
                # The transcript is not lost: it goes to stdout instead.
                print(f"asrlive: error: cannot write {out}: {exc.strerror}; the transcript of {path} follows "
                      "on stdout", file=sys.stderr)
                failures += 1
                out = None
        if out is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        if em is not None:
            try:
                _save_emissions(em, transcript, model)
            except OSError as exc:
                print(f"asrlive: error: cannot write {em}: {exc.strerror}", file=sys.stderr)
                failures += 1
    return EXIT_BAD_INPUT if failures else 0


@contextmanager
def _stop_signals_as_ctrl_c() -> Iterator[None]:
    """SIGTERM and SIGHUP (kill, timeout, a closed terminal) end a live run as Ctrl+C does:
    capture stops, and what was captured is transcribed and printed, not lost."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    saved = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _follow_live(session: LiveSession, seconds: float | None) -> tuple[int, bool]:
    """Print committed text as it comes until the run ends, ``seconds`` of audio are captured,
    or Ctrl+C. Returns (characters printed, whether a second Ctrl+C cut the drain short)."""
    printed, seen = 0, 0
    # Counted in captured samples, not wall time: a sound server may deliver a second or more late.
    limit = None if seconds is None else seconds * session.ring.sample_rate
    try:
        while True:
            status = session.worker.wait_update(seen, timeout=0.25)
            seen = status.windows
            if status.n_chars > printed:
                sys.stdout.write(status.new_text(printed))
                sys.stdout.flush()
                printed = status.n_chars
            if status.finished:
                return printed, False
            if session.error or (limit is not None and session.ring.written >= limit):
                session.stop()  # the worker drains what was captured, then finishes
    except KeyboardInterrupt:
        session.stop()
        try:
            session.wait()
        except KeyboardInterrupt:  # a second Ctrl+C: stop draining, keep what is committed
            session.abort()
            return printed, True
    return printed, False


def _cmd_live(args: argparse.Namespace) -> int:
    """Transcribe the microphone, printing committed text as it is committed."""
    from .audio.devices import DeviceError, find_input_device

    settings = _checked_settings(args)
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        raise CLIError(f"--seconds must be a positive number, got {args.seconds:g}", EXIT_USAGE)
    decoder = _checked_decoder(args)
    try:
        find_input_device(args.input_device)  # before the model loads: a missing device fails at once
    except (DeviceError, OSError) as exc:
        raise CLIError(str(exc), EXIT_DEVICE) from exc
    with _stop_signals_as_ctrl_c():
        return _run_live(args, settings, decoder)


def _run_live(args: argparse.Namespace, settings: ChunkSettings, decoder: DecoderSpec) -> int:
    from .audio.devices import DeviceError
    from .session import LiveSession

    model, plan = _model_and_plan(args, settings)
    session = LiveSession(model, plan, journal=not args.no_journal, decoder=decoder, reuse=args.reuse)
    try:
        session.start_mic(args.input_device)
    except (DeviceError, OSError) as exc:
        raise CLIError(str(exc), EXIT_DEVICE) from exc
    print(f"asrlive: listening on '{session.label}' with {Path(model.name).name or model.name}; "
          f"latency {plan.latency_ms:.0f} ms (Ctrl+C stops)", file=sys.stderr, flush=True)
    if journal_error_at_start := session.journal_error:
        print(f"asrlive: warning: {journal_error_at_start}; the text is only printed", file=sys.stderr)
    try:
        printed, cut_short = _follow_live(session, args.seconds)
        final = session.worker.status
        if tail := final.new_text(printed):
            sys.stdout.write(tail)
        if printed or tail:
            sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        kept = f"; the committed text is in {session.journal.path}" if session.journal is not None else ""
        raise CLIError(f"cannot write the transcript to stdout: {exc.strerror or exc}{kept}", EXIT_BAD_INPUT) from exc
    finally:
        session.abort()  # no capture or worker thread may outlive the command, whatever ended it
    code = 130 if cut_short else 0
    if session.journal_error and not journal_error_at_start:  # it broke mid-run (a full disk)
        print(f"asrlive: warning: {session.journal_error}", file=sys.stderr)
    if session.error:
        print(f"asrlive: error: {session.error}; stopped (the text above is kept)", file=sys.stderr)
        code = EXIT_DEVICE
    if args.json_summary:
        print(json.dumps(_live_summary(session, decoder, args.reuse)), file=sys.stderr)
    return code


def _rounded(record: dict) -> dict:
    """Milliseconds (keys ending in _ms) to 0.1 ms, other floats to 4 significant digits: the
    timing jitter is far larger, so further digits are noise (621.9432150001012)."""
    def one(key: str, value):
        if not isinstance(value, float):
            return value
        return round(value, 1) if key.endswith("_ms") else float(f"{value:.4g}")

    return {key: one(key, value) for key, value in record.items()}


def _live_summary(session: LiveSession, decoder: DecoderSpec, reuse: str) -> dict:
    """The --json-summary record of a live run."""
    final, stats, model = session.worker.status, session.latency(), session.model
    return _rounded({"text": final.committed_text, "device": session.label,
                     "audio_s": session.ring.written / model.sample_rate, "decoder": decoder.describe(),
                     "frames": final.committed_frames, "skipped_ms": stats.skipped_ms,
                     "input_overflows": stats.input_overflows,
                     "speech_to_text_p50_ms": stats.speech_to_text_p50,
                     "speech_to_text_p95_ms": stats.speech_to_text_p95,
                     "real_time_factor": stats.real_time_factor, "backend": model.backend,
                     "precision": model.precision, "reuse": reuse,
                     "front_end_hit_rate": stats.front_end_hit_rate, "state_hit_rate": stats.state_hit_rate})


def _cmd_recover(args: argparse.Namespace) -> int:
    from .journal import pending_journals, settle

    pending = pending_journals()
    if not pending:
        print("no interrupted transcripts to recover", file=sys.stderr)
        return 0
    for journal in pending:
        print(f"# {journal.started}  {journal.source}  ({journal.path})")
        print(journal.text)
        if args.settle:
            settle(journal)
    return 0


def _cmd_devices(args: argparse.Namespace) -> int:
    from .audio.devices import DeviceError, list_input_devices

    try:
        devices = list_input_devices()
    except (DeviceError, OSError) as exc:
        raise CLIError(str(exc), EXIT_DEVICE) from exc
    if args.json:
        print(json.dumps([d.__dict__ for d in devices], indent=2))
    if not devices:
        # An error with or without --json: a script sees the exit code, and [] still parses.
        raise CLIError("no audio input devices found", EXIT_DEVICE)
    if not args.json:
        for d in devices:
            mark = "*" if d.is_default else " "
            print(f"{mark} {d.index:3d}  {d.name}  [{d.host_api}, {d.channels} ch, {d.default_rate:.0f} Hz]")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    """Every chunk plan and every peer on the same audio and model; tables, CSV and plots."""
    from .audio.files import AudioFileError
    from .bench import BenchError, load_utterances, read_manifest, run_bench, synthetic_sentences, synthetic_utterances

    if (args.data is None) == (args.synth is None):
        raise CLIError("give one of --data MANIFEST.tsv or --synth N", EXIT_USAGE)
    if args.synth is not None:
        if args.synth < 1:
            raise CLIError(f"--synth must be at least 1, got {args.synth}", EXIT_USAGE)
        try:
            synthetic_sentences(args.synth)
        except BenchError as exc:
            raise CLIError(str(exc), EXIT_USAGE) from exc
    if not (math.isfinite(args.whisper_hop_ms) and args.whisper_hop_ms > 0):
        raise CLIError(f"--whisper-hop-ms must be a positive number, got {args.whisper_hop_ms:g}", EXIT_USAGE)
    plans = [ChunkSettings(c, lf, r) for c in args.chunk_ms for lf in args.left_ms for r in args.right_ms]
    if not plans:
        raise CLIError("no plans: --chunk-ms, --left-ms and --right-ms each need at least one value", EXIT_USAGE)
    for s in plans:
        _check_plan(s)
    _check_compute(args)
    if args.whisper is not None and not (args.whisper / "tokenizer.json").is_file():
        raise CLIError(f"--whisper {args.whisper}: not a Whisper folder with tokenizer.json "
                       "(make one with models/convert_whisper.py --ct2 or --hf)", EXIT_BAD_INPUT)
    if args.whisper is not None:
        import importlib.util

        from .peers import is_ct2_whisper

        if is_ct2_whisper(args.whisper) and importlib.util.find_spec("faster_whisper") is None:
            raise CLIError(f"--whisper {args.whisper} is a CTranslate2 model, which needs faster-whisper "
                           "(pip install 'asrlive[bench]')", EXIT_USAGE)
    decoder = _checked_decoder(args)
    try:
        entries = read_manifest(args.data) if args.data is not None else None
    except BenchError as exc:
        raise CLIError(str(exc), EXIT_BAD_INPUT) from exc
    if args.out is not None:
        _make_folder(args.out, "--out")
    model, _ = _model_and_plan(args, plans[0])
    for s in plans[1:]:
        _model_plan_fits(model, s)
    try:
        utterances = (load_utterances(entries, model.sample_rate) if entries is not None
                      else synthetic_utterances(args.synth, model.sample_rate))
    except AudioFileError as exc:
        raise CLIError(str(exc), EXIT_BAD_INPUT) from exc

    def progress(what: str, done: int, total: int) -> None:
        if sys.stderr.isatty():
            bar = "#" * (30 * done // total)
            print(f"\r[{bar:<30}] {done}/{total} {what:<24}", end="", file=sys.stderr, flush=True)

    from .ct2_whisper import PeerProcessError

    try:
        rows = run_bench(model, utterances, plans, decoder=decoder, whisper=args.whisper,
                         whisper_hop_ms=args.whisper_hop_ms, progress=progress, reuse=args.reuse)
    except PeerProcessError as exc:
        raise CLIError(f"--whisper {args.whisper}: {exc}", EXIT_MODEL) from exc
    if sys.stderr.isatty():
        print(file=sys.stderr)
    from .bench_report import markdown, write_outputs

    source = str(args.data) if args.data is not None else f"{args.synth} held-out synthetic utterances"
    title = f"{Path(model.name).name} ({model.backend}, {model.precision}): {source}, {len(utterances)} utterances"
    sys.stdout.write(markdown(rows))  # first: the table survives a failure to write the files
    sys.stdout.flush()
    if args.out is not None:
        try:
            for path in write_outputs(rows, args.out, title):
                print(path, file=sys.stderr)
        except OSError as exc:
            raise CLIError(f"--out {args.out}: cannot write {exc.filename}: {exc.strerror} "
                           "(the table above has the results)", EXIT_USAGE) from exc
    return 0


def _cmd_gui(args: argparse.Namespace) -> int:
    if args.file is not None:
        _check_audio(args.file)  # before the window opens: a typo is a line here, not a dialog later
    from .gui.app import run_app

    return run_app(model=args.model, audio_file=args.file)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="asrlive", description="Real-time CTC speech recognition.")
    sub = parser.add_subparsers(dest="command", required=True)

    rf = sub.add_parser("rf", help="receptive-field table of a model or of kernel/stride lists")
    rf.add_argument("--model", help="model folder or hub id (default: the embedded model)")
    rf.add_argument("--kernels", type=_int_list, help="e.g. 10,3,3,3,3,2,2")
    rf.add_argument("--strides", type=_int_list, help="e.g. 5,2,2,2,2,2,2")
    rf.add_argument("--fs", type=int, default=16000, help="sample rate for --kernels/--strides (Hz)")
    rf.add_argument("--json", action="store_true", help="machine-readable output")
    rf.add_argument("--empirical", action="store_true", help="measure the RF by input gradients, beside the analytic one")
    rf.add_argument("--sensitivity", action="store_true", help="sweep right and left context and recommend settings")
    rf.add_argument("--audio", type=Path, help="audio for --empirical/--sensitivity (default: espeak-ng speech)")
    rf.add_argument("--frames", type=int, default=400,
                    help="at most this many frames measured by --sensitivity (every frame of shorter audio); "
                    "neighbouring frames share model passes, so the cost grows with the audio's length")
    rf.add_argument("--threads", type=int, help="torch threads (default: all cores but one)")
    rf.set_defaults(func=_cmd_rf)

    tr = sub.add_parser("transcribe", help="transcribe audio files")
    tr.add_argument("audio", nargs="+", help="audio files (WAV, FLAC, OGG, MP3; any rate and channel count)")
    _add_model_and_plan_args(tr)
    tr.add_argument("--offline", action="store_true", help="one pass over the whole file instead of streaming")
    tr.add_argument("--realtime", action="store_true", help="feed the file at real-time pace")
    tr.add_argument("--format", choices=FORMATS, default="txt")
    tr.add_argument("--emissions", type=Path, help="save per-frame log-probs (.npz; a folder for several files)")
    tr.add_argument("-o", "--output", type=Path, help="output file (a folder for several files)")
    tr.set_defaults(func=_cmd_transcribe)

    lv = sub.add_parser("live", help="transcribe an input device, printing text as it is committed")
    _add_model_and_plan_args(lv)
    lv.add_argument("--input-device", help="input device index or name substring (default: the system default)")
    lv.add_argument("--seconds", type=float, help="stop after this long (default: until Ctrl+C)")
    lv.add_argument("--no-journal", action="store_true", help="do not journal committed text to disk")
    lv.add_argument("--json-summary", action="store_true", help="print a JSON summary with latencies to stderr")
    lv.set_defaults(func=_cmd_live)

    bn = sub.add_parser("bench", help="every chunk plan and peer recogniser on the same audio: accuracy, latency, compute")
    bn.add_argument("--data", type=Path, help="TSV manifest with id, path and transcript columns")
    bn.add_argument("--synth", type=int, help="instead of --data: N held-out synthetic utterances (espeak-ng)")
    _add_model_and_plan_args(bn, BENCH_PLANS)
    bn.add_argument("--whisper", type=Path, help="a Whisper folder, CTranslate2 (run by faster-whisper) or transformers: "
                    "adds the Whisper LocalAgreement peer")
    bn.add_argument("--whisper-hop-ms", type=float, default=1000.0, help="how often the Whisper peer re-decodes")
    bn.add_argument("--out", type=Path, help="folder for bench.md, bench.csv, bench.json and the PNG plots")
    bn.set_defaults(func=_cmd_bench)

    rc = sub.add_parser("recover", help="print transcripts of runs that were interrupted (crash, kill)")
    rc.add_argument("--settle", action="store_true", help="mark them recovered so they are not offered again")
    rc.set_defaults(func=_cmd_recover)

    dv = sub.add_parser("devices", help="list audio input devices")
    dv.add_argument("--json", action="store_true")
    dv.set_defaults(func=_cmd_devices)

    gui = sub.add_parser("gui", help="open the desktop app (the default command)")
    gui.add_argument("--model", help="model folder or hub id (default: the embedded model)")
    gui.add_argument("--file", type=Path, help="play this audio file once the model has loaded")
    gui.set_defaults(func=_cmd_gui)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv or ["gui"])
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"asrlive: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as command-line tools do.
        sys.stderr.close()
        return 141
