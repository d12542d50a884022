"""``earmark audit``: a catalogue analysed on a local pool and on a real Dask cluster.

Real parts: generated WAV files (tests/synth.py, the demo's mix and its aggressive
master as a mix/master pair) and one file that is not audio; a real
``distributed.LocalCluster`` with two worker processes on loopback; real SQLite; the
real command line in a subprocess, killed with SIGKILL; a Dask worker process killed
with SIGKILL while it holds tasks. The answers: ``analyze`` and ``diff`` of the same
files, read to the last bit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earmark.engine.demo import aggressive_master, demo_mix
from earmark.engine.files import AudioFileError
from earmark.offline.analysis import analyze
from earmark.offline.audit import audit, collect
from earmark.offline.transform import diff
from earmark.store.catalog import READING_COLUMNS, Catalog

from clirun import earmark
from synth import music_like

FS = 48000
SHORT_S = 3.0


def _write(path: Path, x: np.ndarray) -> str:
    sf.write(path, np.clip(x, -1.0, 1.0), FS, subtype="PCM_24")
    return str(path)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Four short files of different loudness (two clip), a mix and its master, a file
    that is not audio, a manifest with release dates and the pairs CSV."""
    root = tmp_path_factory.mktemp("i21-audit")
    folder = root / "catalogue"
    folder.mkdir()
    files = [
        _write(folder / f"track{i}.wav", music_like(SHORT_S, FS, seed=i) * (0.5 + 1.5 * i))
        for i in range(4)
    ]
    mix = demo_mix(seconds=4.0, sample_rate=FS)
    pair = (
        _write(folder / "mix.wav", mix),
        _write(folder / "master.wav", aggressive_master(mix, FS)),
    )
    bad = folder / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    manifest = root / "manifest.csv"
    dates = ["2019-03-01", "2020-06", "2021", "2022-11-30"]
    manifest.write_text(
        "path,release_date\n"
        + "".join(f"catalogue/{Path(f).name},{d}\n" for f, d in zip(files, dates, strict=True))
        + "catalogue/broken.wav,2023-01-01\n"
    )
    pairs = root / "pairs.csv"
    pairs.write_text("mix,master\ncatalogue/mix.wav,catalogue/master.wav\n")
    return {
        "root": root,
        "folder": str(folder),
        "files": files,
        "pair": pair,
        "bad": str(bad),
        "manifest": str(manifest),
        "pairs": str(pairs),
    }


@pytest.fixture(scope="module")
def local_catalog(material: dict) -> Path:
    """The folder and the pair audited on the local pool (2 processes)."""
    out = material["root"] / "local.sqlite"
    summary = audit(
        [material["folder"], material["manifest"]], out=out, pairs=material["pairs"], workers=2
    )
    # 7 files (the manifest names 5 of them again, with dates), 1 of them not audio.
    assert (summary.files, summary.analysed, summary.errors) == (7, 6, 1)
    assert (summary.pairs, summary.pairs_diffed) == (1, 1)
    return out


