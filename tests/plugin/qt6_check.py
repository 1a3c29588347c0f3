"""Run by test_qt6.py in a child Python with PyQt6 (from PyPI) and stand-ins for qgis.core/gui (QGIS 4 cannot run
here): every ``qgis.PyQt`` name and attribute chain the plugin uses must exist in PyQt6, and every plugin module must
import. Prints one JSON line: ``{"missing": [...], "import_errors": {...}}``. Kept free of pytest."""

from __future__ import annotations

import ast
import importlib
import json
import sys
import traceback
from pathlib import Path

REPO = Path(sys.argv[1])
sys.path[:0] = [sys.argv[2], str(Path(__file__).with_name("qt6_stubs")), str(REPO)]  # PyQt6, stand-ins, the repo


def _in_import_fallback(tree: ast.AST, node: ast.AST) -> bool:
    """Whether ``node`` sits in an ``except ImportError`` handler (a Qt5 fallback such as QAction's)."""
    for handler in ast.walk(tree):
        if isinstance(handler, ast.ExceptHandler) and any(child is node for child in ast.walk(handler)):
            return True
    return False


def qt_surface(path: Path) -> list[str]:
    """``qgis.PyQt`` names and attribute chains of ``path`` that PyQt6 lacks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: dict[str, object] = {}
    missing = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("qgis.PyQt"):
            if _in_import_fallback(tree, node):
                continue
            module = importlib.import_module(node.module.replace("qgis.PyQt", "PyQt6"))
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
                else:
                    missing.append(f"{path.name}: {node.module}.{alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or isinstance(getattr(node, "parent", None), ast.Attribute):
            continue
        chain, root = [], node
        while isinstance(root, ast.Attribute):
            chain.insert(0, root.attr)
            root = root.value
        if isinstance(root, ast.Name) and root.id in names:
            target = names[root.id]
            for part in chain:
                if not hasattr(target, part):
                    missing.append(f"{path.name}:{node.lineno}: {root.id}.{'.'.join(chain)}")
                    break
                target = getattr(target, part)
    return missing


def main() -> None:
    sources = sorted((REPO / "lcgan_qgis" / "plugin").rglob("*.py"))
    missing = [m for path in sources for m in qt_surface(path)]
    errors = {}
    for path in sources:
        name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        try:
            importlib.import_module(name)
        except Exception:  # (reported, one line per module)
            errors[name] = traceback.format_exc().strip().splitlines()[-1]
    import PyQt6.QtCore

    print(json.dumps({"qt": PyQt6.QtCore.QT_VERSION_STR, "modules": len(sources), "missing": sorted(set(missing)),
                      "import_errors": errors}))


if __name__ == "__main__":
    main()
