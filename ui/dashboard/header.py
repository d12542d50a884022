"""The header: A and B side by side (the audible one marked ▶, the other dimmed, each a
button that makes it heard), the loudness match (or, with the platform monitor on, the
platform A and B play as: per side its gain, the loudness heard and the loudness
penalty, and where its limiter would act), the profile and its targets, the
stream (block, rate, latency, xruns, callback load), the controller, and LIVE/STALE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..conventions import path_number
from ..stateframe import Frame
from .frames import audible_side, path_names
from .style import OK_COL, PROBLEM_COL, TEXT_DIM, WATCH_COL, fmt, mmss, no_args

if TYPE_CHECKING:
    from .window import Dashboard


class HeaderPanel:
    """The top row of the window."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash

    def build(self, dpg: Any) -> None:
        """Create the header's items."""
        style = self.dash.style
        with dpg.group(horizontal=True):
            for side in ("A", "B"):
                b = dpg.add_button(
                    label=f"{side}",
                    tag=f"em_hdr_{side}",
                    height=40,
                    width=300,
                    callback=no_args(lambda s=side: self.dash.select(s)),
                )
                style.font(b, "head")
            with dpg.group():
                t = dpg.add_text("match –", tag="em_hdr_match")
                style.font(t, "head")
                dpg.add_text("", tag="em_hdr_platform", color=TEXT_DIM, wrap=420)
            dpg.add_spacer(width=6)
            with dpg.group():
                dpg.add_text("profile –", tag="em_hdr_profile")
                dpg.add_text("–", tag="em_hdr_stream", color=TEXT_DIM)
            dpg.add_spacer(width=6)
            with dpg.group():
                dpg.add_text("MIDI –", tag="em_hdr_midi", color=TEXT_DIM)
                dpg.add_text("connecting", tag="em_hdr_live", color=WATCH_COL)

    def update(self, dpg: Any, frame: Frame) -> None:
        """A/B, match and stream (every new frame)."""
        names = path_names(frame)
        audible = audible_side(frame)
        themes = self.dash.style.themes
        for side in ("A", "B"):
            index = int(frame.h(side.lower()) or 0)
            name = names[index] if index < len(names) else "?"
            mark = "▶" if side == audible else "◻"
            dpg.set_item_label(
                f"em_hdr_{side}", f"{side} {mark} {name} (path {path_number(index)})"
            )
            theme = f"button_audible_{side}" if side == audible else "button_quiet"
            dpg.bind_item_theme(f"em_hdr_{side}", themes[theme])
        ma, mb = frame.h("match_a_db"), frame.h("match_b_db")
        if not frame.h("loudness_match"):
            match = "match off"
        else:
            side, gain = ("B", mb) if (mb or 0.0) < (ma or 0.0) else ("A", ma)
            match = f"match {fmt(gain, 1, signed=True)} dB on {side}"
        platform = ""
        if frame.h("platform_monitor"):
            match, platform = platform_text(frame)
        dpg.set_value("em_hdr_match", match)
        dpg.set_value("em_hdr_platform", platform)
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
            f"{fmt(block, 0)} @ {fmt((rate or 0) / 1000, 1)} kHz · {fmt(lat, 1)} + "
            f"{fmt(chains, 1)} ms · "
            f"xruns {int(frame.h('xruns') or 0)}{load}",
        )

    def update_live(self, dpg: Any, frame: Frame) -> None:
        """LIVE and the position, or STALE and why (every frame read)."""
        if frame.stale:
            dpg.set_value("em_hdr_live", f"STALE · {frame.stale_reason}")
            dpg.configure_item("em_hdr_live", color=PROBLEM_COL)
        else:
            t = frame.h("position_s") or 0.0
            dpg.set_value("em_hdr_live", f"LIVE · {mmss(t)}")
            dpg.configure_item("em_hdr_live", color=OK_COL)

    def update_info(self, dpg: Any, frame: Frame) -> None:
        """The profile and the controller (when the frame's JSON area changes)."""
        tg = self.dash.targets
        pname = f"profile: {tg.name}" if tg.from_profile else "profile: none (streaming defaults)"
        dpg.set_value(
            "em_hdr_profile",
            f"{pname} · target {fmt(tg.target_lufs, 0)} LUFS / {fmt(tg.ceiling_dbtp, 1)} dBTP",
        )
        midi = frame.info.get("midi")
        dpg.set_value("em_hdr_midi", f"MIDI {midi}" if midi else "MIDI: no controller")


def platform_text(frame: Frame) -> tuple[str, str]:
    """The platform monitor in the header: (the big line, its details) from the frame's
    ``platform_monitor`` (JSON area) and A's and B's ``platform_*`` values."""
    info = frame.info.get("platform_monitor") or {}
    label = info.get("label") or "a platform"
    sides = []
    for side in ("A", "B"):
        index = int(frame.h(side.lower()) or 0)
        if side == "B" and index == int(frame.h("a") or 0):
            continue
        p = frame.paths[index] if index < len(frame.paths) else None
        gain = p["platform_gain_db"] if p else None
        heard = p["platform_lufs"] if p else None
        penalty = p["platform_penalty_lu"] if p else None
        sides.append(
            f"{side} {fmt(gain, 1, signed=True)} dB → {fmt(heard, 1)} LUFS, "
            f"penalty {fmt(penalty, 1)} LU"
        )
    return f"as {label}", " · ".join(sides) + (f"\n{info['note']}" if info.get("note") else "")
