"""A worker process killed in the middle of a tile: the job still completes with every tile, pixel for pixel, and
no half-written tile is left (on its own cluster: the kill must not disturb the other tests' workers)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from distributed import Client, LocalCluster

from lcgan_qgis.core.model.precision import file_digest
from lcgan_qgis.core.run.settings import ModelChoice, RunSettings, Windowing
from lcgan_qgis.mosaic.job import MosaicRequest, run_mosaic
from lcgan_qgis.mosaic.manifest import MANIFEST_NAME
from lcgan_qgis.mosaic.request import Cluster
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.mosaic import OVERLAP, WINDOW, single_process
from tests.fixtures.rasters import read_tif, write_tif

from .killer import KillMidTile


def test_a_worker_killed_mid_tile_and_the_job_still_completes(models: dict[str, Path], tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(512, 512, seed=6), nodata=0)
    expected = single_process(models["landcover_to_rgb"], raster, tmp_path / "single.tif")
    marker = tmp_path / "killed.pid"
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as client:
        pids_before = set(client.run(lambda: __import__("os").getpid()).values())
        client.register_plugin(KillMidTile(str(marker)))
        request = MosaicRequest(
            output_dir=str(out),
            inputs=(str(raster),),
            model=ModelChoice(path=str(models["landcover_to_rgb"])),
            settings=RunSettings(windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP)),
            cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=256, timeout_s=30),
        )
        result = run_mosaic(request)
        client.wait_for_workers(2, timeout=30)
        pids_after = set(client.run(lambda: __import__("os").getpid()).values())
    killed = int(marker.read_text())
    assert killed in pids_before and killed not in pids_after  # a real worker process died, a new one replaced it
    assert result.ran == result.tiles == 4 and result.retries is not None and result.retries >= 1
    np.testing.assert_array_equal(read_tif(result.vrt_path), expected)
    records = [json.loads(line)["tile"] for line in (out / MANIFEST_NAME).read_text().splitlines()[1:]]
    assert sorted(r["name"] for r in records) == [f"r000{r}_c000{c}" for r in (0, 1) for c in (0, 1)]
    for record in records:
        assert file_digest(out / record["path"]) == record["sha256"]
    assert sorted(p.name for p in (out / "tiles").iterdir()) == sorted(f"{r['name']}.tif" for r in records)


def test_two_rasters_far_apart_run_only_the_tiles_with_data(models: dict[str, Path], cluster: LocalCluster,
                                                            tmp_path: Path) -> None:
    """Issue 24: the gap between two far-apart rasters of one VRT is planned as no task (before: every super-tile of
    the empty canvas ran), and the mosaic still covers the whole input, equal to the single-process run."""
    from osgeo import gdal

    from tests.fixtures.mosaic import TILE

    codes = smooth_landcover(120, 100, seed=8)
    a = write_tif(tmp_path / "a.tif", codes, nodata=0)
    b = write_tif(tmp_path / "b.tif", codes[::-1].copy(), nodata=0,
                  geotransform=(300000.0 + 30.0 * 900, 30.0, 0.0, 4150000.0 - 30.0 * 700, 0.0, -30.0))
    gdal.BuildVRT(str(tmp_path / "both.vrt"), [str(a), str(b)]).FlushCache()
    expected = single_process(models["landcover_to_rgb"], tmp_path / "both.vrt", tmp_path / "single.tif")
    request = MosaicRequest(
        output_dir=str(tmp_path / "out"), inputs=(str(tmp_path / "both.vrt"),),
        model=ModelChoice(path=str(models["landcover_to_rgb"])),
        settings=RunSettings(windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP)),
        cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=TILE, timeout_s=30))
    result = run_mosaic(request)
    canvas = (820 // TILE + 1) * (1000 // TILE + 1)  # (about: the super-tiles of the whole canvas)
    assert result.ran <= 8 < canvas, (result.ran, canvas)
    got = read_tif(result.vrt_path)
    assert got.shape == expected.shape == (3, 820, 1000)
    np.testing.assert_array_equal(got, expected)
