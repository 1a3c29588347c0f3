"""How every GeoTIFF lcgan writes is laid out (one block size and one set of creation options: the engine's
outputs, resampled results, polygonizing scratch files, the benchmark's and the demo's inputs), and the writer
the engine streams into (:class:`GeoTiffWriter`, with its internal overviews)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from osgeo import gdal, gdal_array

from ..errors import OutputError
from ..storage.atomic import AtomicFile
from ..storage.paths import SIDECAR_SUFFIX
from .gdal_io import gdal_call, gdal_errors

#: Block side of every GeoTIFF lcgan writes (px): the engine writes whole block rows, QGIS reads tiles, and overviews
#: are built until the smallest level fits in one block (``gdaladdo``'s rule).
BLOCK_PX = 256

#: DEFLATE level of every GeoTIFF lcgan writes and of its overviews. Level 1, not GDAL's default 6: on the bench's
#: 4096 px outputs it compresses the class codes in a seventh of the CPU time (0.06 s instead of 0.44 s, the file
#: 1.7 MB instead of 1.3 MB) and imagery in two thirds (with :data:`IMAGERY_PREDICTOR`: 39 MB instead of 44 MB);
#: reading is as fast (docs/bench_second_gen.md, "Where the default path spends its time").
DEFLATE_LEVEL = 1

#: GDAL GTiff creation options: :data:`BLOCK_PX` tiles, lossless DEFLATE at :data:`DEFLATE_LEVEL`, BigTIFF only when
#: the file may pass 4 GB, and blocks holding only nodata left out of the file (``SPARSE_OK``: a raster with little
#: data writes and reads little).
GEOTIFF_CREATION_OPTIONS = ("TILED=YES", f"BLOCKXSIZE={BLOCK_PX}", f"BLOCKYSIZE={BLOCK_PX}", "COMPRESS=DEFLATE",
                            f"ZLEVEL={DEFLATE_LEVEL}", "BIGTIFF=IF_SAFER", "SPARSE_OK=TRUE")

#: Horizontal differencing before DEFLATE (lossless) for multi-band integer rasters, lcgan's imagery: smooth
#: neighbouring values compress better (class codes and confidences are single-band and keep none).
IMAGERY_PREDICTOR = "PREDICTOR=2"


def creation_options(dtype: np.dtype | str, band_count: int) -> list[str]:
    """The creation options of a GeoTIFF of ``band_count`` bands of ``dtype``: :data:`GEOTIFF_CREATION_OPTIONS`,
    with :data:`IMAGERY_PREDICTOR` for multi-band integer rasters."""
    imagery = band_count > 1 and np.dtype(dtype).kind in "iu"
    return list(GEOTIFF_CREATION_OPTIONS) + ([IMAGERY_PREDICTOR] if imagery else [])


def overview_factors(width: int, height: int) -> list[int]:
    """Overview decimation factors 2, 4, 8... until the level's larger side fits in one block
    (:data:`~lcgan_qgis.core.rasters.geotiff.BLOCK_PX`, ``gdaladdo``'s rule): fast display at small scales."""
    factors, factor = [], 2
    while max(width, height) / (factor // 2) > BLOCK_PX:
        factors.append(factor)
        factor *= 2
    return factors


def build_overviews(dataset: gdal.Dataset, categorical: bool, name: str,
                    progress: Callable[[float], None] | None = None) -> None:
    """Build internal, DEFLATE-compressed overviews of an open, writable GeoTIFF ``dataset``.

    Class codes are decimated by nearest neighbour (a code is never averaged into another), imagery and
    confidences by averaging (nodata pixels are left out).

    Raises:
        OutputError: naming ``name`` when GDAL cannot write them.
    """
    factors = overview_factors(dataset.RasterXSize, dataset.RasterYSize)
    if not factors:
        return
    settings = {"COMPRESS_OVERVIEW": "DEFLATE", "ZLEVEL_OVERVIEW": str(DEFLATE_LEVEL)}
    previous = {key: gdal.GetThreadLocalConfigOption(key, None) for key in settings}
    for key, value in settings.items():
        gdal.SetThreadLocalConfigOption(key, value)
    try:
        with gdal_errors() as errors:
            status = gdal_call(errors, dataset.BuildOverviews, "NEAREST" if categorical else "AVERAGE", factors,
                               callback=(lambda f, *_: progress(f) or 1) if progress else None)
    finally:
        for key, value in previous.items():
            gdal.SetThreadLocalConfigOption(key, value)
    if status not in (0, None) or errors:
        detail = (errors[-1] if errors else "GDAL failed").rstrip(".")
        raise OutputError(f"Cannot write the overviews of {name}: {detail}. The disk may be full or the file too large "
                          "for the file system; free some space or choose another folder (nothing was written).")


class GeoTiffWriter:
    """A GeoTIFF being written under a temporary name; :meth:`commit` moves it to ``path``. A context manager.

    Args:
        path: the final output path.
        width, height, band_count: raster size.
        dtype: numpy dtype of the pixels (``uint8``, ``uint16``, ``float32``...).
        geotransform, crs_wkt: georeference copied from the input.
        nodata: nodata value written on every band (None: none).

    Raises:
        OutputError: the folder does not exist or is not writable, or GDAL cannot create the file.
    """

    def __init__(self, path: str | Path, width: int, height: int, band_count: int, dtype: np.dtype | str,
                 geotransform: Sequence[float], crs_wkt: str, nodata: float | None = None) -> None:
        self.path = Path(path)
        self._file = AtomicFile(self.path, sidecars=(SIDECAR_SUFFIX,))  # GDAL keeps class names there
        self.temp_path = self._file.temp_path
        gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(np.dtype(dtype).type)
        with gdal_errors() as errors:
            driver = gdal.GetDriverByName("GTiff")
            dataset = gdal_call(errors, driver.Create, str(self.temp_path), width, height, band_count, gdal_type,
                                options=creation_options(dtype, band_count))
        if dataset is None:
            self._file.abort()
            raise OutputError(f"Cannot create {self.path}: {errors[-1] if errors else 'GDAL failed'}")
        self._dataset: gdal.Dataset | None = dataset
        dataset.SetGeoTransform(tuple(geotransform))
        if crs_wkt:
            dataset.SetProjection(crs_wkt)
        if nodata is not None:
            for b in range(1, band_count + 1):
                dataset.GetRasterBand(b).SetNoDataValue(float(nodata))
        self.band_count = band_count

    def band(self, index: int) -> gdal.Band:
        """The 1-based GDAL band, for styling (colour table, colour interpretation, descriptions)."""
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        return self._dataset.GetRasterBand(index)

    def set_tags(self, tags: dict[str, str]) -> None:
        """Dataset metadata (default domain; ``TIFFTAG_*`` keys become TIFF tags), e.g. the provenance."""
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        if tags:
            self._dataset.SetMetadata(dict(tags))

    def build_overviews(self, categorical: bool) -> None:
        """Internal overviews of what was written (call once every pixel is written, before :meth:`commit`)."""
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        self._dataset.FlushCache()
        build_overviews(self._dataset, categorical, str(self.path))

    def write(self, row_off: int, col_off: int, pixels: np.ndarray) -> None:
        """Write ``(bands, rows, cols)`` pixels at ``(row_off, col_off)``.

        Raises:
            OutputError: GDAL cannot write (disk full, I/O error); the message names the output path.
        """
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        with gdal_errors() as errors:
            for b in range(pixels.shape[0]):
                status = gdal_call(errors, self._dataset.GetRasterBand(b + 1).WriteArray, pixels[b], col_off, row_off)
                if status != gdal.CE_None or errors:
                    raise OutputError(self._write_failed(errors[-1] if errors else "write failed"))

    def flush(self) -> None:
        """Write the cached blocks to disk and drop them from GDAL's cache (bounded memory).

        Raises:
            OutputError: GDAL cannot write (disk full, I/O error).
        """
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        with gdal_errors() as errors:
            gdal_call(errors, self._dataset.FlushCache)
        if errors:
            raise OutputError(self._write_failed(errors[-1]))

    def _write_failed(self, detail: str) -> str:
        """The message of a failed write: the output, GDAL's reason, the free space and what to do."""
        try:
            free = f"{shutil.disk_usage(self.temp_path.parent).free / 1e6:,.0f} MB free"
        except OSError:
            free = "free space unknown"
        return (f"Cannot write {self.path}: {detail.rstrip('.')} ({free} in {self.temp_path.parent}). The disk may "
                "be full or the file too large for the file system or a size limit; free some space or choose another "
                "folder.")

    def commit(self) -> Path:
        """Flush, close and move the file to its final path (replacing an existing file).

        Raises:
            OutputError: flushing or renaming failed (the temporary file is removed).
        """
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        try:
            with gdal_errors() as errors:
                gdal_call(errors, self._dataset.FlushCache)
                self._dataset = None  # closing writes the last blocks and the directory
            if errors:
                raise OutputError(self._write_failed(errors[-1]))
            self._file.commit()
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (idempotent)."""
        with gdal_errors():
            self._dataset = None
        self._file.abort()

    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._dataset is not None:
            self.abort()
