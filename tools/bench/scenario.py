"""Scenario measurements: a forest polygon on the Zion NLCD turned developed (docs/scenarios.md), and the bench row
(1 % of a 4096 px map changed), in both modes.

``python -m tools.bench.scenario zion [--margins 40,24,32] [--out docs/scenario_zion.json] [--picture ...png]``
``python -m tools.bench.scenario row [--size 4096]`` (merged into docs/bench.json by ``make bench``)
``python -m tools.bench.scenario readback [--to-class 52,31]`` (the same edit to other classes: the read-back only)

Every measure runs the loaded model once per render in this process (one thread: the CPU is shared): the full
render of the base, the exact scenario and the local scenario at each margin (with that base render given),
alternated, and, for the checks, the full render of the changed map. Checks: the pixels outside change + margin are
the base render's bit for bit; the scenario against the full render of the changed map (equal in the exact mode;
max and mean |difference| inside the margin and on the change in the local mode); the seam ratio across the
margin's edge, next to the full render's along the same edge; the edit's reach in the full render by distance; the
RGB -> land cover model's reading of the changed area against its reading of the real pixels of the new class.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .measures import CACHE, REPO, ZION, cpu_seconds, load, read

FOREST = (41, 42, 43)
DEFAULT_MARGIN = 32  # lcgan_qgis.core.run.scenario_local.DEFAULT_MARGIN_PX (checked by tests/core/test_scenario_local)
DEVELOPED = (21, 22, 23, 24)
SEED = 7


def forest_square(codes: np.ndarray, nodata: float | None, share: float) -> tuple[int, int, int]:
    """``(row, col, side)`` of the square holding the densest forest whose forest pixels reach ``share`` of the
    map's valid pixels."""
    valid = codes != nodata if nodata is not None else np.ones(codes.shape, bool)
    forest = np.isin(codes, FOREST)
    goal = share * valid.sum()
    table = np.pad(forest.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    side = int(np.sqrt(goal))
    while True:
        sums = table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]
        r, c = np.unravel_index(int(np.argmax(sums)), sums.shape)
        if sums[r, c] >= goal or side >= min(codes.shape):
            return int(r), int(c), side
        side += 4


