"""Fine-tuning from the bundled models (real optimizer steps on small synthetic rasters): the ONNX read back,
the scheme change, polygon labels, exact resume, the exported folder in the core runtime, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from osgeo import gdal, ogr, osr

from lcgan_qgis.core.errors import InputRasterError, LcganError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.resources import resources_dir
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.core.run.settings import Execution, RunSettings
from tests.fixtures.rasters import write_tif
from training.errors import TrainingError
from training.finetune.base import class_layers, load_base_folder
from training.finetune.outputs import write_outputs
from training.finetune.run import FineTune, Settings

BASE = resources_dir() / "models"
COLOURS = {1: (9000, 8000, 8000), 2: (7000, 9000, 7500), 3: (14000, 12000, 11000)}  # Landsat-like DNs


def _three_classes(n: int = 96) -> np.ndarray:
    codes = np.ones((n, n), dtype=np.uint8)
    codes[:, n // 3: 2 * n // 3] = 2
    codes[n // 2:, 2 * n // 3:] = 3
    codes[: n // 2, 2 * n // 3:] = 3
    codes[n // 4: n // 2, : n // 3] = 2
    return codes


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("region")
    codes = _three_classes()
    rng = np.random.default_rng(0)
    image = np.stack([np.vectorize(lambda c, b=b: COLOURS[int(c)][b])(codes) for b in range(3)]).astype(np.float32)
    image += rng.normal(0, 300, image.shape)
    write_tif(folder / "image.tif", image.astype(np.uint16), nodata=0)
    write_tif(folder / "lc.tif", codes, nodata=255)
    scheme = {"name": "three", "nodata_code": 255, "classes": [
        {"code": 1, "name": "Shrubs", "color": "#ccb879", "includes": [52]},
        {"code": 2, "name": "Trees", "color": "#1c5f2c", "includes": [41, 42, 43]},
        {"code": 3, "name": "Rock", "color": "#b3ac9f"}]}
    (folder / "scheme.json").write_text(json.dumps(scheme), encoding="utf-8")
    return {"image": folder / "image.tif", "lc": folder / "lc.tif", "scheme": folder / "scheme.json",
            "folder": folder}


def _settings(region: dict[str, Path], out: Path, **kw: object) -> Settings:
    base = {"base": str(BASE), "imagery": [str(region["image"])], "out": str(out), "landcover": [str(region["lc"])],
            "scheme": str(region["scheme"]), "steps": 2, "crop": 32, "batch": 2, "threads": 1, "int8": False,
            "val_every_s": 1e9, "lr": 1e-3}
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def test_the_bundled_onnx_reads_back_into_torch_exactly() -> None:
    for direction, base in load_base_folder(BASE).items():
        x = np.random.default_rng(1).uniform(-1, 1, (1, base.contract.in_channels, 32, 32)).astype(np.float32)
        with load_model(base.path, "cpu", precision="fp32", backend="onnxruntime") as model, torch.no_grad():
            got = base.net(torch.from_numpy(x))
            got = got.softmax(1) if direction is Direction.RGB_TO_LANDCOVER else got
            assert np.abs(got.numpy() - model.run(x)).max() < 1e-5


def test_a_scheme_change_keeps_the_class_independent_layers(region: dict[str, Path], tmp_path: Path) -> None:
    ft = FineTune(_settings(region, tmp_path / "run"))
    base = load_base_folder(BASE)
    codes = base[Direction.RGB_TO_LANDCOVER].contract.scheme.codes
    layer_of = {}
    for name, direction, final in (("g_rgb2lc", Direction.RGB_TO_LANDCOVER, "logits"),
                                   ("g_lc2rgb", Direction.LANDCOVER_TO_RGB, "tanh")):
        (class_layer, _axis), = class_layers(ft.nets[name], final)  # (both bundled designs have one)
        layer_of[name] = class_layer
        old, new = base[direction].net.state_dict(), ft.nets[name].state_dict()
        shared = [k for k in old if not k.startswith(class_layer + ".")]
        assert shared and all(torch.equal(old[k], new[k]) for k in shared)
    last_old = base[Direction.RGB_TO_LANDCOVER].net.state_dict()[layer_of["g_rgb2lc"] + ".weight"]
    last_new = ft.nets["g_rgb2lc"].state_dict()[layer_of["g_rgb2lc"] + ".weight"]
    assert last_new.shape[0] == 3 and torch.equal(last_new[0], last_old[codes.index(52)])  # shrubs <- 52
    first_old = base[Direction.LANDCOVER_TO_RGB].net.state_dict()[layer_of["g_lc2rgb"] + ".weight"]
    first_new = ft.nets["g_lc2rgb"].state_dict()[layer_of["g_lc2rgb"] + ".weight"]
    assert first_new.shape[1] == 3 + 4 and torch.equal(first_new[:, 3:], first_old[:, 14:])  # noise columns
    assert torch.allclose(first_new[:, 0], first_old[:, codes.index(52)])
    assert any("3 Rock: new" in line for line in ft.transfer_notes)
    before = {k: v.clone() for k, v in ft.nets["g_rgb2lc"].state_dict().items()}
    ft.train()
    after = ft.nets["g_rgb2lc"].state_dict()
    assert ft.step == 2 and any(not torch.equal(before[k], after[k]) for k in before if "weight" in k)


def test_with_the_base_scheme_the_base_model_is_scored_untouched(region: dict[str, Path], tmp_path: Path) -> None:
    """The report's "base model" is the starting weights, not the fine-tuned ones (they were one object once)."""
    bundled = resources_dir() / "schemes" / "nlcd2011.json"
    lc = tmp_path / "lc_nlcd.tif"
    write_tif(lc, np.array([52, 42, 31], dtype=np.uint8)[_three_classes() - 1], nodata=255)
    ft = FineTune(_settings(region, tmp_path / "run", landcover=[str(lc)], scheme=str(bundled), steps=3))
    base_net = ft.base[Direction.RGB_TO_LANDCOVER].net
    assert ft.nets["g_rgb2lc"] is not base_net
    start = {k: v.clone() for k, v in base_net.state_dict().items()}
    ft.train()
    assert all(torch.equal(start[k], v) for k, v in base_net.state_dict().items())
    changed = ft.nets["g_rgb2lc"].state_dict()
    assert any(not torch.equal(start[k], changed[k]) for k in start if "weight" in k)


