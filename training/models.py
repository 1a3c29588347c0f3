"""The CycleGAN networks: the ResNet generator and the PatchGAN discriminator, with builders by name.

Architecture as in Zhu et al. 2017 (CycleGAN) and its reference implementation: generator c7s1-ngf, d(2ngf), d(4ngf),
``n_blocks`` residual blocks, u(2ngf), u(ngf), c7s1-out with reflection padding, weights initialised N(0, 0.02). The
land-cover generator returns **logits** (``final="logits"``); softmax is applied only where probabilities are needed
(the class discriminator's input and the exported graph).

Two choices beyond the reference, each kept selectable (``docs/training.md`` has the measurements):

* ``upsample``: the reference transposed convolution (``"transpose"``), whose uneven kernel overlap paints a
  period-2 checkerboard (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts"), or resize-convolution
  (``"nearest"`` / ``"bilinear"``: x2 resize, reflection pad, 3x3 convolution), which cannot; ``"blur"`` is
  nearest x2 then the fixed [1, 2, 1] blur (zero response at period 2: :class:`~training.nets.layers.BlurUpsample`).
* ``norm``: the generator's normalisation. ``"instance"`` (reference) normalises every window by its own statistics,
  so the translation of a pixel depends on the window it was cut in. ``"instance_running"`` trains the same way but
  keeps running averages of those statistics and uses them at inference (``eval()``, and so in the exported graph);
  ``"batch"`` is BatchNorm (batch statistics in training, running ones at inference). With running statistics the
  exported generator is a pure convolutional function of its input: any tiling gives the same pixels away from
  the window borders.
* ``output_filter``: ``"checkerboard_null"`` ends the image generator with a fixed 3x3 notch filter per band,
  ``[[-1, 2, -1], [2, 12, 2], [-1, 2, -1]] / 16`` (:class:`CheckerboardNull`), then a clamp to [-1, 1]. Its response
  is ``(3 + cos u + cos v - cos u cos v) / 4``: 0 at the diagonal period-2 frequency (the checkerboard
  (-1)^(row + col)), 1 at the mean and at period-2 rows or columns, at least 3/4 elsewhere, so it removes a
  checkerboard whatever layer paints it and keeps the texture. Resize-convolution only stops the upsampling from
  favouring the pattern; learned weights can still paint it (the bundled run did: ``docs/recipe.md``).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from .config import GENERATORS, OUTPUT_FILTERS, UPSAMPLES
from .nets.layers import BlurUpsample, NormFactory, ResnetBlock, init_weights, instance_norm, output_tail

FINALS = ("tanh", "logits")
PATCHES = ("16", "30")

NORMS: dict[str, NormFactory] = {  # keys: config.NORMS
    "instance": instance_norm,
    "instance_running": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=True),
    "batch": nn.BatchNorm2d,
}


def norm_factory(name: str) -> NormFactory:
    """The normalisation layer factory called ``name``; raises ValueError listing the choices."""
    if name not in NORMS:
        raise ValueError(f"Unknown norm {name!r}; choose one of {sorted(NORMS)}.")
    return NORMS[name]


def upsample_block(in_channels: int, out_channels: int, mode: str, norm: NormFactory) -> list[nn.Module]:
    """One x2 upsampling stage: transposed convolution (reference) or resize-convolution, then norm and ReLU."""
    if mode == "transpose":
        conv: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1,
                                                    output_padding=1)]
    elif mode == "blur":
        conv = [BlurUpsample(in_channels), nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3)]
    elif mode in ("nearest", "bilinear"):
        resize = nn.Upsample(scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
        conv = [resize, nn.ReflectionPad2d(1), nn.Conv2d(in_channels, out_channels, 3)]
    else:
        raise ValueError(f"Unknown upsample {mode!r}; choose one of {UPSAMPLES}.")
    return [*conv, norm(out_channels), nn.ReLU(True)]


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator (input H and W must be multiples of 4).

    Args:
        in_channels: input channels (14 one-hot classes, or 3 image bands).
        out_channels: output channels.
        ngf: filters of the first layer (64 in the paper; 32 is the compact CPU variant).
        n_blocks: residual blocks (9 for 256 px in the paper).
        final: ``"tanh"`` (image output in [-1, 1]) or ``"logits"`` (raw class scores).
        upsample: ``"transpose"`` (reference), ``"nearest"`` or ``"bilinear"`` resize-convolution.
        norm: ``"instance"`` (reference), ``"instance_running"`` or ``"batch"`` (see the module docstring).
        output_filter: ``"none"`` or ``"checkerboard_null"`` after the tanh (image generators only).

    Raises:
        ValueError: on an unknown ``final``, ``upsample`` or ``norm``, or non-positive sizes.
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, n_blocks: int = 9,
                 final: str = "tanh", upsample: str = "transpose", norm: str = "instance",
                 output_filter: str = "none") -> None:
        super().__init__()
        if final not in FINALS:
            raise ValueError(f"Unknown generator final {final!r}; choose one of {FINALS}.")
        if upsample not in UPSAMPLES:
            raise ValueError(f"Unknown upsample {upsample!r}; choose one of {UPSAMPLES}.")
        if output_filter not in OUTPUT_FILTERS or (output_filter != "none" and final != "tanh"):
            raise ValueError(f"Unknown output_filter {output_filter!r} for a {final} generator; choose one of "
                             f"{OUTPUT_FILTERS} (filters apply to image generators only).")
        if min(in_channels, out_channels, ngf) < 1 or n_blocks < 0:
            raise ValueError(f"Bad generator sizes: in={in_channels} out={out_channels} ngf={ngf} blocks={n_blocks}.")
        self.in_channels, self.out_channels, self.final = in_channels, out_channels, final
        self.upsample, self.norm = upsample, norm
        norm_layer = norm_factory(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), norm_layer(ngf),
                                   nn.ReLU(True)]
        for mult in (1, 2):  # downsampling: d(2ngf), d(4ngf)
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), norm_layer(ngf * mult * 2),
                       nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, norm_layer) for _ in range(n_blocks)]
        for mult in (4, 2):  # upsampling: u(2ngf), u(ngf)
            layers += upsample_block(ngf * mult, ngf * mult // 2, upsample, norm_layer)
        layers += output_tail(ngf, out_channels, final, output_filter)
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator: one raw score per overlapping patch (no final activation: LSGAN regresses it).

    ``patch="30"`` is the reference 70x70 PatchGAN (30x30 scores for a 256x256 input). ``patch="16"`` is the seed's
    variant: the 4th convolution strides by 2 as well and the last one is padded (1, 2) so that a 256x256 input gives
    16x16 scores; both have the same parameters (2.76 M for 3 input channels, ndf 64).
    """

    def __init__(self, in_channels: int, ndf: int = 64, patch: str = "16") -> None:
        super().__init__()
        if patch not in PATCHES:
            raise ValueError(f"Unknown discriminator patch {patch!r}; choose one of {PATCHES}.")
        norm = instance_norm
        lrelu = functools.partial(nn.LeakyReLU, 0.2, True)
        stride4 = 2 if patch == "16" else 1
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), lrelu(),
            nn.Conv2d(ndf, ndf * 2, 4, stride=2, padding=1), norm(ndf * 2), lrelu(),
            nn.Conv2d(ndf * 2, ndf * 4, 4, stride=2, padding=1), norm(ndf * 4), lrelu(),
            nn.Conv2d(ndf * 4, ndf * 8, 4, stride=stride4, padding=1), norm(ndf * 8), lrelu(),
        ]
        if patch == "16":
            layers += [nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(ndf * 8, 1, 4)]
        else:
            layers += [nn.Conv2d(ndf * 8, 1, 4, padding=1)]
        self.model = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def build_generator(name: str, in_channels: int, out_channels: int, **kwargs: object) -> nn.Module:
    """Build a generator by name (``"resnet"``, ``"spade"``, ``"unet"``); raises ValueError listing the choices.

    Keyword arguments a design does not use (e.g. ``upsample`` for spade, ``noise_channels`` for resnet) are
    ignored, so one config builds any of them.
    """
    from .nets.spade import SpadeGenerator
    from .nets.unet import UnetGenerator

    if name not in GENERATORS:
        raise ValueError(f"Unknown generator {name!r}; choose one of {sorted(GENERATORS)}.")
    if name == "resnet":
        kwargs.pop("noise_channels", None)
        return ResnetGenerator(in_channels, out_channels, **kwargs)  # type: ignore[arg-type]
    builder = SpadeGenerator if name == "spade" else UnetGenerator
    return builder(in_channels, out_channels, **kwargs)  # type: ignore[arg-type]


