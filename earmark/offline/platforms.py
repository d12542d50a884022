"""What each streaming platform does to a master: its playback rule, the gain it applies,
what the listener gets, and the loudness penalty.

Pure functions on a master's integrated loudness, true peak and PLR (and the album's
integrated loudness when it is given); nothing here reads audio. The rules and their
sources are in docs/reference.md, "Platforms' playback rules".

One home per target: a platform that has a delivery profile (``presets/profiles/
spotify.toml``, ``apple-music.toml``, ``youtube.toml``, ``tidal.toml``, ``deezer.toml``)
takes its target loudness and true-peak ceiling from that profile, so ``--profile
spotify`` and ``--platforms spotify`` can never disagree. This table adds only what a
profile does not say: whether quiet masters are turned up, the limiter, album gain.
Spotify's "loud" and "quiet" settings and Amazon Music have no delivery profile (a
listener setting is not a delivery spec), so their numbers live here.

The loudness penalty (after MeterPlugs' Loudness Penalty): ``penalty_lu`` is how far
the platform turns the master down, the loudness above its target that is thrown
away. ``plr_cost_db`` is the peak-to-loudness ratio that loudness was bought with:
played at ``playback_lufs``, the master could have had true peaks up to the platform's
ceiling without limiting, that is a PLR of ``ceiling_dbtp - playback_lufs``; the cost
is how far the master's own PLR falls short of that, never more than the penalty (only
loudness that is thrown away can have been paid for in vain).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "PLATFORM_NAMES",
    "PlatformOutcome",
    "PlatformRule",
    "compare_sentence",
    "outcomes",
    "parse_platforms",
    "playback",
    "rule",
    "rules",
]

# How a platform treats a master quieter than its target:
#   "never": not turned up (only turned down);
#   "headroom": turned up only until the true peak reaches the ceiling;
#   "limiter": turned up to the target, a limiter holding the true peak at the ceiling.
RaiseRule = Literal["never", "headroom", "limiter"]


@dataclass(frozen=True, slots=True)
class PlatformRule:
    """One platform's playback rule (sources: docs/reference.md, "Platforms")."""

    name: str  # the name --platforms takes
    label: str  # the name printed
    target_lufs: float
    ceiling_dbtp: float  # the platform's true-peak ceiling (raising stops, the limiter holds)
    raises: RaiseRule
    album_gain: bool  # an album played as an album gets one gain (when album loudness is given)
    profile: str | None  # the delivery profile the target and ceiling come from


@dataclass(frozen=True, slots=True)
class PlatformOutcome:
    """What one platform does to one master; None where the master's loudness is undefined."""

    rule: PlatformRule
    gain_db: float | None
    playback_lufs: float | None
    playback_true_peak_dbtp: float | None
    limited: bool
    penalty_lu: float | None
    plr_cost_db: float | None
    plr_db: float | None  # the master's PLR (a gain does not change it; a limiter does)
    normalisation: str  # "track" or "album": which loudness the gain was computed from
    integrated_lufs: float | None = None  # the master's, as delivered

    def to_json_dict(self) -> dict[str, Any]:
        """The ``platforms`` entry of ``analyze --json`` (and of a snapshot's path)."""
        return {
            "name": self.rule.name,
            "target_lufs": self.rule.target_lufs,
            "gain_db": _round(self.gain_db),
            "playback_lufs": _round(self.playback_lufs),
            "playback_true_peak_dbtp": _round(self.playback_true_peak_dbtp),
            "limited": self.limited,
            "penalty_lu": _round(self.penalty_lu),
            "plr_cost_db": _round(self.plr_cost_db),
            "normalisation": self.normalisation,
        }

    @classmethod
    def from_json_dict(
        cls, entry: dict[str, Any], integrated_lufs: float | None, plr_db: float | None
    ) -> PlatformOutcome:
        """An outcome back from its :meth:`to_json_dict` (a snapshot's ``platforms`` entry)
        and the master's integrated loudness and PLR, which the entry leaves to the readings.

        Raises:
            ValueError: the entry names a platform this earmark does not know.
        """
        return cls(
            rule(str(entry.get("name"))),
            entry.get("gain_db"),
            entry.get("playback_lufs"),
            entry.get("playback_true_peak_dbtp"),
            bool(entry.get("limited")),
            entry.get("penalty_lu"),
            entry.get("plr_cost_db"),
            plr_db,
            str(entry.get("normalisation") or "track"),
            integrated_lufs,
        )


