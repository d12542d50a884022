"""``earmark audit`` throughput: local pool (1 and 2 processes) against a Dask LocalCluster.

    .venv/bin/python bench/audit.py [--files 12] [--seconds 30]

Writes ``--files`` different versions (gains) of the demo's mix, ``--seconds`` long,
48 kHz 24-bit stereo, into a temporary folder, and audits them into a fresh catalogue
each time: with 1 and 2 local processes, and on a Dask ``LocalCluster`` of 2 worker
processes of 1 thread (its start timed apart). Prints files/s, x real time, the Dask
overhead per file against the local pool of the same size, the peak RSS of each
worker process (sampled every 50 ms with psutil), and an estimate of throughput and
cost on N machines from these figures. Nothing here is asserted; tests do not run it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np
import psutil
import soundfile as sf

from earmark.engine.demo import demo_mix
from earmark.offline.audit import audit

SR = 48000
# Inference, not a quote: a general-purpose cloud core-hour on demand is of the order
# of 0.02-0.05 USD (2-vCPU machines at 0.04-0.10 USD an hour); spot prices are lower.
USD_PER_CORE_HOUR = 0.04


class RssSampler:
    """Peak resident memory of every process below this one, sampled in a thread."""

    def __init__(self) -> None:
        self.peak: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for p in me.children(recursive=True):
                try:
                    rss = p.memory_info().rss
                    name = " ".join(p.cmdline())
                except psutil.Error:
                    continue
                if rss > self.peak.get(p.pid, (0, ""))[0]:
                    self.peak[p.pid] = (rss, name)
            time.sleep(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def workers(self, marker: str) -> list[int]:
        """Peak RSS (bytes) of the processes whose command line holds ``marker``."""
        return sorted((rss for rss, name in self.peak.values() if marker in name), reverse=True)


def run(label: str, folder: Path, out: Path, audio_s: float, **kw: object) -> float:
    with RssSampler() as rss:
        start = time.perf_counter()
        s = audit([str(folder)], out=out, **kw)
        wall = time.perf_counter() - start
    assert s.errors == 0 and s.analysed > 0, s.line()
    marker = "forkserver" if "client" not in kw else "spawn_main"
    peaks = rss.workers(marker) or [r for r, _ in rss.peak.values()]
    top = ", ".join(f"{r / 2**20:.0f}" for r in peaks[:4])
    print(
        f"{label:<28}{wall:>8.1f}{s.analysed / wall:>9.2f}{audio_s * s.analysed / wall:>8.0f}"
        f"   {top}"
    )
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12, help="files in the set")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each file")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory(prefix="i21-audit-bench-") as tmp:
        root = Path(tmp)
        folder = root / "set"
        folder.mkdir()
        mix = demo_mix(seconds=args.seconds, sample_rate=SR)
        for i in range(args.files):  # different gains: different hashes, the same cost
            gain = 10.0 ** (-(i % 12) / 20.0)
            sf.write(folder / f"f{i:03d}.wav", np.clip(mix * gain, -1, 1), SR, subtype="PCM_24")
        print(
            f"{args.files} files of {args.seconds:g} s (48 kHz 24-bit stereo), "
            f"{os.cpu_count()} cores; each run into a fresh catalogue (numba cache warm)"
        )
        # Warm the numba cache and the page cache once (not timed).
        audit([str(folder / "f000.wav")], out=root / "warm.sqlite", workers=1)
        print(f"{'run':<28}{'wall s':>8}{'files/s':>9}{'x RT':>8}   peak RSS per worker, MiB")
        t1 = run("local, 1 process", folder, root / "l1.sqlite", args.seconds, workers=1)
        t2 = run("local, 2 processes", folder, root / "l2.sqlite", args.seconds, workers=2)
        started = time.perf_counter()
        with (
            LocalCluster(
                processes=True,
                n_workers=2,
                threads_per_worker=1,
                dashboard_address=None,
                host="127.0.0.1",
            ) as cluster,
            Client(cluster) as client,
        ):
            # Each worker imports earmark and loads the numba cache once in its life:
            # done before the timing, as a long-lived cluster has.
            client.run(lambda: __import__("earmark.offline.analysis").offline.analysis)
            up = time.perf_counter() - started
            td = run("dask LocalCluster, 2 x 1", folder, root / "d.sqlite", args.seconds,
                     client=client)  # fmt: skip
        print(f"(the LocalCluster took {up:.1f} s to start and import, not counted above)")
        n = args.files
        from earmark.store.catalog import Catalog

        with Catalog(root / "l1.sqlite") as c:
            task_s = [float(r["seconds"]) for r in c.files()]
        per_file_1 = float(np.median(task_s))
        print(
            f"\none file's task (hash + analyze) on one process: median {per_file_1:.2f} s;"
            f" the run's wall clock per file {t1 / n:.2f} s (the pool's start included)"
        )
        overhead = (td - t2) / n
        print(
            f"per file on one core: {args.seconds / per_file_1:.0f}x real time;"
            f" 2 processes: {t1 / t2:.2f}x the speed of 1"
        )
        print(
            f"Dask against the local pool of the same size: {overhead * 1000:+.0f} ms per file"
            f" ({(td / t2 - 1) * 100:+.0f} %)"
        )
        # The estimate: each core analyses a file in per_file_1 (plus Dask's overhead per
        # file, spread over the cores); the scheduler's cost per task is inside the
        # overhead measured here. Assumes the shared storage keeps up (inference).
        core_s_per_audio_s = (per_file_1 + max(overhead, 0.0) * 2) / args.seconds
        hours = 100_000 * 240.0 * core_s_per_audio_s / 3600.0
        print(
            f"\nEstimate (inference from these figures): a catalogue of 100,000 tracks of 4 min"
            f" is {hours:.0f} core-hours; at {USD_PER_CORE_HOUR} USD a core-hour"
            f" about {hours * USD_PER_CORE_HOUR:.0f} USD."
        )
        for machines in (1, 10, 50):
            cores = machines * 8
            files_per_s = cores / (240.0 * core_s_per_audio_s)
            print(
                f"  {machines:>3} machine(s) of 8 cores: {files_per_s:6.1f} files/s,"
                f" 100,000 tracks in {100_000 / files_per_s / 3600:6.1f} h"
            )


if __name__ == "__main__":
    main()
