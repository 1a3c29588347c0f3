"""Float16 weight storage: onnxruntime (and OpenVINO) run the converted models, the outputs follow the float32
file, the conversion is in place and all or nothing, int8 quantisation and the gates take a float16-stored model,
and the command line converts files and names bad ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lcgan_qgis.core.errors import ModelFileError, OptionError
from lcgan_qgis.core.model.contract import Direction, ModelContract
from lcgan_qgis.core.model.precision import int8_sibling, record_path
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.resources import bundled_model_path
from lcgan_qgis.tooling.gates import measure_gates
from lcgan_qgis.tooling.quantize import quantize_model
from lcgan_qgis.tooling.weight_storage import (
    MIN_ELEMENTS,
    convert_file,
    random_input,
    restore_fp32,
    store_fp16,
    weight_storage,
    with_storage,
)
from tests.fixtures.conv_factory import conv_model
from tests.fixtures.landcover import smooth_landcover
from tests.fixtures.onnx_factory import default_contract
from tests.fixtures.rasters import write_tif
from tests.optional import needs_openvino

REPO = Path(__file__).resolve().parents[2]


def _run(model: onnx.ModelProto | Path, x: np.ndarray) -> np.ndarray:
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


def _wide(direction: str) -> onnx.ModelProto:
    """The test conv model with 64 hidden channels: both weight tensors are large enough to be stored as float16,
    the biases and InstanceNorm parameters are not."""
    return conv_model(default_contract(direction), hidden=64)


def _types(model: onnx.ModelProto) -> dict[str, int]:
    return {init.name: init.data_type for init in model.graph.initializer}


@pytest.mark.parametrize("direction", ["rgb_to_landcover", "landcover_to_rgb"])
def test_fp16_storage_halves_the_weights_and_onnxruntime_follows_the_float_model(direction: str) -> None:
    model = _wide(direction)
    stored, count = store_fp16(model)
    assert count == 2 and weight_storage(stored) == "fp16" and weight_storage(model) == "fp32"
    types = _types(stored)
    assert types["W1_fp16"] == types["W2_fp16"] == TensorProto.FLOAT16 and "W1" not in types
    assert types["B1"] == types["ones"] == TensorProto.FLOAT  # small tensors stay float32
    onnx.checker.check_model(stored, full_check=True)
    assert list(stored.metadata_props) == list(model.metadata_props)  # the contract, byte for byte
    assert [(i.name, i.type) for i in stored.graph.input] == [(i.name, i.type) for i in model.graph.input]
    assert [(o.name, o.type) for o in stored.graph.output] == [(o.name, o.type) for o in model.graph.output]
    fp16_bytes = sum(len(i.raw_data) for i in stored.graph.initializer)
    fp32_bytes = sum(len(i.raw_data) for i in model.graph.initializer)
    assert fp16_bytes < 0.52 * fp32_bytes
    x = random_input(default_contract(direction), 64)
    a, b = _run(model, x), _run(stored, x)
    assert b.dtype == np.float32 and b.shape == a.shape
    assert 0 < float(np.abs(a - b).max()) < 2e-2  # the weights were rounded, so the outputs moved a little ...
    rounded = onnx.ModelProto()
    rounded.CopyFrom(model)
    for init in rounded.graph.initializer:
        if init.name in ("W1", "W2"):
            values = numpy_helper.to_array(init).astype(np.float16).astype(np.float32)
            init.CopyFrom(numpy_helper.from_array(values, init.name))
    np.testing.assert_array_equal(_run(rounded, x), b)  # ... exactly as far as rounding the weights moves them
    back, restored = restore_fp32(stored)
    assert restored == 2 and weight_storage(back) == "fp32"
    assert _types(back) == _types(model) and len(back.graph.node) == len(model.graph.node)
    onnx.checker.check_model(back, full_check=True)
    np.testing.assert_array_equal(_run(back, x), b)  # the same float16 values, now as float32 initializers
    assert with_storage(stored, "fp16")[1] == 0 and with_storage(model, "fp32")[1] == 0  # nothing left to do
    with pytest.raises(OptionError, match="choose one of: fp32, fp16"):
        with_storage(model, "bf16")


def test_weights_float16_cannot_hold_stay_float32() -> None:
    big = np.full((MIN_ELEMENTS,), 1e6, np.float32)  # beyond float16's largest value, 65504
    fine = np.linspace(-2, 2, MIN_ELEMENTS, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "big"], ["sum"]), helper.make_node("Add", ["sum", "fine"], ["output"])],
        "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [MIN_ELEMENTS])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [MIN_ELEMENTS])],
        initializer=[numpy_helper.from_array(big, "big"), numpy_helper.from_array(fine, "fine")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    stored, count = store_fp16(model)
    assert count == 1 and _types(stored) == {"big": TensorProto.FLOAT, "fine_fp16": TensorProto.FLOAT16}
    x = np.zeros(MIN_ELEMENTS, np.float32)
    np.testing.assert_array_equal(_run(stored, x), (big + fine.astype(np.float16).astype(np.float32)))


@pytest.fixture()
def float_file(tmp_path: Path) -> Path:
    path = tmp_path / "rgb2lc.onnx"
    onnx.save(_wide("rgb_to_landcover"), str(path))
    return path


def test_in_place_conversion_is_checked_then_atomic(float_file: Path) -> None:
    contract_before = load_model(float_file, "cpu", precision="fp32").contract
    report = convert_file(float_file, "fp16")
    assert report.tensors == 2 and report.bytes_after < 0.55 * report.bytes_before
    assert report.metric is None and 0 < report.max_abs_diff < 5e-3 and "random 2 x 3 x 128 x 128" in report.summary
    assert weight_storage(onnx.load(str(float_file))) == "fp16"
    with load_model(float_file, "cpu", precision="fp32") as model:
        assert model.contract == contract_before
    assert sorted(p.name for p in float_file.parent.iterdir()) == ["rgb2lc.onnx"]  # no partial file left
    again = convert_file(float_file, "fp16")
    assert again.tensors == 0 and "already stores its weights as fp16; left unchanged" in again.summary
    back = convert_file(float_file, "fp32")
    assert back.tensors == 2 and back.max_abs_diff == 0.0 and weight_storage(onnx.load(str(float_file))) == "fp32"


def _fragile(path: Path) -> Path:
    """A real land-cover model whose class scores are differences of weights just above 2048, where float16's step
    is 2: stored as float16 every weight is 2048, every score 0, and the classes tie."""
    contract = default_contract("rgb_to_landcover")
    rng = np.random.default_rng(0)
    hidden = 512
    w1 = (2048 + rng.uniform(0.05, 0.95, (hidden, 3, 1, 1))).astype(np.float32)
    w2 = np.zeros((contract.num_classes, hidden, 1, 1), np.float32)
    w2[:, 0], w2[np.arange(contract.num_classes), np.arange(1, contract.num_classes + 1)] = -1.0, 1.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W1"], ["h"], kernel_shape=[1, 1]),
         helper.make_node("Conv", ["h", "W2"], ["s"], kernel_shape=[1, 1]),
         helper.make_node("Softmax", ["s"], ["output"], axis=1)], "fragile",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", contract.num_classes, "H", "W"])],
        initializer=[numpy_helper.from_array(w1, "W1"), numpy_helper.from_array(w2 * 100, "W2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    onnx.save(model, str(path))
    return path


def test_a_conversion_that_fails_the_gate_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    model = _fragile(tmp_path / "fragile.onnx")
    image = write_tif(tmp_path / "image.tif",
                      np.random.default_rng(1).integers(6000, 16000, (3, 160, 160)).astype(np.uint16))
    before = model.read_bytes()
    with pytest.raises(ModelFileError, match=r"class agreement .* below the fidelity gate; the file is left unchanged"):
        convert_file(model, "fp16", calibration=image, windows=2, window_px=64)
    assert model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fragile.onnx", "image.tif"]


def test_bad_files_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="Model file not found"):
        convert_file(tmp_path / "none.onnx", "fp16")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        convert_file(junk, "fp16")
    assert junk.read_bytes() == b"not a model"
    with pytest.raises(OptionError, match="Unknown weight storage 'int4'"):
        convert_file(junk, "int4")


def _jittered_bundled(direction: Direction, path: Path) -> Path:
    """The bundled model with float32 weights off the float16 grid: its own weights (restored to float32 if they
    are stored as float16), each moved by a relative jitter of up to 2^-11, so rounding them to float16 means the
    same whether or not the bundled file already stores float16."""
    bundled = bundled_model_path(direction)
    if not bundled.is_file():
        pytest.skip(f"no bundled model at {bundled}")
    model = restore_fp32(onnx.load(str(bundled)))[0]
    rng = np.random.default_rng(0)
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT and np.prod(init.dims) >= MIN_ELEMENTS:
            values = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(
                (values * (1 + rng.uniform(-2 ** -11, 2 ** -11, values.shape))).astype(np.float32), init.name))
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(("direction", "raster"), [(Direction.RGB_TO_LANDCOVER, "landsat8_rgb.tif"),
                                                   (Direction.LANDCOVER_TO_RGB, "nlcd2011.tif")])
def test_the_trained_models_keep_their_outputs_on_real_zion_windows(direction: Direction, raster: str,
                                                                    zion_dir: Path, tmp_path: Path) -> None:
    """Measured with all 8 calibration windows and 32 (docs/engine.md): 99.99 % of classes, 91.7 dB."""
    model = _jittered_bundled(direction, tmp_path / f"{direction.value}.onnx")
    large = sum(1 for init in onnx.load(str(model)).graph.initializer
                if init.data_type == TensorProto.FLOAT and np.prod(init.dims) >= MIN_ELEMENTS)
    report = convert_file(model, "fp16", calibration=zion_dir / raster, windows=3)
    assert large >= 20 and report.tensors == large and report.bytes_after < 0.52 * report.bytes_before
    if direction is Direction.RGB_TO_LANDCOVER:
        assert report.metric == "class_agreement" and report.value >= 0.999
    else:
        assert report.metric == "psnr_db" and report.value >= 70.0
    assert "3 windows of 256 px from " + raster in report.summary


@pytest.fixture(scope="module")
def fp16_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A float16-stored land cover -> RGB model and a real GeoTIFF of land cover to calibrate it on."""
    folder = tmp_path_factory.mktemp("fp16")
    path = folder / "lc2rgb.onnx"
    onnx.save(store_fp16(_wide("landcover_to_rgb"))[0], str(path))
    return path, write_tif(folder / "lc.tif", smooth_landcover(300, 300))


