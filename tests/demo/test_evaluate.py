"""``training.evaluation.report``: the numbers it reports, checked on small rasters with tiny per-pixel models."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from osgeo import gdal, osr

from lcgan_qgis.core.errors import ModelFileError
from lcgan_qgis.core.model.contract import Direction
from tests.fixtures.onnx_factory import default_contract, pointwise_model, save
from training.evaluation.judge import JudgeConfig
from training.evaluation.plots import codes_to_rgb, crop_corners, crop_layout
from training.evaluation.report import (
    IMAGE_FILE,
    LANDCOVER_FILE,
    RealismOptions,
    baseline_scores,
    compare_colours,
    evaluate,
    find_models,
    score_landcover,
    summary_lines,
)
from training.evaluation.two_sample import TwoSampleConfig
from training.evaluation.windows import compare_windows, runnable_sizes

CONTRACT = default_contract(Direction.RGB_TO_LANDCOVER)
SCHEME = CONTRACT.scheme
RADIOMETRY = CONTRACT.radiometry
# Four classes with well separated colours in the model's [-1, 1] space (the rest of the scheme is absent).
CENTROIDS = {42: (-0.6, 0.2, -0.5), 52: (0.6, 0.3, -0.2), 31: (0.3, 0.1, 0.6), 11: (-0.7, -0.5, 0.4)}


def index(code: int) -> int:
    return SCHEME.codes.index(code)


def synthetic_pair(rows: int = 72, cols: int = 88, seed: int = 0,
                   nodata_share: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Land-cover codes (42 the majority, ``nodata_share`` of nodata pixels) and the matching image in DN."""
    rng = np.random.default_rng(seed)
    codes = np.full((rows, cols), 42, np.uint8)
    codes[:, : cols // 4] = 52
    codes[rows // 2 :, cols // 2 :] = 31
    codes[5:15, 60:75] = 11
    codes[rng.random((rows, cols)) < nodata_share] = SCHEME.nodata_code
    image = np.zeros((3, rows, cols), np.uint16)
    for code, centre in CENTROIDS.items():
        dn = RADIOMETRY.denormalize(np.array(centre, np.float32).reshape(3, 1))[:, 0]
        image[:, codes == code] = np.rint(dn).astype(np.uint16)[:, None]
    return codes, image


def write(path: Path, pixels: np.ndarray, nodata: int) -> Path:
    pixels = pixels[None] if pixels.ndim == 2 else pixels
    dtype = gdal.GDT_Byte if pixels.dtype == np.uint8 else gdal.GDT_UInt16
    ds = gdal.GetDriverByName("GTiff").Create(str(path), pixels.shape[2], pixels.shape[1], pixels.shape[0], dtype)
    ds.SetGeoTransform((300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32612)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(pixels.shape[0]):
        ds.GetRasterBand(b + 1).SetNoDataValue(nodata)
        ds.GetRasterBand(b + 1).WriteArray(pixels[b])
    ds = None
    return path


def perfect_models(folder: Path) -> Path:
    """LC->RGB paints each class its centroid colour; RGB->LC is the nearest-centroid classifier (linear + softmax)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(SCHEME)
    w_rgb = np.zeros((3, n), np.float32)
    w_lc = np.zeros((n, 3), np.float32)
    b_lc = np.full(n, -1000.0, np.float32)
    sharpness = 40.0
    for code, centre in CENTROIDS.items():
        c = np.array(centre, np.float32)
        w_rgb[:, index(code)] = np.arctanh(c)
        w_lc[index(code)] = 2.0 * sharpness * c
        b_lc[index(code)] = -sharpness * float(c @ c)
    lc2rgb = default_contract(Direction.LANDCOVER_TO_RGB)
    save(pointwise_model(lc2rgb, weight=w_rgb), folder / "landcover_to_rgb.onnx")
    save(pointwise_model(CONTRACT, weight=w_lc, bias=b_lc), folder / "rgb_to_landcover.onnx")
    return folder


def constant_classifier(folder: Path, code: int) -> Path:
    """Replace ``folder``'s land-cover model by one that predicts ``code`` everywhere; returns ``folder``."""
    bias = np.full(len(SCHEME), -10.0, np.float32)
    bias[index(code)] = 10.0
    save(pointwise_model(CONTRACT, weight=np.zeros((len(SCHEME), 3)), bias=bias), folder / "rgb_to_landcover.onnx")
    return folder


@pytest.fixture()
def paired_data(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    codes, image = synthetic_pair()
    data = tmp_path / "data"
    data.mkdir()
    write(data / LANDCOVER_FILE, codes, SCHEME.nodata_code)
    write(data / IMAGE_FILE, image, 0)
    return data, codes, image


def test_scores_of_a_known_prediction() -> None:
    true = np.array([[0, 0, 0, 1], [1, 2, 2, 2]])
    pred = np.array([[0, 0, 1, 1], [1, 2, 2, 0]])
    valid = np.ones_like(true, dtype=bool)
    valid[1, 3] = False  # the wrong prediction of class 2 is masked out
    scores = score_landcover(true, pred, valid, SCHEME)
    assert scores["pixels"] == 7
    assert scores["accuracy"] == pytest.approx(6 / 7)
    iou = {k: v["iou"] for k, v in scores["iou_per_class"].items()}
    code = [str(c) for c in SCHEME.codes]
    assert iou[code[0]] == pytest.approx(2 / 3) and iou[code[1]] == pytest.approx(2 / 3) and iou[code[2]] == 1.0
    assert iou[code[5]] is None  # absent from truth and prediction
    assert scores["miou"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert np.array(scores["confusion_matrix"]).sum() == 7


def test_majority_baseline() -> None:
    true = np.array([3] * 6 + [7] * 3 + [0])
    scores = score_landcover(true, true, np.ones_like(true, dtype=bool), SCHEME)
    base = baseline_scores(scores, SCHEME)
    assert base["class"] == SCHEME.codes[3]
    assert base["accuracy"] == pytest.approx(0.6)
    assert base["miou"] == pytest.approx(0.6 / 3)  # IoU 0.6 for the majority, 0 for the two other present classes


def test_colour_statistics_per_class() -> None:
    idx = np.array([[0, 0, 1, 1]])
    real = np.array([[[10.0, 20.0, 100.0, 100.0]]])
    generated = np.array([[[15.0, 15.0, 90.0, 110.0]]])
    stats = compare_colours(real, generated, idx, np.ones_like(idx, dtype=bool), SCHEME, ["grey"])
    first, second = stats["per_class"][str(SCHEME.codes[0])], stats["per_class"][str(SCHEME.codes[1])]
    assert first["pixels"] == 2 and first["real_mean"] == [15.0] and first["real_std"] == [5.0]
    assert first["generated_mean"] == [15.0] and first["generated_std"] == [0.0]
    assert second["generated_std"] == [10.0]
    assert stats["class_mean_abs_error"] == [0.0]
    assert stats["baseline_global_mean_abs_error"] == [pytest.approx(42.5)]  # global mean 57.5 vs 15 and 100
    assert stats["per_class"][str(SCHEME.codes[2])]["real_mean"] == [None]


def test_perfect_models_score_one_and_beat_the_baseline(tmp_path: Path, paired_data: tuple) -> None:
    data, codes, _ = paired_data
    models = perfect_models(tmp_path / "models")
    out = tmp_path / "evaluation"
    report = evaluate(models, data, out, device="cpu")
    rgb2lc = report["rgb_to_landcover"]
    assert rgb2lc["accuracy"] == 1.0 and rgb2lc["miou"] == 1.0
    assert rgb2lc["pixels"] == int((codes != SCHEME.nodata_code).sum())
    share_42 = (codes == 42).sum() / (codes != SCHEME.nodata_code).sum()
    assert rgb2lc["baseline_majority"]["class"] == 42
    assert rgb2lc["baseline_majority"]["accuracy"] == pytest.approx(share_42)
    agreement = report["landcover_to_rgb"]["landcover_agreement"]
    assert agreement["accuracy"] == 1.0
    colours = report["landcover_to_rgb"]["colour_statistics"]
    step = [(h - lo) / 255.0 for lo, h in zip(RADIOMETRY.low, RADIOMETRY.high, strict=True)]
    for band, error in enumerate(colours["class_mean_abs_error"]):
        assert error <= step[band]  # only the uint8 quantisation of the engine's RGB output remains
        assert colours["baseline_global_mean_abs_error"][band] > 5 * step[band]
    for code in CENTROIDS:
        assert colours["per_class"][str(code)]["generated_std"][0] < step[0]
    saved = json.loads((out / "evaluation.json").read_text())
    assert saved["rgb_to_landcover"]["accuracy"] == 1.0 and "TRAINING-AREA" in saved["label"]
    for name in ("confusion_rgb_to_landcover.png", "confusion_agreement.png", "colour_statistics.png",
                 "overview.png"):
        assert (out / name).stat().st_size > 10_000
    assert "accuracy 1.000" in "\n".join(summary_lines(report))


def test_a_constant_model_scores_the_majority_baseline(tmp_path: Path, paired_data: tuple) -> None:
    data, _, _ = paired_data
    models = constant_classifier(perfect_models(tmp_path / "models"), 42)
    report = evaluate(models, data, tmp_path / "out", device="cpu")
    rgb2lc = report["rgb_to_landcover"]
    assert rgb2lc["accuracy"] == pytest.approx(rgb2lc["baseline_majority"]["accuracy"])
    assert rgb2lc["miou"] == pytest.approx(rgb2lc["baseline_majority"]["miou"])
    assert rgb2lc["accuracy"] < 1.0


def test_missing_models_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="rgb_to_landcover.onnx"):
        find_models(tmp_path)


def test_cli_prints_the_summary_and_fails_cleanly(tmp_path: Path, paired_data: tuple,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from training.__main__ import main

    data, _, _ = paired_data
    models = perfect_models(tmp_path / "models")
    out = tmp_path / "out"
    assert main(["evaluate", "--models", str(models), "--data", str(data), "--out", str(out), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "TRAINING-AREA" in printed and "accuracy 1.000" in printed and "evaluation.json" in printed
    assert main(["evaluate", "--models", str(models), "--data", str(tmp_path / "absent"), "--out", str(out)]) == 2


def _south_half(path: Path, rows: int = 72, cols: int = 88, north: bool = False) -> Path:
    """The southern (or northern) half of the synthetic pair's grid (origin 300000, 4150000; 30 m pixels) as a
    GeoJSON polygon."""
    x0, x1 = 300000.0, 300000.0 + 30 * cols
    y_top, y_mid = 4150000.0, 4150000.0 - 30 * rows / 2
    y_bottom = y_mid if north else y_top - 30 * rows
    y_mid = y_top if north else y_mid
    polygon = [[x0, y_bottom], [x1, y_bottom], [x1, y_mid], [x0, y_mid], [x0, y_bottom]]
    path.write_text(json.dumps({
        "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32612"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [polygon]}}],
    }))
    return path


def test_heldout_split_counts_each_valid_pixel_once(tmp_path: Path, paired_data: tuple) -> None:
    data, codes, _ = paired_data
    models = constant_classifier(perfect_models(tmp_path / "models"), 52)  # right only where the truth is 52
    report = evaluate(models, data, tmp_path / "out", device="cpu", heldout=_south_half(tmp_path / "south.geojson"),
                      realism=False)
    assert "areas" not in report and "window_dependence" not in report
    split = report["split"]["rgb_to_landcover"]
    valid = codes != SCHEME.nodata_code
    south = np.zeros_like(valid)
    south[codes.shape[0] // 2 :] = True
    assert split["heldout"]["pixels"] == int((valid & south).sum())
    assert split["training_area"]["pixels"] == int((valid & ~south).sum())
    assert split["heldout"]["pixels"] + split["training_area"]["pixels"] == report["rgb_to_landcover"]["pixels"]
    share_52_south = ((codes == 52) & south).sum() / (valid & south).sum()
    assert split["heldout"]["accuracy"] == pytest.approx(share_52_south)
    assert report["split"]["landcover_agreement"]["heldout"]["pixels"] > 0


TINY_REALISM = RealismOptions(
    judge=JudgeConfig(widths=(8, 16), crop_px=32, batch_size=2, steps=40, lr=5e-3, warmup_steps=5),
    two_sample=TwoSampleConfig(patch_px=16, batch_size=16, max_steps=60, eval_every_steps=20, patience_evals=2,
                               val_patches=16, seeds=(0,)),
    window_sizes_px=(32, 64, 512), checkerboard_patch_px=16, feature_cell_px=16,
)


def test_per_area_realism_supervised_reference_and_window_dependence(tmp_path: Path) -> None:
    rows, cols = 128, 160
    codes, image = synthetic_pair(rows, cols, seed=1, nodata_share=0.0)
    codes[0, :3] = SCHEME.nodata_code  # a little nodata, in the training area
    data = tmp_path / "data"
    data.mkdir()
    write(data / LANDCOVER_FILE, codes, SCHEME.nodata_code)
    write(data / IMAGE_FILE, image, 0)
    models = perfect_models(tmp_path / "models")
    options = replace(TINY_REALISM, train_areas=_south_half(tmp_path / "north.geojson", rows, cols, north=True),
                      judge_cache_dir=tmp_path / "judges")
    out = tmp_path / "out"
    report = evaluate(models, data, out, device="cpu", heldout=_south_half(tmp_path / "south.geojson", rows, cols),
                      realism=options)
    assert set(report["areas"]) == {"heldout", "training_area"}
    for area, section in report["areas"].items():
        lc, rgb = section["rgb_to_landcover"], section["landcover_to_rgb"]
        assert lc["accuracy"] == 1.0 and lc["pixels"] == report["split"]["rgb_to_landcover"][area]["pixels"]
        reference = lc["supervised_reference"]
        assert reference["pixels"] == lc["pixels"] and 0.0 <= reference["accuracy"] <= 1.0
        assert reference["baseline_majority"] == lc["baseline_majority"]
        assert rgb["judge_scores"]["real"]["accuracy"] == reference["accuracy"]
        fd = rgb["judge_frechet"]
        # The perfect LC -> RGB model reproduces the imagery up to 8-bit quantisation: far closer than a blur.
        assert 0.0 <= fd["generated_vs_real"] < 0.5 * fd["blurred_vs_real"]
        assert fd["samples_per_set"] >= 8 and fd["real_vs_real_floor"] >= 0.0
        index = rgb["checkerboard"]["index"]  # None: the flat synthetic colours hold no period-2 power here
        assert index is None or index == pytest.approx(1.0, abs=0.2)
        assert 0.0 <= rgb["two_sample"]["accuracy"] <= 1.0
        assert rgb["colour_statistics"]["per_class"]["42"]["pixels"] > 0 and "local_std_ratio" in rgb["texture"]
        assert rgb["landcover_agreement"]["accuracy"] == 1.0
        window = report["window_dependence"]
        # A per-pixel model cannot depend on the window: nothing changes between window sizes.
        assert set(window["rgb_to_landcover"][area]["changed_share"].values()) == {0.0}
        assert set(window["landcover_to_rgb"][area]["psnr_db"].values()) == {None}  # identical imagery
        assert window["rgb_to_landcover"][area]["accuracy"] == {"32": 1.0, "64": 1.0, "512": 1.0}
    assert report["areas"]["training_area"]["landcover_to_rgb"]["checkerboard"]["index"] == pytest.approx(1.0, abs=0.2)
    runs = report["areas"]["heldout"]["landcover_to_rgb"]["two_sample"]["runs"]
    assert runs["generated"]["runs"][0]["steps"] >= 20 and runs["blurred"]["runs"][0]["seed"] == 0
    assert report["window_dependence"]["windows_px"]["rgb_to_landcover"]["32"] == [32, 32]
    assert len(report["window_dependence"]["runs"]) == 4  # 32 and 64 px for both models; 512 = the default runs
    assert report["judge"]["steps"] == 40 and not report["judge"]["cache"]["reused"]
    picture = (matplotlib.image.imread(out / "crops_heldout.png")[..., :3] * 255).round().astype(np.uint8)
    south = np.zeros(codes.shape, bool)
    south[rows // 2:] = True
    side, corners = crop_corners(south & (codes != SCHEME.nodata_code), 256, 3)
    assert side == 53 and len(corners) == 3 and picture.shape[:2] == crop_layout(side, 3)[1::-1]
    for i, (r, c) in enumerate(corners):  # the land-cover panels hold the map pixel for pixel (no resampling)
        x, y = crop_layout(side, 3, row=i, col=0)[2:]
        assert np.array_equal(picture[y:y + side, x:x + side], codes_to_rgb(codes[r:r + side, c:c + side], SCHEME))
    fd = report["areas"]["heldout"]["landcover_to_rgb"]["judge_frechet"]["unmatched_vs_real_training"]
    assert set(fd) == {"real", "generated", "blurred"} and fd["generated"] < fd["blurred"]
    realism = report["realism"]  # issue 22's measures of the map-only generator, in the held-out area
    assert realism["frechet"]["samples_per_set"] == 19  # 16 px cells: 39 whole in the training area, half a sample
    assert realism["frechet"]["distances"]["map_only"] < realism["frechet"]["distances"]["blurred"]
    row = realism["headline"]["map_only"]
    assert row["seed_mean_abs_difference"] == [0.0, 0.0, 0.0] and row["seed_layout_agreement"] == 1.0  # no noise
    assert row["relief_ratio"] is None and "relief" not in realism["generators"]["map_only"]  # no DEM here
    lines = "\n".join(summary_lines(report))
    assert "supervised reference" in lines and "judge Frechet distance" in lines and "window dependence" in lines
    assert "texture Frechet" in lines
    again = evaluate(models, data, out, device="cpu", heldout=_south_half(tmp_path / "south.geojson", rows, cols),
                     realism=options)
    assert again["judge"]["cache"]["reused"]  # the judge is trained once per config and data
    control = again["areas"]["heldout"]["landcover_to_rgb"]["two_sample"]["runs"]["blurred"]
    assert control["cache"]["reused"] and not runs["blurred"]["cache"]["reused"]  # so is the blurred control
    assert control["runs"] == runs["blurred"]["runs"]
    assert again["areas"]["heldout"]["landcover_to_rgb"]["judge_frechet"] == \
        report["areas"]["heldout"]["landcover_to_rgb"]["judge_frechet"]


def test_cli_overlap_option_reaches_the_engine(tmp_path: Path, paired_data: tuple) -> None:
    from training.__main__ import main

    data, _, _ = paired_data
    models = perfect_models(tmp_path / "models")
    out = tmp_path / "out"
    assert main(["evaluate", "--models", str(models), "--data", str(data), "--out", str(out), "--device", "cpu",
                 "--overlap-px", "4", "--precision", "fp32"]) == 0
    saved = json.loads((out / "evaluation.json").read_text())
    assert {m["overlap_px"] for m in saved["models"].values()} == {4}
    assert {r["precision"] for r in saved["runs"]} == {"fp32"}


def test_window_comparison_counts_changed_pixels_and_psnr() -> None:
    codes = np.full((1, 10, 10), 42, np.uint8)
    changed = codes.copy()
    changed[0, :2, :5] = 52  # 10 of 100 pixels
    valid = np.ones((10, 10), bool)
    grey = np.full((3, 10, 10), 100, np.uint8)
    brighter = grey + 10  # MSE 100: PSNR 10 log10(255^2 / 100) = 28.13 dB
    truth, true_valid = SCHEME.codes_to_indices(codes[0])
    report = compare_windows({128: (codes, valid), 256: (changed, valid)}, {128: (grey, valid), 256: (brighter, valid)},
                             truth, true_valid, {"all": valid, "top": np.arange(10)[:, None] < np.ones((1, 10)) * 5},
                             SCHEME)
    assert report["rgb_to_landcover"]["all"]["changed_share"] == {"128_vs_256": 0.1}
    assert report["rgb_to_landcover"]["top"]["changed_share"] == {"128_vs_256": 0.2}
    assert report["rgb_to_landcover"]["all"]["accuracy"] == {"128": 1.0, "256": 0.9}
    assert report["landcover_to_rgb"]["all"]["psnr_db"] == {"128_vs_256": pytest.approx(28.13, abs=0.01)}


def test_terrain_aware_generator_is_compared_beside_the_map_only_one(tmp_path: Path) -> None:
    """With a terrain-aware generator beside the models and the DEM beside the data, evaluate runs it through the
    job with the DEM and reports the same realism measures for both generators, area by area, and the crops picture
    gains its column."""
    from tests.fixtures.onnx_factory import write_terrain_pointwise
    from training.evaluation.terrain import DEM_FILE, TERRAIN_MODEL_FILE

    rows, cols = 128, 160
    codes, image = synthetic_pair(rows, cols, seed=1, nodata_share=0.0)
    data = tmp_path / "data"
    data.mkdir()
    write(data / LANDCOVER_FILE, codes, SCHEME.nodata_code)
    write(data / IMAGE_FILE, image, 0)
    yy, xx = np.mgrid[0:rows, 0:cols]
    write(data / DEM_FILE, (1500 + 8 * xx + 3 * yy + 40 * np.sin(yy / 7.0)).astype(np.uint16), 0)
    models = perfect_models(tmp_path / "models")
    write_terrain_pointwise(models / TERRAIN_MODEL_FILE)
    options = replace(TINY_REALISM, train_areas=_south_half(tmp_path / "north.geojson", rows, cols, north=True),
                      judge_cache_dir=tmp_path / "judges")
    out = tmp_path / "out"
    report = evaluate(models, data, out, device="cpu", heldout=_south_half(tmp_path / "south.geojson", rows, cols),
                      realism=options)
    comparison = report["terrain_comparison"]
    assert comparison["model"] == TERRAIN_MODEL_FILE and comparison["elevation"] == DEM_FILE
    assert comparison["terrain"]["channels"]
    for area in ("heldout", "training_area"):
        pair = comparison["areas"][area]
        assert set(pair["map_only"]) == set(pair["terrain_aware"])
        # the map-only generator here is perfect; the terrain test model paints terrain, not the map's colours
        assert pair["map_only"]["judge_frechet.generated_vs_real"] == \
            report["areas"][area]["landcover_to_rgb"]["judge_frechet"]["generated_vs_real"]
        distances = [pair[k]["judge_frechet.generated_vs_real"] for k in ("map_only", "terrain_aware")]
        assert distances[1] > distances[0]
        assert "colour_statistics" in pair["terrain_aware_sections"]
    assert "map-only -> terrain-aware generator" in "\n".join(summary_lines(report))
    relief = report["realism"]["generators"]["terrain_aware"]["relief"]
    assert relief["real"]["correlation"] == report["realism"]["generators"]["map_only"]["relief"]["real"]["correlation"]
    assert set(report["realism"]["headline"]) == {"map_only", "terrain_aware"}
    picture = matplotlib.image.imread(out / "crops_heldout.png")
    side = crop_corners(np.ones((rows // 2, cols), bool), 256, 3)[0]
    assert picture.shape[1] == crop_layout(side, 3, columns=4)[0]  # map | map only | terrain-aware | real


def test_window_sizes_the_engine_cannot_run_at_the_overlap_are_skipped_and_named() -> None:
    from training.evaluation.summary import window_summary_lines

    sizes, skipped = runnable_sizes((128, 256, 512), 64)
    assert sizes == [256, 512] and skipped == {"128": "not above twice the 64 px overlap"}
    assert runnable_sizes((128, 256, 512), 16) == ([128, 256, 512], {})
    lines = window_summary_lines({"rgb_to_landcover": {}, "landcover_to_rgb": {}, "skipped_px": skipped})
    assert lines == ["window dependence: 128 px windows not run (not above twice the 64 px overlap)"]


def test_quick_realism_cli_on_a_models_folder_and_a_model_file(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``evaluate --quick``: issue 22's measures of the generators in a folder (or one file), the crops, the JSON."""
    from training.__main__ import main

    rows, cols = 192, 256
    codes, image = synthetic_pair(rows, cols, seed=2, nodata_share=0.0)
    codes[10:70, 100:200] = 11  # a lake, in the training area only
    image[:, 10:70, 100:200] = synthetic_pair(seed=2, nodata_share=0.0)[1][:, 5:6, 60:61]  # in the lake's colour
    noisy = image + np.random.default_rng(0).integers(0, 400, image.shape)  # real imagery has texture
    data = tmp_path / "data"
    data.mkdir()
    write(data / LANDCOVER_FILE, codes, SCHEME.nodata_code)
    write(data / IMAGE_FILE, noisy.astype(np.uint16), 0)
    models = perfect_models(tmp_path / "models")
    south, out = _south_half(tmp_path / "south.geojson", rows, cols), tmp_path / "out"
    argv = ["evaluate", "--quick", "--models", str(models), "--data", str(data), "--out", str(out), "--heldout",
            str(south), "--device", "cpu", "--no-two-sample", "--crops", str(tmp_path / "crops")]
    assert main(argv) == 0
    assert "map_only peak_index" in capsys.readouterr().out
    report = json.loads((out / "realism_quick.json").read_text())
    row = report["headline"]["map_only"]
    assert row["seed_mean_abs_difference"] == [0.0, 0.0, 0.0] and row["seed_layout_agreement"] == 1.0  # no noise
    frechet = report["measures"]["frechet"]
    assert frechet["samples_per_set"] == 12  # 32 px cells: 3 x 8 in each area; the training area gives two samples
    assert set(frechet["distances"]) == {"real_floor", "real_other_area", "blurred", "map_only"}
    # flat class colours where the real imagery has texture: far from real imagery, much like its blur
    assert frechet["distances"]["map_only"] > 10 * frechet["distances"]["real_floor"]
    crops = {c["class"]: c for c in report["crops"]["classes"]}
    assert crops["shrub"]["area"] == "heldout" and crops["water"]["area"] == "training_area"
    assert (tmp_path / "crops" / "shrub_1x.png").is_file() and (tmp_path / "crops" / "water_3x.png").is_file()
    noisy = perfect_models(tmp_path / "noisy")  # the same colours plus a little of four noise channels
    weight = np.full((3, len(SCHEME) + 4), 0.01, np.float32)
    for code, centre in CENTROIDS.items():
        weight[:, index(code)] = np.arctanh(np.array(centre, np.float32))
    contract = default_contract(Direction.LANDCOVER_TO_RGB, noise_channels=4)
    save(pointwise_model(contract, weight=weight), noisy / "landcover_to_rgb.onnx")
    assert main(argv[:3] + [str(noisy)] + argv[4:-2]) == 0
    row = json.loads((out / "realism_quick.json").read_text())["headline"]["map_only"]
    assert min(row["seed_mean_abs_difference"]) > 0.5 and row["seed_layout_agreement"] > 0.95  # texture, not layout
    argv[3] = str(models / "landcover_to_rgb.onnx")
    assert main(argv[:-2] + ["--no-seeds"]) == 0
    assert set(json.loads((out / "realism_quick.json").read_text())["headline"]) == {"generator"}
    argv[3] = str(tmp_path / "absent.onnx")
    assert main(argv) == 2
