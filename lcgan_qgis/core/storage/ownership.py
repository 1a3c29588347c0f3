"""What lcgan may delete: only what this or an earlier lcgan run created and recorded, never a file by its name.

Every temporary file, backup and scratch folder lcgan creates in a folder is recorded, as it is created, in that
folder's *ledger* of the running process: a hidden file ``.lcgan-run-<run id>.ledger`` whose first line names the run
(format, run id, process id, host) and whose next lines claim entries (``{"claim": name, "inode": n}``) and release
them. The process holds an exclusive lock (``flock``) on its ledger while it has entries, and deletes the ledger
when the last one is released.

Cleaning a folder (:func:`remove_stale_partials`) reads each ledger there that is not locked (its process is gone)
and deletes exactly the entries still claimed in it: a plain name in that folder (no path, no ``..``), not a symbolic
link, of the kind claimed, with the inode recorded (a file the user put there under the same name later is another
inode). Then the ledger itself. A user's ``.lcgan-*`` folder or ``*.lcgan-partial*`` file that no ledger claims is
never touched, whatever its name or age; so is anything a ledger claims that does not match it. This module is the
one place that deletes files lcgan did not just create in the same call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from .paths import SIDECAR_SUFFIX

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (a file GDAL has open cannot be deleted there anyway)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LEDGER_PREFIX = ".lcgan-run-"
LEDGER_SUFFIX = ".ledger"
LEDGER_FORMAT = "lcgan-ledger/1"
#: Without advisory locks (Windows) a ledger is judged stale only by its age.
STALE_WITHOUT_LOCKS_S = 24 * 3600.0
#: A ledger larger than this is not one lcgan wrote (a run claims a handful of entries per folder).
MAX_LEDGER_BYTES = 1_000_000

_lock = threading.Lock()
_ledgers: dict[tuple[int, str], _Ledger] = {}


def run_id() -> str:
    """This process's run id (a new one after a fork)."""
    global _RUN
    if _RUN[0] != os.getpid():
        _RUN = (os.getpid(), secrets.token_hex(8))
    return _RUN[1]


_RUN: tuple[int, str] = (-1, "")


def try_lock(fd: int) -> bool:
    """Take an exclusive advisory lock on ``fd`` without waiting; False when another open file holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class _Ledger:
    """The ledger of this process in one folder (created on the first claim, deleted after the last release)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / f"{LEDGER_PREFIX}{run_id()}-{secrets.token_hex(2)}{LEDGER_SUFFIX}"
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try_lock(self.fd)
        self.entries: set[str] = set()
        self._write({"format": LEDGER_FORMAT, "run": run_id(), "pid": os.getpid(), "host": socket.gethostname(),
                     "created": time.time()})

    def _write(self, record: dict[str, object]) -> None:
        os.write(self.fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())

    def claim(self, name: str, inode: int, kind: str) -> None:
        self._write({"claim": name, "inode": inode, "kind": kind})
        self.entries.add(name)

    def release(self, name: str) -> bool:
        """Drop ``name``; True when the ledger is now empty (and deleted)."""
        if name not in self.entries:
            return False
        self.entries.discard(name)
        if self.entries:
            self._write({"release": name})
            return False
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        return True


def _open_ledger(folder: Path) -> tuple[tuple[int, str], _Ledger]:
    """This process's ledger of ``folder`` (opened on its first claim) and its key; the caller holds ``_lock``."""
    key = (os.getpid(), str(folder.resolve()))
    ledger = _ledgers.get(key)
    if ledger is None:
        ledger = _ledgers[key] = _Ledger(folder)
    return key, ledger


def create_claimed(path: Path, kind: str = "file") -> int | None:
    """Create ``path`` (a new file, ``O_EXCL``, mode ``0o666`` less the umask; or a new folder) as lcgan's, recorded
    in its folder's ledger first; returns the open descriptor of a file (None for a folder).

    Raises:
        FileExistsError: ``path`` exists (pick another name).
        OSError: the folder takes no files.
    """
    with _lock:
        key, ledger = _open_ledger(path.parent)
        fd, made = None, False
        try:
            if kind == "folder":
                path.mkdir()
            else:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            made = True
            ledger.claim(path.name, path.lstat().st_ino, kind)
        except BaseException:
            if fd is not None:
                os.close(fd)
            if made:  # (only what this call created; an existing path is someone else's)
                with contextlib.suppress(OSError):
                    path.rmdir() if kind == "folder" else path.unlink()
            if not ledger.entries:
                _drop_empty(key, ledger)
            raise
    return fd


def claim_existing(path: Path, kind: str = "file") -> None:
    """Record ``path``, which this process has just created itself (e.g. a hard link), as lcgan's."""
    with _lock:
        _key, ledger = _open_ledger(path.parent)
        ledger.claim(path.name, path.lstat().st_ino, kind)


def _drop_empty(key: tuple[int, str], ledger: _Ledger) -> None:
    with contextlib.suppress(OSError):
        ledger.path.unlink()
    with contextlib.suppress(OSError):
        os.close(ledger.fd)
    _ledgers.pop(key, None)


