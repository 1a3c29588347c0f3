"""``python -m training relight``: a terrain-aware land cover -> RGB model made from a map-only one by lighting.

Design ("relit"): the map-only generator paints the surface (its classes, texture and seeds unchanged) and a
Lambertian light with an ambient term shades it, per band ``b``::

    u_out = u_map * (ambient[b] + direct[b] * lit)      u = (t + 1) / 2, t the generator's output in [-1, 1]
    lit = max(0, n . s)                                 the plugin's hillshade channel, (hillshade + 1) / 2

``n . s`` is the cosine between the surface normal and the sun (``lcgan_qgis.core.terrain.channels``: Horn's
gradients, the contract's sun, which users may change per run). The six numbers are fitted by least squares on the
training area's real imagery against the map-only model's own render of the paired land cover, so they also
absorb whatever shading the map-only model already paints. The light is per pixel: tiled == untiled as for the
map-only model, and the periodic texture is the map-only model's (measured: docs/recipe.md, "Relief by lighting").

What it does not model: cast shadows, slope-dependent cover (scree, bare cliffs) and haze in deep canyons.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lcgan_qgis.core.errors import InputRasterError
from lcgan_qgis.core.model.contract import Direction, ModelContract
from lcgan_qgis.core.model.terrain_inputs import TerrainInputs
from lcgan_qgis.core.rasters.raster import Window
from lcgan_qgis.core.terrain.channels import TerrainDeriver

from .errors import TrainingError
from .evaluation.rasters import Raster, area_mask, read_raster, translate_file
from .export import FILE_NAMES, export_generator
from .finetune.base import load_base_generator

log = logging.getLogger(__name__)

TERRAIN_FILE = "landcover_to_rgb_terrain.onnx"


class Relit(nn.Module):
    """``base`` (one-hot + noise -> RGB in [-1, 1]) lit by the hillshade channel that follows the one-hot classes."""

    def __init__(self, base: nn.Module, base_contract: ModelContract, ambient: np.ndarray, direct: np.ndarray
                 ) -> None:
        super().__init__()
        self.base, self.k = base, base_contract.num_classes
        self.in_channels, self.out_channels = base_contract.in_channels + 1, base_contract.out_channels
        self.register_buffer("ambient", torch.tensor(np.asarray(ambient, np.float32)).view(1, -1, 1, 1))
        self.register_buffer("direct", torch.tensor(np.asarray(direct, np.float32)).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.k
        t = self.base(torch.cat([x[:, :k], x[:, k + 1:]], dim=1))
        lit = (x[:, k:k + 1] + 1.0) * 0.5
        u = (t + 1.0) * 0.5 * (self.ambient + self.direct * lit)
        return (u * 2.0 - 1.0).clamp(-1.0, 1.0)


def fit_light(u_map: np.ndarray, u_real: np.ndarray, lit: np.ndarray, mask: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per band least squares of ``u_real ~ u_map * (ambient + direct * lit)`` over ``mask``; ``(ambient, direct)``.

    Raises:
        TrainingError: fewer than 1,000 pixels, or no light to fit (flat ground everywhere).
    """
    if int(mask.sum()) < 1000:
        raise TrainingError(f"Only {int(mask.sum())} valid pixels in the training area; relighting needs 1,000.")
    if float(np.std(lit[mask])) < 1e-3:
        raise TrainingError("The DEM is flat over the training area: there is no relief to fit the light to.")
    ambient, direct = np.empty(len(u_map)), np.empty(len(u_map))
    for b in range(len(u_map)):
        g, y = u_map[b][mask].astype(np.float64), u_real[b][mask].astype(np.float64)
        design = np.stack([g, g * lit[mask]], axis=1)
        (ambient[b], direct[b]), *_ = np.linalg.lstsq(design, y, rcond=None)
    return ambient, direct


def terrain_on(imagery: Path, elevation: Path, inputs: TerrainInputs) -> tuple[TerrainDeriver, np.ndarray,
                                                                                 tuple[float, float]]:
    """The DEM on the imagery's grid as the engine presents it (any CRS and resolution: ``ElevationReader``; its
    unit and pixel size: ``settle_terrain``): the channels' deriver over the whole grid (read into memory), the
    elevation in metres (NaN nodata) and the pixel size in metres."""
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.terrain.elevation import ElevationReader, settle_terrain

    with GdalReader(imagery) as reader:
        info = reader.info
    with ElevationReader(elevation, info) as dem:
        plan, messages = settle_terrain(inputs, dem, info)
        for message in messages:
            log.info("%s", message)
        metres = dem.read(Window(0, 0, info.width, info.height)).astype(np.float64) * plan.metres_per_unit
    deriver = TerrainDeriver(inputs, lambda w: metres[w.row_off:w.row_end, w.col_off:w.col_end], info.width,
                             info.height, plan.pixel_size_m, inputs.sun_azimuth_deg, inputs.sun_elevation_deg)
    return deriver, metres, plan.pixel_size_m


