"""Build the Plugin Manager zip: ``python -m tools.make_zip --out dist/lcgan_qgis.zip``.

Layout (QGIS installs the top folder as the plugin ``lcgan_qgis``)::

    lcgan_qgis/                  the package (no tests, no __pycache__, no locally installed dependencies, and no
                                 tooling/: it needs onnx, which the plugin's runtime does not ship)
    lcgan_qgis/metadata.txt      from the repository root
    lcgan_qgis/LICENSE
    lcgan_qgis/requirements-runtime.txt   the pins the dependency installer uses
    lcgan_qgis/requirements-optional.txt  the pins of the optional speed-ups it offers (OpenVINO)
    lcgan_qgis/resources/        icons, class schemes, styles, bundled models (core.resources looks here first)
    lcgan_qgis/_training/training/           the modules of the training package that fine-tuning imports
    lcgan_qgis/_training/lcgan_qgis/tooling/ the model tooling they import (ONNX weight storage, int8 copies)

``_training`` is no package (no ``__init__.py``) and nothing the plugin loads imports from it: QGIS's process never
imports torch. Only the fine-tuning child process (``lcgan_qgis/plugin/training_process.py``) puts it on its path.

The archive is reproducible: entries sorted, fixed timestamps.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from lcgan_qgis.core.storage.files import AtomicFile

REPO = Path(__file__).resolve().parent.parent
PLUGIN = "lcgan_qgis"
RESOURCE_FOLDERS = ("icons", "schemes", "styles", "models")
EXCLUDED_PARTS = {"__pycache__", "python_deps", ".pytest_cache", ".mypy_cache"}
#: Sub-packages left out of the plugin: model tooling that needs ``onnx`` (``python -m lcgan_qgis quantize`` says so).
EXCLUDED_PACKAGES = {"tooling"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo", ".orig", ".rej", ".tmp"}
FIXED_TIME = (2026, 1, 1, 0, 0, 0)
#: Where the zip ships the training package (and the tooling it imports) inside the plugin folder.
SHIPPED_TRAINING = f"{PLUGIN}/_training"
#: The module the fine-tuning child runs; the zip ships what it imports from :data:`SHIPPED_MODULES`.
FINETUNE_ENTRY = "training.finetune.__main__"
SHIPPED_MODULES = ("training", f"{PLUGIN}.tooling")


def _package_files() -> Iterator[tuple[Path, str]]:
    for path in sorted((REPO / PLUGIN).rglob("*")):
        rel = path.relative_to(REPO)
        if path.is_dir() or EXCLUDED_PARTS & set(rel.parts) or path.suffix in EXCLUDED_SUFFIXES:
            continue
        if len(rel.parts) > 2 and rel.parts[1] in EXCLUDED_PACKAGES:
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        yield path, rel.as_posix()


def _resource_files() -> Iterator[tuple[Path, str]]:
    for folder in RESOURCE_FOLDERS:
        root = REPO / "resources" / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path, f"{PLUGIN}/resources/{path.relative_to(REPO / 'resources').as_posix()}"


def _module_file(name: str) -> Path | None:
    base = REPO.joinpath(*name.split("."))
    return next((f for f in (base.with_suffix(".py"), base / "__init__.py") if f.is_file()), None)


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in packages)


def import_closure(entry: str, shipped: tuple[str, ...] = SHIPPED_MODULES) -> list[Path]:
    """The files of the modules under ``shipped`` that ``entry`` imports, directly or through lcgan's own modules, at
    the top or inside a function (read from the source, nothing is imported), with their packages' ``__init__.py``;
    sorted."""
    seen: dict[str, Path] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or name in seen or not _under(name, ("training", PLUGIN)):
            continue
        seen[name] = path
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                here = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
                module = ".".join([*here, *([node.module] if node.module else [])])
                todo += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return sorted(path for name, path in seen.items() if _under(name, shipped))


def _training_files() -> Iterator[tuple[Path, str]]:
    """What the fine-tuning child imports from ``training`` and ``lcgan_qgis.tooling``, under
    :data:`SHIPPED_TRAINING`."""
    for path in import_closure(FINETUNE_ENTRY):
        yield path, f"{SHIPPED_TRAINING}/{path.relative_to(REPO).as_posix()}"


def entries() -> list[tuple[Path, str]]:
    """``(source file, name in the zip)`` for everything the plugin ships, sorted by name."""
    files = list(_package_files()) + list(_resource_files()) + list(_training_files())
    files += [
        (REPO / "metadata.txt", f"{PLUGIN}/metadata.txt"),
        (REPO / "LICENSE", f"{PLUGIN}/LICENSE"),
        (REPO / "requirements" / "runtime.txt", f"{PLUGIN}/requirements-runtime.txt"),
        (REPO / "requirements" / "optional.txt", f"{PLUGIN}/requirements-optional.txt"),
    ]
    return sorted(files, key=lambda item: item[1])


def check_metadata() -> str:
    """The metadata version, after checking it matches ``lcgan_qgis.__version__`` and names an existing icon."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "metadata.txt", encoding="utf-8")
    general = parser["general"]
    init = (REPO / PLUGIN / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', init, re.MULTILINE)
    if match is None or match.group(1) != general["version"]:
        raise SystemExit(f"metadata.txt version {general['version']} != lcgan_qgis.__version__ "
                         f"{match.group(1) if match else '?'}")
    icon = general.get("icon", "")
    if not (REPO / icon).is_file():
        raise SystemExit(f"metadata.txt icon {icon} does not exist under {REPO} (resources/ is zipped into the "
                         "plugin folder, so the same relative path works there)")
    return general["version"]


def build(out: Path) -> Path:
    """Write the zip to ``out`` (folders created) and return it."""
    version = check_metadata()
    out.parent.mkdir(parents=True, exist_ok=True)
    with AtomicFile(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED,
                                                 compresslevel=9) as archive:
        for source, name in entries():
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (source.stat().st_mode & 0o777 | 0o100000) << 16
            archive.writestr(info, source.read_bytes())
    print(f"{out}: lcgan {version}, {len(entries())} files, {out.stat().st_size / 1e6:.2f} MB")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist" / f"{PLUGIN}.zip", help="zip to write")
    args = parser.parse_args(argv)
    build(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
