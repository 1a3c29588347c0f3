"""Scenarios (lcgan_qgis/core/run/scenario.py) with the bundled land cover -> RGB model on small rasters, exact mode:
outside the margin the base render bit for bit, inside it the full render of the changed map, only the windows
touching the margin run, the polygons path; both modes: the errors, the area, atomic outputs (the local mode:
tests/core/test_scenario_local.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from lcgan_qgis.core.errors import InputRasterError, OptionError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import Model, load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.raster import RasterInfo
from lcgan_qgis.core.resources import bundled_model_path
from lcgan_qgis.core.run.change import area_hectares, dilate
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.receptive_field import receptive_field_px
from lcgan_qgis.core.run.scenario import ScenarioRequest, run_scenario
from lcgan_qgis.core.run.settings import Rendering, RunSettings, Windowing
from tests.fixtures.rasters import GEOTRANSFORM, crs_wkt, read_tif, write_tif

CODES = np.array([11, 21, 22, 31, 41, 42, 52, 71, 81], np.uint8)
SETTINGS = RunSettings(windowing=Windowing(window_px=160), rendering=Rendering(seed=7))


@pytest.fixture(scope="module")
def model() -> Model:
    path = bundled_model_path(Direction.LANDCOVER_TO_RGB)
    if not path.is_file():
        pytest.skip(f"the bundled model is not installed ({path})")
    return load_model(path, "cpu", threads=1, precision="fp32", backend="onnxruntime")


def landcover(height: int, width: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lc = CODES[rng.integers(0, len(CODES), (height // 8 + 1, width // 8 + 1))].repeat(8, 0).repeat(8, 1)
    lc = lc[:height, :width].copy()
    lc[:6, :6] = 255
    return lc


def render(model: Model, lc_path: Path, out: Path, settings: RunSettings = SETTINGS) -> np.ndarray:
    with GdalReader(lc_path) as reader:
        translate(model, reader, out, TranslateOptions(settings=settings))
    return read_tif(out)


@pytest.fixture(scope="module")
def scene(model: Model, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 288 x 320 map, its change (a 40 px square turning to 22) and both full renders with seed 7."""
    folder = tmp_path_factory.mktemp("scenario")
    lc = landcover(288, 320)
    changed = lc.copy()
    changed[100:140, 200:240] = 22
    paths = {"base": write_tif(folder / "base.tif", lc, nodata=255),
             "changed": write_tif(folder / "changed.tif", changed, nodata=255)}
    render(model, paths["base"], folder / "base_rgb.tif")
    render(model, paths["changed"], folder / "changed_rgb.tif")
    return {**paths, "base_rgb": folder / "base_rgb.tif", "changed_rgb": folder / "changed_rgb.tif",
            "folder": folder}


