"""The input of a mosaic job: one raster GDAL opens (a GeoTIFF, a COG, a VRT, a ``/vsicurl/`` or ``/vsis3/`` path),
or several rasters / a folder of them, mosaicked into a VRT in the output folder (``gdal.BuildVRT``) that every worker
reads. The rasters of a set must share CRS, band count, data type and pixel size (checked; the odd one is named).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from osgeo import gdal, osr

from ..core.errors import InputRasterError, OutputError
from ..core.rasters.gdal_io import GdalReader, gdal_call, gdal_errors
from ..core.storage.files import AtomicFile

INPUT_VRT_NAME = "input.vrt"
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")


def _is_folder(path: str) -> bool:
    stat = gdal.VSIStatL(path)
    return stat is not None and stat.IsDirectory()


def _folder_rasters(folder: str) -> list[str]:
    names = gdal.ReadDir(folder) or []
    found = sorted(f"{folder.rstrip('/')}/{n}" for n in names if n.lower().endswith(RASTER_SUFFIXES))
    if not found:
        raise InputRasterError(f"The folder {folder} holds no rasters ({', '.join(RASTER_SUFFIXES)}).")
    return found


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """The raster files named by ``inputs`` (folders expanded to their rasters, sorted), in order."""
    if not inputs:
        raise InputRasterError("No input raster was given.")
    files: list[str] = []
    for item in inputs:
        files.extend(_folder_rasters(item) if _is_folder(item) else [item])
    return files


def _describe(path: str) -> tuple[str, int, str, tuple[float, float]]:
    with GdalReader(path) as reader:
        info = reader.info
    return info.crs_wkt, info.band_count, info.dtype, info.pixel_size


def _same_crs(a: str, b: str) -> bool:
    if a == b:
        return True
    first, second = osr.SpatialReference(), osr.SpatialReference()
    with gdal_errors():
        if first.ImportFromWkt(a) != 0 or second.ImportFromWkt(b) != 0:
            return False
    return bool(first.IsSame(second))


def check_set(files: Sequence[str]) -> None:
    """Refuse a set of rasters that cannot be one mosaic, naming the first odd file and what differs."""
    crs, bands, dtype, pixel = _describe(files[0])
    for path in files[1:]:
        other = _describe(path)
        if not _same_crs(crs, other[0]):
            raise InputRasterError(f"{path} has another CRS than {files[0]}; warp the rasters to one CRS first "
                                   "(gdalwarp -t_srs ...).")
        if other[1:3] != (bands, dtype):
            raise InputRasterError(f"{path} has {other[1]} band(s) of {other[2]}, {files[0]} has {bands} of {dtype}; "
                                   "a mosaic needs the same bands and data type in every raster.")
        if any(abs(a - b) > 1e-9 * max(abs(a), 1.0) for a, b in zip(other[3], pixel)):
            raise InputRasterError(f"{path} has {other[3][0]:g} x {other[3][1]:g} pixels, {files[0]} has "
                                   f"{pixel[0]:g} x {pixel[1]:g}; resample them to one pixel size first.")


def resolve_input(inputs: Sequence[str], output_dir: str | Path) -> str:
    """The one raster path the workers read: the input itself, or a VRT of the set written in ``output_dir``.

    Raises:
        InputRasterError: a file GDAL cannot open, an empty folder, or a set that cannot be one mosaic.
        OutputError: the VRT cannot be written.
    """
    files = expand_inputs(inputs)
    if len(files) == 1:
        with GdalReader(files[0]):
            return files[0]
    check_set(files)
    target = Path(output_dir) / INPUT_VRT_NAME
    try:
        with AtomicFile(target) as tmp:
            with gdal_errors() as errors:
                dataset = gdal_call(errors, gdal.BuildVRT, str(tmp), list(files))
                if dataset is not None:
                    dataset.FlushCache()
                dataset = None
            if errors or not tmp.stat().st_size:
                raise InputRasterError(f"Cannot mosaic the {len(files)} input rasters into a VRT: "
                                       f"{errors[-1] if errors else 'GDAL wrote nothing'}")
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc.strerror or exc}") from None
    return str(target)
