"""Fine-tuning from second-generation exports (issue 22: the SPADE land cover -> RGB generator and the U-Net RGB ->
land cover one): the ONNX read back into torch (parity), a class-scheme change that keeps every class-independent
layer bit for bit, one clear error naming the file, and real optimizer steps from such an export, exported back
and run by the plugin's runtime. The exports are made here from small networks (ngf 8, one block) whose BatchNorm
statistics and noise mixes are not the identity, with the bundled models' contracts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.resources import resources_dir
from lcgan_qgis.core.run.job import TranslationRequest, run_translation
from lcgan_qgis.core.run.settings import Execution, RunSettings
from tests.fixtures.rasters import write_tif
from training.errors import TrainingError
from training.export import FILE_NAMES, export_generator
from training.finetune.base import class_layers, load_base_folder, load_base_generator, retarget, shared_classes
from training.finetune.outputs import write_outputs
from training.finetune.run import FineTune, Settings
from training.nets.layers import NoiseInjection
from training.nets.spade import SpadeGenerator
from training.nets.unet import UnetGenerator

BUNDLED = resources_dir() / "models"
STEP500 = Path.home() / ".cache" / "lcgan" / "runs" / "zion_spade" / "exports" / "step500" / "export_fp16"
COLOURS = {42: (7000, 9000, 7500), 52: (9000, 8000, 8000), 31: (14000, 12000, 11000)}  # Landsat-like DNs


def _not_identity(net: nn.Module) -> nn.Module:
    """Running statistics and noise mixes away from their initial values (so the read-back is really tested)."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if isinstance(m, NoiseInjection):
                m.mix.weight.copy_(torch.randn(m.mix.weight.shape, generator=g) * 0.1)
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(5.0)
    return net.eval()


def _export(folder: Path, nets: dict[Direction, nn.Module], extra: dict[Direction, dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for direction, name in FILE_NAMES.items():
        with load_model(BUNDLED / name, "cpu", precision="fp32", backend="onnxruntime") as model:
            contract = dataclasses.replace(model.contract, model_version="tiny-second-gen",
                                           extra={"ngf": 8, "n_blocks": 1, "norm": "batch", **extra[direction]})
        export_generator(nets[direction], contract, folder / name, weight_storage="fp16")
    return folder


def _tiny_nets() -> dict[Direction, nn.Module]:
    torch.manual_seed(0)
    return {Direction.LANDCOVER_TO_RGB: _not_identity(SpadeGenerator(18, 3, 8, 1, noise_channels=4,
                                                                     output_filter="checkerboard_null")),
            Direction.RGB_TO_LANDCOVER: _not_identity(UnetGenerator(3, 14, 8, 1, final="logits"))}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("second_gen"), _tiny_nets(), {d: {} for d in Direction})


def _input(base: object, side: int = 64) -> np.ndarray:
    contract = base.contract  # type: ignore[attr-defined]
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (1, contract.in_channels, side, side)).astype(np.float32)
    if contract.direction is Direction.LANDCOVER_TO_RGB:
        k = contract.num_classes
        x[0, :k] = np.eye(k, dtype=np.float32)[rng.integers(0, k, (side, side))].transpose(2, 0, 1)
        x[0, k:] = rng.standard_normal((contract.noise_channels, side, side))
    return x


def _parity(folder: Path) -> dict[Direction, float]:
    out = {}
    for direction, base in load_base_folder(folder).items():
        x = _input(base)
        with load_model(base.path, "cpu", precision="fp32", backend="onnxruntime") as model, torch.no_grad():
            got = base.net(torch.from_numpy(x))
            got = got.softmax(1) if direction is Direction.RGB_TO_LANDCOVER else got
            expected = model.run(x)
            assert float(np.abs(expected).max()) > 0.05  # not a trivially flat output
            out[direction] = float(np.abs(got.numpy() - expected).max())
    return out


