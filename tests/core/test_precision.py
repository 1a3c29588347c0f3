"""Which backend x precision a model gets: the plan (gates, fallbacks, refusals) and the fidelity record on disk.

These need no OpenVINO: the machine's capabilities are a value (:class:`Capabilities`) and the record a real file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.errors import DeviceError, ModelFileError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.precision import (
    CPU_ORDER,
    MIN_CLASS_AGREEMENT,
    MIN_PSNR_DB,
    ONNXRUNTIME,
    OPENVINO,
    REFERENCE,
    Capabilities,
    ExecutionPath,
    FidelityRecord,
    fidelity,
    file_digest,
    int8_sibling,
    plan_paths,
    read_record,
    record_path,
    write_record,
)
from lcgan_qgis.core.model.runtime import load_model
from tests.fixtures.onnx_factory import default_contract, write_pointwise

FULL = Capabilities(on_cuda=False, openvino_missing=None, bf16=True, has_int8=True)
OV_INT8, OV_BF16, ORT_INT8, OV_FP32 = CPU_ORDER[:4]


def record(values: dict[ExecutionPath, float], metric: str = "class_agreement") -> FidelityRecord:
    return FidelityRecord("m.onnx", {}, metric, "test windows", {p.key: {"value": v} for p, v in values.items()})


def test_auto_takes_every_path_that_passes_fastest_first_and_keeps_the_reference_last() -> None:
    passing = record({p: 0.995 for p in CPU_ORDER})
    paths, notes = plan_paths("auto", "auto", FULL, passing)
    assert paths == list(CPU_ORDER) and paths[-1] == REFERENCE and notes == []


def test_auto_skips_paths_below_the_gate_and_says_so_in_one_line() -> None:
    mixed = record({OV_INT8: 0.985, OV_BF16: 0.9979, ORT_INT8: 0.989, OV_FP32: 1.0})
    paths, notes = plan_paths("auto", "auto", FULL, mixed)
    assert paths == [OV_BF16, OV_FP32, REFERENCE]
    assert len(notes) == 1 and "\n" not in notes[0]
    assert "OpenVINO int8 (98.50 %)" in notes[0] and "onnxruntime int8 (98.90 %)" in notes[0]
    psnr = record({OV_INT8: MIN_PSNR_DB - 0.1, OV_BF16: MIN_PSNR_DB}, metric="psnr_db")
    assert plan_paths("auto", "auto", FULL, psnr)[0] == [OV_BF16, REFERENCE]


def test_without_a_record_auto_runs_the_reference_and_says_how_to_measure_one() -> None:
    paths, notes = plan_paths("auto", "auto", FULL, None, "m.onnx")
    assert paths == [REFERENCE]
    assert notes == ["m.onnx has no fidelity record, so onnxruntime fp32 runs; `python -m lcgan_qgis gates` measures "
                     "one and lets auto use faster paths."]
    assert plan_paths("auto", OPENVINO, FULL, None)[0] == [OV_FP32]  # openvino's own fp32 is that backend's floor


def test_missing_openvino_leaves_the_onnxruntime_paths_with_one_note() -> None:
    caps = Capabilities(on_cuda=False, openvino_missing="the openvino package is not installed", bf16=False,
                        has_int8=True)
    paths, notes = plan_paths("auto", "auto", caps, record({p: 0.999 for p in CPU_ORDER}))
    assert paths == [ORT_INT8, REFERENCE]
    assert len(notes) == 1 and notes[0].startswith("OpenVINO is not available (the openvino package is not installed)")
    with pytest.raises(DeviceError, match="OpenVINO was requested but cannot be used: the openvino package"):
        plan_paths("auto", OPENVINO, caps, None)
    with pytest.raises(DeviceError, match="bf16 needs OpenVINO"):
        plan_paths("bf16", "auto", caps, None)
    assert plan_paths("int8", "auto", caps, None)[0] == [ORT_INT8]


@pytest.mark.parametrize(("precision", "backend", "caps", "error", "match"), [
    ("bf16", "auto", Capabilities(False, None, False, True), DeviceError, "does not"),
    ("bf16", ONNXRUNTIME, FULL, DeviceError, "bf16 runs only with OpenVINO"),
    ("bf16", "auto", Capabilities(True, "cuda", False, True), DeviceError, "bf16 runs only with OpenVINO"),
    ("auto", OPENVINO, Capabilities(True, "cuda", False, True), DeviceError, "OpenVINO runs on the CPU"),
    ("int8", "auto", Capabilities(False, None, True, False), ModelFileError, "No int8 model next to m.onnx"),
    ("fp16", "auto", FULL, DeviceError, "Unknown precision 'fp16'; choose one of: auto, fp32, bf16, int8"),
    ("auto", "tensorrt", FULL, DeviceError, "Unknown backend 'tensorrt'; choose one of: auto, onnxruntime"),
])
def test_impossible_requests_are_refused_with_the_reason(precision: str, backend: str, caps: Capabilities,
                                                          error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        plan_paths(precision, backend, caps, None, "m.onnx")


def test_explicit_precision_ignores_the_gates_and_cuda_keeps_fp32() -> None:
    failing = record({p: 0.5 for p in CPU_ORDER})
    assert plan_paths("int8", "auto", FULL, failing)[0] == [OV_INT8, ORT_INT8]
    assert plan_paths("fp32", ONNXRUNTIME, FULL, failing)[0] == [REFERENCE]
    cuda = Capabilities(on_cuda=True, openvino_missing="not used for CUDA", bf16=False, has_int8=True)
    assert plan_paths("auto", "auto", cuda, record({ORT_INT8: 0.999}))[0] == [REFERENCE]


def test_fidelity_metrics_and_gates() -> None:
    lc = default_contract(Direction.RGB_TO_LANDCOVER)
    scores = np.random.default_rng(0).normal(size=(1, 14, 10, 10)).astype(np.float32)
    flipped = scores.copy()
    flipped[0, :, 0, 0] = -flipped[0, :, 0, 0]  # one pixel's class changes
    assert fidelity(lc, [scores], [flipped]) == ("class_agreement", pytest.approx(0.99))
    rgb = default_contract(Direction.LANDCOVER_TO_RGB)
    image = np.zeros((1, 3, 4, 4), np.float32)
    assert fidelity(rgb, [image], [image + 2 / 255.0]) == ("psnr_db", pytest.approx(20 * np.log10(255 / 1.0)))
    assert MIN_CLASS_AGREEMENT == 0.99 and MIN_PSNR_DB == 35.0


@pytest.fixture()
def measured(tmp_path: Path) -> tuple[Path, Path]:
    """A model with an int8 sibling (here a copy of the float file: the record only cares about digests)."""
    model = write_pointwise(tmp_path / "m.onnx", "rgb_to_landcover")
    sibling = int8_sibling(model)
    shutil.copy(model, sibling)
    digests = {model.name: file_digest(model), sibling.name: file_digest(sibling)}
    write_record(model, FidelityRecord(model.name, digests, "class_agreement", "2 windows",
                                       {REFERENCE.key: {"value": 1.0}, ORT_INT8.key: {"value": 0.995},
                                        OV_FP32.key: {"value": 1.0, "seconds_per_window": 0.5}}))
    return model, sibling


def test_record_round_trip_names_the_gate(measured: tuple[Path, Path]) -> None:
    model, _sibling = measured
    assert record_path(model) == model.with_name("m.fidelity.json")
    data = json.loads(record_path(model).read_text())
    assert data["gate"] == 0.99 and data["paths"][ORT_INT8.key] == {"value": 0.995, "passes": True}
    loaded, note = read_record(model)
    assert note is None and loaded is not None and loaded.value(ORT_INT8) == 0.995
    assert loaded.paths[OV_FP32.key]["seconds_per_window"] == 0.5


def test_a_record_of_other_files_is_ignored_with_a_note(measured: tuple[Path, Path]) -> None:
    model, sibling = measured
    sibling.write_bytes(sibling.read_bytes() + b"\0")  # the int8 copy was replaced: its entries no longer hold
    loaded, note = read_record(model)
    assert loaded is not None and ORT_INT8.key not in loaded.paths and OV_FP32.key in loaded.paths
    assert note is not None and "int8 entries" in note
    write_pointwise(model, "rgb_to_landcover", tile_size_px=128)  # the float model was replaced: nothing holds
    assert read_record(model) == (None, "Ignored m.fidelity.json: it was measured on another m.onnx; re-create it.")
    record_path(model).write_text("{not json")
    loaded, note = read_record(model)
    assert loaded is None and note is not None and "is not valid" in note


def test_load_model_follows_the_record(measured: tuple[Path, Path]) -> None:
    model, sibling = measured
    chosen = load_model(model, "cpu", backend=ONNXRUNTIME)
    assert (chosen.backend, chosen.precision, chosen.path) == (ONNXRUNTIME, "int8", sibling)
    record_path(model).unlink()
    assert load_model(model, "cpu", backend=ONNXRUNTIME).precision == "fp32"


def test_the_gates_command_writes_the_record_that_auto_then_follows(tmp_path: Path) -> None:
    """``python -m lcgan_qgis quantize`` writes the int8 copy and measures every path this machine offers."""
    import subprocess
    import sys

    from tests.fixtures.cli import ENV, REPO
    from tests.fixtures.conv_factory import write_conv
    from tests.fixtures.landcover import smooth_landcover
    from tests.fixtures.rasters import write_tif

    model = write_conv(tmp_path / "lc2rgb.onnx", "landcover_to_rgb")
    raster = write_tif(tmp_path / "lc.tif", smooth_landcover(160, 150))
    done = subprocess.run([sys.executable, "-m", "lcgan_qgis", "quantize", "--model", str(model), "--calibration",
                           str(raster), "--output", str(int8_sibling(model)), "--windows", "3"], cwd=REPO,
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()  # (onnxruntime's quantiser prints its own lines first)
    at = lines.index(f"{record_path(model)}: fidelity vs fp32 on 3 windows of 256 px from lc.tif")
    assert lines[at + 1].split()[:3] == ["onnxruntime/fp32", "inf", "dB"] and "onnxruntime/int8" in done.stdout
    record, note = read_record(model)
    assert note is None and record is not None and record.metric == "psnr_db"
    assert set(record.paths) >= {"onnxruntime/fp32", "onnxruntime/int8"}
    info = subprocess.run([sys.executable, "-m", "lcgan_qgis", "info", str(model), "--device", "cpu"], cwd=REPO,
                          capture_output=True, text=True, env=ENV, timeout=300)
    chosen = subprocess.run([sys.executable, "-c", "import sys; from lcgan_qgis.core.model.runtime import load_model; "
                             "print(load_model(sys.argv[1], 'cpu').summary)", str(model)], cwd=REPO,
                            capture_output=True, text=True, env=ENV, timeout=300)  # (the same interpreter setup)
    assert info.returncode == 0 and f"runs with:    {chosen.stdout.strip()}" in info.stdout
    refused = subprocess.run([sys.executable, "-m", "lcgan_qgis", "translate", "--model", str(model), "--input",
                              str(raster), "--output", str(tmp_path / "o.tif"), "--precision", "bf16", "--backend",
                              "onnxruntime"], cwd=REPO, capture_output=True, text=True, env=ENV, timeout=300)
    assert refused.returncode == 2 and refused.stderr.startswith("error: bf16 runs only with OpenVINO")
    assert not (tmp_path / "o.tif").exists()
