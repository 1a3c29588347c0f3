"""The CycleGAN training loop: G step then D step, bf16 autocast, atomic checkpoints, exact resume, DDP.

One step (reference CycleGAN, Zhu et al. 2017):

1. generators: ``fake_rgb = G_lc2rgb(lc)``, ``fake_lc = G_rgb2lc(rgb)`` (logits); D_lc and the RGB cycle see
   ``fake_lc_for_d(fake_lc)``; loss = LSGAN(D_rgb(fake_rgb), real) + LSGAN(D_lc(fake_lc_d), real)
   + lambda * CE(G_rgb2lc(fake_rgb), lc) + lambda * L1(G_lc2rgb(fake_lc_d), rgb), cycle terms over valid pixels;
2. discriminators (not trained in step 1): ``0.5 * (LSGAN(D(real), 1) + LSGAN(D(pool(fake)), 0))`` per side.

Runs under ``torchrun`` with DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes the run folder.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import os
import pickle
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F  # noqa: N812 (the usual PyTorch alias)
from torch import nn
from torch.utils.data import DataLoader

from lcgan_qgis.core.errors import LcganError
from lcgan_qgis.core.resources import default_scheme_path
from lcgan_qgis.core.scheme import ClassScheme

from . import data as data_mod
from .config import TrainConfig
from .losses import LSGANLoss, fake_lc_for_d, masked_cross_entropy, masked_l1, real_lc_for_d
from .models import build_discriminator, build_generator
from .plots import plot_losses, plot_samples
from .pool import ImagePool
from .schedule import lr_factor

log = logging.getLogger(__name__)

LOSS_KEYS = ("g_adv_rgb", "g_adv_lc", "cycle_rgb_l1", "cycle_lc_ce", "paired_lc_ce", "paired_rgb_l1", "g_total",
             "d_rgb", "d_lc")
CSV_KEYS = ("step", "epoch", "lr", "seconds", *LOSS_KEYS)
NETS = ("g_lc2rgb", "g_rgb2lc", "d_rgb", "d_lc")
CHECKPOINT_NAME = "last.pt"
SAMPLE_COUNT = 3


class TrainingError(LcganError, RuntimeError):
    """Training cannot go on (diverged loss, unusable checkpoint, incompatible resume)."""


@dataclass(frozen=True)
class Runtime:
    """Device choices made once per run (by measurement where it matters; see the config comments)."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    rank: int = 0
    world: int = 1

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self) -> AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def choose_runtime(config: TrainConfig) -> Runtime:
    """Device, autocast dtype and memory format from the config (``auto`` = what measured fastest per device)."""
    r = config.runtime
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if r.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    elif r.device == "cuda" and world > 1:
        device = torch.device(f"cuda:{local_rank}")
    else:
        device = torch.device(r.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"runtime.device={r.device} but torch sees no CUDA device; use device=cpu.")
        torch.cuda.set_device(device)
    bf16_ok = device.type == "cpu" or torch.cuda.is_bf16_supported()
    amp = r.amp if r.amp != "auto" else ("bf16" if bf16_ok else "none")
    channels_last = r.channels_last == "on" or (r.channels_last == "auto" and device.type == "cuda")
    return Runtime(device, torch.bfloat16 if amp == "bf16" else None, channels_last, rank, world)


def build_networks(config: TrainConfig, num_classes: int, image_bands: int) -> dict[str, nn.Module]:
    """The four CycleGAN networks, named as in checkpoints."""
    m = config.model
    return {
        "g_lc2rgb": build_generator(m.generator, num_classes, image_bands, ngf=m.ngf, n_blocks=m.n_blocks,
                                    final="tanh"),
        "g_rgb2lc": build_generator(m.generator, image_bands, num_classes, ngf=m.ngf, n_blocks=m.n_blocks,
                                    final="logits"),
        "d_rgb": build_discriminator(m.discriminator, image_bands, ndf=m.ndf, patch=m.patch),
        "d_lc": build_discriminator(m.discriminator, num_classes, ndf=m.ndf, patch=m.patch),
    }


