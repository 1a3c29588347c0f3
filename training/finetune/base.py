"""The starting point of a fine-tuning run: torch generators rebuilt from an lcgan model folder's ONNX files.

The bundled models ship only as ONNX (weights stored as float16), so training reads them back instead of shipping
checkpoints. Three designs are recognised (``training.models.build_generator``): the ResNet generator and the
second generation's SPADE and U-Net (``training/nets``). The design is the contract's ``extra["generator"]`` when
it says so, else it is read from the learned convolutions (initialisers) in graph order: SPADE starts with its map
convolutions (3x3 at ``SPADE_HIDDEN`` filters) before its 7x7 head; ResNet and U-Net start with the 7x7 one (width
= ``ngf``) and differ by count (``6 + 2 * n_blocks`` against ``8 + 2 * n_blocks``). For the ResNet, ``Resize`` =
resize-convolution upsampling, ``ConvTranspose`` = the reference's, ``InstanceNormalization`` nodes = instance
norm; a grouped 3x3 convolution without learned weights after the last learned one = the checkerboard notch.
Sizes are checked against the contract's ``extra`` (ngf, n_blocks; upsample and norm for the ResNet).

The parameters are then copied: convolutions in the order they run (the graph's order), BatchNorm layers the graph
kept (SPADE's parameter-free norms) from their running statistics by name. A BatchNorm folded into its convolution
by the exporter cannot be unfolded: the rebuilt generator keeps it as an identity (mean 0, variance 1 - eps, scale
1, shift 0). Fine-tuning keeps every BatchNorm frozen (:func:`freeze_norms`), so the network is exactly the
exported function and its export folds the identities away again.

A class-scheme change (:func:`retarget`) rebuilds the network for the new class count and copies every layer that
does not depend on the classes; the class-dependent ones (:func:`class_layers`: the output layer of a network that
reads imagery, the first convolution of one that paints it, and for SPADE its 7x7 head and the first convolution
of every resolution's shared map MLP) start freshly initialised and are filled class by class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lcgan_qgis.core.model.contract import Direction, ModelContract
from lcgan_qgis.core.model.runtime import load_model

from ..errors import TrainingError
from ..export import FILE_NAMES
from ..models import ResnetGenerator
from ..nets.spade import SPADE_HIDDEN, SpadeGenerator
from ..nets.unet import UnetGenerator

log = logging.getLogger(__name__)

DESIGNS = ("resnet", "spade", "unet")
Params = list[tuple[np.ndarray, np.ndarray | None]]
# fills a class-dependent layer of the new network: (old weight, old bias, new weight, new bias, class axis)
Carry = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None, int], None]


@dataclass(frozen=True)
class Architecture:
    """What rebuilds a generator read from ONNX (``generator``: one of :data:`DESIGNS`)."""

    in_channels: int
    out_channels: int
    ngf: int
    n_blocks: int
    upsample: str
    norm: str
    output_filter: str
    generator: str = "resnet"
    noise_channels: int = 0  # spade: the last input channels, the source of its per-layer noise

    def __post_init__(self) -> None:
        if self.generator not in DESIGNS:
            raise ValueError(f"Unknown generator {self.generator!r}; choose one of {DESIGNS}.")

    def build(self, final: str) -> nn.Module:
        """A freshly initialised network of this architecture (``final``: ``"tanh"`` or ``"logits"``)."""
        out_filter = self.output_filter if final == "tanh" else "none"
        if self.generator == "spade":
            return SpadeGenerator(self.in_channels, self.out_channels, self.ngf, self.n_blocks, final=final,
                                  noise_channels=self.noise_channels, output_filter=out_filter)
        if self.generator == "unet":
            return UnetGenerator(self.in_channels, self.out_channels, self.ngf, self.n_blocks, final=final,
                                 output_filter=out_filter)
        return ResnetGenerator(self.in_channels, self.out_channels, self.ngf, self.n_blocks, final=final,
                               upsample=self.upsample, norm=self.norm, output_filter=out_filter)

    def for_classes(self, k_old: int, k_new: int, final: str) -> Architecture:
        """The same design for ``k_new`` classes instead of ``k_old`` (outputs when ``final`` is logits, else the
        class input channels; the notch stays with image generators only)."""
        if final == "logits":
            return replace(self, out_channels=k_new, output_filter="none")
        return replace(self, in_channels=self.in_channels - k_old + k_new)


@dataclass
class BaseGenerator:
    """A generator read back from an ONNX file, with the file's contract."""

    path: Path
    contract: ModelContract
    architecture: Architecture
    net: nn.Module


