"""A private PulseAudio server with a null sink whose monitor is the default source: a virtual
microphone for tests and benchmarks on machines without a sound card."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

SINK = "asrlive_sink"


class PulseServer:
    def __init__(self, folder: Path):
        if shutil.which("pulseaudio") is None or shutil.which("paplay") is None:
            raise RuntimeError("pulseaudio/paplay missing: run scripts/setup.sh")
        self.folder = folder
        self.socket = folder / "native"
        self.config = folder / "default.pa"
        self.config.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-null-sink sink_name={SINK} rate=16000 channels=1\n"
            f"set-default-sink {SINK}\nset-default-source {SINK}.monitor\n")
        self.env = {**os.environ, "PULSE_RUNTIME_PATH": str(folder), "PULSE_SERVER": f"unix:{self.socket}",
                    "HOME": str(folder)}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> None:
        self.proc = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n", "-F", str(self.config),
             "--system=false", "--log-target=stderr", "--log-level=error"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        # Wait for the server to answer: an external process's readiness, polled with a bound.
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True, timeout=timeout).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def play(self, wav: Path, timeout: float = 60.0) -> None:
        """Play a file into the null sink (returns when playback ended)."""
        subprocess.run(["paplay", f"--device={SINK}", str(wav)], env=self.env, check=True, timeout=timeout)