def git_commit() -> str:
    """The repository's HEAD commit (with ``-dirty``), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "training"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` (never a half-written file)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (tensors, numbers, strings, dicts and lists only).

    Raises:
        TrainingError: missing, empty, corrupt or truncated file, or one that asks to build other Python objects
            (which could run code on load): refused, with what to do.
    """
    fix = "Delete it to start the run over, or restore a copy."
    if Path(path).is_file() and Path(path).stat().st_size == 0:
        raise TrainingError(f"Checkpoint {path} is empty (0 bytes: an interrupted copy?). {fix}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"Checkpoint not found: {path}") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            raise TrainingError(
                f"Checkpoint {path} was refused: it asks to load {found.group(1)}, which is not a tensor or a plain "
                "value and could run code when loaded. lcgan checkpoints hold only tensors and plain values; delete "
                "this file or use a checkpoint you trust (never load it with weights_only=False)."
            ) from None
        raise TrainingError(f"Cannot read checkpoint {path}: it is not a PyTorch checkpoint (corrupt, truncated or "
                            f"another format). {fix}") from None
    except (RuntimeError, EOFError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"Cannot read checkpoint {path}: {detail} {fix}") from None


def one_hot(indices: torch.Tensor, valid: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[N, H, W]`` indices -> ``[N, C, H, W]`` float one-hot, all-zero at invalid pixels."""
    out = F.one_hot(indices, num_classes).permute(0, 3, 1, 2).float()
    return out * valid.unsqueeze(1).float()


class Trainer:
    """Builds everything from a config and a data folder, then ``fit()`` trains (resuming when a checkpoint exists).

    Args:
        config: the training config.
        data_dir: folder that relative raster paths of ``config.data`` are resolved against.
        run_dir: the run folder (config, CSV, plots, samples, checkpoints). Reused folders resume.
    """

    def __init__(self, config: TrainConfig, data_dir: str | Path | None, run_dir: str | Path) -> None:
        self.config = config
        self.data_dir = data_dir
        self.run_dir = Path(run_dir)
        self.ckpt_path = self.run_dir / "checkpoints" / CHECKPOINT_NAME
        self.rt = choose_runtime(config)
        if self.rt.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.rt.device.type == "cuda" else "gloo")
        if config.runtime.threads:
            torch.set_num_threads(config.runtime.threads)
        torch.manual_seed(config.runtime.seed)
        self.scheme = ClassScheme.load(config.data.scheme or default_scheme_path())
        self.num_classes = len(self.scheme)
        self.image_bands = len(config.data.image_bands)
        resume = self.load_resume_state()
        radiometry = data_mod.radiometry_from_dict(resume["radiometry"]) if resume else None
        self.landcover, self.images = data_mod.build_datasets(config, data_dir, self.scheme, radiometry)
        self.radiometry = self.images.radiometry
        self.gsd_m = self.images.sources[0].gsd_m

        self.nets = build_networks(config, self.num_classes, self.image_bands)
        for net in self.nets.values():
            net.to(self.rt.device, memory_format=self.rt.memory_format)
        o = config.optim
        fused = self.rt.device.type == "cuda"
        g_params = [*self.nets["g_lc2rgb"].parameters(), *self.nets["g_rgb2lc"].parameters()]
        d_params = [*self.nets["d_rgb"].parameters(), *self.nets["d_lc"].parameters()]
        self.opt_g = torch.optim.Adam(g_params, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused or None)
        self.opt_d = torch.optim.Adam(d_params, lr=o.lr, betas=(o.beta1, o.beta2), fused=fused or None)
        seed = config.runtime.seed * 1000 + self.rt.rank
        self.pool_rgb = ImagePool(config.loss.pool_size, seed=seed + 1)
        self.pool_lc = ImagePool(config.loss.pool_size, seed=seed + 2)
        self.gan_loss = LSGANLoss().to(self.rt.device)
        self.step = 0
        if resume:
            self.restore(resume)
        self.run_nets = self.wrap_networks()
        self.stop_signal: int | None = None
        self.last_ckpt_time = time.monotonic()

    # -- setup ----------------------------------------------------------------------------------------------
    def load_resume_state(self) -> dict[str, Any] | None:
        if not self.ckpt_path.is_file():
            return None
        state = load_checkpoint(self.ckpt_path)
        saved = TrainConfig.from_dict(state["config"], source=str(self.ckpt_path))
        mine, theirs = self.config.to_dict(), saved.to_dict()
        for section in ("model", "loss", "data"):
            if mine[section] != theirs[section]:
                diff = {k: (theirs[section][k], v) for k, v in mine[section].items() if theirs[section][k] != v}
                raise TrainingError(
                    f"{self.ckpt_path} was trained with a different [{section}] config (checkpoint -> now: {diff}); "
                    "use a new run folder or the same config."
                )
        return state

    def wrap_networks(self) -> dict[str, nn.Module]:
        """What the step calls: the networks, DDP-wrapped under torchrun and compiled when asked.

        The discriminators also get an unwrapped (compiled) twin in ``self.frozen_d`` for the generator step, where
        they are frozen and must not take part in DDP's gradient synchronisation.
        """
        compile_ = self.config.runtime.compile
        self.frozen_d = {n: torch.compile(self.nets[n]) if compile_ else self.nets[n] for n in ("d_rgb", "d_lc")}
        nets: dict[str, nn.Module] = {}
        for name, net in self.nets.items():
            wrapped: nn.Module = net
            if self.rt.world > 1:
                ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
                wrapped = nn.parallel.DistributedDataParallel(net, device_ids=ids)
            if compile_:
                wrapped = torch.compile(wrapped)
            nets[name] = wrapped
        return nets

    def loader(self) -> Iterator[dict[str, torch.Tensor]]:
        o, d = self.config.optim, self.config.data
        dataset = data_mod.UnpairedWindows(self.landcover, self.images, self.config.total_steps * o.batch_size *
                                           self.rt.world, seed=self.config.runtime.seed, rot90=d.rot90)
        sampler = data_mod.StepSampler(self.step, self.config.total_steps, o.batch_size, self.rt.rank, self.rt.world)
        loader = DataLoader(dataset, batch_size=o.batch_size, sampler=sampler, num_workers=d.num_workers,
                            pin_memory=self.rt.device.type == "cuda", persistent_workers=False,
                            prefetch_factor=4 if d.num_workers else None,
                            generator=torch.Generator().manual_seed(self.config.runtime.seed))
        return iter(loader)

    # -- one step -------------------------------------------------------------------------------------------
    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One generator update then one discriminator update; returns every loss term as a float."""
        dev, mf, cfg = self.rt.device, self.rt.memory_format, self.config
        lc_index = batch["lc_index"].to(dev, non_blocking=True)
        lc_valid = batch["lc_valid"].to(dev, non_blocking=True)
        rgb = batch["rgb"].to(dev, non_blocking=True).contiguous(memory_format=mf)
        rgb_valid = batch["rgb_valid"].to(dev, non_blocking=True)
        lc = one_hot(lc_index, lc_valid, self.num_classes).contiguous(memory_format=mf)
        g_lc2rgb, g_rgb2lc, d_rgb, d_lc = (self.run_nets[n] for n in NETS)
        m = cfg.model

        # generators (the discriminators are called unwrapped and frozen: no DDP sync, no grads)
        for name in ("d_rgb", "d_lc"):
            self.nets[name].requires_grad_(False)
        paired_index, paired_valid, paired_onehot = self.paired_inputs(batch, rgb_valid)
        with self.rt.autocast():
            if paired_onehot is None:
                fake_rgb, painted = g_lc2rgb(lc), None
            else:  # both maps in one batch (InstanceNorm normalises each sample on its own)
                fake_rgb, painted = g_lc2rgb(torch.cat([lc, paired_onehot])).split(lc.shape[0])
            fake_lc_logits = g_rgb2lc(rgb)
            fake_lc = fake_lc_for_d(fake_lc_logits, m.fake_lc_for_d, m.lc_temperature).contiguous(memory_format=mf)
            rec_lc_logits = g_rgb2lc(fake_rgb)
            rec_rgb = g_lc2rgb(fake_lc)
            g_adv_rgb = self.gan_loss(self.frozen_d["d_rgb"](fake_rgb), True)
            g_adv_lc = self.gan_loss(self.frozen_d["d_lc"](fake_lc), True)
        cycle_lc = masked_cross_entropy(rec_lc_logits, lc_index, lc_valid)
        cycle_rgb = masked_l1(rec_rgb, rgb, rgb_valid)
        g_total = (cfg.loss.lambda_adv_rgb * g_adv_rgb + cfg.loss.lambda_adv_lc * g_adv_lc
                   + cfg.loss.lambda_cycle_lc * cycle_lc + cfg.loss.lambda_cycle_rgb * cycle_rgb)
        zero = torch.zeros((), device=dev)
        paired_lc = (masked_cross_entropy(fake_lc_logits, paired_index, paired_valid)
                     if paired_index is not None and cfg.loss.lambda_paired_lc > 0 else zero)
        paired_rgb = masked_l1(painted, rgb, paired_valid) if painted is not None else zero
        g_total = g_total + cfg.loss.lambda_paired_lc * paired_lc + cfg.loss.lambda_paired_rgb * paired_rgb
        self.opt_g.zero_grad(set_to_none=True)
        g_total.backward()
        self.opt_g.step()

        # discriminators: real and pooled fake in one batch (one forward per D and step, as DDP expects)
        for name in ("d_rgb", "d_lc"):
            self.nets[name].requires_grad_(True)
        real_lc = real_lc_for_d(lc, m.real_lc_smoothing, m.real_lc_noise).contiguous(memory_format=mf)
        pooled_rgb = self.pool_rgb.query(fake_rgb.float())
        pooled_lc = self.pool_lc.query(fake_lc.float())
        n = rgb.shape[0]
        with self.rt.autocast():
            scores_rgb = d_rgb(torch.cat([rgb, pooled_rgb.to(rgb.dtype)]).contiguous(memory_format=mf))
            scores_lc = d_lc(torch.cat([real_lc, pooled_lc]).contiguous(memory_format=mf))
        d_rgb_loss = 0.5 * (self.gan_loss(scores_rgb[:n], True) + self.gan_loss(scores_rgb[n:], False))
        d_lc_loss = 0.5 * (self.gan_loss(scores_lc[:n], True) + self.gan_loss(scores_lc[n:], False))
        self.opt_d.zero_grad(set_to_none=True)
        (d_rgb_loss + d_lc_loss).backward()
        self.opt_d.step()

        values = torch.stack([g_adv_rgb, g_adv_lc, cycle_rgb, cycle_lc, paired_lc, paired_rgb, g_total, d_rgb_loss,
                              d_lc_loss]).detach()
        return dict(zip(LOSS_KEYS, values.float().cpu().tolist(), strict=True))

    def paired_inputs(self, batch: dict[str, torch.Tensor], rgb_valid: torch.Tensor
                      ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """The image windows' own land cover for the optional semi-supervised terms: ``(index, valid, one-hot)``.

        All None without a paired land cover or with both ``lambda_paired_*`` at 0; the one-hot only when
        ``lambda_paired_rgb`` > 0.
        """
        loss = self.config.loss
        if "paired_index" not in batch or (loss.lambda_paired_lc <= 0 and loss.lambda_paired_rgb <= 0):
            return None, None, None
        index = batch["paired_index"].to(self.rt.device, non_blocking=True)
        valid = batch["paired_valid"].to(self.rt.device, non_blocking=True) & rgb_valid
        onehot = None
        if loss.lambda_paired_rgb > 0:
            onehot = one_hot(index, valid, self.num_classes).contiguous(memory_format=self.rt.memory_format)
        return index, valid, onehot

    # -- the loop -------------------------------------------------------------------------------------------
    def fit(self) -> int:
        """Train until the schedule (or ``runtime.max_steps``) ends or a signal arrives; returns the global step."""
        cfg, rt = self.config, self.rt
        total = cfg.total_steps if not cfg.runtime.max_steps else min(cfg.total_steps, cfg.runtime.max_steps)
        if rt.is_main:
            self.prepare_run_dir()
        csv_file = self.open_csv() if rt.is_main else None
        writer = csv.DictWriter(csv_file, CSV_KEYS) if csv_file else None
        previous = self.install_signal_handlers()
        progress = None
        if rt.is_main and cfg.runtime.progress:
            from tqdm import tqdm

            progress = tqdm(total=total, initial=self.step, unit="step", dynamic_ncols=True, mininterval=5)
        log.info("training from step %d to %d on %s (amp=%s, channels_last=%s, world=%d); run folder %s",
                 self.step, total, rt.device, rt.amp_dtype, rt.channels_last, rt.world, self.run_dir)
        start_time = time.monotonic()
        try:
            batches = self.loader()
            while self.step < total:
                factor = lr_factor(self.step, cfg.decay_start_step, cfg.total_steps)
                for opt in (self.opt_g, self.opt_d):
                    for group in opt.param_groups:
                        group["lr"] = cfg.optim.lr * factor
                losses = self.train_step(next(batches))
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingError(
                        f"Loss {', '.join(bad)} became {losses[bad[0]]} at step {self.step}; training stopped. "
                        f"The last good checkpoint is {self.ckpt_path} (not overwritten). Lower optim.lr or check "
                        "the data."
                    )
                self.step += 1
                if writer is not None:
                    writer.writerow({"step": self.step, "epoch": (self.step - 1) // cfg.optim.steps_per_epoch + 1,
                                     "lr": cfg.optim.lr * factor,
                                     "seconds": round(time.monotonic() - start_time, 3),
                                     **{k: f"{v:.6g}" for k, v in losses.items()}})
                if progress is not None:
                    progress.update(1)
                    if self.step % 10 == 0:
                        progress.set_postfix(cyc_rgb=f"{losses['cycle_rgb_l1']:.3f}",
                                             cyc_lc=f"{losses['cycle_lc_ce']:.3f}", refresh=False)
                self.after_step(csv_file, total)
                if self.stop_signal is not None:
                    log.warning("signal %d: checkpoint written at step %d; resume with the same command",
                                self.stop_signal, self.step)
                    break
            if self.rt.world > 1:
                self.check_replicas_in_sync()
        finally:
            if progress is not None:
                progress.close()
            if csv_file is not None:
                csv_file.close()
            self.restore_signal_handlers(previous)
            self.landcover.close()
            self.images.close()
        return self.step

    def after_step(self, csv_file: Any, total: int) -> None:
        cfg = self.config
        epoch_end = self.step % cfg.optim.steps_per_epoch == 0
        due = (self.step % cfg.runtime.checkpoint_every_steps == 0 or self.step >= total or epoch_end
               or self.stop_signal is not None
               or (cfg.runtime.checkpoint_every_s > 0
                   and time.monotonic() - self.last_ckpt_time >= cfg.runtime.checkpoint_every_s))
        if csv_file is not None and (due or self.step % 25 == 0):
            csv_file.flush()  # so that a running job can be watched
        if not due or not self.rt.is_main:
            return
        self.save_checkpoint()
        epoch = self.step // cfg.optim.steps_per_epoch
        if (epoch_end and epoch % cfg.runtime.samples_every_epochs == 0) or self.step >= total:
            self.write_pictures(epoch if epoch_end else None)
            self.validate()

    def check_replicas_in_sync(self) -> None:
        """Under DDP: every process must hold the same weights (gradients were averaged); raises otherwise."""
        flat = torch.cat([p.detach().float().flatten() for net in self.nets.values() for p in net.parameters()])
        checksum = torch.stack([flat.sum(), (flat * flat).sum()]).double().cpu()
        gathered = [torch.zeros_like(checksum) for _ in range(self.rt.world)]
        dist.all_gather(gathered, checksum)
        if any(not torch.equal(g, gathered[0]) for g in gathered):
            raise TrainingError(f"DDP replicas diverged at step {self.step}: weight checksums {gathered}.")
        log.info("DDP: %d replicas in sync at step %d", self.rt.world, self.step)

    # -- run folder, checkpoints, pictures ------------------------------------------------------------------
    def prepare_run_dir(self) -> None:
        (self.run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        header = f"# lcgan training config\n# git commit: {git_commit()}\n# digest: {self.config.digest()}\n\n"
        (self.run_dir / "config.toml").write_text(header + self.config.to_toml(), encoding="utf-8")
        (self.run_dir / "radiometry.json").write_text(data_mod.radiometry_to_json(self.radiometry), encoding="utf-8")

    def open_csv(self) -> Any:
        """Open ``losses.csv`` for appending; rows after the resumed step (not checkpointed) are dropped first."""
        path = self.run_dir / "losses.csv"
        keep: list[dict[str, str]] = []
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                keep = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]
        tmp = path.with_name("losses.csv.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, CSV_KEYS)
            writer.writeheader()
            writer.writerows(keep)
        os.replace(tmp, path)
        return open(path, "a", newline="", encoding="utf-8")

    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.rt.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.rt.device)
        return {
            "format": "lcgan-train-1",
            "step": self.step,
            "config": self.config.to_dict(),
            "git_commit": git_commit(),
            "radiometry": {"mode": self.radiometry.mode, "low": list(self.radiometry.low),
                           "high": list(self.radiometry.high), "percentiles": list(self.radiometry.percentiles)},
            "gsd_m": self.gsd_m,
            "scheme": self.scheme.to_dict(),
            "nets": {name: net.state_dict() for name, net in self.nets.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "pools": {"rgb": self.pool_rgb.state_dict(), "lc": self.pool_lc.state_dict()},
            "rng": rng,
        }

    def save_checkpoint(self) -> None:
        save_atomic(self.state_dict(), self.ckpt_path)
        self.last_ckpt_time = time.monotonic()
        log.info("checkpoint: step %d -> %s", self.step, self.ckpt_path)

    def restore(self, state: dict[str, Any]) -> None:
        for name, net in self.nets.items():
            net.load_state_dict(state["nets"][name])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.pool_rgb.load_state_dict(state["pools"]["rgb"], self.rt.device)
        self.pool_lc.load_state_dict(state["pools"]["lc"], self.rt.device)
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.rt.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.rt.device)
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", self.ckpt_path, self.step)

    def validate(self) -> None:
        """RGB->LC accuracy on the paired validation rasters (if configured) -> ``val.csv``; best -> ``best.pt``."""
        from .areas import load_areas
        from .validate import evaluate_rgb2lc

        d = self.config.data
        if not (d.val_image and d.val_landcover):
            return
        image, landcover = data_mod.resolve([d.val_image, d.val_landcover], self.data_dir)
        areas = load_areas(data_mod.resolve_area_file(d.val_areas, self.data_dir)) if d.val_areas else None
        result = evaluate_rgb2lc(self.nets["g_rgb2lc"], image, landcover, d.image_bands, self.radiometry,
                                 self.scheme, d.crop_size_px, areas, self.rt.device)
        self.nets["g_rgb2lc"].train()
        path = self.run_dir / "val.csv"
        rows = []
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) < self.step]
        best = max((float(r["accuracy"]) for r in rows), default=-1.0)
        rows.append({"step": self.step, "accuracy": f"{result['accuracy']:.5f}",
                     "mean_iou": f"{result['mean_iou']:.5f}",
                     "baseline_accuracy": f"{result['baseline']['accuracy']:.5f}"})
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, ["step", "accuracy", "mean_iou", "baseline_accuracy"])
            writer.writeheader()
            writer.writerows(rows)
        log.info("validation at step %d: RGB->LC accuracy %.4f, mIoU %.4f (majority baseline %.4f)", self.step,
                 result["accuracy"], result["mean_iou"], result["baseline"]["accuracy"])
        if result["accuracy"] > best:
            state = self.state_dict()
            for key in ("opt_g", "opt_d", "pools"):
                state.pop(key)
            state["validation"] = {"accuracy": result["accuracy"], "mean_iou": result["mean_iou"]}
            save_atomic(state, self.run_dir / "checkpoints" / "best.pt")

    @torch.no_grad()
    def write_pictures(self, epoch: int | None) -> None:
        """Loss plot and sample grid (fixed windows, argmax class maps: uses no global randomness)."""
        tag = f"epoch_{epoch:04d}" if epoch is not None else f"step_{self.step:07d}"
        plot_losses(self.run_dir / "losses.csv", self.run_dir / "losses.png", f"{self.run_dir.name}, step {self.step}")
        rows = []
        for i in range(SAMPLE_COUNT):
            rng_lc = np.random.default_rng([self.config.runtime.seed, 7, i])
            rng_img = np.random.default_rng([self.config.runtime.seed, 8, i])
            lc_index, lc_valid = self.landcover.sample(rng_lc)
            rgb = self.images.sample(rng_img)[0]
            rows.append(self.translate_sample(lc_index, lc_valid, rgb))
        plot_samples(rows, self.scheme, self.run_dir / "samples" / f"{tag}.png", f"{self.run_dir.name}, {tag}")

    @torch.no_grad()
    def translate_sample(self, lc_index: np.ndarray, lc_valid: np.ndarray, rgb: np.ndarray) -> dict[str, np.ndarray]:
        dev = self.rt.device
        g_lc2rgb, g_rgb2lc = self.nets["g_lc2rgb"], self.nets["g_rgb2lc"]
        lc = one_hot(torch.from_numpy(lc_index.astype(np.int64))[None].to(dev),
                     torch.from_numpy(lc_valid)[None].to(dev), self.num_classes)
        x = torch.from_numpy(rgb.astype(np.float32))[None].to(dev)
        fake_rgb = g_lc2rgb(lc).float()
        rec_lc = g_rgb2lc(fake_rgb).argmax(1)
        fake_lc = g_rgb2lc(x).argmax(1)
        rec_rgb = g_lc2rgb(F.one_hot(fake_lc, self.num_classes).permute(0, 3, 1, 2).float()).float()
        return {"lc_index": lc_index, "lc_valid": lc_valid, "fake_rgb": fake_rgb[0].cpu().numpy(),
                "rec_lc": rec_lc[0].cpu().numpy(), "rgb": rgb, "fake_lc": fake_lc[0].cpu().numpy(),
                "rec_rgb": rec_rgb[0].cpu().numpy()}

    # -- signals --------------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> dict[int, Any]:
        def handler(signum: int, _frame: Any) -> None:
            if self.stop_signal is not None:  # second Ctrl-C: give up at once
                raise KeyboardInterrupt
            self.stop_signal = signum
            log.warning("signal %d received: stopping after this step with a checkpoint", signum)

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
