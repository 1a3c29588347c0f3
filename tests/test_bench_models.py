"""``python -m tools.bench --models DIR`` on a small raster: both generators of a model folder (a SPADE / U-Net
export made here) against the Deepness-like baseline, with their gates (needs the Zion sample for the rasters
and the calibration windows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lcgan_qgis.core.model.contract import Direction
from tools.bench.measures import ZION
from tools.bench.models_dir import bench_models

pytestmark = pytest.mark.skipif(not ZION.is_dir(), reason=f"the Zion sample is absent ({ZION})")


def test_a_model_folder_is_benched_against_the_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.training.test_finetune_second_gen import _export, _tiny_nets

    monkeypatch.setenv("LCGAN_BENCH_CACHE", str(tmp_path / "cache"))
    import tools.bench.inputs as inputs
    import tools.bench.models_dir as models_dir

    monkeypatch.setattr(inputs, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(models_dir, "CACHE", tmp_path / "cache")
    (tmp_path / "cache").mkdir()
    folder = _export(tmp_path / "models", _tiny_nets(), {d: {} for d in Direction})
    report = bench_models(folder, tmp_path / "out.json", 256, tmp_path / "work", rounds=1, threads=1)
    assert json.loads((tmp_path / "out.json").read_text())["size_px"] == 256
    for name, design in (("rgb_to_landcover", "unet"), ("landcover_to_rgb", "spade")):
        row = report["generators"][name]
        assert row["architecture"]["generator"] == design and row["architecture"]["ngf"] == 8
        assert row["baseline"]["tiles"] == 1 and row["baseline_mpx_per_s"] > 0 and row["e2e_mpx_per_s"] > 0
        assert row["speedup_vs_baseline"] == pytest.approx(row["e2e_mpx_per_s"] / row["baseline_mpx_per_s"], 1e-2)
        assert set(row["gates"]["int8_passes"]) >= {"onnxruntime/int8"}
        assert "1 threads" in row["ours"]["summary"] or "1 thread" in row["ours"]["summary"]
