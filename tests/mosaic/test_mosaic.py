"""A mosaic run on a real Dask LocalCluster (2 worker processes) writes the single-process engine's pixels: land
cover codes identical, imagery within 1 DN (in fact identical), for rasters that are no multiple of the super-tile,
with nodata, and for a VRT of several files; plus resume, the manifest, the tiles' COG layout and the VRT's styling."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster
from osgeo import gdal

from lcgan_qgis.core.errors import ClusterError, OptionError
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.settings import Execution, ModelChoice, RunSettings, Windowing
from lcgan_qgis.mosaic.job import MosaicRequest, MosaicResult, run_mosaic
from lcgan_qgis.mosaic.manifest import MANIFEST_NAME
from lcgan_qgis.mosaic.request import Cluster
from lcgan_qgis.mosaic.tile import model_loads
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.mosaic import OVERLAP, TILE, WINDOW, single_process
from tests.fixtures.rasters import GEOTRANSFORM, read_tif, write_tif
from tests.optional import needs_openvino

REPO = Path(__file__).resolve().parents[2]


def imagery(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth uint16 imagery in the test models' fixed radiometry range, with a nodata (0) hole."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(6500, 15000, (3, height // 16 + 2, width // 16 + 2))
    pixels = np.kron(coarse, np.ones((1, 16, 16), np.int64))[:, :height, :width].astype(np.uint16)
    pixels[:, 40:90, 10:70] = 0
    return pixels


def mosaic(model: Path, inputs: list[Path], out: Path, cluster: LocalCluster, device: str = "auto",
           retries: int = 2) -> MosaicResult:
    request = MosaicRequest(tuple(str(p) for p in inputs), str(out), model=ModelChoice(path=str(model)),
                            settings=RunSettings(execution=Execution(device=device),
                                                 windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP)),
                            cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=TILE, retries=retries))
    return run_mosaic(request)


def test_land_cover_codes_equal_the_single_process_engine(models: dict[str, Path], cluster: LocalCluster,
                                                          tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "rgb.tif", imagery(301, 389), nodata=0)  # 301 x 389: no multiple of 128
    expected = single_process(models["rgb_to_landcover"], raster, tmp_path / "single.tif")
    result = mosaic(models["rgb_to_landcover"], [raster], tmp_path / "out", cluster)
    got = read_tif(result.vrt_path)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert (got == 255).sum() == 50 * 60  # the nodata hole is nodata (the scheme's code 255), nothing else is
    assert result.tiles == result.ran == 12 and result.skipped == 0 and result.retries == 0 and result.workers == 2
    vrt = gdal.Open(result.vrt_path)
    band = vrt.GetRasterBand(1)
    assert vrt.GetGeoTransform() == GEOTRANSFORM and band.GetNoDataValue() == 255
    assert band.GetRasterColorTable() is not None and band.GetRasterColorTable().GetColorEntry(42)[:3] != (0, 0, 0)
    assert "Evergreen Forest" in band.GetRasterCategoryNames()
    tile = gdal.Open(str(Path(result.output_dir) / "tiles" / "r0000_c0000.tif"))
    assert tile.GetMetadata("IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert tile.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"


def test_imagery_equals_the_single_process_engine(models: dict[str, Path], cluster: LocalCluster,
                                                  tmp_path: Path) -> None:
    codes = smooth_landcover(277, 410, seed=3)
    codes[100:150, 200:260] = 0  # nodata
    raster = write_tif(tmp_path / "lc.tif", codes, nodata=0)
    expected = single_process(models["landcover_to_rgb"], raster, tmp_path / "single.tif")
    result = mosaic(models["landcover_to_rgb"], [raster], tmp_path / "out", cluster)
    got = read_tif(result.vrt_path)
    assert got.shape == expected.shape == (3, 277, 410)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1  # the bar; measured: identical
    assert np.array_equal(got, expected)
    assert (got[:, 100:150, 200:260] == 0).all() and (got[:, codes != 0] > 0).all()
    vrt = gdal.Open(result.vrt_path)
    assert [vrt.GetRasterBand(b).GetColorInterpretation() for b in (1, 2, 3)] == \
        [gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand]


def test_a_vrt_of_several_files_and_a_folder(models: dict[str, Path], cluster: LocalCluster, tmp_path: Path) -> None:
    codes = smooth_landcover(260, 330, seed=5)
    codes[:20, :30] = 0
    whole = write_tif(tmp_path / "whole.tif", codes, nodata=0)
    expected = single_process(models["landcover_to_rgb"], whole, tmp_path / "single.tif")
    parts = tmp_path / "parts"
    parts.mkdir()
    files = []
    for i, (c0, c1) in enumerate(((0, 100), (100, 250), (250, 330))):  # three files side by side
        x0 = GEOTRANSFORM[0] + 30.0 * c0
        files.append(write_tif(parts / f"part{i}.tif", codes[:, c0:c1], nodata=0,
                               geotransform=(x0, 30.0, 0.0, GEOTRANSFORM[3], 0.0, -30.0)))
    listed = mosaic(models["landcover_to_rgb"], files, tmp_path / "listed", cluster)
    assert (tmp_path / "listed" / "input.vrt").is_file()
    np.testing.assert_array_equal(read_tif(listed.vrt_path), expected)
    folder = mosaic(models["landcover_to_rgb"], [parts], tmp_path / "folder", cluster)
    np.testing.assert_array_equal(read_tif(folder.vrt_path), expected)


def test_one_model_per_worker_process(models: dict[str, Path], cluster: LocalCluster, client: Client,
                                      tmp_path: Path) -> None:
    from tests.fixtures.conv_factory import write_conv

    model = write_conv(tmp_path / "fresh.onnx", "landcover_to_rgb")  # a file no worker has loaded yet
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(300, 400, seed=8))
    before = client.run(model_loads)
    result = mosaic(model, [raster], tmp_path / "out", cluster)
    after = client.run(model_loads)
    assert result.ran == 12
    assert all(after[w] - before.get(w, 0) <= 1 for w in after)  # 12 tiles, at most one load per worker
    manifest = [json.loads(line) for line in (tmp_path / "out" / MANIFEST_NAME).read_text().splitlines()]
    assert len({m["tile"]["worker"] for m in manifest[1:]}) == 2  # both workers ran tiles


def test_a_rerun_after_an_interruption_skips_the_finished_tiles(models: dict[str, Path], cluster: LocalCluster,
                                                                 tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(390, 390, seed=2), nodata=0)
    expected = single_process(models["landcover_to_rgb"], raster, tmp_path / "single.tif")
    out = tmp_path / "out"
    request = MosaicRequest(
        output_dir=str(out),
        inputs=(str(raster),),
        model=ModelChoice(path=str(models["landcover_to_rgb"])),
        settings=RunSettings(windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP)),
        cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=TILE),
    )
    finished: list[int] = []
    first = run_mosaic(request, tile_progress=lambda done, _total: finished.append(done),
                       is_canceled=lambda: len(finished) >= 3)
    assert first.canceled and first.vrt_path is None and not (out / "mosaic.vrt").exists()
    lines = (out / MANIFEST_NAME).read_text().splitlines()[1:]
    journalled = len(lines)
    assert journalled == 3 and first.tiles == 16  # the cancel takes effect at the tile that asked for it
    damaged = out / json.loads(lines[0])["tile"]["path"]  # a journalled tile damaged since: its checksum fails
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    second = run_mosaic(request)
    assert second.skipped == journalled - 1 and second.ran == 16 - second.skipped
    np.testing.assert_array_equal(read_tif(second.vrt_path), expected)
    third = run_mosaic(request)
    assert (third.skipped, third.ran) == (16, 0)
    assert not list(out.glob("tiles/.*"))  # no temporary files left


def test_the_int8_sibling_is_chosen_once_for_every_worker(cluster: LocalCluster, tmp_path: Path) -> None:
    """``precision="auto"`` on CPU with a fidelity record in which onnxruntime int8 passes its gate: the client picks
    ``M.int8.onnx`` (here a copy with the same contract, which :func:`load_model` accepts as the sibling) by the
    core's rule, and the workers load exactly that file on that path, as the engine does."""
    import shutil

    from lcgan_qgis.core.model.precision import ONNXRUNTIME, ExecutionPath, FidelityRecord, file_digest, write_record
    from lcgan_qgis.core.model.runtime import int8_sibling
    from tests.fixtures.conv_factory import write_conv

    model = write_conv(tmp_path / "m.onnx", "landcover_to_rgb")
    shutil.copyfile(model, int8_sibling(model))
    digests = {p.name: file_digest(p) for p in (model, int8_sibling(model))}
    write_record(model, FidelityRecord(model.name, digests, "psnr_db", "test windows",
                                       {ExecutionPath(ONNXRUNTIME, "int8").key: {"value": 60.0}}))
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(200, 260), nodata=0)
    expected = single_process(model, raster, tmp_path / "single.tif")
    result = mosaic(model, [raster], tmp_path / "out", cluster, device="cpu")
    np.testing.assert_array_equal(read_tif(result.vrt_path), expected)
    header = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text().splitlines()[0])
    assert header["job"]["model"]["file"] == "m.int8.onnx"
    assert (result.backend, result.precision) == ("onnxruntime", "int8")


