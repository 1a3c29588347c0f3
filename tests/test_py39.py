"""Python 3.9 for everything under ``lcgan_qgis/``: QGIS 3.22 on Windows (OSGeo4W) runs the plugin on Python 3.9.

Read statically with ``ast`` (the test interpreter is newer): 3.10+ syntax (``match``, parenthesised context
managers), the 3.10+ keywords ``@dataclass(slots=, kw_only=)``, ``field(kw_only=)`` and ``zip(strict=)``, ``X | Y``
unions evaluated at run time (``isinstance``, ``cast``, type aliases, defaults; annotations are strings under
``from __future__ import annotations``, which a file with ``|`` in its annotations must have), and names the 3.9
standard library lacks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "lcgan_qgis").rglob("*.py"))

#: Keyword arguments added in Python 3.10, by the callable that takes them.
NEW_KEYWORDS = {"dataclass": {"slots", "kw_only", "match_args"}, "field": {"kw_only"}, "zip": {"strict"}}
#: Standard-library names added after 3.9: module -> names.
NEW_NAMES = {"datetime": {"UTC"}, "itertools": {"pairwise", "batched"}, "enum": {"StrEnum", "verify"},
             "typing": {"TypeAlias", "ParamSpec", "Self", "TypeGuard", "Concatenate", "Never", "assert_never",
                        "LiteralString", "Required", "NotRequired", "Unpack", "TypeVarTuple", "override"},
             "contextlib": {"chdir", "aclosing"}}
NEW_MODULES = {"tomllib"}
BUILTIN_TYPES = {"None", "int", "float", "str", "bytes", "bool", "complex", "list", "dict", "tuple", "set",
                 "frozenset", "type", "object"}


def _name(node: ast.expr) -> str:
    """``zip`` for ``zip``, ``dataclass`` for ``dataclasses.dataclass``; empty for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else ""


def _type_like(node: ast.expr) -> bool:
    """An operand that makes ``a | b`` a union of types rather than a set or flag union."""
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.Subscript):  # list[int], Sequence[Path]
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _type_like(node.left) or _type_like(node.right)
    return isinstance(node, ast.Name) and node.id in BUILTIN_TYPES


def _annotations(tree: ast.AST) -> set[int]:
    """ids of every node inside an annotation (not evaluated under the future import)."""
    roots: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            roots.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            roots.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            roots.append(node.annotation)
    return {id(n) for root in roots for n in ast.walk(root)}


def _parenthesised_with(node: ast.With, lines: list[str]) -> bool:
    """``with (a as x, b as y):`` (3.10+ grammar; ``with (a) as x:`` is 3.9): a ``(`` before the first item that
    closes after the last one."""
    first, last = node.items[0].context_expr, node.items[-1].optional_vars or node.items[-1].context_expr
    before = lines[node.lineno - 1][node.col_offset + 4:first.col_offset] if first.lineno == node.lineno else "("
    after = "".join([lines[last.end_lineno - 1][last.end_col_offset:], *lines[last.end_lineno:]])  # type: ignore[index]
    return "(" in before and after.lstrip(" ,\n\t").startswith(")")


