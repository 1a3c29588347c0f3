"""The label-map networks (training/nets): shapes, anti-aliasing, per-layer noise from the input noise channels,
ONNX export parity, exact tiling with position-keyed noise (also through the engine), and real training steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from lcgan_qgis.core.model.contract import Direction, ModelContract, Radiometry
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.rasters.gdal_io import GdalReader
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.resources import default_scheme_path
from lcgan_qgis.core.run.engine import TranslateOptions, translate
from lcgan_qgis.core.run.noise import position_noise
from lcgan_qgis.core.run.settings import RunSettings, Windowing
from tests.fixtures.rasters import read_tif, write_tif
from tests.fixtures.training import tiny_config
from training.export import export_checkpoint, export_generator
from training.models import build_generator, build_networks, count_parameters, for_inference
from training.nets.discriminators import MultiScaleDiscriminator, as_scales, feature_matching
from training.nets.layers import Blur, BlurUpsample, NoiseInjection
from training.nets.spade import SpadeGenerator
from training.nets.unet import UnetGenerator
from training.trainer import Trainer

SCHEME = ClassScheme.load(default_scheme_path())
RADIOMETRY = Radiometry("fixed", (7000.0, 7500.0, 8000.0), (16000.0, 14000.0, 12000.0))
NEW_RECIPE = ["model.generator=spade", "model.rgb2lc_generator=unet", "model.discriminator=multiscale",
              "model.d_sees_map=true", "loss.lambda_feature_match=10", "model.noise_channels=4",
              "model.output_filter=checkerboard_null", "data.crop_size_px=64", "optim.batch_size=2",
              "data.paired_landcover=['lc.tif']", "loss.lambda_paired_lc=20", "loss.lambda_paired_rgb=5"]


def _options(window_px: int, overlap_px: int) -> TranslateOptions:
    """Engine options with this window and overlap."""
    return TranslateOptions(settings=RunSettings(windowing=Windowing(window_px=window_px, overlap_px=overlap_px)))


def _with_statistics(net: torch.nn.Module, channels: int, seed: int = 0) -> torch.nn.Module:
    """``net`` after a few training-mode forwards (BatchNorm running statistics away from 0/1), in eval mode."""
    torch.manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(2, channels, 32, 32))
    for module in net.modules():  # noise mixes are 0 at init: give them weights, as training does
        if isinstance(module, NoiseInjection):
            torch.nn.init.normal_(module.mix.weight, 0.0, 0.3)
    return for_inference(net)


def test_shapes_sizes_and_names() -> None:
    x = torch.randn(2, 14 + 3 + 4, 48, 64)
    spade = SpadeGenerator(21, 3, ngf=8, n_blocks=2, noise_channels=4, output_filter="checkerboard_null")
    out = spade(x)
    assert out.shape == (2, 3, 48, 64) and out.abs().max() <= 1
    logits = UnetGenerator(3, 14, ngf=8, n_blocks=2)(torch.randn(2, 3, 48, 64))
    assert logits.shape == (2, 14, 48, 64) and logits.abs().max() > 0
    scales = MultiScaleDiscriminator(3 + 14, ndf=8, patch="16")(torch.randn(2, 17, 128, 128))
    assert [s[-1].shape for s in scales] == [(2, 1, 8, 8), (2, 1, 4, 4)] and len(scales[0]) == 5
    assert feature_matching(scales, scales) == 0 and as_scales(torch.zeros(1, 1, 2, 2))[0][0].shape == (1, 1, 2, 2)
    # the compact CPU sizes (docs/recipe.md)
    assert count_parameters(build_generator("spade", 18, 3, ngf=32, n_blocks=6, noise_channels=4)) == \
        pytest.approx(2.95e6, rel=0.01)
    assert count_parameters(build_generator("unet", 3, 14, ngf=32, n_blocks=6, final="logits")) == \
        pytest.approx(2.08e6, rel=0.01)
    with pytest.raises(ValueError, match="spade generator paints imagery"):
        build_generator("spade", 3, 14, final="logits")
    with pytest.raises(ValueError, match="choose one of"):
        build_generator("oasis", 3, 14)
    nets = build_networks(tiny_config(*NEW_RECIPE), 14, 3)
    assert isinstance(nets["g_lc2rgb"], SpadeGenerator) and isinstance(nets["g_rgb2lc"], UnetGenerator)
    assert nets["d_rgb"].nets[0].stages[0][0].in_channels == 3 + 14  # D_rgb sees the map


def test_blur_upsample_has_no_period_two_and_noise_starts_at_zero() -> None:
    """The footprint of one input pixel after the upsampling has no period-2 component in rows, columns or the
    diagonal, and passes 1/10 of the near-Nyquist frequency 3/8 cycle per pixel where nearest x2 passes 0.38 (what
    leaves the spectral images of the resize that later layers turn into blocks); a constant stays constant."""
    impulse = torch.zeros(1, 1, 8, 8)
    impulse[..., 4, 4] = 1
    rows, cols = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    signs = [(-1.0) ** p for p in (rows, cols, rows + cols)]
    with torch.no_grad():
        blurred = BlurUpsample(1)(impulse)[0, 0]
        nearest = torch.nn.functional.interpolate(impulse, scale_factor=2.0)[0, 0]
    assert max(abs(float((blurred * s).sum())) for s in signs) < 1e-6

    def gain(footprint: torch.Tensor) -> float:
        row = footprint.sum(0).double()
        phase = torch.exp(-1j * 0.75 * torch.pi * torch.arange(16, dtype=torch.float64))
        return float(abs((row * phase).sum()) / row.sum())

    assert gain(blurred) < 0.1 < 0.3 < gain(nearest)
    x = torch.randn(2, 3, 10, 12)
    nearest_then_blur = Blur(3)(torch.nn.functional.interpolate(x, scale_factor=2.0))
    torch.testing.assert_close(BlurUpsample(3)(x), nearest_then_blur)  # what BlurUpsample computes it as
    constant = BlurUpsample(2)(torch.ones(1, 2, 8, 8) * 3)
    torch.testing.assert_close(constant, torch.full((1, 2, 16, 16), 3.0))
    g = SpadeGenerator(18, 3, ngf=8, n_blocks=1, noise_channels=4).eval()
    mixes = [m.mix.weight for m in g.modules() if isinstance(m, NoiseInjection)]
    assert len(mixes) == 4 and all(float(w.detach().abs().max()) == 0 for w in mixes)  # StyleGAN: 0 at init


def test_per_layer_noise_comes_from_the_input_noise_channels() -> None:
    g = _with_statistics(SpadeGenerator(18, 3, ngf=8, n_blocks=2, noise_channels=4), 18)
    x = torch.zeros(1, 18, 32, 32)
    x[:, 3] = 1
    a = x.clone()
    a[:, 14:] = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        same = g(a) - g(a.clone())
        other = a.clone()
        other[:, 14:] = torch.randn(1, 4, 32, 32)
        changed = g(other) - g(a)
    assert float(same.abs().max()) == 0 and float(changed.abs().mean()) > 1e-3


@pytest.mark.parametrize("kind", ["spade", "unet"])
def test_onnx_export_parity(kind: str, tmp_path: Path) -> None:
    direction = Direction.LANDCOVER_TO_RGB if kind == "spade" else Direction.RGB_TO_LANDCOVER
    contract = ModelContract(direction, SCHEME, RADIOMETRY, tile_size_px=64, overlap_px=8, config_digest="abc",
                             noise_channels=4 if kind == "spade" else 0)
    final = "tanh" if kind == "spade" else "logits"
    net = build_generator(kind, contract.in_channels, contract.out_channels, ngf=8, n_blocks=2, final=final,
                          noise_channels=contract.noise_channels)
    net = _with_statistics(net, contract.in_channels)
    path = tmp_path / f"{kind}.onnx"
    for storage in ("fp32", "fp16"):
        assert export_generator(net, contract, path, weight_storage=storage) < (1e-4 if storage == "fp32" else 1e-2)
    x = np.random.default_rng(3).normal(size=(1, contract.in_channels, 44, 60)).astype(np.float32)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(x))
    ref = ref.softmax(1) if kind == "unet" else ref
    np.testing.assert_allclose(got, ref.numpy(), atol=1e-2)


@pytest.mark.parametrize("kind", ["spade", "unet"])
def test_a_crop_at_a_multiple_of_four_gives_the_same_interior(kind: str) -> None:
    """Pure convolutional function of the input, per-layer noise included: the model on a crop whose origin is a
    multiple of 4 (the contract's size_multiple_px) equals the model on the whole input away from the crop's
    border (the engine's tiles then agree wherever their receptive fields lie inside them)."""
    channels = 18 if kind == "spade" else 3
    net = _with_statistics(build_generator(kind, channels, 3, ngf=8, n_blocks=1, final="tanh",
                                           noise_channels=4 if kind == "spade" else 0), channels)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, channels, 160, 160)).astype(np.float32))
    if kind == "spade":
        x[:, :14] = torch.nn.functional.one_hot(torch.randint(0, 14, (1, 160, 160)), 14).permute(0, 3, 1, 2)
        x[:, 14:] = torch.from_numpy(position_noise(Window(0, 0, 160, 160), 4, seed=1))
    with torch.no_grad():
        whole = net(x)
        crop = net(x[:, :, 40:136, 28:124])  # origin (40, 28): multiples of 4
    margin = 36
    torch.testing.assert_close(crop[..., margin:-margin, margin:-margin],
                               whole[..., 40 + margin:136 - margin, 28 + margin:124 - margin], atol=1e-5, rtol=0)


