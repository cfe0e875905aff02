#!/usr/bin/env bash
# Installs what asrlive needs on a fresh Debian machine: system packages (PortAudio, espeak-ng,
# PulseAudio, Xvfb, Qt's X11 libraries, the fortune texts and word list the training data uses)
# and a virtual environment in .venv with the package and its test tools. Safe to rerun: it only
# installs what is missing, and reinstalls Python packages only when pyproject.toml or the pinned
# versions (scripts/constraints.txt) changed.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(python3 python3-venv espeak-ng fortunes fortune-mod wamerican libportaudio2 pulseaudio pulseaudio-utils xvfb xauth
      libxcb-cursor0 libxkbcommon-x11-0 libxkbcommon0 libegl1 libgl1 libfontconfig1 libdbus-1-3
      libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-render-util0
      libxcb-image0 libglib2.0-0)
missing=()
for pkg in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pip, less the warnings this machine's pip configuration prints for every install; a failed
# install stops the script (so the stamp below is never written for it).
pip_install() {
  local out status=0
  out=$(.venv/bin/pip install -q --disable-pip-version-check "$@" 2>&1) || status=$?
  printf '%s\n' "$out" | grep -v -e "^WARNING: Location" -e '^$' >&2 || true
  return "$status"
}

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.asrlive-installed
want=$(cat pyproject.toml scripts/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv" >&2
  # torch first, pinned: the version these machines' wheel folder holds as a CPU build; an
  # unpinned torch would come from the registry with several GB of CUDA packages.
  pip_install "torch==2.13.0"
  pip_install -c scripts/constraints.txt -e ".[test]"
  .venv/bin/python -c "import asrlive, torch, transformers, onnxruntime, onnx, PySide6, pyqtgraph, sounddevice, soundfile, soxr, pytestqt"
  echo "$want" > "$stamp"
fi
