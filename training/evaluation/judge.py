"""The judge: a plain supervised U-Net segmenter trained on REAL imagery of the training area, cached on disk.

Two roles in ``make evaluate``:

* the SUPERVISED REFERENCE for RGB -> land cover: what plain supervised learning reaches on the same paired
  training area (``landsat8_rgb.tif`` windows with ``nlcd2011_on_landsat_grid.tif`` as labels, the same flips and
  the same radiometry as the bundled models), scored on the same held-out ground as the CycleGAN;
* the JUDGE of LC -> RGB in the style of Baier et al. (2021, "Building a Parallel Universe: Image Synthesis from
  Land Cover Maps and Auxiliary Raster Data"): the Frechet distance of its pooled features between generated and
  real imagery, and its accuracy reading generated imagery against the map it was generated from.

The network is a U-Net (Ronneberger et al. 2015): four levels of two 3x3 convolution + BatchNorm + ReLU, max-pool
down, 2x2 transposed convolution up, 1.09 M parameters with 14 classes; cross-entropy, AdamW, cosine schedule. Its
budget defaults to the bundled CycleGAN's in pixels: 1,500 steps of 8 windows of 64 px = 49 M pixels (the CycleGAN
ran 3,000 steps of 1 window of 128 px); about 4 minutes on one core here. BatchNorm uses its running statistics at
inference, so the judge's answer does not depend on how a raster is cut. A trained judge is cached under a digest of
its config, the code version and the bytes of its data: a cached one is reused, any change retrains.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.contract import STRETCH_PERCENTILES, Radiometry
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.storage.files import AtomicFile

from .two_sample import one_torch_thread

log = logging.getLogger(__name__)

JUDGE_CODE_VERSION = 1  # bump when the network, its training or its features change: cached judges then retrain
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "lcgan" / "judge"
FEATURE_CELL_PX = 32  # features are pooled over 32 px cells (960 m at 30 m GSD)


@dataclass(frozen=True)
class JudgeConfig:
    """Network size and training budget of the judge (every field enters the cache digest)."""

    widths: tuple[int, ...] = (24, 48, 96, 192)  # channels per U-Net level; the last is the bottleneck
    crop_px: int = 64  # 8 windows of 64 px per step: held-out accuracy 0.670 vs 0.664 for 2 of 128 px, same pixels
    batch_size: int = 8
    steps: int = 1500
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    seed: int = 0
    bands: tuple[int, ...] = (1, 2, 3)
    percentiles: tuple[float, float] = STRETCH_PERCENTILES
    max_nodata_fraction: float = 0.05
    bf16: bool = True  # bf16 autocast while training (1.3-1.8x faster on this CPU); inference runs in float32

    @property
    def pixels(self) -> int:
        """Training pixels seen: steps x batch x crop^2."""
        return self.steps * self.batch_size * self.crop_px * self.crop_px


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNet(nn.Module):
    """A plain U-Net returning class logits; :meth:`features` also returns the bottleneck and top decoder maps."""

    def __init__(self, in_channels: int, n_classes: int, widths: Sequence[int] = JudgeConfig.widths) -> None:
        super().__init__()
        w = list(widths)
        self.encoders = nn.ModuleList([_block(in_channels if i == 0 else w[i - 1], c) for i, c in enumerate(w)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(w[i + 1], w[i], 2, stride=2) for i in range(len(w) - 1)])
        self.decoders = nn.ModuleList([_block(2 * w[i], w[i]) for i in range(len(w) - 1)])
        self.head = nn.Conv2d(w[0], n_classes, 1)

    @property
    def size_multiple_px(self) -> int:
        return 2 ** (len(self.encoders) - 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, bottleneck, top)``: class scores at full resolution, the deepest map (1/8 resolution with
        four levels) and the last decoder map (full resolution)."""
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x)
            if i < len(self.encoders) - 1:
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
        bottleneck = x
        for i in reversed(range(len(self.decoders))):
            x = self.decoders[i](torch.cat([self.ups[i](x), skips[i]], dim=1))
        return self.head(x), bottleneck, x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


