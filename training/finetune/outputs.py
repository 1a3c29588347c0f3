"""What a fine-tuning run leaves: a model folder like ``resources/models`` and ``report.json`` + ``report.png``.

The folder holds both generators (float16-stored weights, contract with the new scheme and the imagery's
radiometry), their int8 copies with fidelity records (``python -m lcgan_qgis quantize``'s own code), the scheme,
``provenance.json`` (base, data, areas, steps, minutes) and the report: validation accuracy, mIoU and per-class IoU
of the fine-tuned model against the majority baseline and against the base model (its classes mapped to the new
scheme) on the same pixels, the validation curve, and the imagery side's low-pass L1.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lcgan_qgis.core.errors import LcganError
from lcgan_qgis.core.model.contract import Direction, ModelContract, Radiometry
from lcgan_qgis.core.storage.files import AtomicFile

from ..checkpoints import write_failure
from ..errors import TrainingError
from ..evaluation.metrics import confusion_matrix
from ..export import FILE_NAMES, export_generator
from . import evaluate as ev
from .run import FineTune

log = logging.getLogger(__name__)

CLEAR_MARGIN = 0.05  # accuracy points over both the majority baseline and the base model that count as "clear"


def write_json(path: Path, data: Any) -> None:
    with AtomicFile(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def contracts(ft: FineTune, version: str) -> dict[Direction, ModelContract]:
    """The base contracts with the run's scheme, the imagery's radiometry values and the run's version."""
    scene = ft.scenes[0]
    out = {}
    for direction, base in ft.base.items():
        c = base.contract
        radiometry = Radiometry(c.radiometry.mode, tuple(scene.low), tuple(scene.high), c.radiometry.percentiles)
        arch = base.architecture
        upsample = arch.upsample if arch.generator == "resnet" else "blur"  # (spade and unet always blur)
        extra = {**{k: v for k, v in c.extra.items() if k in ("ngf", "n_blocks", "norm")},
                 "generator": arch.generator, "upsample": upsample,
                 "finetuned_from": c.model_version, "training_step": ft.step}
        out[direction] = dataclasses.replace(c, scheme=ft.scheme, radiometry=radiometry, model_version=version,
                                             config_digest=ft.settings.identity(), extra=extra)
    return out


def final_scores(ft: FineTune) -> dict[str, Any]:
    """Fine-tuned vs base (mapped) vs majority on every labelled validation pixel."""
    k = ft.k
    mapping = np.array([*ft.mapping, k], dtype=np.int64)  # unmapped base classes -> an extra, always-wrong column
    base_net = ft.base[Direction.RGB_TO_LANDCOVER].net
    cm_new = np.zeros((k, k), dtype=np.int64)
    cm_base = np.zeros((k + 1, k + 1), dtype=np.int64)
    for scene in ft.scenes:
        mask = scene.val & scene.labelled
        rows, cols = ev.bbox(mask)
        image, truth, valid = scene.image[:, rows, cols], scene.labels[rows, cols], mask[rows, cols]
        cm_new += confusion_matrix(truth, ev.predict(ft.nets["g_rgb2lc"], image), k, valid)
        base_pred = _mapped(mapping, ev.predict(base_net, image), k)
        cm_base += confusion_matrix(truth, base_pred, k + 1, valid)
    codes = ft.scheme.codes
    base_scores = ev.scores(cm_base, (*codes, -1))
    base_scores["iou_per_class"].pop("-1", None)
    return {"pixels": int(cm_new.sum()), "finetuned": ev.scores(cm_new, codes), "base_model": base_scores,
            "majority": ev.majority(cm_new, codes), "confusion_matrix": cm_new.tolist()}


