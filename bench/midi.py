"""MIDI surface: control-to-audible latency, and audio xruns during a 10,000 msg/s flood.

    .venv/bin/python bench/midi.py [--seconds 20] [--presses 300]

Starts a named JACK server (dummy backend, 48 kHz, 64 frames) and, in this one
process, a live session: the engine streams through PortAudio on that server
(the dry mix, the mix through gentle-master, a reference), with a
ControllerSurface on the nanoKONTROL2 map listening to a virtual JACK MIDI
port that plays the controller.

1. Latency: the Cycle button (A/B) pressed ``--presses`` times, 20 ms apart;
   each is timed from just before ``send_message`` to the block boundary where
   the engine applies the ``select`` command (the crossfade's target changes),
   for both deliveries (a reader thread draining rtmidi's queue, and rtmidi's
   callback, which with JACK runs inside the JACK process cycle).
2. Flood: a separate process (so its own Python does not share our GIL, as a
   hardware controller would not) sends 10,000 messages a second — fader
   sweeps, A/B presses, SysEx, malformed messages — for ``--seconds``; the
   engine's xruns (PortAudio status flags) and callback times are compared with
   the same session without MIDI.

3. ``--close-race SECONDS`` (only this): the SIGSEGV of issue 16. A controller
   plugged and unplugged, and a surface's two ports joined and let go, as fast as
   possible, while a third client changes the graph without pause; in child
   processes, so a crash is counted, not fatal. "close" is what the surface did
   before (python-rtmidi ``close_port``/``delete``: libjack unregisters the port
   while its notification thread may be walking the port list); "keep" is what it
   does now (ports registered once, joined and left by name). Three runs of each.

Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JACKD = ROOT / "scripts" / "jackd-dummy"
SERVER = f"earmark-bench-midi-{os.getpid()}"
FS = 48000
PERIOD = 64
PORT = "nanoKONTROL2 MIDI 1"

os.environ.update(
    JACK_DEFAULT_SERVER=SERVER, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1"
)

import numpy as np

FLOOD = textwrap.dedent(
    """
    import sys, time, rtmidi
    seconds, port = float(sys.argv[1]), sys.argv[2]
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="flood")
    out.open_virtual_port(port)
    sysex = [0xF0, 0x42, 0x40, 0x00, 0x01, 0x13, 0x00, 0x1F, 0x12, 0xF7]
    batch = [[0xB0, 0, (k * 13) % 128] for k in range(40)]
    batch += [[0xB0, 46, 127 if k % 2 == 0 else 0] for k in range(20)]
    batch += [sysex] * 10 + [[0x90, 60]] * 5 + [[0x40, 0x40]] * 5 + [[0xB5, 99, 1]] * 20
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        for m in batch:
            out.send_message(m)
        n += 1
        delay = start + n * 0.01 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(n * len(batch), flush=True)
    time.sleep(0.5)
    """
)


CLOSE_RACE = textwrap.dedent(
    """
    import sys, threading, time
    import rtmidi
    from earmark.ui.midi.ports import jack_graph, open_jack_end
    J = rtmidi.API_UNIX_JACK
    mode, seconds = sys.argv[1], float(sys.argv[2])
    graph = jack_graph()
    churn_out = open_jack_end("out", "churn", "c")
    churn_in = open_jack_end("in", "churn-sink", "s")
    def churn():
        while True:
            graph.connect(churn_out.port, churn_in.port)
            graph.disconnect_all(churn_in.port)
    threading.Thread(target=churn, daemon=True).start()
    if mode == "keep":
        ctl_out = open_jack_end("out", "ctl", "ctl")
        ctl_in = open_jack_end("in", "ctl-leds", "ctl")
        s_in = open_jack_end("in", "surface-in", "in", 16384)
        s_out = open_jack_end("out", "surface-out", "leds")
    else:
        s_in = rtmidi.MidiIn(J, name="surface-in", queue_size_limit=16384)
        s_out = rtmidi.MidiOut(J, name="surface-out")
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        if mode == "keep":  # plugged, joined, unplugged: connections only
            graph.connect(ctl_out.port, s_in.port)
            graph.connect(s_out.port, ctl_in.port)
            graph.disconnect_all(ctl_out.port)
            graph.disconnect_all(ctl_in.port)
        else:  # the controller's ports come and go; the surface opens and closes its own
            ctl_out = rtmidi.MidiOut(J, name="ctl")
            ctl_out.open_virtual_port("ctl")
            ctl_in = rtmidi.MidiIn(J, name="ctl-leds")
            ctl_in.open_virtual_port("ctl")
            s_in.open_port(s_in.get_ports().index("ctl:ctl"), "in")
            s_out.open_port(s_out.get_ports().index("ctl-leds:ctl"), "leds")
            ctl_out.delete()
            ctl_in.delete()
            s_in.close_port()
            s_out.close_port()
        n += 1
        print(n, flush=True)
    """
)


def close_race(seconds: float) -> None:
    """Cycles each child lived through, and how it ended, for both ways of letting go."""
    print(f"close race: {seconds:g} s per run, the graph changing without pause")
    print(f"{'mode':8} {'run':>4} {'cycles':>8} {'ended':>22}")
    env = {**os.environ, "JACK_DEFAULT_SERVER": SERVER, "JACK_NO_START_SERVER": "1"}
    for mode in ("close", "keep"):
        for run in range(3):
            proc = subprocess.run(
                [sys.executable, "-c", CLOSE_RACE, mode, str(seconds)],
                capture_output=True, text=True, env=env, timeout=seconds + 60, check=False,
            )  # fmt: skip
            counts = [line for line in proc.stdout.split() if line.isdigit()]
            code = proc.returncode
            ended = "ok" if code == 0 else f"signal {-code} (SIGSEGV)" if code == -11 else code
            print(f"{mode:8} {run + 1:4d} {counts[-1] if counts else '0':>8} {ended!s:>22}")


def jack(cmd: str) -> None:
    subprocess.run(
        [str(JACKD), cmd, SERVER, str(FS), str(PERIOD)], check=True, stdout=subprocess.DEVNULL
    )


def make_engine():
    from earmark.engine.chains import build_chain, load_chain
    from earmark.engine.engine import Engine, Path
    from earmark.engine.sources import Player

    sys.path.insert(0, str(ROOT / "tests"))
    from synth import music_like

    mix = music_like(10, FS).astype(np.float32)
    master = np.clip(mix * 3.0, -0.9, 0.9).astype(np.float32)

    class TimedEngine(Engine):
        """The real engine, noting when each A/B command lands (bench only)."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.applied_ns = np.zeros(100_000, dtype=np.int64)
            self.applied = 0

        def _apply(self, cmd):
            super()._apply(cmd)
            if cmd[0] == "select" and self.applied < len(self.applied_ns):
                self.applied_ns[self.applied] = time.monotonic_ns()
                self.applied += 1

    paths = [
        Path("mix (dry)", Player(mix, "mix")),
        Path(
            "mix -> gentle-master",
            Player(mix, "mix"),
            build_chain(load_chain("gentle-master"), FS, 2),
        ),
        Path("loud master", Player(master, "master")),
    ]
    return TimedEngine(FS, paths, a=1, b=2)


