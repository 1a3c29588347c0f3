"""The scenario's local mode (lcgan_qgis/core/run/scenario_local.py) with the bundled model (onnxruntime fp32) on the
small maps of tests/core/test_scenario.py: outside change + margin the base render bit for bit, inside it close to
the exact render, no seam at the margin's edge, the same result however the base render is given, fewer model
pixels than the exact mode, the margin's checks, the command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import OptionError
from lcgan_qgis.core.model.runtime import Model
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.run import scenario_local
from lcgan_qgis.core.run.scenario import ScenarioRequest, run_scenario
from lcgan_qgis.core.run.scenario_local import change_regions, distance_to_change, feather
from tests.core import test_scenario
from tests.fixtures.rasters import read_tif

SETTINGS = test_scenario.SETTINGS
model, scene = test_scenario.model, test_scenario.scene  # (the fixtures: the bundled model, the 288 x 320 scene)


def brute_distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest true pixel of ``mask``, by brute force (20 rows at a time)."""
    points = np.argwhere(mask)
    out = np.empty(mask.shape)
    cols = np.arange(mask.shape[1])
    for r0 in range(0, mask.shape[0], 20):
        rows = np.arange(r0, min(r0 + 20, mask.shape[0]))
        d2 = (rows[:, None, None] - points[:, 0]) ** 2 + (cols[None, :, None] - points[:, 1]) ** 2
        out[rows] = np.sqrt(d2.min(axis=-1))
    return out


def local(model: Model, scene: dict[str, Path], out: Path, **fields: object) -> np.ndarray:
    values = {"changed_path": str(scene["changed"]), "base_render_path": str(scene["base_rgb"]), "settings": SETTINGS,
              **fields}
    run_scenario(ScenarioRequest(str(out), str(scene["base"]), **values), model=model)  # type: ignore[arg-type]
    return read_tif(out)