def lit_at(deriver: TerrainDeriver, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """``max(0, n . s)`` in [0, 1] of every pixel for the sun at ``azimuth_deg`` / ``elevation_deg`` (nodata: flat
    ground), as the model's hillshade channel gives it."""
    sunned = dataclasses.replace(deriver, sun_azimuth_deg=azimuth_deg, sun_elevation_deg=elevation_deg)
    return (sunned.channels(Window(0, 0, deriver.width, deriver.height))[0].astype(np.float64) + 1.0) * 0.5


def residual(u_map: np.ndarray, u_real: np.ndarray, lit: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error of the best light (:func:`fit_light`) for ``lit`` over ``mask``."""
    ambient, direct = fit_light(u_map, u_real, lit, mask)
    fitted = u_map[:, mask] * (ambient[:, None] + direct[:, None] * lit[mask][None])
    return float(np.mean((fitted - u_real[:, mask]) ** 2))


def fit_sun(u_map: np.ndarray, u_real: np.ndarray, deriver: TerrainDeriver, mask: np.ndarray,
            sample_px: int = 100_000) -> tuple[float, float]:
    """The sun (azimuth, elevation in degrees) whose light explains the imagery best: every 30 deg of azimuth at
    15-75 deg of elevation, then 5 deg steps around the best; on a regular sample of about ``sample_px`` pixels of
    ``mask`` (all of them in a small area)."""
    stride = max(1, int(np.sqrt(mask.sum() / sample_px)))
    sample = np.zeros_like(mask)
    sample[::stride, ::stride] = mask[::stride, ::stride]

    def score(sun: tuple[float, float]) -> float:
        return residual(u_map, u_real, lit_at(deriver, *sun), sample)

    coarse = [(float(az), float(el)) for az in range(0, 360, 30) for el in (15, 30, 45, 60, 75)]
    az0, el0 = min(coarse, key=score)
    fine = [((az0 + da) % 360.0, float(np.clip(el0 + de, 5.0, 85.0)))
            for da in range(-25, 30, 5) for de in range(-10, 15, 5)]
    return min(fine, key=score)


def landcover_on(imagery: Raster, landcover: Path, folder: Path) -> Path:
    """``landcover`` itself when it lies on the imagery's grid, else its nearest-neighbour warp onto it (in
    ``folder``): class codes are never averaged."""
    from osgeo import gdal

    lc = read_raster(landcover)
    if lc.pixels.shape[1:] == imagery.pixels.shape[1:] and np.allclose(lc.geotransform, imagery.geotransform):
        return landcover
    rows, cols = imagery.pixels.shape[1:]
    x0, dx, _, y0, _, dy = imagery.geotransform
    target = folder / "landcover_on_imagery_grid.tif"
    done = gdal.Warp(str(target), str(landcover), format="GTiff", dstSRS=imagery.projection or None,
                     outputBounds=(x0, y0 + rows * dy, x0 + cols * dx, y0), width=cols, height=rows,
                     resampleAlg="near")
    if done is None:
        raise InputRasterError(f"{landcover}: cannot warp it onto the imagery's grid ({imagery.path}).")
    done = None
    return target


def relight(base: Path, imagery: Path, landcover: Path, elevation: Path, train_area: Path | None, out: Path,
            val_area: Path | None = None, bands: tuple[int, int, int] = (1, 2, 3), int8: bool = True,
            sun: tuple[float, float] | None = None) -> dict:
    """Fit the light, export ``out/landcover_to_rgb_terrain.onnx`` (+ int8 copy and fidelity record); the report.

    ``train_area`` None: every valid pixel outside ``val_area`` (or every valid pixel) fits the light. ``sun``:
    (azimuth, elevation) of the imagery's sun, the model's default sun; None: fitted (:func:`fit_sun`)."""
    base_path = base / FILE_NAMES[Direction.LANDCOVER_TO_RGB] if base.is_dir() else base
    generator = load_base_generator(base_path)
    contract = generator.contract
    if contract.terrain is not None:
        raise TrainingError(f"{base_path} already reads elevation; relighting starts from a map-only model.")
    real = read_raster(imagery)
    if max(bands) > real.pixels.shape[0]:
        raise InputRasterError(f"{imagery}: band {max(bands)} asked for, the raster has {real.pixels.shape[0]}.")
    deriver, metres, pixel = terrain_on(imagery, elevation, TerrainInputs(("hillshade",)))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lcgan-relight-") as tmp:
        on_grid = landcover_on(real, landcover, Path(tmp))
        lc = read_raster(on_grid)
        render = Path(tmp) / "map_only.tif"
        translate_file(base_path, on_grid, render, device="cpu", precision="fp32")
        rendered = read_raster(render)
    u_map = rendered.pixels[:3].astype(np.float64) / 255.0
    stack = real.pixels[[b - 1 for b in bands]].astype(np.float32)
    u_real = (contract.radiometry.normalize(stack).astype(np.float64) + 1.0) * 0.5
    valid = real.valid & rendered.valid & np.isfinite(metres) & lc.valid
    held = area_mask(val_area, real) if val_area is not None else np.zeros_like(valid)
    train = (area_mask(train_area, real) if train_area is not None else ~held) & valid
    fitted = sun is None
    if sun is None:
        sun = fit_sun(u_map, u_real, deriver, train)
        log.info("sun fitted to the imagery: azimuth %.0f deg, elevation %.0f deg", *sun)
    inputs = TerrainInputs(("hillshade",), sun_azimuth_deg=sun[0], sun_elevation_deg=sun[1])
    lit = lit_at(deriver, *sun)
    ambient, direct = fit_light(u_map, u_real, lit, train)
    log.info("light fitted on %d px: ambient %s, direct %s", int(train.sum()), np.round(ambient, 4),
             np.round(direct, 4))
    terrain_contract = dataclasses.replace(
        contract, terrain=inputs, model_version=f"{contract.model_version}-relit",
        extra={**contract.extra, "generator": "relit", "base_generator": contract.extra.get("generator", "resnet"),
               "light": {"ambient": [round(float(v), 6) for v in ambient],
                         "direct": [round(float(v), 6) for v in direct]}})
    model = Relit(generator.net.eval(), contract, ambient, direct)
    target = out / TERRAIN_FILE
    parity = export_generator(model, terrain_contract, target, weight_storage="fp16")
    report: dict[str, Any] = {"model": target.name, "base": str(base_path), "parity": parity,
                              "light": terrain_contract.extra["light"], "train_pixels": int(train.sum()),
                              "sun": {"azimuth_deg": inputs.sun_azimuth_deg, "elevation_deg": inputs.sun_elevation_deg,
                                      "fitted": fitted}}
    if val_area is not None:
        report["validation"] = _measure(u_map, u_real, lit, ambient, direct, metres, pixel,
                                        held & valid)
    if int8:
        report["int8"] = _int8(target, landcover, elevation)
    (out / "relight_report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _measure(u_map: np.ndarray, u_real: np.ndarray, lit: np.ndarray, ambient: np.ndarray, direct: np.ndarray,
             elevation_m: np.ndarray, pixel: tuple[float, float], mask: np.ndarray) -> dict:
    """Relief correlation and peak index of the map-only and the lit imagery in ``mask`` (issue 22's measures)."""
    from .evaluation.periodic import peak_index
    from .evaluation.relief import relief_correlation

    lit_u = u_map * (ambient[:, None, None] + direct[:, None, None] * lit)
    out: dict[str, Any] = {}
    for name, image in (("map_only", u_map), ("relit", np.clip(lit_u, 0.0, 1.0))):
        out[name] = {"relief_ratio": relief_correlation(image, u_real, elevation_m, mask, pixel)["ratio"]}
        try:
            out[name]["peak_index"] = peak_index(image, u_real, mask)["index"]
        except ValueError as exc:  # (a validation area narrower than the measure's patches)
            out[name]["peak_index"] = None
            out["note"] = f"peak index not measured: {exc}"
    return out


def _int8(model: Path, landcover: Path, elevation: Path) -> dict:
    from lcgan_qgis.core.errors import LcganError
    from lcgan_qgis.core.model.precision import int8_sibling
    from lcgan_qgis.tooling.gates import measure_gates
    from lcgan_qgis.tooling.quantize import quantize_model

    try:
        quantized = quantize_model(model, landcover, int8_sibling(model), elevation=elevation)
        measure_gates(model, landcover, elevation=elevation)
    except (LcganError, ImportError) as exc:
        log.warning("int8 copy of %s not made: %s", model.name, exc)
        return {"error": str(exc)}
    return {"file": quantized.path.name, "summary": quantized.summary}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", type=Path, required=True, help="map-only model folder or landcover_to_rgb.onnx")
    p.add_argument("--imagery", type=Path, required=True, help="real imagery of the training area")
    p.add_argument("--landcover", type=Path, required=True, help="land cover (any grid: warped, nearest)")
    p.add_argument("--elevation", type=Path, required=True, help="DEM (any grid and CRS, as the engine reads it)")
    p.add_argument("--train-area", type=Path, default=None,
                   help="polygons the light is fitted in (default: everything outside --val-area)")
    p.add_argument("--val-area", type=Path, default=None, help="polygons the measures are reported in")
    p.add_argument("--bands", type=int, nargs=3, default=[1, 2, 3], help="imagery bands read as R G B")
    p.add_argument("--sun", type=float, nargs=2, default=None, metavar=("AZIMUTH", "ELEVATION"),
                   help="the imagery's sun in degrees (the model's default sun); default: fitted to the imagery")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 copy and its gates")
    p.add_argument("--out", type=Path, required=True, help="folder for landcover_to_rgb_terrain.onnx")


def run(args: argparse.Namespace) -> int:
    report = relight(args.base, args.imagery, args.landcover, args.elevation, args.train_area, args.out,
                     args.val_area, tuple(args.bands), not args.no_int8,
                     tuple(args.sun) if args.sun else None)
    print(json.dumps(report, indent=2))
    return 0

