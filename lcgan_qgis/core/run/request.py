"""What a single-process translation is asked to do (:class:`TranslationRequest`) and what it did
(:class:`JobResult`), with the reader protocol and the callbacks every job takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..errors import OptionError
from ..rasters.raster import Grid, RasterInfo, RasterReader
from .settings import ModelChoice, RunSettings

if TYPE_CHECKING:
    from ..model.contract import ModelContract
    from .engine import TranslateResult

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
        model: which model runs (a file, or the bundled model of a direction).
        settings: how it runs (:class:`~lcgan_qgis.core.run.settings.RunSettings`).
        confidence_path: land-cover output only: also write the max-probability GeoTIFF here.
        vector_path: land-cover output only: also write the classes as polygons here (GeoPackage, GeoJSON,
            FlatGeobuf; :mod:`~lcgan_qgis.core.rasters.vectorize`).
        min_polygon_px: patches smaller than this many pixels are merged into their neighbour before polygonizing.
        input_path: the layer's file, when it has one (an output may not overwrite it).
        overwrite: ``False`` refuses an existing output.
        input_name: how the provenance tags name the input (``None``: the reader's name).
    """

    output_path: str
    model: ModelChoice = field(default_factory=ModelChoice)
    settings: RunSettings = field(default_factory=RunSettings)
    confidence_path: str | None = None
    vector_path: str | None = None
    min_polygon_px: int = 0
    input_path: str | None = None
    overwrite: bool = True
    input_name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.min_polygon_px, bool) or not isinstance(self.min_polygon_px, int) or self.min_polygon_px < 0:
            raise OptionError(f"min_polygon_px must be an integer >= 0, got {self.min_polygon_px!r}.")


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
