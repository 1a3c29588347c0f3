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
    assert np.array_equal(mask > 0, changed | (distance <= 32))  # the default margin, Euclidean
    assert np.array_equal(got[:, mask == 0], base[:, mask == 0])  # copied, bit for bit
    assert not np.array_equal(got[:, mask == 1], base[:, mask == 1])
    inner = distance <= 16  # weight 1: the new render itself, one crop in the windows' phase with 24 px of context
    departure = np.abs(got[:, inner].astype(int) - full[:, inner])  # (the full render blends windows whose edges
    assert departure.max() <= 5 and departure.mean() < 0.35  # and statistics differ a little from the crop's: 4 / 0.22)
    assert (departure > 2).mean() < 0.005
    tags = gdal.Open(str(out)).GetMetadata()
    assert tags["LCGAN_SCENARIO_MODE"] == "local" and tags["LCGAN_SCENARIO_MARGIN_PX"] == "32"
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


def test_chunks_move_a_pixel_by_1_dn_at_most(model: Model, scene: dict[str, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    whole = local(model, scene, tmp_path / "whole.tif")
    monkeypatch.setattr(scenario_local, "CHUNK_PX", 48)  # the 120 px region in 3 x 3 chunks
    regions = scenario_local.change_regions(read_tif(scene["base"])[0] != read_tif(scene["changed"])[0], 40)
    assert len(scenario_local.local_parts(regions)) == 9
    cut = local(model, scene, tmp_path / "cut.tif")  # (crops of other shapes: the model's sums round otherwise)
    mask = read_tif(tmp_path / "cut_change.tif")[0]
    assert np.array_equal(cut[:, mask == 0], whole[:, mask == 0])
    moved = (cut != whole).any(axis=0)
    assert np.abs(cut.astype(int) - whole).max() <= 1 and moved.sum() < 0.03 * (mask > 0).sum()  # (2.1 %)


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
    inner = brute_distance(mask == 1) <= 16
    assert np.abs(got[:, inner].astype(int) - full[:, inner]).max() <= 3


def test_a_terrain_aware_model_reads_the_dem_in_each_crop(scene: dict[str, Path], tmp_path: Path) -> None:
    terrain, settings = test_scenario.terrain_full_render(scene, tmp_path)
    run_scenario(ScenarioRequest(str(tmp_path / "s.tif"), str(scene["base"]), changed_path=str(scene["changed"]),
                                 settings=settings), model=terrain)
    got, full, before = (read_tif(tmp_path / f"{n}.tif") for n in ("s", "full", "s_base"))
    mask = read_tif(tmp_path / "s_change.tif")[0]
    assert np.array_equal(got[:, mask == 0], before[:, mask == 0])
    inner = brute_distance(mask == 1) <= 16
    assert np.abs(got[:, inner].astype(int) - full[:, inner]).max() <= 3


def _pyramid(path: Path) -> list[np.ndarray]:
    dataset = gdal.Open(str(path))
    bands = [dataset.GetRasterBand(b + 1) for b in range(dataset.RasterCount)]
    return [np.stack([band.GetOverview(i).ReadAsArray() for band in bands]) for i in range(bands[0].GetOverviewCount())]


def _rebuilt(path: Path, copy: Path, categorical: bool = False) -> list[np.ndarray]:
    """The overviews GDAL builds from ``path``'s pixels (on a copy)."""
    from lcgan_qgis.core.rasters.geotiff import build_overviews

    shutil.copyfile(path, copy)
    dataset = gdal.Open(str(copy), gdal.GA_Update)
    build_overviews(dataset, categorical, str(copy))
    dataset = None
    return _pyramid(copy)


@pytest.mark.parametrize(("height", "width", "nodata"), [(1019, 1073, 0), (777, 1201, None), (600, 1024, 0)])
def test_the_partial_overview_refresh_is_what_a_full_rebuild_writes(tmp_path: Path, height: int, width: int,
                                                                     nodata: int | None) -> None:
    from lcgan_qgis.core.rasters.geotiff import GEOTIFF_CREATION_OPTIONS, build_overviews
    from lcgan_qgis.core.rasters.overview_patch import refresh_average_overviews

    rng = np.random.default_rng(height)
    pixels = rng.integers(1, 256, (3, height, width)).astype(np.uint8)
    if nodata is not None:
        pixels[:, rng.random((height, width)) < 0.1] = nodata  # (left out of GDAL's AVERAGE)
    base = tmp_path / "base.tif"
    dataset = gdal.GetDriverByName("GTiff").Create(str(base), width, height, 3, gdal.GDT_Byte,
                                                   list(GEOTIFF_CREATION_OPTIONS))
    for b in range(3):
        if nodata is not None:
            dataset.GetRasterBand(b + 1).SetNoDataValue(nodata)
        dataset.GetRasterBand(b + 1).WriteArray(pixels[b])
    dataset.FlushCache()
    build_overviews(dataset, False, str(base))
    dataset = None
    before = _pyramid(base)
    for window in (Window(301, 250, 235, 235), Window(0, 0, 97, 133), Window(width - 101, height - 77, 101, 77)):
        patched = tmp_path / "patched.tif"
        shutil.copyfile(base, patched)
        dataset = gdal.Open(str(patched), gdal.GA_Update)
        dataset.WriteArray(rng.integers(0, 256, (3, window.height, window.width)).astype(np.uint8), window.col_off,
                           window.row_off)
        footprints = refresh_average_overviews(dataset, window)
        dataset = None
        after = _pyramid(patched)
        assert len(footprints) == len(after) == len(before) >= 2
        for level, (got, old, want, footprint) in enumerate(zip(after, before,
                                                                _rebuilt(patched, tmp_path / "r.tif"), footprints,
                                                                strict=True)):
            assert np.array_equal(got, want), (window, level)  # what GDAL's rebuild writes, rounding and all
            outside = np.ones(got.shape[1:], bool)
            outside[footprint.toslices()] = False
            assert np.array_equal(got[:, outside], old[:, outside])  # untouched outside the footprint
            assert footprint.width <= window.width // 2 ** (level + 1) + 3  # (the footprint: the window's, 1 px slack)
    if width % 2 == 0 and height % 2 == 0:  # (even sides: level 1 is the plain mean of each 2 x 2 block's valid px)
        full = read_tif(patched).astype(int).reshape(3, height // 2, 2, width // 2, 2)
        valid = (full != nodata).sum(axis=(2, 4))
        total = np.where(full != nodata, full, 0).sum(axis=(2, 4))
        mean = np.where(valid > 0, (total + valid // 2) // np.maximum(valid, 1), nodata)
        assert np.array_equal(after[0], mean)


def test_an_lcgan_base_renders_overviews_are_refreshed_under_the_patch_only(
        model: Model, scene: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lcgan_qgis.core.rasters import provenance
    from lcgan_qgis.core.run import scenario_output

    tagged = tmp_path / "tagged.tif"  # the base render as `translate --seed 7` tags it (an lcgan render)
    shutil.copyfile(scene["base_rgb"], tagged)
    dataset = gdal.Open(str(tagged), gdal.GA_Update)
    dataset.SetMetadata({provenance.MODEL: model.path.name, "LCGAN_SEED": "7", provenance.GRID: provenance.GRID_RULE})
    dataset = None
    refreshed: list[Window] = []
    real = scenario_output.refresh_average_overviews
    monkeypatch.setattr(scenario_output, "refresh_average_overviews",
                        lambda dataset, window: refreshed.extend(real(dataset, window)) or refreshed)
    untagged = local(model, scene, tmp_path / "untagged.tif")  # (no provenance: the pyramid is rebuilt)
    assert not refreshed
    got = local(model, scene, tmp_path / "s.tif", base_render_path=str(tagged))
    assert len(refreshed) == 1 and np.array_equal(got, untagged)
    pyramid, base = _pyramid(tmp_path / "s.tif"), _pyramid(tagged)
    assert len(pyramid) == 1 and np.array_equal(pyramid[0], _pyramid(tmp_path / "untagged.tif")[0])
    assert np.array_equal(pyramid[0], _rebuilt(tmp_path / "s.tif", tmp_path / "r.tif")[0])
    outside = np.ones(pyramid[0].shape[1:], bool)
    outside[refreshed[0].toslices()] = False
    assert np.array_equal(pyramid[0][:, outside], base[0][:, outside]) and not np.array_equal(pyramid[0], base[0])
    monkeypatch.setattr(scenario_local, "CHUNK_PX", 48)  # (9 patches, each refreshed after the one before)
    local(model, scene, tmp_path / "cut.tif", base_render_path=str(tagged))
    assert len(refreshed) == 10
    assert np.array_equal(_pyramid(tmp_path / "cut.tif")[0], _rebuilt(tmp_path / "cut.tif", tmp_path / "r.tif")[0])


def test_a_base_render_without_overviews_still_works(model: Model, scene: dict[str, Path], tmp_path: Path) -> None:
    given = local(model, scene, tmp_path / "given.tif")
    bare = tmp_path / "bare.tif"
    shutil.copyfile(scene["base_rgb"], bare)
    dataset = gdal.Open(str(bare), gdal.GA_Update)
    dataset.BuildOverviews("NONE", [])  # (removes them)
    dataset = None
    assert gdal.Open(str(bare)).GetRasterBand(1).GetOverviewCount() == 0
    assert np.array_equal(local(model, scene, tmp_path / "s.tif", base_render_path=str(bare)), given)
    assert np.array_equal(_pyramid(tmp_path / "s.tif")[0], _pyramid(tmp_path / "given.tif")[0])


def test_the_change_masks_overviews_are_gdals_nearest(tmp_path: Path) -> None:
    from lcgan_qgis.core.rasters.raster import RasterInfo
    from lcgan_qgis.core.run.scenario_output import write_change_mask

    height, width = 1019, 1073  # (odd sides: GDAL's NEAREST does not take every second pixel)
    mask = np.zeros((height, width), bool)
    mask[256:411, 368:523] = True
    mask[900:905, 1000:1073] = True
    grown = scenario_local.distance_to_change(mask, 40) <= 40
    info = RasterInfo(str(tmp_path / "x.tif"), width, height, 1, "uint8", (None,),
                      (300000.0, 30.0, 0.0, 4e6, 0.0, -30.0), "")
    out = tmp_path / "mask.tif"
    write_change_mask(mask, grown, out, info, {})
    written = read_tif(out)[0]
    assert np.array_equal(written, np.where(mask, 1, np.where(grown, 2, 0)))
    pyramid = _pyramid(out)
    assert len(pyramid) == 3 and all(np.array_equal(a, b) for a, b in
                                     zip(pyramid, _rebuilt(out, tmp_path / "r.tif", categorical=True), strict=True))


def test_polygons_are_burnt_and_compared_only_in_their_window(model: Model, scene: dict[str, Path],
                                                              tmp_path: Path) -> None:
    from osgeo import ogr, osr

    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.change import PolygonChange, change_mask
    from tests.fixtures.rasters import GEOTRANSFORM, crs_wkt

    def layer_with(squares: list[tuple[int, int, int]], epsg: int, name: str) -> Path:
        path, srs = tmp_path / f"{name}.gpkg", osr.SpatialReference()
        srs.ImportFromWkt(crs_wkt(32612))
        target = osr.SpatialReference()
        target.ImportFromEPSG(epsg)
        target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
        layer = source.CreateLayer("change", target, ogr.wkbPolygon)
        for row, col, side in squares:
            x0, y0 = GEOTRANSFORM[0] + col * GEOTRANSFORM[1], GEOTRANSFORM[3] + row * GEOTRANSFORM[5]
            x1, y1 = x0 + side * GEOTRANSFORM[1], y0 + side * GEOTRANSFORM[5]
            ring = ogr.CreateGeometryFromWkt(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))")
            ring.AssignSpatialReference(srs)
            if epsg != 32612:
                ring.TransformTo(target)
            feature = ogr.Feature(layer.GetLayerDefn())
            feature.SetGeometry(ring)
            layer.CreateFeature(feature)
        source = None
        return path

    lc = read_tif(scene["base"])[0]
    expected = np.zeros(lc.shape, bool)
    for r, c, side in ((20, 30, 40), (150, 200, 60)):
        expected[r:r + side, c:c + side] = lc[r:r + side, c:c + side] != 255
    with GdalReader(scene["base"]) as base:
        scheme = model.contract.scheme
        with PolygonChange(base, str(layer_with([(20, 30, 40), (150, 200, 60)], 32612, "same")), 22, None, (),
                           scheme) as burnt, GdalReader(burnt.path) as changed:
            assert burnt.window == Window(29, 19, 232, 192)  # (both squares, 1 px of slack)
            mask = change_mask(base, changed, scheme, within=burnt.window)
            assert np.array_equal(mask, change_mask(base, changed, scheme))  # (nothing changed outside it)
            assert np.array_equal(mask, expected & (lc != 22))
            assert np.array_equal(read_tif(burnt.path)[0], np.where(expected, 22, lc))
        with PolygonChange(base, str(layer_with([(150, 200, 60)], 4326, "degrees")), 22, None, (),
                           scheme) as burnt:  # (another CRS: the whole raster, burnt as before)
            assert burnt.window == Window(0, 0, lc.shape[1], lc.shape[0])
            assert np.array_equal(read_tif(burnt.path)[0][151:209, 201:259], np.where(
                lc[151:209, 201:259] == 255, 255, 22))


def _one_crop_departure(model: Model, tmp_path: Path) -> np.ndarray:
    """|local - full render of the changed map| (DN) on the pixels within 16 px of an edit at the bottom right of a
    203 x 237 map (neither side a multiple of 4: the last windows start off phase and every window reads a lead)."""
    from tests.fixtures.rasters import write_tif

    tmp_path.mkdir()
    lc = test_scenario.landcover(203, 237, seed=11)
    changed = lc.copy()
    changed[150:180, 190:225] = 22
    base, moved = write_tif(tmp_path / "b.tif", lc, nodata=255), write_tif(tmp_path / "c.tif", changed, nodata=255)
    full = test_scenario.render(model, moved, tmp_path / "full.tif")
    test_scenario.render(model, base, tmp_path / "b_rgb.tif")
    run_scenario(ScenarioRequest(str(tmp_path / "s.tif"), str(base), changed_path=str(moved),
                                 base_render_path=str(tmp_path / "b_rgb.tif"), settings=SETTINGS), model=model)
    got = read_tif(tmp_path / "s.tif")
    inner = brute_distance(read_tif(tmp_path / "s_change.tif")[0] == 1) <= 16
    return np.abs(got[:, inner].astype(int) - full[:, inner])


def test_one_crop_paints_the_texture_of_phase_aligned_windows(model: Model, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from lcgan_qgis.core.run.tiling import AxisTiling, fit_window, make_tiling

    tiling = make_tiling(203, 237, fit_window(203, 160, 64, 4), fit_window(237, 160, 64, 4), 64, 4)
    assert tiling.rows.lead == tiling.cols.lead == 4  # (the case under test)
    aligned = _one_crop_departure(model, tmp_path / "aligned")
    assert aligned.max() <= 5 and aligned.mean() < 0.35
    monkeypatch.setattr(AxisTiling, "phase", lambda self, i: 0)  # windows read from their own (off-phase) starts
    unaligned = _one_crop_departure(model, tmp_path / "unaligned")
    assert unaligned.mean() > 5 * max(aligned.mean(), 0.2)  # other texture: 14.5 DN (max 170) against 0.001 (max 1)
