"""Export: ONNX with the contract, dynamic N/H/W, softmax in the land-cover graph, parity with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from lcgan_qgis.core.errors import OptionError
from lcgan_qgis.core.model.contract import Direction, ModelContract, Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path
from lcgan_qgis.tooling.weight_storage import weight_storage
from tests.fixtures.training import tiny_config
from training.export import FP16_PARITY_TOLERANCE, ExportError, export_checkpoint, export_generator
from training.models import ResnetGenerator
from training.trainer import Trainer

SCHEME = ClassScheme.load(default_scheme_path())
RADIOMETRY = Radiometry("fixed", (7000.0, 7500.0, 8000.0), (16000.0, 14000.0, 12000.0))


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("direction", list(Direction))
def test_export_parity_metadata_and_dynamic_shapes(direction: Direction, tmp_path: Path) -> None:
    torch.manual_seed(0)
    contract = ModelContract(direction, SCHEME, RADIOMETRY, tile_size_px=64, overlap_px=8, config_digest="abc")
    final = "tanh" if direction is Direction.LANDCOVER_TO_RGB else "logits"
    generator = ResnetGenerator(contract.in_channels, contract.out_channels, ngf=8, n_blocks=2, final=final)
    path = tmp_path / f"{direction.value}.onnx"
    diff = export_generator(generator, contract, path)
    assert diff < 1e-3
    session = _session(path)
    meta = session.get_modelmeta().custom_metadata_map
    parsed = ModelContract.from_metadata(meta, str(path))
    assert parsed == contract
    parsed.check_graph([(i.name, i.shape) for i in session.get_inputs()],
                       [(o.name, o.shape) for o in session.get_outputs()], str(path))
    for shape in ((1, 32, 48), (3, 64, 64)):
        x = np.random.default_rng(1).uniform(-1, 1, (shape[0], contract.in_channels, *shape[1:])).astype(np.float32)
        out = session.run(["output"], {"input": x})[0]
        assert out.shape == (shape[0], contract.out_channels, *shape[1:])
        with torch.no_grad():
            ref = generator.eval()(torch.from_numpy(x))
        if direction is Direction.RGB_TO_LANDCOVER:
            ref = ref.softmax(1)
            np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)
        else:
            assert np.abs(out).max() <= 1.0
        np.testing.assert_allclose(out, ref.numpy(), atol=1e-3)


@pytest.mark.parametrize("direction", list(Direction))
def test_fp16_weight_storage_halves_the_file_within_its_parity_tolerance(direction: Direction,
                                                                         tmp_path: Path) -> None:
    torch.manual_seed(0)
    contract = ModelContract(direction, SCHEME, RADIOMETRY, tile_size_px=64, overlap_px=8, config_digest="abc")
    final = "tanh" if direction is Direction.LANDCOVER_TO_RGB else "logits"
    generator = ResnetGenerator(contract.in_channels, contract.out_channels, ngf=8, n_blocks=2, final=final)
    fp32, fp16 = tmp_path / "fp32.onnx", tmp_path / "fp16.onnx"
    exact = export_generator(generator, contract, fp32)
    half = export_generator(generator, contract, fp16, weight_storage="fp16")
    assert exact < 1e-5 and exact < half <= FP16_PARITY_TOLERANCE
    assert fp16.stat().st_size < 0.6 * fp32.stat().st_size
    assert weight_storage(onnx.load(str(fp16))) == "fp16" and weight_storage(onnx.load(str(fp32))) == "fp32"
    session = _session(fp16)
    assert ModelContract.from_metadata(session.get_modelmeta().custom_metadata_map, str(fp16)) == contract
    assert session.get_inputs()[0].type == session.get_outputs()[0].type == "tensor(float)"
    x = np.random.default_rng(2).uniform(-1, 1, (1, contract.in_channels, 48, 40)).astype(np.float32)
    with torch.no_grad():
        ref = generator.eval()(torch.from_numpy(x))
    ref = ref.softmax(1) if direction is Direction.RGB_TO_LANDCOVER else ref
    np.testing.assert_allclose(session.run(["output"], {"input": x})[0], ref.numpy(), atol=FP16_PARITY_TOLERANCE)
    with pytest.raises(OptionError, match="Unknown weight storage 'bf16'; choose one of: fp32, fp16"):
        export_generator(generator, contract, tmp_path / "bf16.onnx", weight_storage="bf16")
    assert not (tmp_path / "bf16.onnx").exists()


def test_an_fp16_export_beyond_its_tolerance_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit set below this generator's real float16 drift: the file is refused, and nothing is left."""
    import training.export

    torch.manual_seed(0)
    contract = ModelContract(Direction.LANDCOVER_TO_RGB, SCHEME, RADIOMETRY, tile_size_px=64, overlap_px=8)
    generator = ResnetGenerator(contract.in_channels, 3, ngf=8, n_blocks=2, final="tanh")
    monkeypatch.setattr(training.export, "FP16_PARITY_TOLERANCE", 1e-6)
    with pytest.raises(ExportError, match=r"with its weights stored as float16, onnxruntime differs from torch by "
                                          r".* \(> 1e-06; .* in float32\); not written"):
        export_generator(generator, contract, tmp_path / "m.onnx", weight_storage="fp16")
    assert list(tmp_path.iterdir()) == []


