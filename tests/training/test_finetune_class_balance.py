"""``--class-balance``: cross-entropy weights from the training area's class frequencies (controlled counts), and a
real fine-tuning step that uses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.training.test_finetune_second_gen import region, tiny  # noqa: F401 (fixtures)
from training.errors import TrainingError
from training.finetune.data import MAX_CLASS_WEIGHT, Scene, class_weights
from training.finetune.run import FineTune, Settings


def scene(labels: np.ndarray, train: np.ndarray | None = None) -> Scene:
    h, w = labels.shape
    return Scene("s", np.zeros((3, h, w), np.float32), labels.astype(np.int64),
                 np.ones((h, w), bool) if train is None else train, np.zeros((h, w), bool), None, None, (0.0,), (1.0,))


def test_weights_follow_inverse_frequency_with_the_mean_pixel_at_one() -> None:
    labels = np.array([0] * 81 + [1] * 9 + [2] * 9 + [-1] * 1).reshape(10, 10)  # freqs 81/99, 9/99, 9/99
    w = class_weights([scene(labels)], 4, 0.5)
    assert w is not None and w.dtype == np.float32
    assert w[1] == pytest.approx(w[0] * 3.0, rel=1e-6)  # sqrt(81 / 9)
    assert w[1] == pytest.approx(w[2], rel=1e-6)
    freq = np.array([81, 9, 9]) / 99
    assert float((freq * w[:3]).sum()) == pytest.approx(1.0, rel=1e-6)
    assert w[3] == MAX_CLASS_WEIGHT  # absent from the training area
    full = class_weights([scene(labels)], 4, 1.0)
    assert full is not None and full[1] == pytest.approx(full[0] * 9.0, rel=1e-6)


def test_only_the_training_area_counts_and_rare_classes_are_capped() -> None:
    labels = np.zeros((100, 100), np.int64)
    labels[0, 0] = 1  # one pixel in 10,000: 1/f**0.5 = 100x the majority's
    train = np.ones((100, 100), bool)
    w = class_weights([scene(labels, train)], 2, 0.5)
    assert w is not None and w[1] == MAX_CLASS_WEIGHT
    train[0, 0] = False  # class 1 only outside the training area: absent
    w = class_weights([scene(labels, train)], 2, 0.5)
    assert w is not None and w[0] == pytest.approx(1.0) and w[1] == MAX_CLASS_WEIGHT


def test_no_balance_is_plain_cross_entropy_and_a_bad_value_is_one_line() -> None:
    labels = np.zeros((4, 4), np.int64)
    assert class_weights([scene(labels)], 2, 0.0) is None
    for bad in (-0.5, 1.5):
        with pytest.raises(TrainingError, match="--class-balance"):
            class_weights([scene(labels)], 2, bad)


def test_a_balanced_run_takes_real_steps_with_the_weights(tiny: Path, region: dict[str, Path],  # noqa: F811
                                                          tmp_path: Path) -> None:
    common = dict(base=str(tiny), imagery=[str(region["image"])], landcover=[str(region["lc"])], steps=1, crop=32,
                  batch=2, threads=1, int8=False, val_every_s=1e9, image_weight=0.0, precision="fp32")
    plain = FineTune(Settings(out=str(tmp_path / "plain"), **common))
    balanced = FineTune(Settings(out=str(tmp_path / "balanced"), class_balance=0.5, **common))
    assert plain.ce_weight is None
    assert balanced.ce_weight is not None and balanced.ce_weight.shape == (len(balanced.scheme),)
    before = {k: v.clone() for k, v in balanced.nets["g_rgb2lc"].state_dict().items()}
    ce_plain, ce_balanced = plain.train_step()["ce"], balanced.train_step()["ce"]
    assert np.isfinite(ce_balanced) and ce_balanced != pytest.approx(ce_plain, rel=1e-6)  # same batch, weighted
    after = balanced.nets["g_rgb2lc"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert plain.settings.identity() != balanced.settings.identity()  # a resumed run cannot switch weighting
