"""Output claims (core/run/claims.py): two runs of one process never write the same file at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from lcgan_qgis.core.errors import OutputError
from lcgan_qgis.core.run.claims import claim_outputs


def test_a_second_claim_on_a_file_is_refused_until_the_first_ends(tmp_path: Path) -> None:
    out = tmp_path / "out.tif"
    with claim_outputs([str(out), None]):
        with pytest.raises(OutputError, match=f"Another lcgan run in this QGIS session is writing {out}"), \
                claim_outputs([str(tmp_path / "other.tif"), str(tmp_path / "." / "out.tif")]):
            pass
        with claim_outputs([str(tmp_path / "other.tif")]):  # another file: fine, and the refused claim took nothing
            pass
    with claim_outputs([str(out)]):  # released when the first run ended
        pass
