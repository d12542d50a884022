"""A snapshot as a picture (PNG) or a self-contained page (HTML), with matplotlib.

Two plots per snapshot: the last 30 s of short-term loudness and PSR of every
path (the history window the snapshot holds), and each path's long-term
1/3-octave spectrum. The HTML page adds the readings side by side, the flags
with their explanations and every chain's plugins and parameters.
"""

from __future__ import annotations

import base64
import html as _html
import io
import time
from typing import Any

__all__ = ["figure", "html", "png"]

_ROLE_STYLE = {"A": "-", "B": "--", None: ":"}


def figure(doc: dict) -> Any:
    """A matplotlib Figure with the history and spectrum plots of a snapshot."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 8), layout="constrained")
    loud, psr, spec = fig.subplots(3, 1, height_ratios=(2, 1.2, 2))
    for p in doc.get("paths") or []:
        name = f"{p['role']}: {p['name']}" if p.get("role") else p["name"]
        style = _ROLE_STYLE.get(p.get("role"), ":")
        h = p.get("history") or {}
        t = h.get("t_s") or []
        if t:
            loud.plot(t, _nan(h.get("short_term_lufs")), style, label=name)
            psr.plot(t, _nan(h.get("psr_db")), style, label=name)
        r = p.get("readings") or {}
        hz, db = r.get("band_hz") or [], _nan(r.get("spectrum_long_db"))
        if hz:
            spec.semilogx(hz, db, style, marker="o", markersize=3, label=name)
    loud.set_ylabel("short-term LUFS")
    psr.set_ylabel("PSR dB")
    psr.set_xlabel("time, s")
    spec.set_xlabel("frequency, Hz (1/3-octave bands)")
    spec.set_ylabel("dB re full-scale sine")
    for ax in (loud, psr, spec):
        ax.grid(True, alpha=0.3)
    loud.legend(loc="lower left", fontsize="small")
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(doc.get("time") or 0))
    label = f" · {doc['label']}" if doc.get("label") else ""
    loud.set_title(f"Snapshot {doc.get('id', '')} · {doc.get('session')} · {when}{label}")
    return fig


def _nan(values: Any) -> list[float]:
    return [float("nan") if v is None else float(v) for v in (values or [])]


def png(doc: dict, dpi: int = 110) -> bytes:
    """The plots as PNG bytes."""
    buf = io.BytesIO()
    figure(doc).savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


_ROWS = (
    ("Integrated", "integrated_lufs", "LUFS"),
    ("Short-term", "short_term_lufs", "LUFS"),
    ("Loudness range", "loudness_range_lu", "LU"),
    ("True peak", "true_peak_dbtp", "dBTP"),
    ("PLR", "plr_db", "dB"),
    ("PSR", "psr_db", "dB"),
    ("PSR median", "psr_median_db", "dB"),
    ("Crest factor", "crest_db", "dB"),
    ("DR", "dr", ""),
    ("Spectral tilt", "spectral_tilt_db_per_oct", "dB/oct"),
    ("Harshness 2-5 kHz", "harshness_db", "dB"),
    ("Correlation", "correlation_programme", ""),
)


def html(doc: dict) -> str:
    """A self-contained HTML page: the plots (inline PNG), readings, flags and chains."""
    e = _html.escape
    paths = doc.get("paths") or []
    image = base64.b64encode(png(doc)).decode()
    head = "".join(f"<th>{e(p.get('role') or '')} {e(p['name'])}</th>" for p in paths)
    rows = []
    for label, key, unit in _ROWS:
        cells = "".join(f"<td>{_fmt(p.get(key, p['readings'].get(key)))}</td>" for p in paths)
        rows.append(f"<tr><th>{e(label)}</th><td>{e(unit)}</td>{cells}</tr>")
    flags = "".join(
        f"<li><b>{e(str(f.get('severity')))}</b> {e(str(f.get('code')))}: "
        f"{e(str(f.get('message')))}</li>"
        for f in doc.get("flags") or []
    )
    chains = []
    for p in paths:
        chain = p.get("chain")
        if not chain:
            continue
        items = "".join(
            f"<li>{e(pl['title'])}{' (bypassed)' if pl.get('bypass') else ''}: "
            + e(", ".join(f"{k} {v}" for k, v in pl["parameters"].items()))
            + "</li>"
            for pl in chain.get("plugins") or []
        )
        chains.append(f"<h3>{e(p['name'])}: {e(str(chain.get('name')))}</h3><ol>{items}</ol>")
    title = f"earmark snapshot {doc.get('id', '')}"
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(doc.get("time") or 0))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
        "th:first-child{text-align:left}</style></head><body>"
        f"<h1>{e(title)}</h1><p>{e(when)} · session {e(str(doc.get('session')))} · "
        f"label {e(str(doc.get('label') or '-'))} · note {e(str(doc.get('note') or '-'))}</p>"
        f"<img alt='history and spectrum' src='data:image/png;base64,{image}'>"
        f"<h2>Readings</h2><table><tr><th>measure</th><th>unit</th>{head}</tr>"
        + "".join(rows)
        + "</table>"
        + f"<h2>Flags</h2><ul>{flags or '<li>none</li>'}</ul>"
        + "<h2>Chains</h2>"
        + "".join(chains)
        + "</body></html>\n"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)