def test_the_new_recipe_trains_and_exports(data_dir: Path, tmp_path: Path) -> None:
    """Real optimizer steps of the new recipe: every loss finite and logged, the generators' and the noise scales'
    weights move; the checkpoint exports with parity."""
    config = tiny_config(*NEW_RECIPE, "runtime.max_steps=3")
    trainer = Trainer(config, data_dir, tmp_path / "run")
    before = {n: {k: v.clone() for k, v in trainer.nets[n].state_dict().items()} for n in ("g_lc2rgb", "g_rgb2lc")}
    assert trainer.fit() == 3
    for name, weights in before.items():
        after = trainer.nets[name].state_dict()
        assert any(not torch.equal(weights[k], after[k]) for k in weights if k.endswith("weight"))
    mixes = [m.mix.weight for m in trainer.nets["g_lc2rgb"].modules() if isinstance(m, NoiseInjection)]
    assert all(float(w.detach().abs().max()) > 0 for w in mixes)  # the per-layer noise scales learn from 0
    header = (tmp_path / "run" / "losses.csv").read_text().splitlines()[0]
    assert "feature_match" in header
    last = (tmp_path / "run" / "losses.csv").read_text().splitlines()[-1].split(",")
    assert all(np.isfinite(float(v)) for v in last[4:])
    diffs = export_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "models")
    assert max(diffs.values()) < 1e-3


