"""Screenshot of the lcgan dock in a real QGIS window: ``python -m tools.screenshot --out docs/img/dock.png``.

Starts QGIS desktop (``/usr/bin/qgis``) under ``xvfb-run`` with a fresh profile that has the plugin installed from
its zip and enabled, lets :mod:`tools.screenshot_scene` load the Zion Landsat scene, run RGB -> land cover from the
dock's Run button and show the styled result, then grabs the screen with ``xwd -root`` and converts it with
ImageMagick's ``convert``. Uses the bundled model when it is installed, else a per-pixel test model.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lcgan_qgis.core.contract import Direction
from lcgan_qgis.core.resources import bundled_model_path
from tools.plugin_profile import install_plugin, qgis_env

REPO = Path(__file__).resolve().parent.parent
ZION_RGB = REPO.parent / "shared" / "data" / "zion" / "landsat8_rgb.tif"
SCREEN = "1600x1000x24"
LOG = logging.getLogger("screenshot")

GRAB = r"""
set -u
"$QGIS" --nologo --noversioncheck --code "$SCENE" >"$WORK/qgis.log" 2>&1 &
pid=$!
for _ in $(seq 1 "$WAIT_S"); do
  [ -f "$READY" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "QGIS exited early; see $WORK/qgis.log" >&2; exit 3; }
  sleep 1
done
[ -f "$READY" ] || { echo "QGIS did not get ready in $WAIT_S s; see $WORK/qgis.log" >&2; kill "$pid"; exit 4; }
xwd -root -silent -display "$DISPLAY" | convert xwd:- "png:$OUT"
kill "$pid"
wait "$pid" 2>/dev/null
exit 0
"""


def _model(work: Path) -> Path:
    bundled = bundled_model_path(Direction.RGB_TO_LANDCOVER)
    if bundled.is_file():
        return bundled
    sys.path.insert(0, str(REPO))
    from tests.onnx_factory import write_pointwise

    LOG.warning("no bundled model at %s: using a per-pixel test model", bundled)
    return write_pointwise(work / "rgb_to_landcover.onnx", Direction.RGB_TO_LANDCOVER)


def take(out: Path, wait_s: int = 240) -> Path:
    """Take the screenshot into ``out`` (PNG)."""
    for tool in ("xvfb-run", "xwd", "convert", "qgis"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (make setup installs xvfb, x11-apps, imagemagick, qgis)")
    if not ZION_RGB.is_file():
        raise SystemExit(f"the Zion sample is missing: {ZION_RGB}")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lcgan-shot-") as tmp:
        work = Path(tmp)
        install_plugin(work / "config", enable=True)
        env = qgis_env(work / "config")
        env.pop("QT_QPA_PLATFORM", None)  # a real (virtual) X display, not offscreen
        env.update(QGIS=shutil.which("qgis") or "qgis", SCENE=str(REPO / "tools" / "screenshot_scene.py"),
                   WORK=str(work), READY=str(work / "ready"), OUT=str(out), WAIT_S=str(wait_s),
                   LCGAN_SHOT_INPUT=str(ZION_RGB), LCGAN_SHOT_MODEL=str(_model(work)),
                   LCGAN_SHOT_OUTPUT=str(work / "zion_landcover.tif"), LCGAN_SHOT_READY=str(work / "ready"))
        run = subprocess.run(["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN}", "bash", "-c", GRAB], env=env,
                             capture_output=True, text=True, timeout=wait_s + 120)
        status = (work / "ready").read_text() if (work / "ready").exists() else "not ready"
        if run.returncode != 0 or status != "ok":
            log = (work / "qgis.log").read_text(errors="replace")[-4000:] if (work / "qgis.log").exists() else ""
            raise SystemExit(f"screenshot failed ({status}, exit {run.returncode}): {run.stderr}\n{log}")
    print(f"{out}: {out.stat().st_size / 1e3:.0f} kB")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "dock.png")
    parser.add_argument("--wait", type=int, default=240, help="seconds to wait for QGIS and the translation")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    take(args.out, args.wait)
    return 0


if __name__ == "__main__":
    sys.exit(main())
