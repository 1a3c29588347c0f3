"""The one place the plugin's adapters (the Processing algorithms, the dock) turn the fields they read into the
core's :class:`~lcgan_qgis.core.run.request.TranslationRequest` and its records, so a new run setting is read in
each adapter and handed over here once."""

from __future__ import annotations

from typing import Any

from ..core.model.contract import Direction
from ..core.run.request import TranslationRequest
from ..core.run.settings import (
    Execution,
    ImageInput,
    ModelChoice,
    Rendering,
    Resolution,
    RunSettings,
    Terrain,
    Windowing,
)

#: Flat field -> the record that holds it (the rest are the request's own fields).
RECORDS: dict[type, tuple[str, ...]] = {
    Execution: ("device", "threads", "precision", "backend", "cache_dir"),
    Windowing: ("window_px", "overlap_px", "batch_size"),
    ImageInput: ("bands", "radiometry_mode"),
    Terrain: ("elevation_path", "sun_azimuth_deg", "sun_elevation_deg", "elevation_unit_m"),
    Resolution: ("check_gsd", "gsd_tolerance"),
    Rendering: ("seed",),
}
SETTING_NAMES = {Execution: "execution", Windowing: "windowing", ImageInput: "image", Terrain: "terrain",
                 Resolution: "resolution", Rendering: "rendering"}


def run_settings(fields: dict[str, Any]) -> RunSettings:
    """The run settings held in flat ``fields``, which it takes out of the dict (what is left is the request's).

    Raises:
        OptionError: a value a record refuses (its message names the field).
    """
    records = {SETTING_NAMES[kind]: kind(**{name: fields.pop(name) for name in names if name in fields})
               for kind, names in RECORDS.items()}
    return RunSettings(aoi_wkt=fields.pop("aoi_wkt", None), **records)


def translation_request(direction: Direction, **fields: Any) -> TranslationRequest:
    """A request for ``direction`` from flat fields (``output_path``, ``model_path``, ``bands``, ``seed``...).

    Raises:
        OptionError: a value a record refuses (its message names the field).
    """
    fields = dict(fields)
    settings = run_settings(fields)
    model = ModelChoice(fields.pop("model_path", None), direction)
    return TranslationRequest(model=model, settings=settings, **fields)