def test_the_engine_tiles_a_spade_model_with_its_position_noise(tmp_path: Path) -> None:
    """Through the engine: two tilings give the same pixels away from the windows' borders (the per-layer noise is
    derived in the graph from the position-keyed input noise), and a map of one class gets texture."""
    contract = ModelContract(Direction.LANDCOVER_TO_RGB, SCHEME, RADIOMETRY, tile_size_px=96, overlap_px=32,
                             config_digest="abc", noise_channels=4)
    net = _with_statistics(SpadeGenerator(contract.in_channels, 3, ngf=8, n_blocks=2, noise_channels=4,
                                          output_filter="checkerboard_null"), contract.in_channels)
    export_generator(net, contract, tmp_path / "spade.onnx")
    codes = np.array([11, 21, 31, 41, 42, 52, 71, 81], dtype=np.uint8)
    blocks = np.random.default_rng(0).choice(codes, (20, 22))
    raster = write_tif(tmp_path / "lc.tif", np.kron(blocks, np.ones((8, 8), np.uint8)))
    outputs = {}
    with load_model(tmp_path / "spade.onnx", "cpu") as model:
        for window_px, overlap in ((96, 32), (512, 0)):
            out = tmp_path / f"out_{window_px}.tif"
            with GdalReader(raster) as reader:
                translate(model, reader, out, _options(window_px, overlap))
            outputs[window_px] = read_tif(out).astype(int)
    diff = np.abs(outputs[96] - outputs[512])
    assert diff.shape[1:] == (160, 176)
    assert outputs[512].std() > 5  # a painting, not a constant
    assert diff.max() <= 1 and float((diff == 0).mean()) > 0.98  # measured: 99.2 % identical, the rest 1 DN
    flat = write_tif(tmp_path / "flat.tif", np.full((96, 96), 42, np.uint8))
    with load_model(tmp_path / "spade.onnx", "cpu") as model, GdalReader(flat) as reader:
        translate(model, reader, tmp_path / "flat_out.tif")
    assert read_tif(tmp_path / "flat_out.tif")[:, 8:-8, 8:-8].std() > 0  # texture from the noise


def test_the_terrain_aware_spade_recipe_trains_with_d_seeing_map_and_terrain(data_dir: Path, tmp_path: Path) -> None:
    """zion_spade_terrain.toml's design on tiny rasters: SPADE reads map + terrain, D_rgb reads image + map +
    terrain (3 + 14 + 3 channels), and the exported contract keeps the terrain channels before the noise."""
    from tests.fixtures.training import TERRAIN, write_dem

    write_dem(data_dir / "dem.tif")
    config = tiny_config(*NEW_RECIPE, *TERRAIN, "runtime.max_steps=2")
    trainer = Trainer(config, data_dir, tmp_path / "run")
    assert trainer.nets["d_rgb"].nets[0].stages[0][0].in_channels == 3 + 14 + 3
    assert trainer.nets["g_lc2rgb"].map_channels == 14 + 3
    assert trainer.fit() == 2
    export_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", tmp_path / "models")
    with load_model(tmp_path / "models" / "landcover_to_rgb.onnx", "cpu") as model:
        assert (model.contract.terrain_channels, model.contract.noise_channels) == (3, 4)
        assert model.contract.in_channels == 14 + 3 + 4
