"""What ``earmark audit`` writes besides its catalogue: the HTML report and the exports.

The report (:func:`audit_report`) is one self-contained page
(:func:`earmark.offline.report.render_html`, plots from :mod:`earmark.offline.plots`):
counts per flag and per profile, the worst offenders, the distributions of integrated
loudness, PSR, LRA, sharpness and true peak, the trend by release date when the
manifest gave dates, the pairs, and the files that could not be analysed. It is
made from the catalogue's rows (:class:`earmark.store.catalog.Catalog`), so it covers
every run that filled the catalogue.

The exports (:func:`csv_text`, :func:`parquet_bytes`) hold every row's columns but
the large JSON ones (``data``: the ``analyze``/``diff --json`` object, ``flags``).
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from earmark.offline.measures import MEASURE, fmt_value
from earmark.offline.plots import figure_png, new_figure, plot_distribution, plot_trend
from earmark.offline.report import Section, render_html

__all__ = ["DISTRIBUTIONS", "audit_report", "csv_text", "parquet_bytes"]

# The measures whose spread over a catalogue the report draws (PSR as its median over the
# programme: the file's typical density, where psr_min_db is its worst moment).
DISTRIBUTIONS: tuple[str, ...] = (
    "integrated_lufs",
    "psr_median_db",
    "loudness_range_lu",
    "sharpness_acum",
    "true_peak_dbtp",
)
# Worst offenders: (title, measure, highest first?), the ten worst files of each.
_OFFENDERS: tuple[tuple[str, str, bool], ...] = (
    ("Most compressed (lowest PSR median)", "psr_median_db", False),
    ("Highest true peak", "true_peak_dbtp", True),
    ("Sharpest (harshest balance)", "sharpness_acum", True),
    ("Loudest", "integrated_lufs", True),
)
_TOP = 10
_LEFT_OUT = ("data", "flags")


def _name(path: str | None) -> str:
    return os.path.basename(path or "") or (path or "-")


def _value(row: dict, key: str) -> str:
    m = MEASURE[key]
    return fmt_value(row.get(key), m.decimals)


def audit_report(
    files: Sequence[dict[str, Any]],
    pairs: Sequence[dict[str, Any]] = (),
    flag_counts: Sequence[tuple[str, str, str, int]] = (),
) -> str:
    """The ``audit --report`` page for catalogue rows (``Catalog.files()``, ``.pairs()``,
    ``.flag_counts()``)."""
    ok = [r for r in files if not r.get("error")]
    bad = [r for r in files if r.get("error")]
    sections = [
        Section(
            "Catalogue",
            paragraphs=(
                f"{len(files)} file(s): {len(ok)} analysed, {len(bad)} could not be; "
                f"{len(pairs)} mix/master pair(s).",
            ),
        ),
        _profiles_section(files),
        _flags_section(ok, flag_counts),
        *_offender_sections(ok),
        _distribution_section(ok),
    ]
    trend = _trend_section(ok)
    if trend is not None:
        sections.append(trend)
    if pairs:
        sections.append(_pairs_section(pairs))
    if bad:
        table = [["File", "Error"], *[[r["path"], r["error"]] for r in bad]]
        sections.append(Section("Could not be analysed", table=table))
    return render_html(
        "earmark audit", sections, subtitle=f"{len(files)} files, {len(pairs)} pairs"
    )


def _profiles_section(files: Sequence[dict]) -> Section:
    table: list[list[Any]] = [
        ["Profile", "Files", "Errors", "With a problem", "Median I LUFS", "Median PSR dB"]
    ]
    for prof in sorted({r["profile"] for r in files}):
        rows = [r for r in files if r["profile"] == prof]
        good = [r for r in rows if not r.get("error")]
        table.append(
            [
                prof,
                len(rows),
                len(rows) - len(good),
                sum(1 for r in good if r.get("problems")),
                fmt_value(_median(good, "integrated_lufs"), 1),
                fmt_value(_median(good, "psr_median_db"), 1),
            ]
        )
    return Section("Per profile", table=table)


def _median(rows: Sequence[dict], key: str) -> float | None:
    import numpy as np

    v = [float(r[key]) for r in rows if r.get(key) is not None]
    return float(np.median(v)) if v else None


def _flags_section(ok: Sequence[dict], counts: Sequence[tuple[str, str, str, int]]) -> Section:
    per_profile = Counter(r["profile"] for r in ok)
    table: list[list[Any]] = [["Flag", "Profile", "Worst severity", "Files", "Share"]]
    for prof, code, severity, n in counts:
        share = n / per_profile[prof] * 100.0 if per_profile[prof] else 0.0
        table.append([code, prof, severity, n, f"{share:.0f} %"])
    if len(table) == 1:
        return Section("Flags", paragraphs=("No file raised a flag.",))
    return Section("Flags", table=table)


def _offender_sections(ok: Sequence[dict]) -> list[Section]:
    worst = sorted(
        (r for r in ok if r.get("problems")),
        key=lambda r: (-int(r["problems"]), r.get("psr_median_db") or 0.0),
    )[:_TOP]
    out = []
    if worst:
        table = [["File", "Profile", "Problems", "Flags", "I LUFS", "PSR dB", "TP dBTP"]]
        table += [
            [_name(r["path"]), r["profile"], int(r["problems"]), r.get("flag_codes") or "",
             _value(r, "integrated_lufs"), _value(r, "psr_median_db"), _value(r, "true_peak_dbtp")]
            for r in worst
        ]  # fmt: skip
        out.append(Section("Worst offenders: most problem flags", table=table))
    for title, key, high in _OFFENDERS:
        rows = [r for r in ok if r.get(key) is not None]
        rows.sort(key=lambda r: float(r[key]), reverse=high)
        if rows:
            m = MEASURE[key]
            table = [["File", "Profile", m.title, "Flags"]]
            table += [
                [_name(r["path"]), r["profile"], _value(r, key), r.get("flag_codes") or ""]
                for r in rows[:_TOP]
            ]
            out.append(Section(f"Worst offenders: {title.lower()}", table=table))
    return out


def _distribution_section(ok: Sequence[dict]) -> Section:
    images, captions = [], []
    for key in DISTRIBUTIONS:
        m = MEASURE[key]
        fig = new_figure(5.0, 2.8)
        plot_distribution(fig.subplots(), [r.get(key) for r in ok], xlabel=m.title)
        images.append(figure_png(fig))
        captions.append(f"{m.label} over {len(ok)} files")
    return Section("Distributions", images=tuple(images), captions=tuple(captions))


def _year(date: str | None) -> float | None:
    """``YYYY[-MM[-DD]]`` as a decimal year (the middle of a month or year not given)."""
    if not date:
        return None
    parts = [int(p) for p in date.split("-")]
    year = parts[0]
    if len(parts) == 1:
        return year + 0.5
    month_start = (parts[1] - 1) / 12.0
    day = (parts[2] - 0.5) / 31.0 / 12.0 if len(parts) > 2 else 1.0 / 24.0
    return year + month_start + day


def _trend_section(ok: Sequence[dict]) -> Section | None:
    dated = [(r, _year(r.get("release_date"))) for r in ok]
    dated = [(r, y) for r, y in dated if y is not None]
    if not dated:
        return None
    images, captions = [], []
    for key in DISTRIBUTIONS:
        m = MEASURE[key]
        fig = new_figure(5.0, 2.8)
        plot_trend(fig.subplots(), [y for _, y in dated], [r.get(key) for r, _ in dated],
                   ylabel=m.title)  # fmt: skip
        images.append(figure_png(fig))
        captions.append(f"{m.label} by release date")
    return Section(
        "Trend by release date",
        paragraphs=(f"{len(dated)} file(s) with a release date in the manifest.",),
        images=tuple(images),
        captions=tuple(captions),
    )


def _pairs_section(pairs: Sequence[dict]) -> Section:
    table: list[list[Any]] = [
        ["Mix", "Master", "Loudness change LU", "PSR change dB", "Compressed", "Limited",
         "Flags introduced", "What the master did"]
    ]  # fmt: skip
    for p in pairs:
        if p.get("error"):
            table.append([_name(p["mix_path"]), _name(p["master_path"]), "-", "-", "-", "-", "",
                          "error: " + str(p["error"])])  # fmt: skip
            continue
        introduced = ", ".join(_codes(p.get("flags_introduced")))
        table.append(
            [_name(p["mix_path"]), _name(p["master_path"]),
             fmt_value(p.get("loudness_change_lu"), 1), fmt_value(p.get("psr_change_db"), 1),
             "yes" if p.get("compressed") else "no", "yes" if p.get("limited") else "no",
             introduced, p.get("summary") or ""]
        )  # fmt: skip
    return Section("Mix/master pairs", table=table)


def _codes(text: Any) -> list[str]:
    import json

    if not text:
        return []
    codes = json.loads(text) if isinstance(text, str) else text
    return [str(c) for c in dict.fromkeys(codes)]


# -- exports ----------------------------------------------------------------------------------


def _export_rows(rows: Sequence[dict]) -> tuple[list[str], list[list[Any]]]:
    if not rows:
        return [], []
    cols = [c for c in rows[0] if c not in _LEFT_OUT]
    return cols, [[r.get(c) for c in cols] for r in rows]


def csv_text(rows: Sequence[dict[str, Any]]) -> str:
    """Catalogue rows as CSV (header, then one line a row; empty cells for NULL)."""
    cols, values = _export_rows(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if cols:
        w.writerow(cols)
    w.writerows([["" if v is None else v for v in row] for row in values])
    return buf.getvalue()


def parquet_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    """Catalogue rows as one Parquet file (pyarrow; the command line checks it is there)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols, values = _export_rows(rows)
    table = pa.table({c: [row[i] for row in values] for i, c in enumerate(cols)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()
