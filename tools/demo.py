"""``make demo``: a procedural land-cover map -> synthetic imagery -> land cover again, through the plugin's own
Processing algorithms in a headless QGIS, with a quicklook PNG.

Steps: write the seeded demo map (``tools.demo_input``), run ``lcgan:landcover_to_rgb`` on it and
``lcgan:rgb_to_landcover`` on the result with ``processing.run`` (models: the bundled ones in ``resources/models``
unless ``--models DIR``), then draw ``demo.png`` (``tools.quicklook``) and print the agreement and where the files are.

Usage: ``python -m tools.demo --out out [--size 1024] [--seed 0] [--models DIR] [--device auto|cpu|cuda]
[--docs-png docs/img/demo.png]`` (the last also copies the quicklook there, for the README).
Exit status: 0 done, 1 a step failed (message, no traceback), 2 a model file is missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lcgan_qgis.core.choices import DEVICES  # in the order of the algorithms' DEVICE enum
from lcgan_qgis.core.errors import LcganError
from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.model.scheme import ClassScheme
from lcgan_qgis.core.resources import bundled_model_path, default_scheme_path
from lcgan_qgis.core.storage.files import AtomicFile
from tools.demo_input import DEFAULT_SEED, DEFAULT_SIZE_PX, make_demo_input

log = logging.getLogger("lcgan.demo")

INPUT_NAME = "demo_landcover_input.tif"
RGB_NAME = "demo_rgb.tif"
LANDCOVER_NAME = "demo_landcover.tif"
PNG_NAME = "demo.png"
QGIS_PLUGINS_DIR = "/usr/share/qgis/python/plugins"  # Debian's Processing framework
RADIOMETRY_PERCENTILE = 1  # lcgan:rgb_to_landcover's RADIOMETRY enum: 0 model default, 1 percentile, 2 fixed


class DemoError(Exception):
    """A demo step failed; the message says which and why (shown without a traceback)."""


def model_paths(models_dir: Path | None) -> dict[Direction, Path]:
    """The two model files the demo uses; DemoError naming what is missing and how to get it."""
    paths = {d: (models_dir / f"{d.value}.onnx" if models_dir else bundled_model_path(d)) for d in Direction}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DemoError(
            "model file(s) missing: " + ", ".join(missing) + ". The bundled models live in resources/models/ "
            "(train and export them with `make train` and `python -m training export --out resources/models`), "
            "or pass --models DIR with landcover_to_rgb.onnx and rgb_to_landcover.onnx."
        )
    return paths


def start_qgis() -> Any:
    """A headless QgsApplication with Processing and the lcgan provider registered; returns ``processing``."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from qgis.core import QgsApplication
    except ImportError as exc:
        raise DemoError(f"QGIS's Python bindings do not import ({exc}); run `make setup` first.") from None
    app = QgsApplication.instance()
    if app is None:
        QgsApplication.setPrefixPath("/usr", True)
        app = QgsApplication([], False)
        app.initQgis()
        start_qgis.app = app  # keep a reference for the process's lifetime
    if QGIS_PLUGINS_DIR not in sys.path:
        sys.path.append(QGIS_PLUGINS_DIR)
    import processing
    from processing.core.Processing import Processing

    Processing.initialize()
    try:
        from lcgan_qgis.plugin.processing_provider import LcganProvider
    except ImportError as exc:
        raise DemoError(f"the lcgan Processing provider does not import: {exc}") from None
    registry = QgsApplication.processingRegistry()
    if registry.providerById("lcgan") is None:
        provider = LcganProvider()
        registry.addProvider(provider)
        start_qgis.provider = provider
    return processing


