"""Soak: 50 consecutive translations in one QGIS process (Processing both ways, with resampling, and the dock's
QgsTask) must not leak: resident memory grows by less than 5 % after a warm-up, and no file handle or GDAL cached
block stays behind.

It runs ``tests/reliability/soak.py`` in a fresh process, so that the measurement sees only QGIS and lcgan (not
whatever other tests of the session loaded), on 768 x 768 rasters: large enough that a leak of what a run reads
shows in RSS (the provider-clone leak this test found grew RSS by 26 % over the 50 runs, and left 50 files open).
About 30 s here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNS, WARMUP = 50, 10


@pytest.mark.slow
def test_fifty_translations_in_one_qgis_process_do_not_leak() -> None:
    run = subprocess.run([sys.executable, "-m", "tests.reliability.soak", "--runs", str(RUNS), "--warmup",
                          str(WARMUP)], cwd=REPO, capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen",
                              "MALLOC_MMAP_THRESHOLD_": "131072"})  # RSS = live memory (see soak.py)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps({k: v for k, v in result.items() if k != "rss_mb"}, indent=1))  # shown with -s
    assert result["runs"] == RUNS and result["outputs_written"] == 4
    assert result["growth"] < 0.05, result
    assert result["fds_last"] <= result["fds_after_warmup"], result  # each run closes what it opens
    assert result["gdal_cache_last_mb"] - result["gdal_cache_after_warmup_mb"] < 1.0, result
