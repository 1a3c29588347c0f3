"""What a mosaic job is asked to do (:class:`MosaicRequest`, with its :class:`Cluster`) and what it did
(:class:`MosaicResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..core.choices import MIN_TILE_PX
from ..core.errors import OptionError
from ..core.model.contract import ModelContract
from ..core.model.precision import ONNXRUNTIME
from ..core.run.settings import ModelChoice, RunSettings
from .cluster import DEFAULT_TIMEOUT_S
from .folder import VRT_NAME
from .grid import DEFAULT_TILE_PX

DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class Cluster:
    """Where the tiles run and how they are cut.

    Attributes:
        scheduler: a Dask scheduler address; ``None`` starts a local cluster of ``local_workers`` processes.
        local_workers: worker processes of the local cluster (``None``: cores / 4, at least 1).
        tile_px: target super-tile side (edges snap to the window grid, see :mod:`.grid`).
        retries: extra tries of a tile after an error (a lost worker is handled by Dask on its own).
        timeout_s: how long to wait for the scheduler and for the first worker.
    """

    scheduler: str | None = None
    local_workers: int | None = None
    tile_px: int = DEFAULT_TILE_PX
    retries: int = DEFAULT_RETRIES
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if isinstance(self.tile_px, bool) or not isinstance(self.tile_px, int) or self.tile_px < MIN_TILE_PX:
            raise OptionError(f"The super-tile size must be an integer >= {MIN_TILE_PX} px, got {self.tile_px!r}.")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise OptionError(f"retries must be an integer >= 0, got {self.retries!r}.")
        if self.local_workers is not None and (isinstance(self.local_workers, bool)
                                               or not isinstance(self.local_workers, int) or self.local_workers < 1):
            raise OptionError(f"The number of local workers must be an integer >= 1, got {self.local_workers!r}.")
        if self.scheduler and self.local_workers:
            raise OptionError("Give either a scheduler address or a number of local workers, not both.")
        if not self.timeout_s > 0:
            raise OptionError(f"The timeout must be > 0 s, got {self.timeout_s!r}.")


@dataclass(frozen=True)
class MosaicRequest:
    """What to translate, where to write it, and on which cluster.

    Attributes:
        inputs: one raster (file, VRT, ``/vsicurl/...``, ``/vsis3/...``), or several, or folders of rasters.
        output_dir: the mosaic's folder (created when missing): ``tiles/*.tif``, ``manifest.jsonl``, ``mosaic.vrt``.
        model: which model runs (every worker must be able to read its path).
        settings: the run's settings, as for a single-process run; ``settings.execution.threads`` is the inference
            threads of each worker (``None``: local, cores / workers; remote, the worker's Dask thread count).
        cluster: where the tiles run and how they are cut.
        input_name: how the provenance tags name the input (``None``: the input's file name).

    A mosaic writes the output raster only: a confidence raster or polygons come from a single-process run
    (``translate --confidence/--vector``) of the part that needs them; it resumes instead of overwriting (tiles whose
    manifest line and checksum agree are kept).
    """

    inputs: tuple[str, ...]
    output_dir: str
    model: ModelChoice = field(default_factory=ModelChoice)
    settings: RunSettings = field(default_factory=RunSettings)
    cluster: Cluster = field(default_factory=Cluster)
    input_name: str | None = None

    @property
    def vrt_path(self) -> Path:
        """The mosaic's VRT."""
        return Path(self.output_dir) / VRT_NAME


@dataclass(frozen=True)
class MosaicResult:
    """What a mosaic run did. ``vrt_path`` is None when it was cancelled (the finished tiles stay)."""

    vrt_path: str | None
    output_dir: str
    tiles: int  # super-tiles of the mosaic
    ran: int  # run by this call
    skipped: int  # already done (manifest line and checksum agree)
    retries: int | None  # extra attempts: errors retried plus tasks rerun after a worker was lost (None: unknown)
    seconds: float  # the whole call
    run_seconds: float  # from the first tile submitted to the last one finished
    mpx_per_s: float  # pixels of the tiles run / run_seconds
    windows: int  # inference windows run by this call
    workers: int
    dashboard: str | None
    contract: ModelContract  # the model's (styling the VRT as a layer needs its direction and scheme)
    canceled: bool = False
    messages: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)  # the provenance tags of the tiles and the VRT
    backend: str = ONNXRUNTIME  # what every worker ran
    precision: str = "fp32"
