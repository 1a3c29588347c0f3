"""Which model file a run uses, and its contract read once per file version.

A request names a model file or only a direction (the bundled model of that direction); :func:`resolve_model_path`
decides. :func:`read_contract` serves the dock's model box and the grid of a web tile layer without loading the
model twice.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelFileError
from ..resources import bundled_model_path

if TYPE_CHECKING:
    from ..model.contract import Direction, ModelContract


def resolve_model_path(model_path: str | None, direction: Direction | None) -> Path:
    """The model file to use: ``model_path`` when given, else the bundled model for ``direction``.

    Raises:
        ModelFileError: no model given and no bundled model installed (says where it was looked for), or neither a
            model nor a direction given.
    """
    if model_path:
        return Path(model_path)
    if direction is None:
        raise ModelFileError("No model file was given; choose a model file (.onnx) exported by lcgan.")
    bundled = bundled_model_path(direction)
    if not bundled.is_file():
        raise ModelFileError(
            f"No model file was given and the bundled {direction.value} model is not installed (looked for "
            f"{bundled}). Choose a model file (.onnx) exported by lcgan."
        )
    return bundled


@lru_cache(maxsize=16)
def _contract_of(path: str, mtime_ns: int, size: int) -> ModelContract:
    from ..model.runtime import load_model  # onnxruntime only when a model is looked at

    with load_model(path, device="cpu", threads=1, precision="fp32", backend="onnxruntime") as model:
        return model.contract


def read_contract(path: str | Path) -> ModelContract:
    """The validated contract of the model at ``path``, cached per file version (the dock's model box, the grid of
    a web tile layer); loads the model once with onnxruntime fp32 on the CPU (no OpenVINO compile), runs nothing.

    Raises:
        LcganError: the core's message for a missing, broken or non-lcgan model.
        ImportError: onnxruntime is not installed.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise ModelFileError(f"Model file not found: {path}") from None
    return _contract_of(str(path), stat.st_mtime_ns, stat.st_size)
