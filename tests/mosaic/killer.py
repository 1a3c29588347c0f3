"""A Dask worker plugin that kills its own worker process (SIGKILL, no cleanup) in the middle of a tile task.

It watches the worker's scratch folder for the engine's temporary GeoTIFF (``*.lcgan-partial.tif``): when one
appears, a tile is being written, and the first worker to see it (a marker file created exclusively decides which)
kills itself. The nanny then starts a fresh worker, and the scheduler reschedules the lost task.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

POLL_S = 0.002


class KillMidTile(WorkerPlugin):
    name = "lcgan-test-kill-mid-tile"

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def setup(self, worker: Any) -> None:
        if Path(self.marker).exists():
            return
        threading.Thread(target=self._watch, args=(Path(worker.local_directory),), daemon=True).start()

    def _watch(self, scratch: Path) -> None:
        while not Path(self.marker).exists():
            if any(scratch.rglob("*.lcgan-partial.tif")):
                try:
                    fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(POLL_S)
