"""One translation job for every caller: check the outputs, resolve the model, apply the resolution policy, run the
engine, warp the result back.

The Processing algorithms, the dock's background task, the command line and the benchmark all run
:func:`run_translation`, so they behave the same: one set of output-path rules (:func:`files.check_output_paths`)
and one resolution policy (:func:`resampling.plan_resolution`: a raster whose pixel size differs from the model's
GSD by more than 10 % is translated on a grid at the model's GSD and the result warped back onto its own grid).
A reader presents the raster on that grid itself: QGIS's provider reader through provider resampling, the file
reader (:class:`~lcgan_qgis.core.rasters.gdal_io.GdalReader`) through GDAL's resampling RasterIO, with the same choices
and
the same pixels.

A mosaic job on a Dask cluster (:func:`lcgan_qgis.mosaic.job.run_mosaic`) takes the same decisions through
:func:`plan_job` (direction, elevation, resolution, provenance, the engine's options) before it cuts the raster into
super-tiles, so no rule exists twice.

Everything here may run on a worker thread: it touches no QGIS layer or project, only the reader and files. Tiles,
blending, streaming and the GeoTIFF writer belong to :func:`lcgan_qgis.core.run.engine.translate`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import Canceled, ContractError, InputRasterError, ModelFileError, OptionError, OutputError
from ..model.contract import Direction
from ..rasters.output import class_counts
from ..rasters.provenance import provenance_tags
from ..rasters.raster import Grid, RasterInfo, RasterReader
from ..rasters.resampling import GSD_TOLERANCE, ResolutionPlan, plan_resolution, warp_into
from ..rasters.vectorize import check_vector_path, polygonize
from ..resources import bundled_model_path
from ..storage.files import (
    SIDECAR_SUFFIX,
    AtomicFile,
    check_output_paths,
    commit_all,
    output_folder,
    scratch_folder,
    stale_partial_messages,
)

if TYPE_CHECKING:
    from ..model.contract import ModelContract
    from ..model.runtime import Model
    from ..terrain.elevation import ElevationReader
    from .engine import TranslateOptions, TranslateResult

LOG = logging.getLogger(__name__)

#: Share of the progress bar given to the engine when the result is resampled back afterwards.
TRANSLATE_SHARE = 0.9

Progress = Callable[[float], None]
IsCanceled = Callable[[], bool]
Log = Callable[[str], None]


class GridReader(RasterReader, Protocol):
    """A reader that can also present its raster on another grid: :class:`~lcgan_qgis.core.rasters.gdal_io.GdalReader`
    (a file) and :class:`lcgan_qgis.plugin.qgis_reader.ProviderReader` (any QGIS layer)."""

    info: RasterInfo

    @property
    def metres_per_unit(self) -> float | None: ...

    def on_grid(self, grid: Grid, categorical: bool) -> GridReader: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TranslationRequest:
    """What to translate and how; built by the Processing algorithm, the dock widget (main thread) or the CLI.

    Attributes:
        output_path: the GeoTIFF to write.
        direction: which translation the user asked for (the model must match); ``None``: the model's own
            direction (the command line, where the model is always given).
        model_path: the ``.onnx`` model; ``None`` for the bundled model of ``direction``.
        device: one of :data:`~lcgan_qgis.core.choices.DEVICES`.
        threads: CPU intra-op threads (``None``: every core this process may use).
        precision: one of :data:`~lcgan_qgis.core.choices.PRECISIONS` (``auto``: the fastest path that passes the
            model's fidelity gates, :mod:`lcgan_qgis.core.model.precision`).
        overlap_px: tile overlap in pixels; ``None`` for the model's recommendation.
        window_px: inference window in pixels; ``None`` for the engine's default.
        batch_size: tiles per inference batch.
        bands: 1-based input bands in red, green, blue order (RGB input only; ``None``: 1, 2, 3).
        aoi_wkt: polygon in the layer's CRS; only tiles touching it run.
        confidence_path: land-cover output only: also write the max-probability GeoTIFF here.
        radiometry_mode: RGB input only: ``None`` for the model's own mode, else one of
            :data:`~lcgan_qgis.core.model.contract.RADIOMETRY_MODES` (see :func:`describe_radiometry`).
        check_gsd: compare the layer's pixel size with the model's and resample when they differ.
        gsd_tolerance: relative pixel-size difference accepted without resampling.
        input_path: the layer's file, when it has one (an output may not overwrite it).
        overwrite: ``False`` refuses an existing output.
        backend: one of :data:`~lcgan_qgis.core.choices.BACKENDS` (``auto``: see
        :mod:`lcgan_qgis.core.model.precision`).
        cache_dir: OpenVINO's compiled-model cache (the plugin's settings folder; None: the user cache folder).
        elevation_path: a DEM (any GDAL raster, any CRS) for terrain-aware land cover -> RGB models; resampled
            onto the grid being translated on the fly. Ignored, with a warning, by map-only models.
        sun_azimuth_deg, sun_elevation_deg: the sun for the hillshade of terrain-aware models (``None``: the
            model's, i.e. its training imagery's).
        elevation_unit_m: metres per elevation unit (``None``: the unit the DEM states, else the model's).
        vector_path: land-cover output only: also write the classes as polygons here (GeoPackage, GeoJSON,
            FlatGeobuf; :mod:`~lcgan_qgis.core.rasters.vectorize`).
        min_polygon_px: patches smaller than this many pixels are merged into their neighbour before polygonizing.
        input_name: how the provenance tags name the input (``None``: the reader's name).
    """

    output_path: str
    direction: Direction | None = None
    model_path: str | None = None
    device: str = "auto"
    threads: int | None = None
    precision: str = "auto"
    overlap_px: int | None = None
    window_px: int | None = None
    batch_size: int = 1
    bands: tuple[int, ...] | None = None
    aoi_wkt: str | None = None
    confidence_path: str | None = None
    radiometry_mode: str | None = None
    check_gsd: bool = True
    gsd_tolerance: float = GSD_TOLERANCE
    input_path: str | None = None
    overwrite: bool = True
    backend: str = "auto"
    cache_dir: str | None = None
    elevation_path: str | None = None
    sun_azimuth_deg: float | None = None
    sun_elevation_deg: float | None = None
    elevation_unit_m: float | None = None
    vector_path: str | None = None
    min_polygon_px: int = 0
    input_name: str | None = None


@dataclass(frozen=True)
class JobResult:
    """The engine's result plus the contract of the model that produced it (styling needs its scheme), the
    provenance tags written into the outputs, the pixels per class code of a land-cover output (legends list the
    classes present), and the polygons written (``vector_count``, when ``vector_path`` was asked for)."""

    result: TranslateResult
    contract: ModelContract
    tags: dict[str, str] = field(default_factory=dict)
    class_counts: dict[int, int] | None = None
    vector_path: str | None = None
    vector_count: int = 0

    @property
    def canceled(self) -> bool:
        return self.result.canceled


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


def describe_radiometry(requested: str | None, contract: ModelContract) -> str:
    """One line for the log: which radiometry a run uses, whether it was chosen, and what it means."""
    mode = requested or contract.radiometry.mode
    origin = "the model's default" if requested is None else "chosen"
    return f"Radiometry: {mode} ({origin}; {contract.radiometry.explain(mode)})."


_busy_outputs: set[Path] = set()
_busy_lock = threading.Lock()


@contextlib.contextmanager
def claim_outputs(paths: list[str | None]) -> Iterator[None]:
    """Reserve output files for one run of this process; a second run on any of them is refused while it lasts.

    Two runs writing the same file would each finish with an atomic rename, and the later one would silently
    replace the earlier result, so the second is refused instead (runs in other processes are not seen: there, the
    file is whole but the later run's).

    Raises:
        OutputError: another run in this process is writing one of ``paths``.
    """
    claimed = [Path(p).resolve() for p in paths if p]
    with _busy_lock:
        busy = [p for p in claimed if p in _busy_outputs]
        if busy:
            raise OutputError(
                f"Another lcgan run in this QGIS session is writing {busy[0]} right now; wait for it to finish or "
                "choose another output file."
            )
        _busy_outputs.update(claimed)
    try:
        yield
    finally:
        with _busy_lock:
            _busy_outputs.difference_update(claimed)


def run_translation(request: TranslationRequest, reader: GridReader, progress: Progress | None = None,
                    is_canceled: IsCanceled | None = None, log: Log | None = None,
                    model: Model | None = None, note: Log | None = None) -> JobResult:
    """Translate ``reader``'s raster as ``request`` says; returns the engine's result and the model's contract.

    Args:
        request: the parameters.
        reader: the input raster (:class:`~lcgan_qgis.core.rasters.gdal_io.GdalReader` or
            :class:`~lcgan_qgis.plugin.qgis_reader.ProviderReader`).
        progress: called with the fraction done (0..1).
        is_canceled: polled between tile batches; when it turns true the run stops and writes nothing.
        log: receives one-line messages for the user (model, provider, resolution decisions).
        model: a model the caller has loaded (and keeps: it is not closed here), e.g. to translate many rasters
            with one session; ``request.model_path``, ``device``, ``threads``, ``precision``, ``backend`` and
            ``cache_dir`` are then unused.
        note: receives the run's notes (the engine's messages about the input, partial files of killed runs
            removed); default: ``log``.

    Raises:
        LcganError: the core's specific error (model file, contract, input raster, output, device).
    """
    check_output_paths(request.output_path, request.confidence_path, request.input_path, request.overwrite,
                       request.elevation_path)
    if request.vector_path:
        check_vector_path(request.vector_path)
    with claim_outputs([request.output_path, request.confidence_path, request.vector_path]):
        if model is not None:
            return _run_model(request, reader, model, model.path, progress, is_canceled, log, note)
        from ..model.runtime import load_model  # onnxruntime is imported only when a job runs

        model_path = resolve_model_path(request.model_path, request.direction)
        loaded = load_model(model_path, request.device, request.threads, request.precision, request.backend,
                            request.cache_dir)
        try:
            return _run_model(request, reader, loaded, model_path, progress, is_canceled, log, note)
        finally:
            loaded.close()


@dataclass(frozen=True)
class JobPlan:
    """What the job decides from the request, the model's contract and the raster before the engine runs
    (:func:`plan_job`): the same for a single-process run and a mosaic job (:mod:`lcgan_qgis.mosaic`).

    Attributes:
        options: the engine's options (the request's, with the provenance tags).
        tags: the provenance tags of every output.
        elevation_path: the DEM a terrain-aware model reads (``None`` for map-only models: theirs is ignored).
        resolution: the resolution policy's decision (``grid`` set: translate at the model's GSD).
    """

    options: TranslateOptions
    tags: dict[str, str]
    elevation_path: str | None
    resolution: ResolutionPlan


def plan_job(request: TranslationRequest, contract: ModelContract, model_path: Path, info: RasterInfo,
             metres_per_unit: float | None, say: Log, tell: Log) -> JobPlan:
    """The job's decisions for ``request`` with the model ``contract`` (of ``model_path``) on the raster ``info``.

    Raises:
        ContractError: the model translates the other direction.
        InputRasterError: a terrain-aware model without elevation; a raster the resolution policy refuses.
        OptionError: polygons asked of a model that writes no land cover.
    """
    from ..terrain.elevation import ignored_elevation_message, missing_elevation_message
    from .engine import TranslateOptions

    direction = contract.direction
    if request.direction is not None and direction is not request.direction:
        raise ContractError(
            f"Model {model_path} translates {direction.value}, not {request.direction.value}; "
            f"choose a {request.direction.value} model."
        )
    rgb_input = direction is Direction.RGB_TO_LANDCOVER
    if rgb_input:
        say(describe_radiometry(request.radiometry_mode, contract))
    elevation_path = request.elevation_path
    if contract.terrain is None and elevation_path:
        tell(ignored_elevation_message(elevation_path))
        elevation_path = None
    elif contract.terrain is not None and not elevation_path:
        raise InputRasterError(missing_elevation_message(contract, model_path))
    resolution = plan_resolution(info, metres_per_unit, contract.gsd_m, request.gsd_tolerance, request.check_gsd)
    say(resolution.message)
    if request.vector_path and rgb_input is False:
        raise OptionError("Polygons exist only for land-cover output (RGB imagery -> land cover models).")
    tags = provenance_tags(contract, model_path, request.input_name or info.name,
                           elevation_name=Path(elevation_path).name if elevation_path else None)
    options = TranslateOptions(
        tags=tuple(tags.items()),
        overlap_px=request.overlap_px,
        batch_size=request.batch_size,
        bands=request.bands if rgb_input else None,
        radiometry_mode=request.radiometry_mode if rgb_input else None,
        aoi_wkt=request.aoi_wkt,
        confidence_path=request.confidence_path,
        window_px=request.window_px,
        overwrite=request.overwrite,
        sun_azimuth_deg=request.sun_azimuth_deg,
        sun_elevation_deg=request.sun_elevation_deg,
        elevation_unit_m=request.elevation_unit_m,
    )
    return JobPlan(options, tags, elevation_path, resolution)


def _run_model(request: TranslationRequest, reader: GridReader, model: Model, model_path: Path,
               progress: Progress | None, is_canceled: IsCanceled | None, log: Log | None,
               note: Log | None) -> JobResult:
    """:func:`run_translation` once the outputs are reserved and the model is loaded."""
    from .engine import translate

    say = log or LOG.info
    tell = note or say
    report = progress or (lambda _f: None)
    contract = model.contract
    say(f"Model {model_path.name} (version {contract.model_version}, {contract.tile_size_px} px tiles, "
        f"{contract.gsd_m:g} m): {model.summary}.")
    job = plan_job(request, contract, model_path, reader.info, reader.metres_per_unit, say, tell)
    options, tags, elevation_path = job.options, job.tags, job.elevation_path
    rgb_input = contract.direction is Direction.RGB_TO_LANDCOVER
    if job.resolution.grid is None:
        with elevation_on(elevation_path, reader.info) as elevation:
            result = translate(model, reader, request.output_path, options, report, is_canceled, elevation)
    else:
        result = _translate_resampled(model, reader, job.resolution.grid, request, options, report, is_canceled,
                                      say, tell, elevation_path)
    if result.canceled:
        return JobResult(result, contract, tags)
    compiled = f"; OpenVINO compiled in {model.compile_seconds:.1f} s" if model.compile_seconds >= 0.05 else ""
    say(f"{result.tiles} tiles in {result.seconds:.1f} s ({result.mpx_per_s:.2f} Mpx/s{compiled}) with "
        f"{result.backend} {result.precision} on {result.provider}.")
    for message in result.messages:
        tell(message)
    if not rgb_input:
        return JobResult(result, contract, tags)
    counts = class_counts(result.output_path)
    if not request.vector_path:
        return JobResult(result, contract, tags, counts)
    try:
        count = polygonize(result.output_path, request.vector_path, contract.scheme, request.min_polygon_px,
                           is_canceled=is_canceled)
    except Canceled:
        say(f"Canceled while polygonizing: the raster {result.output_path} was kept, no polygons were written.")
        return JobResult(result, contract, tags, counts)
    say(f"{count} polygons (patches under {max(request.min_polygon_px, 1)} px merged into their neighbours) -> "
        f"{request.vector_path}.")
    return JobResult(result, contract, tags, counts, request.vector_path, count)


@contextlib.contextmanager
def elevation_on(path: str | None, info: RasterInfo) -> Iterator[ElevationReader | None]:
    """The DEM at ``path`` presented on ``info``'s grid (``None`` without a path), closed afterwards."""
    if not path:
        yield None
        return
    from ..terrain.elevation import ElevationReader

    with ElevationReader(path, info) as elevation:
        yield elevation


