"""Export: ONNX with the contract, dynamic N/H/W, softmax in the land-cover graph, parity with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from lcgan_qgis.core.contract import Direction, ModelContract, Radiometry
from lcgan_qgis.core.resources import default_scheme_path
from lcgan_qgis.core.scheme import ClassScheme
from training.export import ExportError, export_checkpoint, export_generator
from training.models import ResnetGenerator
from training.trainer import Trainer

from .conftest import tiny_config

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
