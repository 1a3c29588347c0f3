"""`make setup` is idempotent: on a set-up machine a second run installs nothing and says so."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_second_setup_installs_nothing() -> None:
    for _ in range(2):  # the first run installs whatever changed since the last setup; the second must not
        out = subprocess.run(["make", "-s", "setup"], cwd=REPO, capture_output=True, text=True, timeout=900)
        assert out.returncode == 0, out.stderr
    assert "Debian packages present, nothing to install" in out.stdout
    assert "Python requirements up to date, nothing to install" in out.stdout
    assert "numpy 1.24" in out.stdout


def test_requirements_explain_every_pin() -> None:
    """Each pinned requirement line is preceded by a comment saying why (directly or in its block)."""
    for path in sorted((REPO / "requirements").glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert lines and lines[0].startswith("#"), f"{path.name} starts without a comment"
        for line in lines:
            if line and not line.startswith(("#", "-r", "-c")):
                assert "==" in line, f"{path.name}: '{line}' is not pinned"