def _attribute(node: object, name: str) -> object:
    import onnx

    found = [a for a in node.attribute if a.name == name]  # type: ignore[attr-defined]
    return onnx.helper.get_attribute_value(found[0]) if found else None


def initialisers(model: object) -> dict[str, object]:
    """The graph's initialisers by name, with the names the exporter aliased to one of them through ``Identity``
    nodes (it stores equal tensors once, e.g. the zero biases of several layers)."""
    graph = model.graph  # type: ignore[attr-defined]
    inits: dict[str, object] = {i.name: i for i in graph.initializer}
    aliases = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity"}
    for name in aliases:
        source = name
        while source in aliases and source not in inits:
            source = aliases[source]
        if source in inits:
            inits[name] = inits[source]
    return inits


def learned_convolutions(model: object) -> Params:
    """Weights and biases (float32) of the graph's convolutions whose weights are initialisers, in graph order."""
    from onnx import numpy_helper

    graph = model.graph  # type: ignore[attr-defined]
    inits = initialisers(model)
    convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose") and n.input[1] in inits]
    return [(numpy_helper.to_array(inits[n.input[1]]).astype(np.float32),  # type: ignore[arg-type]
             numpy_helper.to_array(inits[n.input[2]]).astype(np.float32)  # type: ignore[arg-type]
             if len(n.input) > 2 and n.input[2] else None) for n in convs]


def _has_notch(model: object) -> bool:
    """A grouped convolution with fixed weights after the last learned convolution (the checkerboard notch)."""
    graph = model.graph  # type: ignore[attr-defined]
    inits = initialisers(model)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    learned = [i for i, n in enumerate(convs) if n.input[1] in inits]
    return bool(learned) and any(_attribute(n, "group") not in (None, 1) for n in convs[learned[-1] + 1:])


def _design(params: Params, said: object, source: str) -> str:
    if said in DESIGNS:
        return str(said)
    first = params[0][0]
    if first.shape[2:] == (3, 3) and first.shape[0] == SPADE_HIDDEN:
        return "spade"
    ngf = int(first.shape[0])
    blocks = sum(1 for w, _ in params if w.shape[:2] == (4 * ngf, 4 * ngf) and w.shape[2] == 3)
    for name, expected in (("resnet", 6 + blocks), ("unet", 8 + blocks)):
        if len(params) == expected and not blocks % 2:
            return name
    raise TrainingError(f"{source}: {len(params)} learned convolutions ({blocks} residual 3x3 ones at ngf {ngf}); "
                        "this is not an lcgan ResNet, SPADE or U-Net generator.")


def read_architecture(model: object, source: str, said: object = None) -> tuple[Architecture, Params]:
    """The generator architecture of an ONNX graph (fp32 initialisers) and its learned convolutions' parameters
    in graph order (``said``: the design the contract names, if any).

    Raises:
        TrainingError: too few convolutions, or a layout none of the designs has (naming ``source``).
    """
    graph = model.graph  # type: ignore[attr-defined]
    params = learned_convolutions(model)
    if len(params) < 5:
        raise TrainingError(f"{source}: {len(params)} learned convolution(s) in the graph; this is not an lcgan "
                            "generator.")
    design = _design(params, said, source)
    ops = {n.op_type for n in graph.node}
    notch = "checkerboard_null" if _has_notch(model) else "none"
    if design == "spade":
        head = next((w for w, _ in params if w.shape[2:] == (7, 7)), None)
        if head is None:
            raise TrainingError(f"{source}: a SPADE generator without its 7x7 head convolution.")
        ngf, map_channels = int(head.shape[0]), int(params[0][0].shape[1])
        noise = int(head.shape[1]) - map_channels
        # 3 map convolutions, 3 in the head, per block 2 + 4 modulations (+ 2 noise mixes), per x2 stage 1 + 2
        # (+ 1), the tail
        fixed, per_block = 7 + 2 * (3 + bool(noise)), 6 + 2 * bool(noise)
        blocks, rest = divmod(len(params) - fixed, per_block)
        if rest or blocks < 0:
            raise TrainingError(f"{source}: {len(params)} learned convolutions; a SPADE generator with {noise} noise "
                                f"channels has {fixed} + {per_block} per block.")
        return Architecture(int(head.shape[1]), int(params[-1][0].shape[0]), ngf, blocks, "blur", "batch", notch,
                            "spade", noise), params
    first, last = params[0][0], params[-1][0]
    ngf = int(first.shape[0])
    blocks = sum(1 for w, _ in params if w.shape[:2] == (4 * ngf, 4 * ngf) and w.shape[2] == 3)
    if design == "unet":
        return Architecture(int(first.shape[1]), int(last.shape[0]), ngf, blocks // 2, "blur", "batch", notch,
                            "unet"), params
    upsample = "transpose" if "ConvTranspose" in ops else None
    if upsample is None:
        modes = {_attribute(n, "mode") for n in graph.node if n.op_type == "Resize"}
        upsample = "bilinear" if b"linear" in modes else "nearest"
    norm = "instance" if "InstanceNormalization" in ops else "batch"
    expected = 3 + 2 + blocks + 1
    if blocks % 2 or len(params) != expected:
        raise TrainingError(f"{source}: {len(params)} learned convolutions with {blocks} residual 3x3 ones; an lcgan "
                            f"ResNet generator of ngf {ngf} has {expected}.")
    return Architecture(int(first.shape[1]), int(last.shape[0]), ngf, blocks // 2, upsample, norm, notch), params


def _conv_order(net: nn.Module, in_channels: int) -> list[nn.Module]:
    """The network's learned convolutions in the order a forward pass runs them (the exported graph's order)."""
    order: list[nn.Module] = []
    handles = [m.register_forward_hook(lambda m, _i, _o: order.append(m)) for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, in_channels, 16, 16))
    finally:
        for h in handles:
            h.remove()
    return order


