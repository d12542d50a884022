"""Live sessions: wire sources, chains, the engine, a driver and a view together.

`earmark demo` streams the built-in mix through a chain (A) against its
aggressive automatic master (B), loudness-matched, with the dry mix metered
beside them. `earmark run` does the same with the live input and any number of
reference files. With no audio device the engine runs into a null sink at
real-time pace; with no display the terminal view shows it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence

from earmark.engine.drivers import AudioDriver, NullDriver, SoundDeviceDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import LiveInput, Player, load_player
from earmark.session import LiveSession

DEFAULT_CHAIN = "gentle-master"
_STATUS_SHOWN_S = 15.0  # how long the view's header shows the latest status line


def _chain(name_or_path: str, sample_rate: int, isolate: bool = False, blocksize: int = 64):
    """The chain for a path: in this process, or hosted in a child process (``isolate``)."""
    from earmark.engine.chains import build_chain, load_chain

    spec = load_chain(name_or_path)
    if isolate:
        from earmark.engine.isolated import IsolatedChain

        return IsolatedChain(spec, sample_rate, 2, block=blocksize, max_block=max(4096, blocksize))
    return build_chain(spec, sample_rate, 2)


def demo_engine(
    sample_rate: int = 48000,
    chain: str = DEFAULT_CHAIN,
    material_s: float = 30.0,
    blocksize: int = 64,
    isolate: bool = False,
    tap_seconds: float = 0.0,
) -> Engine:
    """The demo: the mix dry, the mix through ``chain`` (A), the aggressive master (B)."""
    from earmark.engine.demo import aggressive_master, demo_mix

    mix = demo_mix(material_s, sample_rate)
    master = aggressive_master(mix, sample_rate)
    paths = [
        Path("demo mix (dry)", Player(mix, "demo mix")),
        Path(
            f"mix -> {chain}",
            Player(mix, "demo mix"),
            _chain(chain, sample_rate, isolate, blocksize),
        ),
        Path("AI master (reference)", Player(master, "aggressive master")),
    ]
    return Engine(
        sample_rate, paths, a=1, b=2, max_block=max(4096, blocksize), tap_seconds=tap_seconds
    )


def run_engine(
    sample_rate: int,
    chain: str | None,
    references: Sequence[str],
    input_channels: Sequence[int] = (0, 1),
    blocksize: int = 64,
    isolate: bool = False,
    tap_seconds: float = 0.0,
) -> Engine:
    """Live input dry and through ``chain``, plus each reference file (decoded now)."""
    paths = [Path("input (dry)", LiveInput(input_channels))]
    if chain:
        paths.append(
            Path(
                f"input -> {chain}",
                LiveInput(input_channels),
                _chain(chain, sample_rate, isolate, blocksize),
            )
        )
    for ref in references:
        player = load_player(ref, sample_rate)
        fold = f" ({player.folded_from}-channel fold-down)" if player.folded_from else ""
        paths.append(Path(f"reference: {player.name}{fold}", player))
    a = 1 if chain else 0
    b = len(paths) - 1 if references else 0
    return Engine(
        sample_rate, paths, a=a, b=b, max_block=max(4096, blocksize), tap_seconds=tap_seconds
    )


def open_driver(
    engine: Engine,
    *,
    device: object = None,
    blocksize: int = 64,
    input_channels: int = 2,
    say: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    start: bool = True,
) -> AudioDriver:
    """A sounddevice stream on ``device`` (default device if None); a null sink if none opens.

    With ``start=False`` the device and settings are checked (PortAudio's format
    check) but nothing streams yet: :meth:`LiveSession.start` starts the driver
    once the session's services are up, so that their start-up (worker
    processes, MIDI ports joining the graph, the store) does not land on the
    first seconds of audio.
    """
    try:
        import sounddevice as sd

        if device is None and not len(sd.query_devices()):
            raise RuntimeError("no audio devices")
        driver: AudioDriver = SoundDeviceDriver(
            engine, device=device, blocksize=blocksize, channels=(input_channels, 2), on_event=say
        )
        if start:
            driver.start()
        else:
            dev_in, dev_out = device if isinstance(device, tuple) else (device, device)
            rate = engine.sample_rate
            if input_channels > 0:
                sd.check_input_settings(dev_in, input_channels, "float32", samplerate=rate)
            sd.check_output_settings(dev_out, 2, "float32", samplerate=rate)
        return driver
    except Exception as exc:
        if device is not None:
            raise
        say(f"earmark: no audio device ({_one_line(exc)}); streaming into a null sink in real time")
        driver = NullDriver(engine, blocksize=blocksize)
        if start:
            driver.start()
        return driver


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def stream_with_view(session: LiveSession, seconds: float | None, title: str) -> None:
    """Run the session with the terminal view; stop cleanly on q, Ctrl-C or timeout."""
    from earmark.ui.terminal import run_view

    engine, driver = session.engine, session.driver

    def header() -> str:
        lat_in, lat_out = driver.latency_s
        line = (
            f"{title} · {driver.name} {driver.status} · {engine.sample_rate} Hz / "
            f"{driver.blocksize} · latency {1e3 * (lat_in + lat_out):.1f} ms"
            f" + chains {1e3 * engine.chain_latency_samples / engine.sample_rate:.1f} ms"
        )
        recent = session.status[-1] if session.status else None
        if recent is not None and time.time() - recent.time < _STATUS_SHOWN_S:
            line += f" · {recent.text}"  # a crashed chain, a controller back, a snapshot
        return line

    session.run(
        view=lambda s: run_view(
            s.state, s.post, header, seconds=seconds, flags=lambda: s.flags, chains=s.chains
        )
    )


def describe_devices() -> list[dict]:
    """Every PortAudio device: index, name, host API, channels, default rate."""
    import sounddevice as sd

    apis = sd.query_hostapis()
    out = []
    for i, d in enumerate(sd.query_devices()):
        out.append(
            {
                "index": i,
                "name": d["name"],
                "hostapi": apis[d["hostapi"]]["name"],
                "inputs": d["max_input_channels"],
                "outputs": d["max_output_channels"],
                "default_samplerate": d["default_samplerate"],
                "default_input": i == sd.default.device[0],
                "default_output": i == sd.default.device[1],
            }
        )
    return out
