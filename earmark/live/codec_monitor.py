"""The codec monitor as a session service: its commands, its readings, its host's health.

``earmark run/demo --codec-monitor NAME`` builds an
:class:`~earmark.engine.codec_host.CodecMonitor` on the session's engine
(:func:`attach_codec_monitor`, in ``earmark.live.build``) and adds this service, which

- registers the session command ``codec`` (``on``, ``off``, ``clean``, ``artefacts``,
  ``toggle``: codec <-> clean, ``solo``: artefacts <-> codec, ``reset``), sent by the
  C and X keys, the dashboard's buttons and the control socket alike; the R key's
  ``reset_holds`` also starts the codec's true peaks and overs again;
- says once when the host died (the clean mix plays meanwhile);
- stops the host after the audio (the session stops the driver before its services).

:func:`frame_fields` is what the state frame carries of it; the views word it with
``earmark.ui.codec_text``.
"""

from __future__ import annotations

from typing import Any

from earmark.engine.codec_host import MODES, CodecMonitor

__all__ = [
    "CodecMonitorService",
    "attach_codec_monitor",
    "frame_fields",
    "readings_of",
]

# The modes as numbers in the state frame (-1: no monitor): abi.CODEC_* order.
_NO_MONITOR = -1.0


def attach_codec_monitor(engine: Any, name: str, blocksize: int) -> CodecMonitor:
    """Start the codec host for ``name`` and put its stage in ``engine``'s block, heard
    decoded from the start (raises ``CodecMonitorError``)."""
    monitor = CodecMonitor(
        name, engine.sample_rate, block=blocksize, max_block=max(engine.max_block, blocksize)
    )
    try:
        monitor.attach(engine)
    except BaseException:
        monitor.close()
        raise
    monitor.set_mode("on")
    return monitor


class CodecMonitorService:
    """The session's side of a :class:`CodecMonitor` (see the module)."""

    tick_hz = 10.0

    def __init__(self, monitor: CodecMonitor) -> None:
        self.monitor = monitor

    def start(self, session: Any) -> None:
        session.codec_monitor = self.monitor
        session.handle("codec", self._command)
        session.handle("reset_holds", self._reset)

    def tick(self, session: Any, state: Any) -> None:
        line = self.monitor.poll()
        if line:
            session.note("codec", line)

    def stop(self, session: Any) -> None:
        self.monitor.close()

    def _reset(self, session: Any, *_: object) -> None:
        self.monitor.reset()

    def _command(self, session: Any, what: str = "toggle", *_: object) -> str:
        """Apply a ``codec`` command; returns the mode now heard."""
        monitor = self.monitor
        mode = monitor.mode
        if what == "reset":
            monitor.reset()
            return mode
        if what == "toggle":
            what = "clean" if mode in ("on", "artefacts") else "on"
        elif what == "solo":
            what = "on" if mode == "artefacts" else "artefacts"
        if what not in MODES:
            raise ValueError(
                f"codec {what!r}: choose from {', '.join(MODES)}, toggle, solo or reset"
            )
        monitor.set_mode(what)
        return what


def readings_of(session: Any) -> dict[str, Any] | None:
    """The session's codec monitor readings (``CodecMonitor.readings``), None without one."""
    monitor = getattr(session, "codec_monitor", None)
    return None if monitor is None else monitor.readings()


def frame_fields(session: Any) -> dict[str, float | None]:
    """The state frame's header values of the codec monitor (None: NaN in the frame)."""
    r = readings_of(session)
    if r is None:
        return {"codec_mode": _NO_MONITOR}
    return {
        "codec_mode": float(MODES[r["mode"]]),
        "codec_true_peak_dbtp": r["codec_true_peak_dbtp"],
        "codec_overs": float(r["codec_overs"]),
        "codec_clean_true_peak_dbtp": r["clean_true_peak_dbtp"],
        "codec_clean_overs": float(r["clean_overs"]),
        "codec_delay_ms": 1e3 * r["delay_frames"] / session.engine.sample_rate,
        "codec_fallbacks": float(r["fallbacks"]),
        "codec_alive": 1.0 if r["alive"] else 0.0,
    }