def test_outside_the_margin_is_the_base_render_and_inside_the_full_render_of_the_change(
        model: Model, scene: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scenario.tif"
    result = run_scenario(ScenarioRequest(str(out), str(scene["base"]), changed_path=str(scene["changed"]),
                                          base_render_path=str(scene["base_rgb"]), settings=SETTINGS,
                                          mode="exact"), model=model)
    got, base, full = read_tif(out), read_tif(scene["base_rgb"]), read_tif(scene["changed_rgb"])
    mask = read_tif(tmp_path / "scenario_change.tif")[0]
    assert result.margin_px == 88 and not result.margin_capped
    assert np.array_equal(got[:, mask == 0], base[:, mask == 0])  # copied, bit for bit
    assert (mask == 0).sum() > 0.4 * mask.size
    assert np.array_equal(got, full)  # the ring meets the copy without a seam: the changed map's own render
    assert not np.array_equal(got[:, mask == 1], base[:, mask == 1])
    assert result.changed_px == int((mask == 1).sum()) == 1600 - int((read_tif(scene["base"])[0][100:140, 200:240]
                                                                      == 22).sum())
    assert result.changed_ha == pytest.approx(result.changed_px * 0.09)  # 30 m pixels
    tags = gdal.Open(str(out)).GetMetadata()
    assert tags["LCGAN_SCENARIO_BASE"] == "base.tif" and tags["LCGAN_SCENARIO_CHANGE"] == "changed.tif"
    assert tags["LCGAN_MODEL"] == "landcover_to_rgb.onnx" and tags["LCGAN_SEED"] == "7"
    assert tags["LCGAN_SCENARIO_MODE"] == "exact" and tags["LCGAN_SCENARIO_MARGIN_PX"] == "88"
    assert not list(tmp_path.glob(".*"))  # no partial files, no scratch folder


def test_only_the_windows_touching_the_margin_run(model: Model, tmp_path: Path) -> None:
    lc = landcover(160, 1024, seed=3)
    changed = lc.copy()
    changed[60:90, 20:50] = 22
    base, moved = write_tif(tmp_path / "b.tif", lc, nodata=255), write_tif(tmp_path / "c.tif", changed, nodata=255)
    full = render(model, moved, tmp_path / "full.tif")
    calls = []

    class Counting:
        def __init__(self, inner: Model) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def run(self, batch: np.ndarray) -> np.ndarray:
            calls.append(batch.shape)
            return self.inner.run(batch)

    receptive_field_px(model)  # (measured once, cached: its probes are not counted below)
    result = run_scenario(ScenarioRequest(str(tmp_path / "s.tif"), str(base), changed_path=str(moved),
                                          settings=SETTINGS, base_render_path=None, mode="exact"),
                          model=Counting(model))
    whole = result.windows_total
    assert result.base_rendered and whole == 10  # windows of 160 px every 96 px
    assert result.runs == 2  # the change at x 20..49 plus 88 px ends at x 137: windows at x 0 and 96
    assert len(calls) == whole + 2  # the base render once, whole, then the two windows
    assert np.array_equal(read_tif(tmp_path / "s.tif"), full)
    assert np.array_equal(read_tif(tmp_path / "s_base.tif"), render(model, base, tmp_path / "b_rgb.tif"))


def test_polygons_turn_only_the_chosen_classes(model: Model, scene: dict[str, Path], tmp_path: Path) -> None:
    x0, y0 = GEOTRANSFORM[0], GEOTRANSFORM[3]
    square = [(x0 + 30 * c, y0 - 30 * r) for c, r in ((150, 50), (230, 50), (230, 130), (150, 130), (150, 50))]
    polygons = tmp_path / "change.geojson"
    feature = {"type": "Feature", "properties": {"to": 22}, "geometry": {"type": "Polygon", "coordinates": [square]}}
    polygons.write_text(json.dumps({"type": "FeatureCollection", "features": [feature], "crs": {
        "type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32612"}}}))
    out = tmp_path / "p.tif"
    result = run_scenario(ScenarioRequest(str(out), str(scene["base"]), polygons_path=str(polygons), to_class=22,
                                          from_classes=(41, 42), base_render_path=str(scene["base_rgb"]),
                                          settings=SETTINGS, mode="exact"), model=model)
    lc = read_tif(scene["base"])[0]
    expected = np.zeros(lc.shape, bool)
    expected[50:130, 150:230] = np.isin(lc[50:130, 150:230], (41, 42))
    assert np.array_equal(read_tif(tmp_path / "p_change.tif")[0] == 1, expected)
    burnt = np.where(expected, 22, lc).astype(np.uint8)
    full = render(model, write_tif(tmp_path / "burnt.tif", burnt, nodata=255), tmp_path / "burnt_rgb.tif")
    assert np.array_equal(read_tif(out), full)
    assert "change.geojson -> class 22 (only 41, 42)" in gdal.Open(str(out)).GetMetadata()["LCGAN_SCENARIO_CHANGE"]
    by_field = run_scenario(ScenarioRequest(str(tmp_path / "f.tif"), str(scene["base"]), polygons_path=str(polygons),
                                            class_field="to", from_classes=(41, 42),
                                            base_render_path=str(scene["base_rgb"]), settings=SETTINGS,
                                            mode="exact"), model=model)
    assert by_field.changed_px == result.changed_px and np.array_equal(read_tif(tmp_path / "f.tif"), full)


def _request(scene: dict[str, Path], tmp_path: Path, **fields: object) -> ScenarioRequest:
    values = {"output_path": str(tmp_path / "e.tif"), "base_path": str(scene["base"]),
              "base_render_path": str(scene["base_rgb"]), "settings": SETTINGS, **fields}
    if "polygons_path" not in fields and "changed_path" not in fields:
        values["changed_path"] = str(scene["changed"])
    return ScenarioRequest(**values)  # type: ignore[arg-type]


