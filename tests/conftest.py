"""Real parts for the test suite: a JACK server on the dummy backend.

``jack_server`` (session scope) starts one named jackd per test run with
``scripts/jackd-dummy`` (dummy backend, 48 kHz, 64-frame periods), hands the
tests a :class:`JackServer`, and stops it when the session ends. The name is
unique per run (``earmark-test-<pid>``), so concurrent runs and other servers on
the machine never meet. When jackd cannot start the tests that need it *fail*
with jackd's own words: CI installs jackd2 with ``scripts/bootstrap``, so a
missing server is a broken machine, not a reason to skip.

sounddevice and PortAudio: PortAudio looks for a JACK server once, when it
initialises, which sounddevice does at ``import sounddevice``. So:

* this file puts ``JACK_DEFAULT_SERVER=<the run's name>`` and
  ``JACK_NO_START_SERVER=1`` into ``os.environ`` as soon as pytest loads it,
  before any test module is imported (child processes inherit both; libjack
  never starts a default server of its own);
* once the server answers, the fixture re-initialises PortAudio
  (``sd._terminate(); sd._initialize()``) if sounddevice is already imported.

Tests may therefore ``import sounddevice as sd`` at module level or inside the
test, but must take the ``jack_server`` fixture before they query devices or
open a stream; device indices and ``Stream`` objects obtained before the
fixture ran are stale. Look the device up by host API:
``jack_server.device()`` gives the index of the JACK duplex device.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from earmark.engine.childproc import alive

ROOT = Path(__file__).resolve().parents[1]
JACKD_DUMMY = ROOT / "scripts" / "jackd-dummy"
JACK_HOSTAPI = "JACK Audio Connection Kit"
JACK_SAMPLE_RATE = 48000
JACK_PERIOD = 64
_TOOL_TIMEOUT_S = 10.0

# The VST3s scripts/bootstrap unpacks on Debian 12 (the Makefile exports the same
# path; this covers a bare `pytest`).
os.environ.setdefault("EARMARK_PLUGIN_PATH", str(ROOT / ".cache/plugins/usr/lib/vst3"))

# Nothing a test runs may write to the user's own earmark folders (the store,
# the control socket, caches): one throwaway home for the whole run; tests that
# need their own set EARMARK_HOME themselves.
os.environ["EARMARK_HOME"] = tempfile.mkdtemp(prefix="earmark-test-home-")
atexit.register(shutil.rmtree, os.environ["EARMARK_HOME"], True)

JACK_SERVER_NAME = f"earmark-test-{os.getpid()}"
os.environ["JACK_DEFAULT_SERVER"] = JACK_SERVER_NAME
os.environ["JACK_NO_START_SERVER"] = "1"
os.environ["JACK_NO_AUDIO_RESERVATION"] = "1"


class JackToolError(RuntimeError):
    """A JACK command-line tool (jack_lsp, jack_connect, ...) failed."""


def _run(*argv: str) -> str:
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=_TOOL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise JackToolError(f"{' '.join(argv)}: {e}") from e
    if proc.returncode != 0:
        said = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise JackToolError(
            f"{' '.join(argv)} exited with {proc.returncode}: {said[-1] if said else 'no output'}"
        )
    return proc.stdout


@dataclass
class JackServer:
    """A running JACK server and the jack_* tools to rewire it.

    Port names are ``client:port``. JACK's own hardware side is ``system``
    (``system:capture_1``/``_2`` feed silence, ``system:playback_1``/``_2``
    discard). PortAudio's client is ``PortAudio`` (``PortAudio-01``... for
    further PortAudio processes on the server). A stream registers
    ``PortAudio:in_<k>`` and ``PortAudio:out_<k>`` ports when it opens and
    connects them to ``system``; ``k`` counts on across the process's streams
    (a first stereo duplex stream gets in_0, in_1, out_0, out_1; the next one
    in_2, in_3, out_2, out_3), so find them with :meth:`ports`, never by a
    fixed name.
    """

    name: str
    sample_rate: int
    period: int
    hostapi: str = JACK_HOSTAPI
    notes: list[str] = field(default_factory=list)

    def ports(self, pattern: str = "", *, direction: str | None = None) -> list[str]:
        """Port names matching regex ``pattern``; ``direction`` "input" or "output"."""
        if direction not in (None, "input", "output"):
            raise ValueError(f"direction must be None, 'input' or 'output', got {direction!r}")
        names: list[str] = []
        flags: dict[str, set[str]] = {}
        for line in _run("jack_lsp", "-p").splitlines():
            if not line.strip():
                continue
            if line[0].isspace():
                _, _, props = line.partition("properties:")
                flags[names[-1]] = {p for p in props.strip().split(",") if p}
            else:
                names.append(line.strip())
        return [
            n
            for n in names
            if re.search(pattern, n) and (direction is None or direction in flags.get(n, ()))
        ]

    def connections(self) -> dict[str, list[str]]:
        """Every port and the ports it is connected to (``jack_lsp -c``)."""
        out: dict[str, list[str]] = {}
        port = ""
        for line in _run("jack_lsp", "-c").splitlines():
            if not line.strip():
                continue
            if line[0].isspace():
                out[port].append(line.strip())
            else:
                port = line.strip()
                out[port] = []
        return out

    def connect(self, src: str, dst: str) -> None:
        """Connect output port ``src`` to input port ``dst`` (already connected is fine)."""
        if dst in self.connections().get(src, []):
            return
        _run("jack_connect", src, dst)

    def disconnect(self, src: str, dst: str) -> None:
        """Disconnect ``src`` from ``dst`` (not connected is fine)."""
        if dst not in self.connections().get(src, []):
            return
        _run("jack_disconnect", src, dst)

    def loopback(self, client: str = "PortAudio") -> list[tuple[str, str]]:
        """Wire ``client``'s outputs to its own inputs, one to one, and nothing else in.

        Returns the (output, input) pairs. What the client plays comes back to
        it a whole number of periods later (two for a PortAudio stream).
        """
        outs = self.ports(f"^{re.escape(client)}:", direction="output")
        ins = self.ports(f"^{re.escape(client)}:", direction="input")
        if not outs or len(outs) != len(ins):
            raise JackToolError(
                f"client {client!r} has outputs {outs} and inputs {ins}; cannot loop back"
            )
        wired = self.connections()
        for dst in ins:
            for src in [s for s, dsts in wired.items() if dst in dsts]:
                self.disconnect(src, dst)
        pairs = list(zip(outs, ins, strict=True))
        for src, dst in pairs:
            self.connect(src, dst)
        return pairs

    def device(self) -> int:
        """sounddevice index of the JACK duplex device (``system``)."""
        import sounddevice as sd

        for api in sd.query_hostapis():
            if api["name"] == self.hostapi:
                for index in api["devices"]:
                    dev = sd.query_devices(index)
                    if dev["max_input_channels"] > 0 and dev["max_output_channels"] > 0:
                        return index
                raise JackToolError(f"{self.hostapi} has no duplex device: {api}")
        raise JackToolError(
            f"PortAudio has no host API {self.hostapi!r} "
            f"(it has {[a['name'] for a in sd.query_hostapis()]}); "
            "was sounddevice initialised before the server started?"
        )

    def note(self, text: str) -> None:
        """A line for the end-of-run summary (measured delays, xrun counts...)."""
        self.notes.append(text)


def _reinitialise_portaudio() -> None:
    """Make an already-imported sounddevice enumerate host APIs again."""
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


def _answers() -> bool:
    """The run's server answers jack_lsp."""
    try:
        _run("jack_lsp")
    except JackToolError:
        return False
    return True


