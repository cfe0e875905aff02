#!/usr/bin/env bash
# One leg of training on a lent GPU machine (run as root from the repository root there, with the
# folder .gpu-bundle from models/gpu_bundle.sh carried along). It trains for at most SECONDS, then
# leaves in $OUT the run's log and best model as one archive, run.tar.gz.
#
#   bash models/gpu_train.sh SECONDS [extra train.py arguments]
#
# The run lives in .gpu-run on that machine, so a next leg called while the machine is still warm
# resumes from its last.pt. last.pt itself (model, average and optimiser state, 66 MB) does not
# come back: it is more than one call may return. A leg on a fresh machine, or on the development
# machine, continues from the returned best/ with --init-from and --start-step.
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
tail -n 3 "$run/log.jsonl"
