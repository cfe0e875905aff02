#!/usr/bin/env bash
# One leg of training on a lent GPU machine (run as root from the repository root there, with the
# folders .gpu-bundle from models/gpu_bundle.sh and .gpu-run carried along). It trains for at most
# SECONDS, then leaves in $OUT what the next leg and this machine need: the run's log and best
# model as one archive, and last.pt cut into pieces small enough to come back.
#
#   bash models/gpu_train.sh SECONDS [extra train.py arguments]
#
# Back on the development machine, from the folder the pieces arrived in:
#   cat last.pt.part-* > .gpu-run/last.pt && tar -xzf run.tar.gz -C .gpu-run
set -euo pipefail
seconds=$1
shift
bundle=$PWD/.gpu-bundle
run=$PWD/.gpu-run
mkdir -p "$run"

export PATH="$bundle/bin:$PATH"
# The text sources sit at their Debian paths on the development machine; train.py reads them there.
for pair in "fortunes:/usr/share/games/fortunes" "american-english:/usr/share/dict/american-english"; do
    target=${pair#*:}
    [ -e "$target" ] || { mkdir -p "$(dirname "$target")" && ln -s "$bundle/${pair%%:*}" "$target"; }
done
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$bundle"/wheels/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1

workers=$(( $(nproc) - 2 ))
status=0
timeout --signal=INT "$seconds" python3 models/train.py --run-dir "$run" --device cuda \
    --workers "$workers" --threads 2 "$@" || status=$?
# 124: the leg's time ran out, which is how a leg normally ends; the run resumes from last.pt.
[ "$status" -eq 0 ] || [ "$status" -eq 124 ] || exit "$status"

tar -czf "$OUT/run.tar.gz" -C "$run" log.jsonl best
split -b 15M -d "$run/last.pt" "$OUT/last.pt.part-"
tail -n 3 "$run/log.jsonl"
