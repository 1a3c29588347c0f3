"""``python -m tools.bench.layer_profile MODEL.onnx [SIDE]``: where a generator's time goes, per layer group, on
OpenVINO int8 (its ``.int8.onnx`` sibling, float layers bf16: the default path) and onnxruntime fp32 (the
baseline), one thread, one ``SIDE`` px window (docs/bench_second_gen.md). Groups come from the node names the
exporter writes (``/blocks.0/spade1/gamma/...``): where (head, blocks, up.N, tail, ...) x what (conv, modulation
conv, noise, norm/mul/add, other). Prints one line per path and the JSON."""

from __future__ import annotations

import collections
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def group(name: str) -> str:
    """``"<where> <what>"`` of a node name."""
    n = name.lower()
    found = re.search(r"/(features\.\d|head|blocks\.\d+|up\.\d|tail|enc\d|dec\d|up\d)", n)
    where = "blocks" if found and found.group(1).startswith("blocks") else (found.group(1) if found else "other")
    kinds = (("modulation conv", ("gamma", "beta")), ("noise", ("noise", "/mix")),
             ("norm/mul/add", ("norm", "/mul", "/add")), ("conv", ("conv",)))
    what = next((kind for kind, keys in kinds if any(k in n for k in keys)), "other")
    return f"{where} {what}"


def openvino_int8(path: Path, shape: tuple[int, ...], repeats: int = 3) -> tuple[float, collections.Counter]:
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(path))
    model.reshape({model.inputs[0]: list(shape)})
    config = {"INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
              "INFERENCE_NUM_THREADS": 1, "ENABLE_CPU_PINNING": False, "PERF_COUNT": True}
    request = core.compile_model(model, "CPU", config).create_infer_request()
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        request.infer({0: x})
        walls.append(time.perf_counter() - t0)
    times: collections.Counter = collections.Counter()
    for info in request.profiling_info:
        times[group(info.node_name)] += info.real_time.total_seconds()
    return min(walls), times


def onnxruntime_fp32(path: Path, shape: tuple[int, ...], repeats: int = 2) -> tuple[float, collections.Counter]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "profile")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        session.run(None, {"input": x})
        walls.append(time.perf_counter() - t0)
    events = json.loads(Path(session.end_profiling()).read_text())
    times: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            times[group(e["name"][: -len("_kernel_time")])] += e["dur"] / 1e6 / repeats
    return min(walls), times


def main(argv: list[str]) -> int:
    import onnx

    path, side = Path(argv[0]), int(argv[1]) if len(argv) > 1 else 512
    channels = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[1].dim_value
    shape = (1, channels, side, side)
    out = {}
    for name, fn, model in (("openvino_int8", openvino_int8, path.with_suffix(".int8.onnx")),
                            ("onnxruntime_fp32", onnxruntime_fp32, path)):
        wall, times = fn(model, shape)
        total = sum(times.values())
        out[name] = {"wall_s": round(wall, 3), "groups_s": {k: round(v, 4) for k, v in times.most_common()},
                     "share": {k: round(v / total, 3) for k, v in times.most_common()}}
        print(name, f"{wall:.3f} s", [(k, round(v / total, 3)) for k, v in times.most_common(10)])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
