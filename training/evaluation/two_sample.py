"""The classifier two-sample test: can a small CNN tell generated imagery patches from real ones?

Lopez-Paz & Oquab (2017), "Revisiting Classifier Two-Sample Tests": train a classifier to separate two samples; its
accuracy on patches it never saw is 0.5 when the two distributions are indistinguishable to it and 1.0 when they are
fully separable. Here the classifier trains on patches of one area (the training area) and is scored on every
non-overlapping patch of another (the held-out area), each class balanced. It is a STRICT check: at 30 m a small
CNN also tells real imagery from the same imagery blurred by 1 px, which is why every report carries that control.

Inputs are ``(bands, rows, cols)`` float32 rasters already stretched to [-1, 1], each by its own percentiles
(:func:`.realism.percentile_stretch`), so a difference of units or of overall contrast does not count.
Everything is seeded: the same inputs and seed give the same numbers on the same machine.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .realism import cut_patches, grid_patches

log = logging.getLogger(__name__)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restored after).

    Measured on the 2 shared cores: a training step of the tiny classifier took 0.044 s on one thread and 0.38 s
    on two while other jobs ran (OpenMP's parallel regions stall when any other process holds a core).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class TwoSampleConfig:
    """The test's budget: at most ``max_steps`` steps per seed (0.044 s each on one quiet core here, 0.085 s next
    to three training runs).

    Measured on the bundled models' generated imagery of Zion (held-out accuracy per seed): batch 64 / lr 1e-3 /
    3,000 steps 0.952 and 0.968 (stopped at 2,350 and 3,000); batch 32 at lr 1e-3 for 2,000 steps 0.925 and 0.880
    (not converged), at lr 3e-3 0.966 and 0.904, with BatchNorm 0.888 and 0.988: the cheaper budgets scatter.
    """

    patch_px: int = 32
    batch_size: int = 64  # half real, half generated
    max_steps: int = 3000
    eval_every_steps: int = 50
    patience_evals: int = 8  # stop when the validation loss has not improved for this many evaluations
    #: ... but never in the first part of the budget: a classifier can sit on an early plateau (one did for 400
    #: steps at chance, 0.611, beside 0.963 for the other seed on the same images: docs/realism.md).
    min_fraction: float = 0.5
    min_improvement: float = 1e-3  # ... by at least this much (nats)
    val_patches: int = 256  # per class, non-overlapping patches of the training area
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0, 1)


class PatchClassifier(nn.Module):
    """A tiny CNN: 3x3 convolution, three stride-2 4x4 convolutions, global average pool, one logit (107 k params)."""

    def __init__(self, bands: int = 3, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(bands, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(4 * w, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


def _random_corners(mask: np.ndarray, patch_px: int) -> np.ndarray:
    corners = np.array(grid_patches(mask, patch_px, stride_px=1), dtype=np.int64)
    if corners.size == 0:
        raise ValueError(f"no {patch_px} px patch lies wholly inside the training area.")
    return corners


def _batch(real: np.ndarray, fake: np.ndarray, corners: np.ndarray, rng: np.random.Generator, size: int,
           patch_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``size // 2`` real and as many generated patches at random positions, with one random flip/rotation."""
    half = size // 2
    picks = corners[rng.integers(0, len(corners), size=2 * half)]
    x = np.concatenate([cut_patches(real, picks[:half].tolist(), patch_px),
                        cut_patches(fake, picks[half:].tolist(), patch_px)])
    if rng.integers(2):
        x = x[..., ::-1]
    x = np.rot90(x, int(rng.integers(4)), axes=(2, 3))
    y = np.concatenate([np.zeros(half, np.float32), np.ones(half, np.float32)])
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)


def _labelled(real: np.ndarray, fake: np.ndarray, corners: list[tuple[int, int]],
              patch_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = np.concatenate([cut_patches(real, corners, patch_px), cut_patches(fake, corners, patch_px)])
    y = np.concatenate([np.zeros(len(corners), np.float32), np.ones(len(corners), np.float32)])
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y)


