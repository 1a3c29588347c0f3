"""The mosaic's manifest and folders, and the bounds of numeric options (issue 24).

The manifest (``lcgan_qgis/mosaic/manifest.py``) is created under a lock, validated line by line and heals what
interrupted or concurrent runs leave; the output folder may not hold the inputs, and a failed run leaves no folder it
created; a scheduler address that is not Dask is named as such; local workers, threads and the window are bounded
by this machine (``lcgan_qgis/core/run/bounds.py``).
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from lcgan_qgis.core.errors import ClusterError, OptionError, OutputError
from lcgan_qgis.core.run import bounds
from lcgan_qgis.core.run.settings import ModelChoice, RunSettings, Windowing
from lcgan_qgis.mosaic.cluster import connect, local_layout
from lcgan_qgis.mosaic.folder import check_against_inputs
from lcgan_qgis.mosaic.job import MosaicRequest, run_mosaic
from lcgan_qgis.mosaic.manifest import FORMAT, MANIFEST_NAME, Manifest, TileRecord
from lcgan_qgis.mosaic.request import Cluster
from tests.fixtures.onnx_factory import write_pointwise
from tests.fixtures.rasters import write_tif

JOB = {"model": {"sha256": "ab", "threads": 1}, "tile_px": 256}
RECORD = TileRecord("r0c0", "tiles/r0c0.tif", (0, 0, 256, 256), "00" * 32, 10, 1.0, 4, "w1")


def _line(entry: object) -> str:
    return json.dumps(entry) + "\n"


HEADER = _line({"format": FORMAT, "job": JOB})
TILE = _line({"tile": RECORD.__dict__ | {"window": list(RECORD.window)}})

HEALED = [
    ("empty manifest", "", 0),
    ("only blank lines", "\n\n", 0),
    ("duplicated header (two runs started together)", HEADER + HEADER + TILE, 1),
    ("tile line with missing keys", HEADER + _line({"tile": {"name": "r0c1", "path": "tiles/x.tif"}}) + TILE, 1),
    ("tile line with a mistyped key", HEADER + _line({"tile": RECORD.__dict__ | {"bytes": "ten"}}) + TILE, 1),
    ("tile line that is not an object", HEADER + _line([1, 2]) + TILE, 1),
    ("garbage line in the middle", HEADER + "{not json\n" + TILE, 1),
    ("torn last line", HEADER + TILE + '{"tile": {"na', 1),
    ("tile path outside the folder", HEADER + _line({"tile": RECORD.__dict__ | {"path": "../../etc/passwd"}}) + TILE,
     1),
    ("deeply nested line", HEADER + "[" * 100_000 + "\n" + TILE, 1),
]


@pytest.mark.parametrize(("text", "records"), [c[1:] for c in HEALED], ids=[c[0] for c in HEALED])
def test_the_manifest_heals_what_interrupted_runs_leave(tmp_path: Path, text: str, records: int) -> None:
    (tmp_path / MANIFEST_NAME).write_text(text)
    manifest = Manifest(tmp_path, JOB)
    assert len(manifest.records) == records
    lines = (tmp_path / MANIFEST_NAME).read_text().splitlines()
    assert json.loads(lines[0]) == {"format": FORMAT, "job": JOB} and len(lines) == 1 + records  # rewritten clean
    assert Manifest(tmp_path, JOB).records == manifest.records  # and it reads back the same


REFUSED = [
    ("another job", _line({"format": FORMAT, "job": JOB | {"tile_px": 512}}), OptionError, r"differs in: tile_px"),
    ("two headers of different jobs", HEADER + _line({"format": FORMAT, "job": {"x": 1}}), OptionError,
     r"headers of two different jobs \(line 2\)"),
    ("not a manifest", _line({"hello": 1}), OutputError, r"is not an lcgan mosaic manifest"),
    ("not UTF-8", "\udcff", OutputError, r"Cannot read the manifest"),
]


@pytest.mark.parametrize(("text", "error", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_what_the_manifest_refuses(tmp_path: Path, text: str, error: type, message: str) -> None:
    (tmp_path / MANIFEST_NAME).write_bytes(text.encode("utf-8", "surrogateescape"))
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    with pytest.raises(error, match=message):
        Manifest(tmp_path, JOB)
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before


def test_a_manifest_that_is_a_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_NAME).mkdir()
    with pytest.raises(OutputError, match="is not a file"):
        Manifest(tmp_path, JOB)


def _open_manifest(folder: str, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    Manifest(folder, JOB)


def test_runs_starting_together_write_one_header(tmp_path: Path) -> None:
    start = multiprocessing.get_context("fork").Event()
    processes = [multiprocessing.get_context("fork").Process(target=_open_manifest, args=(str(tmp_path), start))
                 for _ in range(6)]
    for p in processes:
        p.start()
    start.set()
    for p in processes:
        p.join(60)
        assert p.exitcode == 0
    assert (tmp_path / MANIFEST_NAME).read_text() == HEADER.replace(" ", "").replace('"job":', '"job":') or \
        len((tmp_path / MANIFEST_NAME).read_text().splitlines()) == 1


def test_records_survive_and_append(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path, JOB)
    manifest.add(RECORD)
    assert Manifest(tmp_path, JOB).records == {"r0c0": RECORD}


def test_an_output_folder_holding_the_inputs_is_refused_the_first_time(tmp_path: Path) -> None:
    """Before: accepted once (its rasters were read), then refused (its own tiles and VRTs were inputs)."""
    raster = write_tif(tmp_path / "a.tif", np.full((8, 8), 11, np.uint8))
    with pytest.raises(OutputError, match=r"holds the input raster .*a\.tif; give the mosaic a folder of its own"):
        check_against_inputs(tmp_path, [str(raster)])
    sub = tmp_path / "inner"
    sub.mkdir()
    deeper = write_tif(sub / "b.tif", np.full((8, 8), 11, np.uint8))
    with pytest.raises(OutputError, match="holds the input raster"):
        check_against_inputs(tmp_path, [str(deeper)])
    check_against_inputs(tmp_path / "out", [str(raster)])  # a folder beside the inputs is fine


@pytest.fixture
def not_dask() -> str:
    """A TCP server that answers like a web server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    server.close()