# name, label, raise rule, album gain, profile (or the target and ceiling when none).
# Targets and ceilings of profiled platforms are read from the profile, not written here.
_TABLE: tuple[tuple[str, str, RaiseRule, bool, str | None, float | None, float | None], ...] = (
    # Spotify for Artists, "Loudness normalization": raised only until 1 dB of true-peak
    # headroom is left; album gain when an album is played as an album.
    ("spotify", "Spotify", "headroom", True, "spotify", None, None),
    # Same page: "Loud" -11 LUFS with a limiter (-1 dB); "Quiet" -19 LUFS.
    ("spotify-loud", "Spotify (loud)", "limiter", True, None, -11.0, -1.0),
    ("spotify-quiet", "Spotify (quiet)", "headroom", True, None, -19.0, -1.0),
    # Sound Check turns quiet tracks up (secondary sources); how far, and per album or
    # track, Apple does not publish: inference, Spotify's 1 dB headroom rule, per track.
    ("apple-music", "Apple Music", "headroom", False, "apple-music", None, None),
    # "YouTube will never turn up a video" (admiralbumblebee.com 2018); no albums.
    ("youtube", "YouTube", "never", False, "youtube", None, None),
    # Quiet tracks not raised (meterplugs.com 2016); album normalisation by default is
    # reported but unconfirmed: inference.
    ("tidal", "TIDAL", "never", True, "tidal", None, None),
    # -14 LUFS / -2 dBTP (secondary, low confidence); turning up and album gain are
    # not published: inference, only turned down, per track.
    ("amazon-music", "Amazon Music", "never", False, None, -14.0, -2.0),
    # -15 LUFS (secondary, low confidence); the rest is inference as for Amazon.
    ("deezer", "Deezer", "never", False, "deezer", None, None),
)

PLATFORM_NAMES: tuple[str, ...] = tuple(row[0] for row in _TABLE)


@functools.cache
def rules() -> tuple[PlatformRule, ...]:
    """Every platform's rule, in the table's order (profiles read once)."""
    out = []
    for name, label, raises, album, profile, target, ceiling in _TABLE:
        if profile is not None:
            target, ceiling = _profile_numbers(profile)
        assert target is not None and ceiling is not None  # the table gives one or the other
        out.append(PlatformRule(name, label, target, ceiling, raises, album, profile))
    return tuple(out)


def rule(name: str) -> PlatformRule:
    """The rule of one platform by its name; ValueError naming the known ones."""
    for r in rules():
        if r.name == name:
            return r
    raise ValueError(f"unknown platform {name!r} (known: {', '.join(PLATFORM_NAMES)})")


def parse_platforms(text: str | None) -> tuple[PlatformRule, ...]:
    """``--platforms``' LIST: comma-separated names, or "all" (also when None).

    Raises:
        ValueError: an unknown name (one line, naming the known ones).
    """
    if text is None or text.strip().lower() in ("", "all"):
        return rules()
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    return tuple(rule(n) for n in dict.fromkeys(names))


def playback(
    r: PlatformRule,
    integrated_lufs: float | None,
    true_peak_dbtp: float | None,
    plr_db: float | None = None,
    album_lufs: float | None = None,
) -> PlatformOutcome:
    """What platform ``r`` does to a master of this loudness and true peak.

    Args:
        integrated_lufs: the track's integrated loudness (None: silence, nothing known).
        true_peak_dbtp: the track's maximum true peak.
        plr_db: the track's PLR; ``true_peak_dbtp - integrated_lufs`` when None.
        album_lufs: the album's integrated loudness; a platform with album gain then
            computes the gain from it (the track keeps its place within the album).
    """
    album = r.album_gain and album_lufs is not None
    normalisation = "album" if album else "track"
    if integrated_lufs is None or true_peak_dbtp is None:
        return PlatformOutcome(r, None, None, None, False, None, None, plr_db, normalisation)
    if plr_db is None:
        plr_db = true_peak_dbtp - integrated_lufs
    reference_lufs = album_lufs if album and album_lufs is not None else integrated_lufs
    wanted_db = r.target_lufs - reference_lufs
    limited = False
    if wanted_db <= 0.0 or r.raises == "limiter":
        gain_db = wanted_db
        limited = r.raises == "limiter" and true_peak_dbtp + gain_db > r.ceiling_dbtp
    elif r.raises == "headroom":
        # Up until the true peak reaches the ceiling, never down for want of headroom.
        gain_db = min(wanted_db, max(0.0, r.ceiling_dbtp - true_peak_dbtp))
    else:
        gain_db = 0.0
    playback_lufs = integrated_lufs + gain_db  # inference: a peak limiter barely moves it
    peak_dbtp = (
        min(true_peak_dbtp + gain_db, r.ceiling_dbtp) if limited else (true_peak_dbtp + gain_db)
    )
    penalty_lu = max(0.0, -gain_db)
    room_db = r.ceiling_dbtp - playback_lufs  # the PLR an unlimited master could have had
    plr_cost_db = min(penalty_lu, max(0.0, room_db - plr_db))
    return PlatformOutcome(
        r, gain_db, playback_lufs, peak_dbtp, limited, penalty_lu, plr_cost_db, plr_db,
        normalisation, integrated_lufs,
    )  # fmt: skip


