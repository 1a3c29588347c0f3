"""``training.evaluate``: the numbers it reports, checked on small rasters with tiny per-pixel contract models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from lcgan_qgis.core.contract import Direction
from lcgan_qgis.core.errors import ModelFileError
from tests.onnx_factory import default_contract, pointwise_model, save
from training.evaluate import (
    IMAGE_FILE,
    LANDCOVER_FILE,
    baseline_scores,
    compare_colours,
    evaluate,
    find_models,
    score_landcover,
    summary_lines,
)

CONTRACT = default_contract(Direction.RGB_TO_LANDCOVER)
SCHEME = CONTRACT.scheme
RADIOMETRY = CONTRACT.radiometry
# Four classes with well separated colours in the model's [-1, 1] space (the rest of the scheme is absent).
CENTROIDS = {42: (-0.6, 0.2, -0.5), 52: (0.6, 0.3, -0.2), 31: (0.3, 0.1, 0.6), 11: (-0.7, -0.5, 0.4)}


def index(code: int) -> int:
    return SCHEME.codes.index(code)


def synthetic_pair(rows: int = 72, cols: int = 88, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Land-cover codes (42 the majority, a few nodata pixels) and the matching image in DN (0 = nodata)."""
    rng = np.random.default_rng(seed)
    codes = np.full((rows, cols), 42, np.uint8)
    codes[:, : cols // 4] = 52
    codes[rows // 2 :, cols // 2 :] = 31
    codes[5:15, 60:75] = 11
    codes[rng.random((rows, cols)) < 0.02] = SCHEME.nodata_code
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


def _south_half(path: Path, rows: int = 72, cols: int = 88) -> Path:
    """The southern half of the synthetic pair's grid (origin 300000, 4150000; 30 m pixels) as a GeoJSON polygon."""
    x0, x1 = 300000.0, 300000.0 + 30 * cols
    y_top, y_mid = 4150000.0, 4150000.0 - 30 * rows / 2
    y_bottom = y_top - 30 * rows
    polygon = [[x0, y_bottom], [x1, y_bottom], [x1, y_mid], [x0, y_mid], [x0, y_bottom]]
    path.write_text(json.dumps({
        "type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32612"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [polygon]}}],
    }))
    return path


def test_heldout_split_counts_each_valid_pixel_once(tmp_path: Path, paired_data: tuple) -> None:
    data, codes, _ = paired_data
    models = constant_classifier(perfect_models(tmp_path / "models"), 52)  # right only where the truth is 52
    report = evaluate(models, data, tmp_path / "out", device="cpu", heldout=_south_half(tmp_path / "south.geojson"))
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
