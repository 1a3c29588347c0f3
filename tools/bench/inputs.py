"""Inputs of the benchmark: the full-size generators (with int8 siblings and fidelity records), trained models,
rasters and a per-pixel model for the memory runs; all built once and cached under
:data:`~tools.bench.measures.CACHE`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lcgan_qgis.core.model.contract import STRETCH_PERCENTILES
from lcgan_qgis.core.rasters.geotiff import GEOTIFF_CREATION_OPTIONS
from lcgan_qgis.core.storage.files import AtomicFile

from .measures import CACHE, ZION, read

MODEL_TAG = "v2-seed0"  # bump when the benchmark generator or its export changes
TILE_PX, OVERLAP_PX = 256, 32  # the full-size model's contract (overlap = tile // 8, as training exports it)
UTM12N_GEOTRANSFORM = (300000.0, 30.0, 0.0, 4150000.0, 0.0, -30.0)


def generator_flops_per_px() -> float:
    """FLOPs (2 x multiply-adds) per output pixel of the full-size generator, counted on a 256 px forward pass."""
    import torch

    from training.models import ResnetGenerator

    net = ResnetGenerator(3, 14, ngf=64, n_blocks=9, final="logits")
    macs = [0]

    def hook(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        k = module.kernel_size[0] * module.kernel_size[1] // module.groups
        if isinstance(module, torch.nn.ConvTranspose2d):
            macs[0] += inputs[0][0].numel() * module.out_channels * k
        else:
            macs[0] += output[0].numel() * module.in_channels * k

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.zeros(1, 3, TILE_PX, TILE_PX))
    return 2.0 * macs[0] / TILE_PX ** 2


def zion_radiometry() -> Any:
    from lcgan_qgis.core.model.contract import Radiometry
    from lcgan_qgis.core.rasters.gdal_io import GdalReader
    from lcgan_qgis.core.run.preprocess import image_percentiles

    with GdalReader(ZION / "landsat8_rgb.tif") as reader:
        low, high, _n = image_percentiles(reader, (1, 2, 3), reader.info.nodata, STRETCH_PERCENTILES)
    return Radiometry(mode="percentile", low=low, high=high)


def full_models() -> dict[str, Path]:
    """The full-size generators (random weights, seed 0), their int8 siblings and fidelity records (the gates
    ``auto`` reads), built once and cached."""
    import torch

    from lcgan_qgis.core.model.contract import Direction, ModelContract
    from lcgan_qgis.core.model.precision import int8_sibling
    from lcgan_qgis.core.model.scheme import ClassScheme
    from lcgan_qgis.core.resources import default_scheme_path
    from lcgan_qgis.tooling.quantize import quantize_model
    from training.export import export_generator
    from training.models import ResnetGenerator

    CACHE.mkdir(parents=True, exist_ok=True)
    paths = {}
    for direction, (c_in, c_out, final), calibration in (
            (Direction.RGB_TO_LANDCOVER, (3, 14, "logits"), "landsat8_rgb.tif"),
            (Direction.LANDCOVER_TO_RGB, (14, 3, "tanh"), "nlcd2011_on_landsat_grid.tif")):
        path = CACHE / f"full_{direction.value}_{MODEL_TAG}.onnx"
        if not path.exists():
            torch.manual_seed(0)
            contract = ModelContract(direction=direction, scheme=ClassScheme.load(default_scheme_path()),
                                     radiometry=zion_radiometry(), tile_size_px=TILE_PX, overlap_px=OVERLAP_PX,
                                     gsd_m=30.0, model_version=f"bench-{MODEL_TAG}",
                                     description="full-size CycleGAN generator, random weights (benchmark only)")
            export_generator(ResnetGenerator(c_in, c_out, ngf=64, n_blocks=9, final=final), contract, path)
        if not int8_sibling(path).exists():
            quantize_model(path, ZION / calibration, int8_sibling(path))
        ensure_record(path, ZION / calibration)
        paths[direction.value] = path
    return paths


def trained_models(folder: Path | None) -> dict[str, Path] | None:
    """Trained models (``folder`` or the bundled resources/models) copied to the cache with their int8 siblings
    (the ones that ship; made there where the folder has none); None when there are none. Random weights
    exaggerate int8 error (near-tie logits) and hide seams (noise-like output), so fidelity and seams are also
    measured on a trained model."""
    import hashlib
    import shutil

    from lcgan_qgis.core.model.precision import int8_sibling
    from lcgan_qgis.core.resources import resources_dir
    from lcgan_qgis.tooling.quantize import quantize_model

    folder = folder or resources_dir() / "models"
    names = ("rgb_to_landcover", "landcover_to_rgb")
    if not all((folder / f"{n}.onnx").is_file() for n in names):
        return None
    given = [folder / f"{n}{suffix}" for n in names for suffix in (".onnx", ".int8.onnx")]
    digest = hashlib.sha256(MODEL_TAG.encode() + b"".join(p.read_bytes() for p in given if p.is_file())).hexdigest()
    target = CACHE / f"trained-{digest[:10]}"
    target.mkdir(parents=True, exist_ok=True)
    calibration = {"rgb_to_landcover": "landsat8_rgb.tif", "landcover_to_rgb": "nlcd2011_on_landsat_grid.tif"}
    paths = {}
    for name in names:
        path = target / f"{name}.onnx"
        for source, copy in ((folder / f"{name}.onnx", path), (int8_sibling(folder / f"{name}.onnx"),
                                                               int8_sibling(path))):
            if source.is_file() and not copy.exists():  # the int8 copy that ships, where there is one
                with AtomicFile(copy) as tmp:  # a cache: never a half-copied model under its name
                    shutil.copyfile(source, tmp)
        if not int8_sibling(path).exists():
            quantize_model(path, ZION / calibration[name], int8_sibling(path))
        ensure_record(path, ZION / calibration[name])
        paths[name] = path
    return paths


def ensure_record(path: Path, calibration: Path) -> None:
    """Measure the model's fidelity gates (``M.fidelity.json``) unless a record of exactly these files exists."""
    from lcgan_qgis.core.model.precision import read_record
    from lcgan_qgis.tooling.gates import measure_gates

    record, _note = read_record(path)
    if record is None or len(record.paths) < 2:
        measure_gates(path, calibration)


