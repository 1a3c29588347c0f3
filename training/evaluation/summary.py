"""The printed summary of an evaluation report (``training.evaluation.report``): one line per headline number."""

from __future__ import annotations


def summary_lines(report: dict) -> list[str]:
    """A short human-readable summary of a report (printed by the CLI)."""
    rgb2lc = report["rgb_to_landcover"]
    base = rgb2lc["baseline_majority"]
    agree = report["landcover_to_rgb"]["landcover_agreement"]
    colours = report["landcover_to_rgb"]["colour_statistics"]
    ious = ", ".join(f"{k} {v['iou']:.2f}" for k, v in rgb2lc["iou_per_class"].items() if v["iou"] is not None)
    lines = [
        report["label"],
        f"RGB -> land cover: accuracy {rgb2lc['accuracy']:.3f}, mIoU {rgb2lc['miou']:.3f} "
        f"(majority baseline '{base['name']}': accuracy {base['accuracy']:.3f}, mIoU {base['miou']:.3f})",
        f"  per-class IoU: {ious}",
        f"land cover -> RGB: class-mean colour error {colours['class_mean_abs_error']} "
        f"(global-mean baseline {colours['baseline_global_mean_abs_error']}) in image units per band",
        f"  land cover read back from generated imagery: accuracy {agree['accuracy']:.3f}, mIoU {agree['miou']:.3f}",
    ]
    if "areas" not in report:
        for area, scores in report.get("split", {}).get("rgb_to_landcover", {}).items():
            base = scores["baseline_majority"]
            lines.append(f"RGB -> land cover, {area.replace('_', ' ')} only: accuracy {scores['accuracy']:.3f}, "
                         f"mIoU {scores['miou']:.3f} (majority baseline accuracy {base['accuracy']:.3f}, "
                         f"mIoU {base['miou']:.3f}; {scores['pixels']} px)")
        return lines
    for area, section in report["areas"].items():
        lines += area_summary_lines(area, section)
    lines += window_summary_lines(report["window_dependence"])
    if "terrain_comparison" in report:
        lines += terrain_summary_lines(report["terrain_comparison"])
    if "realism" in report:
        lines += realism_summary_lines(report["realism"])
    judge = report["judge"]
    lines.append(f"judge / supervised reference: {judge['parameters'] / 1e6:.2f} M parameters, {judge['steps']} steps, "
                 f"{judge['pixels'] / 1e6:.0f} M training pixels, {judge['seconds']:.0f} s"
                 f"{' (from the cache)' if judge['cache']['reused'] else ''}; evaluation {report['seconds']:.0f} s")
    return lines


def area_summary_lines(area: str, section: dict) -> list[str]:
    """The summary of one area of ``report["areas"]``."""
    lc, rgb = section["rgb_to_landcover"], section["landcover_to_rgb"]
    base, sup = lc["baseline_majority"], lc["supervised_reference"]
    fd, judge, test = rgb["judge_frechet"], rgb["judge_scores"], rgb["two_sample"]
    texture, colour = rgb["texture"], rgb["colour_statistics"]
    return [
        f"[{area.replace('_', ' ')}] RGB -> land cover: accuracy {lc['accuracy']:.3f}, mIoU {lc['miou']:.3f}; "
        f"majority baseline {base['accuracy']:.3f} / {base['miou']:.3f}; supervised reference {sup['accuracy']:.3f} / "
        f"{sup['miou']:.3f} ({lc['pixels']} px)",
        "  per-class IoU (CycleGAN / supervised): " + ", ".join(
            f"{k} {v['iou']:.2f}/{sup['iou_per_class'][k]['iou'] or 0:.2f}" for k, v in lc["iou_per_class"].items()
            if v["iou"] is not None and v["true_share"] >= 0.01),
        f"  land cover -> RGB: judge Frechet distance {fd['generated_vs_real']:.2f} (real training vs held-out area "
        f"{fd['real_training_vs_heldout']:.2f}, floor {fd['real_vs_real_floor']:.2f}, blur sigma 1 px "
        f"{fd['blurred_vs_real']:.2f}; {fd['samples_per_set']} cells per set)",
        f"  judge on generated imagery: accuracy {judge['generated']['accuracy']:.3f}, mIoU "
        f"{judge['generated']['miou']:.3f} (on real imagery {judge['real']['accuracy']:.3f} / "
        f"{judge['real']['miou']:.3f}); two-sample accuracy {test['accuracy']:.3f} (blurred control "
        f"{test['control_blurred_accuracy']:.3f}); checkerboard index {_fmt(rgb['checkerboard']['index'])}",
        f"  texture ratio generated/real: local std {texture['local_std_ratio']}, gradient {texture['gradient_ratio']};"
        f" class-mean colour error {colour['class_mean_abs_error']} (global-mean baseline "
        f"{colour['baseline_global_mean_abs_error']})",
    ]


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "undefined" if value is None else format(value, spec)


def window_summary_lines(window: dict) -> list[str]:
    """The summary of ``report["window_dependence"]``."""
    lines = []
    for area, lc in window["rgb_to_landcover"].items():
        psnr = window["landcover_to_rgb"][area]["psnr_db"]
        lines.append(f"[{area.replace('_', ' ')}] window dependence: land-cover pixels changed "
                     + ", ".join(f"{k.replace('_', ' ')} {v:.1%}" for k, v in lc["changed_share"].items())
                     + "; accuracy by window " + ", ".join(f"{k} {v:.3f}" for k, v in lc["accuracy"].items())
                     + "; RGB PSNR " + ", ".join(f"{k.replace('_', ' ')} "
                                                 f"{'identical' if v is None else f'{v:.1f} dB'}"
                                                 for k, v in psnr.items()))
    for size, why in window.get("skipped_px", {}).items():
        lines.append(f"window dependence: {size} px windows not run ({why})")
    return lines


def terrain_summary_lines(comparison: dict) -> list[str]:
    """The summary of ``report["terrain_comparison"]``: map-only vs terrain-aware, measure by measure."""
    lines = []
    for area, pair in comparison["areas"].items():
        cells = []
        for key, value in pair["map_only"].items():
            other = pair["terrain_aware"][key]
            if isinstance(value, dict):
                value, other = value.get("accuracy"), (other or {}).get("accuracy")
                key = f"{key} accuracy"
            cells.append(f"{key} {_fmt_any(value)} -> {_fmt_any(other)}")
        lines.append(f"[{area.replace('_', ' ')}] map-only -> terrain-aware generator ({comparison['model']}, "
                     f"{comparison['elevation']}): " + "; ".join(cells))
    return lines


def _fmt_any(value: object) -> str:
    """A number, a per-band list of numbers, or None (undefined), shortly."""
    if isinstance(value, (list, tuple)):
        return "/".join(_fmt_any(v) for v in value)
    return _fmt(value if isinstance(value, (int, float)) else None, ".3g")


def realism_summary_lines(realism: dict) -> list[str]:
    """The summary of ``report["realism"]`` (:func:`.measures.headline` plus the Frechet references)."""
    lines = [f"[held-out] {name}: " + "; ".join(f"{key} {_fmt_any(value)}" for key, value in row.items())
             for name, row in realism["headline"].items()]
    frechet = realism["frechet"]
    if "distances" in frechet:
        lines.append("[held-out] texture Frechet vs the real training-area sample: "
                     + "; ".join(f"{key} {value:.3g}" for key, value in frechet["distances"].items())
                     + f" (references in order: {frechet['references_in_order']})")
    return lines
