"""The one atomic-write helper (``core/storage/files.py::AtomicFile``): all or nothing, sidecars along, usual mode,
locked
while written so the next run removes only what killed runs left."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.storage.files import FILE_MODE, PARTIAL_MARK, AtomicFile, commit_all, remove_stale_partials


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


def test_only_what_a_killed_run_claimed_goes(tmp_path: Path) -> None:
    """Cleanup deletes only what a run's ledger claims (``core/storage/ownership.py``): files named like lcgan's
    temporaries but claimed by no ledger stay, whatever their age; a live run's temporary stays
    (``tests/reliability/test_ownership.py`` has the killed runs)."""
    live = AtomicFile(tmp_path / "report.json")
    lookalikes = [tmp_path / f".model.dead0001{PARTIAL_MARK}.onnx", tmp_path / f".lc.dead0002{PARTIAL_MARK}.tif",
                  tmp_path / f".lc.dead0002{PARTIAL_MARK}.tif.aux.xml"]
    for path in lookalikes:
        path.write_bytes(b"the user's")
    (tmp_path / ".lcgan-notes").mkdir()
    (tmp_path / "keep.tif").write_bytes(b"a result")
    minute_ago = time.time() - 60
    for path in [*lookalikes, tmp_path / ".lcgan-notes", live.temp_path]:
        os.utime(path, (minute_ago, minute_ago))
    try:
        assert remove_stale_partials(tmp_path) == []
        assert live.temp_path.exists() and all(p.exists() for p in lookalikes)
    finally:
        live.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["keep.tif", ".lcgan-notes", *(p.name for p in
                                                                                              lookalikes)])


def test_commit_all_moves_every_file_or_none(tmp_path: Path) -> None:
    first, second = tmp_path / "lc.tif", tmp_path / "conf.tif"
    first.write_text("old land cover")
    files = [AtomicFile(first, sidecars=(".aux.xml",)), AtomicFile(second)]
    files[0].temp_path.write_text("new land cover")
    Path(f"{files[0].temp_path}.aux.xml").write_text("names")
    files[1].temp_path.write_text("new confidence")
    commit_all(files)
    assert first.read_text() == "new land cover" and Path(f"{first}.aux.xml").read_text() == "names"
    assert second.read_text() == "new confidence"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf.tif", "lc.tif", "lc.tif.aux.xml"]
