"""The choices a user makes for a run, each listed once with the words every interface shows.

The command line (``choices=``), the Processing algorithms (enum options, in this order), the dock (combo boxes),
the runtime's checks and the tools all take their lists from here, so adding a device or a mode is one edit.
QGIS-free and onnxruntime-free: the plugin imports it before it knows whether onnxruntime is installed.
"""

from __future__ import annotations

from .contract import RADIOMETRY_MODES

#: Execution devices of :func:`lcgan_qgis.core.runtime.load_model` (``auto``: CUDA when usable, else the CPU).
DEVICES = ("auto", "cpu", "cuda")
DEVICE_LABELS = {"auto": "auto (GPU when usable)", "cpu": "CPU", "cuda": "CUDA GPU"}

#: Model precisions (``auto``: the int8 copy ``M.int8.onnx`` on CPU when it exists, else the float model).
PRECISIONS = ("auto", "fp32", "int8")

#: Radiometry choices of a run: ``None`` keeps the model's own mode; the modes are the contract's.
RADIOMETRY_CHOICES: tuple[str | None, ...] = (None, *RADIOMETRY_MODES)
RADIOMETRY_LABELS: dict[str | None, str] = {
    None: "model default",
    "percentile": "percentile (this raster's own range; 8-bit, other sensors, lcgan's synthetic RGB)",
    "fixed": "fixed (the training imagery's values, e.g. Landsat digital numbers)",
}
