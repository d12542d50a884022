"""The flags panel: every flag of the session, newest first, with its state in words
(OK / WATCH / PROBLEM) and colour, when, on which of A and B, what (and how many times,
for a group), and its explanation; selecting one centres the history on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..judgement import flag_word
from ..stateframe import Frame
from .frames import ab_indices, path_names
from .style import A_COL, B_COL, STATE_COL, TEXT_DIM, mmss, no_args

if TYPE_CHECKING:
    from .window import Dashboard


class FlagsPanel:
    """The bottom left: the flag list."""

    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.shown: list[dict] = []  # the rows, newest first

    def build(self, dpg: Any) -> None:
        """Create the title line and the (empty) table."""
        style = self.dash.style
        with dpg.group(horizontal=True):
            t = dpg.add_text("FLAGS", tag="em_flags_title")
            style.font(t, "head")
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

    def update(self, dpg: Any, frame: Frame) -> None:
        """Rebuild the rows (when the frame's JSON area changes)."""
        names = path_names(frame)
        flags = list(reversed(frame.info.get("flags", [])))
        self.shown = flags
        dpg.delete_item("em_flags", children_only=True, slot=1)
        a, b = ab_indices(frame)
        for k, flag in enumerate(flags):
            word = flag_word(flag.get("severity"))
            path = flag.get("path")
            side = "A" if path == a else ("B" if path == b else "·")
            start = flag.get("start_s")
            end = flag.get("end_s")
            when = mmss(float(start or 0.0)) + (
                "–" + mmss(float(end)) if end is not None else "–now"
            )
            with dpg.table_row(parent="em_flags", tag=f"em_flag_row_{k}"):
                dpg.add_selectable(
                    label=word,
                    span_columns=True,
                    tag=f"em_flag_{k}",
                    callback=no_args(lambda f=flag: self.dash.select_flag(f)),
                    default_value=flag is self.dash.selected_flag,
                )
                dpg.bind_item_theme(f"em_flag_{k}", self.dash.style.text_theme(STATE_COL[word]))
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
