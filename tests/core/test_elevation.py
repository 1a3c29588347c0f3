"""Terrain-aware land cover -> RGB in the engine, the job and the command line: the DEM as a second, aligned input.

The models here are per-pixel (:func:`tests.fixtures.onnx_factory.write_terrain_pointwise`): their three output bands
are tanh of the three terrain channels, so an output pixel shows exactly the terrain channels the engine fed it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from osgeo import gdal, osr

from lcgan_qgis.core.errors import InputRasterError, OptionError, OutputError
from lcgan_qgis.core.model.contract import to_uint8
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.core.run.settings import ModelChoice, RunSettings, Terrain, Windowing
from lcgan_qgis.core.terrain.elevation import ElevationReader
from tests.fixtures.cli import cli
from tests.fixtures.onnx_factory import write_pointwise, write_terrain_pointwise
from tests.fixtures.rasters import GEOTRANSFORM, read_tif, write_tif

CODES = np.array([11, 21, 31, 41, 42, 52, 71, 81], dtype=np.uint8)
SUN = (132.3, 57.6)
SHAPE = (100, 120)  # rows, cols of the land cover (30 m, EPSG:32612, origin 300000 E / 4150000 N)
PLANE = (0.35, -0.2)  # dz/dE, dz/dN of the test plane: rising to the east and the south


def expected_plane_pixels(a: float, b: float, sun: tuple[float, float] = SUN) -> np.ndarray:
    """The output of :func:`terrain_model` on the plane z = a E + b N (hillshade by hand, slope, 0 relief)."""
    az, el = (math.radians(v) for v in sun)
    lit = (math.sin(el) - a * math.sin(az) * math.cos(el) - b * math.cos(az) * math.cos(el)) / math.sqrt(
        1 + a * a + b * b)
    sine = math.hypot(a, b) / math.sqrt(1 + a * a + b * b)
    channels = np.array([2 * max(lit, 0.0) - 1, 2 * sine - 1, 0.0])
    return np.maximum(to_uint8(np.tanh(channels)), 1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("elevation")


@pytest.fixture(scope="module")
def model_path(folder: Path) -> Path:
    return write_terrain_pointwise(folder / "terrain.onnx")


@pytest.fixture(scope="module")
def landcover(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_tif(folder / "lc.tif", np.kron(rng.choice(CODES, (SHAPE[0] // 4, SHAPE[1] // 4)), np.ones((4, 4),
                                                                                                          np.uint8)))


def plane_on_grid(geotransform: tuple[float, ...], shape: tuple[int, int], epsg: int) -> np.ndarray:
    """Elevations of the plane at the pixel centres of a grid in ``epsg`` (transformed to UTM 12N)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    x = geotransform[0] + cols * geotransform[1]
    y = geotransform[3] + rows * geotransform[5]
    if epsg != 32612:
        src, dst = osr.SpatialReference(), osr.SpatialReference()
        src.ImportFromEPSG(epsg)
        dst.ImportFromEPSG(32612)
        for srs in (src, dst):
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        points = np.array(osr.CoordinateTransformation(src, dst).TransformPoints(
            np.column_stack([x.ravel(), y.ravel()]).tolist()))
        x, y = points[:, 0].reshape(shape), points[:, 1].reshape(shape)
    a, b = PLANE
    return (1500.0 + a * (x - 300000.0) + b * (y - 4150000.0)).astype(np.float32)


def run(model: Path, lc: Path, out: Path, dem: Path | None, **records: Any) -> tuple[np.ndarray, tuple[str, ...]]:
    """The engine over ``lc`` (and ``dem``) with the run-settings records given by keyword."""
    options = TranslateOptions(settings=RunSettings(**records))
    with load_model(model, "cpu") as m, GdalReader(lc) as reader:
        if dem is None:
            result = translate(m, reader, out, options)
        else:
            with ElevationReader(dem, reader.info) as elevation:
                result = translate(m, reader, out, options, elevation=elevation)
    return read_tif(out), result.messages


def test_tiled_equals_untiled_with_elevation(folder: Path, model_path: Path, landcover: Path) -> None:
    rng = np.random.default_rng(3)
    rough = (1800 + rng.normal(0, 40, SHAPE).cumsum(0).cumsum(1) / 20).astype(np.float32)
    dem = write_tif(folder / "rough.tif", rough)
    outputs = [run(model_path, landcover, folder / f"t{w}.tif", dem, windowing=Windowing(window_px=w, overlap_px=o))[0]
               for w, o in ((64, 8), (96, 16), (512, 0))]
    assert np.array_equal(outputs[0], outputs[1]) and np.array_equal(outputs[0], outputs[2])
    assert outputs[0].std(axis=(1, 2)).min() > 5  # the relief is in the output
    flat = run(model_path, landcover, folder / "flat.tif", write_tif(folder / "flatdem.tif",
                                                                       np.full(SHAPE, 900.0, np.float32)))[0]
    assert flat.std(axis=(1, 2)).max() == 0


