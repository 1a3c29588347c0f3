"""The OpenVINO backend: the same tiled result as onnxruntime within the fidelity gates, fallbacks with reasons,
and a model cache that helps when it can and costs nothing when it cannot.

Tests that run OpenVINO skip where it is not installed (it is optional: requirements/optional.txt); the fallback
for a missing OpenVINO runs everywhere (there, OpenVINO is really missing; here its import is made to fail).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from lcgan_qgis.core.errors import DeviceError
from lcgan_qgis.core.model import openvino_backend
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.openvino_backend import openvino_status, prune_cache
from lcgan_qgis.core.model.precision import (
    CPU_ORDER,
    MIN_CLASS_AGREEMENT,
    MIN_PSNR_DB,
    REFERENCE,
    FidelityRecord,
    file_digest,
    int8_sibling,
    write_record,
)
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.settings import RunSettings, Windowing
from lcgan_qgis.tooling.quantize import quantize_model
from tests.fixtures.conv_factory import write_conv
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.onnx_factory import default_contract, pointwise_model
from tests.fixtures.rasters import read_tif, write_tif
from tests.optional import needs_openvino


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny conv models (InstanceNorm, so tiling matters) of both directions, each with an int8 sibling, and a
    real raster of each input kind."""
    folder = tmp_path_factory.mktemp("ov")
    codes = smooth_landcover(200, 230)
    image = np.stack([codes * 97 % 251, codes * 53 % 241, codes * 31 % 239]).astype(np.uint16) * 60 + 6000
    out = {"landcover": write_tif(folder / "lc.tif", codes),
           "imagery": write_tif(folder / "img.tif", image + np.random.default_rng(0).integers(0, 400, image.shape,
                                                                                             dtype=np.uint16))}
    for direction, raster in ((Direction.LANDCOVER_TO_RGB, "landcover"), (Direction.RGB_TO_LANDCOVER, "imagery")):
        path = write_conv(folder / f"{direction.value}.onnx", direction)
        quantize_model(path, out[raster], int8_sibling(path), windows=4, window_px=96, float_first=False)
        out[direction.value] = path
    return out


def _translate(model_path: Path, raster: Path, out: Path, **load: str) -> np.ndarray:
    model = load_model(model_path, "cpu", **load)
    with model, GdalReader(raster) as reader:
        options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=96)))
        result = translate(model, reader, out, options)
    assert (result.backend, result.precision) == (model.backend, model.precision)
    return read_tif(out)


@needs_openvino
@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
@pytest.mark.parametrize(("direction", "raster"), [("landcover_to_rgb", "landcover"), ("rgb_to_landcover", "imagery")])
def test_openvino_gives_the_onnxruntime_tiled_result_within_the_gates(models: dict[str, Path], tmp_path: Path,
                                                                      direction: str, raster: str,
                                                                      precision: str) -> None:
    if precision == "bf16" and not openvino_status().bf16:
        pytest.skip("this CPU does not report BF16 to OpenVINO")
    model, source = models[direction], models[raster]
    ours = _translate(model, source, tmp_path / "ort.tif", precision=precision, backend="onnxruntime") \
        if precision != "bf16" else _translate(model, source, tmp_path / "ort.tif", precision="fp32",
                                               backend="onnxruntime")
    theirs = _translate(model, source, tmp_path / "ov.tif", precision=precision, backend="openvino")
    assert ours.shape == theirs.shape
    if direction == "rgb_to_landcover":
        agreement = float((ours == theirs).mean())
        assert agreement >= (0.999 if precision == "fp32" else MIN_CLASS_AGREEMENT)
    else:
        mse = float(np.mean((ours.astype(np.float64) - theirs) ** 2))
        psnr = float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)
        assert psnr >= (60.0 if precision == "fp32" else MIN_PSNR_DB)


def _record_passing_everything(model: Path) -> None:
    digests = {model.name: file_digest(model)}
    if int8_sibling(model).is_file():
        digests[int8_sibling(model).name] = file_digest(int8_sibling(model))
    write_record(model, FidelityRecord(model.name, digests, "psnr_db", "test", {p.key: {"value": 60.0}
                                                                               for p in CPU_ORDER}))


