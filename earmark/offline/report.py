"""Self-contained HTML reports with plots: ``analyze --report`` and ``diff --report``.

A report is one HTML file with its plots embedded as PNG (base64 ``data:``
URLs) and no external resource, so it can be mailed, archived or opened
offline. Its plots come from :mod:`earmark.offline.plots`::

    page = render_html("Title", [Section("Loudness", images=(figure_png(fig),))])
"""

from __future__ import annotations

import base64
import html
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from earmark.offline.measures import MEASURES, fmt_signed, fmt_value
from earmark.offline.plots import (
    AFTER_COLOR,
    BEFORE_COLOR,
    EXTRA_COLORS,
    figure_png,
    nan,
    new_figure,
    plot_eq_curve,
    plot_level_transfer,
    plot_loudness_history,
    plot_psr,
    plot_spectrum,
)
from earmark.store.snapshots import flag_dict

if TYPE_CHECKING:
    from earmark.meters import History
    from earmark.offline.analysis import Analysis
    from earmark.offline.transform import Transformation

from earmark.ui.flags_text import flag_bullet

__all__ = [
    "Section",
    "analysis_report",
    "diff_report",
    "mix_report",
    "render_html",
    "write_analysis_report",
    "write_report",
]

# -- HTML ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One part of a report: a heading, paragraphs or bullet points, tables, images."""

    heading: str
    paragraphs: Sequence[str] = ()
    bullets: Sequence[str] = ()
    table: Sequence[Sequence[Any]] | None = None  # first row is the header
    column_colors: Sequence[str | None] = ()  # "#rrggbb" marks under the header cells
    images: Sequence[bytes] = ()  # PNG
    captions: Sequence[str] = ()
    html_body: str = ""  # trusted extra markup
    columns: Sequence[Section] = field(default_factory=tuple)  # side by side


_CSS = """
body{font:15px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#222;
margin:0;background:#f6f6f4}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd;
padding-bottom:4px}h3{font-size:16px;margin:16px 0 6px}
.sub{color:#666;font-size:13px;margin-bottom:12px}
table{border-collapse:collapse;margin:8px 0 12px;font-size:14px}
th,td{padding:4px 12px;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f2f2f0}
figure{margin:10px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#666;font-size:13px}
ul{margin:6px 0 10px;padding-left:22px}li{margin:2px 0}
.cols{display:flex;gap:24px;flex-wrap:wrap}.cols>div{flex:1 1 300px;min-width:0}
.flag-problem{color:#b52b27}.flag-warning{color:#a86d00}
footer{color:#888;font-size:12px;margin-top:32px}
"""