def synthetic_raster(folder: Path, size: int) -> Path:
    """A ``size`` x ``size`` 8-bit RGB GeoTIFF: Zion Landsat stretched to 1..255 and mirrored to size."""
    path = folder / f"zion8bit_{size}.tif"
    if path.exists():
        return path
    src = read(ZION / "landsat8_rgb.tif").astype(np.float32)
    valid = src[0] > 0
    lo, hi = (np.percentile(src[:, valid], q, axis=1)[:, None, None] for q in STRETCH_PERCENTILES)
    img = np.clip((src - lo) / (hi - lo) * 254 + 1, 1, 255).astype(np.uint8)
    img[:, ~valid] = 128
    return _write_utm12n(path, _mirrored(img, size))


def synthetic_landcover(folder: Path, size: int) -> Path:
    """A ``size`` x ``size`` land-cover GeoTIFF: the Zion NLCD (on the Landsat grid) mirrored to size, its nodata
    border kept (a real map's codes, class patches and nodata)."""
    from osgeo import gdal

    path = folder / f"zion_nlcd_{size}.tif"
    if path.exists():
        return path
    src = gdal.Open(str(ZION / "nlcd2011_on_landsat_grid.tif"))
    codes, nodata = src.ReadAsArray(), src.GetRasterBand(1).GetNoDataValue()
    return _write_utm12n(path, _mirrored(codes[None], size), nodata)


def _mirrored(img: np.ndarray, size: int) -> np.ndarray:
    """``(bands, h, w)`` pixels mirrored (flipped copies side by side and below) and cut to ``size`` x ``size``."""
    reps_r, reps_c = size // img.shape[1] + 1, size // img.shape[2] + 1
    row = np.concatenate([img if j % 2 == 0 else img[:, :, ::-1] for j in range(reps_c)], axis=2)
    return np.concatenate([row if i % 2 == 0 else row[:, ::-1] for i in range(reps_r)], axis=1)[:, :size, :size]


