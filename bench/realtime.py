"""Real-time soak: the live engine on a JACK dummy server, against a plain-copy floor.

    .venv/bin/python bench/realtime.py [--seconds 600] [--floor-seconds 60] [--periods 64,32]
        [--services] [--no-isolate] [--python-callback] [--codec-monitor NAME [--rounds N]]

For each period size it starts a named JACK server (dummy backend, 48 kHz),
then runs in this one process:

1. the floor: a sounddevice duplex stream whose callback only copies input to
   output (the dummy driver itself misses deadlines on a VM; this is the
   baseline those misses set);
2. earmark: the demo session (dry mix, mix through the default chain, the
   aggressive master as reference; the chain is pedalboard's compressor, high
   shelf and limiter plus ZamCompX2 where the VST3 is installed), the full
   MeterBank on every path, A/B toggled every 3 s;
3. the same with the services `earmark demo` runs beside the audio in the same
   process (``--services``): live flags on every path (detectors in their worker
   process), the session log and snapshots into SQLite, the control socket, the
   dashboard's state frame (no window) and a MIDI controller (generic map, JACK
   MIDI ports). Their Python work competes with the callback for the GIL: this
   row measures what that costs. EARMARK_BENCH_SERVICES=flags,record,dashboard,midi
   picks a subset; ``platform`` (not in the default) adds the platform monitor
   (earmark.live.platform_monitor, playing as Spotify).
4. with ``--codec-monitor NAME``: the demo session without and with the live codec
   monitor (engine.codec_host: the mix through NAME in its own process, the codec
   stage in the callback), interleaved ``--rounds`` times (default 2) so that the
   machine's load drifts over both alike; each row with the monitor says how many
   blocks it played clean because its host was late.

The chain runs in its own host process, as earmark's live commands run it by
default, so every path can run in the engine's native callback (machine code
that never takes the GIL; see ``engine.native``), and it does unless
``--python-callback`` keeps sounddevice's Python callback. ``--no-isolate``
hosts the chain in the audio process (the Python callback, necessarily). Each
row names the callback it ran.

During each earmark run a witness (the plain-copy client again, in its own
process) streams on the same server. JACK tells every client about every xrun,
so the flags cannot say who missed a deadline; the two clients' callback start
times can (see ``attribute_xruns``).

It prints callback duration p50/p99/p99.9/max as a share of the period, xruns
(PortAudio status flags) per run and per minute, how many of them earmark
caused (its callback overran, or it could not start while the witness could),
CPU use and RSS at start and end. All of these cover every callback after a
5 s warm-up; the warm-up's worst callback and xruns are printed apart. Nothing
is asserted.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JACKD = ROOT / "scripts" / "jackd-dummy"
# The witness process (see Witness) inherits the server's name.
SERVER = os.environ.get("EARMARK_BENCH_SERVER") or f"earmark-bench-{os.getpid()}"
FS = 48000
WARMUP_S = 5.0

os.environ.update(
    JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1"
)

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def process_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) another process of ours has used (0 when gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def jack(cmd: str, period: int) -> None:
    subprocess.run(
        [str(JACKD), cmd, SERVER, str(FS), str(period)], check=True, stdout=subprocess.DEVNULL
    )


def reinit_portaudio():
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    return sd


def jack_device(sd) -> int:
    for i, d in enumerate(sd.query_devices()):
        api = sd.query_hostapis(d["hostapi"])["name"]
        if "JACK" in api and d["max_input_channels"] >= 2 and d["max_output_channels"] >= 2:
            return i
    raise RuntimeError("PortAudio sees no JACK device")


def copy_client(seconds: float, period: int) -> dict:
    """A sounddevice duplex stream whose callback only copies input to output:
    each callback's start (perf_counter_ns), duration and which were flagged."""
    sd = reinit_portaudio()
    n_max = int(seconds * FS / period) + 1000
    times = np.zeros(n_max, dtype=np.int64)
    starts = np.zeros(n_max, dtype=np.int64)
    state = {"n": 0, "xruns": 0}
    flagged = np.zeros(n_max, dtype=np.int64)
    clock = time.perf_counter_ns

    def callback(indata, outdata, frames, _t, status):
        t0 = clock()
        if status:
            flagged[min(state["xruns"], n_max - 1)] = state["n"]
            state["xruns"] += 1
        outdata[:] = indata
        i = state["n"]
        if i < n_max:
            starts[i] = t0
            times[i] = clock() - t0
        state["n"] = i + 1

    with sd.Stream(
        device=jack_device(sd),
        samplerate=FS,
        blocksize=period,
        channels=2,
        dtype="float32",
        callback=callback,
    ):
        time.sleep(seconds)
    n = min(state["n"], n_max)
    return {
        "us": times[:n] / 1000.0,
        "starts": starts[:n],
        "xruns": state["xruns"],
        "xrun_at": flagged[: min(state["xruns"], n_max)],
        "callbacks": state["n"],
    }


