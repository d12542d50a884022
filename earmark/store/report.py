"""A snapshot as a picture (PNG) or a self-contained page (HTML).

The plots are the analyze/diff report's own (:mod:`earmark.offline.report`): the last
30 s of loudness of every path with the flags shaded, PSR over the same
window, and each path's long-term 1/3-octave spectrum. The page adds the
readings side by side, the flags with their explanations, and every chain's
plugins and parameters.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import numpy as np

from earmark.offline import plots, report
from earmark.offline.measures import fmt_value
from earmark.termtext import printable_data
from earmark.ui.flags_text import occurrence_list

__all__ = ["figure", "html", "path_colors", "png"]

_STYLE = {"A": "-", "B": "--", None: ":"}


def path_colors(paths: list[dict]) -> list[str]:
    """Each path's colour: A and B as on the dashboard (:data:`earmark.offline.plots.A_COLOR`,
    ``B_COLOR``), the other paths the report's extra colours in order."""
    extra = iter(plots.EXTRA_COLORS * (1 + len(paths) // len(plots.EXTRA_COLORS)))
    by_role = {"A": plots.A_COLOR, "B": plots.B_COLOR}
    return [by_role.get(p.get("role")) or next(extra) for p in paths]


def _history(p: dict) -> Any:
    """A stored history window as the object the report's plots take (NaN for None)."""
    h = p.get("history") or {}

    def arr(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in h.get(key) or []], np.float64)

    t = arr("t_s")
    if not t.size:
        return None
    return SimpleNamespace(
        t_s=t,
        momentary_lufs=arr("momentary_lufs"),
        short_term_lufs=arr("short_term_lufs"),
        psr_db=arr("psr_db"),
    )


def _name(p: dict) -> str:
    return f"{p['role']}: {p['name']}" if p.get("role") else p["name"]


def _paths(doc: dict) -> list[dict]:
    # The compared pair first (A, B), then the other paths.
    paths = list(doc.get("paths") or [])
    return sorted(paths, key=lambda p: {"A": 0, "B": 1}.get(p.get("role"), 2))


def figure(doc: dict) -> Any:
    """A matplotlib Figure: loudness (flags shaded) and PSR over the history window, and
    the long-term spectrum, for every path."""
    doc = printable_data(doc)  # stored names may hold control characters: drawn escaped
    fig = plots.new_figure(10.0, 9.0)
    loud, psr, spec = fig.subplots(3, 1, height_ratios=(2.2, 1.3, 2.0))
    paths = _paths(doc)
    for p, color in zip(paths, path_colors(paths), strict=True):
        label = _name(p)
        h = _history(p)
        if h is not None:
            flags = [f for f in doc.get("flags") or [] if f.get("path") in (None, p["index"])]
            plots.plot_loudness_history(loud, h, flags, label=label, color=color)
            plots.plot_psr(psr, h, label=label, color=color)
        r = p.get("readings") or {}
        if r.get("band_hz"):
            plots.plot_spectrum(
                spec,
                r["band_hz"],
                r.get("spectrum_long_db") or [],
                label=label,
                color=color,
                style=_STYLE.get(p.get("role"), ":"),
            )
    spec.set_ylabel("long-term level, dB")
    loud.legend(loc="lower left", fontsize="small", ncols=2)
    spec.legend(loc="lower left", fontsize="small")
    loud.set_title(_title(doc))
    return fig


def png(doc: dict, dpi: int = 110) -> bytes:
    """The plots as PNG bytes."""
    return plots.figure_png(figure(doc), dpi=dpi)


_ROWS = (
    ("Integrated", "integrated_lufs", "LUFS", 1),
    ("Short-term", "short_term_lufs", "LUFS", 1),
    ("Loudness range", "loudness_range_lu", "LU", 1),
    ("True peak", "true_peak_dbtp", "dBTP", 1),
    ("PLR", "plr_db", "dB", 1),
    ("PSR", "psr_db", "dB", 1),
    ("PSR median", "psr_median_db", "dB", 1),
    ("Crest factor", "crest_db", "dB", 1),
    ("DR", "dr", "", 0),
    ("Spectral tilt", "spectral_tilt_db_per_oct", "dB/oct", 2),
    ("Harshness 2-5 kHz", "harshness_db", "dB", 1),
    ("Correlation", "correlation_programme", "", 2),
    ("Side/mid", "side_to_mid_db", "dB", 1),
)


def _title(doc: dict) -> str:
    label = f" · {doc['label']}" if doc.get("label") else ""
    return f"Snapshot {doc.get('id', '')} · {doc.get('session')}{label}"


def _param(key: str, value: Any) -> str:
    return f"{key} {value:g}" if isinstance(value, float) else f"{key} {value}"


def _platforms(doc: dict, paths: list[dict]) -> Any:
    """Each path's platform outcomes (as ``snapshots show``), and the platform monitor's mode
    when the snapshot was taken with it on; None for a version-1 snapshot."""
    from earmark.offline.platform_report import outcome_cell

    names = list(dict.fromkeys(o["name"] for p in paths for o in p.get("platforms") or ()))
    if not names:
        return None
    table = [["platform: plays at LUFS (gain dB) · penalty LU · PLR cost dB",
              *(_name(p) for p in paths)]]  # fmt: skip
    for name in names:
        cells = [
            outcome_cell(next((o for o in p.get("platforms") or () if o.get("name") == name), None))
            for p in paths
        ]
        table.append([name, *cells])
    monitor = (doc.get("source") or {}).get("platform_monitor")
    said = []
    if isinstance(monitor, dict):
        said.append(f"A and B played as {monitor.get('label')}: {monitor.get('note')}.")
    return report.Section(
        "Platforms", paragraphs=said, table=table, column_colors=(None, *path_colors(paths))
    )


def html(doc: dict) -> str:
    """A self-contained HTML page: plots, readings, flags and chains."""
    doc = printable_data(doc)  # control characters are not valid in HTML text: escaped
    paths = _paths(doc)
    table: list[list[str]] = [["measure", "unit", *(_name(p) for p in paths)]]
    for label, key, unit, d in _ROWS:
        table.append(
            [label, unit, *(fmt_value(p.get(key, p["readings"].get(key)), d) for p in paths)]
        )
    flags = []
    for f in doc.get("flags") or []:
        where = doc["paths"][f["path"]]["name"] if isinstance(f.get("path"), int) else "all"
        listed = occurrence_list(f)  # a flag grouping several occurrences lists them
        flags.append(
            f"{f.get('severity')}: {f.get('code')} on {where}: {f.get('message')}"
            + (f" ({listed})" if listed else "")
        )
    chains = []
    for p in paths:
        chain = p.get("chain")
        if not chain:
            continue
        bullets = [
            f"{pl['title']}{' (bypassed)' if pl.get('bypass') else ''}: "
            + (", ".join(_param(k, v) for k, v in pl["parameters"].items()) or "defaults")
            for pl in chain.get("plugins") or []
        ]
        chains.append(
            report.Section(f"{_name(p)}: {chain.get('name')}", bullets=bullets or ["(no plugins)"])
        )
    src, audio = doc.get("source") or {}, doc.get("audio") or {}
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc.get("time") or 0))
    subtitle = (
        f"{when} · session {doc.get('session')} · {src.get('kind')} at "
        f"{fmt_value(src.get('position_s'), 1)} s · {audio.get('sample_rate')} Hz"
        + (f" · note: {doc['note']}" if doc.get("note") else "")
    )
    sections = [
        report.Section("Meters", images=(png(doc),), captions=("last 30 s and spectrum",)),
        report.Section("Readings", table=table, column_colors=(None, None, *path_colors(paths))),
        _platforms(doc, paths),
        report.Section("Flags", bullets=flags or ["none"]),
        report.Section("Chains", columns=tuple(chains)) if chains else None,
    ]
    return report.render_html(_title(doc), [s for s in sections if s is not None],
                              subtitle=subtitle)  # fmt: skip