def problems(source: str, where: str = "<source>") -> list[str]:
    """What in ``source`` Python 3.9 cannot run, one line each (``file:line what``)."""
    try:
        tree = ast.parse(source, where, feature_version=(3, 9))
    except SyntaxError as exc:
        return [f"{where}:{exc.lineno} 3.10+ syntax: {exc.msg}"]
    found: list[str] = []
    in_annotation = _annotations(tree)
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
                 any(a.name == "annotations" for a in n.names) for n in tree.body)
    runtime_unions: set[int] = set()
    lines = source.splitlines()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and _parenthesised_with(node, lines):
            found.append(f"{where}:{node.lineno} 3.10+ syntax: a parenthesised group of context managers")
        if isinstance(node, ast.Call):
            name = _name(node.func)
            bad = sorted({k.arg for k in node.keywords if k.arg} & NEW_KEYWORDS.get(name, set()))
            found += [f"{where}:{node.lineno} {name}({k}=...) is Python 3.10+" for k in bad]
            if name in ("isinstance", "issubclass") and len(node.args) == 2:
                runtime_unions |= {id(n) for n in ast.walk(node.args[1])}
            if name == "cast" and node.args:
                runtime_unions |= {id(n) for n in ast.walk(node.args[0])}
        elif isinstance(node, ast.ImportFrom) and node.module in NEW_NAMES:
            bad = sorted({a.name for a in node.names} & NEW_NAMES[node.module])
            found += [f"{where}:{node.lineno} {node.module}.{n} is newer than Python 3.9" for n in bad]
        elif isinstance(node, ast.Import):
            found += [f"{where}:{node.lineno} {a.name} is newer than Python 3.9" for a in node.names
                      if a.name in NEW_MODULES]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.attr in NEW_NAMES.get(node.value.id, set())):
            found.append(f"{where}:{node.lineno} {node.value.id}.{node.attr} is newer than Python 3.9")
    for node in tree.body:  # type aliases: ``Reader = GdalReader | ProviderReader`` runs at import
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.BitOr)
                and all(isinstance(s, ast.Name) and s.id[:1].isupper()
                        for s in (node.value.left, node.value.right))):
            runtime_unions.add(id(node.value))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)):
            continue
        if id(node) in in_annotation:
            if not future:
                found.append(f"{where}:{node.lineno} a | union in an annotation without "
                             "`from __future__ import annotations`")
        elif id(node) in runtime_unions or _type_like(node.left) or _type_like(node.right):
            found.append(f"{where}:{node.lineno} a | union evaluated at run time (use typing.Union/Optional or a "
                         "tuple for isinstance)")
    return sorted(set(found))


def test_every_module_of_the_plugin_package_runs_on_python_3_9() -> None:
    assert SOURCES
    found = [line for path in SOURCES
             for line in problems(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))]
    assert found == []


@pytest.mark.parametrize(("source", "expected"), [
    ("match x:\n    case 1:\n        pass\n", "3.10+ syntax"),
    ("with (open('a') as a, open('b') as b):\n    pass\n", "3.10+ syntax"),
    ("with (\n    open('a') as a,\n    open('b'),\n):\n    pass\n", "3.10+ syntax"),
    ("from dataclasses import dataclass\n@dataclass(frozen=True, slots=True)\nclass A:\n    x: int\n",
     "dataclass(slots=...)"),
    ("import dataclasses\n@dataclasses.dataclass(kw_only=True)\nclass A:\n    x: int\n", "dataclass(kw_only=...)"),
    ("for a, b in zip([1], [2], strict=True):\n    pass\n", "zip(strict=...)"),
    ("ok = isinstance(1, int | str)\n", "evaluated at run time"),
    ("from typing import cast\ny = cast('int', 1)\nz = cast(int | None, y)\n", "evaluated at run time"),
    ("from pathlib import Path\nPathLike = str | Path\n", "evaluated at run time"),
    ("Reader = GdalReader | ProviderReader\n", "evaluated at run time"),
    ("def f(x: int | None) -> None:\n    pass\n", "without `from __future__ import annotations`"),
    ("from datetime import UTC\n", "datetime.UTC is newer"),
    ("import datetime\nnow = datetime.datetime.now(datetime.UTC)\n", "datetime.UTC is newer"),
    ("import tomllib\n", "tomllib is newer"),
])
def test_the_checker_finds_what_3_9_cannot_run(source: str, expected: str) -> None:
    found = problems(source)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize("source", [
    "from __future__ import annotations\ndef f(x: int | None, y: list[str] | None = None) -> dict | None:\n    pass\n",
    "from __future__ import annotations\nfrom dataclasses import dataclass, field\n@dataclass(frozen=True)\n"
    "class A:\n    x: int | None = None\n    y: tuple[int, ...] = field(default=())\n",
    "flags = {1} | {2}\nmask = 1 | 4\nalign = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop\n",
    "ok = isinstance(1, (int, str))\npairs = list(zip([1], [2]))\n",
    "with (open('a')) as a, open('b') as b:\n    pass\nwith open('a') as a, (\n        open('b')) as b:\n    pass\n",
    "from typing import Optional, Union\nPathLike = Union[str, 'Path']\nx: Optional[int] = None\n",
])
def test_the_checker_passes_what_3_9_runs(source: str) -> None:
    assert problems(source) == []
