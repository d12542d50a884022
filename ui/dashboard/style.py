"""How the dashboard looks: the palette, the fonts, the themes, the number formats, and
the plot helpers every panel draws with (one look for every panel)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..conventions import A_RGB, B_RGB
from ..judgement import NONE, OK, PROBLEM, WATCH

# Colours (RGB, 0-255). A and B are the terminal view's and the reports' too.
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

_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/dejavu",
    "/usr/local/share/fonts",
    os.path.expanduser("~/.local/share/fonts"),
    "/Library/Fonts",
)


def rgba(rgb: tuple[int, int, int], a: int = 255) -> tuple[int, int, int, int]:
    """``rgb`` with alpha ``a`` (Dear PyGui's colour tuples)."""
    return (rgb[0], rgb[1], rgb[2], a)


def dimmed(rgb: tuple[int, int, int], k: float = 0.55) -> tuple[int, int, int]:
    """``rgb`` moved towards the background: the path that is not heard."""
    return tuple(int(BG[i] + (rgb[i] - BG[i]) * k) for i in range(3))  # type: ignore[return-value]


def fmt(v: float | None, nd: int = 1, signed: bool = False) -> str:
    """A number with a real minus sign; an en dash when undefined."""
    if v is None or not math.isfinite(v):
        return "–"
    text = f"{v:+.{nd}f}" if signed else f"{v:.{nd}f}"
    return text.replace("-", "−")


def mmss(t: float) -> str:
    """Seconds as m:ss (with a real minus sign)."""
    sign = "−" if t < 0 else ""
    t = abs(t)
    return f"{sign}{int(t // 60)}:{int(t % 60):02d}"


def no_args(fn: Callable[[], Any]) -> Callable[..., None]:
    """A Dear PyGui callback that calls ``fn()`` (dropping sender and app data)."""

    def callback(*_: Any) -> None:
        fn()

    return callback


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
    """The window's fonts (0: Dear PyGui's built-in one)."""

    body: Any = 0
    small: Any = 0
    head: Any = 0
    value: Any = 0
    big: Any = 0
    found: bool = False


class Style:
    """The fonts and themes of one window (made once, inside its Dear PyGui context)."""

    def __init__(self) -> None:
        self.fonts = Fonts()
        self.themes: dict[str, Any] = {}
        self._dpg: Any = None

    def load(self, dpg: Any) -> None:
        """Load the fonts and make the themes."""
        self._dpg = dpg
        self._load_fonts(dpg)
        self._make_themes(dpg)

    def font(self, item: Any, which: str) -> None:
        """Give ``item`` the font ``which`` (body, small, head, value, big) if it was found."""
        font = getattr(self.fonts, which)
        if self.fonts.found and font:
            self._dpg.bind_item_font(item, font)

    def text_theme(self, colour: tuple[int, int, int]) -> Any:
        """A theme that colours text (made the first time a colour is asked for)."""
        key = f"text_{colour}"
        if key not in self.themes:
            dpg = self._dpg
            with dpg.theme() as th, dpg.theme_component(dpg.mvAll):
                dpg.add_theme_color(dpg.mvThemeCol_Text, colour)
            self.themes[key] = th
        return self.themes[key]

    def series(self, dpg: Any, add: Callable, parent: str, tag: str, theme: str, *a, **kw) -> Any:
        """Add a plot series with ``add`` and give it the theme named ``theme``."""
        item = add(*a, parent=parent, tag=tag, **kw)
        dpg.bind_item_theme(item, self.themes[theme])
        return item

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
        self.themes["global"] = glob
        for name, colour in (
            ("A", A_COL),
            ("B", B_COL),
            ("A_dim", dimmed(A_COL)),
            ("B_dim", dimmed(B_COL)),
            ("target", TARGET_COL),
            ("grid", TICK),
            ("ok", OK_COL),
            ("watch", WATCH_COL),
            ("problem", PROBLEM_COL),
        ):
            self.themes[f"line_{name}"] = self._series_theme(dpg, colour, 255, 2.0)
            self.themes[f"faint_{name}"] = self._series_theme(dpg, colour, 110, 1.0)
            self.themes[f"fill_{name}"] = self._series_theme(dpg, colour, 60, 1.0)
            self.themes[f"solid_{name}"] = self._series_theme(dpg, colour, 200, 1.0)
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
            self.themes[f"button_{name}"] = th

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
                        dpg.mvPlotCol_Line, rgba(colour, alpha), category=dpg.mvThemeCat_Plots
                    )
                    dpg.add_theme_color(
                        dpg.mvPlotCol_Fill, rgba(colour, alpha), category=dpg.mvThemeCat_Plots
                    )
                    dpg.add_theme_style(
                        dpg.mvPlotStyleVar_LineWeight, weight, category=dpg.mvThemeCat_Plots
                    )
                    dpg.add_theme_style(
                        dpg.mvPlotStyleVar_FillAlpha, 1.0, category=dpg.mvThemeCat_Plots
                    )
        return th


def plot(dpg: Any, tag: str, **kw: Any) -> Any:
    """A plot that only shows (no mouse readout, menus, box select or inputs)."""
    return dpg.plot(
        tag=tag,
        no_title=True,
        no_mouse_pos=True,
        no_menus=True,
        no_box_select=True,
        no_inputs=True,
        **kw,
    )


def axis(dpg: Any, kind: int, tag: str, **kw: Any) -> Any:
    """A plot axis without highlight, menus or side switching."""
    return dpg.add_plot_axis(
        kind, tag=tag, no_highlight=True, no_menus=True, no_side_switch=True, **kw
    )
