"""What the dock and the Processing algorithms ask of a QGIS raster layer, answered once.

- :func:`layer_file`: the file behind a layer (an output may not overwrite it); :func:`elevation_file`: the same
  for the elevation layer, which the core reads with GDAL (refused when there is none);
- :func:`reader_for`: the reader a run uses: the layer's own pixels, or for a web tile service (no pixels of its
  own) the chosen area at the model's resolution;
- :func:`direction_misfit` / :func:`fits_direction`: whether a layer can be the input of a direction with its
  default bands: one band of class codes for land cover, at least red, green and blue for imagery, alpha and mask
  bands not counted (:func:`~lcgan_qgis.plugin.qgis_reader.data_band_count`). (The imagery
  algorithm also takes a band mapping such as 1,1,1 for a one-band layer: it leaves that layer to the engine,
  whose message explains the mapping.)
"""

from __future__ import annotations

from typing import Any

from qgis.core import QgsGeometry, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication

from ..core.choices import direction_pointer
from ..core.errors import InputRasterError
from ..core.model.contract import Direction
from ..core.rasters.resampling import area_grid
from ..core.run.job import read_contract, resolve_model_path
from .qgis_reader import ProviderReader, data_band_count, has_native_grid, metres_per_unit


def layer_file(layer: QgsRasterLayer) -> str | None:
    """The file behind a GDAL layer (its source without ``|option`` suffixes), else ``None``."""
    if layer.providerType() != "gdal":
        return None
    return layer.source().split("|")[0] or None


def elevation_file(layer: QgsRasterLayer | None) -> str:
    """The DEM file behind an elevation layer (the core reads it with GDAL, warping it onto the land cover's grid).

    Raises:
        InputRasterError: the layer is invalid or not a GDAL raster (a web service, a memory layer...).
    """
    if layer is None or not layer.isValid():
        raise InputRasterError("The elevation layer is not a raster layer QGIS can open.")
    path = layer_file(layer)
    if path is None:
        raise InputRasterError(f"Elevation layer '{layer.name()}' is not a file GDAL can read (provider "
                               f"'{layer.providerType()}'); save it as a GeoTIFF first (right-click > Export > "
                               "Save As...).")
    return path


def direction_misfit(layer: Any, direction: Direction) -> str | None:
    """Why ``layer`` cannot be the input of ``direction`` (a translated sentence naming it), or ``None``."""
    if not isinstance(layer, QgsRasterLayer) or layer.dataProvider() is None:
        return QCoreApplication.translate("lcgan", "Choose a raster layer to translate.")
    bands = data_band_count(layer.dataProvider())
    if direction is Direction.LANDCOVER_TO_RGB and bands != 1:
        return QCoreApplication.translate(
            "lcgan", "Layer '{0}' has {1} bands; a land-cover raster has one band of class codes. For imagery use "
            "{2}.").format(layer.name(), bands, direction_pointer(Direction.RGB_TO_LANDCOVER))
    if direction is Direction.RGB_TO_LANDCOVER and bands < 3:
        return QCoreApplication.translate(
            "lcgan", "Layer '{0}' has {1} band(s); imagery needs red, green and blue bands. For a land-cover map "
            "use {2}.").format(layer.name(), bands, direction_pointer(Direction.LANDCOVER_TO_RGB))
    return None


def fits_direction(layer: Any, direction: Direction) -> bool:
    """Whether ``layer`` can be the input of ``direction`` (see :func:`direction_misfit`)."""
    return direction_misfit(layer, direction) is None


def reader_for(layer: QgsRasterLayer, aoi_wkt: str | None, model_path: str | None,
               direction: Direction) -> tuple[ProviderReader, list[str]]:
    """The reader of a run over ``layer`` (main thread) and the notes to log about it.

    A web tile service (XYZ, WMS) has no pixels of its own: it is read over the area to translate (``aoi_wkt``, in
    the layer's CRS) at the model's ground sample distance.

    Raises:
        InputRasterError: a web tile service without an area, or an area too large at the model's resolution.
        LcganError, ImportError: the model cannot be read (its GSD is needed for a web tile service).
    """
    if has_native_grid(layer.dataProvider()):
        return ProviderReader.from_layer(layer), []
    if not aoi_wkt:
        raise InputRasterError(QCoreApplication.translate(
            "lcgan", "Layer '{0}' is a web tile service: it has no pixels of its own, so choose the area to "
            "translate (in the dock: the visible map extent or polygon features; in Processing: an extent)."
        ).format(layer.name()))
    contract = read_contract(resolve_model_path(model_path, direction))
    area = QgsGeometry.fromWkt(aoi_wkt).boundingBox().intersect(layer.extent())
    bounds = (area.xMinimum(), area.yMinimum(), area.xMaximum(), area.yMaximum())
    grid, message = area_grid(bounds, layer.crs().toWkt(), metres_per_unit(layer.crs()), contract.gsd_m, layer.name())
    return ProviderReader.from_layer(layer, grid), [message]
