"""The CycleGAN model step: the four networks, their optimizers, replay pools and losses, and one update.

One step (reference CycleGAN, Zhu et al. 2017, ``optimize_parameters``), with lcgan's additions in brackets:

1. generators: ``fake_rgb = G_lc2rgb(lc [+ terrain_lc] [+ noise])``, ``fake_lc = G_rgb2lc(view(rgb))`` (logits);
   D_lc and the RGB cycle see ``fake_lc_for_d(fake_lc)`` (straight-through Gumbel: a hard one-hot map, so no
   steganography through soft probabilities); loss = LSGAN(D_rgb(fake_rgb), real) + LSGAN(D_lc(fake_lc_d), real)
   + lambda * CE(G_rgb2lc(view(fake_rgb) [+ noise]), lc)
   + lambda * L1(G_lc2rgb(fake_lc_d [+ terrain_rgb] [+ noise]), rgb)
   [+ the optional paired terms], cycle terms over valid pixels [L1 on block means: ``loss.pixel_lowpass_px``];
2. discriminators (frozen in step 1): ``0.5 * (LSGAN(D(real), 1) + LSGAN(D(pool(fake)), 0))`` per side.

``view`` is what G_rgb2lc reads: the imagery resized by a random factor and jittered in radiometry
(:mod:`training.augment`); its logits are resized back, so every loss and both discriminators work at the
windows' own scale.

Terrain-aware runs (``model.terrain_channels``): every G_lc2rgb call reads the terrain channels of the window its
map describes, after the one-hot classes and before the noise (the contract's order): the land-cover window's for
``fake_rgb``, the image window's for the cycle ``G_lc2rgb(fake_lc_d)`` and the paired map. The discriminators and
G_rgb2lc see no terrain.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual PyTorch alias)
from torch import nn

from .augment import radiometric_jitter, random_scale, resize_image, scaled_size, with_noise
from .config import TrainConfig
from .errors import TrainingError
from .losses import LSGANLoss, fake_lc_for_d, masked_cross_entropy, masked_l1, real_lc_for_d
from .models import build_networks
from .nets.discriminators import as_scales, feature_matching
from .pool import ImagePool
from .torch_device import TorchDevice

LOSS_KEYS = ("g_adv_rgb", "g_adv_lc", "cycle_rgb_l1", "cycle_lc_ce", "paired_lc_ce", "paired_rgb_l1", "g_total",
             "d_rgb", "d_lc", "feature_match")
NETS = ("g_lc2rgb", "g_rgb2lc", "d_rgb", "d_lc")


def with_terrain(maps: torch.Tensor, terrain: torch.Tensor | None) -> torch.Tensor:
    """``maps`` with the terrain channels appended (None: ``maps`` as is)."""
    return maps if terrain is None else torch.cat([maps, terrain.to(maps.dtype)], dim=1)


def one_hot(indices: torch.Tensor, valid: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[N, H, W]`` indices -> ``[N, C, H, W]`` float one-hot, all-zero at invalid pixels."""
    out = F.one_hot(indices, num_classes).permute(0, 3, 1, 2).float()
    return out * valid.unsqueeze(1).float()


