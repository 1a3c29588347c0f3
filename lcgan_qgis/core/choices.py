"""The choices a user makes for a run, each listed once with the words every interface shows.

The command line (``choices=``), the Processing algorithms (enum options, in this order), the dock (combo boxes),
the runtime's checks and the tools all take their lists from here, so adding a device or a mode is one edit.
QGIS-free and onnxruntime-free: the plugin imports it before it knows whether onnxruntime is installed.
"""

from __future__ import annotations

from collections.abc import Sequence

from .direction import Direction
from .errors import DeviceError

#: What every interface calls each direction (dock, Processing display names, messages that point to the other one).
DIRECTION_LABELS = {
    Direction.LANDCOVER_TO_RGB: "Land cover → synthetic RGB",
    Direction.RGB_TO_LANDCOVER: "RGB imagery → land cover",
}

#: Execution devices of :func:`lcgan_qgis.core.model.runtime.load_model` (``auto``: CUDA when usable, else the CPU).
DEVICES = ("auto", "cpu", "cuda")
DEVICE_LABELS = {"auto": "auto (GPU when usable)", "cpu": "CPU", "cuda": "CUDA GPU"}

#: Inference backends (``auto``: OpenVINO on the CPU where installed and the model's fidelity record allows it,
#: else onnxruntime; the choice itself is :func:`lcgan_qgis.core.model.precision.plan_paths`).
BACKENDS = ("auto", "onnxruntime", "openvino")
BACKEND_LABELS = {"auto": "auto (OpenVINO if installed)", "onnxruntime": "onnxruntime", "openvino": "OpenVINO"}
#: What each backend means (tooltips; the labels stay short enough for a narrow dock).
BACKEND_HELP = {
    "auto": "OpenVINO on the CPU where it is installed and the model's fidelity record allows it, else onnxruntime",
    "onnxruntime": "onnxruntime on the device chosen (CPU or CUDA GPU)",
    "openvino": "OpenVINO on the CPU (the optional backend; install it from the dock's Options)",
}

#: Model precisions (``auto``: the fastest path that passes the model's fidelity gates, see
#: :mod:`lcgan_qgis.core.model.precision`; ``int8`` runs the model's QDQ copy ``M.int8.onnx``).
PRECISIONS = ("auto", "fp32", "bf16", "int8")
PRECISION_LABELS = {"auto": "auto (fastest that passes)", "fp32": "fp32", "bf16": "bf16 (OpenVINO)",
                    "int8": "int8"}
#: What each precision means (tooltips).
PRECISION_HELP = {
    "auto": "the fastest path that passes the model's fidelity gates, else fp32",
    "fp32": "32-bit floats: the reference",
    "bf16": "OpenVINO on a CPU with bf16 instructions",
    "int8": "the model's 8-bit copy (M.int8.onnx, written by `python -m lcgan_qgis quantize`)",
}

#: Bounds the interfaces offer for a run (Processing parameters, the dock's spin boxes, the mosaic's super-tiles).
MAX_OVERLAP_PX = 4096
MAX_BATCH_SIZE = 256
MAX_MIN_POLYGON_PX = 1_000_000
MIN_TILE_PX, MAX_TILE_PX = 64, 65536

#: How a model file stores its weights (``python -m lcgan_qgis weights``, ``python -m training export
#: --weight-storage``): ``fp16`` keeps each large weight tensor as float16, read through a Cast to float32, so the
#: file is half the size while inputs, outputs and compute stay float32 (:mod:`lcgan_qgis.tooling.weight_storage`).
WEIGHT_STORAGES = ("fp32", "fp16")

#: How imagery values are scaled (:class:`~lcgan_qgis.core.model.radiometry.Radiometry`): ``percentile``, each
#: raster's own percentile stretch; ``fixed``, the training imagery's values.
RADIOMETRY_MODES = ("percentile", "fixed")
#: Radiometry choices of a run: ``None`` keeps the model's own mode.
RADIOMETRY_CHOICES: tuple[str | None, ...] = (None, *RADIOMETRY_MODES)
RADIOMETRY_LABELS: dict[str | None, str] = {
    None: "model default",
    "percentile": "percentile (this raster's range)",
    "fixed": "fixed (training values)",
}
#: What each radiometry choice means (tooltips, help).
RADIOMETRY_HELP: dict[str | None, str] = {
    None: "the mode stored in the model",
    "percentile": "this raster's own 2-98 % range is the model's range (8-bit imagery, other sensors, lcgan's "
                  "synthetic RGB)",
    "fixed": "pixel values are read in the training imagery's units (e.g. Landsat 8 digital numbers)",
}


def direction_pointer(direction: Direction) -> str:
    """``'<label>' (lcgan:<id>)``: how a message points the user to the algorithm of ``direction``."""
    return f"'{DIRECTION_LABELS[direction]}' (lcgan:{direction.value})"


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise :class:`DeviceError` listing the choices when ``value`` is not one of them (``name``: what it is)."""
    if value not in choices:
        raise DeviceError(f"Unknown {name} {value!r}; choose one of: {', '.join(map(str, choices))}.")
