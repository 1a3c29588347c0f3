"""int8 tooling and precision choice: a real quantisation of a small conv model, calibrated on a real GeoTIFF."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from lcgan_qgis.core.errors import ContractError, DeviceError, ModelFileError
from lcgan_qgis.core.model.precision import CPU_ORDER, int8_sibling, passes, record_path
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.tooling.gates import measure_gates
from lcgan_qgis.tooling.quantize import equalize_instance_norm_inputs, quantize_model
from tests.fixtures.conv_factory import conv_model, write_conv
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.onnx_factory import write_pointwise
from tests.fixtures.rasters import write_tif


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    folder = tmp_path_factory.mktemp("q")
    fp32 = write_conv(folder / "lc2rgb.onnx", "landcover_to_rgb")
    raster = write_tif(folder / "lc.tif", smooth_landcover(300, 300))
    report = quantize_model(fp32, raster, int8_sibling(fp32), windows=6, window_px=128, float_first=False)
    return fp32, int8_sibling(fp32), report


def test_int8_copy_keeps_the_contract_and_follows_the_float_model(quantized: tuple) -> None:
    fp32, int8, report = quantized
    assert int8.name == "lc2rgb.int8.onnx" and report.path == int8
    assert report.metric == "psnr_db" and report.value > 30 and report.equalized_convs == 1
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    a, b = load_model(fp32, "cpu", precision="fp32"), load_model(fp32, "cpu", precision="int8")
    assert a.precision == "fp32" and b.precision == "int8" and b.path == int8
    assert b.contract.extra["precision"] == "int8" and b.contract.extra["quantized_from"] == "lc2rgb.onnx"
    assert dict(a.contract.to_dict(), extra={}) == dict(b.contract.to_dict(), extra={})


def test_auto_precision_uses_the_int8_sibling_only_once_its_gate_is_measured(quantized: tuple,
                                                                              tmp_path: Path) -> None:
    fp32, int8, _ = quantized
    folder = tmp_path / "copy"
    folder.mkdir()
    model, sibling = shutil.copy(fp32, folder / fp32.name), shutil.copy(int8, folder / int8.name)
    unmeasured = load_model(model, "cpu")
    assert unmeasured.path == Path(model) and unmeasured.precision == "fp32"
    assert any("no fidelity record" in note for note in unmeasured.notes)
    record = measure_gates(model, fp32.parent / "lc.tif", windows=3, window_px=64)
    assert record_path(model).is_file() and record.metric == "psnr_db"
    assert record.paths["onnxruntime/int8"]["value"] >= 35.0  # this tiny model's int8 copy passes the gate
    first = next(p for p in CPU_ORDER if p.key in record.paths and passes("psnr_db", record.value(p)))
    chosen = load_model(model, "cpu")
    assert (chosen.backend, chosen.precision) == (first.backend, first.precision)
    assert chosen.path == (Path(sibling) if first.int8_file else Path(model))
    on_onnxruntime = load_model(model, "cpu", backend="onnxruntime")
    assert (on_onnxruntime.backend, on_onnxruntime.precision, on_onnxruntime.path) == ("onnxruntime", "int8",
                                                                                        Path(sibling))


def test_precision_errors(quantized: tuple, tmp_path: Path) -> None:
    fp32, int8, _ = quantized
    lone = write_pointwise(tmp_path / "lone.onnx", "landcover_to_rgb", tile_size_px=128)
    assert load_model(lone, "cpu").precision == "fp32"  # auto without a sibling
    with pytest.raises(ModelFileError, match="No int8 model next to"):
        load_model(lone, "cpu", precision="int8")
    with pytest.raises(DeviceError, match="Unknown precision"):
        load_model(lone, "cpu", precision="fp16")
    shutil.copy(int8, int8_sibling(lone))  # an int8 file of another model (tile size differs)
    with pytest.raises(ContractError, match="is not the int8 copy"):
        load_model(lone, "cpu", precision="int8")


def test_equalisation_leaves_the_float_model_unchanged() -> None:
    from tests.fixtures.onnx_factory import default_contract

    model = conv_model(default_contract("rgb_to_landcover"))
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32) for _ in range(3)]
    equalized, count = equalize_instance_norm_inputs(model, batches)
    assert count == 1
    import onnxruntime as ort

    run = [ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]) for m in (model, equalized)]
    x = rng.uniform(-1, 1, (2, 3, 40, 36)).astype(np.float32)
    a, b = (s.run(["output"], {"input": x})[0] for s in run)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert any(i.name == "W1" for i in model.graph.initializer)  # the input model is left alone ...
    assert all(i.name != "W1" for i in equalized.graph.initializer)  # ... the copy has new weights
