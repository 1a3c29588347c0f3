"""The Processing provider ``lcgan``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ...core.rasters.vectorize import VECTOR_DRIVERS
from ..icons import plugin_icon
from .directions import LandcoverToRgb, RgbToLandcover
from .mosaic_algorithm import TranslateMosaic


class LcganProvider(QgsProcessingProvider):
    """Registers the two translation algorithms and the Dask mosaic one; rasters are GeoTIFF (a mosaic writes a folder
    of COG tiles and a VRT), polygons single-file vector formats (they are written under a temporary name and moved
    into place whole)."""

    def id(self) -> str:
        return "lcgan"

    def name(self) -> str:
        return "lcgan"

    def longName(self) -> str:
        return self.tr("lcgan: land cover <-> imagery (CycleGAN)")

    def icon(self) -> QIcon:
        return plugin_icon()

    def loadAlgorithms(self) -> None:
        for algorithm in (LandcoverToRgb(), RgbToLandcover(), TranslateMosaic()):
            self.addAlgorithm(algorithm)

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:
        return "tif"

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return sorted({suffix.lstrip(".") for suffix in VECTOR_DRIVERS if suffix != ".json"})

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:
        return "gpkg"
