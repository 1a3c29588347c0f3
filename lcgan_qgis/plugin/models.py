"""The bundled models as the user chooses them: in the dock's list, in every Processing MODEL parameter (also by
keyword, e.g. ``MODEL=terrain`` on the command line), and in the names of result layers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.model.contract import Direction
from ..core.resources import bundled_model_path, bundled_terrain_model_path


@dataclass(frozen=True)
class BundledModel:
    """A model shipped with the plugin: its keyword, what the user reads, its direction and file."""

    keyword: str
    label: str
    short: str
    direction: Direction
    path: Path


def bundled_models(direction: Direction | None = None) -> list[BundledModel]:
    """The bundled models (of ``direction`` only, when given) that are installed."""
    models = [
        BundledModel("map", "Bundled: land cover → RGB, from the map only", "map only", Direction.LANDCOVER_TO_RGB,
                     bundled_model_path(Direction.LANDCOVER_TO_RGB)),
        BundledModel("terrain", "Bundled: land cover → RGB with relief (needs an elevation raster)", "terrain",
                     Direction.LANDCOVER_TO_RGB, bundled_terrain_model_path()),
        BundledModel("landcover", "Bundled: RGB imagery → land cover", "bundled model", Direction.RGB_TO_LANDCOVER,
                     bundled_model_path(Direction.RGB_TO_LANDCOVER)),
    ]
    return [m for m in models if (direction is None or m.direction is direction) and m.path.is_file()]


def bundled_keywords() -> list[str]:
    """``["map", "terrain", "landcover"]``: what ``MODEL`` also accepts."""
    return [m.keyword for m in bundled_models()]


def model_from_value(value: str | None) -> str | None:
    """The model file a parameter value names: a bundled model's keyword becomes its path, a path stays, empty is
    ``None`` (the bundled model of the direction)."""
    text = (value or "").strip()
    if not text:
        return None
    match = next((m for m in bundled_models() if text.lower() == m.keyword), None)
    return str(match.path) if match is not None else text


def model_short_name(model_path: str | None, direction: Direction) -> str:
    """How a result layer names its model: ``"terrain"``, ``"map only"``, or the file's name."""
    path = Path(model_path) if model_path else bundled_model_path(direction)
    for model in bundled_models():
        if model.path == path or (path.exists() and model.path.exists() and model.path.samefile(path)):
            return model.short
    return path.stem
