"""Quick held-out measures of a training run, for ablation tables: export its last checkpoint and run the engine.

For each run: RGB -> land cover through the plugin's engine on the paired Zion scene at 128, 256 and 512 px windows
(accuracy inside the held-out polygons, and the share of pixels that change between window sizes), land cover ->
RGB at 256 and 512 px windows (PSNR between them), the checkerboard index of the generated imagery and its local
texture, both against the real imagery of the held-out area. ``make evaluate`` reports the full set of metrics for
the bundled models; these are the few that decide a recipe, cheap enough to run on every ablation run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.features import geometry_mask

from ..areas import load_areas
from .rasters import translate_file
from .realism import checkerboard_index, local_std, percentile_stretch

IMAGE_FILE = "landsat8_rgb.tif"
LANDCOVER_FILE = "nlcd2011_on_landsat_grid.tif"
WINDOWS_PX = (128, 256, 512)


def measure_run(run_dir: str | Path, data_dir: str | Path, heldout: str | Path, overlap_px: int = 16) -> dict:
    """Export ``run_dir``'s last checkpoint to ``run_dir/models`` and measure it; writes ``measures.json``."""
    from ..export import export_checkpoint

    run_dir, data_dir = Path(run_dir), Path(data_dir)
    models = run_dir / "models"
    export_checkpoint(run_dir / "checkpoints" / "last.pt", models)
    image_path, lc_path = data_dir / IMAGE_FILE, data_dir / LANDCOVER_FILE
    with rasterio.open(lc_path) as ds:
        codes, lc_nodata, transform, crs = ds.read(1), ds.nodata, ds.transform, ds.crs
    inside = geometry_mask([load_areas(heldout).in_crs(crs).context], out_shape=codes.shape, transform=transform,
                           invert=True)
    from lcgan_qgis.core.model.runtime import load_model

    with load_model(models / "rgb_to_landcover.onnx", "cpu") as m:
        scheme = m.contract.scheme
    truth, valid = scheme.codes_to_indices(codes, nodata=lc_nodata)
    valid &= inside
    out: dict[str, Any] = {"overlap_px": overlap_px}
    with tempfile.TemporaryDirectory(prefix="lcgan-measure-") as tmp:
        preds = {}
        for w in WINDOWS_PX:
            pred_path = Path(tmp) / f"lc{w}.tif"
            translate_file(models / "rgb_to_landcover.onnx", image_path, pred_path, "cpu", overlap_px, w, "fp32")
            with rasterio.open(pred_path) as ds:
                preds[w] = scheme.codes_to_indices(ds.read(1), nodata=ds.nodata)
        both = valid & preds[256][1] & preds[512][1] & preds[128][1]
        out["heldout_accuracy"] = {str(w): float((p[0] == truth)[both].mean()) for w, p in preds.items()}
        counts = np.bincount(truth[both], minlength=len(scheme))
        out["heldout_majority_baseline"] = float(counts.max() / max(counts.sum(), 1))
        out["lc_changed_256_512"] = float((preds[256][0] != preds[512][0])[both].mean())
        out["lc_changed_128_256"] = float((preds[128][0] != preds[256][0])[both].mean())
        gens = {}
        for w in (256, 512):
            rgb_path = Path(tmp) / f"rgb{w}.tif"
            translate_file(models / "landcover_to_rgb.onnx", lc_path, rgb_path, "cpu", overlap_px, w, "fp32")
            with rasterio.open(rgb_path) as ds:
                gens[w] = ds.read().astype(np.float64)
        with rasterio.open(image_path) as ds:
            real = ds.read().astype(np.float64)
    mask = valid & (gens[512] > 0).all(axis=0)
    mse = float(((gens[256] - gens[512])[:, mask] ** 2).mean())
    out["rgb_psnr_256_512_db"] = float(10 * np.log10(255.0**2 / max(mse, 1e-12)))
    mask = valid & (gens[512] > 0).all(axis=0) & (real > 0).all(axis=0)
    out["checkerboard_index"] = checkerboard_index(gens[512], real, mask)["index"]
    for name, image in (("generated", gens[512]), ("real", real)):
        std, ok = local_std(percentile_stretch(image, mask), mask)
        out[f"local_std_{name}"] = float(std[:, ok & mask].mean())
    (run_dir / "measures.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out
