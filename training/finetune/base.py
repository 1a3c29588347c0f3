"""The starting point of a fine-tuning run: torch generators rebuilt from an lcgan model folder's ONNX files.

The bundled models ship only as ONNX (weights stored as float16), so training reads them back instead of shipping
checkpoints: the architecture comes from the graph itself (first convolution's width = ``ngf``, 3x3 convolutions
at ``4 * ngf`` = two per residual block, ``Resize`` = resize-convolution upsampling, ``ConvTranspose`` = the
reference's, ``InstanceNormalization`` nodes = instance norm, none = BatchNorm folded into the convolutions by the
exporter, a grouped 3x3 convolution after the ``Tanh`` = the checkerboard notch) and is checked against the
contract's ``extra`` (ngf, n_blocks, upsample, norm) when it carries them. The convolutions' weights and biases are
then copied in graph order.

A folded BatchNorm cannot be unfolded: the rebuilt generator keeps its BatchNorm layers as identities (mean 0,
variance 1 - eps, scale 1, shift 0) and fine-tuning keeps them frozen (:func:`freeze_norms`), so the network is
exactly the exported function and its export folds them away again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lcgan_qgis.core.model.contract import Direction, ModelContract
from lcgan_qgis.core.model.runtime import load_model

from ..errors import TrainingError
from ..export import FILE_NAMES
from ..models import ResnetGenerator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Architecture:
    """What :class:`~training.models.ResnetGenerator` needs to rebuild a generator read from ONNX."""

    in_channels: int
    out_channels: int
    ngf: int
    n_blocks: int
    upsample: str
    norm: str
    output_filter: str

    def build(self, final: str) -> ResnetGenerator:
        return ResnetGenerator(self.in_channels, self.out_channels, self.ngf, self.n_blocks, final=final,
                               upsample=self.upsample, norm=self.norm,
                               output_filter=self.output_filter if final == "tanh" else "none")


@dataclass
class BaseGenerator:
    """A generator read back from an ONNX file, with the file's contract."""

    path: Path
    contract: ModelContract
    architecture: Architecture
    net: ResnetGenerator


def _attribute(node: object, name: str) -> object:
    import onnx

    for a in node.attribute:  # type: ignore[attr-defined]
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


def read_architecture(model: object, source: str) -> tuple[Architecture, list[tuple[np.ndarray, np.ndarray | None]]]:
    """The generator architecture of an ONNX graph (fp32 initializers) and its learned convolutions' parameters."""
    from onnx import numpy_helper

    graph = model.graph  # type: ignore[attr-defined]
    inits = {i.name: i for i in graph.initializer}
    ops = [n.op_type for n in graph.node]
    convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose") and n.input[1] in inits]
    if len(convs) < 5:
        raise TrainingError(f"{source}: {len(convs)} learned convolution(s) in the graph; this is not an lcgan "
                            "ResNet generator.")
    params = [(numpy_helper.to_array(inits[n.input[1]]).astype(np.float32),
               numpy_helper.to_array(inits[n.input[2]]).astype(np.float32) if len(n.input) > 2 and n.input[2]
               else None) for n in convs]
    first = params[0][0]
    ngf = int(first.shape[0])
    blocks = sum(1 for w, _ in params if w.shape[:2] == (4 * ngf, 4 * ngf) and w.shape[2] == 3)
    upsample = "transpose" if "ConvTranspose" in ops else None
    if upsample is None:
        modes = {_attribute(n, "mode") for n in graph.node if n.op_type == "Resize"}
        upsample = "bilinear" if b"linear" in modes else "nearest"
    norm = "instance" if "InstanceNormalization" in ops else "batch"
    notch = any(n.op_type == "Conv" and n.input[1] not in inits and _attribute(n, "group") not in (None, 1)
                for n in graph.node)
    last = params[-1][0]
    arch = Architecture(int(first.shape[1]), int(last.shape[0]), ngf,
                        blocks // 2, upsample, norm, "checkerboard_null" if notch else "none")
    expected = 3 + 2 + blocks + 1
    if blocks % 2 or len(params) != expected:
        raise TrainingError(f"{source}: {len(params)} learned convolutions with {blocks} residual 3x3 ones; an lcgan "
                            f"ResNet generator of ngf {ngf} has {expected}.")
    return arch, params


def load_base_generator(path: str | Path) -> BaseGenerator:
    """Rebuild the torch generator of one lcgan ONNX file (see the module docstring).

    Raises:
        TrainingError: not a ResNet generator, or the graph disagrees with its contract.
    """
    import onnx

    from lcgan_qgis.tooling.weight_storage import restore_fp32

    path = Path(path)
    with load_model(path, "cpu", precision="fp32", backend="onnxruntime") as model:  # checks file and contract
        contract = model.contract
    graph, _ = restore_fp32(onnx.load(str(path)))
    arch, params = read_architecture(graph, str(path))
    extra = dict(contract.extra)
    for key in ("ngf", "n_blocks", "upsample", "norm"):
        said = extra.get(key)
        found = getattr(arch, key)
        if said is not None and said != found and not (key == "norm" and arch.norm == "batch"):
            raise TrainingError(f"{path}: the contract says {key} = {said!r}, the graph has {found!r}.")
    if (arch.in_channels, arch.out_channels) != (contract.in_channels, contract.out_channels):
        raise TrainingError(f"{path}: the graph maps {arch.in_channels} -> {arch.out_channels} channels, its contract "
                            f"{contract.in_channels} -> {contract.out_channels}.")
    final = "logits" if contract.direction is Direction.RGB_TO_LANDCOVER else "tanh"
    net = arch.build(final)
    modules = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        for module, (weight, bias) in zip(modules, params, strict=True):
            if tuple(module.weight.shape) != weight.shape:
                raise TrainingError(f"{path}: a convolution of shape {weight.shape} where the architecture has "
                                    f"{tuple(module.weight.shape)}.")
            module.weight.copy_(torch.from_numpy(weight))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(bias) if bias is not None else torch.zeros_like(module.bias))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
                m.weight.fill_(1.0)
                m.bias.zero_()
    log.info("base %s: %s (ngf %d, %d blocks, %s upsampling, %s norm, filter %s), scheme '%s'", path.name,
             contract.direction.value, arch.ngf, arch.n_blocks, arch.upsample, arch.norm, arch.output_filter,
             contract.scheme.name)
    return BaseGenerator(path, contract, arch, net.eval())


def load_base_folder(folder: str | Path) -> dict[Direction, BaseGenerator]:
    """Both generators of an lcgan model folder (``rgb_to_landcover.onnx``, ``landcover_to_rgb.onnx``).

    Raises:
        TrainingError: the folder or one of the files is missing, or the two use different schemes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"--base {folder} is not a folder; give a model folder such as resources/models.")
    out = {}
    for direction, name in FILE_NAMES.items():
        path = folder / name
        if not path.is_file():
            names = ", ".join(FILE_NAMES.values())
            raise TrainingError(f"--base {folder} has no {name}; a model folder holds both generators ({names}).")
        out[direction] = load_base_generator(path)
    schemes = {d: b.contract.scheme.codes for d, b in out.items()}
    if len(set(schemes.values())) != 1:
        raise TrainingError(f"--base {folder}: the two generators know different class codes {schemes}.")
    return out


def freeze_norms(net: nn.Module) -> None:
    """Put BatchNorm layers in eval mode with frozen parameters (they are the folded identities of the base)."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
