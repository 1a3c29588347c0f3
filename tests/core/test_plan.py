"""The job's decisions before the engine runs (core/run/plan.py::plan_job), shared by a single run and a mosaic."""

from __future__ import annotations

from pathlib import Path

import pytest

from lcgan_qgis.core.errors import ContractError, InputRasterError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.terrain_inputs import TERRAIN_CHANNELS, TerrainInputs
from lcgan_qgis.core.rasters.raster import RasterInfo
from lcgan_qgis.core.run.plan import plan_job
from lcgan_qgis.core.run.settings import ImageInput, Rendering, Resolution, RunSettings, Terrain
from tests.fixtures.onnx_factory import default_contract
from tests.fixtures.rasters import GEOTRANSFORM, crs_wkt

INFO = RasterInfo(name="lc.tif", width=64, height=48, band_count=1, dtype="uint8", nodata=(None,),
                  geotransform=GEOTRANSFORM, crs_wkt=crs_wkt())
MODEL = Path("m.onnx")


def _plan(contract, settings: RunSettings, direction: Direction | None = None):
    lines: list[str] = []
    job = plan_job(settings, contract, MODEL, INFO, 1.0, lines.append, lines.append, direction, "my map")
    return job, lines


def test_land_cover_input_drops_the_image_settings_and_keeps_the_rest() -> None:
    settings = RunSettings(image=ImageInput(bands=(3, 2, 1)), rendering=Rendering(seed=4), aoi_wkt="POLYGON EMPTY")
    job, lines = _plan(default_contract("landcover_to_rgb"), settings)
    assert job.settings.image == ImageInput() and job.settings.rendering.seed == 4
    assert job.settings.aoi_wkt == "POLYGON EMPTY" and job.resolution.grid is None
    assert job.tags["LCGAN_INPUT"] == "my map" and job.tags["LCGAN_SEED"] == "4"
    assert any("matches the model's 30 m" in line for line in lines)


def test_imagery_input_says_its_radiometry() -> None:
    job, lines = _plan(default_contract("rgb_to_landcover"), RunSettings(image=ImageInput(radiometry_mode="fixed")))
    assert job.settings.image.radiometry_mode == "fixed"
    assert lines[0].startswith("Radiometry: fixed (chosen;")


def test_a_map_only_model_ignores_the_dem_and_a_terrain_aware_one_needs_it() -> None:
    with_dem = RunSettings(terrain=Terrain(elevation_path="dem.tif", sun_azimuth_deg=90.0))
    job, lines = _plan(default_contract("landcover_to_rgb"), with_dem)
    assert job.elevation_path is None and job.settings.terrain.sun_azimuth_deg == 90.0
    assert any("the elevation raster dem.tif is ignored" in line for line in lines)
    terrain_model = default_contract("landcover_to_rgb", terrain=TerrainInputs(TERRAIN_CHANNELS))
    assert _plan(terrain_model, with_dem)[0].tags["LCGAN_ELEVATION"] == "dem.tif"
    with pytest.raises(InputRasterError, match=r"Model m\.onnx is terrain-aware: it needs an elevation raster"):
        _plan(terrain_model, RunSettings())


def test_the_direction_asked_for_and_the_resolution_policy() -> None:
    with pytest.raises(ContractError, match="translates landcover_to_rgb, not rgb_to_landcover"):
        _plan(default_contract("landcover_to_rgb"), RunSettings(), Direction.RGB_TO_LANDCOVER)
    coarse = default_contract("landcover_to_rgb", gsd_m=60.0)
    assert _plan(coarse, RunSettings())[0].resolution.grid is not None  # 30 m pixels, a 60 m model: resampled
    off = _plan(coarse, RunSettings(resolution=Resolution(check_gsd=False)))[0]
    assert off.resolution.grid is None