def test_clear_errors(model: Model, scene: dict[str, Path], tmp_path: Path) -> None:
    lc = read_tif(scene["base"])[0]
    shifted = write_tif(tmp_path / "shifted.tif", lc, nodata=255,
                        geotransform=(GEOTRANSFORM[0] + 30, *GEOTRANSFORM[1:]))
    unseen = lc.copy()
    unseen[10:20, 10:20] = 99
    cases = [
        (dict(changed_path=str(shifted)), InputRasterError, "one grid"),
        (dict(changed_path=str(write_tif(tmp_path / "u.tif", unseen, nodata=255))), InputRasterError,
         r"never saw: 99 \(100 px\)"),
        (dict(changed_path=str(scene["base"])), OptionError, "no change to render"),
        (dict(base_render_path=str(scene["base"])), InputRasterError, "3-band 8-bit"),
        (dict(changed_path=None), OptionError, "not both or neither"),
        (dict(polygons_path=str(tmp_path / "far.geojson"), to_class=22), InputRasterError, "cover no pixel"),
        (dict(polygons_path=str(tmp_path / "far.geojson"), to_class=24), InputRasterError,
         "24 is not a class the model knows"),
        (dict(polygons_path=str(tmp_path / "far.geojson")), OptionError, "need their new class"),
    ]
    (tmp_path / "far.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
            [10, 10], [11, 10], [11, 11], [10, 11], [10, 10]]]}}]}))  # WGS 84, far from UTM 12N's raster
    for fields, error, text in cases:
        with pytest.raises(error, match=text) as caught:
            run_scenario(_request(scene, tmp_path, **fields), model=model)
        assert "\n" not in str(caught.value)
    assert not list(tmp_path.glob("e*.tif")) and not list(tmp_path.glob(".*"))


def test_a_cancelled_scenario_writes_nothing(model: Model, scene: dict[str, Path], tmp_path: Path) -> None:
    polls = []

    def cancel_later() -> bool:
        polls.append(1)
        return len(polls) > 4

    result = run_scenario(_request(scene, tmp_path, base_render_path=None), model=model, is_canceled=cancel_later)
    assert result.canceled and result.output_path is None
    assert not list(tmp_path.iterdir())


def test_dilation_is_the_square_margin() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((40, 50)) > 0.985
    for radius in (0, 1, 5, 13):
        rows, cols = np.nonzero(mask)
        expected = np.zeros_like(mask)
        for r, c in zip(rows, cols, strict=False):
            expected[max(0, r - radius):r + radius + 1, max(0, c - radius):c + radius + 1] = True
        assert np.array_equal(dilate(mask, radius), expected)


def test_hectares_in_degrees_follow_the_ellipsoid() -> None:
    info = RasterInfo("geo", 100, 100, 1, "uint8", (None,), (10.0, 0.001, 0.0, 60.5, 0.0, -0.001), crs_wkt(4326))
    mask = np.zeros((100, 100), bool)
    mask[50, :] = True
    hectares = area_hectares(mask, info)
    # 0.001 degree at latitude 60.45: about 55.2 m east-west and 111.4 m north-south (WGS 84)
    assert hectares == pytest.approx(100 * 55.17 * 111.4 / 1e4, rel=0.01)
    utm = RasterInfo("utm", 100, 100, 1, "uint8", (None,), GEOTRANSFORM, crs_wkt())
    assert area_hectares(mask, utm) == pytest.approx(100 * 0.09)


def test_the_receptive_field_is_measured_and_capped(model: Model) -> None:
    assert receptive_field_px(model) == (88, False)  # docs/scenarios.md: 86 px measured, rounded up to 4
    assert receptive_field_px(model, cap_px=32) == (32, True)