def test_spade_and_unet_exports_read_back_into_torch_exactly(tiny: Path) -> None:
    bases = load_base_folder(tiny)
    spade, unet = bases[Direction.LANDCOVER_TO_RGB].architecture, bases[Direction.RGB_TO_LANDCOVER].architecture
    assert (spade.generator, spade.ngf, spade.n_blocks, spade.noise_channels, spade.output_filter) == (
        "spade", 8, 1, 4, "checkerboard_null")
    assert (unet.generator, unet.ngf, unet.n_blocks, unet.in_channels, unet.out_channels) == ("unet", 8, 1, 3, 14)
    assert all(diff < 1e-5 for diff in _parity(tiny).values())


@pytest.mark.skipif(not STEP500.is_dir(), reason=f"the step-500 export of the zion_spade run is absent ({STEP500})")
def test_the_step500_spade_unet_export_reads_back_exactly() -> None:
    assert all(diff < 1e-5 for diff in _parity(STEP500).values())


def test_a_scheme_change_keeps_every_class_independent_layer(tiny: Path) -> None:
    bases = load_base_folder(tiny)
    old_codes = bases[Direction.RGB_TO_LANDCOVER].contract.scheme.codes
    new_codes = (42, 52, 31, 99)  # three shared classes and a new one
    for direction, final in ((Direction.LANDCOVER_TO_RGB, "tanh"), (Direction.RGB_TO_LANDCOVER, "logits")):
        base = bases[direction]
        layers = class_layers(base.net, final)
        if final == "tanh":  # every convolution that reads the map is listed
            reads_map = {n for n, m in base.net.named_modules() if isinstance(m, nn.Conv2d)
                         and m.weight.shape[1] in (len(old_codes), base.contract.in_channels)}
            assert {n for n, _ in layers} == reads_map == {"head.1", "features.0.conv.1", "features.1.conv.1",
                                                           "features.2.conv.1"}
        else:
            assert layers == [("tail.1", 0)]
        same, _ = retarget(base.net, base.architecture, final, len(old_codes), len(old_codes),
                           shared_classes(old_codes, old_codes))
        x = torch.from_numpy(_input(base))
        with torch.no_grad():
            assert torch.equal(same(x), base.net(x))
        net, arch = retarget(base.net, base.architecture, final, len(old_codes), len(new_codes),
                             shared_classes(old_codes, new_codes))
        assert arch.generator == base.architecture.generator
        old, new = base.net.state_dict(), net.state_dict()
        names = {n for n, _ in layers}
        kept = [k for k in old if k.rsplit(".", 1)[0] not in names]
        assert len(kept) > 10 and all(torch.equal(old[k], new[k]) for k in kept)
        for name, axis in layers:
            w_old, w_new = old[name + ".weight"], new[name + ".weight"]
            assert w_new.shape[axis] == w_old.shape[axis] - len(old_codes) + len(new_codes)
            for i, code in enumerate(new_codes[:3]):
                assert torch.equal(w_new.select(axis, i), w_old.select(axis, old_codes.index(code)))
            assert not any(torch.equal(w_new.select(axis, 3), w_old.select(axis, j)) for j in range(len(old_codes)))
            if axis == 1:
                assert torch.equal(w_new[:, 4:], w_old[:, len(old_codes):])  # noise columns
                assert torch.equal(new[name + ".bias"], old[name + ".bias"])
        k_in = arch.in_channels if final == "tanh" else 3
        with torch.no_grad():
            y = net(torch.zeros(1, k_in, 32, 32))
        assert y.shape[1] == (3 if final == "tanh" else len(new_codes)) and torch.isfinite(y).all()