def test_export_rejects_a_generator_that_breaks_the_contract(tmp_path: Path) -> None:
    contract = ModelContract(Direction.LANDCOVER_TO_RGB, SCHEME, RADIOMETRY)
    with pytest.raises(ExportError, match="14->3"):
        export_generator(ResnetGenerator(3, 3, ngf=4, n_blocks=1), contract, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_export_checkpoint_carries_training_facts(data_dir: Path, tmp_path: Path) -> None:
    config = tiny_config("runtime.max_steps=1")
    trainer = Trainer(config, data_dir, tmp_path / "run")
    trainer.fit()
    results = export_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "onnx")
    assert set(results) == {"landcover_to_rgb.onnx", "rgb_to_landcover.onnx"}
    assert max(results.values()) < 1e-3
    meta = _session(tmp_path / "onnx" / "rgb_to_landcover.onnx").get_modelmeta().custom_metadata_map
    contract = ModelContract.from_metadata(meta)
    assert contract.config_digest == config.digest()
    assert contract.tile_size_px == 32 and contract.overlap_px == 4 and contract.gsd_m == 30.0
    assert contract.radiometry.low == trainer.radiometry.low
    assert contract.extra["training_step"] == 1
    assert meta["model_type"] == '"Segmentor"'  # the Deepness keys
    from training.__main__ import main

    assert main(["export", "--checkpoint", str(tmp_path / "run" / "checkpoints" / "last.pt"), "--out",
                 str(tmp_path / "fp16"), "--weight-storage", "fp16"]) == 0
    for name in results:
        half = tmp_path / "fp16" / name
        assert weight_storage(onnx.load(str(half))) == "fp16"
        assert half.stat().st_size < (tmp_path / "onnx" / name).stat().st_size  # (a tiny net: small tensors stay)


def test_docs_training_md_documents_every_export_option() -> None:
    import argparse

    from training.__main__ import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    options = [o for action in sub.choices["export"]._actions for o in action.option_strings if o.startswith("--")
               and o != "--help"]
    text = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text(encoding="utf-8")
    assert "--weight-storage" in options
    missing = [o for o in options if f"| `{o}` |" not in text]
    assert not missing, f"docs/training.md's export table lacks {missing}"


@pytest.mark.parametrize("upsample", ["transpose", "nearest"])
def test_int8_copy_keeps_the_first_last_and_upsampling_convolutions_in_float(upsample: str, tmp_path: Path) -> None:
    from lcgan_qgis.core.model.precision import int8_sibling
    from lcgan_qgis.tooling.quantize import quantize_model, upsampling_convs
    from tests.fixtures.rasters import write_tif

    torch.manual_seed(0)
    contract = ModelContract(Direction.RGB_TO_LANDCOVER, SCHEME, RADIOMETRY, tile_size_px=64, overlap_px=8)
    generator = ResnetGenerator(3, contract.out_channels, ngf=8, n_blocks=1, final="logits", upsample=upsample,
                                norm="batch")
    path = tmp_path / "rgb2lc.onnx"
    export_generator(generator, contract, path)
    raster = write_tif(tmp_path / "rgb.tif", np.random.default_rng(2).integers(7000, 16000, (3, 160, 160))
                       .astype(np.uint16))
    report = quantize_model(path, raster, int8_sibling(path), windows=3, window_px=64)
    float_graph, int8_graph = onnx.load(str(path)).graph, onnx.load(str(int8_sibling(path))).graph
    convs = [n for n in float_graph.node if n.op_type in ("Conv", "ConvTranspose")]
    decoder = upsampling_convs(onnx.load(str(path)))
    assert decoder == [n.name for n in convs[-3:]]  # two upsampling convolutions, then the last one
    dequantized = {n.output[0] for n in int8_graph.node if n.op_type == "DequantizeLinear"}
    quantized = {n.name for n in int8_graph.node
                 if n.op_type in ("Conv", "ConvTranspose") and n.input[1] in dequantized}
    assert quantized == {n.name for n in convs[1:-3]}  # encoder and residual blocks only
    assert (report.float_convs, report.convs) == (4, len(convs)) and "4 of" in report.summary


