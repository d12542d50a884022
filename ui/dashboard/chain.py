"""The chain panel: the chains of A and B, each with its bypass (the B key's), and per
plugin an on/bypassed switch, its title and its parameters with their units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..stateframe import Frame
from .frames import ab_indices
from .style import A_COL, B_COL, TEXT, TEXT_DIM, no_args

if TYPE_CHECKING:
    from .window import Dashboard


class ChainPanel:
    """The bottom centre: what processes A and B."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.wrap_px = 0  # where a plugin's line wraps
        self._key = ""  # what the panel shows now (rebuilt only when it changes)

    def build(self, dpg: Any, wrap_px: int) -> None:
        """Create the title and the (empty) list."""
        self.wrap_px = wrap_px
        t = dpg.add_text("CHAIN", tag="em_chain_title")
        self.dash.style.font(t, "head")
        dpg.add_group(tag="em_chain")

    def forget(self) -> None:
        """Rebuild on the next update (a new session was attached)."""
        self._key = ""

    def update(self, dpg: Any, frame: Frame) -> None:
        """Rebuild the list when A's or B's chain changed (from the frame's JSON area)."""
        paths = frame.info.get("paths", [])
        a, b = ab_indices(frame)
        key = repr([(i, paths[i].get("chain")) for i in (a, b) if i < len(paths)])
        if key == self._key:
            return
        self._key = key
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
                    callback=no_args(lambda i=index: self.dash.bypass_chain(i)),
                )
                dpg.bind_item_theme(
                    btn, self.dash.style.themes["button_bypassed" if bypassed else "button_off"]
                )
            for k, plugin in enumerate(chain.get("plugins", [])):
                by = plugin.get("bypass", False)
                with dpg.group(horizontal=True, parent="em_chain"):
                    btn = dpg.add_button(
                        label="BYP" if by else "ON",
                        width=44,
                        height=22,
                        tag=f"em_plugin_{side}_{k}",
                        callback=no_args(lambda i=index, j=k: self.dash.bypass_plugin(i, j)),
                    )
                    dpg.bind_item_theme(
                        btn, self.dash.style.themes["button_bypassed" if by else "button_active"]
                    )
                    params = " · ".join(param_text(p) for p in plugin.get("params", []))
                    dpg.add_text(
                        f"{plugin.get('title', '')}  {params}",
                        wrap=self.wrap_px,
                        color=TEXT_DIM if by else TEXT,
                    )
        if not shown:
            dpg.add_text(
                "no chain on A or B (both play as they are)", parent="em_chain", color=TEXT_DIM
            )


def param_text(param: Any) -> str:
    """A parameter as the chain panel lists it: ``threshold −18 dB``."""
    name, value, unit = [*list(param), "", "", ""][:3]
    if isinstance(value, float):
        value = f"{value:g}"
    value = str(value).replace("-", "−")
    return f"{name.replace('_', ' ')} {value}{(' ' + unit) if unit else ''}"