@dataclass
class Judge:
    """A trained judge: network, the radiometry and scheme it was trained with, and how it was trained."""

    model: UNet
    radiometry: Radiometry
    scheme: ClassScheme
    config: JudgeConfig
    info: dict[str, Any] = field(default_factory=dict)

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """Imagery in the training imagery's units -> the judge's [-1, 1] input."""
        return self.radiometry.normalize(image)

    @torch.no_grad()
    def maps(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(class indices (rows, cols), bottleneck (C, rows/8, cols/8), top (c, rows, cols))`` of a whole
        normalised ``(bands, rows, cols)`` raster in one float32 pass (edges reflected up to the size multiple)."""
        m = self.model.size_multiple_px
        rows, cols = x.shape[1:]
        pad = ((0, 0), (0, -rows % m), (0, -cols % m))
        t = torch.from_numpy(np.pad(x.astype(np.float32), pad, mode="reflect"))[None]
        self.model.eval()
        with one_torch_thread():
            logits, bottleneck, top = self.model.features(t)
        deep = bottleneck[0, :, : math.ceil(rows / m), : math.ceil(cols / m)]
        return logits[0, :, :rows, :cols].argmax(0).numpy(), deep.numpy(), top[0, :, :rows, :cols].numpy()


def pooled_features(bottleneck: np.ndarray, top: np.ndarray, corners: Sequence[tuple[int, int]],
                    bottleneck_scale: int, cell_px: int = FEATURE_CELL_PX) -> np.ndarray:
    """``(cells, C + c)``: the bottleneck and the top decoder map averaged over each ``cell_px`` cell.

    The judge's feature of a patch of ground: what it saw at its coarsest scale (context, 192 channels) and at its
    finest (24 channels), both global-average-pooled over the cell. ``bottleneck_scale``: pixels per bottleneck
    cell (:attr:`UNet.size_multiple_px`); ``corners`` from :func:`.realism.grid_patches`.
    """
    s = bottleneck_scale
    out = np.empty((len(corners), bottleneck.shape[0] + top.shape[0]), np.float64)
    for k, (r, c) in enumerate(corners):
        r0, c0 = r // s, c // s
        deep = bottleneck[:, r0:max(r0 + 1, (r + cell_px) // s), c0:max(c0 + 1, (c + cell_px) // s)]
        out[k, : bottleneck.shape[0]] = deep.mean(axis=(1, 2))
        out[k, bottleneck.shape[0]:] = top[:, r:r + cell_px, c:c + cell_px].mean(axis=(1, 2))
    return out


# -- training -------------------------------------------------------------------------------------------------------
def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def judge_digest(config: JudgeConfig, image_path: Path, landcover_path: Path, areas_path: Path,
                 scheme: ClassScheme, radiometry: Radiometry) -> str:
    """16 hex digits over the config, the code version, the scheme, the radiometry and the bytes of the data."""
    payload = {"config": asdict(config), "code": JUDGE_CODE_VERSION, "scheme": scheme.to_dict(),
               "radiometry": [radiometry.low, radiometry.high, radiometry.percentiles],
               "files": [_file_digest(Path(p)) for p in (image_path, landcover_path, areas_path)]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _readers(config: JudgeConfig, image_path: Path, landcover_path: Path, areas_path: Path,
             scheme: ClassScheme) -> Any:
    from ..areas import load_areas
    from ..data import ImageRasters, LandCoverRasters
    from ..sources import RasterSource

    labels = LandCoverRasters([RasterSource.open(landcover_path)], scheme, config.crop_px, 1.0)
    return ImageRasters([RasterSource.open(image_path)], config.bands, config.crop_px, config.max_nodata_fraction,
                        load_areas(areas_path), percentiles=config.percentiles, paired=labels)


def _lr(step: int, config: JudgeConfig) -> float:
    """Linear warm-up, then cosine decay to 0 at ``config.steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def _batch(images: Any, config: JudgeConfig, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``step``: windows drawn from ``(seed, step, k)``, flipped like the CycleGAN's; invalid labels -100."""
    from ..data import augment

    xs, ys = [], []
    for k in range(config.batch_size):
        rng = np.random.default_rng([config.seed, step, k])
        pixels, valid, labels, labels_valid = augment(images.sample(rng), rng, rot90=False)
        xs.append(pixels)
        ys.append(np.where(valid & labels_valid, labels, -100))
    return torch.from_numpy(np.stack(xs).astype(np.float32)), torch.from_numpy(np.stack(ys).astype(np.int64))


def train_judge(image_path: str | Path, landcover_path: str | Path, areas_path: str | Path, scheme: ClassScheme,
                config: JudgeConfig = JudgeConfig()) -> Judge:  # noqa: B008 (frozen default)
    """Train a judge on paired windows of ``image_path`` / ``landcover_path`` inside ``areas_path``.

    The radiometry is the training imagery's ``config.percentiles`` (computed by :class:`training.data.ImageRasters`
    as for the CycleGAN). Deterministic: one torch thread, windows and initialisation from ``config.seed``.

    Raises:
        InputRasterError: a raster or the areas cannot be read, or the grids differ (the message names the file).
    """
    images = _readers(config, Path(image_path), Path(landcover_path), Path(areas_path), scheme)
    torch.manual_seed(config.seed)
    model = UNet(len(config.bands), len(scheme), config.widths)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    losses, window, started = [], [], time.perf_counter()
    log_every = min(100, max(1, config.steps // 10))
    with one_torch_thread():
        for step in range(config.steps):
            for group in optimizer.param_groups:
                group["lr"] = _lr(step, config)
            x, y = _batch(images, config, step)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = model(x)
            loss = nn.functional.cross_entropy(logits.float(), y, ignore_index=-100)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            window.append(loss.item())
            if len(window) == log_every or step == config.steps - 1:
                losses.append({"step": step + 1, "loss": round(float(np.mean(window)), 4)})
                log.info("judge step %d/%d: cross-entropy %.3f (%.0f s)", step + 1, config.steps, losses[-1]["loss"],
                         time.perf_counter() - started)
                window = []
    images.close()
    info = {"steps": config.steps, "pixels": config.pixels, "seconds": round(time.perf_counter() - started, 1),
            "parameters": sum(p.numel() for p in model.parameters()), "loss_curve": losses,
            "areas": Path(areas_path).name, "image": Path(image_path).name, "labels": Path(landcover_path).name}
    return Judge(model.eval(), images.radiometry, scheme, config, info)


def save_judge(judge: Judge, path: Path) -> Path:
    """Write ``judge`` to ``path`` atomically (:class:`~lcgan_qgis.core.storage.files.AtomicFile`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(path) as tmp:
        torch.save({"state_dict": judge.model.state_dict(), "config": asdict(judge.config),
                    "radiometry": judge.radiometry.to_dict(), "scheme": judge.scheme.to_dict(),
                    "info": judge.info}, tmp)
    return path


def load_judge(path: Path) -> Judge:
    """Read a judge written by :func:`save_judge`."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    config = JudgeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["config"].items()})
    scheme = ClassScheme.from_dict(saved["scheme"], source=str(path))
    model = UNet(len(config.bands), len(scheme), config.widths)
    model.load_state_dict(saved["state_dict"])
    radiometry = Radiometry.from_dict(saved["radiometry"], source=str(path))
    return Judge(model.eval(), radiometry, scheme, config, saved["info"])


def cached_judge(image_path: str | Path, landcover_path: str | Path, areas_path: str | Path, scheme: ClassScheme,
                 config: JudgeConfig = JudgeConfig(),  # noqa: B008 (frozen default)
                 cache_dir: str | Path | None = None) -> Judge:
    """The judge for this data and config: loaded from ``cache_dir/<digest>.pt`` when there, else trained and saved.

    ``cache_dir`` defaults to ``~/.cache/lcgan/judge``. ``info["cache"]`` says which happened and where.
    """
    paths = [Path(p) for p in (image_path, landcover_path, areas_path)]
    for p in paths:
        if not p.is_file():
            raise InputRasterError(f"Judge training data not found: {p}")
    radiometry = _readers(config, *paths, scheme).radiometry
    digest = judge_digest(config, *paths, scheme, radiometry)
    path = Path(cache_dir or DEFAULT_CACHE_DIR) / f"judge-{digest}.pt"
    if path.is_file():
        judge = load_judge(path)
        judge.info["cache"] = {"path": str(path), "digest": digest, "reused": True}
        log.info("judge: reusing %s (trained %d steps in %.0f s)", path, judge.info["steps"], judge.info["seconds"])
        return judge
    log.info("judge: training %d steps of %d x %d px windows (cache %s)", config.steps, config.batch_size,
             config.crop_px, path)
    judge = train_judge(*paths, scheme, config)
    judge.info["digest"] = digest
    save_judge(judge, path)
    judge.info["cache"] = {"path": str(path), "digest": digest, "reused": False}
    return judge