def test_resume_continues_exactly_where_the_run_stopped(region: dict[str, Path], tmp_path: Path) -> None:
    straight = FineTune(_settings(region, tmp_path / "a", steps=4))
    straight.train()
    first = FineTune(_settings(region, tmp_path / "b", steps=2))
    first.train()
    second = FineTune(_settings(region, tmp_path / "b", steps=4))
    assert second.step == 2
    second.train()
    for name in ("g_rgb2lc", "g_lc2rgb"):
        a, b = straight.nets[name].state_dict(), second.nets[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    other = _settings(region, tmp_path / "b", steps=6, lr=5e-4)
    with pytest.raises(TrainingError, match="other data, scheme, base or recipe"):
        FineTune(other)


def _polygons(path: Path, rings: list[tuple[list[tuple[float, float]], int]]) -> Path:
    driver = ogr.GetDriverByName("GPKG")
    ds = driver.CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32612)
    layer = ds.CreateLayer("labels", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    for ring, code in rings:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", code)
        wkt = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in [*ring, ring[0]]) + "))"
        feature.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        layer.CreateFeature(feature)
    ds = None
    return path


def _square(col: int, row: int, size: int) -> list[tuple[float, float]]:
    x0, y0 = 300000.0 + 30 * col, 4150000.0 - 30 * row
    return [(x0, y0), (x0 + 30 * size, y0), (x0 + 30 * size, y0 - 30 * size), (x0, y0 - 30 * size)]


