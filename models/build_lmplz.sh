#!/usr/bin/env bash
# Builds KenLM's lmplz (used only by models/build_lm.py; the app never needs it) from the kenlm
# source package on PyPI. Needs a C++ toolchain, cmake and Boost from Debian main.
#   models/build_lmplz.sh [BUILD_DIR]      (default ../wk/kenlm; prints the lmplz path)
set -euo pipefail
dir=$(realpath -m "${1:-$(dirname "$0")/../../wk/kenlm}")
mkdir -p "$dir"
if ! dpkg -s libboost-program-options-dev libboost-thread-dev zlib1g-dev >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake g++ libboost-program-options-dev \
    libboost-system-dev libboost-thread-dev libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev >&2
fi
cd "$dir"
python3 -m pip download --no-deps --no-binary :all: kenlm==0.3.0 -d . >&2
tar xzf kenlm-0.3.0.tar.gz
cmake -S kenlm-0.3.0 -B build -DCMAKE_BUILD_TYPE=Release >&2
make -C build -j"$(nproc)" lmplz >&2
echo "$dir/build/bin/lmplz"
