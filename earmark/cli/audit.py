"""``earmark audit``: a catalogue of files analysed, judged and diffed into SQLite.

``earmark audit PATH... [--profile NAME] [--pairs MAP.csv] [--workers N] [--dask ADDRESS]``
``[--out catalog.sqlite] [--csv F] [--parquet F] [--report OUT.html] [--force]``
    PATH: folders (walked for audio files), manifests (``.txt`` one path a line,
    ``.csv`` with ``path`` and optional ``release_date`` columns) and files. Each file
    is analysed as ``earmark analyze`` does (:mod:`earmark.offline.audit`), each pair of
    ``--pairs`` diffed as ``earmark diff --json`` does, in a local process pool
    (``--workers``, default all cores) or on a Dask cluster (``--dask
    tcp://host:port``). Rows go to the catalogue ``--out`` as they finish; a re-run
    skips what is already there (resume). ``--csv``/``--parquet`` export the file
    rows (and the pairs beside them, ``F-pairs.csv``), ``--report`` writes the HTML
    report; each of these is created exclusively, replaced only with ``--force``,
    never onto an input (:mod:`earmark.outfiles`). The catalogue itself is opened and
    added to, never replaced.

Progress on stderr: a bar (files, rate, time left) on a terminal, one summary line
otherwise; each file that could not be analysed is one line ``earmark: FILE: cause``.

Exit codes: 0 ok; 2 usage error (bad option, profile, manifest, output refused);
3 a file or pair could not be analysed (the audit still finished; its error rows are in
the catalogue), the catalogue cannot be written, the scheduler cannot be reached, or
``--parquet`` without pyarrow.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

__all__ = ["register"]

_PROG = "earmark"


def register(sub: Any) -> None:
    """Add ``audit`` to the command line's subcommands."""
    p = sub.add_parser(
        "audit",
        help="analyse a whole catalogue (folders, manifests) into SQLite, in parallel or on Dask",
        description="Analyse every audio file under PATH (folders, manifests: .txt or .csv with "
        "path and release_date columns) as 'earmark analyze' does, diff the mix/master pairs "
        "of --pairs as 'earmark diff' does, and write one row each to the catalogue --out "
        "(SQLite), as they finish. A re-run skips what is already there.",
        epilog="Exit codes: 0 ok, 2 usage error, 3 a file could not be analysed (its error row "
        "is in the catalogue), the catalogue or the scheduler is unavailable.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="folder, manifest or audio file")
    p.add_argument("--profile", metavar="NAME|FILE", help="profile the flags are judged against")
    p.add_argument(
        "--pairs", metavar="MAP.csv", help="mix/master pairs to diff (columns mix,master)"
    )
    p.add_argument("--workers", type=int, metavar="N", help="local processes (default: all cores)")
    p.add_argument("--dask", metavar="ADDRESS", help="run on this Dask scheduler (tcp://host:port)")
    p.add_argument(
        "--out", default="catalog.sqlite", metavar="catalog.sqlite",
        help="the catalogue (created, or resumed; default catalog.sqlite)",
    )  # fmt: skip
    p.add_argument("--csv", metavar="F", help="export the file rows as CSV (pairs: F-pairs.csv)")
    p.add_argument("--parquet", metavar="F", help="export the file rows as Parquet (needs pyarrow)")
    p.add_argument("--report", metavar="OUT.html", help="write the catalogue's HTML report")
    p.add_argument("--force", action="store_true", help="replace existing export/report files")
    p.set_defaults(handler=_cmd_audit, subparser=p)


def _say(what: str, message: str) -> None:
    print(f"{_PROG}: {what}: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


def _cmd_audit(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark import outfiles
    from earmark.errors import PresetError
    from earmark.offline.audit import ManifestError, audit, read_pairs
    from earmark.profiles import resolve_profile
    from earmark.store.schema import StoreError

    if not args.paths and not args.pairs:
        parser.error("give at least one PATH, or --pairs")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers: must be at least 1")
    if args.workers is not None and args.dask:
        parser.error("--workers: the local pool's size; not with --dask (the cluster's own)")
    try:
        profile = resolve_profile(args.profile)
    except PresetError as exc:
        parser.error(f"--profile: {exc}")
    try:
        pairs = read_pairs(args.pairs) if args.pairs else []
    except ManifestError as exc:
        _say("--pairs", exc)
        return EXIT_USAGE
    outputs = _outputs(args)
    inputs = [*args.paths, *([args.pairs] if args.pairs else []), args.out]
    try:  # refused before the (long) audit, and checked again when written
        for option, path in outputs:
            outfiles.check(path, inputs=inputs, force=args.force, option=option)
        if os.path.isdir(args.out):
            raise outfiles.OutputError(f"--out {args.out}: is a folder; give a file name")
    except outfiles.OutputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    if args.parquet and not _has_pyarrow():
        _say("--parquet", "needs pyarrow (pip install pyarrow, or earmark[parquet])")
        return EXIT_UNAVAILABLE
    progress = _Progress()
    try:
        with progress:
            summary = audit(
                args.paths,
                out=args.out,
                profile=profile,
                pairs=pairs,
                workers=args.workers,
                address=args.dask,
                argv=sys.argv[1:],
                on_start=progress.start,
                on_result=progress.result,
            )
    except ManifestError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except StoreError as exc:
        _say("--out", exc)
        return EXIT_UNAVAILABLE
    except OSError as exc:  # the scheduler cannot be reached (distributed raises OSError)
        _say("--dask", f"cannot reach the scheduler {args.dask}: {exc}")
        return EXIT_UNAVAILABLE
    for warning in summary.warnings:
        print(f"{_PROG}: warning: {warning}", file=sys.stderr, flush=True)
    print(f"{_PROG}: audit: {summary.line()}", file=sys.stderr, flush=True)
    try:
        _write_outputs(args, inputs)
    except outfiles.OutputError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr, flush=True)
        return EXIT_USAGE
    except StoreError as exc:
        _say("--out", exc)
        return EXIT_UNAVAILABLE
    return EXIT_UNAVAILABLE if summary.errors or summary.pair_errors else EXIT_OK


def _outputs(args: argparse.Namespace) -> list[tuple[str, str]]:
    out = [("--csv", args.csv), ("--parquet", args.parquet), ("--report", args.report)]
    return [(option, path) for option, path in out if path]


def _has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _write_outputs(args: argparse.Namespace, inputs: list[str]) -> None:
    from earmark import outfiles
    from earmark.store.catalog import Catalog

    if not (args.csv or args.parquet or args.report):
        return
    with Catalog(args.out) as catalog:
        files, pairs = catalog.files(), catalog.pairs()
        if args.report:
            from earmark.offline.audit_report import audit_report

            page = audit_report(files, pairs, list(catalog.flag_counts()))
            outfiles.write(args.report, page, inputs=inputs, force=args.force, option="--report")
    from earmark.offline.audit_report import csv_text, parquet_bytes

    for option, path, encode in (
        ("--csv", args.csv, csv_text),
        ("--parquet", args.parquet, parquet_bytes),
    ):
        if not path:
            continue
        outfiles.write(path, encode(files), inputs=inputs, force=args.force, option=option)
        if pairs:
            stem, ext = os.path.splitext(path)
            outfiles.write(
                f"{stem}-pairs{ext}", encode(pairs), inputs=inputs, force=args.force, option=option
            )


class _Progress:
    """A rich progress bar on stderr when it is a terminal; error lines either way."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.task: Any = None
        self.live = sys.stderr.isatty()

    def __enter__(self) -> _Progress:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("audit"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("elapsed,"),
                TimeRemainingColumn(),
                TextColumn("left"),
                console=Console(file=sys.stderr),
                transient=True,
            )
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def start(self, total: int) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task("audit", total=total, rate="")

    def result(self, row: dict, new: bool) -> None:
        if row.get("error") and new:
            what = row.get("path") or f"{row.get('mix_path')}, {row.get('master_path')}"
            line = f"{_PROG}: {what}: {' '.join(str(row['error']).split())}"
            if self.bar is not None:
                self.bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
            else:
                print(line, file=sys.stderr, flush=True)
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task)
            t = self.bar.tasks[0]
            speed = t.speed
            self.bar.update(self.task, rate=f"{speed:.2f} files/s" if speed else "")