def session_on_jack(delivery: str | None):
    import sounddevice as sd

    sd._terminate()
    sd._initialize()
    from earmark.engine.drivers import SoundDeviceDriver
    from earmark.live.session import LiveSession
    from earmark.ui.midi import ControllerSurface, load_map

    engine = make_engine()
    device = next(
        i
        for i, d in enumerate(sd.query_devices())
        if "JACK" in sd.query_hostapis(d["hostapi"])["name"] and d["max_output_channels"] >= 2
    )
    driver = SoundDeviceDriver(engine, device=device, blocksize=PERIOD, channels=(2, 2))
    driver.start()
    session = LiveSession(engine, driver, say=None)
    surface = None
    if delivery is not None:
        surface = ControllerSurface(load_map("korg-nanokontrol2"), delivery=delivery)
        session.add_service(surface)
    session.start()
    return engine, session, surface


def wait(check, timeout=5.0):
    end = time.monotonic() + timeout
    while not check() and time.monotonic() < end:
        time.sleep(0.01)
    return check()


def latency(delivery: str, presses: int) -> np.ndarray:
    import rtmidi

    ctl = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="bench-ctl")
    ctl.open_virtual_port(PORT)
    engine, session, surface = session_on_jack(delivery)
    try:
        assert wait(lambda: surface.connected), surface.status
        time.sleep(1.0)
        sent = np.zeros(presses, dtype=np.int64)
        start = engine.applied
        for k in range(presses):
            sent[k] = time.monotonic_ns()
            ctl.send_message([0xB0, 46, 127])
            ctl.send_message([0xB0, 46, 0])
            time.sleep(0.02)
        wait(lambda: engine.applied - start >= presses, 2.0)
        got = engine.applied_ns[start : start + presses]
        return (got - sent[: len(got)]) / 1e6
    finally:
        session.stop()
        ctl.close_port()
        ctl.delete()


