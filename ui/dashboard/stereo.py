"""The stereo panel: A and B's phase correlation on one scale (the negative half shaded
as the danger zone, with a word as well as a colour) and their goniometers, drawn as a
phosphor-style density image that decays over about a tenth of a second."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ..judgement import NONE, OK, PROBLEM, WATCH
from ..stateframe import Frame, PathFrame
from .frames import ab, audible_side
from .style import (
    A_COL,
    B_COL,
    OK_COL,
    PANEL_EDGE,
    PLOT_BG,
    PROBLEM_COL,
    STATE_COL,
    TEXT_DIM,
    TICK,
    dimmed,
    fmt,
    rgba,
)

if TYPE_CHECKING:
    from .window import Dashboard

GONIO_PX = 160  # the goniometer's density image, drawn one texel per pixel
GONIO_DECAY = 0.7  # per new frame (30 Hz): the trace fades over about a tenth of a second


class StereoPanel:
    """The bottom of the right column."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self._gonio_gain = [1.0, 1.0]
        self._phosphor = [np.zeros((GONIO_PX, GONIO_PX)) for _ in range(2)]
        self._gonio_rgba = [np.zeros((GONIO_PX, GONIO_PX, 4), np.float32) for _ in range(2)]
        self._corr_x = (0, 0)

    def build(self, dpg: Any, width: int) -> None:
        """Create the correlation scale and the two goniometers."""
        style = self.dash.style
        with dpg.group(horizontal=True):
            t = dpg.add_text("CORRELATION", tag="em_corr_title")
            style.font(t, "head")
            for side in ("A", "B"):
                dpg.add_text("–", tag=f"em_corr_val_{side}")
        cw = width
        with dpg.drawlist(cw, 64, tag="em_corr"):
            x0, x1 = 30, cw - 20
            mid = (x0 + x1) / 2
            dpg.draw_rectangle((x0, 6), (mid, 50), fill=rgba(PROBLEM_COL, 38), color=(0, 0, 0, 0))
            dpg.draw_rectangle((mid, 6), (x1, 50), fill=rgba(OK_COL, 26), color=(0, 0, 0, 0))
            for v in (-1.0, -0.5, 0.0, 0.5, 1.0):
                x = x0 + (v + 1) / 2 * (x1 - x0)
                dpg.draw_line((x, 6), (x, 50), color=rgba(TICK), thickness=1)
                dpg.draw_text((x - 8, 50), fmt(v, 1, signed=v != 0), size=12, color=rgba(TEXT_DIM))
            for row, side in enumerate(("A", "B")):
                y = 16 + row * 20
                dpg.draw_text(
                    (4, y - 8), side, size=16, color=rgba(A_COL if side == "A" else B_COL)
                )
                dpg.draw_rectangle(
                    (mid, y - 5),
                    (mid, y + 5),
                    tag=f"em_corr_bar_{side}",
                    fill=rgba(A_COL if side == "A" else B_COL),
                    color=(0, 0, 0, 0),
                )
        self._corr_x = (30, cw - 20)
        t = dpg.add_text("GONIOMETER", tag="em_gonio_title")
        style.font(t, "head")
        size = GONIO_PX + 4
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
                    dpg.draw_rectangle((0, 0), (size, size), fill=rgba(PLOT_BG),
                                       color=rgba(PANEL_EDGE))  # fmt: skip
                    c = size / 2
                    r = size * 0.46
                    guide = rgba(TICK, 120)
                    dpg.draw_line((c - r * 0.7071, c - r * 0.7071), (c + r * 0.7071,
                                  c + r * 0.7071), color=guide)  # fmt: skip
                    dpg.draw_line((c + r * 0.7071, c - r * 0.7071), (c - r * 0.7071,
                                  c + r * 0.7071), color=guide)  # fmt: skip
                    dpg.draw_line((c, c - r), (c, c + r), color=guide)
                    for text, pos in (("L", (c - r * 0.7071 - 12, c - r * 0.7071 - 14)),
                                      ("R", (c + r * 0.7071 + 3, c - r * 0.7071 - 14)),
                                      ("M", (c - 5, 2))):  # fmt: skip
                        dpg.draw_text(pos, text, size=12, color=rgba(TEXT_DIM))
                    # The trace over the guides, one texel per pixel (no filtering blur).
                    pad = (size - GONIO_PX) / 2
                    dpg.draw_image(
                        f"em_gonio_tex_{side}", (pad, pad), (pad + GONIO_PX, pad + GONIO_PX)
                    )
                    dpg.draw_text((6, size - 18), side, size=15, tag=f"em_gonio_label_{side}",
                                  color=rgba(A_COL if side == "A" else B_COL))  # fmt: skip

    def update(self, dpg: Any, frame: Frame) -> None:
        """Correlation bars and words, and the goniometers (every new frame)."""
        pa, pb = ab(frame)
        audible = audible_side(frame)
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
            dpg.set_value(f"em_corr_val_{side}", f"  {side} {fmt(c, 2, signed=True)} {word}")
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
            x = interpolate(x, steps)
            y = interpolate(y, steps)
            ix = np.clip(((x * g + 1.0) * 0.5 * (n - 1)).round().astype(np.int64), 0, n - 1)
            iy = np.clip(((1.0 - y * g) * 0.5 * (n - 1)).round().astype(np.int64), 0, n - 1)
            glow += np.bincount(iy * n + ix, minlength=n * n).reshape(n, n)
        level = 1.0 - np.exp(-glow * 0.6)
        base = A_COL if side == "A" else B_COL
        colour = np.array(base if audible else dimmed(base, 0.6), dtype=np.float32) / 255.0
        image = self._gonio_rgba[k]
        image[..., :3] = colour
        image[..., 3] = level
        dpg.set_value(f"em_gonio_tex_{side}", image.reshape(-1))
        dpg.configure_item(f"em_gonio_label_{side}", text=f"{side} ▶" if audible else side)


def interpolate(v: np.ndarray, steps: int) -> np.ndarray:
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
