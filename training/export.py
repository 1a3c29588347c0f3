"""Export trained generators to ONNX with the model contract, and check them against torch with onnxruntime.

Graph: input ``input`` and output ``output``, float32 NCHW with dynamic N, H, W (H, W multiples of 4), opset 17,
TorchScript-based exporter (``dynamo=False``). The land-cover model's graph ends in softmax (probabilities); the
image model's in Tanh (its input: one-hot classes, then the terrain channels of a terrain-aware run, then noise).
Metadata: ``ModelContract.to_metadata()`` (our key plus the Deepness keys). Weights: float32, or with
``weight_storage="fp16"`` stored as float16 and read through Casts to float32 (half the file; the graph's input,
output and compute stay float32: :mod:`lcgan_qgis.tooling.weight_storage`).
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from lcgan_qgis.core.model.contract import INPUT_NAME, OUTPUT_NAME, Direction, ModelContract, Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.storage.files import AtomicFile
from lcgan_qgis.tooling.weight_storage import check_storage, store_fp16

from .checkpoints import load_checkpoint
from .config import TrainConfig
from .errors import ExportError
from .models import build_networks, for_inference, rgb2lc_generator_name

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-3
#: Largest difference to torch allowed for a float16-stored file (checked after the float32 export has passed
#: :data:`PARITY_TOLERANCE`, so it bounds the rounding of the weights alone). Measured on the export's random
#: input (docs/training.md, "Export"): 3.8e-4 / 2.1e-4 (land cover -> RGB / RGB -> land cover) on the last
#: checkpoint of the zion_bundled run (step 843), 1.8e-3 / 3.7e-4 on the terrain-aware zion_terrain run's (step
#: 93), at most 2.9e-3 / 5.3e-4 on random ngf-32 generators and 4.3e-3 / 8.8e-4 on random full-size (ngf 64) ones:
#: 2.3x room.
FP16_PARITY_TOLERANCE = 1e-2
FILE_NAMES = {Direction.LANDCOVER_TO_RGB: "landcover_to_rgb.onnx", Direction.RGB_TO_LANDCOVER: "rgb_to_landcover.onnx"}


class _WithSoftmax(nn.Module):
    """Logits generator -> probabilities (what the contract promises for land-cover models)."""

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x).softmax(dim=1)


def export_generator(generator: nn.Module, contract: ModelContract, path: str | Path, opset: int = 17,
                     check_size_px: int | None = None, weight_storage: str = "fp32") -> float:
    """Write ``generator`` as ONNX with ``contract`` metadata; returns the max abs difference onnxruntime vs torch
    of the file written.

    Args:
        generator: a generator (land-cover models return logits; softmax is added to the graph here).
        contract: the model contract; its direction decides softmax and the channel counts checked.
        path: output ``.onnx`` file (written to a temporary file, then moved into place).
        opset: ONNX opset.
        check_size_px: side of the random parity-check input (default: ``min(tile_size_px, 128)``).
        weight_storage: ``"fp32"``, or ``"fp16"``: the weights stored as float16 (half the file), once the float32
            graph has passed the parity check.

    Raises:
        ExportError: wrong channel counts, parity worse than 1e-3 (float32 graph), or than
            :data:`FP16_PARITY_TOLERANCE` once the weights are stored as float16.
        OptionError: an unknown ``weight_storage`` (the message lists the choices).
    """
    check_storage(weight_storage)
    path = Path(path)
    generator = for_inference(generator.float().cpu())
    module = _WithSoftmax(generator) if contract.direction is Direction.RGB_TO_LANDCOVER else generator
    module = module.eval()
    in_ch = getattr(generator, "in_channels", contract.in_channels)
    out_ch = getattr(generator, "out_channels", contract.out_channels)
    if (in_ch, out_ch) != (contract.in_channels, contract.out_channels):
        raise ExportError(f"Generator maps {in_ch}->{out_ch} channels, the contract ({contract.direction.value}) "
                          f"needs {contract.in_channels}->{contract.out_channels}.")
    side = check_size_px or min(contract.tile_size_px, 128)
    side -= side % contract.size_multiple_px
    generator_rng = torch.Generator().manual_seed(0)
    if contract.direction is Direction.LANDCOVER_TO_RGB:
        idx = torch.randint(0, contract.num_classes, (2, side, side), generator=generator_rng)
        sample = torch.nn.functional.one_hot(idx, contract.num_classes).permute(0, 3, 1, 2).float()
        terrain = torch.rand((2, contract.terrain_channels, side, side), generator=generator_rng) * 2 - 1
        noise = torch.randn((2, contract.noise_channels, side, side), generator=generator_rng)
        sample = torch.cat([sample, terrain, noise], dim=1)
    else:
        sample = torch.rand((2, contract.in_channels, side, side), generator=generator_rng) * 2 - 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the output folder {path.parent}: {exc.strerror or exc}.") from None
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with AtomicFile(path) as tmp:  # an error, Ctrl-C or a stop signal leaves no temporary file, and no model
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (sample,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: dynamic, OUTPUT_NAME: dynamic}, opset_version=opset,
                              dynamo=False, do_constant_folding=True)
            expected = module(sample).numpy()
        model = onnx.load(str(tmp))
        for key, value in contract.to_metadata().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        model.producer_name = "lcgan"
        onnx.save(model, str(tmp))
        if not np.isfinite(expected).all():
            raise ExportError(f"{path}: the generator returns NaN or Inf for a test input (its weights are broken, "
                              "e.g. from a diverged run); not written.")
        diff = parity(tmp, sample.numpy(), expected)
        if not diff <= PARITY_TOLERANCE:  # (NaN compares false: a NaN difference is a failure too)
            raise ExportError(f"{path}: onnxruntime differs from torch by {diff:.3g} (> {PARITY_TOLERANCE}); not "
                              "written.")
        if weight_storage == "fp16":
            exact = diff
            onnx.save(store_fp16(model)[0], str(tmp))
            diff = parity(tmp, sample.numpy(), expected)
            if not diff <= FP16_PARITY_TOLERANCE:
                raise ExportError(f"{path}: with its weights stored as float16, onnxruntime differs from torch by "
                                  f"{diff:.3g} (> {FP16_PARITY_TOLERANCE}; {exact:.2g} in float32); not written. "
                                  "Export it with weight storage fp32.")
    log.info("exported %s (%s, %s weights, %.1f MB), max |onnxruntime - torch| = %.2e", path, contract.direction.value,
             weight_storage, path.stat().st_size / 1e6, diff)
    return diff


def parity(path: str | Path, sample: np.ndarray, expected: np.ndarray,
           providers: list[str] | None = None) -> float:
    """Max abs difference between onnxruntime's output for ``sample`` and ``expected``."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
    got = session.run([OUTPUT_NAME], {INPUT_NAME: sample.astype(np.float32)})[0]
    return float(np.abs(got - expected).max())


