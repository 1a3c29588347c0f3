"""Run settings: small frozen records, each checking itself when it is built, so an invalid one cannot exist.

Every way of starting a run (the Processing algorithms, the dock, the command line, a mosaic job, training's
evaluation) builds these records by keyword and hands them over whole: :class:`RunSettings` is what a
single-process run (:class:`~lcgan_qgis.core.run.job.TranslationRequest`) and a mosaic job
(:class:`~lcgan_qgis.mosaic.job.MosaicRequest`) share, the engine's options hold it, and a new setting is one field
of one record plus the adapters that fill it in.

The records are cut by what changes together: which model (:class:`ModelChoice`), how it runs
(:class:`Execution`), how the raster is cut into windows (:class:`Windowing`), how imagery is read
(:class:`ImageInput`), the elevation and sun of terrain-aware models (:class:`Terrain`), the resolution policy
(:class:`Resolution`) and the texture of synthetic imagery (:class:`Rendering`). Checks that need the model (a
window that is a multiple of its size, a mode it lacks) happen
where the model is known, in :meth:`Windowing.fit` and the engine's plan.

Python 3.9 (QGIS 3.22 on Windows): plain frozen dataclasses with defaults, no ``kw_only`` or ``slots``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..choices import BACKENDS, DEVICES, PRECISIONS, check_choice
from ..errors import ContractError, OptionError
from ..model.contract import RADIOMETRY_MODES, Direction
from ..model.terrain_inputs import check_sun
from ..rasters.resampling import GSD_TOLERANCE
from .bounds import check_threads, check_window
from .models import resolve_model_path

if TYPE_CHECKING:
    from ..model.contract import ModelContract

#: The engine's inference window when none is chosen (px).
DEFAULT_WINDOW_PX = 512
#: Largest user seed (the model's noise seed plus this still fits the 64-bit noise key, :mod:`.noise`).
MAX_SEED = 2**63 - 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name: str, value: Any, minimum: int, optional: bool = False) -> None:
    """``value`` must be an integer >= ``minimum`` (or ``None`` when ``optional``), else :class:`OptionError`."""
    if value is None and optional:
        return
    if not _is_int(value) or value < minimum:
        raise OptionError(f"{name} must be an integer >= {minimum}, got {value!r}.")


@dataclass(frozen=True)
class ModelChoice:
    """Which model runs.

    Attributes:
        path: the ``.onnx`` model; ``None`` for the bundled model of ``direction``.
        direction: the translation the user asked for (the model must translate it); ``None``: the model's own (the
            command line, where the model is always given).
    """

    path: str | None = None
    direction: Direction | None = None

    def __post_init__(self) -> None:
        if self.direction is not None and not isinstance(self.direction, Direction):
            raise OptionError(f"direction must be one of {[d.value for d in Direction]}, got {self.direction!r}.")

    def resolve(self) -> Path:
        """The model file (:func:`~lcgan_qgis.core.run.models.resolve_model_path`)."""
        return resolve_model_path(self.path, self.direction)


@dataclass(frozen=True)
class Execution:
    """How the model runs: device, CPU threads, precision, backend and OpenVINO's compiled-model cache.

    Attributes:
        device: one of :data:`~lcgan_qgis.core.choices.DEVICES`.
        threads: CPU intra-op threads (``None``: every core this process may use; a mosaic: per worker).
        precision: one of :data:`~lcgan_qgis.core.choices.PRECISIONS` (``auto``: the fastest path that passes the
            model's fidelity gates, :mod:`lcgan_qgis.core.model.precision`).
        backend: one of :data:`~lcgan_qgis.core.choices.BACKENDS`.
        cache_dir: OpenVINO's compiled-model cache (``None``: the user cache folder).
    """

    device: str = "auto"
    threads: int | None = None
    precision: str = "auto"
    backend: str = "auto"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        check_choice("device", self.device, DEVICES)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("backend", self.backend, BACKENDS)
        _check_int("threads", self.threads, 1, optional=True)
        check_threads(self.threads)

    def load(self, path: Any) -> Any:
        """The model at ``path`` loaded as this record says (:func:`~lcgan_qgis.core.model.runtime.load_model`)."""
        from ..model.runtime import load_model  # onnxruntime only when a model is loaded

        return load_model(path, self.device, self.threads, self.precision, self.backend, self.cache_dir)


@dataclass(frozen=True)
class Windowing:
    """How the raster is cut into inference windows.

    Attributes:
        window_px: inference window side (``None``: :data:`DEFAULT_WINDOW_PX`; shrunk to fit the raster evenly).
        overlap_px: overlap between windows (``None``: the model's recommendation).
        batch_size: windows per inference batch.
    """

    window_px: int | None = None
    overlap_px: int | None = None
    batch_size: int = 1

    def __post_init__(self) -> None:
        _check_int("overlap_px", self.overlap_px, 0, optional=True)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("window_px", self.window_px, 1, optional=True)

    def fit(self, contract: ModelContract) -> tuple[int, int]:
        """``(overlap_px, window_px)`` for the model of ``contract``.

        Raises:
            OptionError: the window is not a multiple of the model's size multiple, or the overlap is not under half
                of it.
        """
        overlap = contract.overlap_px if self.overlap_px is None else self.overlap_px
        window = DEFAULT_WINDOW_PX if self.window_px is None else self.window_px
        multiple = contract.size_multiple_px
        if window < multiple:
            raise OptionError(f"window_px must be an integer >= {multiple}, got {window!r}.")
        if window % multiple:
            raise OptionError(f"window_px {window} must be a multiple of the model's size multiple {multiple}.")
        if 2 * overlap >= window:
            raise OptionError(f"overlap_px {overlap} must be less than half of the window ({window} px); lower the "
                              f"overlap or raise window_px.")
        check_window(window, self.batch_size)  # (the machine's bounds: smallest window, memory of a batch)
        return overlap, window


@dataclass(frozen=True)
class ImageInput:
    """How imagery (the input of RGB -> land cover models) is read; unused for land-cover input.

    Attributes:
        bands: 1-based input bands in the model's band order (``None``: 1..n).
        radiometry_mode: ``None`` for the model's own mode, else one of
            :data:`~lcgan_qgis.core.model.contract.RADIOMETRY_MODES`.
    """

    bands: tuple[int, ...] | None = None
    radiometry_mode: str | None = None

    def __post_init__(self) -> None:
        if self.bands is not None and (not isinstance(self.bands, tuple) or not all(map(_is_int, self.bands))):
            raise OptionError(f"bands must be a tuple of band numbers (1-based), got {self.bands!r}.")
        if self.radiometry_mode is not None and self.radiometry_mode not in RADIOMETRY_MODES:
            raise OptionError(f"Unknown radiometry mode {self.radiometry_mode!r}; choose one of: "
                              f"{', '.join(RADIOMETRY_MODES)}.")


@dataclass(frozen=True)
class Terrain:
    """The elevation and sun of terrain-aware land cover -> RGB models (ignored, with a message, by others).

    Attributes:
        elevation_path: a DEM (any GDAL raster, any CRS), resampled onto the grid being translated on the fly.
        sun_azimuth_deg: degrees clockwise from north, in [0, 360) (``None``: the model's).
        sun_elevation_deg: degrees above the horizon, in (0, 90] (``None``: the model's).
        elevation_unit_m: metres per elevation unit, > 0 (``None``: the unit the DEM states, else the model's).
    """

    elevation_path: str | None = None
    sun_azimuth_deg: float | None = None
    sun_elevation_deg: float | None = None
    elevation_unit_m: float | None = None

    def __post_init__(self) -> None:
        try:
            check_sun(self.sun_azimuth_deg, self.sun_elevation_deg, "sun position", optional=True)
        except ContractError as exc:
            raise OptionError(str(exc)) from None
        unit = self.elevation_unit_m
        if unit is not None and (isinstance(unit, bool) or not isinstance(unit, (int, float))
                                 or not (math.isfinite(unit) and unit > 0)):
            raise OptionError(f"The elevation unit must be a positive number of metres, got {unit!r}.")

    def without_elevation(self) -> Terrain:
        """This record for a model that reads no elevation."""
        return Terrain(sun_azimuth_deg=self.sun_azimuth_deg, sun_elevation_deg=self.sun_elevation_deg,
                       elevation_unit_m=self.elevation_unit_m)


@dataclass(frozen=True)
class Resolution:
    """The resolution policy (:func:`~lcgan_qgis.core.rasters.resampling.plan_resolution`).

    Attributes:
        check_gsd: compare the raster's pixel size with the model's GSD and act when they differ.
        gsd_tolerance: relative pixel-size difference accepted as is (> 0).
    """

    check_gsd: bool = True
    gsd_tolerance: float = GSD_TOLERANCE

    def __post_init__(self) -> None:
        tolerance = self.gsd_tolerance
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
            raise OptionError(f"gsd_tolerance must be a number > 0, got {tolerance!r}.")


@dataclass(frozen=True)
class Rendering:
    """The texture of synthetic imagery.

    Attributes:
        seed: an integer in [0, 2**63 - 1] that offsets the model's noise stream
            (:func:`~lcgan_qgis.core.run.noise.stream_seed`): another seed paints other texture over the same layout;
            the same seed gives the same pixels however the raster is tiled. Models without noise channels ignore it.
    """

    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("seed", self.seed, 0)
        if self.seed > MAX_SEED:
            raise OptionError(f"seed must be at most {MAX_SEED}, got {self.seed!r}.")


@dataclass(frozen=True)
class RunSettings:
    """Every setting a single-process run and a mosaic job share, one record per concern.

    Attributes:
        execution, windowing, image, terrain, resolution, rendering: see each record.
        aoi_wkt: a polygon in the raster's CRS; only windows touching it run, pixels outside it are nodata.
    """

    execution: Execution = field(default_factory=Execution)
    windowing: Windowing = field(default_factory=Windowing)
    image: ImageInput = field(default_factory=ImageInput)
    terrain: Terrain = field(default_factory=Terrain)
    resolution: Resolution = field(default_factory=Resolution)
    rendering: Rendering = field(default_factory=Rendering)
    aoi_wkt: str | None = None

    def __post_init__(self) -> None:
        for name, kind in (("execution", Execution), ("windowing", Windowing), ("image", ImageInput),
                           ("terrain", Terrain), ("resolution", Resolution), ("rendering", Rendering)):
            if not isinstance(getattr(self, name), kind):
                raise OptionError(f"{name} must be a {kind.__name__} record, got {getattr(self, name)!r}.")