def test_outside_change_and_margin_is_the_base_render_and_inside_is_close_to_exact(
        model: Model, scene: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "s.tif"
    got, base, full = local(model, scene, out), read_tif(scene["base_rgb"]), read_tif(scene["changed_rgb"])
    mask = read_tif(tmp_path / "s_change.tif")[0]
    base_lc, changed_lc = read_tif(scene["base"])[0], read_tif(scene["changed"])[0]
    changed = base_lc != changed_lc
    distance = brute_distance(changed)
    assert np.array_equal(mask == 1, changed)
    assert np.array_equal(mask > 0, changed | (distance <= 40))  # the default margin, Euclidean
    assert np.array_equal(got[:, mask == 0], base[:, mask == 0])  # copied, bit for bit
    assert not np.array_equal(got[:, mask == 1], base[:, mask == 1])
    inner = distance <= 20  # weight 1: the new render itself, the same windows cropped with 32 px of context
    assert np.abs(got[:, inner].astype(int) - full[:, inner]).max() <= 3
    assert np.abs(got[:, inner].astype(int) - full[:, inner]).mean() < 0.2
    tags = gdal.Open(str(out)).GetMetadata()
    assert tags["LCGAN_SCENARIO_MODE"] == "local" and tags["LCGAN_SCENARIO_MARGIN_PX"] == "40"
    assert "feathered" in tags["TIFFTAG_IMAGEDESCRIPTION"]
    assert not list(tmp_path.glob(".*"))


def test_no_seam_at_the_margins_edge(model: Model, scene: dict[str, Path], tmp_path: Path) -> None:
    from tools.bench.scenario import margin_seam_ratio

    full = read_tif(scene["changed_rgb"])  # no seam anywhere: its ratio along the same edge is the baseline (the
    for margin in (24, 40):  # map's 8 px class patches put real land-cover edges on some of the ring's edges)
        got = local(model, scene, tmp_path / f"s{margin}.tif", margin_px=margin)
        ring = read_tif(tmp_path / f"s{margin}_change.tif")[0] > 0
        assert margin_seam_ratio(got, ring) == pytest.approx(margin_seam_ratio(full, ring), abs=0.02)
    pasted = read_tif(scene["base_rgb"]).astype(float)
    pasted[:, ring] += 12  # a patch 12 DN brighter within the same ring: the measure sees it
    assert margin_seam_ratio(pasted, ring) > 1.3


def test_the_same_result_however_the_base_render_is_given(model: Model, scene: dict[str, Path],
                                                          tmp_path: Path) -> None:
    given = local(model, scene, tmp_path / "given.tif")
    here = local(model, scene, tmp_path / "here.tif", base_render_path=None)
    assert np.array_equal(given, here) and np.array_equal(read_tif(tmp_path / "here_base.tif"),
                                                          read_tif(scene["base_rgb"]))
    striped = tmp_path / "striped.tif"  # not lcgan's layout: written anew, strip by strip, not patched in place
    gdal.Translate(str(striped), str(scene["base_rgb"]), creationOptions=["TILED=NO", "COMPRESS=LZW"])
    assert np.array_equal(local(model, scene, tmp_path / "other.tif", base_render_path=str(striped)), given)
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.scenario_output import lcgan_layout

    shutil.copyfile(scene["base_rgb"], tmp_path / "stats.tif")
    gdal.Info(str(tmp_path / "stats.tif"), stats=True)  # (QGIS's statistics: a .aux.xml beside it)
    with GdalReader(scene["base_rgb"]) as reader:
        info = reader.info
    assert (tmp_path / "stats.tif.aux.xml").is_file() and lcgan_layout(str(tmp_path / "stats.tif"), info)
    assert lcgan_layout(str(scene["base_rgb"]), info) and not lcgan_layout(str(striped), info)
    assert np.array_equal(local(model, scene, tmp_path / "s.tif", base_render_path=str(tmp_path / "stats.tif")),
                          given)
    assert not (tmp_path / "s.tif.aux.xml").exists()
    patched = gdal.Open(str(tmp_path / "given.tif"))
    assert patched.GetRasterBand(1).GetOverviewCount() == 0 or patched.GetRasterBand(1).GetOverview(0).Checksum() \
        == gdal.Open(str(tmp_path / "other.tif")).GetRasterBand(1).GetOverview(0).Checksum()


def test_chunks_change_no_pixel(model: Model, scene: dict[str, Path], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    whole = local(model, scene, tmp_path / "whole.tif")
    monkeypatch.setattr(scenario_local, "CHUNK_PX", 48)  # the 120 px region in 3 x 3 chunks
    assert np.array_equal(local(model, scene, tmp_path / "cut.tif"), whole)


def test_the_local_mode_runs_fewer_model_pixels_than_the_exact_mode(model: Model, scene: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    pixels = {"local": 0, "exact": 0}

    class Counting:
        def __init__(self, inner: Model, mode: str) -> None:
            self.inner, self.mode = inner, mode

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def run(self, batch: np.ndarray) -> np.ndarray:
            pixels[self.mode] += batch.shape[0] * batch.shape[2] * batch.shape[3]
            return self.inner.run(batch)

    for mode in pixels:
        run_scenario(ScenarioRequest(str(tmp_path / f"{mode}.tif"), str(scene["base"]),
                                     changed_path=str(scene["changed"]), base_render_path=str(scene["base_rgb"]),
                                     settings=SETTINGS, mode=mode), model=Counting(model, mode))
    assert 0 < pixels["local"] < 0.6 * pixels["exact"]


def test_the_margin_and_mode_are_checked_in_one_line(scene: dict[str, Path], tmp_path: Path) -> None:
    for fields, text in ((dict(margin_px=-1), "from 0 to 256, got -1"), (dict(margin_px=257), "got 257"),
                         (dict(margin_px=4.5), "got 4.5"), (dict(mode="fast"), "one of local, exact, got 'fast'"),
                         (dict(mode="exact", margin_px=40), "only to the local mode")):
        with pytest.raises(OptionError, match=text) as caught:
            ScenarioRequest(str(tmp_path / "e.tif"), str(scene["base"]), changed_path=str(scene["changed"]),
                            **fields)  # type: ignore[arg-type]
        assert "\n" not in str(caught.value)


def test_distance_regions_and_feather() -> None:
    rng = np.random.default_rng(5)
    mask = rng.random((70, 90)) > 0.997
    assert np.allclose(distance_to_change(mask, 12), np.minimum(brute_distance(mask), 13), atol=1e-4)
    weight = feather(np.array([0.0, 10, 20, 30, 39.9, 40, 50]), 40)
    assert weight[0] == weight[1] == weight[2] == 1 and 0 < weight[3] < 1 and weight[5] == weight[6] == 0
    two = np.zeros((300, 400), bool)
    two[10:20, 10:20] = two[250:260, 350:360] = True  # far apart: two regions
    assert change_regions(two, 40) == [Window(0, 0, 60, 60), Window(310, 210, 90, 90)]
    two[40:45, 75:80] = True  # 55 px from the first square: its region is merged with it
    assert change_regions(two, 40)[0] == Window(0, 0, 120, 85)
    scattered = rng.random((2048, 2048)) > 0.99998  # a MOLUSCE-like map: ~80 lone pixels (grouped in C, at once)
    regions = change_regions(scattered, 24)
    covered = np.zeros_like(scattered)
    for region in regions:
        covered[region.toslices()] = True
    assert 1 < len(regions) < 90 and not (scattered & ~covered).any()
    for i, a in enumerate(regions):  # no two regions within the context of each other
        grown = Window(a.col_off - 24, a.row_off - 24, a.width + 48, a.height + 48)
        assert all(grown.intersection(b) is None for b in regions[i + 1:])


def test_command_line_mode_and_margin(scene: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from lcgan_qgis.cli import main
    from lcgan_qgis.core.model.contract import Direction
    from lcgan_qgis.core.resources import bundled_model_path

    common = ["scenario", "--model", str(bundled_model_path(Direction.LANDCOVER_TO_RGB)), "--base", str(scene["base"]),
              "--changed", str(scene["changed"]), "--base-render", str(scene["base_rgb"]), "--window", "160",
              "--threads", "1", "--precision", "fp32", "--backend", "onnxruntime", "--seed", "7"]
    out = tmp_path / "after.tif"
    assert main([*common, "--output", str(out), "--mode", "local", "--margin", "24"]) == 0
    assert "local mode, margin 24 px" in capsys.readouterr().out
    mask = read_tif(tmp_path / "after_change.tif")[0]
    assert np.array_equal(mask > 0, brute_distance(mask == 1) <= 24)
    assert np.array_equal(read_tif(out)[:, mask == 0], read_tif(scene["base_rgb"])[:, mask == 0])
    assert main([*common, "--output", str(tmp_path / "x.tif"), "--margin", "300"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "from 0 to 256, got 300" in err and "\n" not in err
    assert not (tmp_path / "x.tif").exists()


def test_an_edit_at_the_raster_corner_over_nodata(model: Model, tmp_path: Path) -> None:
    from tests.fixtures.rasters import write_tif

    lc = test_scenario.landcover(200, 232, seed=9)  # (nodata in its top left 6 x 6 px)
    changed = lc.copy()
    changed[:30, :36] = 22
    base, moved = write_tif(tmp_path / "b.tif", lc, nodata=255), write_tif(tmp_path / "c.tif", changed, nodata=255)
    full = test_scenario.render(model, moved, tmp_path / "full.tif")
    result = run_scenario(ScenarioRequest(str(tmp_path / "s.tif"), str(base), changed_path=str(moved),
                                          settings=SETTINGS), model=model)
    got, before = read_tif(tmp_path / "s.tif"), read_tif(tmp_path / "s_base.tif")
    mask = read_tif(tmp_path / "s_change.tif")[0]
    assert result.base_rendered and result.changed_px == int((lc != changed).sum())
    assert np.array_equal(got[:, mask == 0], before[:, mask == 0])
    inner = brute_distance(mask == 1) <= 20
    assert np.abs(got[:, inner].astype(int) - full[:, inner]).max() <= 3


def test_a_terrain_aware_model_reads_the_dem_in_each_crop(scene: dict[str, Path], tmp_path: Path) -> None:
    terrain, settings = test_scenario.terrain_full_render(scene, tmp_path)
    run_scenario(ScenarioRequest(str(tmp_path / "s.tif"), str(scene["base"]), changed_path=str(scene["changed"]),
                                 settings=settings), model=terrain)
    got, full, before = (read_tif(tmp_path / f"{n}.tif") for n in ("s", "full", "s_base"))
    mask = read_tif(tmp_path / "s_change.tif")[0]
    assert np.array_equal(got[:, mask == 0], before[:, mask == 0])
    inner = brute_distance(mask == 1) <= 20
    assert np.abs(got[:, inner].astype(int) - full[:, inner]).max() <= 3