def test_a_scheduler_address_that_is_not_dask_is_named(not_dask: str) -> None:
    """Before: "Unable to allocate 3.07 EiB" (the reply read as frame lengths)."""
    with pytest.raises(ClusterError, match=r"answered, but not as a Dask scheduler \(it sent 'HTTP/1\.1'"), \
            connect(not_dask, timeout_s=5):
        pass


def test_a_closed_port_is_named() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(ClusterError, match=rf"No Dask scheduler answered at tcp://127\.0\.0\.1:{port}"), \
            connect(f"tcp://127.0.0.1:{port}", timeout_s=3):
        pass


def test_a_failed_mosaic_leaves_no_folder_it_created(tmp_path: Path, not_dask: str) -> None:
    raster = write_tif(tmp_path / "lc.tif", np.full((64, 64), 11, np.uint8))
    model = write_pointwise(tmp_path / "m.onnx", "landcover_to_rgb")
    out = tmp_path / "new" / "mosaic"
    request = MosaicRequest(output_dir=str(out), inputs=(str(raster),), model=ModelChoice(path=str(model)),
                            settings=RunSettings(windowing=Windowing(window_px=64, overlap_px=8)),
                            cluster=Cluster(scheduler=not_dask, tile_px=256, timeout_s=5))
    with pytest.raises(ClusterError, match="not as a Dask scheduler"):
        run_mosaic(request)
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "kept"
    existing.mkdir()
    with pytest.raises(ClusterError):
        run_mosaic(MosaicRequest(output_dir=str(existing), inputs=(str(raster),), model=ModelChoice(path=str(model)),
                                 settings=request.settings, cluster=request.cluster))
    assert existing.is_dir()  # a folder that was there before stays


SMALL = bounds.Machine(cores=2, available_bytes=8 * 10**9)


@pytest.mark.parametrize(("workers", "ok"), [(1, True), (4, True), (5, False), (1000, False)])
def test_local_workers_are_bounded_by_cores_and_memory(workers: int, ok: bool) -> None:
    if ok:
        bounds.check_local_workers(workers, SMALL)
    else:
        with pytest.raises(OptionError, match=rf"--local-workers {workers} is more than this machine can run: at "
                                              r"most 4 \(2 per core on 2 core\(s\)"):
            bounds.check_local_workers(workers, SMALL)


def test_local_layout_refuses_1000_workers() -> None:
    with pytest.raises(OptionError, match=r"--local-workers 1000 is more than this machine can run"):
        local_layout(1000, None)


@pytest.mark.parametrize(("window", "batch", "message"), [
    (4, 1, r"window \(--window, window_px\) of 4 px is below the smallest a generator takes \(16 px"),
    (30000, 1, r"30000 px with a batch \(--batch, batch_size\) of 1 needs about 990.0 GB .* use --window 1904 or less"),
    (512, 64, r"512 px with a batch \(--batch, batch_size\) of 64 needs about 18\.5 GB"),
])
def test_window_and_batch_are_bounded_by_memory(window: int, batch: int, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        bounds.check_window(window, batch, SMALL)


def test_the_run_settings_apply_the_bounds() -> None:
    from tests.fixtures.onnx_factory import default_contract

    contract = default_contract("landcover_to_rgb")
    with pytest.raises(OptionError, match="below the smallest a generator takes"):
        Windowing(window_px=4, overlap_px=0).fit(contract)
    with pytest.raises(OptionError, match="needs about"):
        Windowing(window_px=30000).fit(contract)
    with pytest.raises(OptionError, match=r"threads \(--threads\) 100000 is more than 1024"):
        RunSettings().execution.__class__(threads=100000)