def floor_run(seconds: float, period: int) -> dict:
    cpu0, rss0 = cpu_s(), rss_mb()
    r = copy_client(seconds, period)
    r.update(name="plain copy (floor)", cpu=(cpu_s() - cpu0) / seconds, rss=(rss0, rss_mb()))
    return r


class Witness:
    """The plain-copy client in its own process, on the same server, during an earmark run.

    JACK tells every client about every xrun, so the flags alone cannot say who
    missed the deadline. The witness's callback start times can: when earmark's
    callback started late and the witness's did not, the delay was in earmark's
    process (the GIL, its threads); when both stalled together, it was the
    server or the machine.
    """

    def __init__(self, seconds: float, period: int) -> None:
        import tempfile

        self.out = Path(tempfile.mkdtemp(prefix="earmark-witness-")) / "witness.npz"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--witness", str(seconds), str(period), str(self.out)],
            env={**os.environ, "EARMARK_BENCH_SERVER": SERVER},
        )

    def result(self) -> dict:
        self.proc.wait(timeout=60)
        with np.load(self.out) as f:
            return {k: f[k] for k in f.files}


def _witness_main(seconds: float, period: int, out: str) -> int:
    r = copy_client(seconds, period)
    np.savez(out, starts=r["starts"], xrun_at=r["xrun_at"])
    return 0


def earmark_run(
    seconds: float,
    period: int,
    services: bool = False,
    isolate: bool = False,
    native: bool | None = None,
    codec: str | None = None,
) -> dict:
    reinit_portaudio()
    import sounddevice as sd

    from earmark.engine.drivers import SoundDeviceDriver
    from earmark.live import audio as live

    chain = "bench" if _write_bench_chain() else "gentle-master"
    engine = live.demo_engine(
        FS,
        chain=str(_BENCH_CHAIN) if chain == "bench" else chain,
        blocksize=period,
        isolate=isolate,
    )
    monitor = None
    if codec:
        from earmark.live.codec_monitor import attach_codec_monitor

        monitor = attach_codec_monitor(engine, codec, period)  # heard decoded
    driver = SoundDeviceDriver(
        engine, device=jack_device(sd), blocksize=period, channels=(2, 2), native=native
    )
    session = None
    if services:
        import tempfile

        os.environ["EARMARK_HOME"] = tempfile.mkdtemp(prefix="earmark-bench-home-")
        from earmark.live.flags import FlagService
        from earmark.live.recorder import record_live
        from earmark.live.session import LiveSession

        session = LiveSession(engine, driver, name="bench", say=None)
        which = os.environ.get("EARMARK_BENCH_SERVICES", "flags,record,dashboard,midi").split(",")
        if "flags" in which:
            session.add_service(FlagService(None, befores={1: 0, 2: 0}), name="flags")
        if "record" in which:
            record_live(session, "demo")
        if "dashboard" in which:
            from earmark.live.publisher import DashboardService

            session.add_service(DashboardService(), name="dashboard")  # the frame, no window
        if "midi" in which:
            from earmark.cli.midi import load_surfaces

            for surface in load_surfaces(["generic"]) or []:
                session.add_service(surface, name="midi")
        if "platform" in which:  # A and B as Spotify plays them: a gains command at 10 Hz
            from earmark.live.platform_monitor import PlatformMonitor

            session.add_service(PlatformMonitor("spotify"), name="platform monitor")
    witness = Witness(seconds + 10.0, period)
    time.sleep(2.0)  # the witness's stream is up before earmark's
    cpu0, rss0 = cpu_s(), rss_mb()
    if session is not None:
        session.start()  # services first, then the driver (as `earmark demo` does)
    else:
        driver.start()
    start = time.monotonic()
    rss_warm = None
    toggles = 0
    # The engine keeps the last 65,536 callback durations (87 s at 64 frames): copy
    # them out as the soak goes, so the percentiles cover all of it.
    ring, start_ring = engine.timings_ns, engine.starts_ns
    every = np.zeros(int(seconds * FS / period * 1.1) + 10_000, dtype=np.int64)
    starts = np.zeros_like(every)
    copied = 0

    def collect() -> int:
        done = min(engine.callbacks, len(every))
        rows = np.arange(copied, done) & (len(ring) - 1)
        every[copied:done] = ring[rows]
        starts[copied:done] = start_ring[rows]
        return done

    try:
        while (elapsed := time.monotonic() - start) < seconds:
            time.sleep(3.0)
            engine.post("select", "toggle")
            toggles += 1
            engine.after_callback()
            copied = collect()
            if rss_warm is None and elapsed > 10:
                rss_warm = rss_mb()
    finally:
        if session is not None:
            session.stop()  # stops the driver too
        else:
            driver.stop()
        # Blocks a path played as silence: an isolated host that was late (or a chain
        # that failed). Each is a dropout on that path that no xrun flag shows.
        muted = sum(path.muted_blocks for path in engine.paths)
        for path in engine.paths:  # an isolated chain's host process
            getattr(path.chain, "close", lambda: None)()
        codec_text = ""
        if monitor is not None:
            host_cpu = process_cpu_s(monitor.pid) / max(time.monotonic() - start, 1e-9)
            codec_text = (
                f", codec {codec} ({monitor.fallbacks} clean, host {100 * host_cpu:.0f}% CPU)"
            )
            monitor.close()
    copied = collect()
    xrun_ring = engine.xrun_callbacks
    kept = min(engine.xruns, len(xrun_ring))
    return {
        "name": f"earmark ({len(engine.paths)} paths, chain {chain}, A/B x{toggles})"
        + (", isolated" if isolate else "")
        + f", {driver.callback_kind} callback"
        + (" + services" if services else "")
        + codec_text,
        "us": every[:copied] / 1000.0,
        "starts": starts[:copied].copy(),
        "witness": witness.result(),
        "xruns": engine.xruns,
        "xrun_at": np.sort(xrun_ring[:kept]),
        "callbacks": engine.callbacks,
        "muted": muted,
        "cpu": (cpu_s() - cpu0) / seconds,
        "rss": (rss_warm or rss0, rss_mb()),
    }


