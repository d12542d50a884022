"""The monitor panel: dim, mono, mute, A/B, snapshot, marker, codec, artefacts, loudness
match, platform monitor and reset (each button does what its key does, and says which
key), the monitor's and the codec monitor's state in words, and the session's last status
lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..codec_text import codec_line, frame_codec_values, mode_name
from ..conventions import key_for
from ..stateframe import Frame
from .style import TEXT_DIM, no_args

if TYPE_CHECKING:
    from .window import Dashboard


class ControlPanel:
    """The bottom right."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def build(self, dpg: Any) -> None:
        """Create the buttons, the monitor's state and the status lines."""
        style = self.dash.style
        t = dpg.add_text("MONITOR", tag="em_monitor_title")
        style.font(t, "head")

        def keyed(word: str, action: str) -> tuple[str, Callable[[], None]]:
            """A button that does what its key does, labelled with the key."""
            key = key_for(action)
            return f"{word} ({key.name})", lambda: self.dash.press(key.char)

        # Rows of (label, action, tag); the monitor's state in words under them.
        rows = (
            ((*keyed("DIM", "dim"), "em_mon_dim"),
             (*keyed("MONO", "mono"), "em_mon_mono"),
             ("MUTE", lambda: self.dash.toggle_monitor("mute"), "em_mon_mute")),
            ((*keyed("A/B", "ab_toggle"), "em_btn_ab"),
             (*keyed("SNAPSHOT", "snapshot"), "em_btn_snapshot"),
             (*keyed("MARKER", "marker"), "em_btn_marker")),
            ((*keyed("CODEC", "codec"), "em_btn_codec"),
             (*keyed("ARTEFACTS", "codec_solo"), "em_btn_codec_solo")),
            ((*keyed("MATCH", "match"), "em_btn_match"),
             (*keyed("PLATFORM", "platform"), "em_btn_platform"),
             (*keyed("RESET", "reset"), "em_btn_reset")),
        )  # fmt: skip
        for row in rows:
            with dpg.group(horizontal=True):
                for label, action, tag in row:
                    last = row is rows[-1]
                    dpg.add_button(
                        label=label,
                        tag=tag,
                        width=118,
                        height=26 if last else 30,
                        callback=no_args(action),
                    )
        # Its own line: the last row has three buttons since the platform monitor's.
        dpg.add_text("", tag="em_monitor_state", color=TEXT_DIM)
        # The codec monitor (--codec-monitor): what is heard, its true peaks and overs.
        dpg.add_text("", tag="em_codec_state", wrap=396, color=TEXT_DIM)
        dpg.add_separator()
        dpg.add_text("", tag="em_status", wrap=396, color=TEXT_DIM)

    def update(self, dpg: Any, frame: Frame) -> None:
        """The monitor's buttons and words, and the match button (every new frame)."""
        words = []
        for key in ("dim", "mono", "mute"):
            on = bool(frame.h(key))
            dpg.bind_item_theme(
                f"em_mon_{key}", self.dash.style.themes["button_on" if on else "button_off"]
            )
            if on:
                words.append(key.upper())
        dpg.set_value("em_monitor_state", "monitor: " + (" ".join(words) or "normal"))
        match = bool(frame.h("loudness_match")) and not frame.h("platform_monitor")
        dpg.bind_item_theme(
            "em_btn_match", self.dash.style.themes["button_on" if match else "button_off"]
        )
        platform = bool(frame.h("platform_monitor"))
        dpg.bind_item_theme(
            "em_btn_platform", self.dash.style.themes["button_on" if platform else "button_off"]
        )
        mode = mode_name(frame.h("codec_mode"))
        codec = frame.info.get("codec") or {}
        for tag, on in (
            ("em_btn_codec", mode == "on"),
            ("em_btn_codec_solo", mode == "artefacts"),
        ):
            dpg.bind_item_theme(tag, self.dash.style.themes["button_on" if on else "button_off"])
        dpg.set_value(
            "em_codec_state",
            "codec monitor: off (--codec-monitor NAME)"
            if mode is None
            else codec_line(codec.get("label", "?"), mode, frame_codec_values(frame.h)),
        )

    # -- geometry for tests and screenshots -----------------------------------------------

    def update_info(self, dpg: Any, frame: Frame) -> None:
        """Status lines and what the session offers (when the frame's JSON area changes)."""
        info = frame.info
        sender = self.dash.sender
        status = info.get("status") or []
        lines = [s.get("text", "") for s in status[-3:]]
        if sender.failed:
            lines.append(f"commands not delivered: {sender.last_error}")
        dpg.set_value("em_status", "\n".join(lines))
        commands = info.get("commands") or {}
        dpg.configure_item("em_btn_snapshot", enabled=bool(commands.get("snapshot", False)))
        for tag in ("em_btn_codec", "em_btn_codec_solo"):
            dpg.configure_item(tag, enabled=bool(info.get("codec")))
