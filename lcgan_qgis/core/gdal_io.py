"""GeoTIFF input and output through GDAL's Python bindings (``osgeo``), which QGIS ships.

:class:`GdalReader` is the engine's :class:`~lcgan_qgis.core.raster.RasterReader` over a file. :class:`GeoTiffWriter`
writes a tiled, compressed GeoTIFF to a temporary name in the output folder and moves it into place with
``os.replace`` only on :meth:`GeoTiffWriter.commit`; :meth:`GeoTiffWriter.abort` (or leaving the ``with`` block on an
exception) removes it, so a failed or cancelled run leaves nothing behind.

GDAL errors are collected per call with a pushed error handler (GDAL 3.6 has no scoped exception switch, and
``gdal.UseExceptions()`` would change the behaviour of every other GDAL user in the QGIS process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal, gdal_array

from .errors import InputRasterError, OutputError
from .raster import RasterInfo, Window

log = logging.getLogger(__name__)

CREATION_OPTIONS = ("TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER")
TEMP_SUFFIX = ".lcgan-partial.tif"

PARTIAL_STEM_MAX_BYTES = 64  # of the output's name kept in its temporary file's name (long names must still fit)
STALE_AFTER_S = 5.0  # an unlocked partial file this old belongs to no live run
SCRATCH_PREFIX = ".lcgan-"  # scratch folders of resampled runs (core.job)
SCRATCH_LOCK = ".lock"


try:
    import fcntl
except ImportError:  # Windows: no advisory locks, but a file GDAL has open cannot be deleted there
    fcntl = None  # type: ignore[assignment]


def _lock(fd: int) -> bool:
    """Take an exclusive advisory lock on ``fd`` without waiting; False when another process holds it."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def create_partial(folder: Path, stem: str, suffix: str = TEMP_SUFFIX) -> tuple[int | None, Path]:
    """Create a new hidden temporary file ``.STEM.RANDOM<suffix>`` in ``folder``; returns (lock fd or None, path).

    The file gets the permissions of the user's umask (``0o666 & ~umask``, as the final output should; ``mkstemp``
    would make it private), and this process holds a lock on it until :func:`release_partial`, so another run can
    tell a file being written from one left by a killed run (:func:`remove_stale_partials`).

    Raises:
        OSError: the folder takes no files.
    """
    short = os.fsencode(stem)[:PARTIAL_STEM_MAX_BYTES].decode("utf-8", "ignore")
    for _ in range(100):
        path = folder / f".{short}.{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if fcntl is None:  # (an open descriptor would stop the final rename on Windows)
            os.close(fd)
            return None, path
        _lock(fd)
        return fd, path
    raise FileExistsError(f"no free temporary name in {folder}")


def release_partial(fd: int | None) -> None:
    """Close the lock of :func:`create_partial` (idempotent with None)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def _is_stale(path: Path, lock_file: Path) -> bool:
    """``path`` is older than :data:`STALE_AFTER_S` and nobody holds ``lock_file``'s lock (a scratch folder
    without its lock file is judged by its age alone)."""
    try:
        if time.time() - path.stat().st_mtime < STALE_AFTER_S:
            return False
        if not lock_file.exists():
            return True
        fd = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return False
    try:
        return _lock(fd)
    finally:
        os.close(fd)


def remove_stale_partials(folder: str | Path) -> list[Path]:
    """Delete what killed lcgan runs left in ``folder`` (temporary GeoTIFFs, their side-cars, scratch folders of
    resampled runs); files of runs still writing are locked and kept. Returns what was removed."""
    folder = Path(folder) if str(folder) else Path(".")
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if name.endswith(TEMP_SUFFIX) and name.startswith(".") and entry.is_file() and _is_stale(entry, entry):
            for candidate in (entry, Path(str(entry) + ".aux.xml")):
                with contextlib.suppress(OSError):
                    candidate.unlink()
                    removed.append(candidate)
        elif (name.startswith(SCRATCH_PREFIX) and entry.is_dir() and not entry.is_symlink()
              and _is_stale(entry, entry / SCRATCH_LOCK)):
            shutil.rmtree(entry, ignore_errors=True)
            if not entry.exists():
                removed.append(entry)
    if removed:
        log.warning("removed %d partial file(s) of interrupted runs in %s", len(removed), folder)
    return removed


@contextmanager
def scratch_folder(parent: Path) -> Iterator[Path]:
    """A hidden scratch folder ``.lcgan-XXXX`` in ``parent``, locked while it is in use and removed afterwards
    (a killed run's folder is found and removed by :func:`remove_stale_partials`).

    Raises:
        OSError: ``parent`` takes no folders.
    """
    folder = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent))
    fd = None
    try:
        fd = os.open(folder / SCRATCH_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        _lock(fd)
        yield folder
    finally:
        release_partial(fd)
        shutil.rmtree(folder, ignore_errors=True)


def replace_all(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Move each finished ``src`` onto its ``dst`` (with side-cars), all or nothing: when one rename fails, the
    ``dst`` files already replaced get their earlier content back (hard-linked beside their ``src`` first, which
    must be on the same file system as ``dst``) and new ones are removed.

    Raises:
        OSError: the rename that failed.
    """
    backups: list[tuple[Path, Path | None]] = []
    for src, dst in pairs:
        backup = None
        if dst.exists():
            backup = src.with_name(f"{src.stem}.backup{src.suffix}")
            try:
                os.link(dst, backup)
            except OSError:  # (no hard links here: the old file cannot be kept)
                backup = None
        backups.append((dst, backup))
    done = 0
    try:
        for src, dst in pairs:
            replace_with_sidecar(src, dst)
            done += 1
    except BaseException:
        for dst, backup in backups[:done]:
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, dst)
                else:
                    dst.unlink()
        raise


