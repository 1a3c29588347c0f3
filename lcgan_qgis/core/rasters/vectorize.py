"""Land cover as polygons: GDAL's sieve and polygonize over a land-cover GeoTIFF, one feature per patch of a class.

Each polygon carries its class ``code`` and ``name`` (from the model's scheme). Patches smaller than
``min_area_px`` pixels are first merged into their largest neighbour (``gdal.SieveFilter``, the same operation as
QGIS's *Sieve* algorithm), so the vector layer is not littered with single pixels; a patch that has no neighbour to
merge into (surrounded by nodata) and stays below the limit is dropped. Nodata makes no polygon. Patches are
4-connected, as in QGIS's *Polygonize*.

The file is written whole or not at all (:class:`~lcgan_qgis.core.storage.files.AtomicFile`); GeoPackage, GeoJSON and
FlatGeobuf outputs are single files, so that is possible. QGIS-free (``osgeo`` only).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from osgeo import gdal, ogr, osr

from ..errors import Canceled, OutputError
from ..model.scheme import ClassScheme
from ..storage.atomic import AtomicFile
from ..storage.paths import output_folder
from ..storage.scratch import scratch_folder
from .gdal_io import gdal_call, gdal_errors
from .geotiff import GEOTIFF_CREATION_OPTIONS

LOG = logging.getLogger(__name__)

#: Vector formats by file suffix (single-file formats only: the output is written under a temporary name).
VECTOR_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".fgb": "FlatGeobuf"}
CODE_FIELD, NAME_FIELD, AREA_FIELD = "code", "name", "pixels"
#: The one layer lcgan writes into a vector output.
VECTOR_LAYER = "land_cover"


def check_vector_target(path: str | Path) -> None:
    """An existing vector output may be replaced only when it holds nothing but lcgan's own layer: lcgan writes a
    whole new file (under a temporary name, then renamed), which would delete a GeoPackage's other layers.

    Raises:
        OutputError: ``path`` is a folder, or a vector file with other layers (named), or not a vector file GDAL
            can read (it would be replaced without knowing what it holds).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"The vector output {path} is a folder; give a file name (e.g. classes.gpkg).")
    if not path.exists():
        return
    with gdal_errors() as errors:
        dataset = gdal_call(errors, gdal.OpenEx, str(path), gdal.OF_VECTOR | gdal.OF_READONLY)
        layers = [dataset.GetLayer(i).GetName() for i in range(dataset.GetLayerCount())] if dataset else None
        rasters = dataset.RasterCount if dataset else 0
        dataset = None
    if layers is None:
        raise OutputError(f"The vector output {path} exists and is not a vector file GDAL can read; lcgan would "
                          "replace it whole. Remove it or choose another name.")
    others = [name for name in layers if name != VECTOR_LAYER]
    if others or rasters:
        held = ", ".join(repr(n) for n in others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
        raise OutputError(f"The vector output {path} already holds other data (layer(s) {held or 'raster tables'}); "
                          f"lcgan writes a whole new file with one layer '{VECTOR_LAYER}' and would delete them. "
                          "Choose a new file name.")


def check_vector_path(path: str | Path) -> str:
    """The OGR driver for ``path``.

    Raises:
        OutputError: an unsupported suffix (the choices are listed) or a missing or read-only folder.
    """
    path = Path(path)
    driver = VECTOR_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise OutputError(f"Vector output {path} must be a GeoPackage, GeoJSON or FlatGeobuf file "
                          f"({', '.join(sorted(VECTOR_DRIVERS))}).")
    output_folder(path)
    check_vector_target(path)  # (an existing file's other layers are never replaced)
    return driver


def polygonize(raster: str | Path, vector: str | Path, scheme: ClassScheme, min_area_px: int = 0,
               progress: Callable[[float], None] | None = None,
               is_canceled: Callable[[], bool] | None = None) -> int:
    """Write the land-cover raster ``raster`` as polygons to ``vector``; returns the number of polygons.

    Raises:
        OutputError: the vector cannot be written (named).
        Canceled: ``is_canceled`` turned true; nothing was written.
    """
    vector = Path(vector)
    driver_name = check_vector_path(vector)
    progress = progress or (lambda _f: None)

    def callback(fraction: float, *_args: object) -> int:
        return 0 if is_canceled is not None and is_canceled() else 1

    names = {c.code: c.name for c in scheme.classes}
    with gdal_errors() as errors:
        source = gdal_call(errors, gdal.Open, str(raster))
    if source is None:
        raise OutputError(f"Cannot read {raster} to polygonize it: {errors[-1] if errors else 'GDAL failed'}")
    with scratch_folder(output_folder(vector)) as scratch, AtomicFile(vector) as tmp:
        band = source.GetRasterBand(1)
        if min_area_px > 1:
            sieved = gdal.GetDriverByName("GTiff").CreateCopy(str(scratch / "sieved.tif"), source,
                                                              options=list(GEOTIFF_CREATION_OPTIONS))
            gdal.SieveFilter(band, band.GetMaskBand(), sieved.GetRasterBand(1), int(min_area_px), 4,
                             callback=lambda f, *a: progress(0.3 * f) or callback(f))
            band = sieved.GetRasterBand(1)
        if is_canceled is not None and is_canceled():
            raise Canceled(f"Canceled while polygonizing {raster}; nothing was written.")
        patches = ogr.GetDriverByName("GPKG").CreateDataSource(str(scratch / "patches.gpkg"))
        srs = osr.SpatialReference(wkt=source.GetProjection()) if source.GetProjection() else None
        layer = patches.CreateLayer("patches", srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn(CODE_FIELD, ogr.OFTInteger))
        status = gdal.Polygonize(band, band.GetMaskBand(), layer, 0, [],
                                 callback=lambda f, *a: progress(0.3 + 0.5 * f) or callback(f))
        if status != 0:
            if is_canceled is not None and is_canceled():
                raise Canceled(f"Canceled while polygonizing {raster}; nothing was written.")
            raise OutputError(f"Cannot polygonize {raster}: {gdal.GetLastErrorMsg() or 'GDAL failed'}")
        gt = source.GetGeoTransform()
        pixel_area = abs(gt[1] * gt[5] - gt[2] * gt[4])
        written = scratch / f"polygons{vector.suffix}"  # (OGR creates only new files; the temporary one exists)
        count = _write(layer, written, driver_name, srs, names, max(min_area_px, 1) * pixel_area, pixel_area,
                       lambda f: progress(0.8 + 0.2 * f), is_canceled)
        layer = patches = sieved = band = None
        shutil.copyfile(written, tmp)
    source = None
    progress(1.0)
    LOG.info("Polygonized %s into %d polygons -> %s", raster, count, vector)
    return count


def _write(patches: ogr.Layer, path: Path, driver_name: str, srs: osr.SpatialReference | None, names: dict[int, str],
           min_area: float, pixel_area: float, report: Callable[[float], None],
           is_canceled: Callable[[], bool] | None) -> int:
    """Copy the patches of at least ``min_area`` (CRS units squared) to ``path`` with code, name and pixel count."""
    out = ogr.GetDriverByName(driver_name).CreateDataSource(str(path))
    if out is None:
        raise OutputError(f"Cannot create {path.name}: {gdal.GetLastErrorMsg() or 'GDAL failed'}")
    layer = out.CreateLayer(VECTOR_LAYER, srs, ogr.wkbPolygon)
    for name, kind in ((CODE_FIELD, ogr.OFTInteger), (NAME_FIELD, ogr.OFTString), (AREA_FIELD, ogr.OFTInteger)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    total, count = max(patches.GetFeatureCount(), 1), 0
    layer.StartTransaction()
    for i, patch in enumerate(patches):
        if i % 1000 == 0:
            report(i / total)
            if is_canceled is not None and is_canceled():
                raise Canceled("Canceled while writing the polygons; nothing was written.")
        geometry = patch.GetGeometryRef()
        area = geometry.GetArea()
        if area < min_area * (1 - 1e-9):
            continue
        code = patch.GetField(CODE_FIELD)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetGeometry(geometry)
        feature.SetField(CODE_FIELD, code)
        feature.SetField(NAME_FIELD, names.get(code, str(code)))
        feature.SetField(AREA_FIELD, round(area / pixel_area))
        layer.CreateFeature(feature)
        count += 1
    layer.CommitTransaction()
    out = layer = None  # closed before the move
    return count
