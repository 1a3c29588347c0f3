#!/usr/bin/env bash
# GPU check for the `device` tool (one short run on a lent GPU machine, ~3-5 minutes):
#   1. CUDA bf16 training-step throughput (img/s) of the full-size CycleGAN at batch 1 and batch 8
#      (tools/bench_train.py, default fast path: bf16 autocast + channels_last + fused Adam on CUDA);
#   2. export parity of both full-size generators under onnxruntime-gpu (CUDAExecutionProvider) vs torch.
# Results: $OUT/gpu_bench_b1.json, $OUT/gpu_bench_b8.json, $OUT/gpu_export_parity.json, $OUT/gpu_check.log.
#
# Usage (device tool, from the repository root):  bash tools/gpu_check.sh
# Needs on the machine: python3 with a CUDA build of torch, onnx, onnxruntime-gpu, rasterio, numpy (no network there,
# so nothing is installed); the script says which import is missing and stops.
set -euo pipefail
OUT="${OUT:-out/gpu_check}"
PY="${PY:-python3}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not available"
for mod in torch onnx onnxruntime rasterio numpy; do
  "$PY" -c "import $mod; print('$mod', getattr($mod, '__version__', '?'))" || { echo "MISSING: python module $mod"; exit 3; }
done
"$PY" -c "import torch, sys; ok = torch.cuda.is_available(); print('torch CUDA:', ok, torch.version.cuda); sys.exit(0 if ok else 4)"

echo "== training-step throughput (bf16, full size, 256 px)"
for batch in 1 8; do
  timeout 240 "$PY" -m tools.bench_train --device cuda --variants default fp32_eager --batch "$batch" \
    --threads 4 --steps 10 --warmup 3 --out "$OUT/gpu_bench_b${batch}.json"
done

echo "== export parity under onnxruntime-gpu"
timeout 180 "$PY" - "$OUT/gpu_export_parity.json" <<'PYEOF'
import json, sys, tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from lcgan_qgis.core.model.contract import Direction, ModelContract, Radiometry
from lcgan_qgis.core.resources import default_scheme_path
from lcgan_qgis.core.model.scheme import ClassScheme
from training.export import export_generator, parity
from training.models import ResnetGenerator

scheme = ClassScheme.load(default_scheme_path())
radiometry = Radiometry("fixed", (7000.0, 7500.0, 8000.0), (16000.0, 14000.0, 12000.0))
report = {"onnxruntime": ort.__version__, "available_providers": ort.get_available_providers(), "models": {}}
torch.manual_seed(0)
with tempfile.TemporaryDirectory() as tmp:
    for direction in Direction:
        contract = ModelContract(direction, scheme, radiometry, tile_size_px=256, overlap_px=32)
        final = "tanh" if direction is Direction.LANDCOVER_TO_RGB else "logits"
        net = ResnetGenerator(contract.in_channels, contract.out_channels, 64, 9, final)
        path = Path(tmp) / f"{direction.value}.onnx"
        cpu_diff = export_generator(net, contract, path)
        x = torch.rand(2, contract.in_channels, 256, 256) * 2 - 1
        with torch.no_grad():
            ref = net.eval()(x)
            ref = ref.softmax(1) if final == "logits" else ref
        session = ort.InferenceSession(str(path), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        gpu_diff = parity(path, x.numpy(), ref.numpy(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        report["models"][direction.value] = {"cpu_max_abs_diff": cpu_diff, "gpu_max_abs_diff": gpu_diff,
                                             "providers_used": session.get_providers(), "pass": gpu_diff <= 1e-3}
Path(sys.argv[1]).write_text(json.dumps(report, indent=2))
print(json.dumps(report, indent=2))
sys.exit(0 if all(m["pass"] for m in report["models"].values()) else 5)
PYEOF
echo "== done: $OUT"
