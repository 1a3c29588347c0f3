"""The job's decisions before the engine runs (:func:`plan_job`), the same for a single-process run and a mosaic
job (:mod:`lcgan_qgis.mosaic`): direction, radiometry, elevation, resolution policy and provenance tags."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ContractError
from ..model.contract import Direction
from ..rasters.provenance import provenance_tags
from ..rasters.raster import RasterInfo
from ..rasters.resampling import ResolutionPlan, plan_resolution
from .request import Log
from .settings import ImageInput, RunSettings

if TYPE_CHECKING:
    from ..model.contract import ModelContract
    from ..terrain.elevation import ElevationReader


@dataclass(frozen=True)
class JobPlan:
    """What the job decides from the settings, the model's contract and the raster before the engine runs.

    Attributes:
        settings: the run's settings as the engine takes them: the image input dropped for land-cover input, the
            DEM dropped for a map-only model.
        tags: the provenance tags of every output.
        resolution: the resolution policy's decision (``grid`` set: translate at the model's GSD).
    """

    settings: RunSettings
    tags: dict[str, str]
    resolution: ResolutionPlan

    @property
    def elevation_path(self) -> str | None:
        """The DEM a terrain-aware model reads (``None`` for map-only models: theirs is ignored)."""
        return self.settings.terrain.elevation_path


def describe_radiometry(requested: str | None, contract: ModelContract) -> str:
    """One line for the log: which radiometry a run uses, whether it was chosen, and what it means."""
    mode = requested or contract.radiometry.mode
    origin = "the model's default" if requested is None else "chosen"
    return f"Radiometry: {mode} ({origin}; {contract.radiometry.explain(mode)})."


def plan_job(settings: RunSettings, contract: ModelContract, model_path: Path, info: RasterInfo,
             metres_per_unit: float | None, log: Log, note: Log, direction: Direction | None = None,
             input_name: str | None = None) -> JobPlan:
    """The job's decisions for ``settings`` with the model ``contract`` (of ``model_path``) on the raster ``info``.

    Args:
        log, note: receive the decisions worth a line (radiometry, resolution) and the notes (an ignored DEM).
        direction: the translation asked for (``None``: the model's).
        input_name: how the provenance tags name the input (``None``: ``info.name``).

    Raises:
        ContractError: the model translates the other direction.
        InputRasterError: a terrain-aware model without elevation; a raster the resolution policy refuses.
    """
    from ..terrain.elevation import ignored_elevation_message, require_elevation

    if direction is not None and contract.direction is not direction:
        raise ContractError(
            f"Model {model_path} translates {contract.direction.value}, not {direction.value}; "
            f"choose a {direction.value} model."
        )
    if contract.direction is Direction.RGB_TO_LANDCOVER:
        log(describe_radiometry(settings.image.radiometry_mode, contract))
    else:
        settings = replace(settings, image=ImageInput())
    elevation_path = settings.terrain.elevation_path
    require_elevation(contract, elevation_path, model_path)  # (before anything is read; the engine checks again)
    if contract.terrain is None and elevation_path:
        note(ignored_elevation_message(elevation_path))
        settings = replace(settings, terrain=settings.terrain.without_elevation())
        elevation_path = None
    resolution = plan_resolution(info, metres_per_unit, contract.gsd_m, settings.resolution.gsd_tolerance,
                                 settings.resolution.check_gsd)
    log(resolution.message)
    tags = provenance_tags(contract, model_path, input_name or info.name,
                           elevation_name=Path(elevation_path).name if elevation_path else None,
                           seed=settings.rendering.seed)
    return JobPlan(settings, tags, resolution)


@contextlib.contextmanager
def elevation_on(path: str | None, info: RasterInfo) -> Iterator[ElevationReader | None]:
    """The DEM at ``path`` presented on ``info``'s grid (``None`` without a path), closed afterwards."""
    if not path:
        yield None
        return
    from ..terrain.elevation import ElevationReader

    with ElevationReader(path, info) as elevation:
        yield elevation
