"""The fine-tuning loop: paired supervised steps from the base generators, on a budget, resumable.

Each step updates both generators on the same ``batch`` windows of the training area: the land-cover model by
cross-entropy against the labels (pixels without a label ignored), the image model by the L1 of 4x4 block means
against the imagery (the bundled recipe's low-pass paired term: texture is left to what the base learned), on
blocks whose pixels are all labelled. The unpaired cycle and adversarial terms are left out: they need the two
discriminators as well (two more networks per step) and were not measured here; the bundled recipe needed the paired
terms to learn the classes at all (docs/recipe.md). BatchNorm layers stay
frozen (the base's are folded identities: :mod:`training.finetune.base`).

Checkpoints (``checkpoints/last.pt``, atomic) every ``checkpoint_every_s`` and on SIGINT/SIGTERM; a second run
with the same ``--out`` resumes where the first stopped, and since every window and noise draw is seeded by (seed,
step) the resumed run takes the very steps the uninterrupted one would have.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.scheme import ClassScheme

from ..checkpoints import save_atomic
from ..errors import TrainingError
from . import evaluate as ev
from . import image_terms
from .base import encoder_layers, freeze_norms, load_base_folder
from .data import Scene, WindowSampler, class_weights, load_scene
from .schemes import class_mapping, read_includes, scheme_from_raster, transfer

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "lcgan-finetune-1"


@dataclass
class Settings:
    """Everything a fine-tuning run is given (the command line's options)."""

    base: str
    imagery: list[str]
    out: str
    landcover: list[str] = field(default_factory=list)
    labels: str = ""
    class_field: str = "class"
    scheme: str = ""
    train_area: str = ""
    val_area: str = ""
    minutes: float = 0.0
    steps: int = 0
    device: str = "cpu"
    threads: int = 1
    bands: list[int] = field(default_factory=lambda: [1, 2, 3])
    crop: int = 128
    batch: int = 4
    lr: float = 2e-4
    image_weight: float = 1.0  # weight of the image model's low-pass L1 (0: leave it as the base has it)
    landcover_weight: float = 1.0  # weight of the land-cover model's cross-entropy (0: leave it as the base has it)
    adversarial_weight: float = 0.0  # image model: a discriminator that sees the map (0: none)
    diversity_weight: float = 0.0  # image model: two noise draws per map must differ (0: none)
    feature_match_weight: float = 0.0  # with the discriminator: pix2pixHD's feature matching (paired; 10 blurred)
    freeze_encoder: bool = False  # train only the residual blocks and the decoder
    class_balance: float = 0.0  # exponent of the inverse class frequency weighting the cross-entropy (0: none)
    elevation: str = ""  # a DEM: the output folder also gets a terrain-aware model (training/relight.py)
    precision: str = "auto"  # auto (bf16 where the CPU computes it natively, or on CUDA) | fp32 | bf16 (autocast)
    val_every_s: float = 60.0
    checkpoint_every_s: float = 120.0
    seed: int = 0
    int8: bool = True

    def identity(self) -> str:
        """What a resumed run must share with the first (data, scheme, base, recipe; not the budget)."""
        keep = {k: v for k, v in asdict(self).items()
                if k not in ("minutes", "steps", "device", "threads", "val_every_s", "checkpoint_every_s", "int8",
                             "elevation")}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def bf16_native(device: torch.device) -> bool:
    """bf16 autocast pays off: CUDA with bf16, or a CPU with native bf16 (AVX512-BF16/AMX; emulated bf16 is slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class FineTune:
    """Builds a run from :class:`Settings` (data, scheme, generators), then :meth:`train` runs the budget."""

    def __init__(self, settings: Settings) -> None:
        s = self.settings = settings
        if s.minutes <= 0 and s.steps <= 0:
            raise TrainingError("Give a budget: --minutes N or --steps N (both > 0).")
        if not s.landcover and not s.labels:
            raise TrainingError("Give labels: --landcover RASTER and/or --labels POLYGONS --class-field FIELD.")
        if s.crop < 32 or s.crop % 4:
            raise TrainingError(f"--crop {s.crop} must be a multiple of 4, at least 32.")
        for name in ("image_weight", "landcover_weight", "adversarial_weight", "diversity_weight",
                     "feature_match_weight"):
            if not getattr(s, name) >= 0:
                raise TrainingError(f"--{name.replace('_', '-')} {getattr(s, name)} must be >= 0.")
        if s.landcover_weight == 0 and not s.image_weight + s.adversarial_weight + s.diversity_weight:
            raise TrainingError("Nothing to train: --landcover-weight 0 and no image-model term.")
        if s.feature_match_weight and not s.adversarial_weight:
            raise TrainingError("--feature-match-weight needs --adversarial-weight > 0 (it compares the "
                                "discriminator's features).")
        if (s.adversarial_weight or s.diversity_weight) and not s.image_weight:
            raise TrainingError("--adversarial-weight and --diversity-weight need --image-weight > 0 (the paired "
                                "term keeps each class's colour).")
        torch.set_num_threads(max(1, s.threads))
        self.device = torch.device("cuda" if s.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
        if s.device == "cuda" and self.device.type != "cuda":
            raise TrainingError("--device cuda, but torch sees no CUDA device; use --device cpu.")
        self.out = Path(s.out)
        self.bf16 = s.precision == "bf16" or (s.precision == "auto" and bf16_native(self.device))
        self.ckpt = self.out / "checkpoints" / "last.pt"
        bases = load_base_folder(s.base)
        self.base = bases
        self.base_scheme = bases[Direction.RGB_TO_LANDCOVER].contract.scheme
        contract = bases[Direction.LANDCOVER_TO_RGB].contract
        if contract.terrain_channels:
            raise TrainingError(f"--base {s.base}: its land cover -> RGB model reads elevation; fine-tuning starts "
                                "from map-only models.")
        self.scheme = self._scheme()
        from lcgan_qgis.core.model.scheme import unseen_code_substitutes

        self.substitutes = unseen_code_substitutes(self.scheme, self._present_codes())
        for code, target in self.substitutes.items():
            log.warning("land-cover code %d is not in the scheme '%s': read as %d (the nearest class of the same NLCD "
                        "group)", code, self.scheme.name, target)
        self.scenes: list[Scene] = []
        self.split: dict[str, Any] | None = None
        radiometry = bases[Direction.RGB_TO_LANDCOVER].contract.radiometry
        for image in s.imagery:
            scene, split = load_scene(image, s.landcover, s.labels or None, s.class_field, s.bands, self.scheme,
                                      radiometry, self.substitutes, s.train_area or None, s.val_area or None)
            self.scenes.append(scene)
            self.split = self.split or split
        if not any((sc.val & sc.labelled).any() for sc in self.scenes):
            raise TrainingError("No labelled pixel in the validation area.")
        self.sampler = self._sampler()
        weight = class_weights(self.scenes, len(self.scheme), s.class_balance)
        self.ce_weight = None if weight is None else torch.from_numpy(weight).to(self.device)
        self.quick = [(sc, ev.quick_windows(sc)) for sc in self.scenes]
        self._build_nets()
        self.step, self.elapsed_s, self.curve = 0, 0.0, []
        self.stop_signal: int | None = None
        if self.ckpt.is_file():
            self._resume()

    # -- setup ----------------------------------------------------------------------------------------------
    def _sampler(self) -> WindowSampler:
        """Windows of ``--crop`` px, or of the largest smaller size (halving, at least 32 px) that fits the area."""
        size = self.settings.crop
        while True:
            try:
                sampler = WindowSampler(self.scenes, size, self.settings.seed)
            except TrainingError:
                if size // 2 < 32:
                    raise
                size = (size // 2) - (size // 2) % 4
                continue
            if size != self.settings.crop:
                log.warning("no %d px window fits the training area; training on %d px windows", self.settings.crop,
                            size)
            return sampler

    def _scheme(self) -> ClassScheme:
        s = self.settings
        if s.scheme:
            return ClassScheme.load(s.scheme)
        from lcgan_qgis.core.model.scheme import unseen_code_substitutes

        codes = self._present_codes()
        if not (codes - set(self.base_scheme.codes) - set(unseen_code_substitutes(self.base_scheme, codes))):
            return self.base_scheme
        for path in s.landcover:
            found = scheme_from_raster(path)
            if found is not None:
                log.info("class scheme from %s's colour table: %d classes", path, len(found))
                return found
        raise TrainingError(f"The land cover has codes {sorted(codes - set(self.base_scheme.codes))} the base "
                            f"scheme '{self.base_scheme.name}' lacks, and no colour table; give --scheme S.json.")

    def _present_codes(self) -> set[int]:
        import rasterio

        codes: set[int] = set()
        for path in self.settings.landcover:
            if not Path(path).is_file():
                raise TrainingError(f"Land-cover file not found: {path}")
            with rasterio.open(path) as ds:
                values = np.unique(ds.read(1))
                codes |= {int(v) for v in values if ds.nodata is None or v != ds.nodata}
        return codes - {self.base_scheme.nodata_code} if not self.settings.scheme else codes

    def _build_nets(self) -> None:
        s = self.settings
        base = {"g_rgb2lc": self.base[Direction.RGB_TO_LANDCOVER], "g_lc2rgb": self.base[Direction.LANDCOVER_TO_RGB]}
        self.archs = {k: b.architecture for k, b in base.items()}
        base_nets = {k: b.net for k, b in base.items()}
        counts = self._base_cooccurrence(base_nets["g_rgb2lc"])
        includes = read_includes(s.scheme, self.scheme) if s.scheme else {}
        self.mapping = class_mapping(self.base_scheme, self.scheme, includes, counts)
        weights = counts.sum(axis=1) if counts is not None else np.ones(len(self.base_scheme))
        self.nets, self.transfer_notes = transfer(base_nets, self.archs, self.base_scheme, self.scheme, self.mapping,
                                                  weights, s.seed)
        self.nets = {k: v.to(self.device) for k, v in self.nets.items()}
        self.initial_lc2rgb = copy.deepcopy(self.nets["g_lc2rgb"]).eval()
        self.k = len(self.scheme)
        self.extra = self.nets["g_lc2rgb"].in_channels - self.k
        if s.adversarial_weight > 0:
            self.nets["d_rgb"] = image_terms.map_discriminator(self.k, self.sampler.size).to(self.device)
        self.params: dict[str, list[nn.Parameter]] = {}
        for name, net in self.nets.items():
            net.train()
            freeze_norms(net)
            if s.freeze_encoder:
                for layer in encoder_layers(net):  # first convolution and the two downsampling stages
                    for p in layer.parameters():
                        p.requires_grad_(False)
            self.params[name] = [p for p in net.parameters() if p.requires_grad]
        self.opts = {k: torch.optim.Adam(v, lr=s.lr, betas=image_terms.BETAS if k == "d_rgb" else (0.9, 0.999))
                     for k, v in self.params.items()}

    def _base_cooccurrence(self, net: nn.Module) -> np.ndarray | None:
        """Base predictions against training labels on a few training windows (class matching, weights)."""
        kb, kn = len(self.base_scheme), len(self.scheme)
        counts = np.zeros((kb, kn), dtype=np.int64)
        for scene in self.scenes:
            mask = scene.train & scene.labelled
            proxy = Scene(scene.name, scene.image, scene.labels, scene.train, mask, scene.transform, scene.crs,
                          scene.low, scene.high)
            for rows, cols in ev.quick_windows(proxy, 256, 4):
                pred = ev.predict(net, scene.image[:, rows, cols])
                truth = scene.labels[rows, cols]
                ok = mask[rows, cols]
                np.add.at(counts, (pred[ok], truth[ok]), 1)
        return counts

    # -- checkpoints ----------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "identity": self.settings.identity(), "step": self.step,
                "config": asdict(self.settings),
                "elapsed_s": self.elapsed_s, "curve": self.curve,
                "nets": {k: v.state_dict() for k, v in self.nets.items()},
                "opts": {k: v.state_dict() for k, v in self.opts.items()}, "scheme": self.scheme.to_dict()}

    def save(self) -> None:
        try:
            self.ckpt.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"Cannot create {self.ckpt.parent}: {exc.strerror or exc}.") from None
        save_atomic(self.state(), self.ckpt)
        log.info("checkpoint: step %d -> %s", self.step, self.ckpt)

    def _resume(self) -> None:
        try:
            state = torch.load(self.ckpt, map_location="cpu", weights_only=True)
        except Exception as exc:  # (unpickling, truncation, OS errors: all mean an unusable file)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise TrainingError(f"Cannot read the checkpoint {self.ckpt} ({detail}); delete it to start over."
                                ) from None
        if (not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT
                or state.get("identity") != self.settings.identity()):
            raise TrainingError(f"{self.ckpt} is from a fine-tuning run with other data, scheme, base or recipe; "
                                "use a new --out folder (or delete it to start over).")
        for k, net in self.nets.items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.opts.items():
            opt.load_state_dict(state["opts"][k])
        self.step, self.elapsed_s, self.curve = int(state["step"]), float(state["elapsed_s"]), list(state["curve"])
        log.info("resumed from %s at step %d (%.1f min trained)", self.ckpt, self.step, self.elapsed_s / 60)

    # -- the loop -------------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        s = self.settings
        images, labels = self.sampler.batch(self.step, s.batch)
        x = torch.from_numpy(images).to(self.device)
        y = torch.from_numpy(labels).to(self.device)
        gen = torch.Generator().manual_seed(s.seed * 1_000_003 + self.step)
        gain = 1.0 + (torch.rand((x.shape[0], x.shape[1], 1, 1), generator=gen) - 0.5) * 0.2
        offset = (torch.rand((x.shape[0], x.shape[1], 1, 1), generator=gen) - 0.5) * 0.1
        draws = 2 if s.diversity_weight > 0 else 1
        noise = torch.randn((draws * x.shape[0], self.extra, x.shape[2], x.shape[3]), generator=gen)
        cast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        losses = {}
        if s.landcover_weight > 0:
            with cast:
                logits = self.nets["g_rgb2lc"]((x * gain.to(x) + offset.to(x)).clamp(-1, 1))
                ce = nn.functional.cross_entropy(logits.float(), y, weight=self.ce_weight, ignore_index=-1)
            self.opts["g_rgb2lc"].zero_grad(set_to_none=True)
            (s.landcover_weight * ce).backward()
            self.opts["g_rgb2lc"].step()
            losses["ce"] = float(ce.detach())
        if s.image_weight > 0:
            losses.update(self._image_step(x, y, noise, draws, cast))
        return losses

    def _image_step(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, draws: int,
                    cast: Any) -> dict[str, float]:
        """The image model's step: the paired low-pass L1, then the optional adversarial and diversity terms
        (:mod:`training.finetune.image_terms`) on ``draws`` paintings of each map."""
        s = self.settings
        maps = ev.onehot(y.cpu(), self.k, 0).to(self.device)
        inp = torch.cat([maps.repeat(draws, 1, 1, 1), noise.to(self.device)], 1)
        with cast:
            fake = self.nets["g_lc2rgb"](inp).float()
        ok = (y >= 0).float()[:, None]
        l1 = image_terms.lowpass_l1(fake, x.repeat(draws, 1, 1, 1), ok.repeat(draws, 1, 1, 1))
        total = s.image_weight * l1
        losses = {"l1": float(l1.detach())}
        if s.diversity_weight > 0:
            spread = image_terms.spread(fake[: x.shape[0]], fake[x.shape[0]:])
            total = total - s.diversity_weight * spread.clamp(max=image_terms.SPREAD_CAP)
            losses["spread"] = float(spread.detach())
        real_cond, fake_cond = torch.cat([x, maps], 1), torch.cat([fake, maps.repeat(draws, 1, 1, 1)], 1)
        if s.adversarial_weight > 0:
            d = self.nets["d_rgb"].requires_grad_(False)  # the generator's step: no gradients for D's weights
            with cast:
                judged_fake = d(fake_cond)
            if s.feature_match_weight > 0:
                with cast, torch.no_grad():
                    judged_real = d(real_cond)
                gan, fm = image_terms.generator_terms(judged_fake, judged_real, draws)
                losses["fm"] = float(fm.detach())
            else:
                gan, fm = image_terms.generator_terms(judged_fake, None, draws)
            total = total + s.adversarial_weight * (gan + s.feature_match_weight * fm)
            losses["g_gan"] = float(gan.detach())
            d.requires_grad_(True)
        self.opts["g_lc2rgb"].zero_grad(set_to_none=True)
        total.backward()
        self.opts["g_lc2rgb"].step()
        if s.adversarial_weight > 0:
            with cast:
                d_loss = image_terms.discriminator_loss(self.nets["d_rgb"], real_cond, fake_cond.detach())
            self.opts["d_rgb"].zero_grad(set_to_none=True)
            d_loss.backward()
            self.opts["d_rgb"].step()
            losses["d"] = float(d_loss.detach())
        return losses

    def fraction(self) -> float:
        """How much of the budget is spent (the larger of steps and minutes where both are given)."""
        s = self.settings
        return max(self.step / s.steps if s.steps else 0.0,
                   self.elapsed_s / (60 * s.minutes) if s.minutes else 0.0)

    def set_lr(self) -> None:
        """lr constant for the first half of the budget, then linearly to 0 (the bundled recipe's shape): the
        weights settle instead of stopping mid-jump (validation accuracy moved by +-0.02 between points at a
        constant 2e-4)."""
        lr = self.settings.lr * min(1.0, 2.0 * (1.0 - self.fraction()))
        for opt in self.opts.values():
            for group in opt.param_groups:
                group["lr"] = max(lr, 0.0)

    def quick_accuracy(self) -> float:
        cm = sum(ev.confusion(sc, wins, lambda im: ev.predict(self.nets["g_rgb2lc"], im), self.k)
                 for sc, wins in self.quick)
        return float(np.trace(cm) / max(1, cm.sum()))

    def done(self) -> bool:
        s = self.settings
        return (s.steps > 0 and self.step >= s.steps) or (s.minutes > 0 and self.elapsed_s >= s.minutes * 60)

    def train(self, progress: Any = None) -> int:
        """Run the budget (or what is left of it after a resume); returns the step reached."""
        s = self.settings
        previous = self._install_signals()
        try:
            if not self.curve:
                t0 = time.monotonic()
                acc = self.quick_accuracy()
                val_s = time.monotonic() - t0
                if s.minutes and s.minutes * 60 < 3 * val_s:
                    raise TrainingError(f"--minutes {s.minutes:g} is too small: one validation pass takes {val_s:.0f} s"
                                        f" here; give at least {math.ceil(3 * val_s / 60)} minute(s).")
                self.curve.append({"step": 0, "minutes": 0.0, "accuracy": acc, "loss": None})
                log.info("step 0: validation accuracy %.4f (the base generators with the carried-over classes)", acc)
            last_val = last_ckpt = time.monotonic()
            losses: dict[str, float] = {}
            while not self.done() and self.stop_signal is None:
                t0 = time.monotonic()
                self.set_lr()
                losses = self.train_step()
                self.step += 1
                dt = time.monotonic() - t0
                self.elapsed_s += dt
                if not all(math.isfinite(v) for v in losses.values()):
                    raise TrainingError(f"Loss became {losses} at step {self.step}; the last good checkpoint "
                                        f"{self.ckpt} is kept. Lower --lr.")
                if self.step <= 3 or self.step % 10 == 0:
                    log.info("step %d: %s (%.2f s/step)", self.step,
                             ", ".join(f"{k} {v:.4f}" for k, v in losses.items()), dt)
                now = time.monotonic()
                if now - last_val >= s.val_every_s or self.done():
                    acc = self.quick_accuracy()
                    self.curve.append({"step": self.step, "minutes": round(self.elapsed_s / 60, 3), "accuracy": acc,
                                       "loss": losses})
                    log.info("step %d (%.1f min): loss %s, validation accuracy %.4f", self.step, self.elapsed_s / 60,
                             ", ".join(f"{k} {v:.4f}" for k, v in losses.items()), acc)
                    last_val = time.monotonic()
                if progress is not None:
                    progress(self.step, losses, self.curve[-1]["accuracy"], self.elapsed_s)
                if time.monotonic() - last_ckpt >= s.checkpoint_every_s:
                    self.save()
                    last_ckpt = time.monotonic()
            self.save()
            if self.stop_signal is not None:
                log.warning("signal %d: checkpoint at step %d kept; run the same command to resume", self.stop_signal,
                            self.step)
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
        return self.step

    def _install_signals(self) -> dict[int, Any]:
        def handler(signum: int, _frame: Any) -> None:
            if self.stop_signal is not None:
                raise KeyboardInterrupt
            self.stop_signal = signum
            log.warning("signal %d: stopping after this step with a checkpoint", signum)

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):
                previous[sig] = signal.signal(sig, handler)
        return previous
