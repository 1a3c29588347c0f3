"""``docs/reliability.md`` and the tests agree: every test it names exists (with its parametrised case), every case of
the reliability tables is listed there, and the catalogue holds at least 25 situations."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CATALOGUE = REPO / "docs" / "reliability.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[([^\]`]+)\])?`")
ROW = re.compile(r"^\| ([LIMORTFS]\d+) \|", re.MULTILINE)


def test_every_test_named_in_the_catalogue_exists() -> None:
    text = CATALOGUE.read_text(encoding="utf-8")
    references = REFERENCE.findall(text)
    assert len(references) >= 60
    for path, function, case in references:
        source = (REPO / path).read_text(encoding="utf-8")
        assert re.search(rf"^def {function}\(", source, re.MULTILINE), f"{path}::{function} does not exist"
        if case:
            assert f'"{case}"' in source, f"{path}::{function}[{case}]: no case of that name"


def case_ids(module: str, table: str) -> list[str]:
    """The ids of the ``Case("id", ...)`` list ``table`` of the test module ``module``, read from its source (a test
    module imports no other)."""
    tree = ast.parse((HERE / f"{module}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == table for t in targets) and isinstance(node.value, ast.List):
            return [case.args[0].value for case in node.value.elts]  # type: ignore[attr-defined]
    raise LookupError(f"{module}.py has no list {table}")


def test_every_case_of_the_tables_is_in_the_catalogue() -> None:
    text = CATALOGUE.read_text(encoding="utf-8")
    tables = {"test_engine_case": ("test_engine_cases", "ENGINE_CASES"),
              "test_engine_handles": ("test_engine_cases", "ENGINE_WORKING"),
              "test_processing_refuses": ("test_processing_cases", "FAILING"),
              "test_processing_handles": ("test_processing_cases", "WORKING"),
              "test_task_reports": ("test_task_cases", "CASES"),
              "test_training_case": ("test_training_cases", "TRAINING_CASES")}
    ids = {function: case_ids(*where) for function, where in tables.items()}
    assert min(len(found) for found in ids.values()) >= 7, ids
    missing = [f"{function}[{case}]" for function, cases in ids.items() for case in cases
               if f"::{function}[{case}]`" not in text]
    assert not missing, missing


def test_the_catalogue_holds_at_least_25_distinct_situations() -> None:
    rows = ROW.findall(CATALOGUE.read_text(encoding="utf-8"))
    assert len(rows) == len(set(rows)) >= 25, rows