def _write_utm12n(path: Path, pixels: np.ndarray, nodata: float | None = None) -> Path:
    """``(bands, rows, cols)`` uint8 pixels as a tiled DEFLATE GeoTIFF in UTM 12N at 30 m."""
    from osgeo import gdal, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32612)
    bands, rows, cols = pixels.shape
    with AtomicFile(path) as tmp:  # a cache: an interrupted run must not leave a truncated raster under its name
        ds = gdal.GetDriverByName("GTiff").Create(str(tmp), cols, rows, bands, gdal.GDT_Byte,
                                                  list(GEOTIFF_CREATION_OPTIONS))
        ds.SetGeoTransform(UTM12N_GEOTRANSFORM)
        ds.SetProjection(srs.ExportToWkt())
        for b in range(bands):
            band = ds.GetRasterBand(b + 1)
            if nodata is not None:
                band.SetNoDataValue(nodata)
            band.WriteArray(pixels[b])
        ds = None  # closed (flushed) before the move
    return path


def mosaic_vrt(tile: Path, tile_px: int, factor: int) -> Path:
    """A VRT of ``factor`` x ``factor`` copies of ``tile`` (a big raster without the disk space)."""
    size = tile_px * factor
    path = tile.with_name(f"mosaic_{size}.vrt")
    bands = []
    for b in range(1, 4):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{tile.name}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'<SrcRect xOff="0" yOff="0" xSize="{tile_px}" ySize="{tile_px}"/>'
            f'<DstRect xOff="{c * tile_px}" yOff="{r * tile_px}" xSize="{tile_px}" ySize="{tile_px}"/></SimpleSource>'
            for r in range(factor) for c in range(factor))
        bands.append(f'<VRTRasterBand dataType="Byte" band="{b}">{sources}</VRTRasterBand>')
    from xml.sax.saxutils import escape

    from osgeo import osr

    gt = ", ".join(repr(v) for v in UTM12N_GEOTRANSFORM)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32612)  # the tile's CRS: the job's resolution check needs it, as for any raster
    with AtomicFile(path) as tmp:
        tmp.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{escape(srs.ExportToWkt())}</SRS>'
                       f"<GeoTransform>{gt}</GeoTransform>" + "".join(bands) + "</VRTDataset>")
    return path


def pointwise_model(folder: Path) -> Path:
    """A per-pixel 3 -> 14 model (1x1 conv + sigmoid) with the full model's contract, for memory runs: cheap, so
    the engine's own memory shows (softmax over channels is ~10x slower than the conv in onnxruntime's CPU EP)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from lcgan_qgis.core.model.runtime import load_model

    path = folder / "pointwise_rgb_to_landcover.onnx"
    contract = load_model(full_models()["rgb_to_landcover"], "cpu", precision="fp32").contract
    rng = np.random.default_rng(0)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W", "B"], ["s"], kernel_shape=[1, 1]),
         helper.make_node("Sigmoid", ["s"], ["output"])], "pointwise",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 14, "H", "W"])],
        initializer=[numpy_helper.from_array(rng.normal(0, 1, (14, 3, 1, 1)).astype(np.float32), "W"),
                     numpy_helper.from_array(np.zeros(14, np.float32), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, contract.to_metadata())
    with AtomicFile(path) as tmp:
        onnx.save(model, str(tmp))
    return path


def baseline_io(model_path: Path) -> tuple[int, Any, Any]:
    """What the Deepness-like baseline does around ``session.run`` for a model: the raster bands it reads, the
    tile -> model input function (8-bit imagery scaled to [-1, 1]; a land-cover tile one-hot encoded, nodata all
    zero, with the contract's noise channels drawn per tile) and the output -> 8-bit function (argmax of the
    class probabilities; imagery in [-1, 1] scaled to 0..255)."""
    from lcgan_qgis.core.model.runtime import load_model

    with load_model(model_path, "cpu", precision="fp32", backend="onnxruntime") as model:
        contract = model.contract
    if contract.direction.value == "rgb_to_landcover":
        return contract.image_bands, lambda t: (t / 127.5 - 1.0)[None].astype(np.float32), \
            lambda y: y.argmax(axis=0).astype(np.uint8)[None]
    codes = np.array(contract.scheme.codes)
    rng = np.random.default_rng(0)
    extra = contract.in_channels - len(codes)

    def one_hot(t: np.ndarray) -> np.ndarray:
        onehot = (t[0][None] == codes[:, None, None]).astype(np.float32)
        noise = rng.standard_normal((extra, *t.shape[1:]), dtype=np.float32)
        return np.concatenate([onehot, noise])[None]

    return 1, one_hot, lambda y: np.clip((y + 1.0) * 127.5, 0, 255).astype(np.uint8)
