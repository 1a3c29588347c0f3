"""The end of a DDP run's process group: its worker threads joined while the interpreter still runs.

ProcessGroupGloo runs each collective on one of its worker threads, and that thread drops its reference to the
finished work (and so to the tensors it gathered) a moment after ``wait()`` has returned to Python. Dropping the
last C++ reference to a tensor that Python has seen takes the GIL; a thread that asks for the GIL while the
interpreter is finalizing is ended by CPython (``pthread_exit``), and that unwind through the work's ``noexcept``
destructor is ``std::terminate``: "terminate called without an active exception", SIGABRT after a finished run
(a few ``torchrun`` runs in 100 on a loaded CPU). Only the group's destructor joins those threads, and
``destroy_process_group`` alone does not run it: gloo's ``shutdown`` does nothing, and ``torch.distributed.nn``,
imported by the first DDP wrapper, keeps the default group in ten default arguments (``group=group.WORLD``) when
it is imported after ``init_process_group``. Hence the import below, before any group exists.
"""

from __future__ import annotations

import gc
import logging
import os

import torch.distributed as dist
import torch.distributed.nn  # noqa: F401  (now, while group.WORLD is None: see above)
from torch import nn

log = logging.getLogger(__name__)


def native_threads() -> int:
    """Threads of this process, Python's and native ones (0 where ``/proc`` is absent)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def end_process_group(run: dict[str, nn.Module], nets: dict[str, nn.Module]) -> None:
    """After the last collective: a barrier, the DDP wrappers in ``run`` replaced by the plain ``nets`` (their
    reducers hold the group), then the default process group destroyed: with its last reference gone, its
    destructor joins its worker threads now, not during the interpreter's exit."""
    dist.barrier()
    before = native_threads()
    run.update({name: nets[name] for name in run})
    gc.collect()
    dist.destroy_process_group()
    joined = before - native_threads()
    if before and joined <= 0:
        log.warning("DDP: the process group's threads still run after destroy_process_group (something still "
                    "holds the group): the interpreter's exit may abort")
    else:
        log.info("DDP: process group closed, %d of its threads joined", joined)
