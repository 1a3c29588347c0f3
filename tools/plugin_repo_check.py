"""Check a plugin zip against the rules of the QGIS plugin repository (plugins.qgis.org) before uploading it:
``python -m tools.plugin_repo_check dist/lcgan_qgis.zip`` (``make zip`` runs it).

The rules are those the repository applies to every upload (qgis/QGIS-Django, ``qgis-app/plugins/validator.py``):
at most 25 MB; no ``..`` or absolute paths, backslashes or drive letters in names; no ``.pyc`` files and no
``__pycache__``, ``.git`` or ``__MACOSX`` folders; one top-level folder named as a Python identifier, holding
``__init__.py``, ``metadata.txt`` and ``LICENSE``; a ``[general]`` section with ``name``, ``description``,
``version``, ``qgisMinimumVersion``, ``author``, ``email``, ``about``, ``tracker`` and ``repository``; boolean flags
``experimental``, ``deprecated``, ``server`` and ``supportsQt6`` (QGIS 4's Plugin Manager offers only plugins that
set it, per QGIS's "Plugin migration to be compatible with Qt5 and Qt6" wiki) spelt true/false; an author without
slashes; an icon that exists. The repository also opens the ``tracker``, ``repository`` and ``homepage``
links: this check only says whether they are well-formed web addresses (no network here), and names placeholders.

qgis-plugin-ci (which packages with ``git archive`` of the plugin folder and rewrites its ``metadata.txt`` in
place) is not used: lcgan's zip also carries files from outside that folder (``resources/``, the repository-level
``metadata.txt`` and ``LICENSE``) and leaves out ``tooling/``, which ``tools/make_zip.py`` does in one place.
"""

from __future__ import annotations

import argparse
import configparser
import re
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

MAX_BYTES = 25_000_000  # plugins.qgis.org's PLUGIN_MAX_UPLOAD_SIZE
REQUIRED = ("name", "description", "version", "qgisMinimumVersion", "author", "email", "about", "tracker",
            "repository")
BOOLEANS = ("experimental", "deprecated", "server", "supportsQt6")
FORBIDDEN_FOLDERS = ("__MACOSX", ".git", "__pycache__")
PLACEHOLDER_HOSTS = ("example.org", "example.com", "localhost")


def problems(archive: Path) -> list[str]:
    """What plugins.qgis.org would refuse in ``archive`` (empty: nothing), one sentence each."""
    found = []
    size = archive.stat().st_size
    if size > MAX_BYTES:
        found.append(f"the zip is {size / 1e6:.2f} MB; the repository accepts at most {MAX_BYTES / 1e6:.0f} MB")
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        for name in names:
            parts = name.split("/")
            if ".." in name or name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name):
                found.append(f"'{name}': no path information, backslashes or drive letters allowed")
            if name.endswith(".pyc"):
                found.append(f"'{name}': .pyc files are refused")
            bad = [f for f in FORBIDDEN_FOLDERS if f in parts[:-1] or (f in parts and name.endswith("/"))]
            if bad:
                found.append(f"'{name}': a {bad[0]} folder is refused")
        if zipped.testzip() is not None:
            found.append("the zip is damaged (CRC error)")
        tops = sorted({name.split("/")[0] for name in names})
        if len(tops) != 1:
            return [*found, f"the zip must hold one top-level folder, it holds {tops}"]
        package = tops[0]
        if not package.isidentifier() or not re.match(r"^[A-Za-z][A-Za-z0-9-_]+$", package):
            found.append(f"the top-level folder '{package}' must be a Python identifier")
        for required in ("__init__.py", "metadata.txt", "LICENSE"):
            if f"{package}/{required}" not in names:
                found.append(f"{package}/{required} is missing")
        if f"{package}/metadata.txt" not in names:
            return found
        found += _metadata_problems(zipped.read(f"{package}/metadata.txt").decode("utf-8"), package, names)
    return found


def _metadata_problems(text: str, package: str, names: list[str]) -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # (keys are case-sensitive there too)
    parser.read_string(text)
    if not parser.has_section("general"):
        return ["metadata.txt has no [general] section"]
    general = parser["general"]
    found = [f"metadata.txt lacks '{key}'" for key in REQUIRED if not general.get(key, "").strip()]
    for key in BOOLEANS:
        if key in general and general[key].strip().lower() not in ("true", "false", "yes", "no", "1", "0"):
            found.append(f"metadata.txt '{key}={general[key]}' is not a boolean")
    if "/" in general.get("author", ""):
        found.append("metadata.txt author may not contain slashes")
    icon = general.get("icon", "").removeprefix("./")
    if icon and f"{package}/{icon}" not in names:
        found.append(f"metadata.txt icon '{icon}' is not in the zip")
    for key in ("tracker", "repository", "homepage"):
        url = general.get(key, "").strip()
        if not url:
            continue
        parsed = urlparse(url)
        if not (parsed.scheme in ("http", "https") and parsed.netloc):
            found.append(f"metadata.txt {key} '{url}' is not a web address")
        elif parsed.hostname in PLACEHOLDER_HOSTS:
            found.append(f"metadata.txt {key} '{url}' is a placeholder; the repository opens it and refuses it")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip", type=Path)
    args = parser.parse_args(argv)
    found = problems(args.zip)
    for problem in found:
        print(f"plugin_repo_check: {problem}", file=sys.stderr)
    print(f"{args.zip}: {'meets' if not found else f'{len(found)} problem(s) with'} the QGIS plugin repository's "
          "rules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