def render_html(title: str, sections: Sequence[Section], *, subtitle: str | None = None) -> str:
    """A complete, self-contained HTML page (inline CSS, images as data: URLs)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if subtitle:
        parts.append(f'<div class="sub">{html.escape(subtitle)}</div>')
    for s in sections:
        parts.append(_section_html(s, level=2))
    stamp = time.strftime("%Y-%m-%d %H:%M")
    parts.append(f"<footer>earmark · {html.escape(stamp)}</footer></main></body></html>")
    return "\n".join(parts)


def _section_html(s: Section, level: int) -> str:
    out = [f"<h{level}>{html.escape(s.heading)}</h{level}>"] if s.heading else []
    out += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
    if s.bullets:
        out.append("<ul>" + "".join(f"<li>{_li(b)}</li>" for b in s.bullets) + "</ul>")
    if s.table:
        head, *rows = s.table
        marks = list(s.column_colors) + [None] * (len(head) - len(s.column_colors))
        out.append(
            "<table><thead><tr>"
            + "".join(_th(str(c), color) for c, color in zip(head, marks, strict=False))
        )
        out.append("</tr></thead><tbody>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
    if s.html_body:
        out.append(s.html_body)
    for i, png in enumerate(s.images):
        data = base64.b64encode(png).decode("ascii")
        cap = s.captions[i] if i < len(s.captions) else ""
        alt = html.escape(cap or s.heading)
        out.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">')
        if cap:
            out.append(f"<figcaption>{html.escape(cap)}</figcaption>")
        out.append("</figure>")
    if s.columns:
        out.append('<div class="cols">')
        for col in s.columns:
            out.append("<div>" + _section_html(col, level + 1) + "</div>")
        out.append("</div>")
    return "\n".join(out)


def _th(text: str, color: str | None) -> str:
    if color is None:
        return f"<th>{html.escape(text)}</th>"
    # A colour bar under the heading: the path's colour in the plots and on the dashboard.
    return f'<th style="border-bottom:4px solid {html.escape(color)}">{html.escape(text)}</th>'


def _li(text: str) -> str:
    """A bullet; ``problem:``/``warning:`` prefixes are coloured by severity."""
    for sev in ("problem", "warning"):
        if text.startswith(f"{sev}:"):
            return f'<span class="flag-{sev}">{html.escape(text)}</span>'
    return html.escape(text)


def write_analysis_report(
    path: str | os.PathLike[str],
    analyses: Sequence[Analysis],
    profile: Any = None,
    *,
    inputs: Iterable[str | os.PathLike[str]] | None = None,
    force: bool = False,
    codecs: Sequence[Sequence[Any]] | None = None,
    platforms: Sequence[Any] = (),
    album: Any = None,
) -> None:
    """Write the ``analyze --report`` page for ``analyses`` (files are metered again for
    their loudness history). ``inputs`` (default: the analysed files) are never written
    over; see :func:`write_report`. ``codecs``: per analysis, its
    :class:`~earmark.offline.codecs.CodecResult` list (``--codecs``), or None;
    ``platforms``: the rules of ``--platforms``; ``album``: the
    :class:`~earmark.offline.album.Album` of ``--album``."""
    files = [a.file or f"array {i + 1}" for i, a in enumerate(analyses)]
    names = [os.path.basename(f) or f for f in files]
    labels = names if len(set(names)) == len(names) else files
    items = [(label, a, None) for label, a in zip(labels, analyses, strict=True)]
    if inputs is None:
        inputs = [a.file for a in analyses if a.file]
    page = analysis_report(items, profile, codecs=codecs, platforms=platforms, album=album)
    write_report(path, page, inputs=inputs, force=force)


def write_report(
    path: str | os.PathLike[str],
    page: str,
    *,
    inputs: Iterable[str | os.PathLike[str]] = (),
    force: bool = False,
) -> None:
    """Write ``page`` to ``path`` (UTF-8) through a temporary file and a rename.

    An existing file is replaced only with ``force``; a file in ``inputs`` (the
    audio the report is about) never is. Raises :class:`earmark.outfiles.OutputError`
    (one line) when the page must not or cannot be written.
    """
    from earmark import outfiles

    outfiles.write(path, page, inputs=inputs, force=force, option="--report")


# -- analyze --report --------------------------------------------------------------------------


def analysis_report(
    items: Sequence[tuple[str, Analysis, History | None]],
    profile: Any = None,
    codecs: Sequence[Sequence[Any]] | None = None,
    platforms: Sequence[Any] = (),
    album: Any = None,
) -> str:
    """The ``analyze --report`` page: per file, loudness history (M/S) with its flags
    shaded, PSR over time and the long-term spectrum (against the profile's tonal
    target band when the profile has one), plus the measures and flag messages; the
    platforms' outcomes per file (``platforms``, the rules of ``--platforms``) and the
    album (``album``, ``--album``: earmark.offline.platform_report), as the text has them.

    ``items`` are (label, analysis, 10 Hz history or None to meter the file again).
    """
    sections: list[Section] = []
    if len(items) > 1:
        table = [["Measure", "Unit", *[label for label, _, _ in items]]]
        for m in MEASURES:
            name, unit, attr, dec = m.label, m.unit, m.key, m.decimals
            table.append([name, unit, *[fmt_value(getattr(a, attr), dec) for _, a, _ in items]])
        sections.append(Section("Measures", table=table))
    for label, analysis, history in items:
        if history is None:
            history = history_of(analysis)
        sections.append(
            _analysis_section(label, analysis, history, profile, single=len(items) == 1)
        )
    labels = [label for label, _, _ in items]
    if platforms:
        from earmark.offline.platform_report import platforms_section

        sections.append(platforms_section(labels, [a for _, a, _ in items], platforms))
    if album is not None:
        from earmark.offline.platform_report import album_section

        sections.append(album_section(album, labels))
    if codecs is not None:
        sections.append(codecs_section(labels, codecs))
    names = ", ".join(labels)
    prof = getattr(profile, "name", None)
    sub = f"{names}" + (f" · {prof} profile" if prof else "")
    return render_html("earmark analysis", sections, subtitle=sub)


def codecs_section(labels: Sequence[str], codecs: Sequence[Sequence[Any]]) -> Section:
    """The "Codecs" section: per file, what each lossy codec did to it (``--codecs``)."""
    from earmark.offline.codec_report import codec_table

    return Section(
        "Codecs",
        paragraphs=(
            "Each file encoded and decoded in memory, the encoder's delay removed, and "
            "measured again; the safe ceiling is the highest true-peak ceiling whose "
            "decoded audio has no sample at or over full scale (found by encoding again).",
        ),
        columns=tuple(
            Section(label, table=codec_table(results))
            for label, results in zip(labels, codecs, strict=True)
        ),
    )


def history_of(analysis: Analysis) -> History | None:
    """The 10 Hz history ``analyze`` kept (None for an Analysis made without one)."""
    return analysis.history


def _analysis_section(
    label: str, a: Analysis, history: History | None, profile: Any, single: bool
) -> Section:
    flags = [flag_dict(f) for f in a.flags]
    images, captions = [], []
    if history is not None and len(history.t_s):
        fig = new_figure(10, 5.2)
        top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1.2))
        plot_loudness_history(top, history, flags, color=BEFORE_COLOR)
        top.legend(loc="lower left", fontsize=8)
        top.set_xlabel("")
        floor = _psr_floor(profile)
        plot_psr(bottom, history, color=BEFORE_COLOR, floor_db=floor)
        if floor is not None:
            bottom.legend(loc="lower left", fontsize=8)
        images.append(figure_png(fig))
        captions.append(
            "Momentary (thin) and short-term (thick) loudness; flags shaded"
            " (orange warning, red problem). Below: PSR, true peak over 3 s minus short-term."
        )
    if a.band_hz:
        fig = new_figure(10, 3.6)
        ax = fig.subplots()
        levels, target, relative = _spectrum_against_profile(a, profile)
        plot_spectrum(ax, a.band_hz, levels, target, color=BEFORE_COLOR, label=label)
        ax.set_ylabel("dB re K-weighted total" if relative else "dB re full-scale sine")
        if target is not None:
            ax.legend(loc="lower left", fontsize=8)
        images.append(figure_png(fig))
        captions.append(
            "Long-term 1/3-octave spectrum"
            + (", loudness-normalised, against the profile's tonal target band" if relative else "")
            + "."
        )
    table = None
    if single:
        table = [["Measure", "Unit", "Value"]]
        table += [[m.label, m.unit, fmt_value(getattr(a, m.key), m.decimals)] for m in MEASURES]
    bullets = [flag_bullet(f) for f in flags] or ["no flags"]
    details = f"{a.sample_rate} Hz · {a.channels} ch · {a.duration_s:.1f} s"
    if a.format:
        details += f" · {a.format} {a.subtype or ''}".rstrip()
    return Section(
        label,
        paragraphs=(details, *a.warnings),
        bullets=bullets,
        table=table,
        images=tuple(images),
        captions=tuple(captions),
    )


def _psr_floor(profile: Any) -> float | None:
    dyn = getattr(profile, "dynamics", None)
    return getattr(dyn, "psr_min_db", None) if dyn is not None else None


def _spectrum_against_profile(
    a: Analysis, profile: Any
) -> tuple[list[float | None], tuple | None, bool]:
    """Band levels, and the target band when the profile has a tonal target.

    Profiles state their target relative to the K-weighted total of the bands
    (:mod:`earmark.meters.tonal`), so with a target the spectrum is shown the
    same way: a louder master does not sit higher.
    """
    tonal = getattr(profile, "tonal", None)
    if tonal is None:
        return list(a.spectrum_long_db), None, False
    try:
        from earmark.meters.tonal import k_weighting_gain_db, relative_levels
    except ImportError:
        return list(a.spectrum_long_db), None, False
    rel = relative_levels(nan(a.spectrum_long_db), k_weighting_gain_db(a.band_hz, a.sample_rate))
    level, spread = tonal.at(a.band_hz)
    lv, sp = np.asarray(level, dtype=np.float64), np.asarray(spread, dtype=np.float64)
    return (
        [None if not np.isfinite(v) else float(v) for v in rel],
        (a.band_hz, lv - sp, lv + sp),
        True,
    )


# -- diff --report -----------------------------------------------------------------------------


def diff_report(
    t: Transformation,
    *,
    before_label: str = "BEFORE",
    after_label: str = "AFTER",
    codecs: tuple[Sequence[Any], Sequence[Any]] | None = None,
    platforms: Sequence[Any] = (),
) -> str:
    """The ``diff --report`` page for one transformation (``codecs``: BEFORE's and
    AFTER's :class:`~earmark.offline.codecs.CodecResult` lists, ``--codecs``;
    ``platforms``: the rules of ``--platforms``, each with its sentence and both tables)."""
    title = f"earmark diff: {before_label} → {after_label}"
    sub = f"{t.before.file or before_label} → {t.after.file or after_label}"
    sections = _diff_sections(t, before_label, after_label)
    if platforms:
        from earmark.offline.platform_report import diff_platforms_section

        names = (_name(t.before.file, before_label), _name(t.after.file, after_label))
        sections.append(diff_platforms_section(t.before, t.after, platforms, names))
    if codecs:
        from earmark.offline.codec_report import compared_table

        table = compared_table(codecs[0], codecs[1], (before_label, after_label))
        sections.append(Section("Codecs", table=table))
    return render_html(title, sections, subtitle=sub)


def _name(file: str | None, default: str) -> str:
    """A file's name for a table's heading (its path's last part), else ``default``."""
    return (os.path.basename(file) or file) if file else default


def mix_report(
    mix_label: str,
    versions: Sequence[tuple[str, Transformation]],
    platforms: Sequence[Any] = (),
) -> str:
    """Two (or more) masters of one mix, each diffed against the mix, side by side
    (``platforms``: the second master against the first on each platform, as the text)."""
    title = f"earmark diff: two masters of {mix_label}"
    sub = " · ".join(f"{label}: {t.after.file or label}" for label, t in versions)
    return render_html(title, mix_sections(mix_label, versions, platforms), subtitle=sub)


def compare_report(c: Any, mix_label: str) -> str:
    """``earmark compare --report``: the verdict, the moves paired, each master's
    explainability, then the two masters side by side (as ``diff --mix``)."""
    a, b = c.a_name, c.b_name
    sections = [
        Section("Verdict", paragraphs=(c.verdict + ".",)),
        Section(
            "Moves, paired (each against the mix)",
            table=[("move", a, b, "favours", "why"), *(_move_row(m, a, b) for m in c.moves)],
        ),
    ]
    explained = [(name, c.explainability.get(key)) for name, key in ((a, "a"), (b, "b"))]
    if any(ex is not None for _, ex in explained):
        from earmark.meters.flags import hz_text

        hz = [h for h, _ in next(ex for _, ex in explained if ex is not None).bands]
        rows = [("master", "overall", *(hz_text(h) for h in hz))]
        for name, ex in explained:
            if ex is not None:
                shares = dict(ex.bands)
                rows.append((name, _share(ex.overall), *(_share(shares.get(h)) for h in hz)))
        sections.append(
            Section(
                "Explainability: the share of each master's change its listed moves explain",
                paragraphs=tuple(ex.sentence(name) + "." for name, ex in explained if ex),
                table=rows,
            )
        )
    sections.extend(mix_sections(mix_label, [(a, c.to_a), (b, c.to_b)]))
    return render_html(
        f"earmark compare: two masters of {mix_label}",
        sections,
        subtitle=f"{a}: {c.to_a.after.file or a} · {b}: {c.to_b.after.file or b}",
    )


def _move_row(m: Any, a: str, b: str) -> tuple[str, ...]:
    favours = {"A": a, "B": b}.get(m.favours or "", "-")
    return (
        m.kind,
        m.a or "none",
        m.b or "none",
        favours,
        m.why.replace("{a}", a).replace("{b}", b),
    )


def _share(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f} %"


def mix_sections(
    mix_label: str,
    versions: Sequence[tuple[str, Transformation]],
    platforms: Sequence[Any] = (),
) -> list[Section]:
    """The sections of :func:`mix_report`."""
    sections: list[Section] = []
    sections.append(
        Section(
            "What each version did",
            columns=tuple(
                Section(
                    label,
                    bullets=t.narrate(mix_label, label),
                    table=_change_table(t, mix_label, label),
                )
                for label, t in versions
            ),
        )
    )
    fig = new_figure(10, 3.8)
    ax = fig.subplots()
    span = 3.0
    for i, (label, t) in enumerate(versions):
        color = (AFTER_COLOR, *EXTRA_COLORS)[i % (1 + len(EXTRA_COLORS))]
        r = t.result
        plot_eq_curve(ax, r.curve_hz, r.curve_db, label=label, color=color)
        db = np.asarray(r.curve_db, dtype=np.float64)
        if np.isfinite(db).any():
            span = max(span, float(np.nanmax(np.abs(db[np.isfinite(db)]))) + 2.5)
    ax.set_ylim(-span, span)  # one axis wide enough for every curve (a +8 dB shelf too)
    ax.legend(loc="lower left", fontsize=8)
    fig2 = new_figure(10, 4.2)
    axes = fig2.subplots(1, len(versions), sharey=True, squeeze=False)[0]
    for i, (label, t) in enumerate(versions):
        color = (AFTER_COLOR, *EXTRA_COLORS)[i % (1 + len(EXTRA_COLORS))]
        tr = t.result.transfer
        plot_level_transfer(axes[i], tr.in_db, tr.out_db, tr.fit, weight=tr.weight, color=color)
        axes[i].set_title(label, fontsize=10)
    fig3 = new_figure(10, 4.6)
    top, bottom = fig3.subplots(2, 1, sharex=True, height_ratios=(2, 1.2))
    first = versions[0][1]
    plot_loudness_history(
        top, first.before_history, momentary=False, label=mix_label, color=BEFORE_COLOR
    )
    plot_psr(bottom, first.before_history, label=mix_label, color=BEFORE_COLOR)
    for i, (label, t) in enumerate(versions):
        color = (AFTER_COLOR, *EXTRA_COLORS)[i % (1 + len(EXTRA_COLORS))]
        plot_loudness_history(top, t.after_history, momentary=False, label=label, color=color)
        plot_psr(bottom, t.after_history, label=label, color=color)
    top.legend(loc="lower left", fontsize=8)
    top.set_xlabel("")
    sections.append(
        Section(
            "Side by side",
            images=(figure_png(fig), figure_png(fig2), figure_png(fig3)),
            captions=(
                f"EQ of each version against {mix_label} (loudness-independent transfer,"
                " 1/6 octave, mids at 0 dB).",
                "Level transfer of each version: window levels and the fitted compressor curve.",
                "Short-term loudness and PSR over time (each version on its own timeline).",
            ),
        )
    )
    if platforms and len(versions) >= 2:
        from earmark.offline.platform_report import diff_platforms_section

        (la, ta), (lb, tb) = versions[0], versions[1]
        sections.append(diff_platforms_section(ta.after, tb.after, platforms, (la, lb)))
    for label, t in versions:
        sections.append(Section(f"{mix_label} → {label}", columns=()))
        sections.extend(_diff_sections(t, mix_label, label, headline=False))
    return sections


def _change_table(t: Transformation, before_label: str, after_label: str) -> list[list[str]]:
    rows: list[list[str]] = [["Measure", before_label, after_label, "Change"]]
    for m in MEASURES:
        name, unit, attr, dec = m.label, m.unit, m.key, m.decimals
        b, a = getattr(t.before, attr), getattr(t.after, attr)
        change = "-" if b is None or a is None else fmt_signed(a - b, dec)
        u = f" {unit}" if unit else ""
        rows.append([f"{name}{u}", fmt_value(b, dec), fmt_value(a, dec), change])
    return rows


def _diff_sections(
    t: Transformation, before_label: str, after_label: str, *, headline: bool = True
) -> list[Section]:
    r = t.result
    sections: list[Section] = []
    if headline:  # (two masters of a mix show these side by side instead)
        sections.append(Section("What changed", bullets=t.narrate(before_label, after_label)))
        sections.append(Section("Measures", table=_change_table(t, before_label, after_label)))

    # Spectra and EQ.
    fig = new_figure(10, 7.4)
    top, bottom = fig.subplots(2, 1, height_ratios=(1, 1.1))
    plot_spectrum(top, r.curve_hz, r.before_spectrum_db, label=before_label, color=BEFORE_COLOR)
    plot_spectrum(top, r.curve_hz, r.after_spectrum_db, label=after_label, color=AFTER_COLOR)
    shift = t.loudness_change_lu
    if shift is not None:
        matched = np.asarray(r.after_spectrum_db) - shift
        plot_spectrum(
            top, r.curve_hz, matched, label=f"{after_label}, loudness-matched",
            color=AFTER_COLOR, style=":",
        )  # fmt: skip
    top.set_ylabel("dB re full-scale sine (1/6 oct)")
    top.legend(loc="lower left", fontsize=8)
    plot_eq_curve(bottom, r.curve_hz, r.curve_db, r.fit_hz, r.fitted_db, r.moves)
    bottom.legend(loc="lower left", fontsize=8)
    from earmark.offline.transform import describe_move

    moves = [describe_move(t, m) for m in r.moves] or ["no EQ move of 1 dB or more"]
    sections.append(
        Section(
            "EQ",
            bullets=moves,
            images=(figure_png(fig),),
            captions=(
                "Top: long-term spectra. Bottom: the EQ difference curve, measured as the"
                " transfer function AFTER/BEFORE with compression divided out (so level-"
                "dependent gain does not read as EQ), 1/6-octave smoothed, mids at 0 dB;"
                " dashed: the fitted shelves, bells and cuts.",
            ),
        )
    )

    # Dynamics.
    tr = r.transfer
    fig = new_figure(10, 4.6)
    ax = fig.subplots()
    plot_level_transfer(ax, tr.in_db, tr.out_db, tr.fit, weight=tr.weight)
    ax.legend(loc="upper left", fontsize=8)
    dyn = t.dynamics()
    bullets = []
    if r.compressed:
        bullets.append(
            f"compression about {dyn['ratio']:.1f}:1 above {dyn['threshold_db']:.1f} dBFS"
            f" (knee {dyn['knee_db']:.0f} dB, detector attack {dyn['attack_ms']:.1f} ms,"
            f" release {dyn['release_ms']:.0f} ms), up to {dyn['gain_reduction_db']:.1f} dB"
            " of gain reduction"
        )
    else:
        bullets.append("no compression: the gain does not depend on the level")
    lim = r.limiting
    if lim.limited:
        bullets.append(
            f"limited: {lim.pinned_fraction * 100:.0f} % of the 20 ms windows peak within 0.2 dB"
            f" of {lim.ceiling_dbfs:.2f} dBFS (BEFORE: {lim.before_pinned_fraction * 100:.1f} %);"
            f" true peak {fmt_value(t.after.true_peak_dbtp, 1)} dBTP"
        )
    else:
        bullets.append("no limiting: peaks do not pile up at a ceiling")
    bullets.append(f"broadband gain on the quiet passages {r.gain_db:+.2f} dB")
    for key, name, unit in (
        ("psr_change_db", "PSR (median)", "dB"),
        ("plr_change_db", "PLR", "dB"),
        ("lra_change_lu", "LRA", "LU"),
        ("crest_change_db", "crest factor", "dB"),
    ):
        if dyn.get(key) is not None:
            bullets.append(f"{name} {dyn[key]:+.1f} {unit}")
    if dyn.get("transient_crest_change_db") is not None:
        # The crushed_transients flag's measure (one number per fact).
        bullets.append(
            f"transient crest {dyn['transient_crest_change_db']:+.1f} dB: onset peaks over the"
            f" short-term loudness, {dyn['transient_crest_before_db']:.1f} ->"
            f" {dyn['transient_crest_after_db']:.1f} dB at {dyn['transient_onsets']} onsets"
            " of BEFORE"
        )
    sections.append(
        Section(
            "Dynamics",
            bullets=bullets,
            images=(figure_png(fig),),
            captions=(
                "Level transfer: each point is 20 ms of programme; x is BEFORE (through the"
                " measured EQ) as a compressor's peak detector would see it, y is AFTER."
                " Solid: the fitted compressor curve; dotted: the same gain without compression.",
            ),
        )
    )

    # Loudness and PSR over time.
    fig = new_figure(10, 5.4)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1.2))
    flags_after = list(t.flags_after)
    plot_loudness_history(top, t.before_history, label=before_label, color=BEFORE_COLOR)
    plot_loudness_history(top, t.after_history, flags_after, label=after_label, color=AFTER_COLOR)
    top.legend(loc="lower left", fontsize=8, ncols=2)
    top.set_xlabel("")
    plot_psr(bottom, t.before_history, label=before_label, color=BEFORE_COLOR)
    plot_psr(bottom, t.after_history, label=after_label, color=AFTER_COLOR)
    bottom.legend(loc="lower left", fontsize=8)
    sections.append(
        Section(
            "Loudness and PSR over time",
            images=(figure_png(fig),),
            captions=(
                f"Momentary (thin) and short-term (thick) loudness on {after_label}'s timeline,"
                f" {after_label}'s flags shaded; below, PSR of both.",
            ),
        )
    )

    # Stereo.
    s = t.stereo()
    st_bullets = []
    if s["width_change_pct"] is not None:
        st_bullets.append(
            f"width {s['width_change_pct']:+.0f} % (side-to-mid {s['side_to_mid_before_db']:.1f}"
            f" -> {s['side_to_mid_after_db']:.1f} dB)"
        )
        for band in s["bands"]:
            if band["side_to_mid_change_db"] is not None:
                st_bullets.append(
                    f"{band['low_hz']:g}-{band['high_hz']:g} Hz: side-to-mid"
                    f" {band['side_to_mid_change_db']:+.1f} dB"
                )
        if s["correlation_before"] is not None and s["correlation_after"] is not None:
            st_bullets.append(
                f"correlation {s['correlation_before']:.2f} -> {s['correlation_after']:.2f}"
            )
    else:
        st_bullets.append("mono (or different channel counts): no stereo comparison")
    sections.append(Section("Stereo", bullets=st_bullets))

    # Flags.
    def lines(flags: Sequence[Mapping[str, Any]]) -> list[str]:
        return [flag_bullet(f) for f in flags]

    sections.append(
        Section(
            "Flags",
            columns=(
                Section("Introduced", bullets=lines(t.flags_introduced) or ["none"]),
                Section("Removed", bullets=lines(t.flags_removed) or ["none"]),
                Section("Still there", bullets=lines(t.flags_kept) or ["none"]),
            ),
        )
    )
    al = r.alignment
    if abs(al.offset_ms) < 0.005:
        where = "offset 0.00 ms"
    else:
        way = "later" if al.offset_ms > 0 else "earlier"
        where = f"{after_label} starts {abs(al.offset_ms):.2f} ms {way}"
    notes = [
        f"{where}, polarity {'inverted' if al.polarity < 0 else 'same'},"
        f" correlation {al.correlation:.2f}; compared {r.duration_s:.1f} s at {r.sample_rate} Hz",
        *t.warnings,
    ]
    sections.append(Section("Alignment", bullets=notes))
    return sections


# -- small helpers ------------------------------------------------------------------------------
