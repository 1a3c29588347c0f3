"""Deleting what is not ours (issue 24): the cleanup of interrupted runs removes exactly what a killed lcgan run
claimed in its ledger (``lcgan_qgis/core/storage/ownership.py``), and nothing a user made, whatever its name."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from lcgan_qgis.core.storage import ownership
from lcgan_qgis.core.storage.files import AtomicFile, remove_stale_partials, stale_partial_messages
from tests.fixtures.ownership import start_run, user_files


def test_a_killed_run_leaves_only_what_it_claimed_and_the_next_run_removes_exactly_that(tmp_path: Path) -> None:
    user = user_files(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    child = start_run(tmp_path)
    try:
        assert remove_stale_partials(tmp_path) == []  # a live run: its files stay
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == len(before) + 4  # temporary file, its sidecar, scratch folder, ledger
    messages = stale_partial_messages([tmp_path / "next.tif"])
    assert len(messages) == 1 and "Removed 3 partial file(s)" in messages[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert all(p.exists() for p in user) and (user[0] / "thesis.txt").read_text() == "years of work"


def test_user_lookalikes_of_any_age_stay(tmp_path: Path) -> None:
    user = user_files(tmp_path)
    assert remove_stale_partials(tmp_path) == [] and all(p.exists() for p in user)


def _forged_ledger(folder: Path, entries: list[dict[str, object]], run: str = "0123456789abcdef") -> Path:
    ledger = folder / f"{ownership.LEDGER_PREFIX}{run}-0000{ownership.LEDGER_SUFFIX}"
    header = {"format": ownership.LEDGER_FORMAT, "run": run, "pid": 1, "host": "h", "created": 0}
    ledger.write_text("\n".join(json.dumps(r) for r in [header, *entries]) + "\n")
    return ledger


@pytest.mark.parametrize("case", ["another inode", "a path outside", "parent folder", "symlink", "folder as file",
                                  "released", "garbage ledger", "run id not in the name"])
def test_a_ledger_that_does_not_match_deletes_nothing(tmp_path: Path, case: str) -> None:
    """A claim is honoured only for a plain name in the folder, of the kind and inode recorded, not a link."""
    victim = tmp_path / "victim.tif"
    victim.write_text("keep")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("keep")
    inode = victim.stat().st_ino
    entries: list[dict[str, object]] = {
        "another inode": [{"claim": "victim.tif", "inode": inode + 1, "kind": "file"}],
        "a path outside": [{"claim": f"../{outside.name}", "inode": outside.stat().st_ino, "kind": "file"}],
        "parent folder": [{"claim": "..", "inode": tmp_path.parent.stat().st_ino, "kind": "folder"}],
        "symlink": [],
        "folder as file": [{"claim": "victim.tif", "inode": inode, "kind": "folder"}],
        "released": [{"claim": "victim.tif", "inode": inode, "kind": "file"}, {"release": "victim.tif"}],
        "garbage ledger": [],
        "run id not in the name": [{"claim": "victim.tif", "inode": inode, "kind": "file"}],
    }[case]
    if case == "symlink":
        (tmp_path / "link.tif").symlink_to(victim)
        entries = [{"claim": "link.tif", "inode": (tmp_path / "link.tif").lstat().st_ino, "kind": "file"}]
    ledger = _forged_ledger(tmp_path, entries, run="fedcba9876543210" if case != "run id not in the name" else "x")
    if case == "run id not in the name":
        ledger.rename(tmp_path / f"{ownership.LEDGER_PREFIX}0123456789abcdef-0000{ownership.LEDGER_SUFFIX}")
    if case == "garbage ledger":
        ledger.write_bytes(b"\xff\xfe not json")
    assert remove_stale_partials(tmp_path) == []
    assert victim.read_text() == "keep" and outside.read_text() == "keep"
    outside.unlink()


def test_a_matching_claim_of_a_dead_run_is_honoured(tmp_path: Path) -> None:
    """The positive control of the table above: the same forged ledger with the right inode deletes the file."""
    victim = tmp_path / ".out.0000.lcgan-partial.tif"
    victim.write_text("half")
    _forged_ledger(tmp_path, [{"claim": victim.name, "inode": victim.stat().st_ino, "kind": "file"}])
    assert remove_stale_partials(tmp_path) == [victim] and sorted(tmp_path.iterdir()) == []


def test_this_process_never_cleans_its_own_live_files(tmp_path: Path) -> None:
    with AtomicFile(tmp_path / "a.tif") as tmp:
        tmp.write_text("writing")
        assert remove_stale_partials(tmp_path) == [] and tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]  # and the ledger is gone with the last claim
