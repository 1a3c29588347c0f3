"""The choices a user makes for a run, each listed once with the words every interface shows.

The command line (``choices=``), the Processing algorithms (enum options, in this order), the dock (combo boxes),
the runtime's checks and the tools all take their lists from here, so adding a device or a mode is one edit.
QGIS-free and onnxruntime-free: the plugin imports it before it knows whether onnxruntime is installed.
"""

from __future__ import annotations

from .contract import RADIOMETRY_MODES, Direction

#: What every interface calls each direction (dock, Processing display names, messages that point to the other one).
DIRECTION_LABELS = {
    Direction.LANDCOVER_TO_RGB: "Land cover → synthetic RGB",
    Direction.RGB_TO_LANDCOVER: "RGB imagery → land cover",
}

#: Execution devices of :func:`lcgan_qgis.core.runtime.load_model` (``auto``: CUDA when usable, else the CPU).
DEVICES = ("auto", "cpu", "cuda")
DEVICE_LABELS = {"auto": "auto (GPU when usable)", "cpu": "CPU", "cuda": "CUDA GPU"}

#: Model precisions (``auto``: the int8 copy ``M.int8.onnx`` on CPU when it exists, else the float model).
PRECISIONS = ("auto", "fp32", "int8")

#: Radiometry choices of a run: ``None`` keeps the model's own mode; the modes are the contract's.
RADIOMETRY_CHOICES: tuple[str | None, ...] = (None, *RADIOMETRY_MODES)
RADIOMETRY_LABELS: dict[str | None, str] = {
    None: "model default",
    "percentile": "percentile (this raster's range)",
    "fixed": "fixed (training values)",
}
#: What each radiometry choice means (tooltips, help): the labels stay short enough for a narrow dock.
RADIOMETRY_HELP: dict[str | None, str] = {
    None: "the mode stored in the model",
    "percentile": "this raster's own 2-98 % range is the model's range (8-bit imagery, other sensors, lcgan's "
                  "synthetic RGB)",
    "fixed": "pixel values are read in the training imagery's units (e.g. Landsat 8 digital numbers)",
}


def direction_pointer(direction: Direction) -> str:
    """``'<label>' (lcgan:<id>)``: how a message points the user to the algorithm of ``direction``."""
    return f"'{DIRECTION_LABELS[direction]}' (lcgan:{direction.value})"