def test_a_file_that_is_not_what_its_contract_says_gets_one_error_naming_it(tmp_path: Path) -> None:
    nets = _tiny_nets()
    wrong = _export(tmp_path / "wrong", nets, {Direction.LANDCOVER_TO_RGB: {"ngf": 16},
                                                Direction.RGB_TO_LANDCOVER: {"generator": "spade"}})
    for name, message in (("landcover_to_rgb.onnx", "the contract says ngf = 16, the graph has 8"),
                          ("rgb_to_landcover.onnx", "")):
        with pytest.raises(TrainingError, match=str(wrong / name)) as caught:
            load_base_generator(wrong / name)
        assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("region_second_gen")
    n = 96
    codes = np.full((n, n), 52, dtype=np.uint8)
    codes[:, n // 3: 2 * n // 3] = 42
    codes[n // 2:, 2 * n // 3:] = 31
    rng = np.random.default_rng(0)
    image = np.stack([np.vectorize(lambda c, b=b: COLOURS[int(c)][b])(codes) for b in range(3)]).astype(np.float32)
    image += rng.normal(0, 300, image.shape)
    return {"image": write_tif(folder / "image.tif", image.astype(np.uint16), nodata=0),
            "lc": write_tif(folder / "lc.tif", codes, nodata=255)}


def test_finetuning_steps_from_a_spade_unet_export_export_back_and_run(tiny: Path, region: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "model"
    ft = FineTune(Settings(base=str(tiny), imagery=[str(region["image"])], out=str(out),
                           landcover=[str(region["lc"])], steps=2, crop=32, batch=2, threads=1, int8=False,
                           val_every_s=1e9, lr=1e-3))
    assert {k: a.generator for k, a in ft.archs.items()} == {"g_rgb2lc": "unet", "g_lc2rgb": "spade"}
    before = {name: {k: v.clone() for k, v in net.state_dict().items()} for name, net in ft.nets.items()}
    ft.train()
    assert ft.step == 2
    for name, net in ft.nets.items():
        after = net.state_dict()
        assert any(not torch.equal(before[name][k], after[k]) for k in after if k.endswith("weight")), name
    write_outputs(ft, 1.0)
    again = load_base_folder(out)  # the fine-tuned export reads back as the same designs, exactly
    assert {d: b.architecture.generator for d, b in again.items()} == {Direction.RGB_TO_LANDCOVER: "unet",
                                                                       Direction.LANDCOVER_TO_RGB: "spade"}
    assert all(diff < 1e-5 for diff in _parity(out).values())
    result = tmp_path / "lc.tif"
    with load_model(out / "rgb_to_landcover.onnx", "cpu", precision="fp32") as model, \
            GdalReader(region["image"]) as reader:
        request = TranslationRequest(str(result), settings=RunSettings(execution=Execution(threads=1)),
                                     input_path=str(region["image"]))
        run_translation(request, reader, log=lambda _m: None, model=model)
    from osgeo import gdal

    assert set(np.unique(gdal.Open(str(result)).ReadAsArray()).tolist()) <= set(model.contract.scheme.codes) | {255}
    with load_model(out / "landcover_to_rgb.onnx", "cpu", precision="fp32") as model:
        y = model.run(_input(again[Direction.LANDCOVER_TO_RGB], 32))
        assert y.shape == (1, 3, 32, 32) and np.isfinite(y).all()


def test_a_resnet_with_blurred_upsampling_reads_back_as_such(tmp_path: Path) -> None:
    from training.models import ResnetGenerator

    torch.manual_seed(0)
    net = _not_identity(ResnetGenerator(3, 14, 8, 1, final="logits", upsample="blur", norm="batch"))
    nets = {Direction.RGB_TO_LANDCOVER: net, Direction.LANDCOVER_TO_RGB: _tiny_nets()[Direction.LANDCOVER_TO_RGB]}
    folder = _export(tmp_path / "blur", nets, {Direction.RGB_TO_LANDCOVER: {"upsample": "blur"},
                                               Direction.LANDCOVER_TO_RGB: {}})
    base = load_base_generator(folder / "rgb_to_landcover.onnx")
    assert (base.architecture.generator, base.architecture.upsample) == ("resnet", "blur")
    assert _parity(folder)[Direction.RGB_TO_LANDCOVER] < 1e-5
