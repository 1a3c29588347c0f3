"""A local wheel folder for the installer tests (no network): wheels repacked from what this interpreter has
installed, and a tiny wheel of a package made up for the test.

pip cannot download in the tests, and ``pip wheel`` of an installed package is not possible, so each installed
distribution is packed back into a wheel from the files its ``RECORD`` lists (``.dist-info`` included; compiled
``__pycache__`` left out). The result installs with ``pip install --no-index --find-links FOLDER``, exactly as a
wheel from PyPI: pip checks its name, version and tags, and writes a new ``RECORD``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re
import zipfile
from pathlib import Path


def _wheel_name(name: str, version: str, tag: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', name)}-{version}-{tag}.whl"


def repack(distribution: str, folder: Path) -> Path:
    """Pack the installed ``distribution`` into a wheel in ``folder`` (reused when already there)."""
    dist = importlib.metadata.distribution(distribution)
    wheel_info = dist.read_text("WHEEL") or ""
    tags = re.findall(r"^Tag:\s*(\S+)", wheel_info, flags=re.MULTILINE)
    if not tags:
        raise RuntimeError(f"{distribution} has no WHEEL tags; it was not installed from a wheel")
    parts = [dict.fromkeys(tag.split("-")[i] for tag in tags) for i in range(3)]  # py2-none-any + py3-none-any
    out = folder / _wheel_name(dist.metadata["Name"], dist.version, "-".join(".".join(p) for p in parts))
    if out.is_file():
        return out
    root = Path(dist.locate_file(""))
    partial = out.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as wheel:
        for item in dist.files or []:
            if "__pycache__" in item.parts or item.name in ("INSTALLER", "REQUESTED", "direct_url.json"):
                continue
            path = root / item
            if path.is_file() and not str(item).startswith(".."):
                wheel.write(path, str(item))
    partial.replace(out)
    return out


def tiny_wheel(folder: Path, name: str, version: str, source: str) -> Path:
    """A pure-Python wheel of a one-module package ``name`` whose ``__init__.py`` is ``source``."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": source.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: lcgan-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out = folder / _wheel_name(name, version, "py3-none-any")
    with zipfile.ZipFile(out, "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return out