def xruns(delivery: str | None, seconds: float, flood: bool) -> dict:
    sender = None
    if flood:
        sender = subprocess.Popen(
            [sys.executable, "-c", FLOOD, str(seconds), PORT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert sender.stdout.readline().strip() == "ready"
    engine, session, surface = session_on_jack(delivery)
    try:
        if surface is not None and flood:
            assert wait(lambda: surface.connected), surface.status
        time.sleep(1.0)
        x0, n0 = engine.xruns, engine.callbacks
        if sender is not None:
            sender.stdin.write("go\n")
            sender.stdin.flush()
        time.sleep(seconds)
        x1, n1 = engine.xruns, engine.callbacks
        sent = int(sender.stdout.readline()) if sender is not None else 0
        n = min(n1, len(engine.timings_ns))
        last = (n1 - n0) if n1 - n0 < n else n
        recent = np.roll(engine.timings_ns, -(n1 % len(engine.timings_ns)))[-last:] / 1000.0
        c = surface.counters if surface is not None else None
        return {
            "run": (
                f"{'flood' if flood else 'idle'}, "
                + ("no surface" if delivery is None else f"surface ({delivery})")
            ),
            "xruns": x1 - x0,
            "blocks": n1 - n0,
            "p50": float(np.percentile(recent, 50)),
            "p99": float(np.percentile(recent, 99)),
            "max": float(recent.max()),
            "sent": sent,
            "seen": c.messages if c else 0,
            "posted": c.posted if c else 0,
        }
    finally:
        session.stop()
        if sender is not None:
            sender.wait(timeout=10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="per flood/idle run")
    ap.add_argument("--presses", type=int, default=300)
    ap.add_argument("--close-race", type=float, metavar="SECONDS", help="only the close race")
    args = ap.parse_args()
    jack("start")
    if args.close_race:
        try:
            close_race(args.close_race)
        finally:
            jack("stop")
        return 0
    try:
        print(f"JACK dummy server, {FS} Hz, {PERIOD} frames ({PERIOD / FS * 1e3:.2f} ms)")
        print("\ncontrol-to-audible: MIDI message sent -> engine applies the A/B command")
        print(f"{'delivery':12} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for delivery in ("poll", "callback"):
            ms = latency(delivery, args.presses)
            p50, p99 = np.percentile(ms, [50, 99])
            print(f"{delivery:12} {len(ms):5d} {p50:8.2f} {p99:8.2f} {ms.max():8.2f}")
        print(f"\naudio while the controller floods 10,000 msg/s ({args.seconds:g} s each)")
        print(
            f"{'run':28} {'blocks':>7} {'xruns':>6} {'xruns/s':>8} {'cb p50 us':>10}"
            f" {'cb p99 us':>10} {'cb max us':>10} {'sent':>7} {'seen':>7} {'to engine':>9}"
        )
        for delivery, flood in ((None, False), ("poll", False), (None, True), ("poll", True),
                                ("callback", True)):  # fmt: skip
            r = xruns(delivery, args.seconds, flood)
            print(
                f"{r['run']:28} {r['blocks']:7d} {r['xruns']:6d} {r['xruns'] / args.seconds:8.2f}"
                f" {r['p50']:10.0f} {r['p99']:10.0f} {r['max']:10.0f} {r['sent']:7d}"
                f" {r['seen']:7d} {r['posted']:9d}"
            )
    finally:
        import sounddevice as sd

        sd._terminate()
        jack("stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
