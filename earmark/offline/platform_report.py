"""``--platforms`` and ``--album`` as tables: the one home of their rows, which the text
output (earmark.cli.analyze, earmark.cli.diff) prints and the HTML reports
(earmark.offline.report) show, so both carry the same numbers.

Rows are lists of strings, the header first (:class:`earmark.offline.report.Section`'s
``table``); a section builder per report part: the platforms of each analysed file,
BEFORE against AFTER on each platform (with :func:`earmark.offline.platforms.compare_sentence`),
and the album (loudness and LRA over the whole programme, each track against it, the
``album_inconsistent`` flags, the album gain per platform).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from earmark.offline.measures import fmt_signed, fmt_value
from earmark.offline.platforms import PlatformOutcome, PlatformRule, compare_sentence, outcomes

if TYPE_CHECKING:
    from earmark.offline.album import Album
    from earmark.offline.report import Section

__all__ = [
    "ALBUM_COLUMNS",
    "PLATFORM_COLUMNS",
    "album_gain_rows",
    "album_rows",
    "album_section",
    "diff_platforms_section",
    "outcome_cell",
    "platform_rows",
    "platforms_section",
    "sentence",
]

PLATFORM_COLUMNS: tuple[str, ...] = (
    "Platform",
    "Target LUFS",
    "Gain dB",
    "Plays at LUFS",
    "True peak dBTP",
    "Limited",
    "Penalty LU",
    "PLR cost dB",
)
ALBUM_COLUMNS: tuple[str, ...] = (
    "#",
    "Track",
    "Integrated LUFS",
    "vs album LU",
    "vs neighbours LU",
    "2-5 kHz vs album dB",
    "5-10 kHz vs album dB",
    "LRA LU",
    "True peak dBTP",
)
ALBUM_GAIN_COLUMNS: tuple[str, ...] = (
    "Platform",
    "Target LUFS",
    "Album gain dB",
    "Album true peak dBTP",
)
_PLATFORMS_NOTE = (
    "What each platform's playback does to the master: the gain it applies, the "
    "loudness and true peak its listener gets, and the loudness penalty (the loudness "
    "above its target that is thrown away) with the PLR that loudness cost. Rules and "
    'sources: docs/reference.md, "Platforms\' playback rules".'
)


def platform_rows(rows: Sequence[PlatformOutcome]) -> list[list[str]]:
    """The platforms table: the header, then one row per outcome."""
    out = [list(PLATFORM_COLUMNS)]
    for o in rows:
        out.append(
            [
                o.rule.label + (" (album)" if o.normalisation == "album" else ""),
                fmt_value(o.rule.target_lufs, 1),
                "-" if o.gain_db is None else fmt_signed(o.gain_db, 1),
                fmt_value(o.playback_lufs, 1),
                fmt_value(o.playback_true_peak_dbtp, 1),
                "yes" if o.limited else "no",
                fmt_value(o.penalty_lu, 1),
                fmt_value(o.plr_cost_db, 1),
            ]
        )
    return out


def outcome_cell(entry: dict[str, Any] | None) -> str:
    """One stored outcome (a snapshot's ``platforms`` entry) in one cell: "plays at LUFS
    (gain dB) [limited] · penalty LU · PLR cost dB" (``snapshots show``/``diff``, its HTML)."""
    if entry is None or entry.get("playback_lufs") is None:
        return "-"
    return (
        f"{fmt_value(entry['playback_lufs'], 1)} ({fmt_signed(entry.get('gain_db'), 1)})"
        f"{' limited' if entry.get('limited') else ''} · {fmt_value(entry.get('penalty_lu'), 1)}"
        f" · {fmt_value(entry.get('plr_cost_db'), 1)}"
    )


def sentence(before: PlatformOutcome, after: PlatformOutcome) -> str:
    """:func:`compare_sentence` as a sentence of its own (capital, full stop)."""
    text = compare_sentence(before, after)
    return f"{text[:1].upper()}{text[1:]}."


def platforms_section(
    labels: Sequence[str], analyses: Sequence[Any], platforms: Sequence[PlatformRule]
) -> Section:
    """The "Platforms" section of ``analyze --report --platforms``: a table per file."""
    from earmark.offline.report import Section

    return Section(
        "Platforms",
        paragraphs=(_PLATFORMS_NOTE,),
        columns=tuple(
            Section(label, table=platform_rows(outcomes(a, platforms)))
            for label, a in zip(labels, analyses, strict=True)
        ),
    )


def diff_platforms_section(
    before: Any, after: Any, platforms: Sequence[PlatformRule], labels: tuple[str, str]
) -> Section:
    """The "Platforms" section of ``diff --report --platforms``: what AFTER's loudness
    change buys and costs on each platform (a sentence each), and both tables."""
    from earmark.offline.report import Section

    ob, oa = outcomes(before, platforms), outcomes(after, platforms)
    return Section(
        "Platforms",
        paragraphs=(_PLATFORMS_NOTE, f"BEFORE = {labels[0]}, AFTER = {labels[1]}."),
        bullets=[sentence(b, a) for b, a in zip(ob, oa, strict=True)],
        columns=(
            Section(labels[0], table=platform_rows(ob)),
            Section(labels[1], table=platform_rows(oa)),
        ),
    )


def album_rows(album: Album, labels: Sequence[str]) -> list[list[str]]:
    """The album table: the header, each track against the album, then the album's row."""
    out = [list(ALBUM_COLUMNS)]
    for i, (label, t) in enumerate(zip(labels, album.tracks, strict=True)):
        out.append(
            [
                str(i + 1), label, fmt_value(t.integrated_lufs, 1), fmt_signed(t.delta_lu, 1),
                fmt_signed(t.neighbours_delta_lu, 1), fmt_signed(t.presence_delta_db, 1),
                fmt_signed(t.air_delta_db, 1), fmt_value(t.loudness_range_lu, 1),
                fmt_value(t.true_peak_dbtp, 1),
            ]
        )  # fmt: skip
    out.append(
        [
            "", "Album", fmt_value(album.integrated_lufs, 1), "", "", "", "",
            fmt_value(album.loudness_range_lu, 1), fmt_value(album.true_peak_dbtp, 1),
        ]
    )  # fmt: skip
    return out


def album_gain_rows(album: Album) -> list[list[str]]:
    """The album gain per platform: the header, then one row per platform."""
    out = [list(ALBUM_GAIN_COLUMNS)]
    for p in album.platforms:
        out.append(
            [
                p.platform,
                fmt_value(p.target_lufs, 1),
                fmt_signed(p.gain_db, 1),
                fmt_value(p.true_peak_dbtp, 1),
            ]
        )
    return out


def album_section(album: Album, labels: Sequence[str]) -> Section:
    """The "Album" section of ``analyze --report --album``: the album's loudness, LRA and
    true peak over the whole programme, each track against it, its flags, its gain per
    platform."""
    from earmark.offline.report import Section
    from earmark.ui.flags_text import flag_bullet

    head = (
        f"Album: {fmt_value(album.integrated_lufs, 1)} LUFS integrated over the whole "
        f"programme ({len(album.tracks)} tracks, {album.duration_s / 60:.1f} min), "
        f"LRA {fmt_value(album.loudness_range_lu, 1)} LU, true peak "
        f"{fmt_value(album.true_peak_dbtp, 1)} dBTP."
    )
    return Section(
        "Album",
        paragraphs=(head, *album.warnings),
        bullets=[flag_bullet(f) for f in album.flags] or ["no album_inconsistent flags"],
        columns=(
            Section("Tracks against the album", table=album_rows(album, labels)),
            Section("Album gain per platform", table=album_gain_rows(album)),
        ),
    )