@pytest.fixture(scope="module")
def cluster():
    """A real Dask cluster on loopback: a scheduler and two worker processes (nannies)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            processes=True,
            n_workers=2,
            threads_per_worker=1,
            dashboard_address=None,
            host="127.0.0.1",
        ) as c,
        Client(c) as client,
    ):
        yield c, client


def _files(path: Path) -> dict[str, dict]:
    with Catalog(path) as c:
        return {r["path"]: r for r in c.files()}


def _pairs(path: Path) -> list[dict]:
    with Catalog(path) as c:
        return c.pairs()


def _readings(row: dict) -> dict:
    return {k: row[k] for k in READING_COLUMNS}


def test_collect_walks_folders_and_manifests(material: dict) -> None:
    tasks, warnings = collect([material["folder"], material["manifest"]])
    assert warnings == []
    names = sorted(Path(t.path).name for t in tasks)
    assert names == ["broken.wav", "master.wav", "mix.wav", *[f"track{i}.wav" for i in range(4)]]
    dates = {Path(t.path).name: t.release_date for t in tasks}
    assert dates["track1.wav"] == "2020-06" and dates["mix.wav"] is None


def test_local_pool_gives_analyze_readings_and_flags(material: dict, local_catalog: Path) -> None:
    rows = _files(local_catalog)
    assert len(rows) == 7
    for path in [*material["files"], *material["pair"]]:
        a = analyze(path)
        row = rows[path]
        assert row["error"] is None
        for key in READING_COLUMNS:  # the same numbers to the last bit
            want = getattr(a, key)
            assert row[key] == (None if want is None else float(want)), key
        assert json.loads(row["flags"]) == a.to_json_dict()["flags"]
        codes = [f["code"] for f in a.flags]
        assert (row["flag_codes"] or "") == ",".join(dict.fromkeys(codes))
    # The loud ones clip, the quiet ones do not: the flags are really judged.
    assert "clipping" in (rows[material["files"][3]]["flag_codes"] or "")
    assert rows[material["files"][0]]["flag_codes"] is None
    assert rows[material["files"][1]]["release_date"] == "2020-06"
    bad = rows[material["bad"]]
    assert bad["sha256"] is not None and bad["integrated_lufs"] is None
    with pytest.raises(AudioFileError) as err:  # the same cause analyze gives
        analyze(material["bad"])
    assert bad["error"] == err.value.cause


def test_pair_row_is_diff_json(material: dict, local_catalog: Path) -> None:
    (row,) = _pairs(local_catalog)
    want = diff(*material["pair"]).to_dict()
    assert row["error"] is None
    assert json.loads(row["data"]) == json.loads(json.dumps(want))
    assert row["loudness_change_lu"] == want["loudness_change_lu"]
    assert row["compressed"] == 1 and row["limited"] == 1


def test_rerun_skips_everything_already_there(material: dict, local_catalog: Path) -> None:
    again = audit([material["folder"]], out=local_catalog, pairs=material["pairs"], workers=1)
    # Only the file that is not audio is tried again (an error row is retried).
    assert (again.analysed, again.skipped, again.errors) == (0, 6, 1)
    assert again.pairs_skipped == 1
    assert len(_files(local_catalog)) == 7 and len(_pairs(local_catalog)) == 1


def test_dask_cluster_gives_the_local_pools_rows(
    material: dict, local_catalog: Path, cluster
) -> None:
    _, client = cluster
    out = material["root"] / "dask.sqlite"
    summary = audit(
        [material["folder"], material["manifest"]], out=out, pairs=material["pairs"],
        client=client,
    )  # fmt: skip
    assert summary.runs_on.startswith("dask:tcp://127.0.0.1:")
    local, remote = _files(local_catalog), _files(out)
    assert local.keys() == remote.keys()
    for path, row in local.items():
        other = remote[path]
        assert _readings(other) == _readings(row)
        assert (other["flags"], other["error"], other["sha256"]) == (
            row["flags"], row["error"], row["sha256"],
        )  # fmt: skip
    workers = {r["worker"] for r in remote.values()}
    assert len(workers) == 2  # both worker processes took files
    (pl,), (pr,) = _pairs(local_catalog), _pairs(out)
    assert pl["data"] == pr["data"]


@pytest.fixture(scope="module")
def long_files(material: dict) -> tuple[Path, list[str]]:
    """Six files of 20 s: long enough to be inside one when a worker is killed."""
    folder = material["root"] / "long"
    folder.mkdir()
    paths = [_write(folder / f"long{i}.wav", music_like(20.0, FS, seed=10 + i)) for i in range(6)]
    return folder, paths


def test_killed_local_worker_loses_no_result(material: dict, long_files) -> None:
    """SIGKILL one of the local pool's processes mid-audit: the pool is rebuilt and the
    files it held are analysed again."""
    import psutil

    folder, paths = long_files
    out = material["root"] / "kill-local.sqlite"
    done: dict = {}
    t = threading.Thread(target=lambda: done.update(s=audit([str(folder)], out=out, workers=2)))
    t.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and t.is_alive():
        # The pool's processes: the forkserver's children (the forkserver is ours).
        server = [p for p in psutil.Process().children() if "forkserver" in " ".join(p.cmdline())]
        workers = [w for s in server for w in s.children()]
        if len(workers) == 2 and 1 <= _count(out) < len(paths) - 2:
            workers[0].kill()
            killed = workers[0].pid
        time.sleep(0.02)
    t.join(120)
    assert killed is not None, "the pool was never caught mid-audit"
    assert (done["s"].analysed, done["s"].errors) == (len(paths), 0)
    rows = _files(out)
    assert sorted(rows) == sorted(paths)
    assert rows[paths[-1]]["integrated_lufs"] == analyze(paths[-1]).integrated_lufs


def test_killed_worker_loses_no_result(material: dict, long_files, cluster) -> None:
    """SIGKILL a Dask worker process while it holds tasks: they run again elsewhere."""
    _, client = cluster
    folder, paths = long_files
    out = material["root"] / "kill-worker.sqlite"
    done: dict = {}
    t = threading.Thread(target=lambda: done.update(s=audit([str(folder)], out=out, client=client)))
    t.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and t.is_alive():
        busy = {w: keys for w, keys in client.processing().items() if keys}
        if busy:
            addr = sorted(busy)[0]
            pid = client.run(os.getpid, workers=[addr])[addr]
            time.sleep(0.2)  # inside the analysis, not between tasks
            if client.processing().get(addr):  # still holding tasks: kill it now
                os.kill(pid, signal.SIGKILL)
                killed = pid
        else:
            time.sleep(0.02)
    t.join(120)
    assert killed is not None, "no worker was ever busy"
    summary = done["s"]
    assert (summary.analysed, summary.errors) == (6, 0)
    rows = _files(out)
    assert sorted(rows) == sorted(paths)
    for p in paths[:2]:  # spot-check: the same numbers as analyze
        assert rows[p]["integrated_lufs"] == analyze(p).integrated_lufs
    client.wait_for_workers(2, timeout=60)  # the nanny brought it back


def _count(path: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as c:
            return c.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_resumes_after_kill_9_of_the_client(material: dict) -> None:
    folder = material["root"] / "kill-client"
    folder.mkdir()
    n = 8
    paths = [_write(folder / f"t{i}.wav", music_like(8.0, FS, seed=30 + i)) for i in range(n)]
    out = material["root"] / "kill-client.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "earmark",
        "audit",
        str(folder),
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while _count(out) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        first = _count(out)
        assert 2 <= first < n, f"killed after {first} of {n} files"
        # The pool's processes (children of the forkserver) notice and end too.
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "the pool outlived its client"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the pool's processes, if any are left
        proc.stderr.close()
    again = earmark("audit", str(folder), "--workers", "1", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert (
        f"{n - first} analysed" in again.stderr
        and f"{first} already in the catalogue" in again.stderr
    )
    with contextlib.closing(sqlite3.connect(out)) as c:
        rows = c.execute("SELECT path, count(*), max(error) FROM files GROUP BY path").fetchall()
    assert sorted(r[0] for r in rows) == sorted(paths)
    assert all(count == 1 and error is None for _, count, error in rows)


def test_cli_on_the_cluster_with_report_and_csv(material: dict, cluster) -> None:
    lc, _ = cluster
    root = material["root"]
    report, table = root / "audit.html", root / "audit.csv"
    args = [material["manifest"], "--pairs", material["pairs"], "--out", str(root / "cli.sqlite")]
    r = earmark("audit", *args, "--dask", lc.scheduler_address, "--report", str(report),
                "--csv", str(table))  # fmt: skip
    assert r.returncode == 3, r.stderr  # broken.wav could not be analysed
    lines = r.stderr.strip().splitlines()
    assert f"earmark: {material['bad']}: cannot open as audio" in r.stderr
    assert "5 file(s): 4 analysed, 1 error(s)" in lines[-1] and "dask:tcp://" in lines[-1]
    assert "Traceback" not in r.stderr
    page = report.read_text()
    for heading in ("Flags", "Distributions", "Trend by release date", "Mix/master pairs",
                    "Could not be analysed"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    assert page.count("data:image/png;base64,") == 10  # 5 distributions, 5 trends
    head, *rows = table.read_text().splitlines()
    assert "integrated_lufs" in head.split(",") and len(rows) == 5
    assert (root / "audit-pairs.csv").read_text().count("\n") == 2
    # The exports are never replaced without --force; the catalogue never by an export.
    again = earmark("audit", *args, "--csv", str(table))
    assert again.returncode == 2 and "exists; give --force" in again.stderr
    onto = earmark("audit", *args, "--csv", str(root / "cli.sqlite"), "--force")
    assert onto.returncode == 2 and "is the input" in onto.stderr


def test_cli_usage_and_unavailable(material: dict, tmp_path: Path) -> None:
    r = earmark("audit")
    assert r.returncode == 2 and "give at least one PATH" in r.stderr
    r = earmark("audit", material["files"][0], "--workers", "0")
    assert r.returncode == 2
    r = earmark("audit", material["files"][0], "--profile", "no-such-profile")
    assert r.returncode == 2 and "--profile" in r.stderr
    out = str(tmp_path / "c.sqlite")
    r = earmark("audit", material["files"][0], "--out", out, "--parquet", str(tmp_path / "x.pq"))
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert r.returncode == 3 and "--parquet: needs pyarrow" in r.stderr
    else:
        assert r.returncode == 0 and pq.read_table(tmp_path / "x.pq").num_rows == 1
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    r = earmark("audit", material["files"][0], "--dask", "tcp://127.0.0.1:9", "--out", out, env=env)
    assert r.returncode == 3 and "--dask: cannot reach the scheduler" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_flag_counts_and_report_agree_with_the_rows(local_catalog: Path) -> None:
    from earmark.offline.audit_report import audit_report

    with Catalog(local_catalog) as c:
        files, pairs, counts = c.files(), c.pairs(), list(c.flag_counts())
    by_code = {code: n for _, code, _, n in counts}
    for code, n in by_code.items():
        assert n == sum(code in (r["flag_codes"] or "").split(",") for r in files), code
    assert by_code.get("clipping", 0) >= 1
    page = audit_report(files, pairs, counts)
    # The flag table's row for clipping: its code, profile, severity and count.
    severity = next(s for _, code, s, _ in counts if code == "clipping")
    row = f"<td>clipping</td><td>default</td><td>{severity}</td><td>{by_code['clipping']}</td>"
    assert row in page
    # The most compressed file heads its table: the lowest PSR median of the rows.
    lowest = min(
        (r for r in files if r["psr_median_db"] is not None), key=lambda r: r["psr_median_db"]
    )
    body = page.split("most compressed")[1].split("<tbody>")[1]
    assert body.lstrip().startswith(f"<tr><td>{Path(lowest['path']).name}</td>")


def test_cli_on_dask_scheduler_and_worker_processes(material: dict, local_catalog: Path) -> None:
    """`dask scheduler` and `dask worker` as processes of their own (as on a real
    cluster): the command line's rows are the local pool's."""
    root = material["root"]
    dask = str(Path(sys.executable).parent / "dask")
    info = root / "scheduler.json"
    common = ["--no-dashboard"]
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file",
             str(info), *common],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        procs.append(
            subprocess.Popen(
                [dask, "worker", "--scheduler-file", str(info), "--nthreads", "1",
                 "--nworkers", "1", "--memory-limit", "0", *common],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
        )  # fmt: skip
        address = json.loads(info.read_text())["address"]
        out = root / "dask-cli.sqlite"
        r = earmark("audit", material["folder"], "--dask", address, "--out", str(out))
        assert r.returncode == 3, r.stderr  # broken.wav
        assert "7 file(s): 6 analysed, 1 error(s)" in r.stderr and f"dask:{address}" in r.stderr
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
    local, remote = _files(local_catalog), _files(out)
    assert local.keys() == remote.keys()
    for path, row in local.items():
        assert _readings(remote[path]) == _readings(row)
        assert (remote[path]["flags"], remote[path]["error"]) == (row["flags"], row["error"])
