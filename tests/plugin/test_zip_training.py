"""Fine-tuning from the installed plugin: the zip ships the training modules fine-tuning imports (in
``lcgan_qgis/_training``, which nothing QGIS loads imports from), and the plugin's launcher runs a real fine-tuning
child from a plugins folder far from the checkout, with no ``$LCGAN_TRAINING_ROOT``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.test_training_algorithm import _region
from tools.make_zip import SHIPPED_TRAINING, build, import_closure

#: What the shipped training modules may add to the zip (compressed); plugins.qgis.org takes at most 25 MB in all.
MAX_SHIPPED_BYTES = 150_000

LAUNCH = """
import json, sys
from lcgan_qgis.plugin import training_process as tp

out, image, landcover = sys.argv[1:4]
run = tp.TrainingRun(tp.finetune_args([image], out, landcover=[landcover], steps=2, threads=1, crop=32), out)
tp.run_finetune(run, lambda: False, lambda progress: None, lambda line: None)
print(json.dumps({"returncode": run.returncode, "root": str(tp.training_root()), "last": run.last,
                  "lines": run.lines[-5:], "torch_here": "torch" in sys.modules, "plugin": tp.__file__,
                  "error": tp.error_line(run)}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The zip unpacked into a plugins folder, and a small region to fine-tune on."""
    folder = tmp_path_factory.mktemp("installed")
    plugins = folder / "plugins"
    with zipfile.ZipFile(build(folder / "lcgan_qgis.zip")) as zipped:
        zipped.extractall(plugins)
    return {"plugins": plugins, "folder": folder, **{k: Path(v) for k, v in _region(folder).items()}}


def launch(installed: dict[str, Path], out: Path, limit_bytes: int = 0) -> dict[str, Any]:
    """Run :data:`LAUNCH` as QGIS's side would, with the plugins folder as the only path to lcgan; ``limit_bytes``:
    a file-size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored) that the fine-tuning child inherits."""
    env = {k: v for k, v in os.environ.items() if k not in ("LCGAN_TRAINING_ROOT", "PYTHONPATH")}
    env.update(PYTHONPATH=str(installed["plugins"]), LCGAN_TRAINING_PYTHON=sys.executable, OMP_NUM_THREADS="1",
               QT_QPA_PLATFORM="offscreen")

    def limit() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (an ignored signal stays ignored across exec)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    done = subprocess.run([sys.executable, "-c", LAUNCH, str(out), str(installed["image"]), str(installed["lc"])],
                          cwd=installed["folder"], env=env, capture_output=True, text=True, timeout=900, check=False,
                          preexec_fn=limit if limit_bytes else None)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_zip_ships_what_finetuning_imports_and_meets_the_repository_rules(tmp_path: Path) -> None:
    from tools.plugin_repo_check import problems

    archive = build(tmp_path / "lcgan_qgis.zip")
    with zipfile.ZipFile(archive) as zipped:
        infos = zipped.infolist()
    names = {i.filename for i in infos}
    shipped = [i for i in infos if i.filename.startswith(f"{SHIPPED_TRAINING}/")]
    for required in ("training/__init__.py", "training/finetune/__main__.py", "training/finetune/outputs.py",
                     "training/export.py", "training/evaluation/metrics.py", "lcgan_qgis/tooling/weight_storage.py",
                     "lcgan_qgis/tooling/quantize.py"):  # (quantize: imported inside a function)
        assert f"{SHIPPED_TRAINING}/{required}" in names, required
    assert f"{SHIPPED_TRAINING}/__init__.py" not in names  # no package: QGIS's process never imports it
    assert not [n for n in names if "/tests/" in n or "__pycache__" in n or n.endswith(".pyc")]
    assert not [i.filename for i in shipped if "/ablation" in i.filename or "/evaluation/report" in i.filename]
    assert sum(i.compress_size for i in shipped) < MAX_SHIPPED_BYTES
    assert len(shipped) == len(import_closure("training.finetune.__main__"))
    assert all("is a placeholder" in p for p in problems(archive)), problems(archive)


def test_the_installed_zip_finetunes_without_the_checkout(installed: dict[str, Path]) -> None:
    """QGIS's side (the launcher) and the child import nothing from the checkout: no PYTHONPATH to it, no
    LCGAN_TRAINING_ROOT, the working folder elsewhere. Real steps, int8 copies (the shipped tooling), the folder."""
    plugins, out = installed["plugins"], installed["folder"] / "adapted"
    result = launch(installed, out)
    assert result["returncode"] == 0, result["lines"]
    assert result["plugin"].startswith(str(plugins)) and not result["torch_here"]
    assert result["root"] == str(plugins / SHIPPED_TRAINING)
    assert result["last"]["step"] == 2
    for name in ("rgb_to_landcover.onnx", "landcover_to_rgb.onnx", "rgb_to_landcover.int8.onnx", "report.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text())["speed"]["steps"] == 2


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_reaches_the_plugin_as_one_line_naming_the_folder(installed: dict[str, Path]) -> None:
    """The child cannot write its checkpoint (a 4 MB file-size limit: write() fails with EFBIG): the line the
    Processing algorithm and the dock show is the child's own error, whole."""
    out = installed["folder"] / "full"
    result = launch(installed, out, limit_bytes=4_000_000)
    assert result["returncode"] == 2
    checkpoints = out / "checkpoints"
    assert result["error"].startswith(f"Cannot write checkpoint {checkpoints / 'last.pt'}: File too large ("), result
    assert f"free in {checkpoints})" in result["error"] and not (checkpoints / "last.pt").exists()
