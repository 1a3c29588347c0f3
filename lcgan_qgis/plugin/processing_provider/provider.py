"""The Processing provider ``lcgan``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ...core.rasters.vectorize import VECTOR_DRIVERS
from ..icons import plugin_icon
from .landcover_to_rgb import LandcoverToRgb
from .rgb_to_landcover import RgbToLandcover
from .scenario_algorithm import RenderScenario
from .train_algorithm import FineTuneAlgorithm
from .translate_mosaic import TranslateMosaic, dask_available


class LcganProvider(QgsProcessingProvider):
    """Registers the two translation algorithms, and the Dask mosaic one where Dask's distributed package is
    installed; rasters are GeoTIFF (a mosaic writes a folder of COG tiles and a VRT), polygons single-file vector
    formats (they are written under a temporary name and moved into place whole)."""

    def id(self) -> str:
        return "lcgan"

    def name(self) -> str:
        return "lcgan"

    def longName(self) -> str:
        return self.tr("lcgan: land cover <-> imagery (CycleGAN)")

    def icon(self) -> QIcon:
        return plugin_icon()

    def loadAlgorithms(self) -> None:
        algorithms = [LandcoverToRgb(), RgbToLandcover(), RenderScenario()]
        if dask_available():  # (a desktop user without a cluster is not offered it)
            algorithms.append(TranslateMosaic())
        algorithms.append(FineTuneAlgorithm())
        for algorithm in algorithms:
            self.addAlgorithm(algorithm)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:
        return "tif"

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return sorted({suffix.lstrip(".") for suffix in VECTOR_DRIVERS if suffix != ".json"})

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:
        return "gpkg"
