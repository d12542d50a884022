"""The dashboard's cost: its frame time, and whether it disturbs the audio.

    .venv/bin/python bench/ui.py [--seconds 30] [--rounds 2] [--period 64]

Starts a private Xvfb and a JACK dummy server (48 kHz; NullDriver if jackd is
missing), then runs the demo session (three paths metered, the default chain,
A/B toggled every 3 s, the state frame published at 30 Hz) in this process,
alternating two conditions:

- without a dashboard (the frame is still published: the publisher's cost is
  in both);
- with the full dashboard in its own process on the frame (60 fps cap,
  Mesa's software GL under Xvfb, pointer parked off the window).

It prints, per condition: audio callback p50/p99/p99.9/max as a share of the
period, xruns, the publisher's tick cost, and (with the dashboard) its frame
time p50/p99, frames per second and CPU. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JACKD = ROOT / "scripts" / "jackd-dummy"
SERVER = f"earmark-ui-bench-{os.getpid()}"
FS = 48000

os.environ.update(
    JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1"
)
os.environ.setdefault("EARMARK_HOME", tempfile.mkdtemp(prefix="earmark-ui-bench-"))

import numpy as np


def start_xvfb() -> tuple[subprocess.Popen, str]:
    """Xvfb at the dashboard's nice level: on a desktop the X server and the GPU draw
    the window; here a CPU-only X server does, and it should not outrank the audio."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.nice(5),
    )
    os.close(write_fd)
    number = b""
    while not number.endswith(b"\n"):
        if not select.select([read_fd], [], [], 20)[0]:
            raise RuntimeError("Xvfb did not start")
        chunk = os.read(read_fd, 32)
        if not chunk:
            raise RuntimeError("Xvfb exited")
        number += chunk
    os.close(read_fd)
    return proc, f":{number.decode().strip()}"


def jack(cmd: str, period: int) -> bool:
    if not JACKD.exists():
        return False
    proc = subprocess.run(
        [str(JACKD), cmd, SERVER, str(FS), str(period)], capture_output=True, check=False
    )
    return proc.returncode == 0


def open_driver(engine, period: int, use_jack: bool):
    from earmark.engine.drivers import NullDriver, SoundDeviceDriver

    if use_jack:
        import sounddevice as sd

        sd._terminate()
        sd._initialize()
        for i, d in enumerate(sd.query_devices()):
            api = sd.query_hostapis(d["hostapi"])["name"]
            if "JACK" in api and d["max_input_channels"] >= 2 and d["max_output_channels"] >= 2:
                return SoundDeviceDriver(engine, device=i, blocksize=period, channels=(2, 2))
    return NullDriver(engine, blocksize=period)


