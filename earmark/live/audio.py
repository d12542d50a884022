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
from dataclasses import dataclass
from typing import Any

from earmark.engine.drivers import AudioDriver, NullDriver, SoundDeviceDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import LiveInput, Player, load_player
from earmark.errors import EarmarkError, one_line
from earmark.live.session import LiveSession

DEFAULT_CHAIN = "gentle-master"
DEFAULT_SAMPLE_RATE = 48000  # the null sink's, when no device gives its own
_DEVICES_HINT = "`earmark devices` lists the devices"
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
        sample_rate,
        paths,
        a=1,
        b=2,
        max_block=max(4096, blocksize),
        tap_seconds=tap_seconds,
        block=blocksize,
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
        sample_rate,
        paths,
        a=a,
        b=b,
        max_block=max(4096, blocksize),
        tap_seconds=tap_seconds,
        block=blocksize,
    )


class DeviceError(EarmarkError, RuntimeError):
    """An audio device that is not there, or that refuses the stream's settings.

    The message is one line naming the device and saying how to see the valid
    ones; the live commands print it and exit 3 (an input that is unavailable).
    """


@dataclass(frozen=True)
class AudioSetup:
    """Where a live session streams, checked before anything is rendered or loaded.

    ``device`` is what :class:`SoundDeviceDriver` takes (None for the default
    device, a name or an index, or an (input, output) pair); ``null_reason`` is
    set when there is no device to stream to, and says why (the null sink).
    """

    device: object
    sample_rate: int
    null_reason: str | None = None


def audio_setup(
    output: object = None,
    input: object = None,
    *,
    input_channels: int = 0,
    sample_rate: int | None = None,
) -> AudioSetup:
    """Check the devices a live command names, and the stream's rate and channels.

    ``sample_rate`` None takes the output device's own rate (a JACK server's
    rate), or DEFAULT_SAMPLE_RATE for the null sink. The null sink is chosen
    only when no device is named and there is none to use (no devices at all,
    or no default one). Everything else that is wrong raises
    :class:`DeviceError`: a named device that does not exist, and a rate or a
    channel count that the device refuses (never a silent switch to the null
    sink, which would leave the engineer listening to nothing).
    """
    named = input is not None or output is not None
    try:
        import sounddevice as sd

        count = len(sd.query_devices())
    except Exception as exc:  # PortAudio missing, or failing to initialise
        if named:
            raise DeviceError(f"cannot reach the audio devices: {one_line(exc)}") from None
        return AudioSetup(None, sample_rate or DEFAULT_SAMPLE_RATE, one_line(exc))
    if count == 0 and not named:
        return AudioSetup(None, sample_rate or DEFAULT_SAMPLE_RATE, "no audio devices")
    out_info = _device_info(sd, output, "output", count)
    in_info = _device_info(sd, input, "input", count) if input_channels > 0 else None
    missing = "output" if out_info is None else None
    if input_channels > 0 and in_info is None:
        missing = missing or "input"
    if missing is not None:
        if named:  # the other direction has no default: say which option names one
            raise DeviceError(
                f"there is no default {missing} device: name one with --{missing} ({_DEVICES_HINT})"
            )
        return AudioSetup(None, sample_rate or DEFAULT_SAMPLE_RATE, f"no default {missing} device")
    rate = sample_rate or int(round(out_info["default_samplerate"]))
    _check_settings(sd, output, out_info, "output", 2, rate)
    if in_info is not None:
        _check_settings(sd, input, in_info, "input", input_channels, rate)
    device = (input, output) if input_channels > 0 and named else output
    return AudioSetup(device, rate)


def _device_info(sd: Any, spec: object, kind: str, count: int) -> Any:
    """PortAudio's description of the ``kind`` device ``spec``; None for a missing default."""
    try:
        info = sd.query_devices(spec, kind)
    except (ValueError, sd.PortAudioError) as exc:
        if spec is None:
            return None
        if isinstance(spec, int):
            known = f"devices are numbered 0 to {count - 1}" if count else "there are no devices"
            cause = f"no such device ({known})"
        elif str(exc).startswith("Multiple"):  # sounddevice matches parts of names
            cause = f"several {kind} devices match it (give more of the name, or its number)"
        else:
            cause = f"no {kind} device matches it"
        raise DeviceError(f"{kind} device {spec!r}: {cause}; {_DEVICES_HINT}") from None
    if info[f"max_{kind}_channels"] < 1:
        raise DeviceError(f"{_who(sd, info, kind)} has no {kind} channels; {_DEVICES_HINT}")
    return info


def _check_settings(sd: Any, spec: object, info: Any, kind: str, channels: int, rate: int) -> None:
    """PortAudio's format check for one direction; DeviceError saying what was refused."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(spec, channels, "float32", samplerate=rate)
    except sd.PortAudioError as exc:
        who = _who(sd, info, kind)
        cause = str(exc.args[0]) if exc.args else one_line(exc)
        have = info[f"max_{kind}_channels"]
        if "sample rate" in cause.lower():
            default = int(round(info["default_samplerate"]))
            raise DeviceError(
                f"{who} refuses {rate} Hz; its own rate is {default} Hz (--samplerate "
                f"{default}, or leave --samplerate out to use it); {_DEVICES_HINT}"
            ) from None
        if "channels" in cause.lower() and channels > have:
            raise DeviceError(
                f"{who} has {have} {kind} channel(s), {channels} are needed; {_DEVICES_HINT}"
            ) from None
        raise DeviceError(
            f"{who} refuses {channels} {kind} channel(s) at {rate} Hz: {cause}; {_DEVICES_HINT}"
        ) from None


def _who(sd: Any, info: Any, kind: str) -> str:
    """'output device 0 'system' (JACK Audio Connection Kit)': what the user sees in devices."""
    try:
        api = sd.query_hostapis(info["hostapi"])["name"]
    except Exception:
        api = "?"
    return f"{kind} device {info['index']} {info['name']!r} ({api})"


def open_driver(
    engine: Engine,
    setup: AudioSetup,
    *,
    blocksize: int = 64,
    input_channels: int = 2,
    say: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
    start: bool = True,
) -> AudioDriver:
    """The driver for ``setup`` (see :func:`audio_setup`): a sounddevice stream, or the
    null sink when ``setup`` has no device.

    With ``start=False`` nothing streams yet: :meth:`LiveSession.start` starts the
    driver once the session's services are up, so that their start-up (worker
    processes, MIDI ports joining the graph, the store) does not land on the
    first seconds of audio.
    """
    driver: AudioDriver
    if setup.null_reason is not None:
        say(
            f"earmark: no audio device ({setup.null_reason}); "
            "streaming into a null sink in real time"
        )
        driver = NullDriver(engine, blocksize=blocksize)
    else:
        driver = SoundDeviceDriver(
            engine,
            device=setup.device,
            blocksize=blocksize,
            channels=(input_channels, 2),
            on_event=say,
        )
    if start:
        driver.start()
    return driver


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
        monitor = session.codec_monitor
        if monitor is not None:  # --codec-monitor: what is heard, its peaks and overs
            from earmark.ui.codec_text import codec_line

            line += "\n" + codec_line(monitor.codec.label, monitor.mode, monitor.readings())
        recent = session.status[-1] if session.status else None
        if recent is not None and time.time() - recent.time < _STATUS_SHOWN_S:
            line += f" · {recent.text}"  # a crashed chain, a controller back, a snapshot
        return line

    session.run(
        view=lambda s: run_view(
            s.state,
            s.post,
            header,
            seconds=seconds,
            flags=lambda: s.flags,
            chains=s.chains,
            platform=lambda: s.platform_monitor,
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
