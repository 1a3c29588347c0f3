"""Resolution planning and warping back (QGIS-free), and result styling and grouping in a real project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.errors import Canceled, InputRasterError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.rasters.raster import Grid, RasterInfo
from lcgan_qgis.core.rasters.resampling import plan_resolution, warp_to_grid
from tests.fixtures.plugin import NLCD, landcover_array, read, write_raster


def _info(pixel: float, width: int = 100, height: int = 80) -> RasterInfo:
    return RasterInfo("r", width, height, 1, "uint8", (255.0,), (1000.0, pixel, 0.0, 9000.0, 0.0, -pixel), "")


@pytest.mark.parametrize("pixel", [27.5, 30.0, 32.9])
def test_pixel_sizes_within_ten_percent_run_as_they_are(pixel: float) -> None:
    plan = plan_resolution(_info(pixel), 1.0, 30.0)
    assert plan.grid is None and "matches the model's 30 m" in plan.message


def test_coarser_pixels_get_a_grid_at_the_model_gsd_with_the_same_extent() -> None:
    info = _info(90.0, 100, 80)
    plan = plan_resolution(info, 1.0, 30.0)
    assert plan.grid == Grid(300, 240, (1000.0, 30.0, 0.0, 9000.0, 0.0, -30.0))
    assert plan.grid.bounds() == Grid.of_info(info).bounds()
    feet = plan_resolution(_info(10.0), 0.3048, 30.0)  # 3.05 m pixels in feet
    assert feet.grid is not None and feet.grid.width == 10 and "differs from the model's 30 m" in feet.message


def test_layers_without_crs_are_refused_unless_the_check_is_off() -> None:
    with pytest.raises(InputRasterError, match=r"Layer 'r' has no CRS, or its CRS has no linear units.* reproject it"):
        plan_resolution(_info(0.0003), None, 30.0)
    assert plan_resolution(_info(0.0003), None, 30.0, check=False).grid is None


def test_geographic_layers_are_measured_on_the_ground_at_their_latitude() -> None:
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    info = RasterInfo("deg", 100, 80, 1, "uint8", (255.0,), (10.0, 0.0003, 0.0, 60.0, 0.0, -0.0003), srs.ExportToWkt())
    plan = plan_resolution(info, None, 30.0)  # at 60° N a degree of longitude is half a degree of latitude
    assert "is 16.7 x 33.4 m on the ground" in plan.message and plan.grid is not None
    assert plan.grid.width == round(100 * 16.7 / 30) and plan.grid.height == round(80 * 33.4 / 30)
    assert plan.grid.bounds() == pytest.approx(Grid.of_info(info).bounds())


def test_web_mercator_metres_shrink_with_latitude() -> None:
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3857)
    y = 4_485_000.0  # about 37.3° N, Zion
    info = RasterInfo("wm", 100, 100, 3, "uint8", (None,) * 3, (-12_570_000.0, 30.0, 0.0, y, 0.0, -30.0),
                      srs.ExportToWkt())
    plan = plan_resolution(info, 1.0, 30.0)  # 30 m of Web Mercator are about 24 m on the ground there
    assert "in a Mercator CRS" in plan.message and "is 23.9 x 23.9 m on the ground" in plan.message
    assert "(37.7 x 37.7 CRS units per pixel)" in plan.message  # 30 m / cos(37.3°)
    assert plan.grid is not None and plan.grid.width == round(3000 / 37.7)


def test_warp_back_keeps_codes_colour_table_and_grid(tmp_path: Path) -> None:
    from osgeo import gdal

    codes = landcover_array(60, 90)
    src = write_raster(tmp_path / "coarse.tif", codes, (1000.0, 60.0, 0.0, 9000.0, 0.0, -60.0), nodata=255)
    ds = gdal.Open(str(src), gdal.GA_Update)
    table = gdal.ColorTable()
    table.SetColorEntry(42, (28, 95, 44, 255))
    ds.GetRasterBand(1).SetRasterColorTable(table)
    names = [""] * 256
    names[42] = "Evergreen Forest"
    ds.GetRasterBand(1).SetCategoryNames(names)
    ds = None
    grid = Grid(180, 120, (1000.0, 30.0, 0.0, 9000.0, 0.0, -30.0))
    warp_to_grid(src, tmp_path / "fine.tif", grid, categorical=True)
    fine, fine_ds = read(tmp_path / "fine.tif")
    assert fine.shape == (120, 180) and fine_ds.GetGeoTransform() == grid.geotransform
    np.testing.assert_array_equal(fine[::2, ::2], codes)
    assert fine_ds.GetRasterBand(1).GetColorTable().GetColorEntry(42) == (28, 95, 44, 255)
    assert fine_ds.GetRasterBand(1).GetNoDataValue() == 255
    assert fine_ds.GetRasterBand(1).GetCategoryNames()[42] == "Evergreen Forest"  # the .aux.xml moved along
    assert not [p.name for p in tmp_path.iterdir() if "partial" in p.name]


def test_cancelled_warp_writes_nothing(tmp_path: Path) -> None:
    src = write_raster(tmp_path / "coarse.tif", landcover_array(200, 200), (0.0, 60.0, 0.0, 0.0, 0.0, -60.0))
    with pytest.raises(Canceled):
        warp_to_grid(src, tmp_path / "fine.tif", Grid(400, 400, (0.0, 30.0, 0.0, 0.0, 0.0, -30.0)), True,
                     is_canceled=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coarse.tif"]


def test_results_are_styled_and_grouped(qgis_app, tmp_path: Path) -> None:
    from qgis.core import QgsPalettedRasterRenderer, QgsProject, QgsRasterLayer

    from lcgan_qgis.plugin.styling import add_result_layer, place_in_group, result_layer_name

    project = QgsProject()
    path = write_raster(tmp_path / "lc.tif", landcover_array(30, 30), nodata=255)
    first = add_result_layer(str(path), result_layer_name("Zion", Direction.RGB_TO_LANDCOVER),
                             Direction.RGB_TO_LANDCOVER, NLCD, {}, project=project)
    assert first.name() == "Zion -> land cover (bundled model)"
    renderer = first.renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [(c.value, c.label, c.color.name()) for c in renderer.classes()] == [
        (c.code, f"{c.code} {c.name}", c.hex) for c in NLCD.classes]
    # a layer already in the project root (as Processing loads it) is moved into the group, not duplicated
    loaded = QgsRasterLayer(str(path), "loaded")
    project.addMapLayer(loaded)
    place_in_group(loaded, project)
    group = project.layerTreeRoot().findGroup("lcgan")
    assert [n.layer().name() for n in group.findLayers()] == ["loaded", "Zion -> land cover (bundled model)"]
    assert project.mapLayer(loaded.id()) is loaded
    assert len(project.layerTreeRoot().findLayers()) == 2
