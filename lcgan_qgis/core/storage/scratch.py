"""Scratch folders: a hidden ``.lcgan-XXXX`` folder beside the outputs for a run's intermediate files (resampled
runs, vectorising, a mosaic tile), claimed in the run's ledger (:mod:`.ownership`) and removed afterwards; a killed
run's folder is removed by the next run's cleanup, a user's folder of the same shape never."""

from __future__ import annotations

import contextlib
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError
from . import ownership

SCRATCH_PREFIX = ".lcgan-"


@contextlib.contextmanager
def scratch_folder(parent: Path) -> Iterator[Path]:
    """A new hidden scratch folder ``.lcgan-XXXXXXXX`` in ``parent``, removed afterwards.

    Raises:
        OutputError: ``parent`` takes no folders.
    """
    folder = None
    for _ in range(100):
        candidate = Path(parent) / f"{SCRATCH_PREFIX}{secrets.token_hex(4)}"
        try:
            ownership.create_claimed(candidate, kind="folder")
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"Cannot write in the output folder {parent}: {exc.strerror or exc}.") from None
        folder = candidate
        break
    if folder is None:
        raise OutputError(f"Cannot write in the output folder {parent}: no free scratch folder name.")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            ownership.release(folder)
