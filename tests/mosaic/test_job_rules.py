"""A mosaic run takes the single-process job's rules and options: every field of a ``TranslationRequest`` reaches
``MosaicRequest`` under its name or is refused there for a stated reason; a terrain-aware model reads its DEM on
every worker (with the sun chosen) and writes the job's pixels; the tiles and the VRT carry the provenance tags; the
job's errors (no DEM, the other direction) come before any cluster; no file an input reads is overwritten."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from distributed import LocalCluster
from osgeo import gdal

from lcgan_qgis.core.errors import ContractError, InputRasterError, OutputError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.mosaic.job import NOT_IN_MOSAIC, MosaicRequest, run_mosaic
from tests.core.rasters import read_tif, write_tif
from tests.core.test_blending import smooth_landcover
from tests.onnx_factory import write_terrain_pointwise

from .test_mosaic import OVERLAP, TILE, WINDOW


def test_every_translation_field_reaches_the_mosaic_or_is_refused_with_a_reason() -> None:
    translation = {f.name for f in dataclasses.fields(TranslationRequest)}
    mosaic = {f.name for f in dataclasses.fields(MosaicRequest)}
    assert translation - mosaic == set(NOT_IN_MOSAIC)  # a new field must be taken by the mosaic or explained
    assert not set(NOT_IN_MOSAIC) & mosaic and all(len(why) > 10 for why in NOT_IN_MOSAIC.values())
    values = {"direction": Direction.LANDCOVER_TO_RGB, "device": "cpu", "precision": "fp32", "backend": "onnxruntime",
              "cache_dir": "/c", "overlap_px": 8, "window_px": 64, "batch_size": 3, "bands": (3, 2, 1),
              "radiometry_mode": "fixed", "aoi_wkt": "POLYGON EMPTY", "check_gsd": False, "gsd_tolerance": 0.2,
              "elevation_path": "dem.tif", "sun_azimuth_deg": 200.0, "sun_elevation_deg": 30.0,
              "elevation_unit_m": 0.3048, "input_name": "scene"}
    request = MosaicRequest("m.onnx", ("in.tif",), "out", threads_per_worker=3, **values)
    job = request.translation()
    assert {name: getattr(job, name) for name in values} == values
    assert (job.model_path, job.threads, job.output_path) == ("m.onnx", 3, str(Path("out") / "mosaic.vrt"))


@pytest.fixture(scope="module")
def terrain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A terrain-aware model, a land cover that is no multiple of the super-tile, and a rough DEM at 60 m (warped
    onto the land cover's 30 m grid on the fly)."""
    folder = tmp_path_factory.mktemp("terrain")
    codes = smooth_landcover(230, 300, seed=9)
    rng = np.random.default_rng(4)
    rough = (1800 + rng.normal(0, 40, (130, 170)).cumsum(0).cumsum(1) / 20).astype(np.float32)
    return {"model": write_terrain_pointwise(folder / "terrain.onnx"),
            "landcover": write_tif(folder / "lc.tif", codes, nodata=0),
            "dem": write_tif(folder / "dem.tif", rough, geotransform=(299000.0, 60.0, 0.0, 4151000.0, 0.0, -60.0))}


def _single(terrain: dict[str, Path], out: Path, **fields: object) -> np.ndarray:
    request = TranslationRequest(str(out), model_path=str(terrain["model"]), device="cpu", window_px=WINDOW,
                                 overlap_px=OVERLAP, elevation_path=str(terrain["dem"]), **fields)
    with GdalReader(terrain["landcover"]) as reader:
        run_translation(request, reader)
    return read_tif(out)


def test_a_terrain_aware_mosaic_reads_the_dem_on_every_worker(terrain: dict[str, Path], cluster: LocalCluster,
                                                               tmp_path: Path) -> None:
    expected = _single(terrain, tmp_path / "single.tif", sun_azimuth_deg=200.0)
    default_sun = _single(terrain, tmp_path / "default.tif")
    lines: list[str] = []
    result = run_mosaic(MosaicRequest(
        str(terrain["model"]), (str(terrain["landcover"]),), str(tmp_path / "out"),
        scheduler=cluster.scheduler_address, tile_px=TILE, window_px=WINDOW, overlap_px=OVERLAP, device="cpu",
        elevation_path=str(terrain["dem"]), sun_azimuth_deg=200.0), log=lines.append)
    got = read_tif(result.vrt_path)
    assert result.tiles == result.ran > 1
    np.testing.assert_array_equal(got, expected)  # the job's pixels, the chosen sun included
    assert not np.array_equal(got, default_sun)
    assert any("Terrain: hillshade, slope, relative_elevation from dem.tif" in m and "azimuth 200" in m
               for m in result.messages)
    assert any("matches the model's 30 m" in line for line in lines)  # the job's resolution rule said its line
    tags = result.tags
    assert tags["LCGAN_ELEVATION"] == "dem.tif" and tags["LCGAN_AI_GENERATED"] == "YES"
    vrt = gdal.Open(result.vrt_path).GetMetadata()
    tile = gdal.Open(str(Path(result.output_dir) / "tiles" / "r0000_c0000.tif")).GetMetadata()
    for metadata in (vrt, tile):
        assert metadata["LCGAN_AI_GENERATED"] == "YES" and metadata["LCGAN_ELEVATION"] == "dem.tif"
        assert metadata["LCGAN_MODEL"] == "terrain.onnx" and metadata["LCGAN_INPUT"].endswith("lc.tif")


def test_the_job_s_errors_come_before_any_cluster(terrain: dict[str, Path], models: dict[str, Path],
                                                  tmp_path: Path) -> None:
    started = time.perf_counter()
    unreachable = {"scheduler": "tcp://127.0.0.1:9", "timeout_s": 30.0}  # never reached: the errors come first
    with pytest.raises(InputRasterError, match="terrain.onnx is terrain-aware: it needs an elevation raster"):
        run_mosaic(MosaicRequest(str(terrain["model"]), (str(terrain["landcover"]),), str(tmp_path / "a"),
                                 **unreachable))
    with pytest.raises(ContractError, match="translates landcover_to_rgb, not rgb_to_landcover"):
        run_mosaic(MosaicRequest(str(models["landcover_to_rgb"]), (str(terrain["landcover"]),), str(tmp_path / "b"),
                                 direction=Direction.RGB_TO_LANDCOVER, **unreachable))
    assert time.perf_counter() - started < 20


def test_no_file_an_input_reads_is_overwritten(models: dict[str, Path], tmp_path: Path) -> None:
    codes = smooth_landcover(64, 64)
    inside = tmp_path / "out" / "tiles"
    inside.mkdir(parents=True)
    tile_input = write_tif(inside / "r0000_c0000.tif", codes)  # a tile of an earlier mosaic given as input
    vrt_input = write_tif(tmp_path / "out" / "mosaic.vrt", codes)
    for raster in (tile_input, vrt_input):
        with pytest.raises(OutputError, match=f"would overwrite {raster}, a file the raster"):
            run_mosaic(MosaicRequest(str(models["landcover_to_rgb"]), (str(raster),), str(tmp_path / "out"),
                                     scheduler="tcp://127.0.0.1:9"))
    assert read_tif(vrt_input).shape == (1, 64, 64) and read_tif(tile_input).shape == (1, 64, 64)