def replace_with_sidecar(src: str | Path, dst: str | Path) -> None:
    """``os.replace(src, dst)``, moving GDAL's ``.aux.xml`` side-car (class names, statistics) along with it and
    dropping a stale one of ``dst``.

    Raises:
        OSError: the rename failed (``dst`` is left as it was).
    """
    sidecar, target = Path(f"{src}.aux.xml"), Path(f"{dst}.aux.xml")
    os.replace(src, dst)
    if sidecar.exists():
        os.replace(sidecar, target)
    else:
        target.unlink(missing_ok=True)



@contextmanager
def gdal_errors() -> Iterator[list[str]]:
    """Collect GDAL failure messages raised in this thread while the block runs (and keep them off stderr)."""
    messages: list[str] = []

    def handler(err_class: int, _err_no: int, message: str) -> None:
        if err_class >= gdal.CE_Failure:
            messages.append(str(message).strip())
        elif err_class == gdal.CE_Warning:
            log.debug("GDAL warning: %s", message)

    gdal.PushErrorHandler(handler)
    try:
        yield messages
    finally:
        gdal.PopErrorHandler()


def gdal_call(errors: list[str], function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a GDAL function; on failure return None with the message in ``errors``.

    Works whether or not something else in the process (QGIS, another plugin, a script) switched on
    ``gdal.UseExceptions()``: then GDAL raises RuntimeError instead of returning None.
    """
    try:
        return function(*args, **kwargs)
    except RuntimeError as exc:
        errors.append(str(exc).strip())
        return None


def numpy_dtype_name(gdal_type: int) -> str:
    """numpy dtype name of a GDAL data type (``"uint8"``, ``"float32"``...)."""
    code = gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type)
    return np.dtype(code).name if code is not None else gdal.GetDataTypeName(gdal_type).lower()


def is_gdal_string(name: str) -> bool:
    """Whether ``name`` is a GDAL dataset string rather than a local path: a ``/vsi`` path or a ``DRIVER:...``
    subdataset (``NETCDF:"f.nc":var``, ``GTIFF_DIR:2:f.tif``); a Windows drive letter is one letter, not a driver."""
    return name.startswith("/vsi") or re.match(r"^[A-Za-z][A-Za-z0-9_]+:", name) is not None


def _check_georeferenced(dataset: gdal.Dataset, name: str) -> None:
    """Refuse a raster without a geotransform: its output would get an invented one (or lose its GCPs).

    Raises:
        InputRasterError: georeferenced only by ground control points, or not at all.
    """
    if dataset.GetGeoTransform(can_return_null=True) is not None:
        return
    if dataset.GetGCPCount():
        raise InputRasterError(
            f"{name}: is georeferenced by {dataset.GetGCPCount()} ground control points (GCPs), not by a geotransform; "
            "lcgan writes its output on the input's pixel grid and needs a north-up geotransform for it. Warp it "
            "first (e.g. gdalwarp -r near in.tif warped.tif for land cover, or Raster > Projections > Warp)."
        )
    raise InputRasterError(
        f"{name}: has no georeference (no geotransform, no ground control points), so the output would be placed at "
        "an invented position. Georeference it first (e.g. gdal_translate -a_ullr ULX ULY LRX LRY -a_srs EPSG:CODE, "
        "or Raster > Georeferencer)."
    )


class GdalReader:
    """A raster file opened read-only with GDAL; a context manager. Errors name the path.

    Raises:
        InputRasterError: the file is missing or GDAL cannot open it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        name = str(path)  # as given: GDAL strings (/vsicurl/https://..., NETCDF:"f.nc":var) do not survive Path()
        with gdal_errors() as errors:
            dataset = gdal_call(errors, gdal.Open, name, gdal.GA_ReadOnly)
        if dataset is None:
            if not self.path.exists() and not is_gdal_string(name):
                raise InputRasterError(f"Input raster not found: {self.path}")
            detail = errors[-1] if errors else "unknown format"
            raise InputRasterError(f"Cannot open {name} as a raster: {detail}")
        if dataset.RasterCount == 0 and dataset.GetSubDatasets():
            listed = ", ".join(sub for sub, _description in dataset.GetSubDatasets()[:5])
            raise InputRasterError(f"{name} holds several rasters (subdatasets); give one of them, e.g. {listed}.")
        _check_georeferenced(dataset, name)
        self._dataset: gdal.Dataset | None = dataset
        self._lock = threading.Lock()
        self._row_mark = 0  # row offset of the last read: moving down drops GDAL's cached blocks (bounded memory)
        bands = [dataset.GetRasterBand(b) for b in range(1, dataset.RasterCount + 1)]
        while len(bands) > 1 and bands[-1].GetColorInterpretation() == gdal.GCI_AlphaBand:
            bands.pop()  # an alpha band is a mask (read_mask), not data
        self.info = RasterInfo(
            name=name,
            width=dataset.RasterXSize,
            height=dataset.RasterYSize,
            band_count=len(bands),
            dtype=numpy_dtype_name(bands[0].DataType) if bands else "none",
            nodata=tuple(b.GetNoDataValue() for b in bands),
            geotransform=tuple(dataset.GetGeoTransform()),  # type: ignore[arg-type]
            crs_wkt=dataset.GetProjection() or "",
        )

    def read(self, window: Window, bands: Sequence[int]) -> np.ndarray:
        """Pixels of ``window`` for 1-based ``bands`` as ``(len(bands), height, width)`` in the file's dtype.

        Raises:
            InputRasterError: window outside the raster, unknown band, closed reader, or a GDAL read failure.
        """
        info = self.info
        if window.col_off < 0 or window.row_off < 0 or window.col_end > info.width or window.row_end > info.height:
            raise InputRasterError(f"{info.name}: window {window} lies outside the {info.width}x{info.height} raster.")
        bad = [b for b in bands if not 1 <= b <= info.band_count]
        if bad:
            raise InputRasterError(f"{info.name}: band(s) {bad} do not exist (the raster has {info.band_count}).")
        with self._lock, gdal_errors() as errors:
            if self._dataset is None:
                raise InputRasterError(f"{info.name}: the reader is closed.")
            if window.row_off > self._row_mark:  # a new strip: GDAL's block cache would otherwise keep every block
                self._dataset.FlushCache()  # read so far (up to GDAL_CACHEMAX, 5 % of RAM), growing with the raster
                self._row_mark = window.row_off
            out = np.empty((len(bands), window.height, window.width), dtype=np.dtype(info.dtype))
            for i, b in enumerate(bands):
                got = gdal_call(errors, self._dataset.GetRasterBand(b).ReadAsArray,
                                window.col_off, window.row_off, window.width, window.height, buf_obj=out[i])
                if got is None:
                    detail = errors[-1] if errors else "read failed"
                    raise InputRasterError(f"{info.name}: cannot read band {b} at {window}: {detail}")
        return out

    def read_mask(self, window: Window, bands: Sequence[int]) -> np.ndarray | None:
        """``(height, width)`` bool: pixels of ``window`` valid in the alpha or mask band of ``bands`` (GDAL's mask
        bands: an alpha band, a ``.msk`` file or an internal mask); ``None`` when none of them has one.

        Raises:
            InputRasterError: a GDAL read failure.
        """
        masks: list[np.ndarray] = []
        with self._lock, gdal_errors() as errors:
            if self._dataset is None:
                raise InputRasterError(f"{self.info.name}: the reader is closed.")
            per_dataset_done = False
            for b in dict.fromkeys(bands):
                band = self._dataset.GetRasterBand(b)
                flags = band.GetMaskFlags()
                if flags & (gdal.GMF_ALL_VALID | gdal.GMF_NODATA):  # nodata values are read from the pixels
                    continue
                if flags & gdal.GMF_PER_DATASET:
                    if per_dataset_done:
                        continue
                    per_dataset_done = True
                got = gdal_call(errors, band.GetMaskBand().ReadAsArray, window.col_off, window.row_off, window.width,
                                window.height)
                if got is None:
                    detail = errors[-1] if errors else "read failed"
                    raise InputRasterError(f"{self.info.name}: cannot read the mask of band {b} at {window}: {detail}")
                masks.append(got != 0)
        return None if not masks else np.logical_and.reduce(masks)

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            self._dataset = None

    def __enter__(self) -> GdalReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GeoTiffWriter:
    """A GeoTIFF being written under a temporary name; :meth:`commit` moves it to ``path``. A context manager.

    Args:
        path: the final output path.
        width, height, band_count: raster size.
        dtype: numpy dtype of the pixels (``uint8``, ``uint16``, ``float32``...).
        geotransform, crs_wkt: georeference copied from the input.
        nodata: nodata value written on every band (None: none).

    Raises:
        OutputError: the folder does not exist or is not writable, or GDAL cannot create the file.
    """

    def __init__(self, path: str | Path, width: int, height: int, band_count: int, dtype: np.dtype | str,
                 geotransform: Sequence[float], crs_wkt: str, nodata: float | None = None) -> None:
        self.path = Path(path)
        folder = self.path.parent if str(self.path.parent) else Path(".")
        if not folder.is_dir():
            raise OutputError(f"Output folder does not exist: {folder}")
        try:
            self._lock_fd, self.temp_path = create_partial(folder, self.path.stem)
        except OSError as exc:
            raise OutputError(f"Cannot write in the output folder {folder}: {exc.strerror or exc}. Choose a folder "
                              "you can write to.") from None
        gdal_type = gdal_array.NumericTypeCodeToGDALTypeCode(np.dtype(dtype).type)
        with gdal_errors() as errors:
            driver = gdal.GetDriverByName("GTiff")
            dataset = gdal_call(errors, driver.Create, str(self.temp_path), width, height, band_count, gdal_type,
                                options=list(CREATION_OPTIONS))
        if dataset is None:
            self.temp_path.unlink(missing_ok=True)
            release_partial(self._lock_fd)
            raise OutputError(f"Cannot create {self.path}: {errors[-1] if errors else 'GDAL failed'}")
        self._dataset: gdal.Dataset | None = dataset
        dataset.SetGeoTransform(tuple(geotransform))
        if crs_wkt:
            dataset.SetProjection(crs_wkt)
        if nodata is not None:
            for b in range(1, band_count + 1):
                dataset.GetRasterBand(b).SetNoDataValue(float(nodata))
        self.band_count = band_count

    def band(self, index: int) -> gdal.Band:
        """The 1-based GDAL band, for styling (colour table, colour interpretation, descriptions)."""
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        return self._dataset.GetRasterBand(index)

    def write(self, row_off: int, col_off: int, pixels: np.ndarray) -> None:
        """Write ``(bands, rows, cols)`` pixels at ``(row_off, col_off)``.

        Raises:
            OutputError: GDAL cannot write (disk full, I/O error); the message names the output path.
        """
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        with gdal_errors() as errors:
            for b in range(pixels.shape[0]):
                status = gdal_call(errors, self._dataset.GetRasterBand(b + 1).WriteArray, pixels[b], col_off, row_off)
                if status != gdal.CE_None or errors:
                    raise OutputError(self._write_failed(errors[-1] if errors else "write failed"))

    def flush(self) -> None:
        """Write the cached blocks to disk and drop them from GDAL's cache (bounded memory).

        Raises:
            OutputError: GDAL cannot write (disk full, I/O error).
        """
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        with gdal_errors() as errors:
            gdal_call(errors, self._dataset.FlushCache)
        if errors:
            raise OutputError(self._write_failed(errors[-1]))

    def _write_failed(self, detail: str) -> str:
        """The message of a failed write: the output, GDAL's reason, the free space and what to do."""
        try:
            free = f"{shutil.disk_usage(self.temp_path.parent).free / 1e6:,.0f} MB free"
        except OSError:
            free = "free space unknown"
        return (f"Cannot write {self.path}: {detail.rstrip('.')} ({free} in {self.temp_path.parent}). The disk may "
                "be full or the file too large for the file system or a size limit; free some space or choose another "
                "folder.")

    def commit(self) -> Path:
        """Flush, close and move the file to its final path (replacing an existing file).

        Raises:
            OutputError: flushing or renaming failed (the temporary file is removed).
        """
        if self._dataset is None:
            raise OutputError(f"{self.path}: the writer is closed.")
        try:
            with gdal_errors() as errors:
                gdal_call(errors, self._dataset.FlushCache)
                self._dataset = None  # closing writes the last blocks and the directory
            if errors:
                raise OutputError(self._write_failed(errors[-1]))
            try:
                replace_with_sidecar(self.temp_path, self.path)
            except OSError as exc:
                raise OutputError(f"Cannot move the result to {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            self.abort()
            raise
        release_partial(self._lock_fd)
        self._lock_fd = None
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (idempotent)."""
        with gdal_errors():
            self._dataset = None
        release_partial(self._lock_fd)
        self._lock_fd = None
        for candidate in (self.temp_path, Path(str(self.temp_path) + ".aux.xml")):
            try:
                candidate.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove the partial file %s: %s", candidate, exc)

    def __enter__(self) -> GeoTiffWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._dataset is not None:
            self.abort()
