"""The meters panel: A and B's loudness bars (momentary, short-term) on one LUFS scale with
the target line and an integrated-loudness pointer, and the values beside them (short-term,
integrated, LRA, true peak with its hold and overs, PLR, PSR), each with its unit and a
word (OK / WATCH / PROBLEM) as well as a colour."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..judgement import judge
from ..stateframe import Frame, PathFrame
from .frames import ab, audible_side
from .style import (
    A_COL,
    B_COL,
    BAR_BG,
    PROBLEM_COL,
    STATE_COL,
    TARGET_COL,
    TEXT_DIM,
    TICK,
    dimmed,
    fmt,
    rgba,
)

if TYPE_CHECKING:
    from .window import Dashboard

METER_TOP_LUFS = 0.0
METER_BOTTOM_LUFS = -42.0
METER_TICK_LU = 6.0


class MetersPanel:
    """The left column: bars and values of A and B."""

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

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def build(self, dpg: Any) -> None:
        """Create the bars' drawlist and the values' table."""
        style = self.dash.style
        t = dpg.add_text("LOUDNESS  (LUFS)", tag="em_meters_title")
        style.font(t, "head")
        with dpg.drawlist(self.METER_W, self.METER_H, tag="em_meters"):
            for (side, kind), (x0, x1) in self.BARS.items():
                dpg.draw_rectangle(
                    (x0, self.METER_TOP),
                    (x1, self.METER_BOTTOM),
                    fill=rgba(BAR_BG),
                    color=rgba(BAR_BG),
                    tag=f"em_barbg_{side}{kind}",
                )
            v = METER_TOP_LUFS
            while v >= METER_BOTTOM_LUFS - 1e-9:
                y = self.meter_y(v)
                # Whole-pixel rows (5 px per LU): the one-pixel line is crisp, not smeared.
                dpg.draw_line((40, y), (self.METER_W - 8, y), color=rgba(TICK), thickness=1)
                dpg.draw_text((4, y - 8), fmt(v, 0), color=rgba(TEXT_DIM), size=15)
                v -= METER_TICK_LU
            # The target line lies behind the bars: a bar's top edge is never covered.
            for side in ("A", "B"):
                x0, x1 = self.BARS[(side, "M")][0], self.BARS[(side, "S")][1]
                dpg.draw_line(
                    (x0 - 6, 0),
                    (x1 + 6, 0),
                    color=rgba(TARGET_COL),
                    thickness=2,
                    tag=f"em_target_{side}",
                )
            for (side, kind), (x0, x1) in self.BARS.items():
                dpg.draw_rectangle(
                    (x0, self.METER_BOTTOM),
                    (x1, self.METER_BOTTOM),
                    fill=rgba(A_COL),
                    color=(0, 0, 0, 0),
                    thickness=0,
                    tag=f"em_bar_{side}{kind}",
                )
                dpg.draw_text(
                    ((x0 + x1) / 2 - 5, self.METER_BOTTOM + 3),
                    kind,
                    color=rgba(TEXT_DIM),
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
                    style.font(u, "small")
                for side in ("A", "B"):
                    t = dpg.add_text("–", tag=f"em_val_S_{side}")
                    style.font(t, "big")
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
                        style.font(u, "small")
                    for side in ("A", "B"):
                        with dpg.group():
                            with dpg.group(horizontal=True):
                                t = dpg.add_text("–", tag=f"em_val_{key}_{side}")
                                style.font(t, "value")
                                w = dpg.add_text("", tag=f"em_state_{key}_{side}")
                                style.font(w, "small")
                            if key == "TP":
                                s = dpg.add_text(
                                    "hold – · overs 0", tag=f"em_hold_{side}", color=TEXT_DIM
                                )
                                style.font(s, "small")
                            elif key == "PSR":
                                s = dpg.add_text("", tag=f"em_sub_{key}_{side}", color=TEXT_DIM)
                                style.font(s, "small")

    def update(self, dpg: Any, frame: Frame) -> None:
        """Bars, target line, integrated pointer and values (every new frame)."""
        pa, pb = ab(frame)
        audible = audible_side(frame)
        t = self.dash.targets
        for side, p in (("A", pa), ("B", pb)):
            base = A_COL if side == "A" else B_COL
            colour = base if side == audible and not frame.stale else dimmed(base, 0.6)
            if frame.stale:
                colour = TEXT_DIM
            for kind, name in (("M", "momentary_lufs"), ("S", "short_term_lufs")):
                x0, x1 = self.BARS[(side, kind)]
                value = p.values[name] if p else None
                top = self.meter_y(value) if value is not None else self.METER_BOTTOM
                fill = rgba(colour) if kind == "S" else rgba(dimmed(colour, 0.8))
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
            dpg.configure_item(f"em_meter_label_{side}", text=label, color=rgba(base))
            self._update_values(dpg, side, p)

    def _update_values(self, dpg: Any, side: str, p: PathFrame | None) -> None:
        v = p.values if p else {}
        t = self.dash.targets
        dpg.set_value(f"em_val_S_{side}", fmt(v.get("short_term_lufs")))
        rows = (
            ("I", v.get("integrated_lufs"), judge("integrated", v.get("integrated_lufs"), t)),
            ("LRA", v.get("loudness_range_lu"), judge("lra", v.get("loudness_range_lu"), t)),
            ("TP", v.get("true_peak_dbtp"), judge("true_peak", v.get("true_peak_dbtp"), t)),
            ("PLR", v.get("plr_db"), judge("plr", v.get("plr_db"), t)),
            ("PSR", v.get("psr_db"), judge("psr", v.get("psr_db"), t)),
        )
        for key, value, word in rows:
            dpg.set_value(f"em_val_{key}_{side}", fmt(value, 1))
            dpg.set_value(f"em_state_{key}_{side}", word)
            dpg.configure_item(f"em_state_{key}_{side}", color=STATE_COL[word])
        overs = int(v.get("overs") or 0)
        dpg.set_value(
            f"em_hold_{side}", f"hold {fmt(v.get('true_peak_hold_dbtp'))} · overs {overs}"
        )
        dpg.configure_item(f"em_hold_{side}", color=PROBLEM_COL if overs else TEXT_DIM)
        dpg.set_value(
            f"em_sub_PSR_{side}", f"min {fmt(v.get('psr_min_db'))} · floor {t.psr_min_db:g}"
        )
