#!/usr/bin/env bash
# Packs what models/train.py needs beyond PyTorch and transformers into one folder, for a GPU
# machine that has no network, no espeak-ng and no Debian text packages: the espeak-ng binary with
# every shared library it loads, its English data, the fortunes text, the word list, and wheels of
# soundfile, cffi, pycparser and soxr for that machine's Python. models/gpu_train.sh uses it there.
#
#   bash models/gpu_bundle.sh [OUT=.gpu-bundle] [PYTHON_VERSION=3.12]
set -euo pipefail
out=${1:-.gpu-bundle}
pyver=${2:-3.12}
rm -rf "$out"
mkdir -p "$out/bin" "$out/libexec" "$out/lib" "$out/espeak-ng-data" "$out/wheels"

espeak=$(command -v espeak-ng)
cp "$espeak" "$out/libexec/"
# The libraries are for espeak-ng alone: set only in its own environment, they cannot shadow the
# other machine's libraries for Python and PyTorch.
cat > "$out/bin/espeak-ng" <<'WRAPPER'
#!/bin/sh
here=$(dirname "$(readlink -f "$0")")/..
LD_LIBRARY_PATH="$here/lib" ESPEAK_DATA_PATH="$here" exec "$here/libexec/espeak-ng" "$@"
WRAPPER
chmod +x "$out/bin/espeak-ng"
# Every library the binary resolves, except the C runtime, which the other machine has in a newer
# version (these were built against an older glibc, so they run on a newer one).
ldd "$espeak" | awk '/=> \//{print $3}' | grep -v -E '/(libc|libm|libdl|libpthread|librt)\.so' |
    xargs -I{} cp -L {} "$out/lib/"

data=$(espeak-ng --version | sed -n 's/.*Data at: //p')
# Only English is spoken: the other languages' dictionaries are most of the data's size.
find "$data" -maxdepth 1 -mindepth 1 ! -name '*_dict' -exec cp -r {} "$out/espeak-ng-data/" \;
cp "$data/en_dict" "$out/espeak-ng-data/"

cp -r /usr/share/games/fortunes "$out/fortunes"
cp /usr/share/dict/american-english "$out/american-english"

python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$out/wheels" soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0
du -sh "$out"
