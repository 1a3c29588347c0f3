"""Land cover as polygons (GDAL sieve + polygonize): one polygon per patch with code and name, small patches merged
into their neighbour, nodata left out, the file whole or not at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import ogr

from lcgan_qgis.core.errors import Canceled, OutputError
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.rasters.vectorize import polygonize
from lcgan_qgis.core.resources import default_scheme_path
from tests.fixtures.rasters import write_tif

NLCD = ClassScheme.load(default_scheme_path())


def _map() -> np.ndarray:
    """Four 20 x 20 blocks (water, forest, shrub, barren), a 2 x 2 speck of grassland in the forest, a nodata strip."""
    codes = np.empty((40, 40), np.uint8)
    codes[:20, :20], codes[:20, 20:], codes[20:, :20], codes[20:, 20:] = 11, 42, 52, 31
    codes[5:7, 30:32] = 71
    codes[:, 39] = 255
    return codes


def _rows(path: Path) -> list[tuple[int, str, int]]:
    source = ogr.Open(str(path))
    rows = sorted((f.GetField("code"), f.GetField("name"), f.GetField("pixels")) for f in source.GetLayer(0))
    source = None
    return rows


def test_one_polygon_per_patch_with_code_name_and_size(tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", _map(), nodata=255)
    assert polygonize(raster, tmp_path / "lc.gpkg", NLCD) == 5
    assert _rows(tmp_path / "lc.gpkg") == [(11, "Open Water", 400), (31, "Barren Land", 380),
                                           (42, "Evergreen Forest", 376), (52, "Shrub/Scrub", 400),
                                           (71, "Grassland/Herbaceous", 4)]
    assert {p.name for p in tmp_path.iterdir()} == {"lc.tif", "lc.gpkg"}  # no scratch left behind


def test_small_patches_merge_into_their_neighbour(tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", _map(), nodata=255)
    assert polygonize(raster, tmp_path / "lc.geojson", NLCD, min_area_px=5) == 4
    assert _rows(tmp_path / "lc.geojson")[2] == (42, "Evergreen Forest", 380)  # the speck became forest


def test_cancel_and_bad_formats_write_nothing(tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", _map(), nodata=255)
    with pytest.raises(Canceled):
        polygonize(raster, tmp_path / "lc.gpkg", NLCD, is_canceled=lambda: True)
    with pytest.raises(OutputError, match=r"must be a GeoPackage, GeoJSON or FlatGeobuf file \(.fgb, .geojson"):
        polygonize(raster, tmp_path / "lc.shp", NLCD)
    assert {p.name for p in tmp_path.iterdir()} == {"lc.tif"}