def build_discriminator(name: str, in_channels: int, **kwargs: object) -> nn.Module:
    """Build a discriminator by name (``"patchgan"``, ``"multiscale"``: two scales with features)."""
    from .nets.discriminators import MultiScaleDiscriminator

    builders = {"patchgan": PatchDiscriminator, "multiscale": MultiScaleDiscriminator}
    if name not in builders:
        raise ValueError(f"Unknown discriminator {name!r}; choose one of {sorted(builders)}.")
    return builders[name](in_channels, **kwargs)  # type: ignore[arg-type]


def rgb2lc_generator_name(model: Any) -> str:
    """G_rgb2lc's design: ``model.rgb2lc_generator``, else ``model.generator`` (resnet for the map-only spade)."""
    if model.rgb2lc_generator:
        return str(model.rgb2lc_generator)
    return "resnet" if model.generator == "spade" else str(model.generator)


def build_networks(config: Any, num_classes: int, image_bands: int) -> dict[str, nn.Module]:
    """The four CycleGAN networks of a :class:`~training.config.TrainConfig`, named as in checkpoints.

    G_lc2rgb reads ``num_classes`` one-hot channels, then ``len(model.terrain_channels)`` terrain channels, then
    ``model.noise_channels`` noise channels (the contract's order). With ``model.d_sees_map`` D_rgb reads the image
    and then the map and terrain channels. ``model.discriminator`` is D_rgb's design; D_lc stays a PatchGAN.
    """
    m = config.model
    common = {"ngf": m.ngf, "n_blocks": m.n_blocks, "upsample": m.upsample, "norm": m.norm}
    map_channels = num_classes + len(m.terrain_channels)
    d_rgb_in = image_bands + (map_channels if m.d_sees_map else 0)
    return {
        "g_lc2rgb": build_generator(m.generator, map_channels + m.noise_channels, image_bands, final="tanh",
                                    output_filter=m.output_filter, noise_channels=m.noise_channels, **common),
        "g_rgb2lc": build_generator(rgb2lc_generator_name(m), image_bands, num_classes, final="logits", **common),
        "d_rgb": build_discriminator(m.discriminator, d_rgb_in, ndf=m.ndf, patch=m.patch),
        "d_lc": build_discriminator("patchgan", num_classes, ndf=m.ndf, patch=m.patch),
    }


def for_inference(generator: nn.Module) -> nn.Module:
    """A copy of ``generator`` in ``eval()`` mode whose running-statistics InstanceNorm layers are BatchNorm layers.

    In eval mode both compute ``(x - running_mean) / sqrt(running_var + eps)`` (times weight, plus bias where
    affine), so the copy gives the same outputs; the ONNX exporter handles BatchNorm but not InstanceNorm with
    running statistics.
    """
    import copy

    clone = copy.deepcopy(generator).eval()
    for parent in list(clone.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm2d) and child.track_running_stats:
                bn = nn.BatchNorm2d(child.num_features, eps=child.eps, affine=child.affine)
                bn.running_mean.copy_(child.running_mean)
                bn.running_var.copy_(child.running_var)
                if child.affine:
                    bn.weight.data.copy_(child.weight.data)
                    bn.bias.data.copy_(child.bias.data)
                setattr(parent, name, bn.eval())
    return clone