@needs_openvino
def test_openvino_tiles_run_one_thread_count_the_engine_can_repeat(models: dict[str, Path], cluster: LocalCluster,
                                                                   tmp_path: Path) -> None:
    """OpenVINO's pixels depend on its thread count (bf16 up to 10 DN between 1 and 2 threads on the full-size
    generator): with no count asked, every tile runs the fewest threads any worker has (1 here), the mosaic equals the
    engine at that count, and the count is part of the job, so a re-run with another count is refused by name."""
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(200, 260), nodata=0)
    with GdalReader(raster) as reader:
        options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP)))
        translate(load_model(models["landcover_to_rgb"], "cpu", threads=1, backend="openvino"), reader,
                  tmp_path / "single.tif", options)
    said: list[str] = []
    request = MosaicRequest(
        output_dir=str(tmp_path / "out"),
        inputs=(str(raster),),
        model=ModelChoice(path=str(models["landcover_to_rgb"])),
        settings=RunSettings(
            execution=Execution(backend="openvino"),
            windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP),
        ),
        cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=TILE),
    )
    result = run_mosaic(request, log=said.append)
    assert result.backend == "openvino"
    assert any("every tile runs 1 thread(s), as `translate --threads 1` would" in line for line in said), said
    np.testing.assert_array_equal(read_tif(result.vrt_path), read_tif(tmp_path / "single.tif"))
    header = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text().splitlines()[0])
    assert header["job"]["model"]["threads"] == 1
    with pytest.raises(OptionError, match=r"another job \(it differs in: model\.threads\)"):
        run_mosaic(replace(request, settings=replace(request.settings,
                                                     execution=replace(request.settings.execution, threads=2))))


