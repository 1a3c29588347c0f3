"""A class-scheme change when fine-tuning from a SPADE / U-Net export (needs training/finetune/schemes.py's
transfer through :func:`training.finetune.base.retarget`): class-independent layers bit-equal, classes carried
over, --freeze-encoder on the new designs, real optimizer steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lcgan_qgis.core.model.contract import Direction
from tests.training.test_finetune_second_gen import region, tiny  # noqa: F401 (fixtures)
from training.finetune.base import class_layers, encoder_layers, load_base_folder
from training.finetune.run import FineTune, Settings


@pytest.fixture
def scheme(tmp_path: Path) -> Path:
    path = tmp_path / "scheme.json"
    path.write_text(json.dumps({"name": "three", "nodata_code": 255, "classes": [
        {"code": 52, "name": "Shrubs", "color": "#ccb879", "includes": [52]},
        {"code": 42, "name": "Trees", "color": "#1c5f2c", "includes": [41, 42, 43]},
        {"code": 31, "name": "Rock", "color": "#b3ac9f"}]}), encoding="utf-8")
    return path


def test_a_scheme_change_from_a_spade_unet_export(tiny: Path, region: dict[str, Path], scheme: Path,  # noqa: F811
                                                  tmp_path: Path) -> None:
    ft = FineTune(Settings(base=str(tiny), imagery=[str(region["image"])], out=str(tmp_path / "run"),
                           landcover=[str(region["lc"])], scheme=str(scheme), steps=2, crop=32, batch=2, threads=1,
                           int8=False, val_every_s=1e9, lr=1e-3, freeze_encoder=True))
    base = load_base_folder(tiny)
    codes = base[Direction.RGB_TO_LANDCOVER].contract.scheme.codes
    for name, direction, final in (("g_rgb2lc", Direction.RGB_TO_LANDCOVER, "logits"),
                                   ("g_lc2rgb", Direction.LANDCOVER_TO_RGB, "tanh")):
        layers = {n for n, _ in class_layers(base[direction].net, final)}
        old, new = base[direction].net.state_dict(), ft.nets[name].state_dict()
        shared = [k for k in old if k.rsplit(".", 1)[0] not in layers]
        assert shared and all(torch.equal(old[k], new[k]) for k in shared), name
    last_old = base[Direction.RGB_TO_LANDCOVER].net.state_dict()["tail.1.weight"]
    last_new = ft.nets["g_rgb2lc"].state_dict()["tail.1.weight"]
    assert last_new.shape[0] == 3 and torch.equal(last_new[0], last_old[codes.index(52)])
    for layer in ("head.1", "features.0.conv.1", "features.2.conv.1"):
        w_old = base[Direction.LANDCOVER_TO_RGB].net.state_dict()[layer + ".weight"]
        w_new = ft.nets["g_lc2rgb"].state_dict()[layer + ".weight"]
        assert torch.allclose(w_new[:, 0], w_old[:, codes.index(52)])
        assert torch.equal(w_new[:, 3:], w_old[:, len(codes):])  # noise columns (head.1)
    assert any("31 Rock: new" in line for line in ft.transfer_notes)  # includes given: no match by code
    frozen = {name: [p.clone() for m in encoder_layers(net) for p in m.parameters()] for name, net in ft.nets.items()}
    before = {k: v.clone() for k, v in ft.nets["g_lc2rgb"].state_dict().items()}
    ft.train()
    assert ft.step == 2
    after = ft.nets["g_lc2rgb"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    for name, net in ft.nets.items():
        now = [p for m in encoder_layers(net) for p in m.parameters()]
        assert frozen[name] and all(torch.equal(a, b) for a, b in zip(frozen[name], now, strict=True)), name
