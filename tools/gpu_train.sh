#!/usr/bin/env bash
# Full-size training run for a lent GPU machine (the `device` tool), one short fixed budget, resumable:
#   the second-generation recipe at full size (CONFIG, default training/configs/zion_spade.toml: SPADE generator
#   with per-layer noise, U-Net for RGB -> land cover, multi-scale discriminator that sees the map, feature
#   matching, the checkerboard notch in the loop, BatchNorm, paired terms; ngf 64, 256 px crops), bf16 autocast,
#   channels_last and fused Adam on CUDA; stops after MAX_STEPS or MAX_SECONDS, whichever comes first, with a
#   checkpoint, then exports both generators (ONNX + contract) and runs tools/gpu_check.sh.
# Everything comes back under $OUT: run/ (config, losses.csv, losses.png, samples, checkpoints/last.pt),
# models/*.onnx, gpu_check/, gpu_train.log. Bring it back and bundle the models only if `make evaluate` says they are
# better (MODEL_DIR=...).
#
# Usage on the device (data carried into the tree, e.g. .gl/zion = a copy of ../shared/data/zion):
#   DATA=.gl/zion bash tools/gpu_train.sh
# Tested here on the CPU with a tiny budget:
#   DEVICE=cpu NGF=8 CROP=64 BATCH=2 MAX_STEPS=2 OUT=/tmp/gpu_train bash tools/gpu_train.sh
set -euo pipefail
OUT="${OUT:-out/gpu_train}"
PY="${PY:-python3}"
DATA="${DATA:-../shared/data/zion}"
DEVICE="${DEVICE:-cuda}"
CONFIG="${CONFIG:-training/configs/zion_spade.toml}"  # or zion_bundled.toml: the first-generation ResNet recipe
NGF="${NGF:-64}"
CROP="${CROP:-256}"
BATCH="${BATCH:-8}"
MAX_STEPS="${MAX_STEPS:-3000}"
MAX_SECONDS="${MAX_SECONDS:-420}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_train.log") 2>&1

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
for mod in torch onnx onnxruntime rasterio numpy; do
  "$PY" -c "import $mod; print('$mod', getattr($mod, '__version__', '?'))" || { echo "MISSING: python module $mod"; exit 3; }
done
[ -f "$DATA/landsat8_rgb.tif" ] || { echo "MISSING: $DATA/landsat8_rgb.tif (carry the Zion sample, set DATA)"; exit 3; }

echo "== training ($CONFIG, ngf $NGF, ${CROP} px, batch $BATCH, device $DEVICE, at most $MAX_STEPS steps / $MAX_SECONDS s)"
# The run stops cleanly (checkpoint, exit 128+15) on SIGTERM from timeout; a later call resumes from run/.
set +e
timeout --signal=TERM "$MAX_SECONDS" "$PY" -m training train --config "$CONFIG" \
  --data "$DATA" --run-dir "$OUT/run" "runtime.device=$DEVICE" "model.ngf=$NGF" "data.crop_size_px=$CROP" \
  "optim.batch_size=$BATCH" "runtime.max_steps=$MAX_STEPS" runtime.threads=0 runtime.progress=false \
  runtime.checkpoint_every_steps=200 runtime.checkpoint_every_s=120
status=$?
set -e
case "$status" in 0|124|143) echo "training stopped with status $status (0 = budget done, 124/143 = time budget)";;
  *) echo "training failed with status $status"; exit "$status";; esac

echo "== export"
"$PY" -m training export --run-dir "$OUT/run" --out "$OUT/models"
if [ "$DEVICE" = "cuda" ]; then OUT="$OUT/gpu_check" PY="$PY" bash tools/gpu_check.sh; fi
echo "== done: $OUT"
