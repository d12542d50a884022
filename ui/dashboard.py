"""The dashboard: a Dear PyGui window on a live session's state frame, in its own process.

    python -m earmark.ui.dashboard --frame NAME --commands SOCKET

(``earmark run``/``demo`` start it; ``earmark dashboard`` re-attaches one.)
It reads the state frame (``earmark.ui.stateframe``) at up to 60 Hz and
sends commands back on the session's socket; it shares nothing else with the
audio process, so it can crash, hang or close without the audio noticing.

What it shows (DASHBOARD.md): A and B side by side with the audible one marked
(▶) and the other dimmed; loudness bars (momentary, short-term) with the
integrated value, LRA, true peak with hold and overs, PLR and PSR, each with
its unit and a word (OK / WATCH / PROBLEM) as well as a colour; the loudness
and PSR history with the flags on a lane where they happened; the spectrum A
vs B with the profile's band and harsh bands outlined when in excess;
correlation and goniometers; the flag list (click to centre the history on a
flag); the chains with bypass; the monitor section; snapshot and marker.

Keys (``earmark.ui.conventions.KEYS``, the terminal view's too): Space A/B,
B bypass chain, L loudness match, D dim, O mono, R reset meters and peak holds,
S snapshot, M marker. Paths are numbered from 1, as everywhere a user types one.

Updates come in two speeds (STYLE.md item 11): bars, header and goniometers
on every new frame; curves and spectra when new 10 Hz points arrive; lists and
chains only when the frame's JSON area changes. The loop sleeps to at most 60
frames per second: with no vsync (Xvfb) it would otherwise spin a core.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from earmark.meters.flags import band_text

from .conventions import A_RGB, B_RGB, KEYS, Toggles, help_line, key_commands, key_for, path_number
from .judgement import NONE, OK, PROBLEM, WATCH, Targets, flag_word, judge
from .stateframe import CommandSender, Frame, PathFrame, StateFrameError, StateFrameReader
from .xdisplay import display_available

__all__ = ["Dashboard", "main", "run"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_DISPLAY = 3
EXIT_NO_SESSION = 3

MAX_FPS = 60.0
IDLE_FPS = 10.0  # when no new state frame arrives (a paused or stale session)
MAX_LOAD = 0.5  # the largest share of a core the render loop may take
KEYS_HELP = help_line(terminal=False)

# Colours (RGB): dark panels; A blue, B orange; states green / amber / red.
BG = (17, 19, 23)
PANEL = (25, 28, 33)
PANEL_EDGE = (46, 51, 59)
GRID = (58, 63, 72)
TICK = (92, 99, 112)
TEXT = (222, 225, 230)
TEXT_DIM = (128, 135, 146)
A_COL = A_RGB
B_COL = B_RGB
OK_COL = (81, 207, 102)
WATCH_COL = (252, 196, 25)
PROBLEM_COL = (255, 84, 84)
TARGET_COL = (178, 132, 255)
STATE_COL = {OK: OK_COL, WATCH: WATCH_COL, PROBLEM: PROBLEM_COL, NONE: TEXT_DIM}
BAR_BG = (35, 39, 46)
PLOT_BG = (21, 23, 28)

# The loudness meter's scale.
METER_TOP_LUFS = 0.0
METER_BOTTOM_LUFS = -42.0
METER_TICK_LU = 6.0

HISTORY_WINDOWS_S = {"30 s": 30.0, "1 min": 60.0, "2 min": 120.0, "5 min": 300.0, "10 min": 600.0}
LOUDNESS_RANGE = (-36.0, 0.0)
PSR_RANGE = (0.0, 22.0)
SPECTRUM_RANGE_DB = (-90.0, -5.0)
FLAG_POOL = 24  # shaded flags per lane row
GONIO_PX = 160  # the goniometer's density image, drawn one texel per pixel
GONIO_DECAY = 0.7  # per new frame (30 Hz): the trace fades over about a tenth of a second
MARKER_POOL = 16

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts",
    os.path.expanduser("~/.local/share/fonts"),
    "/Library/Fonts",
)


def _rgba(rgb: tuple[int, int, int], a: int = 255) -> tuple[int, int, int, int]:
    return (rgb[0], rgb[1], rgb[2], a)


def _dimmed(rgb: tuple[int, int, int], k: float = 0.55) -> tuple[int, int, int]:
    return tuple(int(BG[i] + (rgb[i] - BG[i]) * k) for i in range(3))  # type: ignore[return-value]


def _fmt(v: float | None, nd: int = 1, signed: bool = False) -> str:
    """A number with a real minus sign; an en dash when undefined."""
    if v is None or not math.isfinite(v):
        return "–"
    text = f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"
    return text.replace("-", "−")


def _mmss(t: float) -> str:
    sign = "−" if t < 0 else ""
    t = abs(t)
    return f"{sign}{int(t // 60)}:{int(t % 60):02d}"


def find_font(*names: str) -> str | None:
    """The first of ``names`` found in the usual font folders (DejaVu ships with Debian)."""
    for folder in _FONT_DIRS:
        for name in names:
            path = Path(folder) / name
            if path.is_file():
                return str(path)
    return None


@dataclass
class Fonts:
    body: Any = 0
    small: Any = 0
    head: Any = 0
    value: Any = 0
    big: Any = 0
    found: bool = False


class Dashboard:
    """The window's items and how a frame updates them.

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
        self.fonts = Fonts()
        self.frame_times_ms: list[float] = []  # read + update + render, per frame
        self.update_times_ms: list[float] = []  # read + update (Python), per frame
        self.commands_sent: list[tuple] = []
        self._json_seen = -1
        self._hist_key: tuple = ()
        self._last_seq = -1
        self._flags_view: list[dict] = []
        self._chain_key = ""
        self._next_locate = 0.0
        self._gonio_gain = [1.0, 1.0]
        self._phosphor = [np.zeros((GONIO_PX, GONIO_PX)) for _ in range(2)]
        self._gonio_rgba = [np.zeros((GONIO_PX, GONIO_PX, 4), np.float32) for _ in range(2)]
        self._themes: dict[str, Any] = {}
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
        self._hist_key = ()

    def _on_window(self, _sender: Any, value: str, *_: Any) -> None:
        self.window_s = HISTORY_WINDOWS_S.get(value, 60.0)
        self._hist_key = ()

    def _on_follow(self, _sender: Any, value: bool, *_: Any) -> None:
        self.follow = bool(value)
        if self.follow:
            self.selected_flag = None
        self._hist_key = ()

    # -- building -------------------------------------------------------------------------

    def build(self) -> None:
        """Create every item (call inside a Dear PyGui context, before the viewport shows)."""
        import dearpygui.dearpygui as dpg

        self._dpg = dpg
        self._load_fonts(dpg)
        self._make_themes(dpg)
        w, h = self.width, self.height
        left_w, right_w = 392, 414
        centre_w = w - left_w - right_w - 40
        header_h, main_h = 58, 566
        bottom_h = max(180, h - header_h - main_h - 62)
        chain_w = right_w - 60
        self._chain_wrap = chain_w - 80
        flags_w = w - chain_w - right_w - 40
        with dpg.window(tag="em_main", no_scrollbar=True):
            with dpg.child_window(tag="em_header", height=header_h, no_scrollbar=True):
                self._build_header(dpg)
            with dpg.group(horizontal=True):
                with dpg.child_window(
                    tag="em_left", width=left_w, height=main_h, no_scrollbar=True
                ):
                    self._build_meters(dpg)
                with dpg.child_window(
                    tag="em_centre", width=centre_w, height=main_h, no_scrollbar=True
                ):
                    self._build_history(dpg, centre_w - 16, main_h - 48)
                with dpg.child_window(
                    tag="em_right", width=right_w, height=main_h, no_scrollbar=True
                ):
                    self._build_spectrum_and_stereo(dpg, right_w - 16)
            with dpg.group(horizontal=True):
                with dpg.child_window(tag="em_flags_panel", width=flags_w, height=bottom_h):
                    self._build_flags(dpg)
                with dpg.child_window(tag="em_chain_panel", width=chain_w, height=bottom_h):
                    self._build_chain(dpg)
                with dpg.child_window(
                    tag="em_control", width=right_w, height=bottom_h, no_scrollbar=True
                ):
                    self._build_control(dpg)
            dpg.add_text(KEYS_HELP, tag="em_keys", color=TEXT_DIM)
        dpg.bind_item_theme("em_main", self._themes["global"])
        dpg.set_primary_window("em_main", True)
        with dpg.handler_registry():
            for key in KEYS:
                if key.terminal_only:
                    continue
                code = getattr(dpg, f"mvKey_{key.dpg_key}")
                dpg.add_key_press_handler(
                    code, callback=_no_args(lambda c=key.char: self._key_down(c))
                )
                dpg.add_key_release_handler(
                    code, callback=_no_args(lambda c=key.char: self._keys_held.discard(c))
                )

    def _load_fonts(self, dpg: Any) -> None:
        sans = find_font("DejaVuSans.ttf")
        bold = find_font("DejaVuSans-Bold.ttf") or sans
        mono = find_font("DejaVuSansMono-Bold.ttf", "DejaVuSansMono.ttf") or bold
        if sans is None:
            return  # Dear PyGui's built-in font; values stay readable, just smaller
        with dpg.font_registry():
            self.fonts = Fonts(
                body=dpg.add_font(sans, 16),
                small=dpg.add_font(sans, 14),
                head=dpg.add_font(bold, 17),
                value=dpg.add_font(mono, 22),
                big=dpg.add_font(mono, 40),
                found=True,
            )
        dpg.bind_font(self.fonts.body)

    def _font(self, item: Any, which: str) -> None:
        font = getattr(self.fonts, which)
        if self.fonts.found and font:
            self._dpg.bind_item_font(item, font)

    def _make_themes(self, dpg: Any) -> None:
        with dpg.theme() as glob, dpg.theme_component(dpg.mvAll):
            for target, colour in (
                (dpg.mvThemeCol_WindowBg, BG),
                (dpg.mvThemeCol_ChildBg, PANEL),
                (dpg.mvThemeCol_Border, PANEL_EDGE),
                (dpg.mvThemeCol_Text, TEXT),
                (dpg.mvThemeCol_TextDisabled, TEXT_DIM),
                (dpg.mvThemeCol_FrameBg, (36, 40, 47)),
                (dpg.mvThemeCol_Button, (44, 49, 58)),
                (dpg.mvThemeCol_ButtonHovered, (60, 67, 79)),
                (dpg.mvThemeCol_ButtonActive, (75, 84, 99)),
                (dpg.mvThemeCol_Header, (48, 56, 70)),
                (dpg.mvThemeCol_HeaderHovered, (58, 68, 86)),
                (dpg.mvThemeCol_HeaderActive, (70, 82, 104)),
                (dpg.mvThemeCol_TableHeaderBg, (32, 36, 42)),
                (dpg.mvThemeCol_TableRowBg, PANEL),
                (dpg.mvThemeCol_TableRowBgAlt, (29, 32, 38)),
                (dpg.mvThemeCol_TableBorderLight, PANEL_EDGE),
                (dpg.mvThemeCol_TableBorderStrong, PANEL_EDGE),
                (dpg.mvThemeCol_CheckMark, A_COL),
                (dpg.mvThemeCol_PopupBg, PANEL),
            ):
                dpg.add_theme_color(target, colour)
            dpg.add_theme_style(dpg.mvStyleVar_ChildRounding, 4)
            dpg.add_theme_style(dpg.mvStyleVar_FrameRounding, 3)
            dpg.add_theme_style(dpg.mvStyleVar_WindowPadding, 8, 6)
            dpg.add_theme_style(dpg.mvStyleVar_ItemSpacing, 8, 5)
            dpg.add_theme_style(dpg.mvStyleVar_FramePadding, 8, 4)
            dpg.add_theme_style(dpg.mvStyleVar_CellPadding, 6, 2)
            for target, colour in (
                (dpg.mvPlotCol_FrameBg, PANEL),
                (dpg.mvPlotCol_PlotBg, PLOT_BG),
                (dpg.mvPlotCol_PlotBorder, PANEL_EDGE),
                (dpg.mvPlotCol_LegendBg, (25, 28, 33, 220)),
                (dpg.mvPlotCol_LegendBorder, PANEL_EDGE),
                (dpg.mvPlotCol_AxisGrid, (52, 57, 66)),
                (dpg.mvPlotCol_AxisText, TEXT_DIM),
            ):
                dpg.add_theme_color(target, colour, category=dpg.mvThemeCat_Plots)
            dpg.add_theme_style(dpg.mvPlotStyleVar_PlotPadding, 6, 4, category=dpg.mvThemeCat_Plots)
        self._themes["global"] = glob
        for name, colour in (
            ("A", A_COL),
            ("B", B_COL),
            ("A_dim", _dimmed(A_COL)),
            ("B_dim", _dimmed(B_COL)),
            ("target", TARGET_COL),
            ("grid", TICK),
            ("ok", OK_COL),
            ("watch", WATCH_COL),
            ("problem", PROBLEM_COL),
        ):
            self._themes[f"line_{name}"] = self._series_theme(dpg, colour, 255, 2.0)
            self._themes[f"faint_{name}"] = self._series_theme(dpg, colour, 110, 1.0)
            self._themes[f"fill_{name}"] = self._series_theme(dpg, colour, 60, 1.0)
            self._themes[f"solid_{name}"] = self._series_theme(dpg, colour, 200, 1.0)
        for name, fill, text in (
            ("audible_A", A_COL, BG),
            ("audible_B", B_COL, BG),
            ("quiet", (36, 40, 47), TEXT_DIM),
            ("on", (70, 60, 20), WATCH_COL),
            ("off", (44, 49, 58), TEXT),
            ("bypassed", (72, 34, 34), PROBLEM_COL),
            ("active", (30, 60, 40), OK_COL),
        ):
            with dpg.theme() as th, dpg.theme_component(dpg.mvButton):
                dpg.add_theme_color(dpg.mvThemeCol_Button, fill)
                dpg.add_theme_color(dpg.mvThemeCol_ButtonHovered, fill)
                dpg.add_theme_color(dpg.mvThemeCol_Text, text)
            self._themes[f"button_{name}"] = th

    def _series_theme(self, dpg: Any, colour: tuple[int, int, int], alpha: int, weight: float):
        with dpg.theme() as th:
            for comp in (
                dpg.mvLineSeries,
                dpg.mvShadeSeries,
                dpg.mvInfLineSeries,
                dpg.mvStairSeries,
            ):
                with dpg.theme_component(comp):
                    dpg.add_theme_color(
                        dpg.mvPlotCol_Line, _rgba(colour, alpha), category=dpg.mvThemeCat_Plots
                    )
                    dpg.add_theme_color(
                        dpg.mvPlotCol_Fill, _rgba(colour, alpha), category=dpg.mvThemeCat_Plots
                    )
                    dpg.add_theme_style(
                        dpg.mvPlotStyleVar_LineWeight, weight, category=dpg.mvThemeCat_Plots
                    )
                    dpg.add_theme_style(
                        dpg.mvPlotStyleVar_FillAlpha, 1.0, category=dpg.mvThemeCat_Plots
                    )
        return th

    # header ----------------------------------------------------------------------------

    def _build_header(self, dpg: Any) -> None:
        with dpg.group(horizontal=True):
            for side in ("A", "B"):
                b = dpg.add_button(
                    label=f"{side}",
                    tag=f"em_hdr_{side}",
                    height=40,
                    width=300,
                    callback=_no_args(lambda s=side: self.select(s)),
                )
                self._font(b, "head")
            t = dpg.add_text("match –", tag="em_hdr_match")
            self._font(t, "head")
            dpg.add_spacer(width=6)
            with dpg.group():
                dpg.add_text("profile –", tag="em_hdr_profile")
                dpg.add_text("–", tag="em_hdr_stream", color=TEXT_DIM)
            dpg.add_spacer(width=6)
            with dpg.group():
                dpg.add_text("MIDI –", tag="em_hdr_midi", color=TEXT_DIM)
                dpg.add_text("connecting", tag="em_hdr_live", color=WATCH_COL)

    # meters ---------------------------------------------------------------------------

    # Bar geometry inside the meter drawlist (x ranges), made for a 372-px-wide list.
    # 5 px per LU, ticks every 30 px: every scale line falls on a whole pixel row.
    METER_W, METER_H = 372, 256
    METER_TOP, METER_BOTTOM = 30, 240
    BARS: ClassVar[dict[tuple[str, str], tuple[int, int]]] = {
        ("A", "M"): (56, 88),
        ("A", "S"): (94, 146),
        ("B", "M"): (214, 246),
        ("B", "S"): (252, 304),
    }

    def meter_y(self, lufs: float) -> float:
        """Drawlist y of a loudness on the meter scale (clamped to the scale)."""
        lufs = min(METER_TOP_LUFS, max(METER_BOTTOM_LUFS, lufs))
        frac = (METER_TOP_LUFS - lufs) / (METER_TOP_LUFS - METER_BOTTOM_LUFS)
        return self.METER_TOP + frac * (self.METER_BOTTOM - self.METER_TOP)

    def _build_meters(self, dpg: Any) -> None:
        t = dpg.add_text("LOUDNESS  (LUFS)", tag="em_meters_title")
        self._font(t, "head")
        with dpg.drawlist(self.METER_W, self.METER_H, tag="em_meters"):
            for (side, kind), (x0, x1) in self.BARS.items():
                dpg.draw_rectangle(
                    (x0, self.METER_TOP),
                    (x1, self.METER_BOTTOM),
                    fill=_rgba(BAR_BG),
                    color=_rgba(BAR_BG),
                    tag=f"em_barbg_{side}{kind}",
                )
            v = METER_TOP_LUFS
            while v >= METER_BOTTOM_LUFS - 1e-9:
                y = self.meter_y(v)
                # Whole-pixel rows (5 px per LU): the one-pixel line is crisp, not smeared.
                dpg.draw_line((40, y), (self.METER_W - 8, y), color=_rgba(TICK), thickness=1)
                dpg.draw_text((4, y - 8), _fmt(v, 0), color=_rgba(TEXT_DIM), size=15)
                v -= METER_TICK_LU
            # The target line lies behind the bars: a bar's top edge is never covered.
            for side in ("A", "B"):
                x0, x1 = self.BARS[(side, "M")][0], self.BARS[(side, "S")][1]
                dpg.draw_line(
                    (x0 - 6, 0),
                    (x1 + 6, 0),
                    color=_rgba(TARGET_COL),
                    thickness=2,
                    tag=f"em_target_{side}",
                )
            for (side, kind), (x0, x1) in self.BARS.items():
                dpg.draw_rectangle(
                    (x0, self.METER_BOTTOM),
                    (x1, self.METER_BOTTOM),
                    fill=_rgba(A_COL),
                    color=(0, 0, 0, 0),
                    thickness=0,
                    tag=f"em_bar_{side}{kind}",
                )
                dpg.draw_text(
                    ((x0 + x1) / 2 - 5, self.METER_BOTTOM + 3),
                    kind,
                    color=_rgba(TEXT_DIM),
                    size=15,
                )
            for side in ("A", "B"):
                x0 = self.BARS[(side, "M")][0]
                dpg.draw_text((x0, 4), side, size=22, tag=f"em_meter_label_{side}")
                # Integrated loudness: a pointer beside the S bar, not across it.
                sx1 = self.BARS[(side, "S")][1]
                dpg.draw_triangle(
                    (sx1 + 2, 0),
                    (sx1 + 12, -6),
                    (sx1 + 12, 6),
                    color=(255, 255, 255, 255),
                    fill=(255, 255, 255, 255),
                    tag=f"em_int_{side}",
                    show=False,
                )
                dpg.draw_text((sx1 + 15, 0), "I", size=15, tag=f"em_int_label_{side}", show=False)
        with dpg.table(
            header_row=False,
            tag="em_values",
            policy=dpg.mvTable_SizingFixedFit,
            borders_innerH=False,
            row_background=True,
        ):
            dpg.add_table_column(label="", width_fixed=True, init_width_or_weight=64)
            dpg.add_table_column(label="A", width_fixed=True, init_width_or_weight=146)
            dpg.add_table_column(label="B", width_fixed=True, init_width_or_weight=146)
            with dpg.table_row():
                with dpg.group(horizontal=True):
                    dpg.add_text("S")
                    u = dpg.add_text("LUFS", color=TEXT_DIM)
                    self._font(u, "small")
                for side in ("A", "B"):
                    t = dpg.add_text("–", tag=f"em_val_S_{side}")
                    self._font(t, "big")
            for key, label, unit in (
                ("I", "I", "LUFS"),
                ("LRA", "LRA", "LU"),
                ("TP", "TP", "dBTP"),
                ("PLR", "PLR", "dB"),
                ("PSR", "PSR", "dB"),
            ):
                with dpg.table_row():
                    with dpg.group(horizontal=True):
                        dpg.add_text(label)
                        u = dpg.add_text(unit, color=TEXT_DIM)
                        self._font(u, "small")
                    for side in ("A", "B"):
                        with dpg.group():
                            with dpg.group(horizontal=True):
                                t = dpg.add_text("–", tag=f"em_val_{key}_{side}")
                                self._font(t, "value")
                                w = dpg.add_text("", tag=f"em_state_{key}_{side}")
                                self._font(w, "small")
                            if key == "TP":
                                s = dpg.add_text(
                                    "hold – · overs 0", tag=f"em_hold_{side}", color=TEXT_DIM
                                )
                                self._font(s, "small")
                            elif key == "PSR":
                                s = dpg.add_text("", tag=f"em_sub_{key}_{side}", color=TEXT_DIM)
                                self._font(s, "small")

    # history ---------------------------------------------------------------------------

    def _build_history(self, dpg: Any, width: int, height: int) -> None:
        with dpg.group(horizontal=True):
            t = dpg.add_text("LOUDNESS HISTORY", tag="em_hist_title")
            self._font(t, "head")
            dpg.add_text("short-term bold, momentary faint", color=TEXT_DIM)
            dpg.add_spacer(width=20)
            dpg.add_combo(
                list(HISTORY_WINDOWS_S),
                default_value="1 min",
                width=90,
                tag="em_window",
                callback=self._on_window,
            )
            dpg.add_checkbox(
                label="follow", default_value=True, tag="em_follow", callback=self._on_follow
            )
        with dpg.subplots(
            3,
            1,
            link_all_x=True,
            row_ratios=[5.0, 1.2, 3.0],
            width=width,
            height=height,
            no_title=True,
            tag="em_hist_subplots",
            no_resize=True,
        ):
            self._build_loudness_plot(dpg)
            self._build_lane_plot(dpg)
            self._build_psr_plot(dpg)

    def _plot(self, dpg: Any, tag: str, **kw: Any):
        return dpg.plot(
            tag=tag,
            no_title=True,
            no_mouse_pos=True,
            no_menus=True,
            no_box_select=True,
            no_inputs=True,
            **kw,
        )

    def _axis(self, dpg: Any, kind: int, tag: str, **kw: Any) -> Any:
        return dpg.add_plot_axis(
            kind, tag=tag, no_highlight=True, no_menus=True, no_side_switch=True, **kw
        )

    def _series(self, dpg: Any, add: Callable, parent: str, tag: str, theme: str, *a, **kw):
        item = add(*a, parent=parent, tag=tag, **kw)
        dpg.bind_item_theme(item, self._themes[theme])
        return item

    def _build_loudness_plot(self, dpg: Any) -> None:
        with self._plot(dpg, "em_loud_plot"):
            dpg.add_plot_legend(location=dpg.mvPlot_Location_SouthWest, horizontal=True)
            self._axis(dpg, dpg.mvXAxis, "em_loud_x", no_tick_labels=True)
            y = self._axis(dpg, dpg.mvYAxis, "em_loud_y", label="LUFS")
            dpg.set_axis_limits(y, *LOUDNESS_RANGE)
            ln, sh = dpg.add_line_series, dpg.add_shade_series
            self._series(
                dpg, sh, y, "em_loud_tol", "fill_target", [0.0, 1.0], [0.0, 0.0], y2=[0.0, 0.0]
            )
            self._series(dpg, ln, y, "em_loud_target", "faint_target", [0.0, 1.0], [0.0, 0.0])
            for side in ("A", "B"):
                self._series(
                    dpg,
                    ln,
                    y,
                    f"em_loud_M_{side}",
                    f"faint_{side}",
                    [],
                    [],
                    label=f"{side} momentary",
                )
            for side in ("A", "B"):
                self._series(
                    dpg,
                    ln,
                    y,
                    f"em_loud_S_{side}",
                    f"line_{side}",
                    [],
                    [],
                    label=f"{side} short-term",
                )
            for k in range(MARKER_POOL):
                self._series(
                    dpg,
                    dpg.add_inf_line_series,
                    y,
                    f"em_marker_{k}",
                    "faint_target",
                    [],
                    show=False,
                )
                dpg.add_plot_annotation(
                    tag=f"em_marker_label_{k}",
                    label="",
                    show=False,
                    color=_rgba(PANEL_EDGE, 200),
                    parent="em_loud_plot",
                    offset=(4, 8),
                    clamped=True,
                )

    def _build_lane_plot(self, dpg: Any) -> None:
        with self._plot(dpg, "em_lane_plot"):
            self._axis(dpg, dpg.mvXAxis, "em_lane_x", no_tick_labels=True)
            y = self._axis(dpg, dpg.mvYAxis, "em_lane_y", no_gridlines=True)
            dpg.set_axis_limits(y, 0.0, 2.0)
            dpg.set_axis_ticks(y, (("B", 0.5), ("A", 1.5)))
            for row in ("A", "B"):
                for k in range(FLAG_POOL):
                    self._series(
                        dpg,
                        dpg.add_shade_series,
                        y,
                        f"em_lane_{row}_{k}",
                        "solid_watch",
                        [0.0, 0.0],
                        [0.0, 0.0],
                        y2=[0.0, 0.0],
                        show=False,
                    )
            self._series(dpg, dpg.add_line_series, y, "em_lane_sel", "line_target", [], [])

    def _build_psr_plot(self, dpg: Any) -> None:
        with self._plot(dpg, "em_psr_plot"):
            dpg.add_plot_legend(location=dpg.mvPlot_Location_NorthWest, horizontal=True)
            self._axis(dpg, dpg.mvXAxis, "em_psr_x")
            y = self._axis(dpg, dpg.mvYAxis, "em_psr_y", label="PSR dB")
            dpg.set_axis_limits(y, *PSR_RANGE)
            self._series(
                dpg,
                dpg.add_shade_series,
                y,
                "em_psr_zone",
                "fill_problem",
                [0.0, 1.0],
                [0.0, 0.0],
                y2=[8.0, 8.0],
                label="over-compressed zone",
            )
            self._series(
                dpg, dpg.add_line_series, y, "em_psr_floor", "faint_problem", [0.0, 1.0], [8.0, 8.0]
            )
            for side in ("A", "B"):
                self._series(
                    dpg,
                    dpg.add_line_series,
                    y,
                    f"em_psr_{side}",
                    f"line_{side}",
                    [],
                    [],
                    label=f"{side} PSR",
                )

    # spectrum and stereo ----------------------------------------------------------------

    def _build_spectrum_and_stereo(self, dpg: Any, width: int) -> None:
        with dpg.group(horizontal=True):
            t = dpg.add_text("SPECTRUM  A vs B")
            self._font(t, "head")
            dpg.add_text("1/3 oct · 3 s bold, programme faint", color=TEXT_DIM)
            # DIN 45692 sharpness, each at the same listening loudness (3 s, programme).
            for side in ("A", "B"):
                dpg.add_text("–", tag=f"em_sharp_{side}", color=TEXT_DIM)
        with self._plot(dpg, "em_spec_plot", width=width, height=226):
            dpg.add_plot_legend(location=dpg.mvPlot_Location_SouthWest, horizontal=True)
            x = self._axis(dpg, dpg.mvXAxis, "em_spec_x", scale=dpg.mvPlotScale_Log10)
            dpg.set_axis_limits(x, 20.0, 20000.0)
            dpg.set_axis_ticks(
                x,
                (
                    ("50", 50.0),
                    ("100", 100.0),
                    ("200", 200.0),
                    ("500", 500.0),
                    ("1k", 1000.0),
                    ("2k", 2000.0),
                    ("5k", 5000.0),
                    ("10k", 10000.0),
                    ("20k", 20000.0),
                ),
            )
            y = self._axis(dpg, dpg.mvYAxis, "em_spec_y", label="dB")
            dpg.set_axis_limits(y, *SPECTRUM_RANGE_DB)
            self._series(
                dpg,
                dpg.add_shade_series,
                y,
                "em_spec_band",
                "fill_target",
                [],
                [],
                y2=[],
                label="profile band",
            )
            for side in ("A", "B"):
                self._series(
                    dpg, dpg.add_line_series, y, f"em_spec_long_{side}", f"faint_{side}", [], []
                )
            for side in ("A", "B"):
                self._series(
                    dpg,
                    dpg.add_line_series,
                    y,
                    f"em_spec_{side}",
                    f"line_{side}",
                    [],
                    [],
                    label=side,
                )
            for side in ("A", "B"):
                for k in range(2):
                    self._series(
                        dpg,
                        dpg.add_line_series,
                        y,
                        f"em_harsh_{side}_{k}",
                        "line_problem",
                        [],
                        [],
                        show=False,
                    )
                    dpg.add_plot_annotation(
                        tag=f"em_harsh_label_{side}_{k}",
                        label="",
                        show=False,
                        parent="em_spec_plot",
                        color=_rgba(PROBLEM_COL, 220),
                        clamped=True,
                    )
        with dpg.group(horizontal=True):
            t = dpg.add_text("CORRELATION", tag="em_corr_title")
            self._font(t, "head")
            for side in ("A", "B"):
                dpg.add_text("–", tag=f"em_corr_val_{side}")
        cw = width
        with dpg.drawlist(cw, 64, tag="em_corr"):
            x0, x1 = 30, cw - 20
            mid = (x0 + x1) / 2
            dpg.draw_rectangle((x0, 6), (mid, 50), fill=_rgba(PROBLEM_COL, 38), color=(0, 0, 0, 0))
            dpg.draw_rectangle((mid, 6), (x1, 50), fill=_rgba(OK_COL, 26), color=(0, 0, 0, 0))
            for v in (-1.0, -0.5, 0.0, 0.5, 1.0):
                x = x0 + (v + 1) / 2 * (x1 - x0)
                dpg.draw_line((x, 6), (x, 50), color=_rgba(TICK), thickness=1)
                dpg.draw_text(
                    (x - 8, 50), _fmt(v, 1, signed=v != 0), size=12, color=_rgba(TEXT_DIM)
                )
            for row, side in enumerate(("A", "B")):
                y = 16 + row * 20
                dpg.draw_text(
                    (4, y - 8), side, size=16, color=_rgba(A_COL if side == "A" else B_COL)
                )
                dpg.draw_rectangle(
                    (mid, y - 5),
                    (mid, y + 5),
                    tag=f"em_corr_bar_{side}",
                    fill=_rgba(A_COL if side == "A" else B_COL),
                    color=(0, 0, 0, 0),
                )
        self._corr_x = (30, cw - 20)
        t = dpg.add_text("GONIOMETER", tag="em_gonio_title")
        self._font(t, "head")
        size = GONIO_PX + 4
        self._gonio_size = size
        with dpg.texture_registry():
            for side in ("A", "B"):
                dpg.add_dynamic_texture(
                    GONIO_PX, GONIO_PX, np.zeros(GONIO_PX * GONIO_PX * 4, np.float32),
                    tag=f"em_gonio_tex_{side}",
                )  # fmt: skip
        with dpg.group(horizontal=True):
            for side in ("A", "B"):
                # A phosphor-style scope: a density image, not thousands of markers.
                with dpg.drawlist(size, size, tag=f"em_gonio_{side}"):
                    dpg.draw_rectangle((0, 0), (size, size), fill=_rgba(PLOT_BG),
                                       color=_rgba(PANEL_EDGE))  # fmt: skip
                    c = size / 2
                    r = size * 0.46
                    guide = _rgba(TICK, 120)
                    dpg.draw_line((c - r * 0.7071, c - r * 0.7071), (c + r * 0.7071,
                                  c + r * 0.7071), color=guide)  # fmt: skip
                    dpg.draw_line((c + r * 0.7071, c - r * 0.7071), (c - r * 0.7071,
                                  c + r * 0.7071), color=guide)  # fmt: skip
                    dpg.draw_line((c, c - r), (c, c + r), color=guide)
                    for text, pos in (("L", (c - r * 0.7071 - 12, c - r * 0.7071 - 14)),
                                      ("R", (c + r * 0.7071 + 3, c - r * 0.7071 - 14)),
                                      ("M", (c - 5, 2))):  # fmt: skip
                        dpg.draw_text(pos, text, size=12, color=_rgba(TEXT_DIM))
                    # The trace over the guides, one texel per pixel (no filtering blur).
                    pad = (size - GONIO_PX) / 2
                    dpg.draw_image(
                        f"em_gonio_tex_{side}", (pad, pad), (pad + GONIO_PX, pad + GONIO_PX)
                    )
                    dpg.draw_text((6, size - 18), side, size=15, tag=f"em_gonio_label_{side}",
                                  color=_rgba(A_COL if side == "A" else B_COL))  # fmt: skip

    # flags ------------------------------------------------------------------------------

    def _build_flags(self, dpg: Any) -> None:
        with dpg.group(horizontal=True):
            t = dpg.add_text("FLAGS", tag="em_flags_title")
            self._font(t, "head")
            dpg.add_text(
                "newest first; click one to centre the history on it",
                color=TEXT_DIM,
                tag="em_flags_count",
            )
        with dpg.table(
            tag="em_flags",
            header_row=True,
            row_background=True,
            scrollY=True,
            policy=dpg.mvTable_SizingFixedFit,
            borders_innerV=False,
            height=-1,
        ):
            dpg.add_table_column(label="state", init_width_or_weight=86)
            dpg.add_table_column(label="when", init_width_or_weight=100)
            dpg.add_table_column(label="path", init_width_or_weight=28)
            dpg.add_table_column(label="what", init_width_or_weight=150)
            dpg.add_table_column(label="explanation", width_stretch=True, init_width_or_weight=1)

    # chain, monitor, actions -------------------------------------------------------------

    def _build_chain(self, dpg: Any) -> None:
        t = dpg.add_text("CHAIN", tag="em_chain_title")
        self._font(t, "head")
        dpg.add_group(tag="em_chain")

    def _build_control(self, dpg: Any) -> None:
        t = dpg.add_text("MONITOR", tag="em_monitor_title")
        self._font(t, "head")

        def keyed(word: str, action: str) -> tuple[str, Callable[[], None]]:
            """A button that does what its key does, labelled with the key."""
            key = key_for(action)
            return f"{word} ({key.name})", lambda: self.press(key.char)

        # Rows of (label, action, tag); the last row also holds the monitor's state text.
        rows = (
            ((*keyed("DIM", "dim"), "em_mon_dim"),
             (*keyed("MONO", "mono"), "em_mon_mono"),
             ("MUTE", lambda: self.toggle_monitor("mute"), "em_mon_mute")),
            ((*keyed("A/B", "ab_toggle"), "em_btn_ab"),
             (*keyed("SNAPSHOT", "snapshot"), "em_btn_snapshot"),
             (*keyed("MARKER", "marker"), "em_btn_marker")),
            ((*keyed("MATCH", "match"), "em_btn_match"),
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
                        callback=_no_args(action),
                    )
                if row is rows[-1]:
                    dpg.add_text("", tag="em_monitor_state", color=TEXT_DIM)
        dpg.add_separator()
        dpg.add_text("", tag="em_status", wrap=396, color=TEXT_DIM)

    # -- updating -------------------------------------------------------------------------

    def update(self, frame: Frame) -> None:
        """Show ``frame``: the fast parts always, the slow parts when their data moved."""
        self.frame = frame
        dpg = self._dpg
        if frame.json_version != self._json_seen:
            self._json_seen = frame.json_version
            self.targets = Targets.from_info(frame.info.get("profile"))
            self._update_info(dpg, frame)
        if frame.seq != self._last_seq:
            self._last_seq = frame.seq
            self._update_header(dpg, frame)
            self._update_meters(dpg, frame)
            self._update_stereo(dpg, frame)
            self.update_monitor(dpg, frame)
        self._update_live(dpg, frame)
        a, b = self._ab(frame)
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
            self._update_history(dpg, frame)
            self._update_spectrum(dpg, frame)

    def _ab(self, frame: Frame) -> tuple[PathFrame | None, PathFrame | None]:
        a = int(frame.h("a") or 0)
        b = int(frame.h("b") or 0)
        pa = frame.paths[a] if a < len(frame.paths) else None
        pb = frame.paths[b] if b < len(frame.paths) else None
        return pa, pb

    def _names(self, frame: Frame) -> list[str]:
        return [
            p.get("name", f"path {path_number(i)}")
            for i, p in enumerate(frame.info.get("paths", []))
        ]

    def _update_header(self, dpg: Any, frame: Frame) -> None:
        names = self._names(frame)
        audible = "B" if frame.h("audible") else "A"
        for side in ("A", "B"):
            index = int(frame.h(side.lower()) or 0)
            name = names[index] if index < len(names) else "?"
            mark = "▶" if side == audible else "◻"
            dpg.set_item_label(
                f"em_hdr_{side}", f"{side} {mark} {name} (path {path_number(index)})"
            )
            theme = f"button_audible_{side}" if side == audible else "button_quiet"
            dpg.bind_item_theme(f"em_hdr_{side}", self._themes[theme])
        ma, mb = frame.h("match_a_db"), frame.h("match_b_db")
        if not frame.h("loudness_match"):
            match = "match off"
        else:
            side, gain = ("B", mb) if (mb or 0.0) < (ma or 0.0) else ("A", ma)
            match = f"match {_fmt(gain, 1, signed=True)} dB on {side}"
        dpg.set_value("em_hdr_match", match)
        rate = frame.h("sample_rate")
        block = frame.h("block_size")
        lat = frame.h("latency_ms")
        chains = frame.h("chain_latency_ms")
        p99 = frame.h("callback_p99_us")
        period_us = 1e6 * block / rate if block and rate else None
        load = f" · callback p99 {p99 / period_us * 100:.0f} %" if p99 and period_us else ""
        dpg.set_value(
            "em_hdr_stream",
            # the stream's latency + what the aligned chains add
            f"{_fmt(block, 0)} @ {_fmt((rate or 0) / 1000, 1)} kHz · {_fmt(lat, 1)} + "
            f"{_fmt(chains, 1)} ms · "
            f"xruns {int(frame.h('xruns') or 0)}{load}",
        )

    def _update_live(self, dpg: Any, frame: Frame) -> None:
        if frame.stale:
            dpg.set_value("em_hdr_live", f"STALE · {frame.stale_reason}")
            dpg.configure_item("em_hdr_live", color=PROBLEM_COL)
        else:
            t = frame.h("position_s") or 0.0
            dpg.set_value("em_hdr_live", f"LIVE · {_mmss(t)}")
            dpg.configure_item("em_hdr_live", color=OK_COL)

    def _update_meters(self, dpg: Any, frame: Frame) -> None:
        pa, pb = self._ab(frame)
        audible = "B" if frame.h("audible") else "A"
        t = self.targets
        for side, p in (("A", pa), ("B", pb)):
            base = A_COL if side == "A" else B_COL
            colour = base if side == audible and not frame.stale else _dimmed(base, 0.6)
            if frame.stale:
                colour = TEXT_DIM
            for kind, name in (("M", "momentary_lufs"), ("S", "short_term_lufs")):
                x0, x1 = self.BARS[(side, kind)]
                value = p.values[name] if p else None
                top = self.meter_y(value) if value is not None else self.METER_BOTTOM
                fill = _rgba(colour) if kind == "S" else _rgba(_dimmed(colour, 0.8))
                dpg.configure_item(
                    f"em_bar_{side}{kind}", pmin=(x0, top), pmax=(x1, self.METER_BOTTOM), fill=fill
                )
            ty = self.meter_y(t.target_lufs)
            x0, x1 = self.BARS[(side, "M")][0], self.BARS[(side, "S")][1]
            dpg.configure_item(f"em_target_{side}", p1=(x0 - 6, ty), p2=(x1 + 6, ty))
            integrated = p.values["integrated_lufs"] if p else None
            sx1 = self.BARS[(side, "S")][1]
            if integrated is not None:
                iy = self.meter_y(integrated)
                dpg.configure_item(
                    f"em_int_{side}",
                    p1=(sx1 + 2, iy),
                    p2=(sx1 + 12, iy - 6),
                    p3=(sx1 + 12, iy + 6),
                    show=True,
                )
                dpg.configure_item(f"em_int_label_{side}", pos=(sx1 + 15, iy - 8), show=True)
            else:
                dpg.configure_item(f"em_int_{side}", show=False)
                dpg.configure_item(f"em_int_label_{side}", show=False)
            label = f"{side} ▶" if side == audible else side
            dpg.configure_item(f"em_meter_label_{side}", text=label, color=_rgba(base))
            self._update_values(dpg, side, p)

    def _update_values(self, dpg: Any, side: str, p: PathFrame | None) -> None:
        v = p.values if p else {}
        t = self.targets
        dpg.set_value(f"em_val_S_{side}", _fmt(v.get("short_term_lufs")))
        rows = (
            ("I", v.get("integrated_lufs"), judge("integrated", v.get("integrated_lufs"), t)),
            ("LRA", v.get("loudness_range_lu"), judge("lra", v.get("loudness_range_lu"), t)),
            ("TP", v.get("true_peak_dbtp"), judge("true_peak", v.get("true_peak_dbtp"), t)),
            ("PLR", v.get("plr_db"), judge("plr", v.get("plr_db"), t)),
            ("PSR", v.get("psr_db"), judge("psr", v.get("psr_db"), t)),
        )
        for key, value, word in rows:
            dpg.set_value(f"em_val_{key}_{side}", _fmt(value, 1))
            dpg.set_value(f"em_state_{key}_{side}", word)
            dpg.configure_item(f"em_state_{key}_{side}", color=STATE_COL[word])
        overs = int(v.get("overs") or 0)
        dpg.set_value(
            f"em_hold_{side}", f"hold {_fmt(v.get('true_peak_hold_dbtp'))} · overs {overs}"
        )
        dpg.configure_item(f"em_hold_{side}", color=PROBLEM_COL if overs else TEXT_DIM)
        dpg.set_value(
            f"em_sub_PSR_{side}", f"min {_fmt(v.get('psr_min_db'))} · floor {t.psr_min_db:g}"
        )

    def _update_stereo(self, dpg: Any, frame: Frame) -> None:
        pa, pb = self._ab(frame)
        audible = "B" if frame.h("audible") else "A"
        x0, x1 = self._corr_x
        mid = (x0 + x1) / 2
        for row, (side, p) in enumerate((("A", pa), ("B", pb))):
            c = p.values["correlation"] if p else None
            y = 16 + row * 20
            x = mid if c is None else x0 + (max(-1.0, min(1.0, c)) + 1) / 2 * (x1 - x0)
            lo, hi = (x, mid) if x < mid else (mid, x)
            dpg.configure_item(
                f"em_corr_bar_{side}", pmin=(lo, y - 5), pmax=(max(hi, lo + 2), y + 5)
            )
            word = judge_correlation(c)
            dpg.set_value(f"em_corr_val_{side}", f"  {side} {_fmt(c, 2, signed=True)} {word}")
            dpg.configure_item(f"em_corr_val_{side}", color=STATE_COL[word])
            self._update_gonio(dpg, side, p, side == audible, row)

    def _update_gonio(self, dpg: Any, side: str, p: PathFrame | None, audible: bool, k: int):
        """Accumulate the newest points into a decaying density image (phosphor persistence)."""
        glow = self._phosphor[k]
        glow *= GONIO_DECAY
        if p is not None and len(p.gonio):
            left = p.gonio[:, 0].astype(np.float64)
            right = p.gonio[:, 1].astype(np.float64)
            x = (right - left) * math.sqrt(0.5)  # side: L up-left, R up-right
            y = (left + right) * math.sqrt(0.5)  # mid: up
            peak = float(max(np.max(np.abs(x)), np.max(np.abs(y))))
            # Auto-gain: down at once, up slowly, so the trace fills the scope without pumping.
            want = 0.92 / peak if peak > 1e-6 else self._gonio_gain[k]
            g = self._gonio_gain[k]
            g = want if want < g else g + 0.1 * (want - g)
            self._gonio_gain[k] = g
            n = GONIO_PX
            # Join successive points, about a pixel apart: a trace, as on an analogue
            # scope, rather than a scatter of isolated dots.
            hop = np.maximum(np.abs(np.diff(x)), np.abs(np.diff(y))) * g * 0.5 * n
            steps = int(np.clip(np.ceil(np.percentile(hop, 95)) if len(hop) else 1, 1, 32))
            x = _interpolate(x, steps)
            y = _interpolate(y, steps)
            ix = np.clip(((x * g + 1.0) * 0.5 * (n - 1)).round().astype(np.int64), 0, n - 1)
            iy = np.clip(((1.0 - y * g) * 0.5 * (n - 1)).round().astype(np.int64), 0, n - 1)
            glow += np.bincount(iy * n + ix, minlength=n * n).reshape(n, n)
        level = 1.0 - np.exp(-glow * 0.6)
        base = A_COL if side == "A" else B_COL
        colour = np.array(base if audible else _dimmed(base, 0.6), dtype=np.float32) / 255.0
        rgba = self._gonio_rgba[k]
        rgba[..., :3] = colour
        rgba[..., 3] = level
        dpg.set_value(f"em_gonio_tex_{side}", rgba.reshape(-1))
        dpg.configure_item(f"em_gonio_label_{side}", text=f"{side} ▶" if audible else side)

    def _x_range(self, frame: Frame) -> tuple[float, float]:
        pa, pb = self._ab(frame)
        now = max((p.values["history_end_s"] or 0.0) for p in (pa, pb) if p) if (pa or pb) else 0
        w = self.window_s
        flag = self.selected_flag
        if flag is not None and not self.follow:
            start = float(flag.get("start_s") or 0.0)
            end = float(flag.get("end_s") or start)
            centre = (start + end) / 2
            return centre - w / 2, centre + w / 2
        hi = max(now, w * 0.9) + w * 0.1 if now else w
        return hi - w, hi

    def _update_history(self, dpg: Any, frame: Frame) -> None:
        lo, hi = self._x_range(frame)
        for axis in ("em_loud_x", "em_lane_x", "em_psr_x"):
            dpg.set_axis_limits(axis, lo, hi)
        step = _tick_step(hi - lo)
        first = math.ceil(lo / step) * step
        ticks = tuple((_mmss(v), float(v)) for v in np.arange(first, hi + 1e-9, step))
        for axis in ("em_loud_x", "em_lane_x", "em_psr_x"):
            dpg.set_axis_ticks(axis, ticks)
        pa, pb = self._ab(frame)
        for side, p in (("A", pa), ("B", pb)):
            if p is None or not len(p.history_t_s):
                for tag in (f"em_loud_S_{side}", f"em_loud_M_{side}", f"em_psr_{side}"):
                    dpg.set_value(tag, [[], []])
                continue
            t = p.history_t_s
            keep = (t >= lo - 1.0) & (t <= hi + 1.0)
            tt = t[keep].tolist()
            for tag, curve in (
                (f"em_loud_S_{side}", "short_term_lufs"),
                (f"em_loud_M_{side}", "momentary_lufs"),
                (f"em_psr_{side}", "psr_db"),
            ):
                dpg.set_value(tag, [tt, p.history[curve][keep].tolist()])
        tg = self.targets
        dpg.set_value("em_loud_target", [[lo, hi], [tg.target_lufs, tg.target_lufs]])
        dpg.set_value(
            "em_loud_tol",
            [
                [lo, hi],
                [tg.target_lufs - tg.tolerance_lu] * 2,
                [tg.target_lufs + tg.tolerance_lu] * 2,
            ],
        )
        floor = tg.psr_min_db
        dpg.set_value("em_psr_zone", [[lo, hi], [0.0, 0.0], [floor, floor]])
        dpg.set_value("em_psr_floor", [[lo, hi], [floor, floor]])
        dpg.configure_item("em_psr_zone", label=f"PSR < {floor:g} dB: over-compressed")
        self._update_lane(dpg, frame)
        self._update_markers(dpg, frame, lo, hi)

    def _update_lane(self, dpg: Any, frame: Frame) -> None:
        a, b = int(frame.h("a") or 0), int(frame.h("b") or 0)
        used = {"A": 0, "B": 0}
        for flag in frame.info.get("flags", []):
            path = flag.get("path")
            rows = [r for r, i in (("A", a), ("B", b)) if path == i]
            for row in rows:
                k = used[row]
                if k >= FLAG_POOL:
                    continue
                used[row] += 1
                start = float(flag.get("start_s") or 0.0)
                end = flag.get("end_s")
                if end is None:  # still open: up to now
                    p = frame.paths[path] if path < len(frame.paths) else None
                    end = (p.values["history_end_s"] if p else None) or start
                y0, y1 = (1.08, 1.92) if row == "A" else (0.08, 0.92)
                tag = f"em_lane_{row}_{k}"
                dpg.set_value(tag, lane_shade(flag, float(end), y0, y1))
                word = flag_word(flag.get("severity"))
                dpg.bind_item_theme(
                    tag, self._themes[f"solid_{'problem' if word == PROBLEM else 'watch'}"]
                )
                dpg.configure_item(tag, show=True)
        for row in ("A", "B"):
            for k in range(used[row], FLAG_POOL):
                dpg.configure_item(f"em_lane_{row}_{k}", show=False)
        sel = self.selected_flag
        if sel is not None:
            s = float(sel.get("start_s") or 0.0)
            e = float(sel.get("end_s") if sel.get("end_s") is not None else s)
            dpg.set_value("em_lane_sel", [[s, s, e, e, s], [0.02, 1.98, 1.98, 0.02, 0.02]])
        else:
            dpg.set_value("em_lane_sel", [[], []])

    def _update_markers(self, dpg: Any, frame: Frame, lo: float, hi: float) -> None:
        markers = frame.info.get("markers", [])[-MARKER_POOL:]
        pa, _ = self._ab(frame)
        wall = frame.h("wall_time_s") or time.time()
        now = pa.values["history_end_s"] if pa else None
        for k in range(MARKER_POOL):
            if k < len(markers) and now is not None:
                m = markers[k]
                # Markers are stamped with wall time; the history's clock is programme time.
                t = now - (wall - float(m.get("time", wall)))
                dpg.set_value(f"em_marker_{k}", [[t]])
                dpg.configure_item(f"em_marker_{k}", show=True)
                dpg.configure_item(
                    f"em_marker_label_{k}",
                    default_value=(t, LOUDNESS_RANGE[1]),
                    label=str(m.get("label", "marker")),
                    show=lo <= t <= hi,
                )
            else:
                dpg.configure_item(f"em_marker_{k}", show=False)
                dpg.configure_item(f"em_marker_label_{k}", show=False)

    def _update_spectrum(self, dpg: Any, frame: Frame) -> None:
        pa, pb = self._ab(frame)
        for side, p in (("A", pa), ("B", pb)):
            if p is None or not len(p.band_hz):
                dpg.set_value(f"em_sharp_{side}", "")
                dpg.set_value(f"em_spec_{side}", [[], []])
                dpg.set_value(f"em_spec_long_{side}", [[], []])
                continue
            hz = p.band_hz.astype(np.float64).tolist()
            dpg.set_value(
                f"em_sharp_{side}",
                f"  {side} sharpness {_fmt(p.values.get('sharpness_short_acum'), 2)}"
                f" · prog {_fmt(p.values.get('sharpness_acum'), 2)} acum",
            )
            dpg.set_value(f"em_spec_{side}", [hz, p.spectrum_short_db.astype(np.float64).tolist()])
            dpg.set_value(
                f"em_spec_long_{side}", [hz, p.spectrum_long_db.astype(np.float64).tolist()]
            )
        # The profile's tonal band, relative to the audible path's integrated loudness.
        tg = self.targets
        audible = pb if frame.h("audible") else pa
        ref = audible.values["integrated_lufs"] if audible else None
        if tg.tonal and ref is not None:
            hz = [r[0] for r in tg.tonal]
            dpg.set_value(
                "em_spec_band", [hz, [ref + r[1] for r in tg.tonal], [ref + r[2] for r in tg.tonal]]
            )
            dpg.configure_item("em_spec_band", show=True)
        else:
            dpg.set_value("em_spec_band", [[], [], []])
            dpg.configure_item("em_spec_band", show=False)
        self._update_harsh(dpg, frame, pa, pb)

    def _update_harsh(self, dpg: Any, frame: Frame, pa: PathFrame | None, pb: PathFrame | None):
        """Outline a harsh band of A or B while a harsh_highs flag is open on it."""
        a, b = int(frame.h("a") or 0), int(frame.h("b") or 0)
        flags = [f for f in frame.info.get("flags", []) if f.get("code") == "harsh_highs"]
        for side, index, p in (("A", a, pa), ("B", b, pb)):
            now = p.values["history_end_s"] if p else None
            shown = 0
            for flag in flags:
                if flag.get("path") != index or shown >= 2:
                    continue
                end = flag.get("end_s")
                if now is not None and end is not None and now - float(end) > 3.0:
                    continue  # closed a while ago: the list keeps it, the spectrum moves on
                band = flag.get("band_hz") or [2000.0, 5000.0]
                lo_hz, hi_hz = float(band[0]), float(band[1])
                levels = (
                    [
                        lvl
                        for hz, lvl in zip(p.band_hz, p.spectrum_short_db, strict=False)
                        if lo_hz <= hz <= hi_hz and math.isfinite(lvl)
                    ]
                    if p
                    else []
                )
                top = max(levels) + 3.0 if levels else -20.0
                bottom = min(levels) - 3.0 if levels else -60.0
                tag = f"em_harsh_{side}_{shown}"
                xs = [lo_hz, lo_hz, hi_hz, hi_hz, lo_hz]
                dpg.set_value(tag, [xs, [bottom, top, top, bottom, bottom]])
                dpg.configure_item(tag, show=True)
                excess = flag.get("value")
                unit = flag.get("unit") or "dB"
                text = f"{side} {band_text(lo_hz, hi_hz)} {_fmt(excess, 1, signed=True)} {unit}"
                dpg.configure_item(
                    f"em_harsh_label_{side}_{shown}",
                    label=text,
                    default_value=(math.sqrt(lo_hz * hi_hz), top),
                    show=True,
                )
                shown += 1
            for k in range(shown, 2):
                dpg.configure_item(f"em_harsh_{side}_{k}", show=False)
                dpg.configure_item(f"em_harsh_label_{side}_{k}", show=False)

    def _update_info(self, dpg: Any, frame: Frame) -> None:
        info = frame.info
        tg = self.targets
        pname = f"profile: {tg.name}" if tg.from_profile else "profile: none (streaming defaults)"
        dpg.set_value(
            "em_hdr_profile",
            f"{pname} · target {_fmt(tg.target_lufs, 0)} LUFS / {_fmt(tg.ceiling_dbtp, 1)} dBTP",
        )
        midi = info.get("midi")
        dpg.set_value("em_hdr_midi", f"MIDI {midi}" if midi else "MIDI: no controller")
        self._update_flags(dpg, frame)
        self._update_chains(dpg, frame)
        status = info.get("status") or []
        lines = [s.get("text", "") for s in status[-3:]]
        if self.sender.failed:
            lines.append(f"commands not delivered: {self.sender.last_error}")
        dpg.set_value("em_status", "\n".join(lines))
        commands = info.get("commands") or {}
        dpg.configure_item("em_btn_snapshot", enabled=bool(commands.get("snapshot", False)))

    def _update_flags(self, dpg: Any, frame: Frame) -> None:
        names = self._names(frame)
        flags = list(reversed(frame.info.get("flags", [])))
        self._flags_view = flags
        dpg.delete_item("em_flags", children_only=True, slot=1)
        a, b = int(frame.h("a") or 0), int(frame.h("b") or 0)
        for k, flag in enumerate(flags):
            word = flag_word(flag.get("severity"))
            path = flag.get("path")
            side = "A" if path == a else ("B" if path == b else "·")
            start = flag.get("start_s")
            end = flag.get("end_s")
            when = _mmss(float(start or 0.0)) + (
                "–" + _mmss(float(end)) if end is not None else "–now"
            )
            with dpg.table_row(parent="em_flags", tag=f"em_flag_row_{k}"):
                dpg.add_selectable(
                    label=word,
                    span_columns=True,
                    tag=f"em_flag_{k}",
                    callback=_no_args(lambda f=flag: self.select_flag(f)),
                    default_value=flag is self.selected_flag,
                )
                dpg.bind_item_theme(f"em_flag_{k}", self._text_theme(STATE_COL[word]))
                dpg.add_text(when, tag=f"em_flag_when_{k}")
                colour = A_COL if side == "A" else (B_COL if side == "B" else TEXT_DIM)
                dpg.add_text(side, color=colour, tag=f"em_flag_path_{k}")
                dpg.add_text(flag_what(flag), tag=f"em_flag_code_{k}")
                name = names[path] if isinstance(path, int) and path < len(names) else ""
                dpg.add_text(str(flag.get("message", "")) or name, wrap=0, tag=f"em_flag_msg_{k}")
        dpg.set_value(
            "em_flags_count",
            f"{len(flags)} · newest first; click one to centre the history on it",
        )

    def _text_theme(self, colour: tuple[int, int, int]) -> Any:
        key = f"text_{colour}"
        if key not in self._themes:
            dpg = self._dpg
            with dpg.theme() as th, dpg.theme_component(dpg.mvAll):
                dpg.add_theme_color(dpg.mvThemeCol_Text, colour)
            self._themes[key] = th
        return self._themes[key]

    def _update_chains(self, dpg: Any, frame: Frame) -> None:
        paths = frame.info.get("paths", [])
        a, b = int(frame.h("a") or 0), int(frame.h("b") or 0)
        key = repr([(i, paths[i].get("chain")) for i in (a, b) if i < len(paths)])
        if key == self._chain_key:
            return
        self._chain_key = key
        dpg.delete_item("em_chain", children_only=True)
        shown = False
        for side, index in (("A", a), ("B", b)):
            if index >= len(paths) or (side == "B" and b == a):
                continue
            chain = paths[index].get("chain")
            if not chain:
                continue
            shown = True
            with dpg.group(horizontal=True, parent="em_chain"):
                dpg.add_text(
                    f"{side} · {chain.get('name', '')}", color=A_COL if side == "A" else B_COL
                )
                bypassed = chain.get("bypassed", False)
                btn = dpg.add_button(
                    label="BYPASSED (B)" if bypassed else "bypass chain (B)",
                    tag=f"em_chain_bypass_{side}",
                    height=24,
                    callback=_no_args(lambda i=index: self.bypass_chain(i)),
                )
                dpg.bind_item_theme(
                    btn, self._themes["button_bypassed" if bypassed else "button_off"]
                )
            for k, plugin in enumerate(chain.get("plugins", [])):
                by = plugin.get("bypass", False)
                with dpg.group(horizontal=True, parent="em_chain"):
                    btn = dpg.add_button(
                        label="BYP" if by else "ON",
                        width=44,
                        height=22,
                        tag=f"em_plugin_{side}_{k}",
                        callback=_no_args(lambda i=index, j=k: self.bypass_plugin(i, j)),
                    )
                    dpg.bind_item_theme(
                        btn, self._themes["button_bypassed" if by else "button_active"]
                    )
                    params = " · ".join(_param_text(p) for p in plugin.get("params", []))
                    dpg.add_text(
                        f"{plugin.get('title', '')}  {params}",
                        wrap=self._chain_wrap,
                        color=TEXT_DIM if by else TEXT,
                    )
        if not shown:
            dpg.add_text(
                "no chain on A or B (both play as they are)", parent="em_chain", color=TEXT_DIM
            )

    def update_monitor(self, dpg: Any, frame: Frame) -> None:
        words = []
        for key in ("dim", "mono", "mute"):
            on = bool(frame.h(key))
            dpg.bind_item_theme(f"em_mon_{key}", self._themes["button_on" if on else "button_off"])
            if on:
                words.append(key.upper())
        dpg.set_value("em_monitor_state", "monitor: " + (" ".join(words) or "normal"))
        match = bool(frame.h("loudness_match"))
        dpg.bind_item_theme("em_btn_match", self._themes["button_on" if match else "button_off"])

    # -- geometry for tests and screenshots -----------------------------------------------

    def geometry(self) -> dict[str, Any]:
        """Where things are on the viewport (pixels), for tests that read the frame buffer."""
        dpg = self._dpg
        tags = [
            "em_meters", "em_lane_plot", "em_loud_plot", "em_psr_plot", "em_spec_plot",
            "em_hdr_A", "em_hdr_B", "em_btn_marker", "em_btn_ab", "em_keys", "em_corr",
            "em_gonio_A", "em_gonio_B",
        ] + [f"em_flag_{k}" for k in range(len(self._flags_view))]  # fmt: skip
        out: dict[str, Any] = {}
        for tag in tags:
            if not dpg.does_item_exist(tag):
                continue
            state = dpg.get_item_state(tag)
            if "rect_min" in state:
                out[tag] = {"min": list(state["rect_min"]), "size": list(state["rect_size"])}
        out["bars"] = {f"{s}{k}": list(v) for (s, k), v in self.BARS.items()}
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
                self._chain_key = ""
                return reader.read()
        return frame


def flag_count(flag: dict) -> int:
    """How many occurrences a flag groups (the frame may carry only the latest ones)."""
    n = flag.get("occurrence_count")
    if isinstance(n, int):
        return n
    occ = flag.get("occurrences")
    return len(occ) if isinstance(occ, list) else 1


def flag_what(flag: dict) -> str:
    """The flag list's "what" column: the code, and how many times for a group
    (``clipping ×7``): one row per flag, however often the problem came back."""
    n = flag_count(flag)
    code = str(flag.get("code", ""))
    return f"{code} ×{n}" if n > 1 else code


def lane_shade(flag: dict, end_s: float, y0: float, y1: float) -> list[list[float]]:
    """A flag's bar on its lane, as a shade series' (x, y1, y2): one segment per
    occurrence (zero height between them), or one over ``start_s``-``end_s``."""
    spans = []
    for o in flag.get("occurrences") or ():
        if isinstance(o, dict) and o.get("start_s") is not None and o.get("end_s") is not None:
            spans.append((float(o["start_s"]), float(o["end_s"])))
    if not spans:
        spans = [(float(flag.get("start_s") or 0.0), end_s)]
    x: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    for start, end in spans:
        end = max(end, start + 0.3)  # a 100 ms over stays visible
        x += [start, start, end, end]
        lo += [y0, y0, y0, y0]
        hi += [y0, y1, y1, y0]
    return [x, lo, hi]


def _interpolate(v: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points per interval between successive values (linear), plus the last one."""
    if len(v) < 2:
        return v
    t = np.arange(steps) / steps
    inner = v[:-1, None] + (v[1:] - v[:-1])[:, None] * t
    return np.concatenate([inner.reshape(-1), v[-1:]])


def judge_correlation(c: float | None) -> str:
    """Phase correlation in words: the negative half is the danger zone of a phase meter."""
    if c is None:
        return NONE
    if c < -0.2:
        return PROBLEM
    return WATCH if c < 0.0 else OK


def _tick_step(span: float) -> float:
    for step in (5.0, 10.0, 15.0, 30.0, 60.0, 120.0):
        if span / step <= 8:
            return step
    return 300.0


def _param_text(param: Any) -> str:
    name, value, unit = [*list(param), "", "", ""][:3]
    if isinstance(value, float):
        value = f"{value:g}"
    value = str(value).replace("-", "−")
    return f"{name.replace('_', ' ')} {value}{(' ' + unit) if unit else ''}"


def _no_args(fn: Callable[[], Any]) -> Callable[..., None]:
    def callback(*_: Any) -> None:
        fn()

    return callback


# -- the app loop -----------------------------------------------------------------------------


def _no_display() -> bool:
    """True (after saying why on stderr) when no display can show the window."""
    ok, reason = display_available()
    if not ok:
        print(
            f"earmark: {reason}: the dashboard cannot open; use the terminal view "
            "(earmark run --no-ui)",
            file=sys.stderr,
        )
    return not ok


def run(
    dashboard: Dashboard,
    *,
    title: str = "earmark",
    seconds: float | None = None,
    screenshot: str | None = None,
    screenshot_after_s: float = 10.0,
    max_fps: float = MAX_FPS,
    max_load: float = MAX_LOAD,
    on_frame: Callable[[Dashboard, Any], bool] | None = None,
) -> int:
    """Create the viewport and run the throttled render loop until closed (or ``seconds``).

    ``on_frame(dashboard, dpg)`` runs after each rendered frame (tests drive the
    window from it); returning False ends the loop.
    """
    if _no_display():
        return EXIT_NO_DISPLAY
    import dearpygui.dearpygui as dpg

    dpg.create_context()
    try:
        dpg.configure_app(manual_callback_management=True)
        dashboard.build()
        dpg.create_viewport(
            title=title,
            width=dashboard.width,
            height=dashboard.height,
            x_pos=0,
            y_pos=0,
            vsync=True,
            clear_color=_rgba(BG),
        )
        dpg.setup_dearpygui()
        dpg.show_viewport()
        period = 1.0 / max_fps
        start = time.monotonic()
        shot_done = screenshot is None
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        last_seq, last_render = -1, 0.0
        while dpg.is_dearpygui_running() and not stop["now"]:
            t0 = time.monotonic()
            # Draw when the session published something new (30 Hz), and at least at
            # IDLE_FPS so input is answered while nothing moves; never over max_fps.
            if dashboard.peek() == last_seq and t0 - last_render < 1 / IDLE_FPS:
                time.sleep(period / 2)
                continue
            last_render = t0
            frame = dashboard.read()
            if frame is not None:
                last_seq = frame.seq
                dashboard.update(frame)
            dpg.run_callbacks(dpg.get_callback_queue())
            t1 = time.monotonic()
            dpg.render_dearpygui_frame()
            t2 = time.monotonic()
            dashboard.frame_times_ms.append((t2 - t0) * 1e3)
            dashboard.update_times_ms.append((t1 - t0) * 1e3)
            if not shot_done and time.monotonic() - start >= screenshot_after_s:
                dpg.output_frame_buffer(file=screenshot)
                shot_done = True
                dpg.render_dearpygui_frame()  # the file is written during a frame
            if on_frame is not None and on_frame(dashboard, dpg) is False:
                break
            if seconds is not None and time.monotonic() - start >= seconds and shot_done:
                break
            # Never more than max_load of a core on drawing: with software GL (Xvfb, no
            # GPU) a frame can take tens of milliseconds, and the audio comes first.
            spent = time.monotonic() - t0
            rest = max(period - spent, spent * (1.0 / max_load - 1.0))
            if rest > 0:
                time.sleep(rest)
    finally:
        dpg.destroy_context()
    return EXIT_OK


def be_polite() -> None:
    """Step back for the audio: a lower CPU priority, and one thread for Mesa's software
    renderer (llvmpipe would otherwise rasterise on every core at once). Both only
    matter on machines without a GPU; call before Dear PyGui is imported."""
    os.environ.setdefault("LP_NUM_THREADS", "1")
    with contextlib.suppress(OSError):
        os.nice(5)


def main(argv: list[str] | None = None) -> int:
    """``python -m earmark.ui.dashboard --frame NAME --commands SOCKET``."""
    parser = argparse.ArgumentParser(
        prog="earmark-dashboard", description="The earmark dashboard on a running session."
    )
    parser.add_argument("--frame", required=True, help="state frame (shared memory) name")
    parser.add_argument("--commands", default=None, help="the session's command socket")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--seconds", type=float, default=None, help="close after N seconds")
    parser.add_argument("--screenshot", default=None, metavar="PNG")
    parser.add_argument("--screenshot-after", type=float, default=10.0, metavar="S")
    parser.add_argument(
        "--frame-times",
        default=None,
        metavar="FILE",
        help="write every frame's time (ms) to FILE at exit",
    )
    parser.add_argument(
        "--pointer",
        default=None,
        metavar="X,Y",
        help="move the pointer here first (keeps hover readouts off plots)",
    )
    args = parser.parse_args(argv)
    be_polite()
    if _no_display():
        return EXIT_NO_DISPLAY
    try:
        reader = StateFrameReader(args.frame)
    except StateFrameError as exc:
        print(f"earmark: {exc}", file=sys.stderr)
        return EXIT_NO_SESSION
    if args.pointer:
        from .xdisplay import XInput

        x, y = (int(v) for v in args.pointer.split(","))
        xin = XInput()
        xin.move(x, y)
        xin.close()
    dash = Dashboard(reader, CommandSender(args.commands), width=args.width, height=args.height)
    rc = run(
        dash,
        seconds=args.seconds,
        screenshot=args.screenshot,
        screenshot_after_s=args.screenshot_after,
    )
    if args.frame_times:
        Path(args.frame_times).write_text(
            "\n".join(
                f"{t:.3f} {u:.3f}"
                for t, u in zip(dash.frame_times_ms, dash.update_times_ms, strict=True)
            )
        )
    reader.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
