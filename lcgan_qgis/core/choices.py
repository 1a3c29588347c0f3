"""The choices a user makes for a run, each listed once with the words every interface shows.

The command line (``choices=``), the Processing algorithms (enum options, in this order), the dock (combo boxes),
the runtime's checks and the tools all take their lists from here, so adding a device or a mode is one edit.
QGIS-free and onnxruntime-free: the plugin imports it before it knows whether onnxruntime is installed.
"""

from __future__ import annotations

from collections.abc import Sequence

from .contract import RADIOMETRY_MODES
from .errors import DeviceError

#: Execution devices of :func:`lcgan_qgis.core.runtime.load_model` (``auto``: CUDA when usable, else the CPU).
DEVICES = ("auto", "cpu", "cuda")
DEVICE_LABELS = {"auto": "auto (GPU when usable)", "cpu": "CPU", "cuda": "CUDA GPU"}

#: Inference backends (``auto``: OpenVINO on the CPU where installed and the model's fidelity record allows it,
#: else onnxruntime; the choice itself is :func:`lcgan_qgis.core.precision.plan_paths`).
BACKENDS = ("auto", "onnxruntime", "openvino")
BACKEND_LABELS = {"auto": "auto (OpenVINO on the CPU when installed)", "onnxruntime": "onnxruntime",
                  "openvino": "OpenVINO"}

#: Model precisions (``auto``: the fastest path that passes the model's fidelity gates, see
#: :mod:`lcgan_qgis.core.precision`; ``int8`` runs the model's QDQ copy ``M.int8.onnx``).
PRECISIONS = ("auto", "fp32", "bf16", "int8")
PRECISION_LABELS = {"auto": "auto (fastest path that passes the model's fidelity gates)", "fp32": "fp32",
                    "bf16": "bf16 (OpenVINO, CPUs with bf16)", "int8": "int8 (the model's .int8.onnx copy)"}

#: Radiometry choices of a run: ``None`` keeps the model's own mode; the modes are the contract's.
RADIOMETRY_CHOICES: tuple[str | None, ...] = (None, *RADIOMETRY_MODES)
RADIOMETRY_LABELS: dict[str | None, str] = {
    None: "model default",
    "percentile": "percentile (this raster's own range; 8-bit, other sensors, lcgan's synthetic RGB)",
    "fixed": "fixed (the training imagery's values, e.g. Landsat digital numbers)",
}


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise :class:`DeviceError` listing the choices when ``value`` is not one of them (``name``: what it is)."""
    if value not in choices:
        raise DeviceError(f"Unknown {name} {value!r}; choose one of: {', '.join(map(str, choices))}.")
