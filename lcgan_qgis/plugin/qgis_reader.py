"""A :class:`~lcgan_qgis.core.rasters.raster.RasterReader` over any QGIS raster data provider.

The engine reads pixels through this adapter, so every raster source QGIS opens (GeoTIFF, VRT, in-memory, WMS/XYZ
where the provider hands out blocks) works, not only files. The reader owns a *clone* of the layer's provider, made on
the main thread, so a worker thread can read while the layer stays usable (or is even removed) in the project.

A reader can also present the raster on another north-up grid (same CRS): the provider then resamples each block,
which is how the plugin brings a layer to the model's ground sample distance.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsRaster,
    QgsRasterDataProvider,
    QgsRasterLayer,
    QgsRectangle,
    QgsUnitTypes,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QThread

from ..core.errors import InputRasterError
from ..core.rasters.raster import Grid, RasterInfo, Window

#: QGIS data types the engine can read, and their numpy equivalents.
QGIS_TO_NUMPY: dict[int, np.dtype] = {
    int(Qgis.DataType.Byte): np.dtype(np.uint8),
    int(Qgis.DataType.UInt16): np.dtype(np.uint16),
    int(Qgis.DataType.Int16): np.dtype(np.int16),
    int(Qgis.DataType.UInt32): np.dtype(np.uint32),
    int(Qgis.DataType.Int32): np.dtype(np.int32),
    int(Qgis.DataType.Float32): np.dtype(np.float32),
    int(Qgis.DataType.Float64): np.dtype(np.float64),
}
if hasattr(Qgis.DataType, "Int8"):  # QGIS >= 3.30
    QGIS_TO_NUMPY[int(Qgis.DataType.Int8)] = np.dtype(np.int8)


def numpy_dtype(provider: QgsRasterDataProvider, band: int, name: str) -> np.dtype:
    """The numpy dtype of ``band``; :class:`InputRasterError` naming the layer for types lcgan cannot read."""
    qtype = provider.dataType(band)
    try:
        return QGIS_TO_NUMPY[int(qtype)]
    except KeyError:
        type_name = getattr(qtype, "name", str(qtype))
        raise InputRasterError(
            f"Layer '{name}' band {band} has data type {type_name}, which lcgan cannot read; convert it to an "
            "integer or floating-point raster (e.g. with Raster > Conversion > Translate)."
        ) from None


#: Rendered sources (XYZ and WMS tiles) hand out one band of packed 0xAARRGGBB colours.
PACKED_COLOUR_TYPES = {int(Qgis.DataType.ARGB32), int(Qgis.DataType.ARGB32_Premultiplied)}


def is_packed_colour(provider: QgsRasterDataProvider) -> bool:
    """Whether ``provider`` is a rendered colour source (a web tile service): one band of ARGB32 pixels, which
    the reader presents as red, green and blue bands with the alpha as mask."""
    return provider.bandCount() == 1 and int(provider.dataType(1)) in PACKED_COLOUR_TYPES


def has_native_grid(provider: QgsRasterDataProvider) -> bool:
    """Whether ``provider`` has pixels of its own (a file, a VRT); web tile services render any grid asked for."""
    return provider.xSize() >= 1 and provider.ySize() >= 1


def data_band_count(provider: QgsRasterDataProvider) -> int:
    """Bands of ``provider`` that hold data: trailing alpha bands (an RGBA's 4th band, or the mask band QGIS adds
    for a ``.msk`` or internal GDAL mask) are masks, not data; a packed colour source has three (red, green, blue)."""
    if is_packed_colour(provider):
        return 3
    count = provider.bandCount()
    while count > 1 and provider.colorInterpretation(count) == QgsRaster.ColorInterpretation.AlphaBand:
        count -= 1
    return count


def metres_per_unit(crs: QgsCoordinateReferenceSystem) -> float | None:
    """Metres per unit of ``crs``; ``None`` when it is geographic, invalid or its units are unknown."""
    if not crs.isValid() or crs.isGeographic():
        return None
    units = crs.mapUnits()
    if units in (QgsUnitTypes.DistanceUnit.DistanceDegrees, QgsUnitTypes.DistanceUnit.DistanceUnknownUnit):
        return None
    return QgsUnitTypes.fromUnitToUnitFactor(units, QgsUnitTypes.DistanceUnit.DistanceMeters)


class ProviderReader:
    """Reads windows of a QGIS raster data provider as numpy arrays ``(bands, rows, cols)``.

    Args:
        provider: a provider this reader owns from now on (pass a clone: see :meth:`from_layer`).
        name: how messages name the raster (the layer name).
        grid: the pixel grid to present; ``None`` for the provider's native grid.
    """

    def __init__(self, provider: QgsRasterDataProvider, name: str, grid: Grid | None = None) -> None:
        # (A cloned GDAL provider reports isValid() False on QGIS 3.22 until first used: do not test it here.)
        if provider is None or provider.bandCount() < 1:
            raise InputRasterError(f"Layer '{name}' has no readable bands; is its source still reachable?")
        self._provider = provider
        self._crs = QgsCoordinateReferenceSystem(provider.crs())
        self._lock = threading.Lock()
        self.grid = grid or self._native_grid(provider, name)
        bands = data_band_count(provider)
        self._packed = is_packed_colour(provider)
        if self._packed:
            self._alpha_band: int | None = 1
            self._dtype = np.dtype(np.uint8)
            nodata: tuple[float | None, ...] = (None,) * bands  # (transparent pixels are masked instead)
        else:
            self._alpha_band = provider.bandCount() if bands < provider.bandCount() else None
            dtypes = {numpy_dtype(provider, b, name) for b in range(1, bands + 1)}
            self._dtype = np.dtype(dtypes.pop() if len(dtypes) == 1 else np.result_type(*dtypes))
            nodata = tuple(
                float(provider.sourceNoDataValue(b))
                if provider.sourceHasNoDataValue(b) and provider.useSourceNoDataValue(b)
                else None
                for b in range(1, bands + 1)
            )
        self.info = RasterInfo(
            name=name,
            width=self.grid.width,
            height=self.grid.height,
            band_count=bands,
            dtype=self._dtype.name,
            nodata=nodata,
            geotransform=self.grid.geotransform,
            crs_wkt=provider.crs().toWkt(),
        )

    @staticmethod
    def _native_grid(provider: QgsRasterDataProvider, name: str) -> Grid:
        if not has_native_grid(provider):
            raise InputRasterError(
                f"Layer '{name}' is a web tile service: it has no pixels of its own, so choose the area to translate "
                "(the visible map extent, or an extent), and lcgan reads it at the model's resolution."
            )
        ext, w, h = provider.extent(), provider.xSize(), provider.ySize()
        return Grid(w, h, (ext.xMinimum(), ext.width() / w, 0.0, ext.yMaximum(), 0.0, -ext.height() / h))

    @property
    def metres_per_unit(self) -> float | None:
        """Metres per CRS unit, or ``None`` for a geographic CRS, no CRS or unknown units."""
        return metres_per_unit(self._crs)

    @classmethod
    def from_layer(cls, layer: QgsRasterLayer, grid: Grid | None = None) -> ProviderReader:
        """A reader over a clone of ``layer``'s provider. Call on the thread that owns the layer (main thread)."""
        if layer is None or not layer.isValid():
            name = layer.name() if layer is not None else "?"
            raise InputRasterError(f"Layer '{name}' is not a valid raster layer.")
        provider = layer.dataProvider().clone()
        return cls(provider, layer.name(), grid)

    def on_grid(self, grid: Grid, categorical: bool) -> ProviderReader:
        """Another reader over a fresh clone of the same provider, resampling to ``grid``.

        Args:
            grid: the grid to present (same CRS).
            categorical: class codes (nearest neighbour) rather than imagery (average / bilinear).
        """
        provider = self._provider.clone()
        capability = QgsRasterDataProvider.ProviderCapability.ProviderHintCanPerformProviderResampling
        if provider.providerCapabilities() & capability:
            method = QgsRasterDataProvider.ResamplingMethod
            # Nearest keeps class codes intact; imagery is averaged when shrinking and interpolated when enlarging.
            provider.setZoomedInResamplingMethod(method.Nearest if categorical else method.Bilinear)
            provider.setZoomedOutResamplingMethod(method.Nearest if categorical else method.Average)
            provider.enableProviderResampling(True)
        return ProviderReader(provider, self.info.name, grid)

    @property
    def provider(self) -> QgsRasterDataProvider:
        return self._provider

    def read(self, window: Window, bands: Sequence[int]) -> np.ndarray:
        """Pixels of ``window`` for 1-based ``bands`` as ``(len(bands), height, width)`` in ``info.dtype``."""
        if window.width < 1 or window.height < 1:
            raise InputRasterError(f"Layer '{self.info.name}': empty window {window} requested.")
        if self._provider is None:
            raise InputRasterError(f"Layer '{self.info.name}': the reader is closed.")
        extent = QgsRectangle(*self.grid.bounds(window))
        out = np.empty((len(bands), window.height, window.width), dtype=self._dtype)
        with self._lock:
            packed = self._read_band(1, extent, window) if self._packed else None
            for i, band in enumerate(bands):
                if not 1 <= band <= self.info.band_count:
                    raise InputRasterError(
                        f"Layer '{self.info.name}' has {self.info.band_count} band(s); band {band} does not exist."
                    )
                if packed is not None:  # 0xAARRGGBB: red is bits 16-23, green 8-15, blue 0-7
                    out[i] = (packed >> (8 * (3 - band))) & 0xFF
                else:
                    out[i] = self._read_band(band, extent, window)
        return out

    def read_mask(self, window: Window, bands: Sequence[int]) -> np.ndarray | None:
        """``(height, width)`` bool: pixels of ``window`` the layer's alpha (or GDAL mask) band marks valid; ``None``
        when it has none."""
        if self._alpha_band is None:
            return None
        if self._provider is None:
            raise InputRasterError(f"Layer '{self.info.name}': the reader is closed.")
        extent = QgsRectangle(*self.grid.bounds(window))
        with self._lock:
            values = self._read_band(self._alpha_band, extent, window)
        return (values >> 24) != 0 if self._packed else values != 0

    def _read_band(self, band: int, extent: QgsRectangle, window: Window) -> np.ndarray:
        block = self._provider.block(band, extent, window.width, window.height)
        kind = int(block.dataType()) if block is not None else None
        dtype = np.dtype(np.uint32) if kind in PACKED_COLOUR_TYPES else QGIS_TO_NUMPY.get(kind)
        if block is None or not block.isValid() or dtype is None:
            error = self._provider.error().message() if self._provider.error() else ""
            raise InputRasterError(
                f"Layer '{self.info.name}': reading band {band} at pixels {window} failed. {error}".strip()
            )
        data = np.frombuffer(bytes(block.data()), dtype=dtype)
        if data.size != window.width * window.height:
            raise InputRasterError(
                f"Layer '{self.info.name}': band {band} returned {data.size} pixels for a {window.width}x"
                f"{window.height} window."
            )
        return data.reshape(window.height, window.width)

    def close(self) -> None:
        """Release the provider clone (idempotent).

        PyQGIS leaves a cloned provider owned by C++: dropping the Python reference would leak it, with its GDAL
        dataset, file handle and cached blocks (one per run, measured by the soak test). It is deleted here when
        this is its thread, else handed to its thread's event loop with ``deleteLater`` (a worker thread must not
        delete a QObject of the main thread).
        """
        with self._lock:
            provider, self._provider = self._provider, None  # type: ignore[assignment]
        if provider is None or sip.isdeleted(provider):
            return
        if sip.unwrapinstance(provider.thread()) == sip.unwrapinstance(QThread.currentThread()):
            sip.delete(provider)
        else:
            provider.deleteLater()

    def __enter__(self) -> ProviderReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