def test_another_job_in_the_same_folder_is_refused(models: dict[str, Path], cluster: LocalCluster,
                                                   tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(130, 130))
    mosaic(models["landcover_to_rgb"], [raster], tmp_path / "out", cluster)
    with pytest.raises(OptionError, match="another job.*tile_px"):
        request = MosaicRequest(
            output_dir=str(tmp_path / "out"),
            inputs=(str(raster),),
            model=ModelChoice(path=str(models["landcover_to_rgb"])),
            settings=RunSettings(windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP)),
            cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=256),
        )
        run_mosaic(request)


def test_a_failed_tile_fails_the_job_by_name_and_the_finished_tiles_stay(models: dict[str, Path],
                                                                         cluster: LocalCluster,
                                                                         tmp_path: Path) -> None:
    """A folder stands where one tile's file must go, so that tile fails on every try, whatever the timing.

    (Damaging an input mid-run raced with the job: on a fast machine every tile had read its pixels before the
    first one was reported, and the plan reads a sample of the whole input, so it cannot be damaged beforehand.)
    Mended, the same job resumes: the tiles that finished are kept, the rest are run.
    """
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(512, 256, seed=4))
    out = tmp_path / "out"
    blocker = out / "tiles" / "r0003_c0001.tif"
    blocker.mkdir(parents=True)
    request = MosaicRequest(
        output_dir=str(out),
        inputs=(str(raster),),
        model=ModelChoice(path=str(models["landcover_to_rgb"])),
        settings=RunSettings(windowing=Windowing(window_px=WINDOW, overlap_px=OVERLAP)),
        cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=TILE, retries=0),
    )
    with pytest.raises(ClusterError, match=r"Tile r0003_c0001 \(columns \d+-256, rows \d+-512\) failed: "
                                           r"OutputError: Cannot write the tile .*r0003_c0001\.tif: .*Is a directory\. "
                                           r"The \d finished"):
        run_mosaic(request)
    lines = (out / MANIFEST_NAME).read_text().splitlines()
    assert not (out / "mosaic.vrt").exists()
    finished = [json.loads(line)["tile"] for line in lines[1:]]
    assert all((out / tile["path"]).is_file() for tile in finished)
    assert "r0003_c0001" not in {tile["name"] for tile in finished}

    blocker.rmdir()
    again = run_mosaic(request)
    assert (again.skipped, again.ran) == (len(finished), 8 - len(finished))
    expected = single_process(models["landcover_to_rgb"], raster, tmp_path / "single.tif")
    np.testing.assert_array_equal(read_tif(again.vrt_path), expected)


