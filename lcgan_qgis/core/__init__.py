"""QGIS-free core of lcgan: numpy + onnxruntime (+ GDAL's osgeo for file I/O).

Imported by the QGIS plugin, the command line and the benchmarks. Must never import qgis, torch or rasterio.
"""

from .errors import (
    Canceled,
    ContractError,
    DeviceError,
    InputRasterError,
    LcganError,
    ModelFileError,
    OutputError,
    SchemeError,
)
from .model.contract import Direction, ModelContract, Radiometry
from .model.scheme import ClassScheme, LandCoverClass

__all__ = [
    "Canceled",
    "ClassScheme",
    "ContractError",
    "DeviceError",
    "Direction",
    "InputRasterError",
    "LandCoverClass",
    "LcganError",
    "ModelContract",
    "ModelFileError",
    "OutputError",
    "Radiometry",
    "SchemeError",
]