def release(path: Path) -> None:
    """``path`` is no longer lcgan's to clean up (it was moved into place or deleted)."""
    key = (os.getpid(), str(path.parent.resolve()))
    with _lock:
        ledger = _ledgers.get(key)
        if ledger is not None and ledger.release(path.name):
            _ledgers.pop(key, None)


def _read_ledger(path: Path) -> tuple[dict[str, object], dict[str, tuple[int, str]]] | None:
    """The header and the entries still claimed of a ledger file; None when it is not a ledger lcgan wrote."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_LEDGER_BYTES:
            return None
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        return None
    if not isinstance(header, dict) or header.get("format") != LEDGER_FORMAT or not isinstance(header.get("run"), str) \
            or not path.name.startswith(f"{LEDGER_PREFIX}{header['run']}-"):
        return None
    claimed: dict[str, tuple[int, str]] = {}
    for line in lines[1:]:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # (a line torn by a kill: the entry it claimed was not created yet)
        if not isinstance(record, dict):
            continue
        name = record.get("claim")
        if isinstance(name, str) and isinstance(record.get("inode"), int) and record.get("kind") in ("file", "folder"):
            claimed[name] = (record["inode"], record["kind"])
        elif isinstance(record.get("release"), str):
            claimed.pop(record["release"], None)
    return header, claimed


def _is_abandoned(path: Path) -> bool:
    """No live process holds the ledger's lock (or, without locks, it is older than a day)."""
    if fcntl is None:
        try:
            return time.time() - path.stat().st_mtime > STALE_WITHOUT_LOCKS_S
        except OSError:
            return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return try_lock(fd)
    finally:
        os.close(fd)


def _matches(entry: Path, inode: int, kind: str) -> bool:
    """``entry`` is still what the ledger claimed: same kind, same inode, not a link."""
    try:
        st = entry.lstat()
    except OSError:
        return False
    if entry.is_symlink() or st.st_ino != inode:
        return False
    return entry.is_dir() if kind == "folder" else entry.is_file()


def _valid_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _abandoned_ledgers(folder: Path) -> Iterator[tuple[Path, dict[str, tuple[int, str]]]]:
    """The ledgers in ``folder`` of killed runs (not this process's, not live, and written by lcgan), each with the
    entries it still claims."""
    try:
        ledgers = [p for p in folder.iterdir() if p.name.startswith(LEDGER_PREFIX) and p.name.endswith(LEDGER_SUFFIX)]
    except OSError:
        return
    own = {ledger.path for key, ledger in _ledgers.items() if key[0] == os.getpid()}
    for path in ledgers:
        read = _read_ledger(path) if path not in own and _is_abandoned(path) else None
        if read is not None:  # (None: not a ledger lcgan wrote, not ours to judge)
            yield path, read[1]


def abandoned_claims(folder: str | Path) -> list[Path]:
    """The files in ``folder`` that killed lcgan runs claimed and left (what :func:`remove_stale_partials` would
    delete), for a caller that can use a whole one (training recovers a checkpoint written but not yet renamed)."""
    folder = Path(folder)
    return [folder / name for _path, claimed in _abandoned_ledgers(folder) for name, (inode, kind) in claimed.items()
            if kind == "file" and _valid_name(name) and _matches(folder / name, inode, kind)]


def remove_stale_partials(folder: str | Path) -> list[Path]:
    """Delete what killed lcgan runs left in ``folder``: exactly the entries their ledgers still claim (see the
    module's docstring), then the ledgers. Entries of live runs, and anything no ledger claims, are kept.

    Returns:
        The paths removed (files, their sidecars and folders; the ledgers are not listed).
    """
    folder = Path(folder) if str(folder) else Path(".")
    removed: list[Path] = []
    for path, claimed in _abandoned_ledgers(folder):
        for name, (inode, kind) in claimed.items():
            entry = folder / name
            if not _valid_name(name) or not _matches(entry, inode, kind):
                continue
            if kind == "folder":
                shutil.rmtree(entry, ignore_errors=True)
                if not entry.exists():
                    removed.append(entry)
                continue
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
            sidecar = folder / f"{name}{SIDECAR_SUFFIX}"
            if sidecar.is_file() and not sidecar.is_symlink():  # GDAL's sidecar of our temporary file
                with contextlib.suppress(OSError):
                    sidecar.unlink()
                    removed.append(sidecar)
        with contextlib.suppress(OSError):
            path.unlink()
    if removed:
        log.warning("removed %d partial file(s) of interrupted runs in %s", len(removed), folder)
    return removed


def stale_partial_messages(outputs: Sequence[str | Path]) -> list[str]:
    """Remove what killed runs left beside ``outputs`` (:func:`remove_stale_partials`); one message per folder."""
    messages = []
    for folder in dict.fromkeys(Path(path).parent for path in outputs):
        removed = remove_stale_partials(folder)
        if removed:
            messages.append(f"Removed {len(removed)} partial file(s) left by interrupted lcgan runs in {folder}: "
                            f"{', '.join(sorted(p.name for p in removed))}.")
    return messages
