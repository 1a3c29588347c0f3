"""Model loading: real files (valid, missing, truncated, not ONNX, no metadata), provider choice, batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from lcgan_qgis.core.errors import ContractError, DeviceError, ModelFileError
from lcgan_qgis.core.model import runtime
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import CPU, describe_providers, load_model
from tests.fixtures.onnx_factory import default_contract, pointwise_model, save, write_pointwise

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pointwise(tmp_path_factory.mktemp("m") / "rgb2lc.onnx", "rgb_to_landcover")


def test_load_and_run(model_path: Path) -> None:
    model = load_model(model_path, "cpu", threads=1)
    assert model.contract.direction is Direction.RGB_TO_LANDCOVER and model.provider == CPU
    assert model.threads == 1 and "CPU" in model.provider_reason
    out = model.run(np.zeros((2, 3, 8, 12), np.float32))
    assert out.shape == (2, 14, 8, 12) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)  # probabilities
    with pytest.raises(ContractError, match="multiples of 4"):
        model.run(np.zeros((1, 3, 6, 8), np.float32))
    with pytest.raises(ContractError, match=r"\(N, 3, H, W\)"):
        model.run(np.zeros((1, 14, 8, 8), np.float32))


@pytest.mark.parametrize(("content", "match"), [
    (None, "not found"),
    (b"", "empty"),
    (b"this is not an onnx file at all" * 10, "not a valid ONNX model"),
])
def test_bad_files_name_the_path(tmp_path: Path, content: bytes | None, match: str) -> None:
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_truncated_file(tmp_path: Path, model_path: Path) -> None:
    data = model_path.read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_folder_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not a file"):
        load_model(tmp_path)


def test_model_without_metadata(tmp_path: Path) -> None:
    model = pointwise_model(default_contract("rgb_to_landcover"))
    del model.metadata_props[:]
    path = save(model, tmp_path / "bare.onnx")
    with pytest.raises(ContractError, match="no lcgan metadata") as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_graph_that_breaks_the_contract(tmp_path: Path) -> None:
    contract = default_contract("rgb_to_landcover")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["output"])], "wrong",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    path = save(model, tmp_path / "wrong.onnx")
    with pytest.raises(ContractError, match="output has 3 channels"):
        load_model(path)


def test_unknown_device_and_threads(model_path: Path) -> None:
    with pytest.raises(DeviceError, match="choose one of"):
        load_model(model_path, "tpu")
    with pytest.raises(DeviceError, match="threads"):
        load_model(model_path, "cpu", threads=0)


def test_cuda_requested_without_a_usable_gpu(model_path: Path) -> None:
    """This machine has onnxruntime-gpu but no GPU: 'cuda' must fail with the reason, 'auto' must say why CPU."""
    if runtime._probe_cuda() is None:
        pytest.skip("a usable CUDA GPU is present")
    with pytest.raises(DeviceError, match="CUDA was requested but cannot be used: .+") as info:
        load_model(model_path, "cuda")
    assert "cpu" in str(info.value)
    provider, reason = describe_providers("auto")
    assert provider == CPU and reason.startswith("CPU (") and len(reason.splitlines()) == 1
    assert load_model(model_path, "auto").provider == CPU


def test_cuda_probe_session_is_quiet() -> None:
    """Asking onnxruntime for CUDA without CUDA libraries logs an error; our probe keeps stderr clean."""
    code = ("from lcgan_qgis.core.model.runtime import probe_cuda_session; r = probe_cuda_session(); "
            "print('REASON', r)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    if "REASON None" in out.stdout:
        pytest.skip("CUDA works here")
    assert "REASON" in out.stdout and "CUDA" in out.stdout
    assert "error" not in out.stderr.lower(), out.stderr
    raw = ("import onnxruntime as ort, base64; from lcgan_qgis.core.model.runtime import _PROBE_MODEL; "
           "ort.InferenceSession(_PROBE_MODEL, providers=['CUDAExecutionProvider', 'CPUExecutionProvider'])")
    loud = subprocess.run([sys.executable, "-c", raw], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "CUDA" in loud.stderr  # without the probe's care, onnxruntime does complain


def test_quantize_module_is_not_imported_by_the_engine() -> None:
    code = ("import sys, lcgan_qgis.core.run.engine, lcgan_qgis.core.model.runtime, lcgan_qgis.core.rasters.gdal_io; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'onnx', 'shapely', 'ml_dtypes'} "
            "or m.endswith('quantize')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]"



def test_the_opset_reader_agrees_with_onnx(tmp_path: Path) -> None:
    """The core reads a model's operator sets without the onnx package (the core must not import it): the same
    answer as onnx's own parser, on a model with metadata and a graph before the opsets, and on a bundled model."""
    import onnx

    from lcgan_qgis.core.model.opset import model_opsets

    model = pointwise_model(default_contract("rgb_to_landcover"))
    model.opset_import.append(helper.make_opsetid("com.example", 3))
    model.opset_import[0].version = 99
    data = model.SerializeToString()
    assert model_opsets(data) == {o.domain: o.version for o in model.opset_import}
    bundled = Path(__file__).resolve().parents[2] / "resources" / "models" / "rgb_to_landcover.onnx"
    if bundled.is_file():
        parsed = onnx.load(str(bundled), load_external_data=False)
        assert model_opsets(bundled.read_bytes()) == {o.domain: o.version for o in parsed.opset_import}
    with pytest.raises(ValueError):
        model_opsets(data[:-5])  # (truncated: its last field runs past the end)