@pytest.mark.parametrize(("name", "epsg", "geotransform", "shape"), [
    ("same grid", 32612, GEOTRANSFORM, SHAPE),
    ("finer, shifted, larger (UTM)", 32612, (299500.0, 10.0, 0.0, 4150600.0, 0.0, -10.0), (420, 470)),
    ("geographic, SRTM 3 arc-seconds", 4326, (-113.28, 1 / 1200, 0.0, 37.495, 0.0, -1 / 1200), (60, 72)),
])
def test_a_dem_on_another_grid_or_crs_gives_the_plane_s_terrain(folder: Path, model_path: Path, landcover: Path,
                                                                name: str, epsg: int, geotransform: tuple,
                                                                shape: tuple[int, int]) -> None:
    dem = write_tif(folder / f"plane_{epsg}_{shape[0]}.tif", plane_on_grid(geotransform, shape, epsg),
                    geotransform=geotransform, epsg=epsg)
    out, messages = run(model_path, landcover, folder / f"plane_{epsg}_{shape[0]}_out.tif", dem)
    want = expected_plane_pixels(*PLANE)
    assert np.abs(out.astype(int) - want[:, None, None]).max() <= 2, name
    resampled = "on the grid already" if name == "same grid" else "resampled onto the grid on the fly"
    assert any(resampled in m for m in messages), messages
    assert not any(m.startswith("Warning") for m in messages), messages


def test_dem_nodata_is_flat_terrain_with_a_warning(folder: Path, model_path: Path, landcover: Path) -> None:
    z = plane_on_grid(GEOTRANSFORM, SHAPE, 32612).astype(np.int16)
    z[40:50, 60:70] = -32768
    z[:, :3] = -32768
    dem = write_tif(folder / "holes.tif", z, nodata=-32768)
    out, messages = run(model_path, landcover, folder / "holes_out.tif", dem)
    flat = np.maximum(to_uint8(np.tanh(np.array([2 * math.sin(math.radians(SUN[1])) - 1, -1.0, 0.0]))), 1)
    assert (out[:, 42:48, 62:68] == flat[:, None, None]).all()
    assert np.abs(out[:, 20:30, 20:30].astype(int) - expected_plane_pixels(*PLANE)[:, None, None]).max() <= 2
    assert "Warning: 400 of 12,000 pixels (3.33 %) have no elevation in holes.tif" in " ".join(messages)
    assert (out > 0).all()  # the output stays valid: flat terrain, not nodata


def test_missing_elevation_is_a_clear_error_and_writes_nothing(folder: Path, model_path: Path,
                                                               landcover: Path) -> None:
    out = folder / "missing.tif"
    with pytest.raises(InputRasterError, match=r"terrain.onnx is terrain-aware: it needs an elevation raster"):
        run_translation(TranslationRequest(str(out), model=ModelChoice(path=str(model_path))), GdalReader(landcover))
    with load_model(model_path, "cpu") as m, GdalReader(landcover) as reader, pytest.raises(
            InputRasterError, match="--elevation"):
        translate(m, reader, out)
    assert not out.exists()
    done = cli("translate", "--model", str(model_path), "--input", str(landcover), "--output", str(out))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "needs an elevation raster" in done.stderr
    assert not out.exists()


def test_elevation_given_to_a_map_only_model_is_ignored_with_a_warning(folder: Path, landcover: Path) -> None:
    map_only = write_pointwise(folder / "map_only.onnx", "landcover_to_rgb")
    dem = write_tif(folder / "ignored.tif", np.full(SHAPE, 5.0, np.float32))
    lines: list[str] = []
    with GdalReader(landcover) as reader:
        request = TranslationRequest(
            str(folder / "a.tif"),
            model=ModelChoice(path=str(map_only)),
            settings=RunSettings(terrain=Terrain(elevation_path=str(dem))),
        )
        run_translation(request, reader, log=lines.append)
    assert any("Warning: the model reads no elevation" in line and "ignored.tif is ignored" in line for line in lines)
    plain, messages = run(map_only, landcover, folder / "b.tif", dem)
    assert np.array_equal(read_tif(folder / "a.tif"), plain)
    assert any("is ignored" in m for m in messages)


def test_a_dem_beside_the_land_cover_is_refused(folder: Path, model_path: Path, landcover: Path) -> None:
    far = (400000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0)
    dem = write_tif(folder / "far.tif", np.full(SHAPE, 10.0, np.float32), geotransform=far)
    with pytest.raises(InputRasterError, match="has no elevation on the area of .*lc.tif: it does not overlap"):
        run(model_path, landcover, folder / "far_out.tif", dem)
    with pytest.raises(InputRasterError, match="Elevation raster not found"):
        run(model_path, landcover, folder / "far_out.tif", folder / "nowhere.tif")


