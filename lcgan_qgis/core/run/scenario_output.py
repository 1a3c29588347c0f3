"""The files of a scenario (:mod:`.scenario`): the base render's check, the composite, the change mask, the tags."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import InputRasterError, OutputError
from ..model.contract import ModelContract
from ..rasters import provenance
from ..rasters.gdal_io import GdalReader, gdal_call, gdal_errors
from ..rasters.geotiff import BLOCK_PX, build_overviews, overview_factors
from ..rasters.output import open_writer, output_spec, style_output
from ..rasters.overview_patch import refresh_average_overviews, write_nearest_overviews
from ..rasters.raster import RasterInfo, Window
from .change import bounding_window, check_same_grid, strips

#: Tags a scenario adds to the provenance (GeoTIFF metadata, the layer's QGIS metadata).
SCENARIO, BASE, CHANGE = "LCGAN_SCENARIO", "LCGAN_SCENARIO_BASE", "LCGAN_SCENARIO_CHANGE"
BASE_RENDER, SEED, MARGIN = "LCGAN_SCENARIO_BASE_RENDER", "LCGAN_SEED", "LCGAN_SCENARIO_MARGIN_PX"
MODE = "LCGAN_SCENARIO_MODE"
CHANGED_PX, CHANGED_HA = "LCGAN_SCENARIO_CHANGED_PX", "LCGAN_SCENARIO_CHANGED_HA"
#: Change mask values.
COPIED, CHANGED, MARGIN_RING = 0, 1, 2
MASK_NAMES = ("copied from the base render", "changed land cover", "re-rendered margin")
MASK_COLOURS = ((0, 0, 0, 0), (228, 26, 28, 255), (255, 191, 0, 140))


def scenario_tags(tags: Mapping[str, str], name: str, base: str, change: str, base_render: str, seed: int,
                  margin_px: int, changed_px: int, changed_ha: float | None, mode: str = "exact") -> dict[str, str]:
    """The provenance ``tags`` of a scenario's outputs plus what names the scenario (and its mode and margin)."""
    out = dict(tags)
    out.update({SCENARIO: name, BASE: base, CHANGE: change, BASE_RENDER: base_render, SEED: str(seed),
                MARGIN: str(margin_px), CHANGED_PX: str(changed_px), MODE: mode})
    if changed_ha is not None:
        out[CHANGED_HA] = f"{changed_ha:.4f}"
    how = ("the neighbourhood within it is re-rendered and feathered into the base render (local mode)"
           if mode == "local" else "the neighbourhood within it equals a full render of the changed map (exact mode)")
    out["TIFFTAG_IMAGEDESCRIPTION"] = (
        f"{provenance.summary(out)} Scenario '{name}': the base land cover {base} changed by {change} "
        f"({changed_px:,} px{'' if changed_ha is None else f', {changed_ha:,.2f} ha'}); pixels farther than "
        f"{margin_px} px from the change are copied from {base_render}; {how}.")
    return out


def check_base_render(path: str, base: RasterInfo) -> RasterInfo:
    """The base render's description, once it is known to fit the base land cover.

    Raises:
        InputRasterError: not on the base's grid, or not 3-band 8-bit imagery (naming the file and what differs).
    """
    with GdalReader(path) as reader:
        info = reader.info
    check_same_grid(base, info, "base render")
    if info.band_count != 3 or info.dtype != "uint8":
        raise InputRasterError(f"The base render {path} has {info.band_count} band(s) of {info.dtype}; it must be "
                               "the 3-band 8-bit imagery rendered from the base land cover (python -m lcgan_qgis "
                               "translate --seed N).")
    return info


def read_tags(path: str) -> dict[str, str]:
    """The dataset metadata (provenance tags) of the raster ``path`` (empty when it has none or cannot be read)."""
    dataset = gdal.Open(str(path))
    tags = dict(dataset.GetMetadata() or {}) if dataset is not None else {}
    dataset = None
    return tags


