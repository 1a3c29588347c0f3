"""What the dock and the Processing algorithms ask of a QGIS raster layer, answered once.

- :func:`layer_file`: the file behind a layer (an output may not overwrite it); :func:`elevation_file`: the same
  for the elevation layer, which the core reads with GDAL (refused when there is none);
- :func:`reader_for`: the reader a run uses: the layer's own pixels, or for a web tile service (no pixels of its
  own) the chosen area at the model's resolution;
- :func:`direction_misfit` / :func:`fits_direction`: whether a layer can be the input of a direction with its
  default bands: one band of class codes for land cover (an elevation raster is recognised, :func:`elevation_like`,
  and pointed to the Elevation input), at least red, green and blue for imagery, alpha and mask bands not counted
  (:func:`~lcgan_qgis.plugin.qgis_reader.data_band_count`); :func:`default_bands` and :func:`band_names`: the bands
  the dock offers (a web layer's red, green, blue). (The imagery
  algorithm also takes a band mapping such as 1,1,1 for a one-band layer: it leaves that layer to the engine,
  whose message explains the mapping.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qgis.core import QgsGeometry, QgsMapLayer, QgsRaster, QgsRasterLayer
from qgis.PyQt.QtCore import QCoreApplication

from ..core.choices import direction_pointer
from ..core.errors import InputRasterError
from ..core.model.contract import Direction
from ..core.rasters.raster import Grid, Window
from ..core.rasters.resampling import area_grid
from ..core.run.job import read_contract, resolve_model_path
from .qgis_reader import (
    QGIS_TO_NUMPY,
    ProviderReader,
    data_band_count,
    has_native_grid,
    is_packed_colour,
    metres_per_unit,
)

#: Pixels per side read to recognise an elevation raster (a decimated overview of the whole layer).
SAMPLE_PX = 128
#: More distinct values than this are not class codes (class legends hold a few dozen classes).
MAX_CLASS_CODES = 64
#: Values (in metres or feet) an elevation raster holds: the Dead Sea shore to above Everest in feet.
ELEVATION_RANGE = (-1500.0, 30000.0)
#: Pixels per side of the coarse read that checks a web tile service answers.
SERVICE_PROBE_PX = 32
_ELEVATION_SEEN: dict[tuple[str, str], str | None] = {}


def layer_file(layer: QgsRasterLayer) -> str | None:
    """The file behind a GDAL layer (its source without ``|option`` suffixes), else ``None``."""
    if layer.providerType() != "gdal":
        return None
    return layer.source().split("|")[0] or None


def raster_file(layer: QgsMapLayer | None, what: str) -> str:
    """The file behind a raster layer that a GDAL reader (the core, a training child) opens; ``what`` names the
    layer's role in the message (``"Elevation"``, ``"Imagery"``).

    Raises:
        InputRasterError: the layer is invalid, not a raster, or not a GDAL raster (a web service, a memory layer...).
    """
    if layer is None or not layer.isValid():
        raise InputRasterError(f"The {what.lower()} layer is not a raster layer QGIS can open.")
    path = layer_file(layer) if isinstance(layer, QgsRasterLayer) else None
    if path is None:
        raise InputRasterError(f"{what} layer '{layer.name()}' is not a file GDAL can read (provider "
                               f"'{layer.providerType()}'); save it as a GeoTIFF first (right-click > Export > "
                               "Save As...).")
    return path


def elevation_file(layer: QgsRasterLayer | None) -> str:
    """The DEM file behind an elevation layer (the core reads it with GDAL, warping it onto the land cover's grid):
    :func:`raster_file`."""
    return raster_file(layer, "Elevation")


def elevation_like(layer: QgsRasterLayer) -> str | None:
    """When ``layer`` looks like an elevation raster (one band, many distinct values, an elevation's range), how it
    looks (``"3,812 distinct values from 1,102 to 2,648"``), else ``None``. Read once per layer source, from a
    decimated overview."""
    provider = layer.dataProvider()
    if provider is None or not has_native_grid(provider) or is_packed_colour(provider) or \
            data_band_count(provider) != 1:
        return None
    key = (layer.id(), layer.source())
    if key not in _ELEVATION_SEEN:
        _ELEVATION_SEEN[key] = _elevation_sample(provider)
    return _ELEVATION_SEEN[key]


def _elevation_sample(provider: Any) -> str | None:
    width, height = min(provider.xSize(), SAMPLE_PX), min(provider.ySize(), SAMPLE_PX)
    block = provider.block(1, provider.extent(), width, height)
    dtype = QGIS_TO_NUMPY.get(int(block.dataType())) if block is not None and block.isValid() else None
    if dtype is None:
        return None
    values = np.frombuffer(bytes(block.data()), dtype=dtype).astype(np.float64)
    if provider.sourceHasNoDataValue(1):
        values = values[values != provider.sourceNoDataValue(1)]
    values = values[np.isfinite(values)]
    distinct = np.unique(values)
    if distinct.size <= MAX_CLASS_CODES:
        return None
    low, high = float(distinct[0]), float(distinct[-1])
    if not ELEVATION_RANGE[0] <= low <= high <= ELEVATION_RANGE[1]:
        return None
    return f"{distinct.size:,} distinct values from {low:,.0f} to {high:,.0f}"


def direction_misfit(layer: Any, direction: Direction) -> str | None:
    """Why ``layer`` cannot be the input of ``direction`` (a translated sentence naming it), or ``None``."""
    if not isinstance(layer, QgsRasterLayer) or layer.dataProvider() is None:
        return QCoreApplication.translate("lcgan", "Choose a raster layer to translate.")
    bands = data_band_count(layer.dataProvider())
    elevation = elevation_like(layer) if direction is Direction.LANDCOVER_TO_RGB and bands == 1 else None
    if elevation:
        return QCoreApplication.translate(
            "lcgan", "Layer '{0}' looks like an elevation raster ({1}), not land cover (class codes): choose it as "
            "the Elevation (DEM) of the model with relief, and a land-cover map as the input.").format(
                layer.name(), elevation)
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


def band_names(layer: Any) -> list[tuple[int, str]]:
    """``(band, name)`` of the data bands the reader offers: a web layer's packed colours as Red, Green, Blue; a
    file's bands by number and colour (``"Band 1 (red)"``; a "gray" or undefined colour is left out, as it says
    nothing of the band)."""
    if not isinstance(layer, QgsRasterLayer) or layer.dataProvider() is None:
        return []
    provider = layer.dataProvider()
    if is_packed_colour(provider):
        return [(1, "Red"), (2, "Green"), (3, "Blue")]
    colours = {QgsRaster.ColorInterpretation.RedBand: "red", QgsRaster.ColorInterpretation.GreenBand: "green",
               QgsRaster.ColorInterpretation.BlueBand: "blue"}
    names = []
    for band in range(1, data_band_count(provider) + 1):
        colour = colours.get(provider.colorInterpretation(band))
        name = provider.generateBandName(band)  # ("Band 1"; QGIS 3.22 has no band descriptions)
        names.append((band, f"{name} ({colour})" if colour else name))
    return names


def default_bands(layer: Any) -> tuple[int, int, int] | None:
    """The red, green, blue bands of ``layer``: from its colour interpretation when it names them, else 1, 2, 3
    (a 3-band or RGBA image, a web layer); ``None`` for fewer than three data bands."""
    if not isinstance(layer, QgsRasterLayer) or layer.dataProvider() is None:
        return None
    provider = layer.dataProvider()
    if is_packed_colour(provider):
        return (1, 2, 3)
    count = data_band_count(provider)
    if count < 3:
        return None
    colours = {provider.colorInterpretation(b): b for b in range(count, 0, -1)}
    wanted = (QgsRaster.ColorInterpretation.RedBand, QgsRaster.ColorInterpretation.GreenBand,
              QgsRaster.ColorInterpretation.BlueBand)
    if all(c in colours for c in wanted):
        return tuple(colours[c] for c in wanted)  # type: ignore[return-value]
    return (1, 2, 3)


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
    _check_service(layer, bounds)
    return ProviderReader.from_layer(layer, grid), [message]


def _check_service(layer: QgsRasterLayer, bounds: tuple[float, float, float, float]) -> None:
    """Read the area once, coarsely, from a web tile service: no pixel at all means it did not answer.

    Raises:
        InputRasterError: the service returned no pixels over the area (unreachable, wrong address, no tiles).
    """
    xmin, ymin, xmax, ymax = bounds
    size = SERVICE_PROBE_PX
    overview = Grid(size, size, (xmin, (xmax - xmin) / size, 0.0, ymax, 0.0, -(ymax - ymin) / size))
    with ProviderReader.from_layer(layer, overview) as probe:
        mask = probe.read_mask(Window(0, 0, size, size), (1, 2, 3))
        error = probe.provider.error().message() if probe.provider.error() else ""
    if mask is not None and not mask.any():
        source = dict(part.split("=", 1) for part in layer.source().split("&") if "=" in part).get("url", "")
        raise InputRasterError(QCoreApplication.translate(
            "lcgan", "Web layer '{0}' returned no pixels over the area to translate: the service is unreachable "
            "(no network, a proxy, or a wrong address{1}) or has no tiles there. {2}").format(
                layer.name(), f": {source}" if source else "", error).strip())