_BENCH_CHAIN = ROOT / ".cache" / "bench-chain.toml"


def _write_bench_chain() -> bool:
    """The default chain plus ZamCompX2 when the VST3 is installed."""
    from earmark.engine.plugins import default_search_path, find_bundles

    if not any(b.name.startswith("ZamCompX2") for b in find_bundles(default_search_path())):
        return False
    _BENCH_CHAIN.parent.mkdir(parents=True, exist_ok=True)
    preset = (ROOT / "presets" / "chains" / "gentle-master.toml").read_text()
    preset = preset.replace('name = "gentle master"', 'name = "bench: gentle master + ZamCompX2"')
    preset += '\n[[plugin]]\nvst3 = "ZamCompX2"\nthreshold_db = -20.0\nratio = 2.0\n'
    _BENCH_CHAIN.write_text(preset)
    return True


def attribute_xruns(r: dict, period: int, first: int = 0) -> tuple[int, int]:
    """How many xruns earmark caused: (overran, started late alone).

    PortAudio flags the callback *after* the cycle that missed its deadline.
    "overran": the callback before the flag ran longer than the period. "late
    alone": one of the last three gaps between callback starts was over 1.5
    periods (the callback could not start in time) while the witness client kept
    starting through it, so the delay was in earmark's process (the GIL, its own
    threads). The rest were the server's or the machine's: the witness stalled
    with earmark, or nothing was late on earmark's side at all.
    """
    us, starts, witness = r["us"], r["starts"], r.get("witness")
    p_ns = period / FS * 1e9
    overran = alone = 0
    for c in (int(c) for c in r["xrun_at"]):
        if not max(first, 1) <= c < len(us):
            continue
        if us[c - 1] > p_ns / 1000.0:
            overran += 1
            continue
        if witness is None or c < 4:
            continue
        gaps = np.diff(starts[c - 3 : c + 1])
        k = int(np.argmax(gaps))
        if gaps[k] <= 1.5 * p_ns:
            continue
        a, b = starts[c - 3 + k], starts[c - 2 + k]
        w = witness["starts"]
        inside = np.count_nonzero((w > a) & (w < b))
        if inside >= 0.5 * (b - a) / p_ns:  # the witness kept its pace: ours alone
            alone += 1
    return overran, alone


