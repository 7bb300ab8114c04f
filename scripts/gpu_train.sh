#!/usr/bin/env bash
# The whole command of a device call (docs/ml.md, "A GPU run"): from the repo root, with work/gpu carried,
#   run(command="bash scripts/gpu_train.sh", carry=["work/gpu"], timeout_s=600)
# installs the kit's wheels, trains training/configs/v11-gpu.yaml on the kit's data and leaves last.pt, best.pt,
# results.csv, args.yaml, run.json and train.log in $OUT (6 files; the weights are copied there every 30 s too,
# so a run stopped at the call's limit still returns them). Tested here on the CPU with a small kit:
#   OUT=/tmp/x DEVICE=cpu KIT=work/gpu-test SET="time=0.02 batch=8 workers=1" nice -n 19 bash scripts/gpu_train.sh
# Settings (environment): OUT (required), KIT (work/gpu), DEVICE (0), CONFIG (training/configs/v11-gpu.yaml),
# SET (space-separated key=value overrides of the config's train section, e.g. "time=0.08").
set -uo pipefail
: "${OUT:?OUT names the folder the results go to}"
KIT=${KIT:-work/gpu}
DEVICE=${DEVICE:-0}
CONFIG=${CONFIG:-training/configs/v11-gpu.yaml}
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
mkdir -p "$OUT"
LOG="$OUT/train.log"
RUNS=$(mktemp -d /tmp/hazardscan-gpu-runs.XXXXXX)
SITE=$(mktemp -d /tmp/hazardscan-site.XXXXXX)
export PYTHONUNBUFFERED=1
export YOLO_OFFLINE=1  # no network there: Ultralytics' import would try DNS lookups otherwise
{
  date -u +"start %FT%TZ"
  command -v nvidia-smi >/dev/null && nvidia-smi -L
  echo "cpus $(nproc), /dev/shm free $(df -k --output=avail /dev/shm 2>/dev/null | tail -1) KiB"
  if compgen -G "$KIT/wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
      "$KIT"/wheels/*.whl || exit 3
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  fi
  # fail fast (seconds, not minutes) when the environment lacks something
  "$PY" -c "import torch, ultralytics, training.gpu_kit as k; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), 'ultralytics', ultralytics.__version__, 'polars stand-in', k.ensure_polars())" || exit 4
  test -f "$KIT/data/data.yaml" -a -f "$KIT/start.pt" || { echo "no kit at $KIT"; exit 5; }
  [ "$DEVICE" = cpu ] || "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())" \
    || { echo "DEVICE=$DEVICE but torch sees no CUDA device"; exit 6; }
} 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || exit "$rc"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

keep() {  # copy the run's small results into $OUT (through a temporary name: a copy is never half there)
  for f in "$RUNS"/*/weights/last.pt "$RUNS"/*/weights/best.pt "$RUNS"/*/results.csv "$RUNS"/*/args.yaml \
    "$RUNS"/*/run.json; do
    [ -f "$f" ] && cp -f "$f" "$OUT/.partial" && mv -f "$OUT/.partial" "$OUT/$(basename "$f")"
  done
}
(while sleep 30; do keep; done) &
WATCH=$!
overrides=()
# DataLoader workers hand batches over through /dev/shm: where it is small (a container's default), use fewer
shm_kib=$(df -k --output=avail /dev/shm 2>/dev/null | tail -1)
if [ "${shm_kib:-0}" -lt 4000000 ] 2>/dev/null; then
  echo "/dev/shm has ${shm_kib:-no} KiB free: 2 workers" | tee -a "$LOG"
  overrides+=(--set workers=2)
fi
for kv in ${SET:-}; do overrides+=(--set "$kv"); done
"$PY" -m training.gpu_kit train --config "$CONFIG" --data "$KIT/data/data.yaml" --weights "$KIT/start.pt" \
  --out "$RUNS" --device "$DEVICE" "${overrides[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
kill "$WATCH" 2>/dev/null
wait "$WATCH" 2>/dev/null
keep
date -u +"end %FT%TZ, exit $rc" | tee -a "$LOG"
ls -l "$OUT" | tee -a "$LOG"
exit "$rc"
