"""The plots of earmark's reports, drawn on a matplotlib ``Axes`` the caller owns.

Reused by anything that shows the same curves (``analyze --report``, ``diff
--report``, a snapshot's PNG)::

    fig = new_figure(10, 3.5)
    ax = fig.subplots()
    plot_loudness_history(ax, history, flags)
    png = figure_png(fig)

matplotlib runs on its Agg backend (no display needed) and is imported only when a
figure is made.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from earmark.meters.flags import hz_short
from earmark.store.snapshots import flag_dict
from earmark.ui.conventions import A_RGB, B_RGB
from earmark.ui.flags_text import occurrences

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from earmark.meters import History

# The A and B paths' colours, as the dashboard draws them (one home: ui.conventions).
A_COLOR = "#{:02x}{:02x}{:02x}".format(*A_RGB)
B_COLOR = "#{:02x}{:02x}{:02x}".format(*B_RGB)
BEFORE_COLOR = "#4c72b0"
AFTER_COLOR = "#dd8452"
EXTRA_COLORS = ("#55a868", "#c44e52", "#8172b3", "#937860")
_SEVERITY_COLOR = {"warning": "#f0ad4e", "problem": "#d9534f"}
_MAX_SCATTER = 5000


# -- figures ---------------------------------------------------------------------------------


def new_figure(width_in: float = 10.0, height_in: float = 3.6) -> Figure:
    """A matplotlib Figure on the Agg canvas (no display), constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _style(ax: Axes) -> None:
    ax.grid(True, which="both", alpha=0.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def nan(values: Any) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


# -- plots -----------------------------------------------------------------------------------


def plot_loudness_history(
    ax: Axes,
    history: History,
    flags: Iterable[Mapping[str, Any] | Any] = (),
    *,
    label: str | None = None,
    color: str | None = None,
    momentary: bool = True,
) -> None:
    """Short-term (solid) and momentary (thin) loudness over time; flags shaded by severity.

    ``flags`` are flag dicts or objects with ``start_s``, ``end_s``, ``code``
    and ``severity``; each is a band across the plot, labelled with its code.
    """
    t = np.asarray(history.t_s, dtype=np.float64)
    name = f"{label} " if label else ""
    if momentary:
        ax.plot(t, history.momentary_lufs, lw=0.6, alpha=0.45, color=color, label=f"{name}M")
    ax.plot(t, history.short_term_lufs, lw=1.6, color=color, label=f"{name}S")
    _shade_flags(ax, flags)
    ax.set_ylabel("loudness, LUFS")
    ax.set_xlabel("time, s")
    # Every loudness curve on these axes (several versions share them) stays in view;
    # silence at -70 LUFS does not stretch the scale.
    values = [np.asarray(line.get_ydata(), dtype=np.float64) for line in ax.get_lines()]
    finite = np.concatenate(values) if values else np.zeros(0)
    finite = finite[np.isfinite(finite)]
    if finite.size:
        top = float(finite.max()) + 2.0
        lo = max(float(np.percentile(finite, 1)) - 3.0, top - 42.0)
        # Room above the curves for the flag lanes.
        ax.set_ylim(lo, lo + (top - lo) / max(1.0 - _LANE * _flag_lanes(ax), 0.5))
    _style(ax)


_LANE = 0.055  # height of one flag lane, in axes fraction


def _flag_lanes(ax: Axes) -> int:
    return int(getattr(ax, "_earmark_flag_lanes", 0))


def _shade_flags(ax: Axes, flags: Iterable[Mapping[str, Any] | Any]) -> None:
    """Each flag code gets a lane at the top (a bar over each occurrence, labelled
    with the code) and a faint shade over the whole height."""
    lanes: dict[str, int] = {}
    for f in flags:
        d = flag_dict(f)
        start, end = d.get("start_s"), d.get("end_s")
        if start is None or end is None:
            continue
        start = float(start)
        color = _SEVERITY_COLOR.get(str(d.get("severity")), "#999999")
        code = str(d.get("code", ""))
        new = code not in lanes
        lane = lanes.setdefault(code, len(lanes))
        top = 1.0 - lane * _LANE
        # A flag that groups occurrences is one bar per occurrence, in one lane.
        spans = [(o.get("start_s"), o.get("end_s")) for o in occurrences(d)]
        spans = [(s, e) for s, e in spans if s is not None and e is not None] or [(start, end)]
        for s, e in spans:
            s, e = float(s), max(float(e), float(s) + 0.1)
            ax.axvspan(s, e, color=color, alpha=0.035, lw=0)
            ax.axvspan(s, e, ymin=top - _LANE * 0.8, ymax=top, color=color, alpha=0.8, lw=0)
        if new:
            ax.text(
                start,
                top - _LANE * 0.4,
                f" {code.replace('_', ' ')}",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                va="center",
                ha="left",
                color="white",
                fontweight="bold",
                clip_on=True,
            )
    ax._earmark_flag_lanes = max(_flag_lanes(ax), len(lanes))  # type: ignore[attr-defined]


def plot_psr(
    ax: Axes,
    history: History,
    *,
    label: str | None = None,
    color: str | None = None,
    floor_db: float | None = None,
) -> None:
    """PSR (true peak over 3 s minus short-term loudness) over time, with an optional floor."""
    ax.plot(history.t_s, history.psr_db, lw=1.4, color=color, label=label)
    if floor_db is not None:
        ax.axhline(floor_db, color="#d9534f", lw=1, ls="--", label=f"floor {floor_db:g} dB")
    ax.set_ylabel("PSR, dB")
    ax.set_xlabel("time, s")
    _style(ax)


def plot_spectrum(
    ax: Axes,
    band_hz: Sequence[float],
    levels: Sequence[float | None],
    target: tuple[Sequence[float], Sequence[float], Sequence[float]] | None = None,
    *,
    label: str | None = None,
    color: str | None = None,
    style: str = "-",
) -> None:
    """Band levels over frequency (log axis); ``target`` = (Hz, low dB, high dB) is shaded."""
    hz = np.asarray(band_hz, dtype=np.float64)
    ax.semilogx(hz, nan(levels), style, color=color, marker="o", ms=2.5, lw=1.4, label=label)
    if target is not None:
        t_hz, lo, hi = (np.asarray(v, dtype=np.float64) for v in target)
        ok = np.isfinite(lo) & np.isfinite(hi)
        if ok.any():
            ax.fill_between(
                t_hz[ok], lo[ok], hi[ok], color="#55a868", alpha=0.2, lw=0, label="profile target"
            )
    ax.set_xlabel("frequency, Hz")
    _hz_axis(ax)
    _style(ax)


def _hz_axis(ax: Axes) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ticks = [20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: hz_short(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(18, 22000)


def plot_eq_curve(
    ax: Axes,
    curve_hz: Sequence[float],
    curve_db: Sequence[float],
    fitted_hz: Sequence[float] | None = None,
    fitted_db: Sequence[float] | None = None,
    moves: Sequence[Any] = (),
    *,
    label: str | None = "measured",
    color: str | None = AFTER_COLOR,
) -> None:
    """The EQ difference curve, the fitted moves' response (dashed) and each move named."""
    hz = np.asarray(curve_hz, dtype=np.float64)
    db = np.asarray(curve_db, dtype=np.float64)
    ax.axhline(0.0, color="#777777", lw=0.8)
    ax.semilogx(hz, db, "-", color=color, marker="o", ms=2.5, lw=1.6, label=label)
    if fitted_hz is not None and fitted_db is not None:
        ax.semilogx(fitted_hz, fitted_db, "--", color="#333333", lw=1.1, label="fitted moves")
    for i, move in enumerate(moves):
        f = float(getattr(move, "freq_hz", 0.0))
        text = move.describe() if hasattr(move, "describe") else str(move)
        y = float(np.interp(math.log(f), np.log(hz), np.nan_to_num(db))) if hz.size else 0.0
        ax.annotate(
            text,
            xy=(f, y),
            xytext=(0, 14 + 12 * (i % 3)) if y >= 0 else (0, -18 - 12 * (i % 3)),
            textcoords="offset points",
            fontsize=8,
            ha="center",
            arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.6},
        )
    finite = db[np.isfinite(db)]
    span = max(3.0, float(np.max(np.abs(finite))) + 2.5) if finite.size else 3.0
    ax.set_ylim(-span, span)
    ax.set_ylabel("AFTER / BEFORE, dB")
    ax.set_xlabel("frequency, Hz")
    _hz_axis(ax)
    _style(ax)


def plot_level_transfer(
    ax: Axes,
    in_db: Sequence[float],
    out_db: Sequence[float],
    fit: Any = None,
    *,
    weight: Sequence[float] | None = None,
    label: str | None = None,
    color: str | None = AFTER_COLOR,
) -> None:
    """Scatter of input level vs output level per window, with the fitted compressor curve.

    ``fit`` is a :class:`earmark.meters.diff.CompressorFit` (anything with
    ``gain_at(levels)``, ``threshold_db`` and ``ratio``); the dotted line is
    the same gain with no compression.
    """
    x = np.asarray(in_db, dtype=np.float64)
    y = np.asarray(out_db, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if weight is not None:
        keep &= np.asarray(weight) > 0
    x, y = x[keep], y[keep]
    if x.size > _MAX_SCATTER:
        pick = np.random.default_rng(0).choice(x.size, _MAX_SCATTER, replace=False)
        x, y = x[pick], y[pick]
    ax.scatter(x, y, s=3, alpha=0.25, color=color, lw=0, label=label)
    if fit is not None and x.size:
        grid = np.linspace(float(x.min()), float(x.max()), 200)
        ax.plot(grid, grid + fit.gain_at(grid), color="#222222", lw=1.6, label="fitted curve")
        ax.plot(grid, grid + fit.gain_db, ":", color="#777777", lw=1.0, label="no compression")
        if getattr(fit, "ratio", 1.0) > 1.05:
            ax.axvline(fit.threshold_db, color="#999999", lw=0.8, ls="--")
    ax.set_xlabel("BEFORE through the EQ: peak-envelope level, dBFS")
    ax.set_ylabel("AFTER level, dBFS")
    _style(ax)


def plot_distribution(
    ax: Axes,
    values: Sequence[float | None],
    *,
    xlabel: str,
    color: str | None = BEFORE_COLOR,
    marks: Sequence[tuple[float, str]] = (),
) -> None:
    """A histogram of one measure over many files (``audit --report``), with its median
    and optional vertical ``marks`` (value, label), e.g. a delivery target."""
    v = nan(values)
    v = v[np.isfinite(v)]
    if v.size:
        bins = max(5, min(40, int(math.sqrt(v.size)) * 2))
        ax.hist(v, bins=bins, color=color, alpha=0.8)
        med = float(np.median(v))
        ax.axvline(med, color="#222222", lw=1.2, ls="--", label=f"median {med:.1f}")
    for x, text in marks:
        ax.axvline(x, color="#d9534f", lw=1, ls=":", label=text)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of files
    ax.set_xlabel(xlabel)
    ax.set_ylabel("files")
    if v.size or marks:
        ax.legend(loc="upper right", fontsize=8)
    _style(ax)


def plot_trend(
    ax: Axes,
    years: Sequence[float],
    values: Sequence[float | None],
    *,
    ylabel: str,
    color: str | None = BEFORE_COLOR,
) -> None:
    """One measure per file against its release date (decimal years), and the median of
    each year as a line: how a catalogue drifts (``audit --report``)."""
    x, y = np.asarray(years, dtype=np.float64), nan(values)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    ax.scatter(x, y, s=10, alpha=0.5, color=color, lw=0)
    if x.size:
        whole = np.floor(x)
        ys = np.unique(whole)
        med = [float(np.median(y[whole == k])) for k in ys]
        ax.plot(ys + 0.5, med, "-o", color="#222222", lw=1.4, ms=3, label="median per year")
        ax.legend(loc="best", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole years
    ax.set_xlabel("release date")
    ax.set_ylabel(ylabel)
    _style(ax)
