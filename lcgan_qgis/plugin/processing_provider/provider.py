"""The Processing provider ``lcgan``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..icons import plugin_icon
from .algorithms import LandcoverToRgb, RgbToLandcover
from .mosaic_algorithm import TranslateMosaic


class LcganProvider(QgsProcessingProvider):
    """Registers the two translation algorithms and the Dask mosaic one; outputs are GeoTIFF only."""

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