def _mapped(mapping: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    out = mapping[pred]
    return np.where(out < 0, k, out)


def calibration_landcover(ft: FineTune, folder: Path) -> Path:
    """The run's labels (scene 0) as a code raster: the int8 calibration input of the image model."""
    import rasterio

    scene = ft.scenes[0]
    codes = ft.scheme.indices_to_codes(np.clip(scene.labels, 0, None))
    codes = np.where(scene.labels >= 0, codes, ft.scheme.nodata_code).astype(ft.scheme.code_dtype)
    path = folder / "labels.tif"
    with rasterio.open(path, "w", driver="GTiff", width=codes.shape[1], height=codes.shape[0], count=1,
                       dtype=codes.dtype, crs=scene.crs, transform=scene.transform,
                       nodata=ft.scheme.nodata_code) as ds:
        ds.write(codes, 1)
    return path


def export_folder(ft: FineTune, version: str) -> dict[str, Any]:
    """Both generators, int8 copies and gates into ``--out``; returns what was written (and any int8 failure)."""
    out = ft.out
    written: dict[str, Any] = {}
    for direction, contract in contracts(ft, version).items():
        net = ft.nets["g_rgb2lc" if direction is Direction.RGB_TO_LANDCOVER else "g_lc2rgb"]
        path = out / FILE_NAMES[direction]
        written[path.name] = {"parity": export_generator(net.cpu(), contract, path, weight_storage="fp16")}
    if ft.settings.int8:
        try:
            from lcgan_qgis.tooling.quantize import quantize_model
        except ImportError as exc:  # (onnxruntime's quantization tools missing: the float models still serve)
            log.warning("int8 copies not made: %s", exc)
            return {**written, "int8": {"error": str(exc)}}
        with tempfile.TemporaryDirectory(prefix="lcgan-finetune-") as tmp:
            calibration = {"rgb_to_landcover.onnx": Path(ft.settings.imagery[0]),
                           "landcover_to_rgb.onnx": calibration_landcover(ft, Path(tmp))}
            for name, raster in calibration.items():
                target = out / name.replace(".onnx", ".int8.onnx")
                t0 = time.monotonic()
                try:
                    quantize_model(out / name, raster, target)
                    written[target.name] = {"seconds": round(time.monotonic() - t0, 1)}
                except LcganError as exc:
                    log.warning("int8 copy of %s not made: %s", name, exc)
                    written[target.name] = {"error": str(exc)}
    return written


def provenance(ft: FineTune, version: str) -> dict[str, Any]:
    s = ft.settings
    base = ft.base[Direction.RGB_TO_LANDCOVER].contract
    return {"model_version": version, "base": {"folder": str(Path(s.base).resolve()), "model_version":
                                               base.model_version, "scheme": base.scheme.name},
            "data": {"imagery": s.imagery, "landcover": s.landcover, "labels": s.labels or None,
                     "class_field": s.class_field if s.labels else None, "bands": s.bands},
            "areas": {"train": s.train_area or ("train_area.geojson (automatic split)" if ft.split else None),
                      "val": s.val_area or ("val_area.geojson (automatic split)" if ft.split else None)},
            "scheme": ft.scheme.name, "class_transfer": ft.transfer_notes, "steps": ft.step,
            "minutes": round(ft.elapsed_s / 60, 2),
            "recipe": {k: v for k, v in dataclasses.asdict(s).items() if k not in ("imagery", "landcover", "out")}}


def write_outputs(ft: FineTune, wall_s: float) -> dict[str, Any]:
    """Export, score and write the report; returns the report.

    Raises:
        TrainingError: the folder cannot be written (disk full...), in one line naming it; the checkpoint is kept,
            so the same command writes the folder again.
    """
    try:
        return _write_outputs(ft, wall_s)
    except OSError as exc:
        raise TrainingError(f"Cannot write the model folder {ft.out}: {write_failure(exc, ft.out)}. The checkpoint "
                            f"{ft.ckpt} is kept: free some space and run the same command to write the folder."
                            ) from None


def terrain_model(ft: FineTune) -> dict[str, Any]:
    """The fine-tuned land cover -> RGB model lit by ``--elevation`` (:func:`training.relight.relight`), fitted in
    the training area; a DEM that cannot light it (flat, no overlap) is reported, and the folder stays usable."""
    from ..relight import relight

    s = ft.settings
    areas = {key: Path(given) if given else (ft.out / f"{key}_area.geojson" if ft.split else None)
             for key, given in (("train", s.train_area), ("val", s.val_area))}
    with tempfile.TemporaryDirectory(prefix="lcgan-finetune-") as tmp:
        labels = calibration_landcover(ft, Path(tmp))
        try:
            return relight(ft.out, Path(s.imagery[0]), labels, Path(s.elevation), areas["train"], ft.out,
                           areas["val"], tuple(s.bands), s.int8)  # type: ignore[arg-type]
        except LcganError as exc:
            log.warning("no terrain-aware model: %s", exc)
            return {"error": str(exc)}


def _write_outputs(ft: FineTune, wall_s: float) -> dict[str, Any]:
    t0 = time.monotonic()
    version = f"finetune-{ft.settings.identity()[:8]}-step{ft.step}"
    ft.out.mkdir(parents=True, exist_ok=True)
    if ft.split:
        for key, data in ft.split.items():
            write_json(ft.out / f"{key}_area.geojson", data)
    write_json(ft.out / "scheme.json", ft.scheme.to_dict())
    scores = final_scores(ft)
    windows = [w for _s, wins in ft.quick for w in wins]
    scene = ft.scenes[0]
    imagery = {"lowpass_l1_finetuned": ev.lowpass_l1(ft.nets["g_lc2rgb"], scene, windows, ft.k, ft.extra),
               "lowpass_l1_start": ev.lowpass_l1(ft.initial_lc2rgb, scene, windows, ft.k, ft.extra),
               "what": "mean |4x4 block mean of the generated image - of the real one| on the validation windows, in "
                       "[-1, 1] units; start = the base generator with the classes carried over"}
    written = export_folder(ft, version)
    if ft.settings.elevation:
        written["landcover_to_rgb_terrain.onnx"] = terrain_model(ft)
    acc = scores["finetuned"]["accuracy"]
    report = {
        "verdict": {"beats_majority": acc > scores["majority"]["accuracy"] + CLEAR_MARGIN,
                    "beats_base_model": acc > scores["base_model"]["accuracy"] + CLEAR_MARGIN,
                    "clear_margin": CLEAR_MARGIN,
                    "accuracy": acc, "majority_accuracy": scores["majority"]["accuracy"],
                    "base_model_accuracy": scores["base_model"]["accuracy"]},
        "validation": scores, "curve": ft.curve, "imagery": imagery,
        "base_to_new_classes": {str(ft.base_scheme.codes[b]): (ft.scheme.codes[n] if n >= 0 else None)
                                for b, n in enumerate(ft.mapping)},
        "speed": {"steps": ft.step, "train_minutes": round(ft.elapsed_s / 60, 2),
                  "steps_per_s": round(ft.step / ft.elapsed_s, 4) if ft.elapsed_s else None,
                  "threads": torch.get_num_threads(), "batch": ft.settings.batch, "crop_px": ft.settings.crop,
                  "precision": "bf16" if ft.bf16 else "fp32", "freeze_encoder": ft.settings.freeze_encoder,
                  "load_average": list(os.getloadavg()), "export_and_report_s": None, "wall_s": None},
        "files": written, "provenance": provenance(ft, version),
    }
    report["speed"]["export_and_report_s"] = round(time.monotonic() - t0, 1)
    report["speed"]["wall_s"] = round(wall_s + time.monotonic() - t0, 1)
    write_json(ft.out / "provenance.json", report["provenance"])
    write_json(ft.out / "report.json", report)
    plot_report(report, ft, ft.out / "report.png")
    return report


def plot_report(report: dict[str, Any], ft: FineTune, path: Path) -> None:
    """Validation curve against minutes, and per-class IoU of the three predictors; skipped, with one log line, where
    matplotlib is not installed (the plugin's PyTorch install does not add it; report.json has the numbers)."""
    try:
        import matplotlib
    except ImportError:
        log.warning("matplotlib is not installed: %s not drawn (report.json has the same numbers)", path.name)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = report["validation"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    minutes = [p["minutes"] for p in report["curve"]]
    a.plot(minutes, [p["accuracy"] for p in report["curve"]], "o-", label="fine-tuned (validation windows)")
    a.axhline(v["base_model"]["accuracy"], color="tab:red", ls="--", label="base model (whole validation area)")
    a.axhline(v["majority"]["accuracy"], color="gray", ls=":", label="majority class")
    a.set_xlabel("training minutes")
    a.set_ylabel("pixel accuracy")
    a.legend(fontsize=8)
    a.set_title(f"final: {v['finetuned']['accuracy']:.3f} (mIoU {v['finetuned']['mean_iou']:.3f})")
    codes = [str(c) for c in ft.scheme.codes]
    x = np.arange(len(codes))
    for i, (key, label) in enumerate((("finetuned", "fine-tuned"), ("base_model", "base"), ("majority", "majority"))):
        values = [v[key]["iou_per_class"].get(c) or 0.0 for c in codes]
        b.bar(x + (i - 1) * 0.27, values, 0.27, label=label)
    b.set_xticks(x, [f"{c}\n{n[:12]}" for c, n in zip(codes, ft.scheme.names, strict=True)], fontsize=7)
    b.set_ylabel("IoU (validation area)")
    b.legend(fontsize=8)
    fig.tight_layout()
    with AtomicFile(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
