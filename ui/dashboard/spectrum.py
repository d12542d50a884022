"""The spectrum panel: A and B's 1/3-octave spectra (the last 3 s bold, the programme
faint), their sharpness (DIN 45692), the profile's tonal band around the audible path's
loudness, and the harsh bands outlined while a harsh_highs flag is open on A or B."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from earmark.meters.flags import band_text

from ..stateframe import Frame, PathFrame
from .frames import ab, ab_indices
from .style import PROBLEM_COL, TEXT_DIM, axis, fmt, plot, rgba

if TYPE_CHECKING:
    from .window import Dashboard

SPECTRUM_RANGE_DB = (-90.0, -5.0)


class SpectrumPanel:
    """The top of the right column."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def build(self, dpg: Any, width: int) -> None:
        """Create the title line with the sharpness readings, and the plot."""
        style = self.dash.style
        with dpg.group(horizontal=True):
            t = dpg.add_text("SPECTRUM  A vs B")
            style.font(t, "head")
            dpg.add_text("1/3 oct · 3 s bold, programme faint", color=TEXT_DIM)
            # DIN 45692 sharpness, each at the same listening loudness (3 s, programme).
            for side in ("A", "B"):
                dpg.add_text("–", tag=f"em_sharp_{side}", color=TEXT_DIM)
        with plot(dpg, "em_spec_plot", width=width, height=226):
            dpg.add_plot_legend(location=dpg.mvPlot_Location_SouthWest, horizontal=True)
            x = axis(dpg, dpg.mvXAxis, "em_spec_x", scale=dpg.mvPlotScale_Log10)
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
            y = axis(dpg, dpg.mvYAxis, "em_spec_y", label="dB")
            dpg.set_axis_limits(y, *SPECTRUM_RANGE_DB)
            style.series(
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
                style.series(
                    dpg, dpg.add_line_series, y, f"em_spec_long_{side}", f"faint_{side}", [], []
                )
            for side in ("A", "B"):
                style.series(
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
                    style.series(
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
                        color=rgba(PROBLEM_COL, 220),
                        clamped=True,
                    )

    def update(self, dpg: Any, frame: Frame) -> None:
        """Spectra, sharpness, the profile's band and the harsh outlines (new 10 Hz rows)."""
        pa, pb = ab(frame)
        for side, p in (("A", pa), ("B", pb)):
            if p is None or not len(p.band_hz):
                dpg.set_value(f"em_sharp_{side}", "")
                dpg.set_value(f"em_spec_{side}", [[], []])
                dpg.set_value(f"em_spec_long_{side}", [[], []])
                continue
            hz = p.band_hz.astype(np.float64).tolist()
            dpg.set_value(
                f"em_sharp_{side}",
                f"  {side} sharpness {fmt(p.values.get('sharpness_short_acum'), 2)}"
                f" · prog {fmt(p.values.get('sharpness_acum'), 2)} acum",
            )
            dpg.set_value(f"em_spec_{side}", [hz, p.spectrum_short_db.astype(np.float64).tolist()])
            dpg.set_value(
                f"em_spec_long_{side}", [hz, p.spectrum_long_db.astype(np.float64).tolist()]
            )
        # The profile's tonal band, relative to the audible path's integrated loudness.
        tg = self.dash.targets
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
        a, b = ab_indices(frame)
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
                text = f"{side} {band_text(lo_hz, hi_hz)} {fmt(excess, 1, signed=True)} {unit}"
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