class CycleGAN:
    """Networks, optimizers, pools and losses of one run, and :meth:`train_step`.

    Args:
        config: the training config.
        num_classes: land-cover classes (one-hot channels).
        image_bands: imagery bands.
        device: where it runs (:func:`training.torch_device.choose_torch_device`).
    """

    def __init__(self, config: TrainConfig, num_classes: int, image_bands: int, device: TorchDevice) -> None:
        self.config, self.num_classes, self.dev = config, num_classes, device
        self.nets = build_networks(config, num_classes, image_bands)
        for net in self.nets.values():
            net.to(device.device, memory_format=device.memory_format)
        o = config.optim
        fused = device.device.type == "cuda"
        g_params = [*self.nets["g_lc2rgb"].parameters(), *self.nets["g_rgb2lc"].parameters()]
        d_params = [*self.nets["d_rgb"].parameters(), *self.nets["d_lc"].parameters()]
        self.opt_g = torch.optim.Adam(g_params, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused or None)
        self.opt_d = torch.optim.Adam(d_params, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused or None)
        seed = config.runtime.seed * 1000 + device.rank
        self.pool_rgb = ImagePool(config.loss.pool_size, seed=seed + 1)
        self.pool_lc = ImagePool(config.loss.pool_size, seed=seed + 2)
        self.gan_loss = LSGANLoss().to(device.device)
        self.run: dict[str, nn.Module] = dict(self.nets)
        self.frozen_d: dict[str, nn.Module] = {n: self.nets[n] for n in ("d_rgb", "d_lc")}

    def wrap(self, compile_: bool) -> None:
        """DDP-wrap (under torchrun) and/or ``torch.compile`` what the step calls.

        The discriminators also get an unwrapped (compiled) twin in ``frozen_d`` for the generator step, where they
        are frozen and must not take part in DDP's gradient synchronisation. Checkpoints always hold ``nets``.
        """
        self.frozen_d = {n: torch.compile(self.nets[n]) if compile_ else self.nets[n] for n in ("d_rgb", "d_lc")}
        for name, net in self.nets.items():
            wrapped: nn.Module = net
            if self.dev.world > 1:
                ids = [self.dev.device.index] if self.dev.device.type == "cuda" else None
                wrapped = nn.parallel.DistributedDataParallel(net, device_ids=ids)
            if compile_:
                wrapped = torch.compile(wrapped)
            self.run[name] = wrapped

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr

    # -- the step ---------------------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One generator update then one discriminator update; returns every loss term as a float."""
        dev, mf, cfg = self.dev.device, self.dev.memory_format, self.config
        m, loss = cfg.model, cfg.loss
        lc_index = batch["lc_index"].to(dev, non_blocking=True)
        lc_valid = batch["lc_valid"].to(dev, non_blocking=True)
        rgb = batch["rgb"].to(dev, non_blocking=True).contiguous(memory_format=mf)
        rgb_valid = batch["rgb_valid"].to(dev, non_blocking=True)
        lc = one_hot(lc_index, lc_valid, self.num_classes).contiguous(memory_format=mf)
        g_lc2rgb, d_rgb, d_lc = self.run["g_lc2rgb"], self.run["d_rgb"], self.run["d_lc"]
        k = m.noise_channels

        # generators (the discriminators are called unwrapped and frozen: no DDP sync, no grads)
        for name in ("d_rgb", "d_lc"):
            self.nets[name].requires_grad_(False)
        paired_index, paired_valid, paired_onehot = self.paired_inputs(batch, rgb_valid)
        lc_terrain, rgb_terrain = self.terrain_inputs(batch)
        factor = random_scale(cfg.data.scale_jitter)
        with self.dev.autocast():
            maps = lc if paired_onehot is None else torch.cat([lc, paired_onehot])
            terrain = lc_terrain if paired_onehot is None or lc_terrain is None else torch.cat([lc_terrain,
                                                                                                 rgb_terrain])
            painted_all = g_lc2rgb(with_noise(with_terrain(maps, terrain), k).contiguous(memory_format=mf))
            fake_rgb, painted = ((painted_all, None) if paired_onehot is None
                                 else painted_all.split(lc.shape[0]))
            fake_lc_logits = self.read_imagery(rgb, factor)
            fake_lc = fake_lc_for_d(fake_lc_logits, m.fake_lc_for_d, m.lc_temperature).contiguous(memory_format=mf)
            rec_lc_logits = self.read_imagery(fake_rgb, factor, loss.cycle_image_noise)
            rec_rgb = g_lc2rgb(with_noise(with_terrain(fake_lc, rgb_terrain), k).contiguous(memory_format=mf))
            fake_cond = self.d_rgb_input(fake_rgb, lc, lc_terrain)
            g_adv_rgb = self.adversarial(self.frozen_d["d_rgb"](fake_cond), True)
            g_adv_lc = self.gan_loss(self.frozen_d["d_lc"](fake_lc), True)
            feature_match = zero = torch.zeros((), device=dev)
            if loss.lambda_feature_match > 0 and painted is not None:
                with torch.no_grad():
                    real_features = self.frozen_d["d_rgb"](self.d_rgb_input(rgb, paired_onehot, rgb_terrain))
                painted_features = self.frozen_d["d_rgb"](self.d_rgb_input(painted, paired_onehot, rgb_terrain))
                feature_match = feature_matching(as_scales(painted_features), as_scales(real_features))
        cycle_lc = masked_cross_entropy(rec_lc_logits, lc_index, lc_valid)
        cycle_rgb = masked_l1(rec_rgb, rgb, rgb_valid, loss.pixel_lowpass_px)
        g_total = (loss.lambda_adv_rgb * g_adv_rgb + loss.lambda_adv_lc * g_adv_lc
                   + loss.lambda_cycle_lc * cycle_lc + loss.lambda_cycle_rgb * cycle_rgb
                   + loss.lambda_feature_match * feature_match)
        paired_lc = (masked_cross_entropy(fake_lc_logits, paired_index, paired_valid)
                     if paired_index is not None and loss.lambda_paired_lc > 0 else zero)
        paired_rgb = (masked_l1(painted, rgb, paired_valid, loss.pixel_lowpass_px)
                      if painted is not None else zero)
        g_total = g_total + loss.lambda_paired_lc * paired_lc + loss.lambda_paired_rgb * paired_rgb
        self.opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        self.opt_g.step()

        # discriminators: real and pooled fake in one batch (one forward per D and step, as DDP expects)
        for name in ("d_rgb", "d_lc"):
            self.nets[name].requires_grad_(True)
        real_lc = real_lc_for_d(lc, m.real_lc_smoothing, m.real_lc_noise).contiguous(memory_format=mf)
        pooled_rgb = self.pool_rgb.query(fake_cond.detach().float())  # with its map when D_rgb sees the map
        pooled_lc = self.pool_lc.query(fake_lc.float())
        n = rgb.shape[0]
        with self.dev.autocast():
            real_cond = self.d_rgb_input(rgb, paired_onehot, rgb_terrain)
            scores_rgb = as_scales(d_rgb(torch.cat([real_cond, pooled_rgb.to(real_cond.dtype)])
                                         .contiguous(memory_format=mf)))
            scores_lc = d_lc(torch.cat([real_lc, pooled_lc]).contiguous(memory_format=mf))
        d_rgb_loss = 0.5 * torch.stack([self.gan_loss(scale[-1][:n], True) + self.gan_loss(scale[-1][n:], False)
                                        for scale in scores_rgb]).mean()
        d_lc_loss = 0.5 * (self.gan_loss(scores_lc[:n], True) + self.gan_loss(scores_lc[n:], False))
        self.opt_d.zero_grad(set_to_none=True)
        (d_rgb_loss + d_lc_loss).backward()
        self.opt_d.step()

        values = torch.stack([g_adv_rgb, g_adv_lc, cycle_rgb, cycle_lc, paired_lc, paired_rgb, g_total, d_rgb_loss,
                              d_lc_loss, feature_match]).detach().float()
        return dict(zip(LOSS_KEYS, values.float().cpu().tolist(), strict=True))

    def adversarial(self, outputs: torch.Tensor | list[list[torch.Tensor]], target_is_real: bool) -> torch.Tensor:
        """LSGAN loss of any discriminator's output, averaged over its scales."""
        return torch.stack([self.gan_loss(scale[-1], target_is_real) for scale in as_scales(outputs)]).mean()

    def d_rgb_input(self, images: torch.Tensor, maps: torch.Tensor | None, terrain: torch.Tensor | None
                    ) -> torch.Tensor:
        """What D_rgb reads: the images, then (``model.d_sees_map``) the map and terrain channels they show."""
        if not self.config.model.d_sees_map:
            return images
        if maps is None:
            raise TrainingError("model.d_sees_map needs the map of every real image window: set "
                                "data.paired_landcover (and loss.lambda_paired_lc or lambda_paired_rgb > 0).")
        return torch.cat([images, with_terrain(maps.to(images.dtype), terrain)], dim=1)

    def read_imagery(self, images: torch.Tensor, factor: float, noise_std: float = 0.0) -> torch.Tensor:
        """G_rgb2lc's logits for ``images`` seen through the augmentations, at the images' own size.

        The view: resized by ``factor`` (to multiples of 4), radiometry jittered (``data.jitter_*``), plus Gaussian
        noise of ``noise_std``; the logits are resized back bilinearly.
        """
        d = self.config.data
        height, width = images.shape[-2:]
        x = resize_image(images, scaled_size(height, width, factor))
        x = radiometric_jitter(x, d.jitter_gain, d.jitter_offset, d.jitter_gamma)
        if noise_std > 0:
            x = x + noise_std * torch.randn_like(x)
        logits = self.run["g_rgb2lc"](x.contiguous(memory_format=self.dev.memory_format))
        return resize_image(logits, (height, width))

    def terrain_inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The terrain channels of the land-cover and the image windows (both None for a map-only model).

        Raises:
            TrainingError: the model reads terrain but the batch has none (or the reverse).
        """
        wanted = bool(self.config.model.terrain_channels)
        if wanted != ("lc_terrain" in batch):
            raise TrainingError(f"model.terrain_channels is {self.config.model.terrain_channels} but the batch "
                                f"{'lacks' if wanted else 'has'} terrain channels: data.dem_raster must be set "
                                "with them (build the datasets from the same config).")
        if not wanted:
            return None, None
        dev, mf = self.dev.device, self.dev.memory_format
        return tuple(batch[key].to(dev, non_blocking=True).contiguous(memory_format=mf)
                     for key in ("lc_terrain", "rgb_terrain"))  # type: ignore[return-value]

    def paired_inputs(self, batch: dict[str, torch.Tensor], rgb_valid: torch.Tensor
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """The image windows' own land cover for the optional semi-supervised terms: ``(index, valid, one-hot)``.

        All None without a paired land cover or with both ``lambda_paired_*`` at 0; the one-hot only when
        ``lambda_paired_rgb`` > 0, ``lambda_feature_match`` > 0 or ``model.d_sees_map``.
        """
        loss = self.config.loss
        if "paired_index" not in batch or (loss.lambda_paired_lc <= 0 and loss.lambda_paired_rgb <= 0):
            return None, None, None
        index = batch["paired_index"].to(self.dev.device, non_blocking=True)
        valid = batch["paired_valid"].to(self.dev.device, non_blocking=True) & rgb_valid
        onehot = None
        if loss.lambda_paired_rgb > 0 or loss.lambda_feature_match > 0 or self.config.model.d_sees_map:
            onehot = one_hot(index, valid, self.num_classes).contiguous(memory_format=self.dev.memory_format)
        return index, valid, onehot

    # -- state --------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {name: net.state_dict() for name, net in self.nets.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "pools": {"rgb": self.pool_rgb.state_dict(), "lc": self.pool_lc.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.pool_rgb.load_state_dict(state["pools"]["rgb"], self.dev.device)
        self.pool_lc.load_state_dict(state["pools"]["lc"], self.dev.device)

    # -- pictures -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def translate_sample(self, lc_index: np.ndarray, lc_valid: np.ndarray, rgb: np.ndarray, seed: int = 0,
                         lc_terrain: np.ndarray | None = None,
                         rgb_terrain: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Both translations and both cycles of one window, as inference runs them (``eval()``: running norm
        statistics; the noise from a generator seeded by ``seed``, so torch's global random state is untouched).
        Terrain-aware models also take each window's terrain channels ``(C, H, W)``."""
        dev = self.dev.device
        g_lc2rgb, g_rgb2lc = self.nets["g_lc2rgb"], self.nets["g_rgb2lc"]
        modes = {n: net.training for n, net in self.nets.items()}
        g_lc2rgb.eval()
        g_rgb2lc.eval()
        noise_gen = torch.Generator().manual_seed(seed)

        def paint(maps: torch.Tensor, terrain: np.ndarray | None) -> torch.Tensor:
            if terrain is not None:
                maps = with_terrain(maps, torch.from_numpy(np.ascontiguousarray(terrain, np.float32))[None].to(dev))
            k = self.config.model.noise_channels
            if k:
                noise = torch.randn((maps.shape[0], k, *maps.shape[2:]), generator=noise_gen).to(dev)
                maps = torch.cat([maps, noise], dim=1)
            return g_lc2rgb(maps).float()

        try:
            lc = one_hot(torch.from_numpy(lc_index.astype(np.int64))[None].to(dev),
                         torch.from_numpy(lc_valid)[None].to(dev), self.num_classes)
            x = torch.from_numpy(rgb.astype(np.float32))[None].to(dev)
            fake_rgb = paint(lc, lc_terrain)
            rec_lc = g_rgb2lc(fake_rgb).argmax(1)
            fake_lc = g_rgb2lc(x).argmax(1)
            rec_rgb = paint(F.one_hot(fake_lc, self.num_classes).permute(0, 3, 1, 2).float(), rgb_terrain)
        finally:
            for name, net in self.nets.items():
                net.train(modes[name])
        return {"lc_index": lc_index, "lc_valid": lc_valid, "fake_rgb": fake_rgb[0].cpu().numpy(),
                "rec_lc": rec_lc[0].cpu().numpy(), "rgb": rgb, "fake_lc": fake_lc[0].cpu().numpy(),
                "rec_rgb": rec_rgb[0].cpu().numpy()}
