"""The one atomic-write helper (``core/files.py::AtomicFile``): all or nothing, sidecars along, usual mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.files import FILE_MODE, PARTIAL_MARK, AtomicFile


def test_a_clean_exit_moves_the_file_into_place(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    with AtomicFile(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".json" and PARTIAL_MARK in tmp.name
        tmp.write_text("new")
        assert not target.exists()  # nothing under the target's name until the write is done
    assert target.read_text() == "new" and os.stat(target).st_mode & 0o777 == FILE_MODE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_an_exception_leaves_the_old_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), AtomicFile(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_sidecars_move_along_and_a_stale_one_goes(tmp_path: Path) -> None:
    target = tmp_path / "lc.tif"
    with AtomicFile(target, sidecars=(".aux.xml",)) as tmp:
        tmp.write_text("tif")
        Path(f"{tmp}.aux.xml").write_text("names")
    assert Path(f"{target}.aux.xml").read_text() == "names"
    with AtomicFile(target, sidecars=(".aux.xml",)) as tmp:
        tmp.write_text("tif without names")
    assert not Path(f"{target}.aux.xml").exists()  # it would describe the previous raster


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"output folder .*nowhere does not exist"):
        AtomicFile(tmp_path / "nowhere" / "x.tif")
