"""The dashboard window: its panels, laid out as DASHBOARD.md draws them, the commands
its keys and buttons send, and how a frame reaches the panels.

Updates come in two speeds (STYLE.md item 11): bars, header and goniometers on every
new frame; curves and spectra when new 10 Hz points arrive; lists and chains only when
the frame's JSON area changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..conventions import KEYS, Toggles, help_line, key_commands
from ..judgement import Targets
from ..stateframe import CommandSender, Frame, StateFrameError, StateFrameReader
from .chain import ChainPanel
from .control import ControlPanel
from .flags import FlagsPanel
from .frames import ab
from .header import HeaderPanel
from .history import HistoryPanel
from .meters import METER_BOTTOM_LUFS, METER_TICK_LU, METER_TOP_LUFS, MetersPanel
from .spectrum import SpectrumPanel
from .stereo import StereoPanel
from .style import TEXT_DIM, Style, no_args

KEYS_HELP = help_line(terminal=False)


class Dashboard:
    """The window's panels, and how a frame updates them.

    Args:
        reader: the attached state frame.
        sender: where commands go (the session's socket).
        width, height: the viewport size the layout is made for.
        locate: called when the session has gone, to find a new one to attach
            to: returns (frame name, command socket) or None.
    """

    def __init__(
        self,
        reader: StateFrameReader | None,
        sender: CommandSender,
        *,
        width: int = 1600,
        height: int = 960,
        locate: Callable[[], tuple[str, str] | None] | None = None,
    ) -> None:
        self.reader = reader
        self.sender = sender
        self.width = width
        self.height = height
        self.locate = locate
        self.frame: Frame | None = None
        self.targets = Targets()
        self.window_s = 60.0
        self.follow = True
        self.selected_flag: dict | None = None
        self.style = Style()
        self.frame_times_ms: list[float] = []  # read + update + render, per frame
        self.update_times_ms: list[float] = []  # read + update (Python), per frame
        self.commands_sent: list[tuple] = []
        self.header = HeaderPanel(self)
        self.meters = MetersPanel(self)
        self.history = HistoryPanel(self)
        self.spectrum = SpectrumPanel(self)
        self.stereo = StereoPanel(self)
        self.flags = FlagsPanel(self)
        self.chain = ChainPanel(self)
        self.control = ControlPanel(self)
        self._json_seen = -1
        self._hist_key: tuple = ()
        self._last_seq = -1
        self._next_locate = 0.0
        self._keys_held: set[str] = set()
        self._dpg: Any = None

    # -- commands -------------------------------------------------------------------------

    def send(self, *command: Any) -> bool:
        """Send a command to the session (and remember it, for the tests and the status line)."""
        self.commands_sent.append(tuple(command))
        return self.sender.send(*command)

    def _key_down(self, char: str) -> None:
        """A key went down: act once per press. Dear PyGui repeats the press of a held key
        (after about 0.3 s, two or three frames under software GL), which would toggle
        A/B or the dim straight back."""
        if char in self._keys_held:
            return
        self._keys_held.add(char)
        self.press(char)

    def press(self, char: str) -> None:
        """What the key ``char`` does (the table the terminal view uses too)."""
        for command in key_commands(char, self.toggles()):
            self.send(*command)

    def toggles(self) -> Toggles:
        """What the keys act on, as the latest frame shows the session."""
        frame = self.frame
        if frame is None:
            return Toggles(0, 0, "A", False, False, False, ())
        chains = [p.get("chain") for p in frame.info.get("paths", [])]
        return Toggles(
            a=int(frame.h("a") or 0),
            b=int(frame.h("b") or 0),
            audible="B" if frame.h("audible") else "A",
            loudness_match=bool(frame.h("loudness_match")),
            dim=bool(frame.h("dim")),
            mono=bool(frame.h("mono")),
            bypassed=tuple(None if not c else bool(c.get("bypassed")) for c in chains),
        )

    def select(self, which: str) -> None:
        self.send("select", which)

    def toggle_monitor(self, key: str) -> None:
        current = bool(self.frame and self.frame.h(key))
        self.send("monitor", {key: not current})

    def bypass_chain(self, path: int) -> None:
        """Toggle the whole chain of ``path`` (its panel's button; the B key picks the path)."""
        frame = self.frame
        if frame is None:
            return
        chains = [p.get("chain") for p in frame.info.get("paths", [])]
        chain = chains[path] if path < len(chains) else None
        if not chain:
            return
        self.send("bypass", path, None, not chain.get("bypassed", False))

    def bypass_plugin(self, path: int, plugin: int) -> None:
        frame = self.frame
        if frame is None:
            return
        chain = frame.info.get("paths", [])[path].get("chain") or {}
        plugins = chain.get("plugins", [])
        if plugin < len(plugins):
            self.send("bypass", path, plugin, not plugins[plugin].get("bypass", False))

    def select_flag(self, flag: dict | None) -> None:
        """Select a flag and centre the history on it (following stops until re-enabled)."""
        self.selected_flag = flag
        dpg = self._dpg
        if flag is not None:
            self.follow = False
            if dpg is not None:
                dpg.set_value("em_follow", False)
        self.redraw_history()

    def redraw_history(self) -> None:
        """Redraw the history on the next frame (its window, following or selection changed)."""
        self._hist_key = ()

    # -- building -------------------------------------------------------------------------

    def build(self) -> None:
        """Create every item (call inside a Dear PyGui context, before the viewport shows)."""
        import dearpygui.dearpygui as dpg

        self._dpg = dpg
        self.style.load(dpg)
        w, h = self.width, self.height
        left_w, right_w = 392, 414
        centre_w = w - left_w - right_w - 40
        header_h, main_h = 58, 566
        bottom_h = max(180, h - header_h - main_h - 62)
        chain_w = right_w - 60
        flags_w = w - chain_w - right_w - 40
        with dpg.window(tag="em_main", no_scrollbar=True):
            with dpg.child_window(tag="em_header", height=header_h, no_scrollbar=True):
                self.header.build(dpg)
            with dpg.group(horizontal=True):
                with dpg.child_window(
                    tag="em_left", width=left_w, height=main_h, no_scrollbar=True
                ):
                    self.meters.build(dpg)
                with dpg.child_window(
                    tag="em_centre", width=centre_w, height=main_h, no_scrollbar=True
                ):
                    self.history.build(dpg, centre_w - 16, main_h - 48)
                with dpg.child_window(
                    tag="em_right", width=right_w, height=main_h, no_scrollbar=True
                ):
                    self.spectrum.build(dpg, right_w - 16)
                    self.stereo.build(dpg, right_w - 16)
            with dpg.group(horizontal=True):
                with dpg.child_window(tag="em_flags_panel", width=flags_w, height=bottom_h):
                    self.flags.build(dpg)
                with dpg.child_window(tag="em_chain_panel", width=chain_w, height=bottom_h):
                    self.chain.build(dpg, wrap_px=chain_w - 80)
                with dpg.child_window(
                    tag="em_control", width=right_w, height=bottom_h, no_scrollbar=True
                ):
                    self.control.build(dpg)
            dpg.add_text(KEYS_HELP, tag="em_keys", color=TEXT_DIM)
        dpg.bind_item_theme("em_main", self.style.themes["global"])
        dpg.set_primary_window("em_main", True)
        with dpg.handler_registry():
            for key in KEYS:
                if key.terminal_only:
                    continue
                code = getattr(dpg, f"mvKey_{key.dpg_key}")
                dpg.add_key_press_handler(
                    code, callback=no_args(lambda c=key.char: self._key_down(c))
                )
                dpg.add_key_release_handler(
                    code, callback=no_args(lambda c=key.char: self._keys_held.discard(c))
                )

    # -- updating -------------------------------------------------------------------------

    def update(self, frame: Frame) -> None:
        """Show ``frame``: the fast parts always, the slow parts when their data moved."""
        self.frame = frame
        dpg = self._dpg
        if frame.json_version != self._json_seen:
            self._json_seen = frame.json_version
            self.targets = Targets.from_info(frame.info.get("profile"))
            self.header.update_info(dpg, frame)
            self.flags.update(dpg, frame)
            self.chain.update(dpg, frame)
            self.control.update_info(dpg, frame)
        if frame.seq != self._last_seq:
            self._last_seq = frame.seq
            self.header.update(dpg, frame)
            self.meters.update(dpg, frame)
            self.stereo.update(dpg, frame)
            self.control.update(dpg, frame)
        self.header.update_live(dpg, frame)
        a, b = ab(frame)
        key = (
            a.values["history_end_s"] if a else None,
            b.values["history_end_s"] if b else None,
            a.index if a else -1,
            b.index if b else -1,
            self.window_s,
            self.follow,
            id(self.selected_flag),
            frame.json_version,
        )
        if key != self._hist_key:
            self._hist_key = key
            self.history.update(dpg, frame)
            self.spectrum.update(dpg, frame)

    # -- geometry for tests and screenshots -----------------------------------------------

    def geometry(self) -> dict[str, Any]:
        """Where things are on the viewport (pixels), for tests that read the frame buffer."""
        dpg = self._dpg
        tags = [
            "em_meters", "em_lane_plot", "em_loud_plot", "em_psr_plot", "em_spec_plot",
            "em_hdr_A", "em_hdr_B", "em_btn_marker", "em_btn_ab", "em_keys", "em_corr",
            "em_gonio_A", "em_gonio_B",
        ] + [f"em_flag_{k}" for k in range(len(self.flags.shown))]  # fmt: skip
        out: dict[str, Any] = {}
        for tag in tags:
            if not dpg.does_item_exist(tag):
                continue
            state = dpg.get_item_state(tag)
            if "rect_min" in state:
                out[tag] = {"min": list(state["rect_min"]), "size": list(state["rect_size"])}
        out["bars"] = {f"{s}{k}": list(v) for (s, k), v in self.meters.BARS.items()}
        out["meter_scale"] = {
            "top_lufs": METER_TOP_LUFS,
            "bottom_lufs": METER_BOTTOM_LUFS,
            "tick_lu": METER_TICK_LU,
        }
        return out

    # -- attaching ------------------------------------------------------------------------

    def peek(self) -> int:
        """The session's sequence counter as it is now (no copy), -1 without a frame."""
        return self.reader.peek_seq() if self.reader is not None else -1

    def read(self) -> Frame | None:
        """The next frame; re-attaches through ``locate`` when the session is gone."""
        frame = self.reader.read() if self.reader is not None else None
        gone = (
            frame is None
            or (frame.stale and frame.header.get("closed"))
            or (frame.stale and "gone" in frame.stale_reason)
        )
        if gone and self.locate is not None and time.monotonic() >= self._next_locate:
            self._next_locate = time.monotonic() + 1.0
            found = self.locate()
            if found is not None and (self.reader is None or found[0] != self.reader.name):
                try:
                    reader = StateFrameReader(found[0])
                except StateFrameError:
                    return frame
                if self.reader is not None:
                    self.reader.close()
                self.reader = reader
                self.sender.path = found[1]
                self._json_seen = -1
                self.chain.forget()
                return reader.read()
        return frame
