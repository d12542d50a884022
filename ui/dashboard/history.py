"""The history panel: the loudness history (short-term bold, momentary faint, A and B
overlaid, the target and its tolerance, markers), the flag lane where each flag of A or B
happened, and the PSR history with the profile's over-compressed zone; over a window of
30 s to 10 min that follows the programme or centres on a selected flag."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ..judgement import PROBLEM, flag_word
from ..stateframe import Frame
from .frames import ab, ab_indices
from .style import PANEL_EDGE, TEXT_DIM, axis, mmss, plot, rgba

if TYPE_CHECKING:
    from .window import Dashboard

HISTORY_WINDOWS_S = {"30 s": 30.0, "1 min": 60.0, "2 min": 120.0, "5 min": 300.0, "10 min": 600.0}
LOUDNESS_RANGE = (-36.0, 0.0)
PSR_RANGE = (0.0, 22.0)
FLAG_POOL = 24  # shaded flags per lane row
MARKER_POOL = 16


class HistoryPanel:
    """The centre column: loudness, flag lane and PSR over time, on one linked time axis."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def _on_window(self, _sender: Any, value: str, *_: Any) -> None:
        self.dash.window_s = HISTORY_WINDOWS_S.get(value, 60.0)
        self.dash.redraw_history()

    def _on_follow(self, _sender: Any, value: bool, *_: Any) -> None:
        self.dash.follow = bool(value)
        if self.dash.follow:
            self.dash.selected_flag = None
        self.dash.redraw_history()

    def build(self, dpg: Any, width: int, height: int) -> None:
        """Create the window choice, the follow switch and the three linked plots."""
        style = self.dash.style
        with dpg.group(horizontal=True):
            t = dpg.add_text("LOUDNESS HISTORY", tag="em_hist_title")
            style.font(t, "head")
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

    def _build_loudness_plot(self, dpg: Any) -> None:
        style = self.dash.style
        with plot(dpg, "em_loud_plot"):
            dpg.add_plot_legend(location=dpg.mvPlot_Location_SouthWest, horizontal=True)
            axis(dpg, dpg.mvXAxis, "em_loud_x", no_tick_labels=True)
            y = axis(dpg, dpg.mvYAxis, "em_loud_y", label="LUFS")
            dpg.set_axis_limits(y, *LOUDNESS_RANGE)
            ln, sh = dpg.add_line_series, dpg.add_shade_series
            style.series(
                dpg, sh, y, "em_loud_tol", "fill_target", [0.0, 1.0], [0.0, 0.0], y2=[0.0, 0.0]
            )
            style.series(dpg, ln, y, "em_loud_target", "faint_target", [0.0, 1.0], [0.0, 0.0])
            for side in ("A", "B"):
                style.series(
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
                style.series(
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
                style.series(
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
                    color=rgba(PANEL_EDGE, 200),
                    parent="em_loud_plot",
                    offset=(4, 8),
                    clamped=True,
                )

    def _build_lane_plot(self, dpg: Any) -> None:
        style = self.dash.style
        with plot(dpg, "em_lane_plot"):
            axis(dpg, dpg.mvXAxis, "em_lane_x", no_tick_labels=True)
            y = axis(dpg, dpg.mvYAxis, "em_lane_y", no_gridlines=True)
            dpg.set_axis_limits(y, 0.0, 2.0)
            dpg.set_axis_ticks(y, (("B", 0.5), ("A", 1.5)))
            for row in ("A", "B"):
                for k in range(FLAG_POOL):
                    style.series(
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
            style.series(dpg, dpg.add_line_series, y, "em_lane_sel", "line_target", [], [])

    def _build_psr_plot(self, dpg: Any) -> None:
        style = self.dash.style
        with plot(dpg, "em_psr_plot"):
            dpg.add_plot_legend(location=dpg.mvPlot_Location_NorthWest, horizontal=True)
            axis(dpg, dpg.mvXAxis, "em_psr_x")
            y = axis(dpg, dpg.mvYAxis, "em_psr_y", label="PSR dB")
            dpg.set_axis_limits(y, *PSR_RANGE)
            style.series(
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
            style.series(
                dpg, dpg.add_line_series, y, "em_psr_floor", "faint_problem", [0.0, 1.0], [8.0, 8.0]
            )
            for side in ("A", "B"):
                style.series(
                    dpg,
                    dpg.add_line_series,
                    y,
                    f"em_psr_{side}",
                    f"line_{side}",
                    [],
                    [],
                    label=f"{side} PSR",
                )

    def _x_range(self, frame: Frame) -> tuple[float, float]:
        pa, pb = ab(frame)
        now = max((p.values["history_end_s"] or 0.0) for p in (pa, pb) if p) if (pa or pb) else 0
        w = self.dash.window_s
        flag = self.dash.selected_flag
        if flag is not None and not self.dash.follow:
            start = float(flag.get("start_s") or 0.0)
            end = float(flag.get("end_s") or start)
            centre = (start + end) / 2
            return centre - w / 2, centre + w / 2
        hi = max(now, w * 0.9) + w * 0.1 if now else w
        return hi - w, hi

    def update(self, dpg: Any, frame: Frame) -> None:
        """Curves, target, zone, lane and markers (when new 10 Hz rows arrived, or the
        window, the selection or the flags changed)."""
        lo, hi = self._x_range(frame)
        for x_axis in ("em_loud_x", "em_lane_x", "em_psr_x"):
            dpg.set_axis_limits(x_axis, lo, hi)
        step = tick_step(hi - lo)
        first = math.ceil(lo / step) * step
        ticks = tuple((mmss(v), float(v)) for v in np.arange(first, hi + 1e-9, step))
        for x_axis in ("em_loud_x", "em_lane_x", "em_psr_x"):
            dpg.set_axis_ticks(x_axis, ticks)
        pa, pb = ab(frame)
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
        tg = self.dash.targets
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
        a, b = ab_indices(frame)
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
                    tag,
                    self.dash.style.themes[f"solid_{'problem' if word == PROBLEM else 'watch'}"],
                )
                dpg.configure_item(tag, show=True)
        for row in ("A", "B"):
            for k in range(used[row], FLAG_POOL):
                dpg.configure_item(f"em_lane_{row}_{k}", show=False)
        sel = self.dash.selected_flag
        if sel is not None:
            s = float(sel.get("start_s") or 0.0)
            e = float(sel.get("end_s") if sel.get("end_s") is not None else s)
            dpg.set_value("em_lane_sel", [[s, s, e, e, s], [0.02, 1.98, 1.98, 0.02, 0.02]])
        else:
            dpg.set_value("em_lane_sel", [[], []])

    def _update_markers(self, dpg: Any, frame: Frame, lo: float, hi: float) -> None:
        markers = frame.info.get("markers", [])[-MARKER_POOL:]
        pa, _ = ab(frame)
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


def tick_step(span: float) -> float:
    """Seconds between the time axis' ticks for a window ``span`` seconds wide."""
    for step in (5.0, 10.0, 15.0, 30.0, 60.0, 120.0):
        if span / step <= 8:
            return step
    return 300.0