def base_render_notes(info: RasterInfo, model_path: Path, base_name: str, seed: int) -> list[str]:
    """Check the base render's own tags (an lcgan render names its model and seed); returns notes.

    Raises:
        InputRasterError: an lcgan render made by another model or with another seed (the re-rendered ring would
            not match it: a seam).
    """
    tags = read_tags(info.name)
    notes = []
    made_by = tags.get(provenance.MODEL)
    if made_by:
        ours = Path(model_path).name.replace(".int8.onnx", ".onnx")
        if Path(made_by).name.replace(".int8.onnx", ".onnx") != ours:
            raise InputRasterError(f"The base render {info.name} was made by the model {made_by}, this scenario runs "
                                   f"{ours}; render the base with the scenario's model (or leave the base render out).")
        rendered_seed = tags.get(SEED, "0")  # (lcgan leaves seed 0 out)
        if rendered_seed != str(seed):
            raise InputRasterError(f"The base render {info.name} was rendered with seed {rendered_seed}, this scenario "
                                   f"with {seed}; give the scenario the base render's seed.")
        if tags.get(provenance.GRID) != provenance.GRID_RULE:
            raise InputRasterError(f"The base render {info.name} was made by {tags.get(provenance.SOFTWARE, 'lcgan')} "
                                   "before its windows were phase-aligned: its texture where windows overlap differs "
                                   "from this version's render; render the base again (or leave the base render out).")
    else:
        notes.append(f"The base render {info.name} has no lcgan provenance: it must come from the same model, "
                     "window, overlap and seed, or the re-rendered ring will not match it.")
    if tags.get(provenance.INPUT) and Path(tags[provenance.INPUT]).name != Path(base_name).name:
        notes.append(f"The base render {info.name} was rendered from {tags[provenance.INPUT]}, not {base_name}.")
    return notes


def composite(base_render: str, part: str, grown: np.ndarray, region: Window, out: Path, info: RasterInfo,
              contract: ModelContract, tags: Mapping[str, str]) -> None:
    """Write the base render with the re-rendered ``part`` (covering ``region``) pasted where ``grown`` is set."""
    spec = output_spec(contract)
    writer = open_writer(str(out), info, spec.bands, spec.dtype, spec.nodata)
    with writer, GdalReader(base_render) as before, GdalReader(part) as after:
        style_output(writer, contract)
        bands = tuple(range(1, spec.bands + 1))
        for window in strips(info.height, info.width):
            pixels = before.read(window, bands)
            rows = Window(region.col_off, window.row_off, region.width, window.height).intersection(region)
            if rows is not None:
                local = Window(0, rows.row_off - region.row_off, rows.width, rows.height)
                new = after.read(local, bands)
                r0 = rows.row_off - window.row_off
                target = pixels[:, r0:r0 + rows.height, rows.col_off:rows.col_end]
                keep = grown[rows.toslices()]
                target[:, keep] = new[:, keep]
            writer.write(window.row_off, 0, pixels)
            writer.flush()
        writer.set_tags(dict(tags))
        writer.build_overviews(False)
        writer.commit()


def write_change_mask(mask: np.ndarray, grown: np.ndarray, out: Path, info: RasterInfo,
                      tags: Mapping[str, str]) -> None:
    """The change mask: :data:`CHANGED` where the class changed, :data:`MARGIN_RING` in the re-rendered margin
    (``grown`` holds ``mask``). Its NEAREST overviews are filled from the re-rendered area's bounding window only
    (:func:`~..rasters.overview_patch.write_nearest_overviews`: what GDAL would build; 0 elsewhere)."""
    writer = open_writer(str(out), info, 1, np.dtype(np.uint8), None)  # type: ignore[arg-type]
    extent = bounding_window(grown)
    with writer:
        band = writer.band(1)
        table = gdal.ColorTable()
        for value, colour in enumerate(MASK_COLOURS):
            table.SetColorEntry(value, colour)
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
        band.SetRasterCategoryNames(list(MASK_NAMES))
        band.SetDescription("scenario change")
        values = None
        if extent is not None:  # (only its blocks are written: the others, all 0, are left out of the file)
            part = extent.toslices()
            values = np.where(mask[part], np.uint8(CHANGED), np.where(grown[part], np.uint8(MARGIN_RING),
                                                                       np.uint8(COPIED)))
            writer.write(extent.row_off, extent.col_off, values[None])
        mask_tags = {k: v for k, v in tags.items() if k not in (provenance.SOURCE_TYPE, provenance.AI_GENERATED,
                                                                 "TIFFTAG_IMAGEDESCRIPTION")}
        mask_tags[provenance.KIND] = "scenario change mask"
        writer.set_tags(mask_tags)
        dataset = band.GetDataset()
        dataset.FlushCache()
        if values is not None and extent is not None:
            write_nearest_overviews(dataset, values, extent, overview_factors(info.width, info.height))
        else:
            writer.build_overviews(True)
        writer.commit()


