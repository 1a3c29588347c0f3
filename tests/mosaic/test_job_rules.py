"""A mosaic run takes the single-process job's rules and settings: ``MosaicRequest`` holds the same
``RunSettings`` as ``TranslationRequest`` (no copied fields); a terrain-aware model reads its DEM on
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
from lcgan_qgis.core.run.settings import Execution, ModelChoice, Rendering, RunSettings, Terrain, Windowing
from lcgan_qgis.mosaic.job import run_mosaic
from lcgan_qgis.mosaic.request import Cluster, MosaicRequest
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.mosaic import OVERLAP, TILE, WINDOW
from tests.fixtures.onnx_factory import write_terrain_pointwise
from tests.fixtures.rasters import read_tif, write_tif


def test_a_mosaic_holds_the_settings_of_a_single_run_and_copies_none() -> None:
    """The two requests share records, not fields: a new run setting is a field of one record."""
    translation = {f.name: f.type for f in dataclasses.fields(TranslationRequest)}
    mosaic = {f.name: f.type for f in dataclasses.fields(MosaicRequest)}
    assert {name: translation[name] for name in translation.keys() & mosaic.keys()} == {
        "model": "ModelChoice", "settings": "RunSettings", "input_name": "str | None"}
    settings = RunSettings(execution=Execution(device="cpu", threads=3), rendering=Rendering(seed=5))
    request = MosaicRequest(("in.tif",), "out", settings=settings)
    assert request.settings is settings and request.vrt_path == Path("out") / "mosaic.vrt"


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


def _single(terrain: dict[str, Path], out: Path, sun_azimuth_deg: float | None = None) -> np.ndarray:
    settings = RunSettings(execution=Execution(device="cpu"), windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP),
                           terrain=Terrain(elevation_path=str(terrain["dem"]), sun_azimuth_deg=sun_azimuth_deg))
    request = TranslationRequest(str(out), model=ModelChoice(path=str(terrain["model"])), settings=settings)
    with GdalReader(terrain["landcover"]) as reader:
        run_translation(request, reader)
    return read_tif(out)


def test_a_terrain_aware_mosaic_reads_the_dem_on_every_worker(terrain: dict[str, Path], cluster: LocalCluster,
                                                               tmp_path: Path) -> None:
    expected = _single(terrain, tmp_path / "single.tif", sun_azimuth_deg=200.0)
    default_sun = _single(terrain, tmp_path / "default.tif")
    lines: list[str] = []
    request = MosaicRequest(
        output_dir=str(tmp_path / "out"),
        inputs=(str(terrain["landcover"]),),
        model=ModelChoice(path=str(terrain["model"])),
        settings=RunSettings(
            execution=Execution(device="cpu"),
            windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP),
            terrain=Terrain(elevation_path=str(terrain["dem"]), sun_azimuth_deg=200.0),
        ),
        cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=TILE),
    )
    result = run_mosaic(request, log=lines.append)
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
    unreachable = Cluster(scheduler="tcp://127.0.0.1:9", timeout_s=30.0)  # never reached: the errors come first
    with pytest.raises(InputRasterError, match="terrain.onnx is terrain-aware: it needs an elevation raster"):
        run_mosaic(MosaicRequest((str(terrain["landcover"]),), str(tmp_path / "a"),
                                 model=ModelChoice(path=str(terrain["model"])), cluster=unreachable))
    with pytest.raises(ContractError, match="translates landcover_to_rgb, not rgb_to_landcover"):
        run_mosaic(MosaicRequest((str(terrain["landcover"]),), str(tmp_path / "b"),
                                 model=ModelChoice(str(models["landcover_to_rgb"]), Direction.RGB_TO_LANDCOVER),
                                 cluster=unreachable))
    assert time.perf_counter() - started < 28  # (under the cluster's 30 s timeout: it was never waited for)


def test_no_file_an_input_reads_is_overwritten(models: dict[str, Path], tmp_path: Path) -> None:
    codes = smooth_landcover(64, 64)
    inside = tmp_path / "out" / "tiles"
    inside.mkdir(parents=True)
    tile_input = write_tif(inside / "r0000_c0000.tif", codes)  # a tile of an earlier mosaic given as input
    vrt_input = write_tif(tmp_path / "out" / "mosaic.vrt", codes)
    for raster in (tile_input, vrt_input):
        with pytest.raises(OutputError, match=f"would overwrite {raster}, a file the raster"):
            request = MosaicRequest(
                output_dir=str(tmp_path / "out"),
                inputs=(str(raster),),
                model=ModelChoice(path=str(models["landcover_to_rgb"])),
                cluster=Cluster(scheduler="tcp://127.0.0.1:9"),
            )
            run_mosaic(request)
    assert read_tif(vrt_input).shape == (1, 64, 64) and read_tif(tile_input).shape == (1, 64, 64)