def test_an_output_onto_the_dem_is_refused_and_the_dem_kept(folder: Path, model_path: Path,
                                                            landcover: Path) -> None:
    """The DEM is an input like the land cover: no output (or its sidecar) may replace it, by any spelling."""
    dem = write_tif(folder / "keep_dem.tif", plane_on_grid(GEOTRANSFORM, SHAPE, 32612))
    before = dem.read_bytes()
    for target in (dem, folder / "." / "keep_dem.tif"):
        with GdalReader(landcover) as reader, pytest.raises(OutputError, match="is the elevation raster itself"):
            request = TranslationRequest(
                str(target),
                model=ModelChoice(path=str(model_path)),
                settings=RunSettings(terrain=Terrain(elevation_path=str(dem))),
            )
            run_translation(request,
                            reader)
        with pytest.raises(OutputError, match="is the elevation raster itself"):
            run(model_path, landcover, target, dem)
    done = cli("translate", "--model", str(model_path), "--input", str(landcover), "--elevation", str(dem),
               "--output", str(dem))
    assert done.returncode == 2 and "is the elevation raster itself" in done.stderr
    assert dem.read_bytes() == before


def test_sun_and_vertical_unit_options(folder: Path, model_path: Path, landcover: Path) -> None:
    z = plane_on_grid(GEOTRANSFORM, SHAPE, 32612)
    metres = write_tif(folder / "metres.tif", z)
    morning, _ = run(model_path, landcover, folder / "sun1.tif", metres)
    low_sun = Terrain(sun_azimuth_deg=60.0, sun_elevation_deg=20.0)  # the plane faces west-north-west: a low NE sun
    low_ne, messages = run(model_path, landcover, folder / "sun2.tif", metres, terrain=low_sun)
    assert np.abs(low_ne.astype(int) - expected_plane_pixels(*PLANE, sun=(60.0, 20.0))[:, None, None]).max() <= 2
    assert morning[0].mean() - low_ne[0].mean() > 90 and "(chosen)" in " ".join(messages)
    with pytest.raises(OptionError, match="sun_elevation_deg"):
        Terrain(sun_elevation_deg=-5.0)
    feet = write_tif(folder / "feet.tif", (z / 0.3048).astype(np.float32))
    ds = gdal.Open(str(feet), gdal.GA_Update)
    ds.GetRasterBand(1).SetUnitType("ft")
    ds = None
    in_feet, messages = run(model_path, landcover, folder / "feet_out.tif", feet)
    assert np.abs(in_feet.astype(int) - morning.astype(int)).max() <= 1
    assert "0.3048 m per unit (the raster's unit 'ft')" in " ".join(messages)
    steep, _ = run(model_path, landcover, folder / "feet_as_m.tif", feet, terrain=Terrain(elevation_unit_m=1.0))
    assert steep[1].mean() > morning[1].mean() + 20


def test_the_job_resamples_the_dem_with_the_land_cover(folder: Path, model_path: Path) -> None:
    """A 15 m land cover is translated at the model's 30 m: the DEM is presented on that 30 m grid too."""
    fine = (300000.0, 15.0, 0.0, 4150000.0, 0.0, -15.0)
    lc = write_tif(folder / "lc15.tif", np.full((200, 240), 42, np.uint8), geotransform=fine)
    dem = write_tif(folder / "plane15.tif", plane_on_grid(GEOTRANSFORM, SHAPE, 32612))  # on the 30 m grid
    lines: list[str] = []
    with GdalReader(lc) as reader:
        request = TranslationRequest(
            str(folder / "lc15_out.tif"),
            model=ModelChoice(path=str(model_path)),
            settings=RunSettings(terrain=Terrain(elevation_path=str(dem))),
        )
        job = run_translation(request, reader, log=lines.append)
    out = read_tif(job.result.output_path)
    assert out.shape == (3, 200, 240)
    assert np.abs(out[:, 20:-20, 20:-20].astype(int) - expected_plane_pixels(*PLANE)[:, None, None]).max() <= 2
    assert any("at the model's resolution" in line for line in lines)


def test_a_multiband_dem_uses_its_first_band(folder: Path, model_path: Path, landcover: Path) -> None:
    geotransform = (299500.0, 40.0, 0.0, 4150600.0, 0.0, -40.0)
    z = plane_on_grid(geotransform, (110, 120), 32612)
    dem = write_tif(folder / "two_bands.tif", np.stack([z, np.zeros_like(z)]), geotransform=geotransform)
    out, _ = run(model_path, landcover, folder / "two_bands_out.tif", dem)
    assert np.abs(out.astype(int) - expected_plane_pixels(*PLANE)[:, None, None]).max() <= 2


