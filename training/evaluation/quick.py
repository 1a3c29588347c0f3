"""Quick held-out measures of models and training runs: minutes of CPU, through the plugin's job.

* :func:`quick_realism`: the realism measures of issue 22 (:mod:`.measures`: peak index, relief correlation, texture
  Frechet distance with its references, a one-seed two-sample test) plus seed diversity (:mod:`.seeds`) and, when
  asked, the class crops (:mod:`.crops`) of the land cover -> RGB generator(s) of a model file, a models folder or a
  training checkpoint, on the held-out area (``python -m training evaluate --quick``).
* :func:`measure_run`, for ablation tables: exports a run's last checkpoint and measures RGB -> land cover through
  the plugin's engine on the paired Zion scene at 128, 256 and 512 px windows (accuracy inside the held-out
  polygons, the share of pixels that change between window sizes), land cover -> RGB at 256 and 512 px windows
  (PSNR between them), the checkerboard index, the peak index, the relief ratio and the local texture of the
  generated imagery, against the real imagery of the held-out area.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.features import geometry_mask

from lcgan_qgis.core.errors import InputRasterError, ModelFileError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.runtime import load_model
from lcgan_qgis.core.resources import bundled_model_path

from ..areas import load_areas
from .crops import write_class_crops
from .measures import QUICK_TWO_SAMPLE, ground_of, headline, measure_generators
from .periodic import peak_index
from .plots import codes_to_rgb, image_to_display
from .rasters import area_mask, read_raster, shown_path, translate_file
from .realism import checkerboard_index, local_std, percentile_stretch
from .relief import relief_correlation
from .scores import clip_to_radiometry, generated_to_image_units
from .two_sample import TwoSampleConfig

IMAGE_FILE = "landsat8_rgb.tif"
LANDCOVER_FILE = "nlcd2011_on_landsat_grid.tif"
DEM_FILE = "srtm_on_landsat_grid.tif"
WINDOWS_PX = (128, 256, 512)
HELDOUT = Path(__file__).resolve().parents[1] / "configs" / "zion_areas" / "heldout_south.geojson"
GENERATOR_FILES = {"map_only": "landcover_to_rgb.onnx", "terrain_aware": "landcover_to_rgb_terrain.onnx"}


def _generators(models: Path, work: Path) -> dict[str, Path]:
    """``{name: onnx}`` of the land cover -> RGB generators in a model file, a models folder or a checkpoint."""
    if models.suffix == ".pt":
        from ..export import export_checkpoint

        export_checkpoint(models, work / "exported")
        return {"generator": work / "exported" / GENERATOR_FILES["map_only"]}
    if models.is_dir():
        found = {name: models / f for name, f in GENERATOR_FILES.items() if (models / f).is_file()}
        if not found:
            raise ModelFileError(f"{models} holds no {' or '.join(GENERATOR_FILES.values())}.")
        return found
    if not models.is_file():
        raise ModelFileError(f"Model not found: {models} (give an .onnx file, a models folder or a .pt checkpoint).")
    return {"generator": models}


def quick_realism(models: str | Path, data_dir: str | Path, heldout: str | Path, reader: str | Path | None = None,
                  seeds: tuple[int, int] | None = (1, 2), two_sample: TwoSampleConfig | None = QUICK_TWO_SAMPLE,
                  crops_dir: str | Path | None = None, device: str = "cpu", precision: str = "auto") -> dict:
    """Issue 22's realism measures of the land cover -> RGB generator(s) in ``models`` on the ``heldout`` polygons.

    Args:
        models: an ``.onnx`` generator, a folder (``landcover_to_rgb.onnx`` and/or ``landcover_to_rgb_terrain.onnx``)
            or a training checkpoint ``.pt`` (its generator is exported first).
        data_dir: the Zion folder (imagery, map and DEM on one grid); the training area is everything outside
            ``heldout``.
        reader: the RGB -> land cover model that reads both seeds' renders (default: the bundled one).
        seeds: two noise seeds for the diversity measure (None: skip, saves four model runs per generator).
        two_sample: the classifier test's budget (None: skip). crops_dir: where the class crops go (None: none).

    Returns:
        ``{"headline": {name: few numbers}, "measures": ..., "crops": ..., "seconds": ...}``.
    """
    started = time.perf_counter()
    data_dir, reader = Path(data_dir), Path(reader) if reader else bundled_model_path(Direction.RGB_TO_LANDCOVER)
    real, lc = read_raster(data_dir / IMAGE_FILE), read_raster(data_dir / LANDCOVER_FILE)
    dem_path = data_dir / DEM_FILE if (data_dir / DEM_FILE).is_file() else None
    inside = area_mask(heldout, real)
    images, runs = {}, {}
    with tempfile.TemporaryDirectory(prefix="lcgan-quick-") as tmp:
        work = Path(tmp)
        generators = {}
        for name, path in _generators(Path(models), work).items():
            with load_model(path, device="cpu") as m:
                contract = m.contract
            elevation = dem_path if contract.terrain is not None else None
            if contract.terrain is not None and dem_path is None:
                raise InputRasterError(f"{path.name} is terrain-aware and {data_dir / DEM_FILE} is missing.")
            target = work / f"{name}.tif"
            runs[name] = translate_file(path, data_dir / LANDCOVER_FILE, target, device, precision=precision,
                                        elevation_path=elevation)
            images[name] = read_raster(target)
            generators[name] = (path, elevation, generated_to_image_units(images[name].pixels[:3],
                                                                          contract.radiometry))
        valid = real.valid & lc.valid & np.logical_and.reduce([g.valid for g in images.values()])
        ground = ground_of(real, clip_to_radiometry(real.pixels, contract.radiometry), inside, valid, dem_path)
        measures = measure_generators(generators, ground, data_dir / LANDCOVER_FILE, real, contract.radiometry,
                                      reader, work, seeds, two_sample, device)
    report = {"models": shown_path(models), "heldout": shown_path(heldout), "runs": runs,
              "headline": headline(measures), "measures": measures}
    if crops_dir is not None:
        panels = [codes_to_rgb(np.where(lc.valid, lc.pixels[0], 255), contract.scheme),
                  image_to_display(real.pixels, contract.radiometry),
                  *(g.pixels[:3].transpose(1, 2, 0) for g in images.values())]
        report["crops"] = {"panels": ["land cover", "real", *images], "classes": write_class_crops(
            lc.pixels[0], [("heldout", ground.heldout), ("training_area", ground.training)], panels, crops_dir)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


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
    out["peak_index"] = peak_index(gens[512], real, mask)["index"]  # issue 22's measures that need no reference
    if (data_dir / DEM_FILE).is_file():
        with rasterio.open(data_dir / DEM_FILE) as ds:
            elevation = ds.read(1, masked=True).astype(np.float64).filled(np.nan)
            pixel_m = (abs(ds.transform.a), abs(ds.transform.e))
        out["relief_ratio"] = relief_correlation(gens[512], real, elevation, mask, pixel_m)["ratio"]
    (run_dir / "measures.json").write_text(json.dumps(out, indent=1), encoding="utf-8")
    return out


def add_quick_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``evaluate --quick`` options (``--models``, ``--data``, ``--out``, ``--heldout`` are the command's own)."""
    parser.add_argument("--quick", action="store_true",
                        help="only the realism measures of the land cover -> RGB generator(s) in --models (a folder, "
                             "an .onnx or a training .pt) on --heldout (default: the Zion south): minutes of CPU")
    parser.add_argument("--crops", type=Path, default=None, help="with --quick: write the class crops (PNG) here")
    parser.add_argument("--no-seeds", action="store_true", help="with --quick: skip the seed diversity runs")
    parser.add_argument("--no-two-sample", action="store_true", help="with --quick: skip the two-sample test")
    parser.add_argument("--two-sample-steps", type=int, default=QUICK_TWO_SAMPLE.max_steps,
                        help="with --quick: the two-sample classifier's step budget (one seed)")


def run_quick(args: argparse.Namespace) -> int:
    """``evaluate --quick``: writes ``OUT/realism_quick.json`` and prints the headline numbers."""
    models = args.models or bundled_model_path(Direction.LANDCOVER_TO_RGB).parent
    heldout = args.heldout or HELDOUT
    report = quick_realism(models, args.data, heldout, seeds=None if args.no_seeds else (1, 2),
                           two_sample=None if args.no_two_sample else replace(QUICK_TWO_SAMPLE,
                                                                              max_steps=args.two_sample_steps),
                           crops_dir=args.crops,
                           device=args.device, precision=args.precision)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "realism_quick.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for name, row in report["headline"].items():
        print(name, " ".join(f"{k} {v}" for k, v in row.items()))
    frechet = report["measures"]["frechet"]["distances"]
    print("frechet references:", " ".join(f"{k} {v}" for k, v in frechet.items()))
    print(f"wrote {out / 'realism_quick.json'} in {report['seconds']} s")
    return 0