# Radiometry mode written into exported contracts. "percentile" stretches each input raster by its own 2/98 %
# percentiles, so the land-cover model reads any imagery (8-bit orthophotos, the synthetic RGB of the other model,
# other sensors) the way it saw its training data; "fixed" (the training imagery's values, e.g. Landsat digital
# numbers) is right only for imagery of the training sensor and units, and stays available per run.
EXPORT_RADIOMETRY_MODE = "percentile"


def contracts_from_checkpoint(state: dict[str, Any], model_version: str, tile_size_px: int | None = None,
                              overlap_px: int | None = None) -> dict[Direction, ModelContract]:
    """Both directions' contracts from a training checkpoint (scheme, radiometry, GSD, config digest)."""
    config = TrainConfig.from_dict(state["config"], source="checkpoint")
    saved = Radiometry.from_dict(state["radiometry"], "checkpoint")
    radiometry = dataclasses.replace(saved, mode=EXPORT_RADIOMETRY_MODE)
    tile = tile_size_px or config.data.crop_size_px
    overlap = tile // 8 if overlap_px is None else overlap_px
    common: dict[str, Any] = {
        "scheme": ClassScheme.from_dict(state["scheme"], source="checkpoint scheme"),
        "radiometry": radiometry,
        "tile_size_px": tile,
        "overlap_px": overlap,
        "gsd_m": float(state["gsd_m"]),
        "model_version": model_version,
        "config_digest": config.digest(),
        "image_bands": len(config.data.image_bands),
        "band_names": tuple(["red", "green", "blue"][: len(config.data.image_bands)]
                            if len(config.data.image_bands) <= 3 else
                            [f"band{b}" for b in config.data.image_bands]),
        "extra": {"training_step": int(state["step"]), "git_commit": str(state.get("git_commit", "")),
                  "ngf": config.model.ngf, "n_blocks": config.model.n_blocks,
                  "fake_lc_for_d": config.model.fake_lc_for_d, "norm": config.model.norm},
    }

    def design(name: str) -> dict[str, Any]:
        """Each generator's own design; spade and unet always resample with the blur (model.upsample is ResNet's)."""
        return {"generator": name, "upsample": config.model.upsample if name == "resnet" else "blur"}

    designs = {Direction.LANDCOVER_TO_RGB: design(config.model.generator),
               Direction.RGB_TO_LANDCOVER: design(rgb2lc_generator_name(config.model))}
    return {
        Direction.LANDCOVER_TO_RGB: ModelContract(Direction.LANDCOVER_TO_RGB, description=(
            "lcgan CycleGAN generator: one-hot land cover -> RGB imagery in [-1, 1]"),
            noise_channels=config.model.noise_channels, terrain=config.terrain_inputs(),
            **{**common, "extra": {**common["extra"], **designs[Direction.LANDCOVER_TO_RGB]}}),
        Direction.RGB_TO_LANDCOVER: ModelContract(Direction.RGB_TO_LANDCOVER, description=(
            "lcgan CycleGAN generator: RGB imagery -> land-cover class probabilities"),
            **{**common, "extra": {**common["extra"], **designs[Direction.RGB_TO_LANDCOVER]}}),
    }


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, model_version: str = "",
                      tile_size_px: int | None = None, overlap_px: int | None = None,
                      weight_storage: str = "fp32", output_filter: str | None = None) -> dict[str, float]:
    """Export both generators of a training checkpoint into ``out_dir`` (``weight_storage``: see
    :func:`export_generator`); returns {file name: max abs diff}.

    ``output_filter`` overrides the config's ``model.output_filter`` (a fixed filter without weights, so any
    checkpoint loads into it); None keeps the config's.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file; give a folder for the two .onnx files (it is created if needed).")
    state = load_checkpoint(checkpoint)
    config = TrainConfig.from_dict(state["config"], source=str(checkpoint))
    scheme = ClassScheme.from_dict(state["scheme"], source="checkpoint scheme")
    if output_filter is not None:
        config.model.output_filter = output_filter
        config.validate()
    nets = build_networks(config, len(scheme), len(config.data.image_bands))
    for name in ("g_lc2rgb", "g_rgb2lc"):
        weights = state["nets"].get(name) if isinstance(state["nets"], dict) else None
        if not isinstance(weights, dict):
            raise ExportError(f"{checkpoint} holds no {name} weights; it is not an lcgan training checkpoint.")
        broken = [key for key, tensor in weights.items() if isinstance(tensor, torch.Tensor)
                  and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
        if broken:
            raise ExportError(
                f"{checkpoint}: {name} has NaN or Inf weights in {len(broken)} tensor(s) ({', '.join(broken[:3])}"
                f"{', ...' if len(broken) > 3 else ''}): the run diverged before this checkpoint; not exported. Export "
                "an earlier checkpoint (e.g. checkpoints/best.pt) or train again with a lower optim.lr."
            )
        try:
            nets[name].load_state_dict(weights)
        except (KeyError, RuntimeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{checkpoint}: the {name} weights do not fit the architecture of its own config "
                              f"({detail}); not exported.") from None
    version = model_version or f"step{int(state['step'])}-{config.digest()[:8]}"
    contracts = contracts_from_checkpoint(state, version, tile_size_px, overlap_px)
    results = {}
    for direction, net in ((Direction.LANDCOVER_TO_RGB, nets["g_lc2rgb"]), (Direction.RGB_TO_LANDCOVER,
                                                                             nets["g_rgb2lc"])):
        target = Path(out_dir) / FILE_NAMES[direction]
        results[target.name] = export_generator(net, contracts[direction], target, weight_storage=weight_storage)
    return results