def test_a_scheduler_that_does_not_answer_is_a_clear_error(models: dict[str, Path], tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(64, 64))
    request = MosaicRequest(
        output_dir=str(tmp_path / "out"),
        inputs=(str(raster),),
        model=ModelChoice(path=str(models["landcover_to_rgb"])),
        cluster=Cluster(scheduler="tcp://127.0.0.1:9", timeout_s=2.0),
    )
    started = time.perf_counter()
    with pytest.raises(ClusterError, match=r"No Dask scheduler answered at tcp://127.0.0.1:9 within 2 s"):
        run_mosaic(request)
    assert time.perf_counter() - started < 25  # (the 2 s timeout, not a default one; slack for a loaded machine)


def test_the_command_line_on_a_local_cluster(models: dict[str, Path], tmp_path: Path) -> None:
    """``translate-mosaic --local-workers 2`` starts its own LocalCluster; prints the dashboard and a summary."""
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(200, 150), nodata=0)
    expected = single_process(models["landcover_to_rgb"], raster, tmp_path / "single.tif")
    args = [sys.executable, "-m", "lcgan_qgis", "translate-mosaic", "--model", str(models["landcover_to_rgb"]),
            "--input", str(raster), "--output-dir", str(tmp_path / "out"), "--local-workers", "2",
            "--threads-per-worker", "1", "--tile-px", str(TILE), "--window", str(WINDOW), "--overlap", str(OVERLAP)]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "dashboard: http://" in done.stdout and "2 worker(s) on a local cluster of 2 x 1 threads" in done.stdout
    assert "mosaic.vrt: 4 tiles (4 run, 0 already done)" in done.stdout and "0 retries, 2 workers" in done.stdout
    np.testing.assert_array_equal(read_tif(tmp_path / "out" / "mosaic.vrt"), expected)
    unreachable = [*args[:6], "--input", str(raster), "--output-dir", str(tmp_path / "x"), "--scheduler", "tcp://127.0.0.1:9",
                   "--timeout", "1"]
    bad = subprocess.run(unreachable, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: No Dask scheduler")


def test_importing_the_mosaic_package_does_not_import_dask() -> None:
    code = ("import sys, lcgan_qgis.mosaic.job, lcgan_qgis.mosaic.tile, lcgan_qgis.cli;"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {'dask', 'distributed'})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cancel_while_planning_runs_nothing(models: dict[str, Path], cluster: LocalCluster, tmp_path: Path) -> None:
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(700, 300), nodata=0)  # 3 strips of pre-scan
    polls = [0]

    def canceled() -> bool:  # true from the pre-scan's second strip on: the plan is cut short
        polls[0] += 1
        return polls[0] > 1

    request = MosaicRequest(
        output_dir=str(tmp_path / "out"),
        inputs=(str(raster),),
        model=ModelChoice(path=str(models["landcover_to_rgb"])),
        cluster=Cluster(scheduler=cluster.scheduler_address, tile_px=TILE),
    )
    result = run_mosaic(request, is_canceled=canceled)
    assert result.canceled and result.ran == 0 and result.vrt_path is None
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"tile_px": 32}, "super-tile size must be an integer >= 64"),
    ({"retries": -1}, "retries must be an integer >= 0"),
    ({"scheduler": "tcp://127.0.0.1:9", "local_workers": 2}, "either a scheduler address or a number of local"),
    ({"local_workers": 0}, "local workers must be an integer >= 1"),
    ({"timeout_s": 0}, "The timeout must be > 0 s"),
])
def test_bad_cluster_settings_are_refused_when_the_request_is_built(overrides: dict[str, object],
                                                                    message: str) -> None:
    """Before any cluster: the record refuses them (an invalid one cannot exist)."""
    with pytest.raises(OptionError, match=message):
        Cluster(**overrides)  # type: ignore[arg-type]