def test_cli_on_the_real_zion_rasters(zion_dir: Path, folder: Path) -> None:
    """NLCD on its own grid (EPSG:26912, 31.5 m) with SRTM on the Landsat grid (EPSG:32612, 30 m)."""
    dem = zion_dir / "srtm_on_landsat_grid.tif"
    if not dem.is_file():
        pytest.skip(f"the Zion SRTM raster is absent ({dem})")
    model = write_terrain_pointwise(folder / "zion_terrain.onnx", tile_size_px=128, overlap_px=16, gsd_m=31.5)
    out = folder / "zion_rgb.tif"
    done = cli("translate", "--model", str(model), "--input", str(zion_dir / "nlcd2011.tif"), "--elevation", str(dem),
               "--output", str(out))
    assert done.returncode == 0, done.stderr
    # (the engine's messages are the run's notes, which the CLI writes to stderr: ``note: ...``)
    assert "resampled onto the grid on the fly, bilinear" in done.stderr
    assert "pixels (1.08 %) have no elevation in srtm_on_landsat_grid.tif" in done.stderr
    pixels = read_tif(out)
    assert pixels.shape == (3, 1019, 1073)
    assert pixels[1].std() > 10  # the canyons' slopes
    info = cli("info", str(model))
    assert "input:        17 channels (14 classes + 3 terrain)" in info.stdout
    assert "terrain:      needs elevation (--elevation): hillshade, slope, relative_elevation" in info.stdout


def test_quantising_a_terrain_model_calibrates_with_the_dem(folder: Path, landcover: Path) -> None:
    """int8 tooling feeds the calibration windows the terrain channels too; without a DEM it says what is missing."""
    import onnx

    from lcgan_qgis.core.model.precision import int8_sibling
    from lcgan_qgis.core.model.terrain_inputs import TERRAIN_CHANNELS, TerrainInputs
    from lcgan_qgis.tooling.quantize import quantize_model
    from tests.fixtures.conv_factory import conv_model
    from tests.fixtures.onnx_factory import default_contract

    fp32 = folder / "conv_terrain.onnx"
    onnx.save(conv_model(default_contract("landcover_to_rgb", terrain=TerrainInputs(TERRAIN_CHANNELS))), str(fp32))
    with pytest.raises(InputRasterError, match="needs an elevation raster"):
        quantize_model(fp32, landcover, int8_sibling(fp32), windows=2, window_px=64)
    dem = write_tif(folder / "q_dem.tif", plane_on_grid(GEOTRANSFORM, SHAPE, 32612))
    report = quantize_model(fp32, landcover, int8_sibling(fp32), windows=4, window_px=64, float_first=False,
                            elevation=dem)
    assert report.metric == "psnr_db" and report.value > 25
    with load_model(fp32, "cpu", precision="int8") as int8:
        assert int8.contract.terrain == TerrainInputs(TERRAIN_CHANNELS)


def test_the_terrain_measures_pixels_as_the_resolution_policy_does() -> None:
    """One metres-per-pixel rule: a Web Mercator pixel of 30 CRS units at 37.5 N is 30 cos(37.5 deg) m on the
    ground for the slope as for the resampling decision, and a degree on the WGS 84 ellipsoid (not a sphere)."""
    from lcgan_qgis.core.rasters.raster import RasterInfo
    from lcgan_qgis.core.rasters.resampling import ground_pixel_size_m, plan_resolution

    def wkt(epsg: int) -> str:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        return srs.ExportToWkt()

    north = 6378137.0 * math.log(math.tan(math.radians(45 + 37.5 / 2)))  # 37.5 N in EPSG:3857
    mercator = (-12_600_000.0, 30.0, 0.0, north + 50 * 30.0, 0.0, -30.0)
    x, y = ground_pixel_size_m(mercator, 100, wkt(3857))
    assert x == pytest.approx(30 * math.cos(math.radians(37.5)), rel=1e-4) and x == pytest.approx(y)
    info = RasterInfo("m.tif", 100, 100, 1, "uint8", (None,), mercator, wkt(3857))
    assert plan_resolution(info, 1.0, x, 0.1, True).grid is None  # the policy sees the same ground size: no resampling
    degrees = (-113.3, 1 / 1200, 0.0, 37.5 + 50 / 1200, 0.0, -1 / 1200)
    dx, dy = ground_pixel_size_m(degrees, 100, wkt(4326))
    assert dy == pytest.approx(92.49, abs=0.01)  # 3 arc-seconds of latitude at 37.5 N on WGS 84 (a sphere: 92.77)
    assert dx == pytest.approx(73.69, abs=0.01)  # (a sphere: 73.60)