def test_polygon_labels_leave_every_other_pixel_out_of_the_losses(region: dict[str, Path], tmp_path: Path) -> None:
    gpkg = _polygons(tmp_path / "labels.gpkg", [(_square(2, 2, 10), 1), (_square(40, 2, 10), 2),
                                                (_square(80, 2, 10), 3), (_square(40, 70, 10), 2)])
    ft = FineTune(_settings(region, tmp_path / "run", landcover=[], labels=str(gpkg), val_area=""))
    scene = ft.scenes[0]
    assert int(scene.labelled.sum()) == 4 * 100
    assert set(np.unique(scene.labels).tolist()) == {-1, 0, 1, 2}
    images, labels = ft.sampler.batch(0, 2)
    assert (labels == -1).mean() > 0.5  # most of every window carries no label ...
    ft.train()  # ... and real steps run on the rest
    assert ft.step == 2 and np.isfinite(ft.curve[-1]["accuracy"])
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()


def test_the_exported_folder_carries_the_new_scheme_and_runs_in_the_core(region: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    ft = FineTune(_settings(region, tmp_path / "model", steps=3))
    ft.train()
    report = write_outputs(ft, 1.0)
    out = tmp_path / "model"
    for name in ("report.json", "report.png", "provenance.json", "scheme.json", "train_area.geojson",
                 "val_area.geojson"):
        assert (out / name).is_file(), name
    saved = json.loads((out / "report.json").read_text())
    assert saved["verdict"]["accuracy"] == report["verdict"]["accuracy"]
    assert set(saved["validation"]) >= {"finetuned", "base_model", "majority"}
    assert saved["provenance"]["steps"] == 3
    result = tmp_path / "lc.tif"
    with load_model(out / "rgb_to_landcover.onnx", "cpu", precision="fp32") as model:
        assert model.contract.scheme.codes == (1, 2, 3)
        with GdalReader(region["image"]) as reader:
            request = TranslationRequest(str(result), settings=RunSettings(execution=Execution(threads=1)),
                                         input_path=str(region["image"]))
            run_translation(request, reader, log=lambda _m: None, model=model)
    assert set(np.unique(gdal.Open(str(result)).ReadAsArray()).tolist()) <= {1, 2, 3, 255}
    with load_model(out / "landcover_to_rgb.onnx", "cpu", precision="fp32") as model:
        assert model.contract.scheme.codes == (1, 2, 3) and model.contract.in_channels == 3 + 4


def test_bad_input_gets_one_clear_line(region: dict[str, Path], tmp_path: Path) -> None:
    far = write_tif(tmp_path / "far.tif", _three_classes(), nodata=255,
                    geotransform=(500000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0))
    odd = _three_classes()
    odd[0, 0] = 9
    odd_path = write_tif(tmp_path / "odd.tif", odd, nodata=255)
    outside = tmp_path / "outside.geojson"
    ring = _square(500, 500, 10)
    outside.write_text(json.dumps({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}))
    cases = [
        ({"landcover": [str(far)]}, "do not overlap"),
        ({"landcover": [str(odd_path)]}, r"code\(s\) \[9\] are not in the class scheme 'three'"),
        ({"val_area": str(outside)}, "validation area .* holds no labelled pixel"),
        ({"steps": 0}, "Give a budget"),
        ({"steps": 0, "minutes": 0.0001}, "too small: one validation pass takes"),
    ]
    for changes, message in cases:
        with pytest.raises(LcganError, match=message):
            FineTune(_settings(region, tmp_path / "bad", **changes)).train()
        assert "\n" not in message
    with pytest.raises(InputRasterError, match="Imagery file not found"):
        FineTune(_settings(region, tmp_path / "bad", imagery=[str(tmp_path / "none.tif")]))
