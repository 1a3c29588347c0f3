"""Output files reserved by the runs of this process, so two runs never write the same file at once."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputError

_busy_outputs: set[Path] = set()
_busy_lock = threading.Lock()


@contextlib.contextmanager
def claim_outputs(paths: list[str | None]) -> Iterator[None]:
    """Reserve output files for one run of this process; a second run on any of them is refused while it lasts.

    Two runs writing the same file would each finish with an atomic rename, and the later one would silently
    replace the earlier result, so the second is refused instead (runs in other processes are not seen: there, the
    file is whole but the later run's).

    Raises:
        OutputError: another run in this process is writing one of ``paths``.
    """
    claimed = [Path(p).resolve() for p in paths if p]
    with _busy_lock:
        busy = [p for p in claimed if p in _busy_outputs]
        if busy:
            raise OutputError(
                f"Another lcgan run in this QGIS session is writing {busy[0]} right now; wait for it to finish or "
                "choose another output file."
            )
        _busy_outputs.update(claimed)
    try:
        yield
    finally:
        with _busy_lock:
            _busy_outputs.difference_update(claimed)
