"""The layers of ``docs/architecture.md``, enforced on the sources: who may import what.

Imports are read with ``ast`` (every ``import``, also those inside functions, relative ones resolved to absolute
module names), so a lazy import breaks a rule as surely as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYQT = ("PyQt5", "PyQt6")  # the plugin goes through qgis.PyQt, so Qt6 builds of QGIS work too

#: Layer (a folder or a file, relative to the repository) -> module prefixes it must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # QGIS-free runtime: numpy, onnxruntime, osgeo. Nothing above it.
    "lcgan_qgis/core": ("qgis", *PYQT, "torch", "rasterio", "onnx", "training", "lcgan_qgis.plugin",
                        "lcgan_qgis.tooling", "lcgan_qgis.cli", "dask", "distributed", "lcgan_qgis.mosaic",
                        "lcgan_qgis.installer"),
    # Scale-out over Dask (imported lazily inside it): the core plus dask; QGIS-free.
    "lcgan_qgis/mosaic": ("qgis", *PYQT, "torch", "rasterio", "onnx", "training", "lcgan_qgis.plugin",
                          "lcgan_qgis.tooling", "lcgan_qgis.cli"),
    # Model tooling: the core plus onnx; QGIS-free.
    "lcgan_qgis/tooling": ("qgis", *PYQT, "torch", "rasterio", "training", "lcgan_qgis.plugin", "lcgan_qgis.cli"),
    # The command line: QGIS-free, over the core (and the tooling for ``quantize``).
    "lcgan_qgis/cli": ("qgis", *PYQT, "torch", "rasterio", "onnx", "training", "lcgan_qgis.plugin"),
    "lcgan_qgis/__main__.py": ("qgis", *PYQT, "torch", "rasterio", "onnx", "training", "lcgan_qgis.plugin"),
    # The plugin's installer of runtime packages: QGIS-free, over the core's files and model drivers.
    "lcgan_qgis/installer": ("qgis", *PYQT, "torch", "rasterio", "onnx", "training", "lcgan_qgis.plugin",
                             "lcgan_qgis.tooling", "lcgan_qgis.cli", "lcgan_qgis.mosaic"),
    # QGIS's entry point: loads the plugin folder lazily, nothing else.
    "lcgan_qgis/__init__.py": ("qgis", *PYQT, "torch", "rasterio", "onnx", "training", "lcgan_qgis.tooling"),
    # The QGIS adapters: the only code importing qgis; the plugin's runtime has no torch, rasterio or onnx.
    "lcgan_qgis/plugin": (*PYQT, "torch", "rasterio", "onnx", "training", "lcgan_qgis.tooling", "lcgan_qgis.cli"),
    # The PyTorch package: no QGIS (it runs on headless training machines), only the core of the plugin.
    "training": ("qgis", *PYQT, "lcgan_qgis.plugin", "lcgan_qgis.cli"),
}


def module_name(path: Path) -> str:
    """Dotted module name of a source file of the repository (``lcgan_qgis/core/run/job.py`` ->
    ``lcgan_qgis.core.run.job``)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` imports (``from X import y`` also yields ``X.y``: y may be a module)."""
    tree = ast.parse(source if source is not None else path.read_text(encoding="utf-8"))
    own = module_name(path).split(".")
    package = own if path.name == "__init__.py" else own[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names if alias.name != "*"}
    return found


def violations(path: Path, forbidden: tuple[str, ...], source: str | None = None) -> list[str]:
    return sorted(m for m in imported_modules(path, source)
                  if any(m == f or m.startswith(f + ".") for f in forbidden))


def _sources(layer: str) -> list[Path]:
    root = REPO / layer
    return [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_it_must_not(layer: str) -> None:
    sources = _sources(layer)
    assert sources, f"{layer} has no Python sources: update FORBIDDEN and docs/architecture.md"
    offenders = {str(p.relative_to(REPO)): bad for p in sources if (bad := violations(p, FORBIDDEN[layer]))}
    assert offenders == {}


def test_every_module_of_the_plugin_package_belongs_to_a_layer() -> None:
    """A new module lands in a layer's folder (or the rules above grow with it), never loose beside them."""
    layers = [REPO / layer for layer in FORBIDDEN if layer.startswith("lcgan_qgis")]
    loose = [str(p.relative_to(REPO)) for p in (REPO / "lcgan_qgis").rglob("*.py")
             if not any(p == layer or layer in p.parents for layer in layers)]
    assert loose == []


def test_only_the_plugin_folder_imports_qgis() -> None:
    importing = {str(p.relative_to(REPO).parts[1]) for p in (REPO / "lcgan_qgis").rglob("*.py")
                 if any(m == "qgis" or m.startswith("qgis.") for m in imported_modules(p))}
    assert importing == {"plugin"}


def test_the_rule_reader_resolves_relative_and_lazy_imports() -> None:
    """The checker itself: a relative import three levels up, and one inside a function, are both seen."""
    path = REPO / "lcgan_qgis" / "plugin" / "gui" / "example.py"
    source = (
        "from ...core.run.job import run_translation\n\ndef f():\n    from ... import tooling\n    import torch.nn\n"
    )
    assert {"lcgan_qgis.core.run.job", "lcgan_qgis.tooling", "torch.nn"} <= imported_modules(path, source)
    assert violations(path, FORBIDDEN["lcgan_qgis/plugin"], source) == ["lcgan_qgis.tooling", "torch.nn"]


def test_the_architecture_page_names_every_module_of_the_plugin_package() -> None:
    """docs/architecture.md lists each module with its layer; a new module must be added there."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(REPO)) for p in (REPO / "lcgan_qgis").rglob("*.py")
               if p.name != "__init__.py" and f"`{p.name}`" not in text and f"/{p.name}`" not in text
               and f"`{p.relative_to(REPO / 'lcgan_qgis').as_posix()}`" not in text]
    assert missing == []
