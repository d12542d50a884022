"""`earmark history`: each session's final snapshot and the drift across sessions, the
listening thresholds of `earmark listen` and the verdicts of `earmark compare`, each with
its drift: the measurable forms of "good enough" creeping in and of skill atrophy."""

from __future__ import annotations

import argparse
import json
from typing import Any

from earmark.cli.snapshots import local_time, make_console, open_store, run_guarded
from earmark.errors import EXIT_OK
from earmark.offline.measures import Measure, fmt_signed, fmt_value, measures
from earmark.termtext import printable, printable_data

# -- history --------------------------------------------------------------------------------

# The columns of `earmark history`: each session's final snapshot, measure by measure.
HISTORY_MEASURES: tuple[Measure, ...] = measures(
    "integrated_lufs",
    "psr_db",
    "loudness_range_lu",
    "true_peak_dbtp",
    "plr_db",
    "harshness_db",
    "sharpness_acum",
)


def history_rows(
    store: Any, session: str | None = None, since: float | None = None, until: float | None = None
) -> list[dict]:
    """Each session's final snapshot (last labelled 'final', else last) on its A path."""
    rows: list[dict] = []
    for s in store.sessions(session, since, until):
        snaps = store.snapshots(session=s["name"], since=s["started"])
        snaps = [n for n in snaps if n["session_id"] == s["id"]]
        if not snaps:
            continue
        finals = [n for n in snaps if "final" in (n["label"] or "").lower()]
        final = (finals or snaps)[-1]
        psr = final["psr_median_db"] if final["psr_median_db"] is not None else final["psr_db"]
        rows.append(
            {
                "session": s["name"],
                "session_id": s["id"],
                "started": s["started"],
                "snapshot": final["id"],
                "time": final["time"],
                "label": final["label"],
                "path": final["path_name"],
                "integrated_lufs": final["integrated_lufs"],
                "psr_db": psr,
                "loudness_range_lu": final["loudness_range_lu"],
                "true_peak_dbtp": final["true_peak_dbtp"],
                "plr_db": final["plr_db"],
                "harshness_db": final["harshness_db"],
                "sharpness_acum": final["sharpness_acum"],
            }
        )
    return rows


def drift(rows: list[dict]) -> dict[str, float]:
    """Last minus first of each measure (where both are known), the drift over the span."""
    out: dict[str, float] = {}
    for key in (m.key for m in HISTORY_MEASURES):
        known = [r[key] for r in rows if r[key] is not None]
        if len(known) >= 2:
            out[key] = known[-1] - known[0]
    return out