@torch.no_grad()
def _score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 512) -> tuple[float, float]:
    """(mean binary cross-entropy in nats, accuracy) of ``model`` on labelled patches."""
    model.eval()
    logits = torch.cat([model(x[i:i + chunk]) for i in range(0, len(x), chunk)])
    model.train()
    loss = nn.functional.binary_cross_entropy_with_logits(logits, y).item()
    return loss, float(((logits > 0).float() == y).float().mean())


def train_one(real: np.ndarray, fake: np.ndarray, train_mask: np.ndarray, test_mask: np.ndarray,
              config: TwoSampleConfig, seed: int) -> dict:
    """Train one classifier (``seed``) until its validation loss plateaus; score it on ``test_mask``'s patches."""
    p = config.patch_px
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    corners = _random_corners(train_mask, p)
    val_grid = grid_patches(train_mask, p)
    val_pick = rng.permutation(len(val_grid))[: config.val_patches]
    x_val, y_val = _labelled(real, fake, [val_grid[i] for i in sorted(val_pick)], p)
    test_grid = grid_patches(test_mask, p)
    if not test_grid:
        raise ValueError(f"no {p} px patch lies wholly inside the test area.")
    model = PatchClassifier(real.shape[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    best_loss, best_step, best_state, stale, step = float("inf"), 0, None, 0, 0
    started = time.perf_counter()
    while step < config.max_steps:
        x, y = _batch(real, fake, corners, rng, config.batch_size, p)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % config.eval_every_steps == 0:
            val_loss, _ = _score(model, x_val, y_val)
            if val_loss < best_loss - config.min_improvement:
                best_loss, best_step, stale = val_loss, step, 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= config.patience_evals and step >= config.min_fraction * config.max_steps:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    val_loss, val_acc = _score(model, x_val, y_val)
    test_loss, test_acc = _score(model, *_labelled(real, fake, test_grid, p))
    return {"seed": seed, "steps": step, "best_step": best_step, "plateaued": step < config.max_steps,
            "val_loss": round(val_loss, 4), "val_accuracy": round(val_acc, 4), "test_loss": round(test_loss, 4),
            "accuracy": round(test_acc, 4), "test_patches_per_class": len(test_grid),
            "seconds": round(time.perf_counter() - started, 1)}


def two_sample_test(real: np.ndarray, fake: np.ndarray, train_mask: np.ndarray, test_mask: np.ndarray,
                    config: TwoSampleConfig = TwoSampleConfig()) -> dict:  # noqa: B008 (frozen default)
    """The classifier two-sample test of ``real`` vs ``fake`` (same grid, both stretched to [-1, 1]).

    ``train_mask`` / ``test_mask``: ``(rows, cols)`` bool, valid pixels of the training and the scoring area. Each
    seed trains a fresh :class:`PatchClassifier` on random ``patch_px`` patches of the training area (balanced
    batches, flips and rotations) with Adam until the loss on a fixed validation set of training-area patches has
    not improved for ``patience_evals`` evaluations, once ``min_fraction`` of ``max_steps`` are done (or
    ``max_steps``), keeps its best weights, and is scored on all non-overlapping patches of the scoring area.

    Returns:
        ``accuracy`` (mean over seeds; 0.5 = indistinguishable, 1.0 = always told apart), its per-seed values and
        step counts in ``runs``, and the ``config``.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real {real.shape} and generated {fake.shape} imagery must share one grid.")
    with one_torch_thread():
        runs = [train_one(real, fake, train_mask, test_mask, config, seed) for seed in config.seeds]
    for r in runs:
        log.info("two-sample test seed %d: accuracy %.3f after %d steps (best at %d), %.1f s", r["seed"],
                 r["accuracy"], r["steps"], r["best_step"], r["seconds"])
    return {"accuracy": round(float(np.mean([r["accuracy"] for r in runs])), 4), "runs": runs,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}}