def run_algorithm(processing: Any, algorithm: str, params: dict[str, Any]) -> dict[str, Any]:
    """``processing.run`` with a feedback that logs; Processing errors become DemoError with QGIS's message."""
    from qgis.core import QgsProcessingException, QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.last_decile = -1

        def setProgress(self, progress: float) -> None:
            super().setProgress(progress)
            decile = int(progress // 10)
            if decile != self.last_decile:
                self.last_decile = decile
                log.info("%s: %d %%", algorithm, 10 * decile)

        def reportError(self, error: str, fatalError: bool = False) -> None:
            log.error("%s: %s", algorithm, error)

        def pushInfo(self, info: str) -> None:
            log.info("%s: %s", algorithm, info)

        def pushWarning(self, warning: str) -> None:
            log.warning("%s: %s", algorithm, warning)

    started = time.perf_counter()
    try:
        result = processing.run(algorithm, params, feedback=Feedback())
    except QgsProcessingException as exc:
        raise DemoError(f"{algorithm} failed: {exc}") from None
    log.info("%s done in %.1f s", algorithm, time.perf_counter() - started)
    return result


def run_demo(out_dir: Path, size_px: int = DEFAULT_SIZE_PX, seed: int = DEFAULT_SEED, models_dir: Path | None = None,
             device: str = "auto") -> dict[str, Any]:
    """Run every step of the demo into ``out_dir``; returns the paths, the agreement and the timings."""
    models = model_paths(models_dir)
    from tools.quicklook import render

    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    input_path = make_demo_input(out_dir / INPUT_NAME, size_px, seed)
    timings["demo input"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    processing = start_qgis()
    timings["QGIS start"] = time.perf_counter() - t0

    rgb_path, lc_path = out_dir / RGB_NAME, out_dir / LANDCOVER_NAME
    # The synthetic RGB is 8-bit display values, whatever units the land-cover model was trained on: read it with
    # its own percentiles (RADIOMETRY=percentile), as the model's training imagery was read with its percentiles.
    steps = (("lcgan:landcover_to_rgb", input_path, Direction.LANDCOVER_TO_RGB, rgb_path, {}),
             ("lcgan:rgb_to_landcover", rgb_path, Direction.RGB_TO_LANDCOVER, lc_path,
              {"RADIOMETRY": RADIOMETRY_PERCENTILE}))
    for algorithm, source, direction, target, extra in steps:
        t0 = time.perf_counter()
        run_algorithm(processing, algorithm, {"INPUT": str(source), "MODEL": str(models[direction]),
                                              "DEVICE": DEVICES.index(device), "OUTPUT": str(target), **extra})
        timings[algorithm] = time.perf_counter() - t0
    for path in (rgb_path, lc_path):
        if not path.is_file():
            raise DemoError(f"the algorithm reported success but wrote no {path}")

    t0 = time.perf_counter()
    png = out_dir / PNG_NAME
    agreement = render(input_path, rgb_path, lc_path, png, ClassScheme.load(default_scheme_path()),
                       title=f"lcgan demo ({size_px} x {size_px} px at 30 m, seed {seed}): ")
    timings["quicklook"] = time.perf_counter() - t0
    return {"input": input_path, "rgb": rgb_path, "landcover": lc_path, "png": png, "agreement": agreement,
            "timings": timings}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE_PX, help="demo map side in pixels (default 1024)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="demo map seed (default 0)")
    parser.add_argument("--models", type=Path, default=None, help="folder with both .onnx files (default: bundled)")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="execution device")
    parser.add_argument("--docs-png", type=Path, default=None, help="also copy the quicklook to this path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    try:
        result = run_demo(args.out, args.size, args.seed, args.models, args.device)
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2 if "model file(s) missing" in str(exc) else 1
    except (LcganError, OSError, ValueError) as exc:
        print(f"demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.docs_png:
        args.docs_png.parent.mkdir(parents=True, exist_ok=True)
        with AtomicFile(args.docs_png) as tmp:
            shutil.copyfile(result["png"], tmp)
        result["docs_png"] = args.docs_png
    print(result["agreement"].line())
    print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["timings"].items())
          + f"; total {time.perf_counter() - started:.1f} s")
    for key, label in (("input", "input land cover"), ("rgb", "synthetic RGB"),
                       ("landcover", "land cover predicted back"), ("png", "quicklook"),
                       ("docs_png", "quicklook copy")):
        if key in result:
            print(f"{label:>26}: {result[key].resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