def test_command_line(scene: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lcgan_qgis.cli import main

    common = ["--model", str(bundled_model_path(Direction.LANDCOVER_TO_RGB)), "--base", str(scene["base"]),
              "--changed", str(scene["changed"]), "--base-render", str(scene["base_rgb"]), "--window", "160",
              "--threads", "1", "--precision", "fp32", "--backend", "onnxruntime", "--mode", "exact"]
    out = tmp_path / "after.tif"
    assert main(["scenario", *common, "--output", str(out), "--seed", "7", "--name", "dam"]) == 0
    assert np.array_equal(read_tif(out), read_tif(scene["changed_rgb"]))
    assert gdal.Open(str(out)).GetMetadata()["LCGAN_SCENARIO"] == "dam"
    assert "margin 88 px" in capsys.readouterr().out
    tagged = tmp_path / "tagged.tif"
    gdal.Translate(str(tagged), str(scene["base_rgb"]))
    dataset = gdal.Open(str(tagged), gdal.GA_Update)
    dataset.SetMetadata({"LCGAN_MODEL": "landcover_to_rgb.onnx", "LCGAN_SEED": "3"})
    dataset = None
    common[common.index(str(scene["base_rgb"]))] = str(tagged)
    assert main(["scenario", *common, "--output", str(tmp_path / "x.tif"), "--seed", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "rendered with seed 3, this scenario with 7" in err and "\n" not in err
    assert not (tmp_path / "x.tif").exists()
    dataset = gdal.Open(str(tagged), gdal.GA_Update)  # the right seed, made before the windows were phase-aligned
    dataset.SetMetadata({"LCGAN_MODEL": "landcover_to_rgb.onnx", "LCGAN_SEED": "7", "LCGAN_SOFTWARE": "lcgan 0.1.0"})
    dataset = None
    assert main(["scenario", *common, "--output", str(tmp_path / "x.tif"), "--seed", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert "made by lcgan 0.1.0 before its windows were phase-aligned" in err and "\n" not in err
    assert not (tmp_path / "x.tif").exists()


def terrain_full_render(scene: dict[str, Path], tmp_path: Path) -> tuple[Model, RunSettings]:
    """The bundled terrain-aware model, settings with a synthetic DEM (``tmp_path/dem.tif``), and the full render of
    the changed map with them (``tmp_path/full.tif``); skips where that model is not installed."""
    from lcgan_qgis.core.resources import bundled_terrain_model_path
    from lcgan_qgis.core.run.plan import elevation_on
    from lcgan_qgis.core.run.settings import Terrain

    path = bundled_terrain_model_path()
    if not path.is_file():
        pytest.skip(f"the bundled terrain-aware model is not installed ({path})")
    rows, cols = np.mgrid[0:288, 0:320]
    dem = write_tif(tmp_path / "dem.tif", (1500 + 300 * np.sin(rows / 40.0) * np.cos(cols / 55.0)).astype(np.int16))
    settings = RunSettings(windowing=Windowing(window_px=160), rendering=Rendering(seed=7),
                           terrain=Terrain(elevation_path=str(dem)))
    terrain = load_model(path, "cpu", threads=1, precision="fp32", backend="onnxruntime")
    with GdalReader(scene["changed"]) as reader, elevation_on(str(dem), reader.info) as elevation:
        translate(terrain, reader, tmp_path / "full.tif", TranslateOptions(settings=settings), elevation=elevation)
    return terrain, settings


def test_terrain_aware_scenario_reads_the_dem_like_a_full_render(scene: dict[str, Path], tmp_path: Path) -> None:
    terrain, settings = terrain_full_render(scene, tmp_path)
    result = run_scenario(ScenarioRequest(str(tmp_path / "s.tif"), str(scene["base"]),
                                          changed_path=str(scene["changed"]), settings=settings, mode="exact"),
                          model=terrain)
    assert result.base_rendered and result.margin_px >= 88
    assert np.array_equal(read_tif(tmp_path / "s.tif"), read_tif(tmp_path / "full.tif"))
    assert gdal.Open(str(tmp_path / "s.tif")).GetMetadata()["LCGAN_ELEVATION"] == "dem.tif"


def test_the_seam_measure_along_a_mask_edge_sees_a_step_and_nothing_else() -> None:
    from tools.bench.scenario import forest_square, margin_seam_ratio

    rng = np.random.default_rng(2)
    img = rng.normal(128, 10, (3, 120, 140))
    inside = np.zeros((120, 140), bool)
    inside[30:90, 40:100] = True
    assert margin_seam_ratio(img, inside) == pytest.approx(1.0, abs=0.1)
    stepped = img + 25 * inside  # a pasted patch 25 DN brighter: a seam along its edge
    assert margin_seam_ratio(stepped, inside) > 1.8
    codes = np.full((100, 100), 52, np.uint8)
    codes[60:80, 10:30] = 42
    assert forest_square(codes, None, 0.04) == (60, 10, 20)  # 400 forest px = 4 % of the map
