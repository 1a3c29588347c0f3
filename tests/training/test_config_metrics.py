"""Config (TOML + overrides, unknown keys rejected), the lr schedule and the numpy metrics."""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import numpy as np
import pytest

from training.config import ConfigError, TrainConfig
from training.evaluation.metrics import accuracy, confusion_matrix, iou_per_class, majority_baseline, mean_iou
from training.schedule import lr_factor

REPO = Path(__file__).resolve().parents[2]


def test_shipped_configs_load() -> None:
    default = TrainConfig.load(REPO / "training" / "configs" / "default.toml")
    assert (default.model.ngf, default.model.n_blocks, default.data.crop_size_px) == (64, 9, 256)
    assert (default.optim.epochs, default.optim.epochs_decay, default.optim.lr) == (200, 100, 2e-4)
    bundled = TrainConfig.load(REPO / "training" / "configs" / "zion_bundled.toml")
    assert bundled.model.ngf == 32 and bundled.data.crop_size_px == 128


def test_overrides_types_and_round_trip(tmp_path: Path) -> None:
    config = TrainConfig.load(None, ["ngf=32", "optim.lr=1e-3", "data.image_bands=[3,2,1]", "rot90=true",
                                     "fake_lc_for_d=softmax", "data.scheme=my scheme.json"])
    assert config.model.ngf == 32 and config.optim.lr == 1e-3 and config.data.image_bands == [3, 2, 1]
    assert config.data.rot90 is True and config.data.scheme == "my scheme.json"
    again = TrainConfig.from_dict(tomllib.loads(config.to_toml()))
    assert again == config and again.digest() == config.digest()
    assert TrainConfig.load(None, ["ngf=16"]).digest() != config.digest()


@pytest.mark.parametrize(("override", "message"), [
    ("nfg=3", "unknown; keys:"),
    ("model.nfg=3", r"unknown key\(s\) \['nfg'\] in \[model\]; choose from"),
    ("optics.lr=1", "unknown section"),
    ("ngf=abc", "must be an integer"),
    ("fake_lc_for_d=hard", "gumbel_st"),
    ("crop_size_px=30", "multiple of 4"),
    ("seed", "not key=value"),
])
def test_bad_overrides_are_rejected_with_choices(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig.load(None, [override])


def test_unknown_toml_keys_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[optim]\nlearning_rate = 1e-3\n")
    with pytest.raises(ConfigError, match=r"learning_rate.*choose from"):
        TrainConfig.load(path)


def test_lr_schedule_constant_then_linear_to_zero() -> None:
    factors = [lr_factor(s, 100, 200) for s in range(200)]
    assert factors[:100] == [1.0] * 100
    assert all(a > b for a, b in itertools.pairwise(factors[100:]))
    assert 0 < factors[-1] < 0.01


def test_metrics_on_a_known_example() -> None:
    y_true = np.array([[0, 0, 1], [1, 2, 2]])
    y_pred = np.array([[0, 1, 1], [1, 2, 0]])
    valid = np.array([[True, True, True], [True, True, False]])
    cm = confusion_matrix(y_true, y_pred, 4, valid)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert accuracy(cm) == pytest.approx(0.8)
    iou = iou_per_class(cm)
    assert iou[:3] == pytest.approx([0.5, 2 / 3, 1.0]) and np.isnan(iou[3])
    assert mean_iou(cm) == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    base = majority_baseline(cm)
    assert base["class_index"] == 0 and base["accuracy"] == pytest.approx(0.4)  # a tie goes to the lower index
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(y_true, y_pred + 5, 4)


def test_docs_training_md_documents_every_config_key() -> None:
    from dataclasses import fields

    from training.config import SECTIONS

    text = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    missing = [f"{s}.{f.name}" for s, kind in SECTIONS.items() for f in fields(kind) if f"| `{f.name}` |" not in text]
    assert not missing, f"docs/training.md lacks rows for {missing}"
