"""What ``--codecs`` prints and returns: files through the codecs, tables, two versions.

The measuring lives in :mod:`earmark.offline.codecs`; this module reads a file for it,
turns its :class:`~earmark.offline.codecs.CodecResult` lists into the rows the terminal
and the HTML reports show, and compares BEFORE's with AFTER's for ``earmark diff``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from earmark.offline.codecs import Codec, CodecResult, codec_flags, codec_result

__all__ = [
    "codec_table",
    "compared_json",
    "compared_table",
    "flags_introduced",
    "measure_file",
    "profile_ceiling_dbtp",
]


# -- files, tables ------------------------------------------------------------------


def profile_ceiling_dbtp(profile: Any) -> float | None:
    """The profile's true-peak ceiling (None: the profile has none)."""
    true_peak = getattr(profile, "true_peak", None)
    return None if true_peak is None else float(true_peak.ceiling_dbtp)


def measure_file(
    path: str, codecs: Sequence[Codec], original: Any, profile: Any = None
) -> tuple[list[CodecResult], list[dict[str, Any]], list[str]]:
    """Every codec's result for a file already analysed (``original``).

    Returns (results, ``codec_clipping`` flags as dicts, warnings): a codec that
    cannot encode this file (a rate it does not take, more than two channels) is
    a warning naming it, and the others are still measured.
    """
    import soundfile as sf

    x, sample_rate = sf.read(path, dtype="float32", always_2d=True)
    if x.shape[1] > 2:
        return [], [], [f"codecs: measured on mono or stereo only, not {x.shape[1]} channels"]
    results: list[CodecResult] = []
    warnings: list[str] = []
    for c in codecs:
        try:
            results.append(codec_result(x, sample_rate, c, original))
        except Exception as exc:  # FFmpeg's and libsndfile's errors: one line per codec
            cause = " ".join(str(exc).split()) or type(exc).__name__
            warnings.append(f"codec {c.name}: cannot encode at {sample_rate} Hz: {cause}")
    ceiling = profile_ceiling_dbtp(profile)
    # Each flag's dict names its codec (an added key): two versions' flags are the same
    # problem when code and codec match (earmark diff --codecs).
    flags = [{**f.to_dict(), "codec": r.name} for r in results for f in codec_flags([r], ceiling)]
    return results, flags, warnings


def codec_table(results: Sequence[CodecResult]) -> list[list[str]]:
    """The codecs as rows of text (first row the header), for the terminal and HTML."""

    def num(v: float | None, unit: str = "") -> str:
        return "-" if v is None else f"{v:+.1f}{unit}"

    rows = [
        [
            "Codec",
            "kb/s",
            "True peak dBTP",
            "Clipped samples",
            "Where (s)",
            "Loudness LU",
            "Lost >16 kHz dB",
            "Safe ceiling dBTP",
        ]
    ]
    for r in results:
        where = (
            "-"
            if r.clipped_between_s is None
            else f"{r.clipped_between_s[0]:.1f}-{r.clipped_between_s[1]:.1f} ({r.clip_runs} runs)"
        )
        rows.append(
            [
                r.label,
                f"{r.measured_kbps:.0f}",
                num(r.true_peak_dbtp),
                str(r.clipped_samples),
                where,
                num(r.loudness_change_lu),
                "-" if r.hf_loss_db is None else f"{r.hf_loss_db:.1f}",
                "-" if r.safe_ceiling_dbtp is None else f"{r.safe_ceiling_dbtp:.1f}",
            ]
        )
    return rows


# -- two versions (earmark diff --codecs) -----------------------------------------------


def flags_introduced(
    before: Sequence[dict[str, Any]], after: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """AFTER's ``codec_clipping`` flags for codecs BEFORE had none for."""
    had = {f.get("codec") for f in before}
    return [f for f in after if f.get("codec") not in had]


def compared_json(
    before: Sequence[CodecResult], after: Sequence[CodecResult]
) -> list[dict[str, Any]]:
    """The ``codecs`` list of ``diff --json``: per codec, name, rate and each version's object."""
    by_name = {r.name: r for r in before}
    out = []
    for r in after:
        b = by_name.get(r.name)
        out.append(
            {
                "name": r.name,
                "bitrate_kbps": r.bitrate_kbps,
                "before": None if b is None else b.to_json_dict(),
                "after": r.to_json_dict(),
            }
        )
    return out


def compared_table(
    before: Sequence[CodecResult], after: Sequence[CodecResult], labels: tuple[str, str]
) -> list[list[str]]:
    """BEFORE and AFTER side by side per codec (first row the header)."""
    by_name = {r.name: r for r in before}

    def tp(r: CodecResult | None) -> str:
        return "-" if r is None or r.true_peak_dbtp is None else f"{r.true_peak_dbtp:+.1f}"

    def ceiling(r: CodecResult | None) -> str:
        return "-" if r is None or r.safe_ceiling_dbtp is None else f"{r.safe_ceiling_dbtp:.1f}"

    def loud(r: CodecResult | None) -> str:
        return "-" if r is None or r.loudness_change_lu is None else f"{r.loudness_change_lu:+.1f}"

    def hf(r: CodecResult | None) -> str:
        return "-" if r is None or r.hf_loss_db is None else f"{r.hf_loss_db:.1f}"

    b_, a_ = labels
    rows = [
        [
            "Codec",
            f"True peak {b_}",
            f"True peak {a_}",
            f"Clipped {b_}",
            f"Clipped {a_}",
            f"Loudness LU {b_}",
            f"Loudness LU {a_}",
            f"Lost >16 kHz {b_}",
            f"Lost >16 kHz {a_}",
            f"Safe ceiling {b_}",
            f"Safe ceiling {a_}",
        ]
    ]
    for r in after:
        b = by_name.get(r.name)
        rows.append(
            [
                r.label,
                tp(b),
                tp(r),
                "-" if b is None else str(b.clipped_samples),
                str(r.clipped_samples),
                loud(b),
                loud(r),
                hf(b),
                hf(r),
                ceiling(b),
                ceiling(r),
            ]
        )
    return rows