def _tensor(init: object) -> torch.Tensor:
    from onnx import numpy_helper

    return torch.from_numpy(numpy_helper.to_array(init).astype(np.float32))


def _copy_parameters(net: nn.Module, arch: Architecture, params: Params, model: object, source: str) -> None:
    """Convolutions in running order; BatchNorm layers kept by the graph from their statistics; the rest identity."""
    modules = _conv_order(net, arch.in_channels)
    if len(modules) != len(params):
        raise TrainingError(f"{source}: {len(params)} learned convolutions where a {arch.generator} generator of "
                            f"ngf {arch.ngf} with {arch.n_blocks} blocks has {len(modules)}.")
    graph = model.graph  # type: ignore[attr-defined]
    inits = initialisers(model)
    kept = sum(1 for n in graph.node if n.op_type == "BatchNormalization")
    found = 0
    with torch.no_grad():
        for module, (weight, bias) in zip(modules, params, strict=True):
            if tuple(module.weight.shape) != weight.shape:
                raise TrainingError(f"{source}: a convolution of shape {weight.shape} where the {arch.generator} "
                                    f"architecture has {tuple(module.weight.shape)}.")
            module.weight.copy_(torch.from_numpy(weight))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(bias) if bias is not None else torch.zeros_like(module.bias))
        for name, m in net.named_modules():
            if not isinstance(m, nn.BatchNorm2d):
                continue
            stats = [k for k in inits if k == f"{name}.running_mean" or k.endswith(f".{name}.running_mean")]
            if stats:
                found += 1
                prefix = stats[0][: -len("running_mean")]
                m.running_mean.copy_(_tensor(inits[prefix + "running_mean"]))
                m.running_var.copy_(_tensor(inits[prefix + "running_var"]))
            else:
                prefix = ""
                m.running_mean.zero_()
                m.running_var.fill_(1.0 - m.eps)
            if m.affine:
                scale, shift = (inits.get(prefix + k) if stats else None for k in ("weight", "bias"))
                m.weight.copy_(_tensor(scale) if scale else torch.ones_like(m.weight))
                m.bias.copy_(_tensor(shift) if shift else torch.zeros_like(m.bias))
    if found != kept:
        raise TrainingError(f"{source}: the graph keeps {kept} BatchNormalization node(s), {found} of them match the "
                            f"{arch.generator} generator's layers by name.")


