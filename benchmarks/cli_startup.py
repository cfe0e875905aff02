"""Wall time of CLI commands that should answer at once: help, a missing file, a bad option.

    python benchmarks/cli_startup.py [--repeat 3]

Each command runs in a fresh interpreter (`python -m asrlive`) from this checkout, as a user
would start it; the median of ``--repeat`` runs is printed with the exit code. Targets: --help
under 1 s, the two errors under 2 s (they must not wait for torch or a model).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _short_wav(path: Path) -> None:
    """A valid 0.5 s silent WAV, so only the option is wrong in the bad-option case."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes(b"\0\0" * 8000)


def time_command(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, exit code) of one ``python -m asrlive ARGS`` run."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "asrlive", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=300)
    return time.perf_counter() - t0, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the median is printed")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _short_wav(folder / "x.wav")
        commands = [["--help"], ["transcribe", "nope.wav"], ["transcribe", "--chunk-ms", "-5", "x.wav"]]
        for command in commands:
            runs = [time_command(command, folder, env) for _ in range(args.repeat)]
            seconds = statistics.median(t for t, _ in runs)
            codes = sorted({code for _, code in runs})
            print(f"{seconds:7.2f} s  exit {','.join(map(str, codes)):>3}  asrlive {' '.join(command)}")


if __name__ == "__main__":
    main()
