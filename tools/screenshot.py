"""Screenshots of a new user's steps in a real QGIS window: ``python -m tools.screenshot --out-dir docs/img``.

Starts QGIS desktop (``/usr/bin/qgis``) under ``xvfb-run`` with a fresh profile that has the plugin installed from
its zip and enabled but no onnxruntime yet, and lets :mod:`tools.screenshot_scene` walk through the steps: the
install prompt and installer (``install.png``), the dock before a run (``dock_before.png``), the dock after a run
from its Run button with the styled result (``dock.png``), the legend (``legend.png``), the Processing dialog
(``processing.png``), the dock's Adapt section before, during and after a one-minute run (``adapt.png``,
``adapt_running.png``, ``adapt_done.png``) and its Scenario section (``scenario_dock.png``). Each is
grabbed with ``xwd -root`` and converted (and cropped) with ImageMagick's ``convert``. Uses the bundled model when
it is installed, else a per-pixel test model.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lcgan_qgis.core.model.contract import Direction
from lcgan_qgis.core.resources import bundled_model_path
from tools.plugin_profile import RUNTIME_MODULES, _site_folder, install_plugin, qgis_env

REPO = Path(__file__).resolve().parent.parent
ZION_RGB = REPO.parent / "shared" / "data" / "zion" / "landsat8_rgb.tif"
ZION_LANDCOVER = ZION_RGB.with_name("nlcd2011.tif")
SCREEN = "1600x1000x24"
SHOTS = ("install", "dock_before", "dock", "legend", "processing", "adapt", "adapt_running", "adapt_done",
         "scenario_dock")
LOG = logging.getLogger("screenshot")

GRAB = r"""
set -u
"$QGIS" --nologo --noversioncheck --code "$SCENE" >"$WORK/qgis.log" 2>&1 &
pid=$!
for name in $SHOTS; do
  for _ in $(seq 1 "$WAIT_S"); do
    [ -f "$WORK/ready_$name" ] && break
    [ -f "$WORK/failed" ] && { echo "scene failed: $(cat "$WORK/failed")" >&2; kill "$pid"; exit 5; }
    kill -0 "$pid" 2>/dev/null || { echo "QGIS exited early; see $WORK/qgis.log" >&2; exit 3; }
    sleep 1
  done
  [ -f "$WORK/ready_$name" ] || { echo "no $name shot in $WAIT_S s; see $WORK/qgis.log" >&2; kill "$pid"; exit 4; }
  crop=$(cat "$WORK/ready_$name")
  if [ "$crop" = full ]; then geometry=""; else
    IFS=, read -r x y w h <<<"$crop"; geometry="-crop ${w}x${h}+${x}+${y} +repage"; fi
  xwd -root -silent -display "$DISPLAY" | convert xwd:- $geometry "png:$OUT_DIR/$name.png"
  touch "$WORK/taken_$name"
done
for _ in $(seq 1 30); do [ -f "$WORK/done" ] && break; sleep 1; done
kill "$pid"
wait "$pid" 2>/dev/null
exit 0
"""


def _model(work: Path) -> Path:
    bundled = bundled_model_path(Direction.RGB_TO_LANDCOVER)
    if bundled.is_file():
        return bundled
    sys.path.insert(0, str(REPO))
    from tests.fixtures.onnx_factory import write_pointwise

    LOG.warning("no bundled model at %s: using a per-pixel test model", bundled)
    return write_pointwise(work / "rgb_to_landcover.onnx", Direction.RGB_TO_LANDCOVER)


def _model_choice(work: Path) -> str:
    """The dock's model file: empty for the bundled model (what a new user sees), else the test model's path."""
    model = _model(work)
    return "" if model == bundled_model_path(Direction.RGB_TO_LANDCOVER) else str(model)


def take(out_dir: Path, wait_s: int = 300) -> list[Path]:
    """Take every screenshot of :data:`SHOTS` into ``out_dir`` (PNG)."""
    for tool in ("xvfb-run", "xwd", "convert", "qgis"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make setup installs xvfb, x11-apps, imagemagick, qgis)")
    if not ZION_RGB.is_file():
        raise SystemExit(f"the Zion sample is missing: {ZION_RGB}")
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lcgan-shot-") as tmp:
        work = Path(tmp)
        install_plugin(work / "config", enable=True, link_runtime=False)  # a new user: no onnxruntime yet
        env = qgis_env(work / "config")
        env.pop("QT_QPA_PLATFORM", None)  # a real (virtual) X display, not offscreen
        runtime = os.pathsep.join(f"{m}={_site_folder(m)}" for m in RUNTIME_MODULES)
        env.update(QGIS=shutil.which("qgis") or "qgis", SCENE=str(REPO / "tools" / "screenshot_scene.py"),
                   WORK=str(work), OUT_DIR=str(out_dir), WAIT_S=str(wait_s), SHOTS=" ".join(SHOTS),
                   LCGAN_SHOT_WORK=str(work), LCGAN_SHOT_INPUT=str(ZION_RGB),
                   LCGAN_SHOT_LANDCOVER=str(ZION_LANDCOVER), LCGAN_SHOT_MODEL=_model_choice(work),
                   LCGAN_SHOT_OUTPUT=str(work / "zion_landcover.tif"), LCGAN_SHOT_RUNTIME=runtime,
                   LCGAN_TRAINING_PYTHON=sys.executable)  # Adapt's child: this interpreter has PyTorch
        run = subprocess.run(["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", "bash", "-c", GRAB], env=env,
                             capture_output=True, text=True, timeout=wait_s * len(SHOTS) + 120)
        if run.returncode != 0:
            kept = Path(tempfile.gettempdir()) / "lcgan-screenshot-qgis.log"
            if (work / "qgis.log").exists():
                shutil.copyfile(work / "qgis.log", kept)
            faults = (work / "faults.txt").read_text(errors="replace") if (work / "faults.txt").exists() else ""
            if faults.strip():
                LOG.error("Python traceback of the crash:\n%s", faults)
            raise SystemExit(f"screenshots failed (exit {run.returncode}): {run.stderr.strip()}; QGIS's log: {kept}")
    shots = [out_dir / f"{name}.png" for name in SHOTS]
    for shot in shots:
        print(f"{shot}: {shot.stat().st_size / 1e3:.0f} kB")
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--wait", type=int, default=300, help="seconds to wait for each step")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    take(args.out_dir, args.wait)
    return 0


if __name__ == "__main__":
    sys.exit(main())
