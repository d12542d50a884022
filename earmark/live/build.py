"""The one place a live session is assembled: :func:`build_session`.

``earmark demo`` and ``earmark run`` (earmark.cli.live), the soak (bench/realtime.py)
and the tests describe the session they want with a :class:`SessionPlan`; this module
turns it into a started-ready :class:`~earmark.live.session.LiveSession`:

1. the engine and its paths (earmark.live.audio: the demo's dry mix, chain and master;
   or the live input, its chain and the reference files), chains isolated or not;
2. the driver (sounddevice, JACK through PortAudio, or the null sink), not started:
   the session starts it after its services;
3. the services, in the order they must stop in reverse: the session log, snapshots and
   control socket (earmark.live.recorder), the live flags (earmark.live.flags: the
   chains judged against the dry path), the MIDI surfaces, the platform monitor
   (earmark.live.platform_monitor: off unless ``platform_monitor`` names a platform).

The view (dashboard window or terminal) is attached when the session is shown
(earmark.live.publisher.show_session), because it decides how long the session runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from earmark.live.audio import AudioSetup

__all__ = ["SessionPlan", "befores_of", "build_session"]


@dataclass(frozen=True)
class SessionPlan:
    """What a live session is made of (the options of ``earmark demo`` / ``run``).

    ``setup`` is the checked device and rate (:func:`earmark.live.audio.audio_setup`);
    ``channels`` the 0-based input channels of ``run``; ``controllers`` the MIDI
    surfaces already loaded (:func:`earmark.cli.midi.load_surfaces`).
    """

    kind: Literal["demo", "run"]
    setup: AudioSetup
    chain: str | None = None
    references: Sequence[str] = ()
    channels: Sequence[int] = (0, 1)
    blocksize: int = 64
    isolate: bool = True
    clip_seconds: float = 0.0
    name: str | None = None
    profile: Any = None
    controllers: Sequence[Any] = field(default_factory=tuple)
    platform_monitor: str | None = None  # --platform-monitor NAME: A and B as it plays them
    codec_monitor: str | None = None  # a codec name (engine.codec.LIVE_CODECS), or None


def befores_of(plan: SessionPlan) -> dict[int, int]:
    """Which path each judged path is compared with (its BEFORE), by path index.

    demo: the chain (1) and the automatic master (2) against the dry mix (0);
    run: the chain (1), if there is one, against the dry input (0).
    """
    if plan.kind == "demo":
        return {1: 0, 2: 0}
    return {1: 0} if plan.chain else {}


def build_session(plan: SessionPlan, say: Callable[[str], None]) -> Any:
    """Assemble the engine, the driver and every service of a live session.

    Raises what building the engine raises (``ValueError`` for a bad chain or file,
    ``earmark.engine.files.AudioFileError`` for an unreadable reference,
    ``earmark.engine.isolated.IsolationError`` when a chain host cannot start,
    ``earmark.engine.codec_host.CodecMonitorError`` when the codec host cannot); the
    command line maps each to its exit code.
    """
    from earmark.engine.childproc import shield_resource_tracker
    from earmark.live import audio
    from earmark.live.flags import FlagService
    from earmark.live.recorder import record_live
    from earmark.live.session import LiveSession

    shield_resource_tracker()  # before the first shared memory (isolated chains, state frame)
    rate = plan.setup.sample_rate
    input_channels = 0
    if plan.kind == "demo":
        say(f"earmark: rendering the demo material at {rate} Hz ...")
        engine = audio.demo_engine(
            rate,
            plan.chain or audio.DEFAULT_CHAIN,
            blocksize=plan.blocksize,
            isolate=plan.isolate,
            tap_seconds=plan.clip_seconds,
        )
    else:
        input_channels = max(plan.channels) + 1
        engine = audio.run_engine(
            rate,
            plan.chain,
            list(plan.references),
            list(plan.channels),
            blocksize=plan.blocksize,
            isolate=plan.isolate,
            tap_seconds=plan.clip_seconds,
        )
        for path in engine.paths:
            if note := getattr(path.source, "note", ""):
                say(f"earmark: {path.name}: {note}")
    monitor = None
    if plan.codec_monitor:
        from earmark.live.codec_monitor import attach_codec_monitor

        say(f"earmark: starting the {plan.codec_monitor} codec monitor ...")
        monitor = attach_codec_monitor(engine, plan.codec_monitor, plan.blocksize)
    driver = audio.open_driver(
        engine,
        plan.setup,
        blocksize=plan.blocksize,
        input_channels=input_channels,
        say=say,
        start=False,  # the session starts it, after its services
    )
    session = LiveSession(engine, driver, name=plan.name, profile=plan.profile, say=say)
    # Services stop in reverse order: the flags finish first (programme flags judged
    # on the whole session), so the "session end" snapshot and the log hold the final
    # flags; hence the recorder is added before them.
    record_live(session, plan.kind, clip_seconds=plan.clip_seconds)
    session.add_service(FlagService(session.profile, befores=befores_of(plan)), name="flags")
    for surface in plan.controllers:
        session.add_service(surface, name="midi")
    from earmark.live.platform_monitor import PlatformMonitor

    session.add_service(PlatformMonitor(plan.platform_monitor), name="platform monitor")
    if monitor is not None:
        from earmark.live.codec_monitor import CodecMonitorService

        session.add_service(CodecMonitorService(monitor), name="codec")
    else:  # C and X say why nothing changes, instead of doing nothing
        session.handle("codec", _no_codec_monitor)
    return session


def _no_codec_monitor(session: Any, *_: object) -> None:
    session.note("codec", "no codec monitor in this session: start it with --codec-monitor NAME")