def test_quantize_takes_a_float16_stored_model_and_the_gates_measure_it(fp16_set: tuple[Path, Path]) -> None:
    model, raster = fp16_set
    report = quantize_model(model, raster, int8_sibling(model), windows=6, window_px=128, float_first=False)
    assert report.metric == "psnr_db" and report.value > 30 and report.equalized_convs == 1
    int8 = onnx.load(str(int8_sibling(model)))
    ops = {n.op_type for n in int8.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert weight_storage(int8) == "fp16"  # the last convolution stays float, stored as its source stores it
    assert max(np.prod(i.dims) for i in int8.graph.initializer if i.data_type == TensorProto.INT8) == 64 * 14 * 9
    with load_model(model, "cpu", precision="int8") as loaded:
        assert loaded.path == int8_sibling(model) and loaded.contract.extra["quantized_from"] == "lc2rgb.onnx"
    record = measure_gates(model, raster, windows=3, window_px=64)
    assert record_path(model).is_file() and record.paths["onnxruntime/int8"]["value"] >= 35.0
    assert set(record.digests) == {"lc2rgb.onnx", "lc2rgb.int8.onnx"}
    as_fp32 = quantize_model(model, raster, model.with_name("other.int8.onnx"), windows=6, window_px=128,
                             float_first=False, storage="fp32")
    assert weight_storage(onnx.load(str(as_fp32.path))) == "fp32"
    with pytest.raises(OptionError, match="Unknown weight storage"):
        quantize_model(model, raster, model.with_name("x.int8.onnx"), storage="half")


@needs_openvino
def test_openvino_reads_a_float16_stored_model(fp16_set: tuple[Path, Path]) -> None:
    model, _raster = fp16_set
    x = random_input(ModelContract.from_metadata({p.key: p.value for p in onnx.load(str(model)).metadata_props}), 64)
    with load_model(model, "cpu", precision="fp32", backend="onnxruntime") as reference, \
            load_model(model, "cpu", precision="fp32", backend="openvino") as openvino:
        assert openvino.backend == "openvino"
        np.testing.assert_allclose(openvino.run(x), reference.run(x), atol=1e-4)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lcgan_qgis", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def test_the_weights_command_converts_in_place_and_names_a_bad_file(float_file: Path) -> None:
    done = _cli("weights", "--model", str(float_file))
    assert done.returncode == 0, done.stderr
    assert "2 weight tensors stored as fp16" in done.stdout and "max |diff|" in done.stdout
    assert weight_storage(onnx.load(str(float_file))) == "fp16"
    done = _cli("weights", "--model", str(float_file), "--storage", "fp16")
    assert done.returncode == 0 and "already stores its weights as fp16" in done.stdout
    bad = float_file.with_name("bad.onnx")
    bad.write_text("{}", encoding="utf-8")
    done = _cli("weights", "--model", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: Cannot load model {bad}: not a valid ONNX model")
    done = _cli("weights", "--model", str(float_file), "--storage", "int4")
    assert done.returncode == 2 and "invalid choice: 'int4'" in done.stderr


def test_the_weights_command_says_which_fidelity_record_no_longer_applies(tmp_path: Path) -> None:
    model = tmp_path / "lc2rgb.onnx"
    onnx.save(_wide("landcover_to_rgb"), str(model))
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(300, 300))
    measure_gates(model, raster, windows=2, window_px=64)
    done = _cli("weights", "--model", str(model), "--calibration", str(raster), "--windows", "2")
    assert done.returncode == 0, done.stderr
    assert "PSNR" in done.stdout and "2 windows of 256 px from lc.tif" in done.stdout
    assert f"note: {record_path(model)} measured the previous file and no longer applies" in done.stderr
    with load_model(model, "cpu") as loaded:  # auto: the record is stale, so the reference runs, with a note
        assert loaded.precision == "fp32" and any("measured on another lc2rgb.onnx" in n for n in loaded.notes)


def test_quantize_on_the_command_line_chooses_the_int8_copy_s_storage(fp16_set: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    model, raster = fp16_set
    for storage, expected in (("fp32", "fp32"), (None, "fp16")):
        out = tmp_path / f"{storage}.int8.onnx"
        done = _cli("quantize", "--model", str(model), "--calibration", str(raster), "--output", str(out),
                    "--windows", "2", "--no-gates", *(["--weight-storage", storage] if storage else []))
        assert done.returncode == 0, done.stderr
        assert "int8 model written" in done.stdout and weight_storage(onnx.load(str(out))) == expected
