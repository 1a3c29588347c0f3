"""A fixed-shape copy of an lcgan land-cover model for the Deepness QGIS plugin: ``make deepness``, or
``python -m tools.deepness_export --model resources/models/rgb_to_landcover.onnx --out dist/``.

lcgan's models take any height and width (the engine picks its windows), but Deepness reads the tile size from the
model's input shape and puts it into a spin box, so a symbolic ``height``/``width`` fails there ("Error! Failed to
load the model!"), and its segmentation check wants a square output of known size. This tool re-writes the graph's
input ``[N, C, H, W]`` and output ``[N, K, H, W]`` with H = W = the tile size (the contract's ``tile_size_px`` by
default), leaves the batch dynamic, keeps every weight, writes the keys Deepness reads as this lcgan's
``ModelContract.to_metadata`` has them (``model_type``, ``class_names``, ``resolution``, ``tile_size``,
``tiles_overlap``, ``standardization_mean``/``std``; so a model exported before a key existed gets it), checks
the result with onnx's checker, and runs one tile through both files with onnxruntime to prove they compute the
same. The copy is for Deepness only: lcgan itself refuses fixed shapes (it
tiles with its own windows) and runs the original.

Needs ``onnx`` (the repository's ``.venv``); the plugin never imports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import onnx

from lcgan_qgis.core.errors import ContractError
from lcgan_qgis.core.model.contract import INPUT_NAME, OUTPUT_NAME, Direction, ModelContract
from lcgan_qgis.core.storage.files import AtomicFile

LOG = logging.getLogger("deepness_export")
SUFFIX = ".deepness.onnx"
PARITY_ATOL = 1e-5  # same graph, same weights: only the shapes differ


def _contract(model: onnx.ModelProto, source: str) -> ModelContract:
    props = {p.key: p.value for p in model.metadata_props}
    contract = ModelContract.from_metadata(props, source)
    if contract.direction is not Direction.RGB_TO_LANDCOVER:
        raise ContractError(f"{source} is a {contract.direction.value} model; Deepness runs segmentation models, so "
                            "only rgb_to_landcover models can be exported for it.")
    return contract


def _fix(value_info: onnx.ValueInfoProto, channels: int, size_px: int) -> None:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) != 4:
        raise ContractError(f"'{value_info.name}' has {len(dims)} dimensions, lcgan models have 4 [N, C, H, W].")
    dims[0].Clear()
    dims[0].dim_param = "batch"
    for dim, value in zip(dims[1:], (channels, size_px, size_px), strict=True):
        dim.Clear()
        dim.dim_value = value


def fixed_shape(model: onnx.ModelProto, size_px: int, source: str = "model") -> onnx.ModelProto:
    """A copy of ``model`` whose input and output are ``[batch, C, size_px, size_px]``.

    Raises:
        ContractError: not an lcgan land-cover model, or ``size_px`` is not a multiple of its size multiple.
    """
    contract = _contract(model, source)
    if size_px < contract.size_multiple_px or size_px % contract.size_multiple_px:
        raise ContractError(f"The tile size {size_px} px must be a multiple of the model's size multiple "
                            f"{contract.size_multiple_px} px.")
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    del fixed.graph.value_info[:]  # intermediate shapes were inferred for dynamic H, W: let onnx infer them anew
    (inp,), (out,) = fixed.graph.input, fixed.graph.output
    if (inp.name, out.name) != (INPUT_NAME, OUTPUT_NAME):
        raise ContractError(f"{source}: expected input '{INPUT_NAME}' and output '{OUTPUT_NAME}', got "
                            f"'{inp.name}' and '{out.name}'.")
    _fix(inp, contract.in_channels, size_px)
    _fix(out, contract.out_channels, size_px)
    props = {p.key: p.value for p in fixed.metadata_props}
    props.update(contract.to_metadata())  # this lcgan's Deepness keys, also for a model exported before them
    props.update(tile_size=json.dumps(size_px), tiles_size=json.dumps(size_px))  # what the graph now takes
    onnx.helper.set_model_props(fixed, props)
    fixed = onnx.shape_inference.infer_shapes(fixed, strict_mode=True)
    onnx.checker.check_model(fixed, full_check=True)
    return fixed


def check_parity(original: Path, fixed: Path, size_px: int, channels: int) -> float:
    """Run one random tile through both files (onnxruntime, CPU); returns the largest difference.

    Raises:
        ContractError: the outputs differ by more than :data:`PARITY_ATOL`.
    """
    import onnxruntime as ort

    tile = np.random.default_rng(0).uniform(-1, 1, (1, channels, size_px, size_px)).astype(np.float32)
    outputs = []
    for path in (original, fixed):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs.append(session.run([OUTPUT_NAME], {INPUT_NAME: tile})[0])
    worst = float(np.max(np.abs(outputs[0] - outputs[1])))
    if worst > PARITY_ATOL:
        raise ContractError(f"The fixed-shape copy differs from {original} by {worst:.3g} on a test tile.")
    return worst


def export(model_path: Path, out: Path, size_px: int | None = None) -> Path:
    """Write the Deepness copy of ``model_path`` (``out``: a file, or a folder for ``<name>.deepness.onnx``)."""
    model = onnx.load(str(model_path))
    contract = _contract(model, str(model_path))
    size = size_px or contract.tile_size_px
    target = out / (model_path.name.removesuffix(".onnx") + SUFFIX) if out.is_dir() else out
    fixed = fixed_shape(model, size, str(model_path))
    with AtomicFile(target) as tmp:
        onnx.save(fixed, str(tmp))
        worst = check_parity(model_path, tmp, size, contract.in_channels)
    LOG.info("%s: %d x %d px tiles, %d classes, max difference to the original %.2g -> %s", model_path.name, size,
             size, contract.num_classes, worst, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="an lcgan rgb_to_landcover .onnx file")
    parser.add_argument("--out", type=Path, required=True, help="output file or folder")
    parser.add_argument("--tile-size", type=int, default=None, help="tile size in px (default: the model's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = export(args.model, args.out, args.tile_size)
    except (ContractError, OSError) as exc:
        print(f"deepness_export: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())