def outcomes(
    analysis: Any,
    platforms: Sequence[PlatformRule] | None = None,
    album_lufs: float | None = None,
) -> list[PlatformOutcome]:
    """Each platform's outcome for anything with ``integrated_lufs``, ``true_peak_dbtp``
    and ``plr_db`` (an :class:`~earmark.offline.analysis.Analysis`, ``meters.Readings``)."""
    chosen = rules() if platforms is None else platforms
    return [
        playback(
            r,
            getattr(analysis, "integrated_lufs", None),
            getattr(analysis, "true_peak_dbtp", None),
            getattr(analysis, "plr_db", None),
            album_lufs,
        )
        for r in chosen
    ]


def compare_sentence(
    before: PlatformOutcome, after: PlatformOutcome, names: tuple[str, str] = ("BEFORE", "AFTER")
) -> str:
    """One sentence on what AFTER's loudness change buys on this platform and what it costs
    ("on Spotify the AFTER's +3.0 LU gains nothing (both play at -14.0 LUFS) and costs
    2.1 dB of PLR"). ``names``: what BEFORE and AFTER are called (``snapshots diff``:
    "snapshot 3" and "snapshot 7")."""
    where = f"on {before.rule.label}"
    bn, an = names
    the_an = f"the {an}" if an == "AFTER" else an
    b, a = before, after
    if None in (b.playback_lufs, a.playback_lufs, b.integrated_lufs, a.integrated_lufs):
        return f"{where} nothing can be said: a loudness is undefined (silence)"
    assert a.integrated_lufs is not None and b.integrated_lufs is not None
    assert a.playback_lufs is not None and b.playback_lufs is not None
    master_lu = a.integrated_lufs - b.integrated_lufs
    heard_lu = a.playback_lufs - b.playback_lufs
    if abs(master_lu) < 0.05:
        head = f"{where} {bn} and {an} are equally loud and play at {_db(a.playback_lufs)} LUFS"
    elif abs(heard_lu) < 0.05:
        head = (
            f"{where} {the_an}'s {_signed(master_lu)} LU gains nothing "
            f"(both play at {_db(a.playback_lufs)} LUFS)"
        )
    else:
        kept = "all" if abs(heard_lu - master_lu) < 0.05 else f"{_signed(heard_lu)} LU"
        head = (
            f"{where} {the_an}'s {_signed(master_lu)} LU is heard as {kept} "
            f"(it plays at {_db(a.playback_lufs)} LUFS, {bn} at {_db(b.playback_lufs)} LUFS)"
        )
    plr_change = _plr_at_playback(a) - _plr_at_playback(b) if _defined(a, b) else None
    if plr_change is None or abs(plr_change) < 0.05:
        tail = "leaves the PLR as it was" if plr_change is not None else ""
    elif plr_change < 0:
        tail = f"costs {-plr_change:.1f} dB of PLR"
    else:
        tail = f"gives back {plr_change:.1f} dB of PLR"
    limiter = f" (the platform's limiter holds {an}'s peaks)" if a.limited and not b.limited else ""
    return f"{head} and {tail}{limiter}" if tail else head + limiter


# -- internals ----------------------------------------------------------------------------


def _profile_numbers(name: str) -> tuple[float, float]:
    """A delivery profile's target loudness and true-peak ceiling (the one home of both)."""
    from earmark.profiles import load_profile

    prof = load_profile(name)
    if prof.loudness is None:  # a shipped delivery profile always has one
        raise ValueError(f"profile {name!r} has no loudness target")
    return float(prof.loudness.target_lufs), float(prof.true_peak.ceiling_dbtp)


def _defined(*items: PlatformOutcome) -> bool:
    return all(o.plr_db is not None and o.playback_true_peak_dbtp is not None for o in items)


def _plr_at_playback(o: PlatformOutcome) -> float:
    """The PLR the listener hears: the master's, unless the platform's limiter cut peaks."""
    assert o.playback_true_peak_dbtp is not None and o.playback_lufs is not None
    return o.playback_true_peak_dbtp - o.playback_lufs


def _round(value: float | None, decimals: int = 2) -> float | None:
    return None if value is None else round(float(value), decimals) + 0.0  # no -0.0


def _signed(value: float) -> str:
    return f"{value:+.1f}"


def _db(value: float) -> str:
    return f"{value:.1f}"