def cmd_history(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    def go() -> int:
        from earmark.store.comparisons import comparisons
        from earmark.store.listening import thresholds

        with open_store() as store:
            rows = history_rows(store, args.session, args.since, args.until)
            heard = [] if args.session else thresholds(store.conn, args.since, args.until)
            compared = [] if args.session else comparisons(store.conn, args.since, args.until)
        moved = drift(rows)
        heard_drift = listening_drift(heard)
        toward = comparison_drift(compared)
        if args.json:
            doc = {"sessions": rows, "drift": moved, "listening": heard,
                   "listening_drift": heard_drift, "comparisons": compared,
                   "comparison_drift": toward}  # fmt: skip
            print(json.dumps(doc, indent=2, allow_nan=False))
            return EXIT_OK
        rows = printable_data(rows)
        if not rows:
            print("no session has a snapshot yet (take one with `s` in the live view or "
                  "`earmark snapshot take`)")  # fmt: skip
            _print_listening(heard, heard_drift)
            _print_comparisons(compared, toward)
            return EXIT_OK
        from rich.table import Table

        table = Table(header_style="bold")
        for col in ("session", "final snapshot", "path"):
            table.add_column(col)
        for m in HISTORY_MEASURES:
            table.add_column(m.heading or m.label, justify="right")
        for r in rows:
            label = f"#{r['snapshot']} {local_time(r['time'])}" + (
                f" {r['label']}" if r["label"] else ""
            )
            table.add_row(
                r["session"],
                label,
                r["path"] or "-",
                *(fmt_value(r[m.key], m.decimals) for m in HISTORY_MEASURES),
            )
        console = make_console()
        console.print(table)
        if moved:
            parts = [
                f"{(m.heading or m.label).split()[0]} "
                f"{fmt_signed(moved[m.key], m.decimals)} {m.change_unit}"
                for m in HISTORY_MEASURES
                if m.key in moved
            ]
            span = f"{local_time(rows[0]['time'])[:10]} -> {local_time(rows[-1]['time'])[:10]}"
            console.print(f"Drift over {len(rows)} sessions ({span}): " + ", ".join(parts))
        _print_listening(heard, heard_drift)
        _print_comparisons(compared, toward)
        return EXIT_OK

    return run_guarded(go)


def listening_drift(tests: list[dict]) -> dict[str, float]:
    """Per kind of change, the last found threshold minus the first (both "=", not bounds):
    positive means a larger change is needed to be heard, the ears' drift."""
    out: dict[str, float] = {}
    by_change: dict[str, list[float]] = {}
    for t in tests:
        if t["threshold_relation"] == "=":
            by_change.setdefault(t["change"], []).append(t["threshold"])
    for change, values in by_change.items():
        if len(values) >= 2:
            out[change] = values[-1] - values[0]
    return out


def _print_listening(tests: list[dict], moved: dict[str, float]) -> None:
    """The listening thresholds (earmark listen), oldest first, and their drift."""
    if not tests:
        return
    from rich.table import Table

    table = Table(header_style="bold", title="Listening thresholds (earmark listen)")
    for col in ("test", "change", "mode", "threshold", "trials", "right", "p"):
        table.add_column(col, justify="left" if col in ("test", "change", "mode") else "right")
    words = {"=": "", "<=": "<= ", ">": "> "}
    for t in tests:
        table.add_row(
            f"#{t['id']} {local_time(t['time'])}",
            t["change"],
            t["mode"],
            f"{words.get(t['threshold_relation'], '')}{t['threshold']:.2g} {t['unit'] or ''}",
            str(t["trials"]),
            str(t["correct"]),
            fmt_value(t["p_value"], 3),
        )
    console = make_console()
    console.print(table)
    if moved:
        units = {t["change"]: t["unit"] or "" for t in tests}
        parts = [
            f"{change} {fmt_signed(d, 2)} {units[change]}" + (" (hearing less)" if d > 0 else "")
            for change, d in moved.items()
        ]
        console.print("Threshold drift, first -> last: " + ", ".join(parts))


# (key, what A minus B measures, unit) of `earmark compare`, as history lists them.
_COMPARED = (
    ("loudness_diff_lu", "loudness", "LU"),
    ("brighter_db", "above 4 kHz", "dB"),
    ("psr_diff_db", "PSR", "dB"),
    ("wider_pct", "width", "%"),
)


def comparison_drift(rows: list[dict]) -> dict[str, float]:
    """How much nearer B came to A from the first comparison to the last, per measure:
    |A - B| first minus |A - B| last (positive: B moved toward A, the drift toward the
    automatic master)."""
    out: dict[str, float] = {}
    for key, _, _ in _COMPARED:
        known = [r[key] for r in rows if r.get(key) is not None]
        if len(known) >= 2:
            out[key] = abs(known[0]) - abs(known[-1])
    return out


def _print_comparisons(rows: list[dict], toward: dict[str, float]) -> None:
    """The stored `earmark compare` verdicts (A minus B), oldest first, and the drift."""
    if not rows:
        return
    from rich.table import Table

    table = Table(header_style="bold", title="Masters compared (earmark compare: A minus B)")
    for col in ("when", "mix", "A", "B"):
        table.add_column(col)
    for _, what, unit in _COMPARED:
        table.add_column(f"{what} {unit}", justify="right")
    for r in rows:
        table.add_row(
            local_time(r["time"]),
            printable(r["mix"] or ""),
            printable(r["a"] or ""),
            printable(r["b"] or ""),
            *(fmt_signed(r[k], 0 if unit == "%" else 1) if r[k] is not None else "-"
              for k, _, unit in _COMPARED),
        )  # fmt: skip
    console = make_console()
    console.print(table)
    if toward:
        parts = [
            f"{what} {abs(toward[k]):.1f} {unit} {'nearer' if toward[k] > 0 else 'further'}"
            for k, what, unit in _COMPARED
            if k in toward
        ]
        console.print("B against A, first -> last: " + ", ".join(parts))
