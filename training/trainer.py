"""The training loop: builds a run from a config, resumes it, steps it, checkpoints it, stops on signals; DDP.

The parts it puts together, each in its own module: the model step (:mod:`training.cyclegan`), the torch device
(:mod:`training.torch_device`), checkpoints (:mod:`training.checkpoints`), the run folder (:mod:`training.run_log`),
the data (:mod:`training.data`) and the schedule (:mod:`training.schedule`). Runs under ``torchrun`` with
DistributedDataParallel (gloo on CPU, nccl on CUDA); rank 0 writes the run folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from lcgan_qgis.core.model.contract import Direction, ModelContract, Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import default_scheme_path

from . import data as data_mod
from .checkpoints import (
    CHECKPOINT_FORMAT,
    STOP_SIGNALS,
    check_resume_config,
    git_commit,
    load_checkpoint,
    save_atomic,
    write_failure,
)
from .config import TrainConfig
from .cyclegan import LOSS_KEYS, CycleGAN
from .errors import TrainingError
from .process_group import end_process_group
from .run_log import RunLog
from .schedule import lr_factor
from .torch_device import choose_torch_device

__all__ = ["Trainer", "TrainingError", "load_checkpoint", "save_atomic"]

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
SAMPLE_COUNT = 3


def idle_cores() -> int:
    """The cores this process may use less those busy now (1-minute load average, shared between the processes of
    a ``torchrun`` on this machine), at least 1.

    torch's own default takes every core: on a CPU shared with other jobs its OpenMP threads spin at each barrier
    waiting for a thread that has lost its core, and ``make train``'s steps took 54-69 s with 2 threads against
    16-18 s with 1 next to other one-thread jobs (2 cores, load 4-6; docs/training.md).
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    return max(1, (cores - busy) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


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
        self.log = RunLog(self.run_dir, LOSS_KEYS)
        self.ckpt_path = self.log.checkpoints / CHECKPOINT_NAME
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise TrainingError(f"The run folder {self.run_dir} is a file; give a folder (new or of an earlier run).")
        self.rt = choose_torch_device(config.runtime)
        self.owns_group = self.rt.world > 1 and not dist.is_initialized()  # then fit() also destroys it
        if self.owns_group:
            dist.init_process_group("nccl" if self.rt.device.type == "cuda" else "gloo")
        threads = config.runtime.threads or idle_cores() if self.rt.device.type == "cpu" else config.runtime.threads
        if threads:
            torch.set_num_threads(threads)
            log.info("%d torch thread(s)%s", threads, "" if config.runtime.threads else
                     f" (runtime.threads=0: the cores idle now, load average {os.getloadavg()[0]:.1f})")
        torch.manual_seed(config.runtime.seed)
        self.scheme = ClassScheme.load(config.data.scheme or default_scheme_path())
        self.num_classes = len(self.scheme)
        self.image_bands = len(config.data.image_bands)
        resume = self.load_resume_state()
        radiometry = Radiometry.from_dict(resume["radiometry"], str(self.ckpt_path)) if resume else None
        self.landcover, self.images = data_mod.build_datasets(config, data_dir, self.scheme, radiometry)
        self.check_validation_pair()
        self.radiometry = self.images.radiometry
        self.gsd_m = self.images.sources[0].gsd_m
        self.model = CycleGAN(config, self.num_classes, self.image_bands, self.rt)
        self.step = 0
        if resume:
            self.restore(resume)
        self.model.wrap(config.runtime.compile)
        self.stop_signal: int | None = None
        self.last_ckpt_time = time.monotonic()

    # -- setup ----------------------------------------------------------------------------------------------
    def load_resume_state(self) -> dict[str, Any] | None:
        if not self.ckpt_path.is_file():
            return None
        state = load_checkpoint(self.ckpt_path)
        check_resume_config(state, self.config, self.ckpt_path)
        return state

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

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One CycleGAN update (:meth:`training.cyclegan.CycleGAN.train_step`)."""
        return self.model.train_step(batch)

    @property
    def nets(self) -> dict[str, torch.nn.Module]:
        return self.model.nets

    # -- the loop -------------------------------------------------------------------------------------------
    def fit(self) -> int:
        """Train until the schedule (or ``runtime.max_steps``) ends or a signal arrives; returns the global step.

        Raises:
            TrainingError: divergence, or the run folder cannot be written (disk full...): one line naming the folder;
                the last checkpoint is kept, so the same command resumes once there is room.
        """
        try:
            return self._fit()
        except OSError as exc:
            raise TrainingError(f"Cannot write the run folder {self.run_dir}: {write_failure(exc, self.run_dir)}. The "
                                f"last checkpoint {self.ckpt_path} is kept: free some space and run the same command "
                                "to resume.") from None

    def _fit(self) -> int:
        cfg, rt = self.config, self.rt
        total = cfg.total_steps if not cfg.runtime.max_steps else min(cfg.total_steps, cfg.runtime.max_steps)
        if rt.is_main:
            self.log.prepare(cfg, json.dumps(self.radiometry.to_dict(), indent=2))
            self.log.open_losses(self.step)
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
                self.model.set_lr(cfg.optim.lr * factor)
                losses = self.train_step(next(batches))
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingError(
                        f"Loss {', '.join(bad)} became {losses[bad[0]]} at step {self.step}; training stopped. "
                        f"The last good checkpoint is {self.ckpt_path} (not overwritten). Lower optim.lr or check "
                        "the data."
                    )
                self.step += 1
                if rt.is_main:
                    self.log.log_step({"step": self.step, "epoch": (self.step - 1) // cfg.optim.steps_per_epoch + 1,
                                       "lr": cfg.optim.lr * factor,
                                       "seconds": round(time.monotonic() - start_time, 3),
                                       **{k: f"{v:.6g}" for k, v in losses.items()}})
                if progress is not None:
                    progress.update(1)
                    if self.step % 10 == 0:
                        progress.set_postfix(cyc_rgb=f"{losses['cycle_rgb_l1']:.3f}",
                                             cyc_lc=f"{losses['cycle_lc_ce']:.3f}", refresh=False)
                self.after_step(total)
                if self.stop_signal is not None:
                    log.warning("signal %d: checkpoint written at step %d; resume with the same command",
                                self.stop_signal, self.step)
                    break
            if self.rt.world > 1:
                self.check_replicas_in_sync()
            if self.owns_group:
                end_process_group(self.model.run, self.nets)
        finally:
            if progress is not None:
                progress.close()
            self.restore_signal_handlers(previous)
            self.landcover.close()
            self.images.close()
            self.log.close()  # (last: on a full disk, flushing the losses fails)
        return self.step

    def after_step(self, total: int) -> None:
        cfg = self.config
        epoch_end = self.step % cfg.optim.steps_per_epoch == 0
        due = (self.step % cfg.runtime.checkpoint_every_steps == 0 or self.step >= total or epoch_end
               or self.stop_signal is not None
               or (cfg.runtime.checkpoint_every_s > 0
                   and time.monotonic() - self.last_ckpt_time >= cfg.runtime.checkpoint_every_s))
        if due or self.step % 25 == 0:
            self.log.flush()  # so that a running job can be watched
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

    # -- checkpoints ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.rt.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.rt.device)
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "config": self.config.to_dict(),
            "git_commit": git_commit(),
            "radiometry": self.radiometry.to_dict(),
            "gsd_m": self.gsd_m,
            "scheme": self.scheme.to_dict(),
            **self.model.state_dict(),
            "rng": rng,
        }

    def contracts(self) -> dict[Direction, ModelContract]:
        """The model contracts an export of this run's generators would carry now."""
        from .export import contracts_from_checkpoint

        light = {"config": self.config.to_dict(), "radiometry": self.radiometry.to_dict(),
                 "gsd_m": self.gsd_m, "scheme": self.scheme.to_dict(), "step": self.step, "git_commit": ""}
        return contracts_from_checkpoint(light, f"step{self.step}")

    def save_checkpoint(self) -> None:
        save_atomic(self.state_dict(), self.ckpt_path)
        self.last_ckpt_time = time.monotonic()
        log.info("checkpoint: step %d -> %s", self.step, self.ckpt_path)

    def restore(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state)
        except (KeyError, RuntimeError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainingError(f"Cannot resume from {self.ckpt_path}: its networks or optimizer state do not fit "
                                f"this config ({detail}). Use a new run folder.") from None
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.rt.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.rt.device)
        self.step = int(state["step"])
        log.info("resumed from %s at step %d", self.ckpt_path, self.step)

    # -- validation and pictures ----------------------------------------------------------------------------
    def check_validation_pair(self) -> None:
        """Refuse a validation pair on different grids now, not after the first epoch."""
        from .evaluation.validation import check_validation_pair

        d = self.config.data
        if d.val_image and d.val_landcover:
            check_validation_pair(*data_mod.resolve([d.val_image, d.val_landcover], self.data_dir))

    def validate(self) -> None:
        """RGB->LC accuracy on the paired validation rasters (if configured) -> ``val.csv``; best -> ``best.pt``."""
        from .areas import load_areas
        from .evaluation.validation import evaluate_rgb2lc

        d = self.config.data
        if not (d.val_image and d.val_landcover):
            return
        image, landcover = data_mod.resolve([d.val_image, d.val_landcover], self.data_dir)
        areas = load_areas(data_mod.resolve_area_file(d.val_areas, self.data_dir)) if d.val_areas else None
        contract = self.contracts()[Direction.RGB_TO_LANDCOVER]
        result = evaluate_rgb2lc(self.nets["g_rgb2lc"], image, landcover, contract, d.image_bands, areas,
                                 self.rt.device)
        best = self.log.log_validation(self.step, result)
        log.info("validation at step %d: RGB->LC accuracy %.4f, mIoU %.4f (majority baseline %.4f)", self.step,
                 result["accuracy"], result["mean_iou"], result["baseline"]["accuracy"])
        if result["accuracy"] > best:
            state = self.state_dict()
            for key in ("opt_g", "opt_d", "pools"):
                state.pop(key)
            state["validation"] = {"accuracy": result["accuracy"], "mean_iou": result["mean_iou"]}
            save_atomic(state, self.log.checkpoints / "best.pt")

    def write_pictures(self, epoch: int | None) -> None:
        """Loss plot and sample grid (fixed windows and noise: uses no global randomness)."""
        tag = f"epoch_{epoch:04d}" if epoch is not None else f"step_{self.step:07d}"
        rows = []
        for i in range(SAMPLE_COUNT):
            rng_lc = np.random.default_rng([self.config.runtime.seed, 7, i])
            rng_img = np.random.default_rng([self.config.runtime.seed, 8, i])
            (lc_index, lc_valid), lc_terrain = data_mod.split_terrain(self.landcover.sample(rng_lc), self.landcover)
            image, rgb_terrain = data_mod.split_terrain(self.images.sample(rng_img), self.images)
            rows.append(self.model.translate_sample(lc_index, lc_valid, image[0], seed=i, lc_terrain=lc_terrain,
                                                    rgb_terrain=rgb_terrain))
        self.log.write_pictures(tag, rows, self.scheme, self.step)

    # -- signals --------------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> dict[int, Any]:
        def handler(signum: int, _frame: Any) -> None:
            if self.stop_signal is not None:  # second Ctrl-C: give up at once
                raise KeyboardInterrupt
            self.stop_signal = signum
            log.warning("signal %d received: stopping after this step with a checkpoint", signum)

        previous = {}
        for sig in STOP_SIGNALS:  # (SIGHUP too: a closed terminal or ssh session writes the checkpoint)
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