def load_base_generator(path: str | Path) -> BaseGenerator:
    """Rebuild the torch generator of one lcgan ONNX file (see the module docstring).

    Raises:
        TrainingError: not an lcgan generator, or the graph disagrees with its contract (naming the file).
    """
    import onnx

    from lcgan_qgis.tooling.weight_storage import restore_fp32

    path = Path(path)
    with load_model(path, "cpu", precision="fp32", backend="onnxruntime") as model:  # checks file and contract
        contract = model.contract
    graph, _ = restore_fp32(onnx.load(str(path)))
    extra = dict(contract.extra)
    arch, params = read_architecture(graph, str(path), extra.get("generator"))
    if arch.upsample == "bilinear" and extra.get("upsample") == "blur":  # the same function (BlurUpsample)
        arch = replace(arch, upsample="blur")
    for key in ("ngf", "n_blocks", "upsample", "norm") if arch.generator == "resnet" else ("ngf", "n_blocks"):
        said, found = extra.get(key), getattr(arch, key)
        if said is not None and said != found and not (key == "norm" and arch.norm == "batch"):
            raise TrainingError(f"{path}: the contract says {key} = {said!r}, the graph has {found!r}.")
    if (arch.in_channels, arch.out_channels) != (contract.in_channels, contract.out_channels):
        raise TrainingError(f"{path}: the graph maps {arch.in_channels} -> {arch.out_channels} channels, its contract "
                            f"{contract.in_channels} -> {contract.out_channels}.")
    if arch.generator == "spade" and arch.noise_channels != contract.noise_channels:
        maps = arch.in_channels - arch.noise_channels
        raise TrainingError(f"{path}: the SPADE generator's map convolutions read {maps} channels, so "
                            f"{arch.noise_channels} noise channels; its contract has {contract.noise_channels}.")
    final = "logits" if contract.direction is Direction.RGB_TO_LANDCOVER else "tanh"
    try:
        net = arch.build(final)
    except ValueError as exc:
        raise TrainingError(f"{path}: {exc}") from exc
    _copy_parameters(net, arch, params, graph, str(path))
    log.info("base %s: %s, %s generator (ngf %d, %d blocks, %s upsampling, %s norm, filter %s), scheme '%s'",
             path.name, contract.direction.value, arch.generator, arch.ngf, arch.n_blocks, arch.upsample, arch.norm,
             arch.output_filter, contract.scheme.name)
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


def encoder_layers(net: nn.Module) -> list[nn.Module]:
    """The first convolution and the two downsampling stages (what ``--freeze-encoder`` freezes)."""
    if isinstance(net, SpadeGenerator):
        return [net.head]
    if isinstance(net, UnetGenerator):
        return [net.enc1, net.enc2, *list(net.enc3)[:4]]
    return list(net.model)[:10]  # type: ignore[arg-type]


def class_layers(net: nn.Module, final: str) -> list[tuple[str, int]]:
    """The convolutions whose weights depend on the classes, by name, with the class axis (0: output rows of a
    network that reads imagery, ``final="logits"``; 1: input columns of one that paints it)."""
    convs = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    if final == "logits":
        return [(convs[-1], 0)]
    if isinstance(net, SpadeGenerator):
        return [("head.1", 1)] + [(f"features.{i}.conv.1", 1) for i in range(len(net.features))]
    return [(convs[0], 1)]


def retarget(net: nn.Module, arch: Architecture, final: str, k_old: int, k_new: int,
             carry: Carry) -> tuple[nn.Module, Architecture]:
    """``net`` rebuilt for ``k_new`` classes: every tensor of a class-independent layer copied bit for bit, the
    class-dependent layers (:func:`class_layers`) freshly initialised, then filled by ``carry`` (old weight, old
    bias, new weight, new bias, class axis), which edits the new tensors in place. Returns the network (eval
    mode) and its architecture."""
    new_arch = arch.for_classes(k_old, k_new, final)
    fresh = new_arch.build(final)
    layers = class_layers(fresh, final)
    names = {n for n, _ in layers}
    old_state, new_state = net.state_dict(), fresh.state_dict()
    for key, value in old_state.items():
        if key.rsplit(".", 1)[0] not in names:
            new_state[key] = value.clone()
    with torch.no_grad():
        for name, axis in layers:
            carry(old_state[name + ".weight"], old_state.get(name + ".bias"), new_state[name + ".weight"],
                  new_state.get(name + ".bias"), axis)
    fresh.load_state_dict(new_state)
    return fresh.eval(), new_arch


def shared_classes(old_codes: Sequence[int], new_codes: Sequence[int]) -> Carry:
    """The plain rule: a class both schemes have keeps its row / column; other classes keep their fresh
    initialisation; channels after the classes (terrain, noise) keep theirs; biases of input layers are kept."""
    pairs = [(old_codes.index(c), i) for i, c in enumerate(new_codes) if c in old_codes]
    k_old, k_new = len(old_codes), len(new_codes)

    def carry(w_old: torch.Tensor, b_old: torch.Tensor | None, w_new: torch.Tensor, b_new: torch.Tensor | None,
              axis: int) -> None:
        for o, n in pairs:
            w_new.select(axis, n).copy_(w_old.select(axis, o))
            if axis == 0 and b_new is not None and b_old is not None:
                b_new[n] = b_old[o]
        if axis == 1:
            w_new[:, k_new:] = w_old[:, k_old:]
            if b_new is not None and b_old is not None:
                b_new.copy_(b_old)

    return carry
