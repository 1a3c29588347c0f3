"""``docs/reliability.md`` and the tests agree: every test it names exists (with its parametrised case), every case of
the reliability tables is listed there, and the catalogue holds at least 25 situations."""

from __future__ import annotations

import re
from pathlib import Path

from .test_engine_cases import ENGINE_CASES, ENGINE_WORKING
from .test_processing_cases import FAILING, WORKING
from .test_task_cases import CASES as TASK_CASES
from .test_training_cases import TRAINING_CASES

REPO = Path(__file__).resolve().parents[2]
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


def test_every_case_of_the_tables_is_in_the_catalogue() -> None:
    text = CATALOGUE.read_text(encoding="utf-8")
    tables = {"test_engine_case": ENGINE_CASES, "test_engine_handles": ENGINE_WORKING,
              "test_processing_refuses": FAILING, "test_processing_handles": WORKING,
              "test_task_reports": TASK_CASES, "test_training_case": TRAINING_CASES}
    missing = [f"{function}[{case.id}]" for function, cases in tables.items() for case in cases
               if f"::{function}[{case.id}]`" not in text]
    assert not missing, missing


def test_the_catalogue_holds_at_least_25_distinct_situations() -> None:
    rows = ROW.findall(CATALOGUE.read_text(encoding="utf-8"))
    assert len(rows) == len(set(rows)) >= 25, rows
