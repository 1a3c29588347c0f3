"""Training / validation areas: polygons from GeoJSON (json + shapely) or GeoPackage (osgeo.ogr).

Coordinates are taken as they are in the file's CRS when the file declares one (GeoPackage layer SRS, or a legacy
GeoJSON ``crs`` member) and reprojected to each raster's CRS; a file without a declared CRS is read as being in the
raster's CRS.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely import wkt
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.prepared import PreparedGeometry, prep

from lcgan_qgis.core.errors import InputRasterError


@dataclass(frozen=True)
class Areas:
    """A polygon union with the CRS it is expressed in (None: the raster's own)."""

    geometry: BaseGeometry
    crs: CRS | None
    source: str

    def in_crs(self, crs: CRS) -> PreparedGeometry:
        """The areas reprojected to ``crs`` (no-op when the file has no CRS or the same one), prepared."""
        return prep(self._geometry_in(crs))

    def for_rasters(self, rasters: Sequence[Any]) -> list[PreparedGeometry]:
        """The areas in each raster's CRS, prepared (``rasters``: objects with ``path``, ``crs``, ``transform``,
        ``width`` and ``height``, e.g. ``training.sources.RasterSource``).

        Raises:
            InputRasterError: the areas overlap none of the rasters (instead of "no window in N tries" later): one
                line naming the areas file, its bounds and each raster's bounds.
        """
        geometries = [self._geometry_in(r.crs) for r in rasters]
        footprints = [window_geometry(r.transform, 0, 0, r.width, r.height) for r in rasters]
        if rasters and not any(g.intersects(f) for g, f in zip(geometries, footprints, strict=True)):
            where = str(self.crs) if self.crs is not None else "the rasters' CRS"
            extents = "; ".join(f"{Path(r.path).name} {_bounds(f.bounds)} ({r.crs})"
                                for r, f in zip(rasters, footprints, strict=True))
            raise InputRasterError(f"{self.source}: the areas ({_bounds(self.geometry.bounds)} in {where}) lie outside "
                                   f"every raster ({extents}). Draw them over the rasters, or give their CRS.")
        return [prep(g) for g in geometries]

    def _geometry_in(self, crs: CRS) -> BaseGeometry:
        geometry = self.geometry
        if self.crs is not None and self.crs != crs:
            geometry = shape(transform_geom(self.crs, crs, mapping(geometry)))
        if geometry.is_empty:
            raise InputRasterError(f"{self.source}: the areas are empty in {crs}.")
        return geometry


def _bounds(bounds: tuple[float, float, float, float]) -> str:
    """``x0, y0 - x1, y1`` without trailing zeros (metres and degrees alike)."""
    x0, y0, x1, y1 = (f"{v:.6f}".rstrip("0").rstrip(".") for v in bounds)
    return f"{x0}, {y0} - {x1}, {y1}"


def load_areas(path: str | Path) -> Areas:
    """Read polygons from a ``.geojson``/``.json`` or ``.gpkg`` file into one shapely geometry.

    Raises:
        InputRasterError: missing file, unknown extension, or no polygon in it (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputRasterError(f"Areas file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        geometries, crs = _read_geojson(path)
    elif suffix == ".gpkg":
        geometries, crs = _read_gpkg(path)
    else:
        raise InputRasterError(f"{path}: areas must be GeoJSON (.geojson/.json) or GeoPackage (.gpkg).")
    polygons = [g for g in geometries if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polygons:
        raise InputRasterError(f"{path}: no polygon found (areas need Polygon or MultiPolygon features).")
    return Areas(unary_union(polygons), crs, str(path))


def window_geometry(transform: Any, col_off: int, row_off: int, width: int, height: int) -> BaseGeometry:
    """The ground footprint (box) of a pixel window under an affine ``transform``."""
    x0, y0 = transform * (col_off, row_off)
    x1, y1 = transform * (col_off + width, row_off + height)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _read_geojson(path: Path) -> tuple[list[BaseGeometry], CRS | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputRasterError(f"{path}: cannot read GeoJSON ({exc}).") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind == "FeatureCollection":
        items = [f.get("geometry") for f in data.get("features", [])]
    elif kind == "Feature":
        items = [data.get("geometry")]
    else:
        items = [data]
    crs = None
    name = ((data.get("crs") or {}).get("properties") or {}).get("name") if isinstance(data, dict) else None
    if name:
        crs = CRS.from_user_input(name)
    return [shape(g) for g in items if g], crs


def _read_gpkg(path: Path) -> tuple[list[BaseGeometry], CRS | None]:
    from osgeo import ogr

    source = ogr.Open(str(path))
    if source is None:
        raise InputRasterError(f"{path}: GDAL cannot open this GeoPackage.")
    try:
        layer = source.GetLayer(0)
        if layer is None:
            raise InputRasterError(f"{path}: the GeoPackage has no layer.")
        srs = layer.GetSpatialRef()
        crs = CRS.from_wkt(srs.ExportToWkt()) if srs is not None else None
        geometries = []
        for feature in layer:
            geom = feature.GetGeometryRef()
            if geom is not None:
                geometries.append(wkt.loads(geom.ExportToWkt()))
        return geometries, crs
    finally:
        source = None
