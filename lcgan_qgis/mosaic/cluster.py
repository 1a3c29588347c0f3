"""Dask: imported lazily (the plugin's runtime does not need it), and the client of a local or existing cluster.

* :func:`connect` with a scheduler address (``tcp://host:8786``, from ``dask scheduler``, dask-jobqueue, a
  dask-gateway or dask-kubernetes cluster...) connects to it and gives up with a clear :class:`ClusterError` after
  ``timeout_s``; without one it starts a ``LocalCluster`` of worker processes on this machine.
* :func:`check_workers` asks every worker which lcgan, onnxruntime and GDAL it runs, so a worker without lcgan is
  named before any tile is submitted.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import math
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..core.errors import ClusterError, OptionError
from ..core.model.runtime import default_threads
from ..core.run.bounds import check_local_workers

LOG = logging.getLogger(__name__)

#: The pinned release (requirements/dev.txt); any recent ``distributed`` works.
PIP_COMMAND = 'python -m pip install "dask[distributed]==2026.8.0"'
#: Local workers get this many onnxruntime threads each unless told otherwise (measured: several sessions with a few
#: threads each use many cores better than one session with all of them; on a 2-core machine: one worker).
DEFAULT_LOCAL_THREADS = 4
DEFAULT_TIMEOUT_S = 10.0


def import_distributed() -> ModuleType:
    """``dask.distributed``, or :class:`ClusterError` saying how to install it."""
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise ClusterError(f"Distributed runs need Dask's distributed scheduler, which is not installed ({exc}). "
                           f"Install it with: {PIP_COMMAND}") from None


@dataclass(frozen=True)
class LocalLayout:
    """Worker processes and onnxruntime threads of a local cluster."""

    workers: int
    threads_per_worker: int


def local_layout(workers: int | None, threads_per_worker: int | None) -> LocalLayout:
    """Fill in what was not given from this machine's cores (workers x threads <= cores when both are defaults).

    Raises:
        OptionError: a count below 1.
    """
    for name, value in (("local workers", workers), ("threads per worker", threads_per_worker)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise OptionError(f"The number of {name} must be an integer >= 1, got {value!r}.")
    if workers is not None:
        check_local_workers(workers)  # (cores and memory: not hundreds of processes on two cores)
    cores = default_threads()
    if workers is None:
        workers = max(1, cores // (threads_per_worker or DEFAULT_LOCAL_THREADS))
    if threads_per_worker is None:
        threads_per_worker = max(1, math.floor(cores / workers))
    return LocalLayout(workers, threads_per_worker)


def bokeh_available() -> bool:
    """Whether this Python can serve Dask's dashboard pages (they need bokeh; the link is printed either way)."""
    return importlib.util.find_spec("bokeh") is not None


@contextlib.contextmanager
def connect(scheduler: str | None, layout: LocalLayout | None = None,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Any]:
    """A ``distributed.Client`` of the scheduler at ``scheduler``, or of a new local cluster laid out as ``layout``.

    Raises:
        ClusterError: Dask is missing, or no scheduler answered at ``scheduler`` within ``timeout_s``.
    """
    distributed = import_distributed()
    if scheduler:
        _probe_scheduler(scheduler, timeout_s)
        try:
            client = distributed.Client(scheduler, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError, ValueError, MemoryError) as exc:
            raise ClusterError(
                f"No Dask scheduler answered at {scheduler} within {timeout_s:g} s ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}). Is the scheduler running and reachable "
                "from here (start one with `dask scheduler`, workers with `dask worker ADDRESS`)?"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return
    layout = layout or local_layout(None, None)
    # One tile at a time per worker process: onnxruntime's threads are the parallelism (Dask's nthreads=1).
    cluster = distributed.LocalCluster(
        n_workers=layout.workers, threads_per_worker=1, processes=True,
        dashboard_address=":0", silence_logs=logging.WARNING,
    )
    try:
        client = distributed.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


#: The first thing a Dask scheduler sends on a TCP connection is its handshake: a little-endian uint64 count of the
#: frames that follow, a handful. Anything else answering there (a web server, another service) is not Dask.
MAX_HANDSHAKE_FRAMES = 64


def _probe_scheduler(address: str, timeout_s: float) -> None:
    """Check that a plain TCP ``address`` (``tcp://host:port`` or ``host:port``) answers like a Dask scheduler before
    Dask's client reads its reply as frame lengths (a web server's "HTTP/1.1" read as a length asked for 3 EiB).

    Raises:
        ClusterError: nothing listens there, or what listens is not a Dask scheduler (named).
    """
    match = re.fullmatch(r"(?:tcp://)?\[?([^\]/]+?)\]?:(\d{1,5})/?", address)
    if match is None:
        return  # (tls://, ucx://, inproc://... : left to Dask)
    host, port = match.group(1), int(match.group(2))
    hint = "Is this the scheduler's address (`dask scheduler` prints it: tcp://HOST:8786)?"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            head = b""
            while len(head) < 8:
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        raise ClusterError(f"{address} accepted a connection but said nothing within {timeout_s:g} s, as a Dask "
                           f"scheduler would at once; it is not one. {hint}") from None
    except OSError as exc:
        raise ClusterError(f"No Dask scheduler answered at {address} within {timeout_s:g} s ({exc.strerror or exc}). "
                           f"{hint} Is it running and reachable from here (start one with `dask scheduler`)?") from None
    frames = int.from_bytes(head, "little") if len(head) == 8 else 0
    if not 1 <= frames <= MAX_HANDSHAKE_FRAMES:
        shown = head.decode("ascii", "replace").strip() or "nothing"
        raise ClusterError(f"{address} answered, but not as a Dask scheduler (it sent {shown!r}...). {hint}")


def worker_environment() -> dict[str, Any]:
    """(Runs on a worker.) What this worker runs lcgan with."""
    import onnxruntime
    from osgeo import gdal

    import lcgan_qgis

    return {"pid": os.getpid(), "lcgan": str(getattr(lcgan_qgis, "__file__", "?")),
            "onnxruntime": onnxruntime.__version__, "providers": onnxruntime.get_available_providers(),
            "gdal": gdal.__version__, "cores": default_threads()}


def check_workers(client: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """Every worker's :func:`worker_environment`, waiting up to ``timeout_s`` for at least one worker.

    Raises:
        ClusterError: no worker joined, or a worker cannot import lcgan (named, with the reason).
    """
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except (TimeoutError, OSError) as exc:
        raise ClusterError(f"The Dask scheduler has no workers (waited {timeout_s:g} s: {exc}); start some with "
                           "`dask worker SCHEDULER_ADDRESS`.") from None
    answers = client.run(worker_environment, on_error="return")
    broken = {w: a for w, a in answers.items() if isinstance(a, BaseException)}
    if broken:
        worker, error = next(iter(broken.items()))
        raise ClusterError(
            f"Worker {worker} cannot run lcgan ({type(error).__name__}: {error}); install lcgan_qgis, onnxruntime and "
            "GDAL's Python bindings on every worker (e.g. the same environment, or PYTHONPATH holding lcgan_qgis)."
        )
    return answers


def task_attempts(keys: list[str], dask_scheduler: Any = None) -> dict[str, tuple[int, int]]:
    """(Runs on the scheduler.) Per task key: (retries left after errors, workers lost while running it)."""
    out = {}
    for key in keys:
        task = dask_scheduler.tasks.get(key)
        if task is not None:
            out[key] = (int(task.retries), int(task.suspicious))
    return out