def square_polygons(info: Any, row: int, col: int, side: int, path: Path) -> Path:
    """A GeoPackage with the pixel-aligned square ``(row, col, side)`` of ``info``'s grid, in its CRS."""
    from osgeo import ogr, osr

    gt = info.geotransform
    x0, y0 = gt[0] + col * gt[1], gt[3] + row * gt[5]
    x1, y1 = x0 + side * gt[1], y0 + side * gt[5]
    srs = osr.SpatialReference()
    srs.ImportFromWkt(info.crs_wkt)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = source.CreateLayer("change", srs, ogr.wkbPolygon)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetGeometry(ogr.CreateGeometryFromWkt(f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"))
    layer.CreateFeature(feature)
    source = None
    return path


def margin_seam_ratio(img: np.ndarray, inside: np.ndarray, away_px: int = 4, band_px: int = 32) -> float:
    """Mean |difference| of neighbouring pixels across the edge of ``inside`` / the same between neighbours
    ``away_px`` to ``band_px`` px from it (the engine's seam measure, :func:`.measures.seam_ratio`, along a mask's
    edge instead of grid lines). 1.0: the edge cannot be told from anywhere else."""
    from lcgan_qgis.core.run.change import dilate

    data = img.astype(np.float64)
    outer = dilate(inside, band_px) & ~dilate(inside, away_px)  # outside, away_px..band_px from the edge
    inner = inside & dilate(~inside, band_px) & ~dilate(~inside, away_px)  # the same inside
    near = outer | inner
    across, away = [], []
    for axis in (0, 1):
        diff = np.abs(np.diff(data, axis=axis + 1)).mean(axis=0)
        a = inside[:-1, :] if axis == 0 else inside[:, :-1]
        b = inside[1:, :] if axis == 0 else inside[:, 1:]
        n = near[:-1, :] & near[1:, :] if axis == 0 else near[:, :-1] & near[:, 1:]
        across.append(diff[a != b])
        away.append(diff[n & (a == b)])
    return float(np.concatenate(across).mean() / np.concatenate(away).mean())


def readback(rgb_model: Any, image: Path, out: Path) -> np.ndarray:
    """The RGB -> land cover model's classes for ``image``."""
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.engine import TranslateOptions, translate

    with GdalReader(image) as reader:
        translate(rgb_model, reader, out, TranslateOptions())
    return read(out)[0]


def measure(lc_path: Path, polygons: Path, to_class: int, from_classes: Sequence[int], folder: Path,
            threads: int = 1, precision: str = "auto", check_readback: bool = True,
            repeats: int = 3, margins: Sequence[int] = (DEFAULT_MARGIN,)) -> dict[str, Any]:
    """The full render of the changed map, then ``repeats`` times the full render of the base, the exact scenario and
    the local scenario at each of ``margins`` (that base render given), alternated (medians reported); checks. The
    exact mode's measures are the row's own keys, the local mode's at the first margin are under ``local`` and every
    margin's under ``local_margins``."""
    from lcgan_qgis.core.model.contract import Direction
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.rasters.provenance import provenance_tags
    from lcgan_qgis.core.resources import bundled_model_path
    from lcgan_qgis.core.run.change import PolygonChange
    from lcgan_qgis.core.run.engine import TranslateOptions, translate
    from lcgan_qgis.core.run.scenario import ScenarioRequest, run_scenario
    from lcgan_qgis.core.run.settings import Rendering, RunSettings

    settings = RunSettings(rendering=Rendering(seed=SEED))
    model = load_model(bundled_model_path(Direction.LANDCOVER_TO_RGB), "cpu", threads, precision)
    base_options = TranslateOptions(settings=settings, tags=tuple(  # (tagged as `translate --seed` tags it)
        provenance_tags(model.contract, model.path, lc_path.name, seed=SEED).items()))
    base_rgb, changed_rgb = folder / "base_rgb.tif", folder / "changed_rgb.tif"
    loads = [load()]
    runs = [("exact", None)] + [("local", m) for m in margins]
    requests = {run: ScenarioRequest(str(folder / _output(*run)), str(lc_path), polygons_path=str(polygons),
                                     to_class=to_class, from_classes=tuple(from_classes),
                                     base_render_path=str(base_rgb), settings=settings, mode=run[0],
                                     margin_px=run[1]) for run in runs}
    with GdalReader(lc_path) as reader:
        with PolygonChange(reader, str(polygons), to_class, None, from_classes, model.contract.scheme) as burnt, \
                GdalReader(burnt.path) as changed:
            translate(model, changed, changed_rgb, TranslateOptions(settings=settings))
            changed_codes = changed.read(reader_window(changed), (1,))[0]
        fulls: list[tuple[float, float]] = []
        timings: dict[tuple[str, int | None], list[tuple[float, float, float]]] = {run: [] for run in runs}
        results: dict[tuple[str, int | None], Any] = {}
        for _ in range(repeats):  # alternated, so every run sees the same share of the other jobs' load
            t0, c0 = time.perf_counter(), cpu_seconds()
            full = translate(model, reader, base_rgb, base_options)
            fulls.append((time.perf_counter() - t0, cpu_seconds() - c0))
            loads.append(load())
            for run in runs:
                t0, c0 = time.perf_counter(), cpu_seconds()
                results[run] = run_scenario(requests[run], model=model)  # (the first exact one measures the field)
                timings[run].append((time.perf_counter() - t0, cpu_seconds() - c0, results[run].render_seconds))
                loads.append(load())
    full_s, full_cpu = (float(np.median([f[i] for f in fulls])) for i in (0, 1))
    before, after = read(base_rgb), read(changed_rgb)
    rows = {run: _mode_row(results[run], timings[run], folder / _output(*run), before, after, full_s, full_cpu)
            for run in runs}
    row: dict[str, Any] = {
        "raster": lc_path.name, "model": model.path.name, "backend": model.backend, "precision": model.precision,
        "threads": model.threads, "seed": SEED, "full_render_s": round(full_s, 2), "full_render_tiles": full.tiles,
        "full_render_cpu_s": round(full_cpu, 2), "repeats": repeats,
        "first_scenario_s_with_probe": round(timings[runs[0]][0][0], 2),
        **rows[runs[0]], "runs_full_wall_cpu_s": [[round(x, 2) for x in f] for f in fulls],
        "local": rows[runs[1]], "local_margins": [rows[run] for run in runs[1:]],
    }
    row["load_1min"] = loads
    mask = read(folder / "exact_change.tif")[0]
    outside = mask == 0
    if check_readback:
        row["readback"] = readback_row(model, threads, precision, folder, lc_path, mask, to_class)
        row["changed_codes_check"] = int((changed_codes[mask == 1] == to_class).mean() == 1.0)
    row["outside_px"] = int(outside.sum())
    return row


def _output(mode: str, margin: int | None) -> str:
    return "exact.tif" if mode == "exact" else f"local{margin}.tif"


def _mode_row(result: Any, timing: list[tuple[float, float, float]], out: Path, before: np.ndarray,
              after: np.ndarray, full_s: float, full_cpu: float) -> dict[str, Any]:
    """One scenario run's measures: time against the full render, the copied pixels, the seam, the departure from
    the exact render (a full render of the changed map) inside the margin."""
    got = read(out)
    mask = read(out.with_name(out.stem + "_change.tif"))[0]
    outside, ring = mask == 0, mask > 0
    wall, cpu, render = (float(np.median([t[i] for t in timing])) for i in (0, 1, 2))
    diff = np.abs(got.astype(np.int16) - after).max(axis=0)
    departure = np.abs(after.astype(np.int16) - before).max(axis=0)[outside]  # the exact render's, outside
    return {
        "mode": result.mode, "size_px": list(mask.shape), "changed_px": result.changed_px,
        "changed_share": round(result.changed_px / mask.size, 5), "changed_ha": round(result.changed_ha or 0.0, 2),
        "margin_px": result.margin_px, "rerendered_share": round(result.rerendered_px / mask.size, 4),
        "runs": result.runs, "windows_total": result.windows_total,
        "scenario_s": round(wall, 2), "time_ratio": round(wall / full_s, 3),
        "scenario_cpu_s": round(cpu, 2), "cpu_ratio": round(cpu / full_cpu, 3),
        "scenario_render_s": round(render, 2), "render_ratio": round(render / full_s, 3),
        "runs_wall_cpu_s": [[round(x, 2) for x in t[:2]] for t in timing],
        "outside_margin_bit_identical": bool(np.array_equal(got[:, outside], before[:, outside])),
        "outside_px": int(outside.sum()),
        "equals_full_render_of_changed_map": bool(np.array_equal(got, after)),
        "seam_ratio_margin_edge": round(margin_seam_ratio(got, ring), 4),
        "seam_ratio_margin_edge_of_full_render": round(margin_seam_ratio(after, ring), 4),  # the same edge, no seam
        "seam_ratio_change_edge": round(margin_seam_ratio(got, mask == 1), 4),
        "max_abs_vs_exact_in_margin": int(diff[ring].max()),
        "mean_abs_vs_exact_in_margin": round(float(diff[ring].mean()), 3),
        "max_abs_vs_exact_in_change": int(diff[mask == 1].max()),
        "mean_abs_vs_exact_in_change": round(float(diff[mask == 1].mean()), 4),
        "exact_vs_base_outside_max": int(departure.max()),
        "exact_vs_base_outside_mean": round(float(departure.mean()), 4),
    }


def readback_row(model: Any, threads: int, precision: str, folder: Path, lc_path: Path, mask: np.ndarray,
                 to_class: int) -> dict[str, Any]:
    """How the RGB -> land cover model reads the changed area of the exact scenario against the real pixels of the
    new class in the base render."""
    from lcgan_qgis.core.model.contract import Direction
    from lcgan_qgis.core.model.runtime import load_model
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.resources import bundled_model_path

    rgb_model = load_model(bundled_model_path(Direction.RGB_TO_LANDCOVER), "cpu", threads, precision)
    read_after = readback(rgb_model, folder / "exact.tif", folder / "scenario_lc.tif")
    read_before = readback(rgb_model, folder / "base_rgb.tif", folder / "base_lc.tif")
    with GdalReader(lc_path) as reader:
        base_codes = reader.read(reader_window(reader), (1,))[0]
    changed = mask == 1
    real = (base_codes == to_class) & (mask == 0)
    return {
        "class": to_class,
        "changed_read_as_class": round(float((read_after[changed] == to_class).mean()), 4),
        "real_class_elsewhere_read_as_class": round(float((read_before[real] == to_class).mean()), 4),
        "real_class_px": int(real.sum()),
        "changed_read_as_developed": round(float(np.isin(read_after[changed], DEVELOPED).mean()), 4),
        "real_class_read_as_developed": round(float(np.isin(read_before[real], DEVELOPED).mean()), 4),
        "changed_before_read_as_class": round(float((read_before[changed] == to_class).mean()), 4),
        # the model may never output the class: then compare how it reads the painted class with how it reads
        # the real pixels of that class in the base render (total variation distance of the class shares)
        "changed_read_shares": shares(read_after[changed]),
        "real_class_read_shares": shares(read_before[real]),
        "changed_before_read_shares": shares(read_before[changed]),
        "tv_changed_vs_real_class": tv(read_after[changed], read_before[real]),
        "tv_changed_before_vs_real_class": tv(read_before[changed], read_before[real]),
    }


def influence(folder: Path, bands: int = 8, step: int = 4) -> dict[str, list[float]]:
    """How far the edit reaches in a full render of the changed map: max and mean |changed - base| (DN, max over
    the bands) by Euclidean distance to the change, in ``step`` px bands up to ``bands * step`` px... and beyond."""
    from lcgan_qgis.core.run.scenario_local import distance_to_change

    before, after = read(folder / "base_rgb.tif"), read(folder / "changed_rgb.tif")
    mask = read(folder / "exact_change.tif")[0] == 1
    distance = distance_to_change(mask, bands * step * 4)
    diff = np.abs(after.astype(np.int16) - before).max(axis=0)
    out: dict[str, list[float]] = {}
    for lo in range(0, bands * step * 4, step):
        band = (distance > lo) & (distance <= lo + step)
        if band.any():
            out[f"{lo}-{lo + step}"] = [int(diff[band].max()), round(float(diff[band].mean()), 3)]
    beyond = distance > bands * step * 4
    out["beyond"] = [int(diff[beyond].max()), round(float(diff[beyond].mean()), 4)]
    return out


def shares(codes: np.ndarray, top: int = 5) -> dict[str, float]:
    """The ``top`` commonest codes and their shares."""
    values, counts = np.unique(codes, return_counts=True)
    order = np.argsort(-counts)[:top]
    return {str(int(values[i])): round(float(counts[i] / counts.sum()), 4) for i in order}


def tv(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between the code distributions of ``a`` and ``b`` (0 same, 1 disjoint)."""
    codes = np.union1d(np.unique(a), np.unique(b))
    pa = np.array([(a == c).mean() for c in codes])
    pb = np.array([(b == c).mean() for c in codes])
    return round(float(0.5 * np.abs(pa - pb).sum()), 4)


def reader_window(reader: Any) -> Any:
    from lcgan_qgis.core.rasters.raster import Window
    return Window(0, 0, reader.info.width, reader.info.height)


def picture(folder: Path, mask_path: Path, out: Path, crop_px: int = 360) -> dict[str, Any]:
    """Before | after at 1:1 (no resampling): ``crop_px`` squares of the base render and the scenario centred on the
    change, side by side with an 8 px gap, as a PNG."""
    from osgeo import gdal

    mask = read(mask_path)[0]
    rows, cols = np.nonzero(mask == 1)
    h, w = mask.shape
    r0 = int(np.clip((rows.min() + rows.max()) // 2 - crop_px // 2, 0, h - crop_px))
    c0 = int(np.clip((cols.min() + cols.max()) // 2 - crop_px // 2, 0, w - crop_px))
    before = read(folder / "base_rgb.tif")[:, r0:r0 + crop_px, c0:c0 + crop_px]
    after = read(folder / f"local{DEFAULT_MARGIN}.tif")[:, r0:r0 + crop_px, c0:c0 + crop_px]
    canvas = np.full((3, crop_px, 2 * crop_px + 8), 255, np.uint8)
    canvas[:, :, :crop_px], canvas[:, :, crop_px + 8:] = before, after
    mem = gdal.GetDriverByName("MEM").Create("", canvas.shape[2], crop_px, 3, gdal.GDT_Byte)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(canvas[b])
    out.parent.mkdir(parents=True, exist_ok=True)
    gdal.GetDriverByName("PNG").CreateCopy(str(out), mem)
    for extra in out.parent.glob(out.name + ".aux.xml"):
        extra.unlink()
    return {"png": str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out),
            "window": [c0, r0, crop_px, crop_px]}


def zion_square(lc: Path, path: Path) -> tuple[Path, tuple[int, int, int]]:
    """The done-when's edit on ``lc``: a GeoPackage at ``path`` with the square of the densest forest whose forest
    pixels reach 2 % of the map, and its ``(row, col, side)``."""
    from lcgan_qgis.core.rasters.gdal_io import GdalReader

    with GdalReader(lc) as reader:
        codes = reader.read(reader_window(reader), (1,))[0]
        r, c, side = forest_square(codes, reader.info.nodata[0], 0.02)
        return square_polygons(reader.info, r, c, side, path), (r, c, side)


def zion(out: Path | None, png: Path | None, folder: Path, margins: Sequence[int] = (DEFAULT_MARGIN,),
         repeats: int = 3) -> dict[str, Any]:
    """The done-when measurement: ~2 % of the Zion NLCD, forest (41/42/43) inside a square turned to 22."""
    lc = ZION / "nlcd2011.tif"
    polygons, (r, c, side) = zion_square(lc, folder / "forest_to_developed.gpkg")
    row = measure(lc, polygons, 22, FOREST, folder, margins=margins, repeats=repeats)
    row["polygon_px"] = [c, r, side, side]
    row["influence_by_distance"] = influence(folder)
    if png is not None:
        row["picture"] = picture(folder, folder / "exact_change.tif", png)
    if out is not None:
        out.write_text(json.dumps(row, indent=1) + "\n")
    return row


def readback_classes(to_classes: Sequence[int], folder: Path) -> dict[int, dict[str, Any]]:
    """The Zion edit of :func:`zion` turned to each of ``to_classes`` in turn (one repeat, the default margin): how
    the land-cover model reads each scenario's changed area against the real pixels of that class elsewhere."""
    lc = ZION / "nlcd2011.tif"
    polygons, _square = zion_square(lc, folder / "forest_square.gpkg")
    out = {}
    for to_class in to_classes:
        part = folder / str(to_class)
        part.mkdir()
        out[to_class] = measure(lc, polygons, to_class, FOREST, part, repeats=1)["readback"]
    return out


def bench_row(size: int, folder: Path, repeats: int = 1) -> dict[str, Any]:
    """1 % of a ``size`` px map (the Zion NLCD mirrored) changed: a central square turned to 22."""
    from lcgan_qgis.core.rasters.gdal_io import GdalReader

    from .inputs import synthetic_landcover

    CACHE.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    lc = synthetic_landcover(CACHE, size)
    side = int(round(size * 0.1))
    with GdalReader(lc) as reader:
        polygons = square_polygons(reader.info, (size - side) // 2, (size - side) // 2, side, folder / "square.gpkg")
    return measure(lc, polygons, 22, (), folder, check_readback=False, repeats=repeats)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.scenario", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    z = sub.add_parser("zion")
    z.add_argument("--out", type=Path, default=REPO / "docs" / "scenario_zion.json")
    z.add_argument("--picture", type=Path, default=REPO / "docs" / "img" / "scenario_zion.png")
    z.add_argument("--keep", type=Path, default=None, help="keep the rasters in this folder")
    z.add_argument("--margins", default=str(DEFAULT_MARGIN), help="local mode margins, e.g. 24,32,40,48 (the first "
                   "is the row's 'local')")
    z.add_argument("--repeats", type=int, default=3)
    r = sub.add_parser("row")
    r.add_argument("--size", type=int, default=4096)
    r.add_argument("--repeats", type=int, default=1, help="full render / scenario pairs, alternated (medians)")
    sub.add_parser("reach", help="how far one pixel's change reaches in the bundled generator's output")
    b = sub.add_parser("readback", help="the Zion edit turned to other classes: how the land-cover model reads them")
    b.add_argument("--to-class", default="52,31", help="comma-separated class codes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.command == "reach":
        from .scenario_reach import one_pixel_reach

        print(json.dumps(one_pixel_reach()))
        return 0
    if not ZION.is_dir():
        print(f"error: the Zion sample is missing ({ZION})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lcgan-scenario-") as tmp:
        folder = Path(tmp)
        if args.command == "readback":
            print(json.dumps(readback_classes([int(c) for c in args.to_class.split(",")], folder), indent=1))
            return 0
        if args.command == "zion":
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                folder = args.keep
            margins = tuple(int(m) for m in args.margins.split(","))
            row = zion(args.out, args.picture, folder, margins, args.repeats)
        else:
            row = bench_row(args.size, folder, args.repeats)
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