def _stop_servers_of_dead_runs() -> None:
    """A test run killed hard leaves its server behind; stop those (ours only)."""
    rundir = Path(os.environ.get("EARMARK_JACK_RUNDIR", f"/tmp/earmark-jackd-{os.getuid()}"))
    for pidfile in rundir.glob("earmark-test-*.pid"):
        name = pidfile.stem
        owner = name.rsplit("-", 1)[-1]
        if owner.isdigit() and int(owner) != os.getpid() and not alive(int(owner)):
            subprocess.run([str(JACKD_DUMMY), "stop", name], capture_output=True, check=False)


_SERVERS: list[JackServer] = []


@pytest.fixture(scope="session")
def jack_server() -> Iterator[JackServer]:
    """The run's JACK dummy server (48 kHz, 64 frames), started on first use."""
    _stop_servers_of_dead_runs()
    argv = [str(JACKD_DUMMY), "start", JACK_SERVER_NAME, str(JACK_SAMPLE_RATE), str(JACK_PERIOD)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(
            f"JACK dummy server could not start ({e}); run scripts/bootstrap", pytrace=False
        )
    if proc.returncode != 0:
        pytest.fail(
            f"JACK dummy server {JACK_SERVER_NAME!r} could not start "
            f"(scripts/jackd-dummy exit {proc.returncode}):\n{proc.stderr.strip()}\n"
            "jackd comes from the Debian package jackd2: run scripts/bootstrap",
            pytrace=False,
        )
    server = JackServer(JACK_SERVER_NAME, JACK_SAMPLE_RATE, JACK_PERIOD)
    server.note(proc.stdout.strip())
    _SERVERS.append(server)
    _reinitialise_portaudio()
    try:
        yield server
    finally:
        # Close PortAudio's JACK client before its server goes away, but only
        # while the server still answers: PortAudio's JACK backend deadlocks
        # closing a stream whose server has died.
        sd = sys.modules.get("sounddevice")
        if sd is not None and _answers():
            sd._terminate()
        else:
            sd = None
        subprocess.run(
            [str(JACKD_DUMMY), "stop", JACK_SERVER_NAME], capture_output=True, check=False
        )
        if sd is not None:
            sd._initialize()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for server in _SERVERS:
        if server.notes:
            terminalreporter.section(f"JACK server {server.name}", sep="-")
            for line in server.notes:
                terminalreporter.write_line(line)