def _translate_resampled(model: Model, reader: GridReader, grid: Grid, request: TranslationRequest,
                         options: TranslateOptions, report: Progress, is_canceled: IsCanceled | None,
                         say: Log, tell: Log, elevation_path: str | None = None) -> TranslateResult:
    """Translate on ``grid`` into a scratch folder beside the output, then warp the results onto the layer's grid.

    All or nothing: the outputs are warped into :class:`~lcgan_qgis.core.storage.files.AtomicFile` temporaries and
    moved into
    place together (:func:`~lcgan_qgis.core.storage.files.commit_all`), so a failure or a cancel keeps every earlier
    result.
    """
    from .engine import translate

    categorical_input = model.contract.direction is Direction.LANDCOVER_TO_RGB
    native = Grid.of_info(reader.info)
    out = Path(request.output_path)
    finals = [out] + ([Path(request.confidence_path)] if request.confidence_path else [])
    for message in stale_partial_messages(finals):
        tell(message)
    with scratch_folder(output_folder(out)) as scratch, contextlib.ExitStack() as stack:
        coarse_out = scratch / "output.tif"
        coarse_conf = scratch / "confidence.tif" if request.confidence_path else None
        coarse_options = replace(options, confidence_path=str(coarse_conf) if coarse_conf else None, overwrite=True,
                                 overviews=False)  # (the warp builds the final file's)
        with contextlib.closing(reader.on_grid(grid, categorical=categorical_input)) as coarse_reader, \
                elevation_on(elevation_path, coarse_reader.info) as elevation:
            result = translate(model, coarse_reader, coarse_out, coarse_options,
                               lambda f: report(TRANSLATE_SHARE * f), is_canceled, elevation)
        if result.canceled:
            return result
        if not coarse_out.is_file():
            raise InputRasterError(f"Layer '{reader.info.name}': the engine wrote no output at the model's GSD.")
        warps = [(coarse_out, out, not categorical_input)]
        if coarse_conf is not None and request.confidence_path:
            warps.append((coarse_conf, Path(request.confidence_path), False))
        targets = []
        for _src, dst, _categorical in warps:
            targets.append(AtomicFile(dst, sidecars=(SIDECAR_SUFFIX,)))  # class names live in the .aux.xml
            stack.callback(targets[-1].abort)  # (nothing to do once committed)
        share = (1.0 - TRANSLATE_SHARE) / len(warps)
        try:
            for i, ((src, dst, categorical), target) in enumerate(zip(warps, targets, strict=True)):
                warp_into(src, target.temp_path, dst, native, categorical,
                          progress=lambda f, i=i: report(TRANSLATE_SHARE + share * (i + f)), is_canceled=is_canceled)
        except Canceled:
            return replace(result, output_path=None, confidence_path=None, canceled=True)
        if is_canceled is not None and is_canceled():
            return replace(result, output_path=None, confidence_path=None, canceled=True)
        commit_all(targets)  # an earlier result is replaced only when every output is ready
        report(1.0)
        say(f"Resampled the result from {grid.pixel_size[0]:.3g} back to the layer's {native.pixel_size[0]:.3g} "
            "CRS units per pixel.")
        return replace(result, output_path=str(out), confidence_path=request.confidence_path)