def report(period: int, rows: list[dict]) -> None:
    period_us = period / FS * 1e6
    print(f"\nperiod {period} frames at {FS} Hz = {period_us:.0f} us")
    print(
        f"{'run':78} {'callbacks':>9} {'p50':>6} {'p99':>6} {'p99.9':>6} {'max':>7}"
        f" {'xruns':>6} {'/min':>5} {'own':>4} {'late':>4} {'muted':>5} {'CPU':>5}"
        f" {'RSS MB start->end':>18}"
    )
    for r in rows:
        # Steady state: the first seconds hold each plugin's and kernel's first calls
        # and first-touched pages (their worst callback is printed apart).
        warm = min(len(r["us"]) // 2, int(WARMUP_S * FS / period))
        us = r["us"][warm:]
        r["warmup_max"] = float(r["us"][:warm].max()) if warm else 0.0
        p50, p99, p999 = np.percentile(us, [50, 99, 99.9])
        pct = [100 * v / period_us for v in (p50, p99, p999, us.max())]
        steady = int(np.count_nonzero(r["xrun_at"] >= warm))
        r["warmup_xruns"] = r["xruns"] - steady
        per_min = steady / ((r["callbacks"] - warm) * period / FS / 60.0)
        own, late = attribute_xruns(r, period, first=warm)
        print(
            f"{r['name']:78} {r['callbacks']:9d} {pct[0]:5.1f}% {pct[1]:5.1f}% {pct[2]:5.1f}%"
            f" {pct[3]:6.0f}% {steady:6d} {per_min:5.1f} {own:4d} {late:4d}"
            f" {r.get('muted', 0):5d}"
            f" {100 * r['cpu']:4.0f}%"
            f" {r['rss'][0]:8.1f} -> {r['rss'][1]:6.1f}"
        )
    print(
        "xruns caused by earmark: own = right after a callback that overran the period;\n"
        "late = right after a callback that started over half a period late while a\n"
        "witness copy client on the same server kept its pace (the GIL, earmark's own\n"
        "threads). The rest the server or the machine missed, as the floor's are.\n"
        "muted = blocks a path played as silence because its chain failed or its isolated\n"
        "host had not finished the block in time (a dropout on that path, not an xrun).\n"
        f"Percentiles, max and xruns cover every callback after the first {WARMUP_S:.0f} s"
        " (streams opening,\nplugins' first calls, JACK clients and ports joining the graph);"
        " in those seconds the\nworst callback and the xruns were: "
        + ", ".join(f"{100 * r['warmup_max'] / period_us:.0f}% / {r['warmup_xruns']}" for r in rows)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="earmark soak per period")
    ap.add_argument("--floor-seconds", type=float, default=60.0)
    ap.add_argument("--periods", default="64,32")
    ap.add_argument(
        "--services",
        action="store_true",
        help="also run with the session's services (flags, log, control) in the process",
    )
    ap.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="host the chain in its own process, as earmark demo and run do by default"
        " (pedalboard leaves the callback and its GIL); --no-isolate keeps it in the"
        " audio process, as their --no-isolate does",
    )
    ap.add_argument(
        "--python-callback",
        action="store_true",
        help="keep sounddevice's Python callback where the native one could run (an"
        " isolated chain leaves no plugin in the audio process, so the native callback runs"
        " unless this is given)",
    )
    ap.add_argument(
        "--codec-monitor",
        default=None,
        metavar="NAME",
        help="also soak with the live codec monitor on the output (engine.codec.LIVE_CODECS),"
        " interleaved with runs without it",
    )
    ap.add_argument(
        "--rounds", type=int, default=2, help="--codec-monitor: without/with pairs (default 2)"
    )
    ap.add_argument("--witness", nargs=3, help=argparse.SUPPRESS)  # SECONDS PERIOD OUT
    args = ap.parse_args()
    if args.witness:
        return _witness_main(float(args.witness[0]), int(args.witness[1]), args.witness[2])
    native = False if args.python_callback else None
    for period in (int(p) for p in args.periods.split(",")):
        jack("start", period)
        try:
            soak = args.seconds if period == 64 else min(args.seconds, 120.0)
            rows = [
                floor_run(args.floor_seconds, period),
                earmark_run(soak, period, isolate=args.isolate, native=native),
            ]
            if args.services:
                rows.append(
                    earmark_run(soak, period, services=True, isolate=args.isolate, native=native)
                )
            for _ in range(args.rounds if args.codec_monitor else 0):
                for codec in (None, args.codec_monitor):  # interleaved: without, with
                    rows.append(
                        earmark_run(soak, period, isolate=args.isolate, native=native, codec=codec)
                    )
        finally:
            # PortAudio's JACK client must go before its server (else it aborts at exit).
            import sounddevice as sd

            sd._terminate()
            jack("stop", period)
            sd._initialize()
        report(period, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
