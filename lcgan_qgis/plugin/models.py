"""The models as the user chooses them: in the dock's list, in every Processing MODEL parameter (also by keyword,
e.g. ``MODEL=terrain`` on the command line), and in the names of result layers. The bundled ones, and the adapted
ones that fine-tuning (the dock's Adapt section, ``lcgan:finetune``) writes to the user-models folder
(``<lcgan home>/models/<name>/<direction>.onnx``), each named ``"<name> (adapted)"``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import LcganError
from ..core.model.contract import Direction
from ..core.resources import bundled_model_path, bundled_terrain_model_path
from ..core.run.models import read_contract
from .training_process import user_models_dir

#: The model files of an adapted model's folder (laid out like resources/models; int8 copies are not listed).
ADAPTED_FILES = {"rgb_to_landcover": "", "landcover_to_rgb": "", "landcover_to_rgb_terrain": ", with relief"}


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


def adapted_models(direction: Direction | None = None) -> list[BundledModel]:
    """The fine-tuned models in :func:`user_models_dir` (of ``direction`` only, when given), by name; the direction
    is the one each model's contract states (a file that is not an lcgan model is left out)."""
    folder = user_models_dir()
    found = []
    for path in sorted(folder.glob("*/*.onnx")) if folder.is_dir() else []:
        if path.stem not in ADAPTED_FILES:
            continue  # (the int8 copies beside the models)
        try:
            model_direction = read_contract(path).direction
        except (LcganError, ImportError, OSError):
            continue
        name = path.parent.name
        found.append(BundledModel(f"{name}:{path.stem}", f"{name} (adapted{ADAPTED_FILES[path.stem]})", name,
                                  model_direction, path))
    return [m for m in found if direction is None or m.direction is direction]


def model_choices(direction: Direction | None = None) -> list[BundledModel]:
    """What a model list offers: the bundled models, then the adapted ones."""
    return bundled_models(direction) + adapted_models(direction)


def bundled_keywords() -> list[str]:
    """``["map", "terrain", "landcover"]``: what ``MODEL`` also accepts."""
    return [m.keyword for m in bundled_models()]


def model_from_value(value: str | None) -> str | None:
    """The model file a parameter value names: a bundled model's keyword (or an adapted one's, ``my_region:
    landcover_to_rgb``) becomes its path, a path stays, empty is ``None`` (the bundled model of the direction)."""
    text = (value or "").strip()
    if not text:
        return None
    match = next((m for m in bundled_models() if text.lower() == m.keyword), None)
    if match is None and ":" in text and not Path(text).is_file():  # an adapted model's keyword, "<name>:<file>"
        match = next((m for m in adapted_models() if text == m.keyword), None)
    return str(match.path) if match is not None else text


def model_short_name(model_path: str | None, direction: Direction) -> str:
    """How a result layer names its model: ``"terrain"``, ``"map only"``, an adapted model's name, or the file's
    name."""
    path = Path(model_path) if model_path else bundled_model_path(direction)
    for model in bundled_models():
        if model.path == path or (path.exists() and model.path.exists() and model.path.samefile(path)):
            return model.short
    if path.stem in ADAPTED_FILES and path.parent.parent == user_models_dir():
        return path.parent.name
    return path.stem
