"""Training areas drawn away from the rasters (issue 24): one line naming the areas file, its bounds and the
rasters' bounds, before any window is sampled (instead of "no window ... in 200 random tries")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lcgan_qgis.core.errors import InputRasterError
from tests.fixtures.training import write_landcover
from training.areas import load_areas
from training.sources import RasterSource


def _areas(path: Path, x0: float, y0: float, x1: float, y1: float, crs: str | None = None) -> Path:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    data: dict = {"type": "FeatureCollection",
                  "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                                                  "coordinates": [ring]}}]}
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_areas_outside_every_raster_name_the_file_and_the_bounds(tmp_path: Path) -> None:
    rasters = [RasterSource.open(write_landcover(tmp_path / "lc.tif")),  # 96 px of 30 m at (300000, 4150000)
               RasterSource.open(write_landcover(tmp_path / "lc2.tif", origin=(310000.0, 4150000.0)))]
    areas = load_areas(_areas(tmp_path / "areas.geojson", 500000, 4000000, 501000, 4001000))
    with pytest.raises(InputRasterError) as info:
        areas.for_rasters(rasters)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'areas.geojson'}: the areas (500000, 4000000 - 501000, 4001000 in the "
                              "rasters' CRS) lie outside every raster (lc.tif 300000, 4147120 - 302880, 4150000 "
                              "(EPSG:32612); lc2.tif 310000, 4147120 - 312880, 4150000 (EPSG:32612))"), message


def test_areas_in_another_crs_outside_the_rasters_say_which_crs(tmp_path: Path) -> None:
    rasters = [RasterSource.open(write_landcover(tmp_path / "lc.tif"))]
    areas = load_areas(_areas(tmp_path / "far.geojson", 2.30, 48.80, 2.40, 48.90, crs="EPSG:4326"))  # Paris
    with pytest.raises(InputRasterError, match=r"far\.geojson: the areas \(2\.3, 48\.8 - 2\.4, 48\.9 in EPSG:4326\) "
                                               r"lie outside every raster \(lc\.tif 300000, 4147120 - 302880"):
        areas.for_rasters(rasters)


def test_areas_over_one_of_the_rasters_are_accepted(tmp_path: Path) -> None:
    rasters = [RasterSource.open(write_landcover(tmp_path / "lc.tif")),
               RasterSource.open(write_landcover(tmp_path / "lc2.tif", origin=(310000.0, 4150000.0)))]
    areas = load_areas(_areas(tmp_path / "areas.geojson", 300500, 4148000, 302000, 4149500))
    prepared = areas.for_rasters(rasters)
    assert len(prepared) == 2
    assert prepared[0].context.bounds == (300500.0, 4148000.0, 302000.0, 4149500.0)