@needs_openvino
def test_auto_runs_openvino_where_the_record_allows(models: dict[str, Path], tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(models["landcover_to_rgb"].read_bytes())
    int8_sibling(model).write_bytes(int8_sibling(models["landcover_to_rgb"]).read_bytes())
    _record_passing_everything(model)
    with load_model(model, "cpu", cache_dir=tmp_path / "cache") as chosen:
        assert (chosen.backend, chosen.precision, chosen.path) == ("openvino", "int8", int8_sibling(model))
        assert chosen.provider == "OpenVINO CPU" and chosen.summary.startswith("OpenVINO ")
        assert chosen.notes == ()


@pytest.fixture()
def without_openvino(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``import openvino`` fails, as where it is not installed (its cached status is forgotten before and after)."""
    openvino_status.cache_clear()
    openvino_backend._core.cache_clear()
    monkeypatch.setitem(sys.modules, "openvino", None)
    yield
    openvino_status.cache_clear()
    openvino_backend._core.cache_clear()


def test_a_missing_openvino_falls_back_with_a_one_line_note(models: dict[str, Path], tmp_path: Path,
                                                            without_openvino: None) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(models["landcover_to_rgb"].read_bytes())
    int8_sibling(model).write_bytes(int8_sibling(models["landcover_to_rgb"]).read_bytes())
    _record_passing_everything(model)
    chosen = load_model(model, "cpu")
    assert (chosen.backend, chosen.precision) == ("onnxruntime", "int8")  # the best path left
    assert len(chosen.notes) == 1 and "\n" not in chosen.notes[0]
    assert chosen.notes[0].startswith("OpenVINO is not available (the openvino package is not installed")
    with GdalReader(models["landcover"]) as reader:
        options = TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=96)))
        result = translate(chosen, reader, tmp_path / "o.tif", options)
    assert result.messages[0] == chosen.notes[0] and result.backend == "onnxruntime"
    with pytest.raises(DeviceError, match="OpenVINO was requested but cannot be used: the openvino package is not"):
        load_model(model, "cpu", backend="openvino")


def _uncompilable(path: Path) -> Path:
    """A contract model onnxruntime runs but OpenVINO cannot convert: its scores are multiplied by Det(I) = 1."""
    model = pointwise_model(default_contract("landcover_to_rgb"))
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.eye(2, dtype=np.float32), "eye"))
    graph.node[0].output[0] = "raw"
    graph.node.insert(1, helper.make_node("Det", ["eye"], ["one"]))
    graph.node.insert(2, helper.make_node("Mul", ["raw", "one"], ["scores"]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@needs_openvino
def test_a_model_openvino_cannot_compile_falls_back_with_the_reason(tmp_path: Path) -> None:
    model = _uncompilable(tmp_path / "det.onnx")
    write_record(model, FidelityRecord(model.name, {model.name: file_digest(model)}, "psnr_db", "test",
                                       {p.key: {"value": 99.0} for p in CPU_ORDER}))
    chosen = load_model(model, "cpu", cache_dir=tmp_path / "cache")
    assert (chosen.backend, chosen.precision) == (REFERENCE.backend, REFERENCE.precision)
    note = next(n for n in chosen.notes if "failed" in n)
    assert "OpenVINO fp32 failed (OpenVINO cannot read det.onnx" in note and "Det" in note
    assert note.endswith("onnxruntime fp32 runs instead.")
    assert chosen.run(np.zeros((1, 14, 8, 8), np.float32)).shape == (1, 3, 8, 8)
    with pytest.raises(DeviceError, match="Cannot run .*det.onnx.*OpenVINO fp32 failed"):
        load_model(model, "cpu", precision="fp32", backend="openvino")


@needs_openvino
def test_the_model_cache_is_used_and_an_unwritable_one_is_not_fatal(models: dict[str, Path], tmp_path: Path) -> None:
    model, x = models["landcover_to_rgb"], np.zeros((1, 14, 96, 96), np.float32)
    cache = tmp_path / "cache"
    with load_model(model, "cpu", precision="bf16" if openvino_status().bf16 else "fp32", backend="openvino",
                    cache_dir=cache) as first:
        expected = first.run(x)
        assert first.notes == ()
    blobs = sorted(cache.glob("*.blob"))
    assert blobs  # one per compiled shape
    with load_model(model, "cpu", precision=first.precision, backend="openvino", cache_dir=cache) as second:
        np.testing.assert_array_equal(second.run(x), expected)
    assert sorted(cache.glob("*.blob")) == blobs  # the second run compiled nothing new: it read the cache
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    with load_model(model, "cpu", precision="fp32", backend="openvino", cache_dir=blocked / "cache") as uncached:
        assert uncached.backend == "openvino" and uncached.run(x).shape == (1, 3, 96, 96)
    assert len(uncached.notes) == 1 and "is not writable" in uncached.notes[0]
    assert "compiling without a cache" in uncached.notes[0]


def test_the_cache_keeps_the_newest_blobs_within_its_budget(tmp_path: Path) -> None:
    for i in range(5):
        blob = tmp_path / f"{i}.blob"
        blob.write_bytes(b"x" * 100)
        os.utime(blob, (1000 + i, 1000 + i))
    (tmp_path / "other.txt").write_bytes(b"y" * 1000)  # not OpenVINO's: left alone
    assert prune_cache(tmp_path, budget_bytes=250) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.blob", "4.blob", "other.txt"]
    assert prune_cache(tmp_path, budget_bytes=250) == 0