def test_the_quantize_command_can_put_the_upsampling_path_in_int8_too(tmp_path: Path) -> None:
    """``quantize --int8-upsampling``: only the first and the last convolutions stay in float."""
    import subprocess
    import sys

    from lcgan_qgis.core.model.precision import int8_sibling
    from tests.fixtures.rasters import write_tif

    torch.manual_seed(0)
    contract = ModelContract(Direction.RGB_TO_LANDCOVER, SCHEME, RADIOMETRY, tile_size_px=64, overlap_px=8)
    generator = ResnetGenerator(3, contract.out_channels, ngf=8, n_blocks=1, final="logits", upsample="nearest",
                                norm="batch")
    path = tmp_path / "rgb2lc.onnx"
    export_generator(generator, contract, path)
    raster = write_tif(tmp_path / "rgb.tif", np.random.default_rng(2).integers(7000, 16000, (3, 160, 160))
                       .astype(np.uint16))
    done = subprocess.run([sys.executable, "-m", "lcgan_qgis", "quantize", "--model", str(path), "--calibration",
                           str(raster), "--output", str(int8_sibling(path)), "--windows", "3", "--int8-upsampling",
                           "--no-gates"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "2 of" in done.stdout and "(first, last)" in done.stdout  # "... 2 of N kept in float (first, last)"
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type in ("Conv", "ConvTranspose")]

    def quantized() -> set[str]:
        int8_graph = onnx.load(str(int8_sibling(path))).graph
        dequantized = {n.output[0] for n in int8_graph.node if n.op_type == "DequantizeLinear"}
        return {n.name for n in int8_graph.node if n.op_type in ("Conv", "ConvTranspose") and n.input[1] in dequantized}

    assert quantized() == {n.name for n in convs[1:-1]}
    # --int8-first: the first convolution too (the bundled painters' copies: their input is a one-hot map + noise)
    done = subprocess.run([sys.executable, "-m", "lcgan_qgis", "quantize", "--model", str(path), "--calibration",
                           str(raster), "--output", str(int8_sibling(path)), "--windows", "3", "--int8-upsampling",
                           "--int8-first", "--no-gates"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "1 of" in done.stdout and "kept in float (last)" in done.stdout
    assert quantized() == {n.name for n in convs[:-1]}
    # --int8-pads: the padding between int8 convolutions reads int8 values too; the one feeding the float last
    # convolution stays float, so its input is not rounded
    done = subprocess.run([sys.executable, "-m", "lcgan_qgis", "quantize", "--model", str(path), "--calibration",
                           str(raster), "--output", str(int8_sibling(path)), "--windows", "3", "--int8-upsampling",
                           "--int8-first", "--int8-pads", "--no-gates"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "1 of" in done.stdout and "padding in int8" in done.stdout
    source = onnx.load(str(path)).graph
    pads = {n.name for n in source.node if n.op_type == "Pad"}
    producer = {out: n for n in source.node for out in n.output}
    last_input = producer[convs[-1].input[0]]
    assert last_input.op_type == "Pad" and pads - {last_input.name}  # (the generator pads before its last conv)
    int8_graph = onnx.load(str(int8_sibling(path))).graph
    dequantized = {n.output[0] for n in int8_graph.node if n.op_type == "DequantizeLinear"}
    int8_pads = {n.name for n in int8_graph.node if n.op_type == "Pad" and n.input[0] in dequantized}
    assert int8_pads == pads - {last_input.name}
