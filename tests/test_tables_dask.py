"""``mptcpspec table`` on Dask: a local cluster (``--workers 2``) and a real scheduler with two
workers started as separate processes (``dask scheduler``, ``dask worker``), the job sent with
``--scheduler``: the same tables as one process makes, on an archive cut through its connections."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DATA, need_wireshark, unavailable
from tests.dissect_helpers import cli
from tests.test_tables import split

pq = pytest.importorskip("pyarrow.parquet", reason="the tables extra (pyarrow) is not installed")

TABLES = ("packets", "connections", "subflows", "mappings", "reinjections", "checks", "experts", "events")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> list[str]:
    """Three lab captures one after the other, cut into 7 files through their connections."""
    folder = tmp_path_factory.mktemp("archive")
    whole = folder / "whole.pcap"
    subprocess.run(
        [need_wireshark("mergecap"), "-a", "-F", "pcap", "-w", str(whole), str(DATA / "v4-reinjection.pcap"),
         str(DATA / "v4-add-addr.pcap"), str(DATA / "v4-two-subflows.pcap")],
        check=True,
    )  # fmt: skip
    return split(whole, 7, folder / "pieces")


def sorted_rows(folder: Path, kind: str) -> list[dict]:
    return sorted(pq.read_table(folder / kind).to_pylist(), key=repr)


def same_tables(a: Path, b: Path) -> None:
    for kind in TABLES:
        assert sorted_rows(a, kind) == sorted_rows(b, kind), kind
    da, db = (json.loads((f / "_mptcpspec.json").read_text()) for f in (a, b))
    assert da["rows"] == db["rows"] and da["files"] == db["files"]


@pytest.fixture(scope="module")
def one(archive, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    r = cli("table", "-r", *archive, "-o", str(out))
    assert r.returncode == 0, r.stderr
    return out


def test_local_cluster(archive, one, tmp_path):
    r = cli("table", "-r", *archive, "-o", str(tmp_path), "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "local Dask cluster of 2 workers; dashboard: http://" in r.stderr
    assert len(list((tmp_path / "packets").glob("part-*.parquet"))) >= 2  # the work was shared
    same_tables(one, tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    """``dask scheduler`` and two ``dask worker`` processes; yields the scheduler's address."""
    try:
        import distributed
    except ImportError:
        unavailable("Dask (dask[distributed]) is not installed: pip install 'mptcpspec[dask]'")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
    ]
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "distributed.cli.dask_worker",
                        address,
                        "--nthreads",
                        "1",
                        "--nworkers",
                        "1",
                        "--no-dashboard",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )  # fmt: skip
            )
        with distributed.Client(address, timeout=30) as client:
            deadline = time.monotonic() + 60
            while len(client.scheduler_info()["workers"]) < 2:
                assert time.monotonic() < deadline, "the two workers did not join the scheduler"
                time.sleep(0.2)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def test_scheduler_and_two_workers(archive, one, tmp_path, cluster):
    r = cli("table", "-r", *archive, "-o", str(tmp_path), "--scheduler", cluster)
    assert r.returncode == 0, r.stderr
    assert f"Dask scheduler {cluster}; dashboard: http://" in r.stderr
    same_tables(one, tmp_path)


def test_without_dask_says_so(archive, tmp_path):
    """A Python where distributed cannot be imported: the command says which extra to install."""
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from mptcpspec.cli import main\n"
        f"sys.exit(main(['table', '-r', *{archive!r}, '-o', {str(tmp_path)!r}, '--workers', '2']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and "mptcpspec[dask]" in r.stderr and "Traceback" not in r.stderr