def lcgan_layout(path: str, info: RasterInfo) -> bool:
    """Whether ``path`` is a GeoTIFF laid out as lcgan writes its renders (tiled :data:`~..rasters.geotiff.BLOCK_PX`
    blocks, DEFLATE, 3 bands of 8 bits, its internal overviews; no side file but QGIS's statistics, which are not
    copied), so a copy can be patched in place."""
    dataset = gdal.Open(str(path))
    if dataset is None or dataset.GetDriver().ShortName != "GTiff" or dataset.RasterCount != 3:
        return False
    band = dataset.GetRasterBand(1)
    ok = (band.DataType == gdal.GDT_Byte and band.GetBlockSize() == [BLOCK_PX, BLOCK_PX]
          and (dataset.GetMetadata("IMAGE_STRUCTURE") or {}).get("COMPRESSION") == "DEFLATE"
          and band.GetOverviewCount() == len(overview_factors(info.width, info.height))
          and all(f == str(path) or f.endswith(".aux.xml") for f in dataset.GetFileList() or []))
    dataset = None
    return ok


def patch_composite(base_render: str, patches: Sequence[tuple[Window, np.ndarray, np.ndarray]], out: Path,
                    info: RasterInfo, contract: ModelContract, tags: Mapping[str, str]) -> bool:
    """Write the base render with each patch ``(region, new pixels, weight of the new pixels)`` blended in
    (:func:`~.scenario_local.blend`). An lcgan render is copied and only the blocks under the patches are encoded
    again, with its overviews: an lcgan render's (AVERAGE) overview pixels over the patches are recomputed as GDAL
    would (:func:`~..rasters.overview_patch.refresh_average_overviews`), any other's pyramid is rebuilt; any other
    base render is written anew, strip by strip. Returns whether it was patched in place."""
    from .scenario_local import blend  # (here: its engine imports onnxruntime, and this module loads with the plugin)

    if lcgan_layout(base_render, info):
        partial = bool(read_tags(base_render).get(provenance.MODEL))  # (an lcgan render: AVERAGE overviews)
        shutil.copyfile(base_render, out)
        with gdal_errors() as errors:
            dataset = gdal_call(errors, gdal.Open, str(out), gdal.GA_Update)
            for region, new, weight in patches:
                old = dataset.ReadAsArray(region.col_off, region.row_off, region.width, region.height)
                dataset.WriteArray(blend(new, old, weight), region.col_off, region.row_off)
                if partial:
                    refresh_average_overviews(dataset, region)
            dataset.SetMetadata(dict(tags))
            dataset.FlushCache()
            if not partial:
                build_overviews(dataset, False, str(out))
            dataset = None
        if errors:
            raise OutputError(f"Cannot write {out}: {errors[-1]}")
        return True
    spec = output_spec(contract)
    writer = open_writer(str(out), info, spec.bands, spec.dtype, spec.nodata)
    with writer, GdalReader(base_render) as before:
        style_output(writer, contract)
        bands = tuple(range(1, spec.bands + 1))
        for window in strips(info.height, info.width):
            pixels = before.read(window, bands)
            for region, new, weight in patches:
                rows = Window(region.col_off, window.row_off, region.width, window.height).intersection(region)
                if rows is None:
                    continue
                local = (slice(rows.row_off - region.row_off, rows.row_end - region.row_off), slice(None))
                target = (slice(None), slice(rows.row_off - window.row_off, rows.row_end - window.row_off),
                          slice(rows.col_off, rows.col_end))
                pixels[target] = blend(new[(slice(None), *local)], pixels[target], weight[local])
            writer.write(window.row_off, 0, pixels)
            writer.flush()
        writer.set_tags(dict(tags))
        writer.build_overviews(False)
        writer.commit()
    return False