def cpu_of(pid: int) -> float:
    """CPU seconds a process has used (/proc/PID/stat utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    seconds: float, period: int, use_jack: bool, display: str | None, xvfb_pid: int = 0
) -> dict:
    """One condition: the demo session for ``seconds``, with a dashboard if ``display``."""
    from earmark.live import audio as live
    from earmark.live.publisher import DashboardService
    from earmark.live.session import LiveSession

    engine = live.demo_engine(FS, blocksize=period)
    driver = open_driver(engine, period, use_jack)
    session = LiveSession(engine, driver, name="ui bench", say=None)
    service = DashboardService()
    session.add_service(service, name="dashboard")
    driver.start()
    session.start()
    child = None
    times_file = Path(os.environ["EARMARK_HOME"]) / f"frames-{time.monotonic_ns()}.txt"
    cpu_children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if display is not None:
        child = subprocess.Popen(
            [sys.executable, "-m", "earmark.ui.dashboard", "--frame", service.writer.name,
             "--commands", str(service.inbox.path), "--seconds", str(seconds + 2),
             "--frame-times", str(times_file), "--pointer", "1910,1070"],
            env=dict(os.environ, DISPLAY=display),
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(2.0)  # the window is up before the measurement starts
    engine.post("reset_meters")
    callbacks0, xruns0 = engine.callbacks, engine.xruns
    x_cpu0 = cpu_of(xvfb_pid) if xvfb_pid else 0.0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(3.0)
        engine.post("select", "toggle")
    callbacks = engine.callbacks - callbacks0
    xruns = engine.xruns - xruns0
    n = min(callbacks, len(engine.timings_ns))
    pos = engine.callbacks % len(engine.timings_ns)
    ring = np.roll(engine.timings_ns, -pos)[-n:] / 1000.0  # the measured stretch only
    ticks = service.tick_costs_us.copy()
    x_cpu = (cpu_of(xvfb_pid) - x_cpu0) / seconds if xvfb_pid else 0.0
    session.stop()
    out = {
        "name": "with dashboard" if display else "without dashboard",
        "us": ring,
        "callbacks": callbacks,
        "xruns": xruns,
        "seconds": seconds,
        "tick_us": ticks,
    }
    if child is not None:
        child.wait(30)
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (cpu.ru_utime - cpu_children0.ru_utime) + (cpu.ru_stime - cpu_children0.ru_stime)
        frames = np.loadtxt(times_file, ndmin=2)  # per frame: total ms, Python update ms
        out.update(
            frames_ms=frames[:, 0],
            update_ms=frames[:, 1],
            dash_cpu=used / (seconds + 4.0),
            fps=len(frames) / (seconds + 2),
            xvfb_cpu=x_cpu,
        )
    return out


def report(period: int, rows: list[dict], use_jack: bool) -> None:
    period_us = period / FS * 1e6
    driver = "JACK dummy server" if use_jack else "null sink (no JACK)"
    print(f"\n{driver}, {period} frames at {FS} Hz = {period_us:.0f} us per callback")
    print(
        f"{'condition':19} {'callbacks':>9} {'p50':>6} {'p99':>6} {'p99.9':>6} {'max':>6}"
        f" {'xruns':>6} {'tick p50/p99 us':>16} {'frame p50/p99 ms':>17} {'fps':>5} {'UI CPU':>6}"
        f" {'Xvfb CPU':>8}"
    )
    for r in rows:
        p50, p99, p999 = np.percentile(r["us"], [50, 99, 99.9])
        pct = [100 * v / period_us for v in (p50, p99, p999, r["us"].max())]
        t50, t99 = np.percentile(r["tick_us"], [50, 99])
        if "frames_ms" in r:
            f50, f99 = np.percentile(r["frames_ms"], [50, 99])
            ui = (
                f"{f50:8.1f} / {f99:5.1f} {r['fps']:5.0f} {100 * r['dash_cpu']:5.0f}%"
                f" {100 * r['xvfb_cpu']:7.0f}%"
            )
        else:
            ui = f"{'-':>17} {'-':>5} {'-':>6} {'-':>8}"
        print(
            f"{r['name']:19} {r['callbacks']:9d} {pct[0]:5.1f}% {pct[1]:5.1f}% {pct[2]:5.1f}%"
            f" {pct[3]:5.0f}% {r['xruns']:6d} {t50:7.0f} / {t99:6.0f} {ui}"
        )


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="per condition and round")
    ap.add_argument("--rounds", type=int, default=2, help="alternations of the two conditions")
    ap.add_argument("--period", type=int, default=64)
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the JACK server and Xvfb are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    xvfb, display = start_xvfb()
    use_jack = jack("start", args.period)
    rows: list[dict] = []
    try:
        for _ in range(args.rounds):
            rows.append(run(args.seconds, args.period, use_jack, None))
            rows.append(run(args.seconds, args.period, use_jack, display, xvfb.pid))
    finally:
        if use_jack:
            import sounddevice as sd

            sd._terminate()  # PortAudio's JACK client goes before its server
            jack("stop", args.period)
        xvfb.terminate()
        xvfb.wait(10)
    merged = []
    for name in ("without dashboard", "with dashboard"):
        rs = [r for r in rows if r["name"] == name]
        m = {
            "name": name,
            "us": np.concatenate([r["us"] for r in rs]),
            "callbacks": sum(r["callbacks"] for r in rs),
            "xruns": sum(r["xruns"] for r in rs),
            "tick_us": np.concatenate([r["tick_us"] for r in rs]),
        }
        if name == "with dashboard":
            m["frames_ms"] = np.concatenate([r["frames_ms"] for r in rs])
            m["update_ms"] = np.concatenate([r["update_ms"] for r in rs])
            m["xvfb_cpu"] = float(np.mean([r["xvfb_cpu"] for r in rs]))
            m["fps"] = float(np.mean([r["fps"] for r in rs]))
            m["dash_cpu"] = float(np.mean([r["dash_cpu"] for r in rs]))
        merged.append(m)
    report(args.period, merged, use_jack)
    upd = merged[1]["update_ms"]
    print(
        f"dashboard frame = read + update (Python) {np.percentile(upd, 50):.1f} / "
        f"{np.percentile(upd, 99):.1f} ms p50/p99 + drawing (the rest: Mesa software GL here)"
    )
    print("tick: the publisher's CPU time per 30 Hz tick in the audio process")
    print(f"({args.rounds} rounds of {args.seconds:g} s per condition, alternating)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
