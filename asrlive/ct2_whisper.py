"""faster-whisper (CTranslate2) in a process of its own, for the Whisper streaming peer.

CTranslate2's library crashes at interpreter exit in a process that has also loaded torch (a
static destructor calls into a library already unloaded; seen with ctranslate2 4.8.5 and torch
2.13.0), so faster-whisper runs in a spawned child that imports nothing else: the parent sends
audio down a pipe and gets the text back. This module imports neither torch nor faster-whisper.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np

from .errors import one_line

# Whisper sees at most 30 s (shorter input is padded to it); a longer buffer keeps its newest part
# (and its text, already committed, is not re-read: the utterances benchmarked are sentences).
MAX_SECONDS = 30.0
# How faster-whisper computes on a CPU, as ufal/whisper_streaming's backend runs it there.
COMPUTE_TYPE = "int8"
# How long a child may take to load the model, or to transcribe 30 s on a slow CPU.
ANSWER_SECONDS = 600.0


class PeerProcessError(RuntimeError):
    """The faster-whisper child failed or stopped answering; the message says why."""


def _serve(folder: str, compute_type: str, threads: int, beam_size: int, conn) -> None:
    """The child: load the model, then transcribe each array received until None arrives."""
    try:
        from faster_whisper import WhisperModel

        model = WhisperModel(folder, device="cpu", compute_type=compute_type, cpu_threads=threads, local_files_only=True)
        conn.send(("ready", ""))
    except Exception as exc:  # any failure to load is reported to the parent, which raises it
        conn.send(("error", one_line(exc)))
        return
    while (audio := conn.recv()) is not None:
        try:
            segments, _ = model.transcribe(audio, language="en", beam_size=beam_size, without_timestamps=True,
                                           vad_filter=False)
            conn.send(("text", " ".join(segment.text for segment in segments)))
        except Exception as exc:
            conn.send(("error", one_line(exc)))


class FasterWhisper:
    """Whisper as faster-whisper runs it, from a CTranslate2 folder (``model.bin``,
    ``config.json``, ``tokenizer.json``, a vocabulary: what the registry packages ship,
    ``models/convert_whisper.py --ct2``): ``COMPUTE_TYPE`` on the CPU with ``threads`` threads, English, beam
    search ``beam_size`` (5, as ufal/whisper_streaming's faster-whisper backend asks for, without
    the word timestamps only its buffer trimming reads); the last 30 s of the audio at most; the
    text as Whisper writes it. Use as a context manager, or call ``close``."""

    def __init__(self, folder: Path, threads: int = 1, beam_size: int = 5):
        self.compute_type, self.beam_size = COMPUTE_TYPE, beam_size
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(str(folder), self.compute_type, threads, beam_size, child),
                                         name="asrlive-faster-whisper", daemon=True)
        try:
            self._process.start()
        except OSError as exc:
            self._conn.close()
            raise PeerProcessError(f"faster-whisper's process cannot start ({exc})") from exc
        finally:
            child.close()
        self._answer()  # ready, or the load's error

    def _answer(self) -> str:
        if not self._conn.poll(ANSWER_SECONDS):
            self.close()
            raise PeerProcessError(f"faster-whisper gave no answer in {ANSWER_SECONDS:.0f} s")
        try:
            kind, text = self._conn.recv()
        except EOFError:
            self._process.join(5)
            code = self._process.exitcode
            self.close()
            raise PeerProcessError(f"faster-whisper's process ended unexpectedly (exit code {code})") from None
        if kind == "error":
            self.close()
            raise PeerProcessError(f"faster-whisper: {text}")
        return text

    def transcribe(self, audio: np.ndarray) -> str:
        try:
            self._conn.send(np.ascontiguousarray(audio[-int(MAX_SECONDS * 16000):], np.float32))
        except (OSError, ValueError) as exc:  # the child is gone, or the pipe already closed
            code = self._process.exitcode
            self.close()
            raise PeerProcessError(f"faster-whisper's process is gone (exit code {code}: {exc})") from exc
        return self._answer()

    def close(self) -> None:
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._conn.close()

    def __enter__(self) -> "FasterWhisper":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
