"""Sources that fill an AudioRing at the model's sample rate: a file (fast or paced) and a microphone."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

from .files import iter_file_blocks
from .ring import AudioRing


CLIP_LEVEL = 0.999


def input_level(samples: np.ndarray) -> tuple[float, int]:
    """(peak, number of clipped samples) of a block, for the input warnings."""
    if len(samples) == 0:
        return 0.0, 0
    magnitude = np.abs(samples)
    return float(magnitude.max()), int(np.count_nonzero(magnitude >= CLIP_LEVEL))


class FileSource:
    """Streams a file into the ring: as fast as the reader consumes it (lossless), or paced at
    ``speed`` times real time. Closes the ring at the end."""

    def __init__(self, path: Path | str, ring: AudioRing, realtime: bool = False, speed: float = 1.0,
                 block_seconds: float = 0.05):
        self.path = Path(path)
        self.ring = ring
        self.realtime = realtime
        self.speed = speed
        self.block_seconds = block_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="asrlive-file", daemon=True)
        self._error: BaseException | None = None
        self.peak = 0.0
        self.clipped_samples = 0

    @property
    def error(self) -> BaseException | None:
        return self._error

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.ring.wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _blocks(self) -> Iterator[np.ndarray]:
        return iter_file_blocks(self.path, self.ring.sample_rate, self.block_seconds)

    def _run(self) -> None:
        try:
            t0 = time.monotonic()
            sent = 0
            for block in self._blocks():
                peak, clipped = input_level(block)
                self.peak = max(self.peak, peak)
                self.clipped_samples += clipped
                if self.realtime:
                    # Pace by the wall clock; waiting on the stop event keeps Stop immediate.
                    due = t0 + sent / self.ring.sample_rate / self.speed
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                for piece in np.array_split(block, -(-len(block) // self.ring.capacity)):
                    if not self.ring.write(piece, wait_for_room=not self.realtime, stop=self._stop):
                        break
                sent += len(block)
                if self._stop.is_set():
                    break
        except BaseException as exc:  # reported to the consumer, which decides how to show it
            self._error = exc
        finally:
            self.ring.close()


class ArraySource(FileSource):
    """An in-memory signal streamed like a file (tests, benchmarks, synthetic input)."""

    def __init__(self, samples: np.ndarray, ring: AudioRing, realtime: bool = False, speed: float = 1.0,
                 block_seconds: float = 0.05):
        super().__init__(Path("<array>"), ring, realtime, speed, block_seconds)
        self.samples = np.asarray(samples, dtype=np.float32)

    def _blocks(self) -> Iterator[np.ndarray]:
        block = max(1, int(self.block_seconds * self.ring.sample_rate))
        return (self.samples[i:i + block] for i in range(0, len(self.samples), block))


STALL_SECONDS = 2.0
# How long stop() waits for PortAudio to abort and close the stream: with the sound server gone
# behind ALSA, abort can block for good, which would freeze the app's stop button.
CLOSE_SECONDS = 2.0


class MicSource:
    """Captures a sounddevice input stream into the ring.

    The PortAudio callback only copies into a preallocated native-rate ring and counts overflows.
    When the device cannot run at the model rate, a relay thread resamples with soxr from that
    ring into the model-rate ring, outside the callback.
    """

    def __init__(self, ring: AudioRing, device: int | str | None = None, block_ms: float = 20.0):
        import sounddevice as sd  # PortAudio is loaded only when a microphone is used

        from .devices import resolve_input_device

        self._sd = sd
        self.ring = ring
        self.device_index, self.device_name, native_rate = resolve_input_device(device, ring.sample_rate)
        self.native_rate = native_rate
        self.block_frames = max(1, int(native_rate * block_ms / 1000))
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._last_callback = 0.0
        if native_rate == ring.sample_rate:
            self._capture_ring = ring
            self._relay = None
        else:
            self._capture_ring = AudioRing(native_rate * 4, native_rate)
            self._relay = threading.Thread(target=self._relay_run, name="asrlive-resample", daemon=True)
        try:
            self._stream = sd.InputStream(
                device=self.device_index, channels=1, samplerate=native_rate, dtype="float32",
                blocksize=self.block_frames, callback=self._callback, finished_callback=self._finished,
            )
        except sd.PortAudioError as exc:  # listed, but gone or busy by now
            raise self._cannot_open(exc) from exc

    def _cannot_open(self, exc: Exception) -> Exception:
        from .devices import DeviceError

        return DeviceError(f"cannot open input device '{self.device_name}': {exc}")

    @property
    def error(self) -> BaseException | None:
        """The device failed, or went silent (see ``_watch``)."""
        return self._error

    def _watch(self) -> None:
        """A stream that stops calling back is a lost device on some back ends (ALSA via
        PulseAudio) that never report it otherwise: flag it once it has been silent too long."""
        from .devices import DeviceError

        while not self._stop.wait(STALL_SECONDS / 8) and self._error is None:
            if time.monotonic() - self._last_callback > STALL_SECONDS:
                self._error = DeviceError(f"input device '{self.device_name}' stopped delivering audio")

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        self._last_callback = time.monotonic()
        if status.input_overflow:
            self.ring.input_overflows += 1
        self._capture_ring.write(indata[:, 0])

    def _finished(self) -> None:
        if not self._stop.is_set():
            self._error = RuntimeError(f"input device '{self.device_name}' stopped delivering audio")
        self._capture_ring.close()
        if self._relay is None:
            self.ring.close()

    def _close_stream(self) -> None:
        try:
            # abort, not stop: stop waits for pending buffers, which a vanished device never delivers.
            self._stream.abort()
            self._stream.close()
        except self._sd.PortAudioError:
            pass  # the device may already be gone

    def _relay_run(self) -> None:
        resampler = soxr.ResampleStream(self.native_rate, self.ring.sample_rate, 1, dtype="float32")
        cursor = 0
        while True:
            have = self._capture_ring.wait_for(cursor + self.block_frames, self._stop)
            end = self._capture_ring.written
            if end > cursor:
                start = max(cursor, self._capture_ring.oldest)
                block = self._capture_ring.read(start, end)
                if block is not None:
                    self.ring.write(resampler.resample_chunk(block))
                cursor = end
            if not have and (self._capture_ring.closed or self._stop.is_set()):
                break
        self.ring.close()

    def start(self) -> None:
        if self._relay is not None:
            self._relay.start()
        self._last_callback = time.monotonic()
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            self.stop()
            raise self._cannot_open(exc) from exc
        threading.Thread(target=self._watch, name="asrlive-mic-watchdog", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        closer = threading.Thread(target=self._close_stream, name="asrlive-mic-close", daemon=True)
        closer.start()
        closer.join(CLOSE_SECONDS)  # a stream that will not close is left to its thread; the rings close anyway
        self._capture_ring.close()
        if self._relay is not None and self._relay.is_alive():
            self._relay.join()
        self.ring.close()