def test_without_dask_the_message_says_how_to_install_it(models: dict[str, Path], tmp_path: Path) -> None:
    """A Python where ``import distributed`` fails (as in a QGIS without Dask): one line with the pip command."""
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(64, 64))
    code = ("import sys; sys.modules['distributed'] = None; from lcgan_qgis.cli import main; "
            f"sys.exit(main(['translate-mosaic', '--model', {str(models['landcover_to_rgb'])!r}, '--input', "
            f"{str(raster)!r}, '--output-dir', {str(tmp_path / 'out')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Distributed runs need Dask's distributed scheduler")
    assert 'python -m pip install "dask[distributed]==2026.8.0"' in last


def test_device_cuda_goes_to_the_workers(models: dict[str, Path], cluster: LocalCluster, tmp_path: Path) -> None:
    """``device="cuda"`` reaches each worker's model loading. On a GPU machine the mosaic runs there (within 1 DN of
    the CPU engine); without one, the worker's own reason comes back, naming the tile."""
    from lcgan_qgis.core.errors import DeviceError
    from lcgan_qgis.core.model.runtime import describe_providers

    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(150, 140))
    try:
        describe_providers("cuda")
    except DeviceError as exc:
        reason = str(exc).split("cannot be used: ")[1][:40]
        with pytest.raises(ClusterError, match=r"Tile r\d+_c\d+ .* failed: DeviceError: CUDA was requested") as info:
            mosaic(models["landcover_to_rgb"], [raster], tmp_path / "out", cluster, device="cuda", retries=0)
        assert reason in str(info.value)
        return
    expected = single_process(models["landcover_to_rgb"], raster, tmp_path / "single.tif")
    result = mosaic(models["landcover_to_rgb"], [raster], tmp_path / "out", cluster, device="cuda")
    assert np.abs(read_tif(result.vrt_path).astype(int) - expected.astype(int)).max() <= 1


def test_a_bad_model_or_input_is_named_before_any_cluster_or_folder(models: dict[str, Path], tmp_path: Path) -> None:
    from lcgan_qgis.core.errors import InputRasterError, ModelFileError

    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(64, 64))
    with pytest.raises(ModelFileError, match="missing.onnx"):
        request = MosaicRequest(
            output_dir=str(tmp_path / "out"),
            inputs=(str(raster),),
            model=ModelChoice(path=str(tmp_path / "missing.onnx")),
        )
        run_mosaic(request)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputRasterError, match="nowhere.tif"):
        request = MosaicRequest(
            output_dir=str(tmp_path / "out"),
            inputs=(str(tmp_path / "nowhere.tif"),),
            model=ModelChoice(path=str(models["landcover_to_rgb"])),
        )
        run_mosaic(request)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputRasterError, match="holds no rasters"):
        request = MosaicRequest(
            output_dir=str(tmp_path / "out"),
            inputs=(str(empty),),
            model=ModelChoice(path=str(models["landcover_to_rgb"])),
        )
        run_mosaic(request)


def test_a_set_of_rasters_that_cannot_be_one_mosaic_names_the_odd_file(models: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    from lcgan_qgis.core.errors import InputRasterError

    codes = smooth_landcover(64, 64)
    first = write_tif(tmp_path / "a.tif", codes)
    cases = {"another CRS": write_tif(tmp_path / "b.tif", codes, epsg=32613),
             "band": write_tif(tmp_path / "c.tif", np.stack([codes, codes])),
             "pixels": write_tif(tmp_path / "d.tif", codes, geotransform=(300000.0, 60.0, 0.0, 4150000.0, 0.0, -60.0))}
    for message, odd in cases.items():
        with pytest.raises(InputRasterError, match=f"{odd.name}.*{message}"):
            request = MosaicRequest(
                output_dir=str(tmp_path / "out"),
                inputs=(str(first), str(odd)),
                model=ModelChoice(path=str(models["landcover_to_rgb"])),
            )
            run_mosaic(request)
