"""Where bundled resources (class schemes, default models, icons, styles) live.

In a repository checkout they are in ``<repo>/resources``; in the Plugin Manager zip ``make zip`` copies them to
``lcgan_qgis/resources``. Both layouts are searched, the plugin's own first.
"""

from __future__ import annotations

from pathlib import Path

from .model.contract import Direction

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    """The resources folder of this installation."""
    for candidate in (_PACKAGE_DIR / "resources", _PACKAGE_DIR.parent / "resources"):
        if candidate.is_dir():
            return candidate
    return _PACKAGE_DIR.parent / "resources"


def default_scheme_path() -> Path:
    """The default class scheme: NLCD 2011's 14 classes present in the Zion sample."""
    return resources_dir() / "schemes" / "nlcd2011.json"


def bundled_model_path(direction: Direction | str) -> Path:
    """Path of the bundled default model for ``direction`` (it may not exist in a bare checkout)."""
    return resources_dir() / "models" / f"{Direction(direction).value}.onnx"


def bundled_terrain_model_path() -> Path:
    """Path of the bundled terrain-aware land cover -> RGB model (it needs elevation; it may not be installed)."""
    return resources_dir() / "models" / f"{Direction.LANDCOVER_TO_RGB.value}_terrain.onnx"


def plugin_version() -> str:
    """The ``version=`` of the plugin's ``metadata.txt`` (the zip's copy, else the repository's)."""
    for path in (_PACKAGE_DIR / "metadata.txt", _PACKAGE_DIR.parent / "metadata.txt"):
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.startswith("version="):
                    return line.partition("=")[2].strip()
    return "unknown"
