"""Snapshots as documents: what a moment of a session measured, and how two moments differ.

A snapshot is one JSON-ready ``dict`` (format ``earmark-snapshot``, version 2)::

    {"format": "earmark-snapshot", "version": 2,
     "time": 1718000000.0, "session": "album master", "label": "v3", "note": "...",
     "source": {"kind": "demo", "a": 1, "b": 2, "audible": "A", "loudness_match": true,
                "match_a_db": -1.2, "match_b_db": 0.0, "monitor": {...}, "position_s": 41.3},
     "audio": {"sample_rate": 48000, "block_size": 64, "latency_in_s": 0.0,
               "latency_out_s": 0.0027, "driver": "...", "callbacks": ..., "xruns": 0, ...},
     "paths": [{"index": 0, "name": "demo mix (dry)", "role": null,
                "readings": {every field of meters.Readings},
                "harshness_db": -17.3,
                "platforms": [{"name": "spotify", "target_lufs": -14.0, "gain_db": -3.1,
                               "playback_lufs": -14.0, ...}, ...],   # version 2
                "history": {"t_s": [...], "short_term_lufs": [...], "psr_db": [...],
                            "momentary_lufs": [...]},        # the last 30 s at 10 Hz
                "chain": {"name": ..., "plugins": [{"title", "bypass", "parameters"...}]},
                "latency_samples": 0, "delay_samples": 0, "muted_blocks": 0}, ...],
     "flags": [flag dicts as DESIGN.md, with "path"], "markers": [...],
     "profile": null or the profile's fields}

A session with a codec monitor (``--codec-monitor``) adds, in any version, a top-level
``"codec_monitor"``: {"codec": "aac128", "label", "mode", "codec_true_peak_dbtp",
"clean_true_peak_dbtp", "codec_overs", "clean_overs", "delay_frames", "fallbacks", ...}
(``engine.codec_host.CodecMonitor.readings``: the decoded and clean true peaks and
overs since the last reset).

Versions: 1 is the layout above without ``platforms``; 2 adds each path's
``platforms`` (what every platform's playback does to it, from its integrated
loudness, true peak and PLR: :func:`earmark.offline.platforms.outcomes`, each entry
as ``analyze --platforms --json`` prints it). Keys are only ever added, so a reader
takes every version up to :data:`VERSION` (an older document simply lacks the newer
keys) and refuses a newer one. ``source.platform_monitor`` (a key added within version 2,
absent or null when the monitor is off) is the live platform monitor
(earmark.live.platform_monitor): the platform A and B played as, and per side its
outcome (the ``platforms`` entry's keys) with the gain applied (``applied_db``) and what
the left-out limiter held back (``held_back_db``).

``None`` stands for an undefined reading (never NaN or infinity), so the JSON is
strict and reading it back gives the same values (:func:`read_json`,
:func:`readings_from_dict`).

:func:`compare` puts two snapshots side by side and says what changed in
sentences ("B is 2.1 LU louder, PSR 3.4 dB lower, +4.0 dB at 4-8 kHz,
Compressor ratio 2 -> 6").
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from earmark.meters.flags import band_text, hz_short, problem_key
from earmark.offline.measures import Measure, measures
from earmark.store.schema import dumps

__all__ = [
    "FORMAT",
    "TEXT_MAX_CHARS",
    "VERSION",
    "Comparison",
    "build",
    "chain_state",
    "compare",
    "encode_clip",
    "from_engine",
    "from_session",
    "harshness_db",
    "platform_comparison",
    "platform_outcomes",
    "read_json",
    "readings_from_dict",
    "readings_to_dict",
    "to_csv",
    "to_json",
]

FORMAT = "earmark-snapshot"
VERSION = 2  # 2: paths[].platforms
HISTORY_WINDOW_S = 30.0
# The longest label or note `snapshot take` accepts, in characters: the control channel
# keeps no more (earmark.live.control), so a longer one is refused rather than cut.
TEXT_MAX_CHARS = 500


# -- building ---------------------------------------------------------------------------


def readings_to_dict(readings: Any) -> dict:
    """Every field of a ``meters.Readings`` as JSON values (tuples become lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(readings):
        value = getattr(readings, f.name)
        out[f.name] = [_clean(v) for v in value] if isinstance(value, tuple) else _clean(value)
    return out


def readings_from_dict(data: dict) -> Any:
    """The ``meters.Readings`` a dict from :func:`readings_to_dict` was made of."""
    from earmark.meters import Readings

    kwargs = {}
    for f in dataclasses.fields(Readings):
        if f.name not in data:
            continue
        value = data[f.name]
        is_tuple = "tuple" in str(f.type)
        kwargs[f.name] = tuple(value) if is_tuple and value is not None else value
    return Readings(**kwargs)


def _clean(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return value
    return value if math.isfinite(value) else None


def history_window(history: Any, seconds: float = HISTORY_WINDOW_S) -> dict:
    """The last ``seconds`` of a ``meters.History`` (10 Hz curves), NaN as None."""
    t = list(history.t_s)
    keep = 0
    if t:
        end = float(t[-1])
        keep = next((i for i, v in enumerate(t) if v > end - seconds + 1e-9), len(t))
    out = {"t_s": [round(float(v), 3) for v in t[keep:]]}
    for name in ("short_term_lufs", "psr_db", "momentary_lufs", "true_peak_3s_dbtp"):
        curve = getattr(history, name)[keep:]
        out[name] = [None if not math.isfinite(v) else round(float(v), 3) for v in curve]
    return out


def harshness_db(
    band_hz: Sequence[float], spectrum_db: Sequence[float | None], sample_rate: int
) -> float | None:
    """Loudness-normalised energy in 2-5 kHz, dB: the detectors' harshness measure.

    The bands' power relative to their K-weighted total (``meters.tonal``), so a
    gain change leaves it alone and a presence boost raises it; music typically
    sits 10-20 dB below 0. None without a spectrum.
    """
    import numpy as np

    from earmark.meters.tonal import PRESENCE_HZ, band_sum_db, k_weighting_gain_db, relative_levels

    levels = np.array([np.nan if v is None else v for v in spectrum_db], dtype=np.float64)
    if not np.isfinite(levels).any():
        return None
    rel = relative_levels(levels, k_weighting_gain_db(band_hz, sample_rate))
    value = float(band_sum_db(rel, band_hz, *PRESENCE_HZ))
    return value if math.isfinite(value) else None


def chain_state(chain: Any) -> dict | None:
    """A chain's full state: name, plugins in order, bypass, every parameter set, latency.

    From the chain's ``describe()`` (``engine.chains.ChainLike``). ``parameters``
    are the preset keys (unit in the name) with the values in force, live edits
    included: saved as a preset they rebuild the same sound. Another processor
    (a test's pedalboard) is named by type.
    """
    if chain is None:
        return None
    if not hasattr(chain, "describe"):
        latency = int(getattr(chain, "latency_samples", 0) or 0)
        return {"name": type(chain).__name__, "kind": "processor", "latency_samples": latency}
    described = chain.describe()
    plugins = [
        {
            "index": p.index,
            "title": p.title,
            "kind": p.kind,
            "target": p.target,
            "label": p.label,
            "bypass": p.bypass,
            "mono": p.mono,
            "latency_samples": p.latency_samples,
            "parameters": {q.key: _clean(q.value) for q in p.parameters},
        }
        for p in described.plugins
    ]
    return {
        "name": described.name,
        "kind": "chain",
        "description": described.description,
        "source": described.source,
        "latency_samples": described.latency_samples,
        "plugins": plugins,
    }


def chain_preset(doc: dict) -> str | None:
    """The chain of a snapshot as a preset's TOML text, with the parameters and bypass in
    force when it was taken (live edits included), to load again (``run --chain``): the A
    path's chain, else B's, else the first path's that has one. None without a chain."""
    from earmark.presets.tomltools import chain_text

    order = sorted(doc.get("paths") or [], key=lambda p: {"A": 0, "B": 1}.get(p.get("role"), 2))
    chains = [p["chain"] for p in order if (p.get("chain") or {}).get("kind") == "chain"]
    if not chains:
        return None
    plugins = []
    for plug in chains[0].get("plugins") or ():
        table: dict[str, Any] = {plug.get("kind") or "builtin": plug.get("target")}
        table.update({"label": plug["label"]} if plug.get("label") else {})
        table.update({"bypass": True} if plug.get("bypass") else {})
        table.update({"mono": plug["mono"]} if plug.get("mono") not in (None, "auto") else {})
        plugins.append(({**table, **(plug.get("parameters") or {})}, ()))
    what = f"The chain of snapshot {doc.get('id', '?')} ({doc.get('label') or 'no label'})"
    header = [f"{what}: its parameters and bypass when taken, live edits included."]
    name, about = chains[0].get("name") or "snapshot chain", chains[0].get("description") or ""
    return chain_text(str(name), str(about), plugins, header)


def flag_dict(flag: Any) -> dict:
    """A flag as DESIGN.md's dict: a dict as it is, a detector ``Flag`` through ``to_dict``."""
    if isinstance(flag, Mapping):
        return dict(flag)
    if hasattr(flag, "to_dict"):
        return dict(flag.to_dict())
    return dict(dataclasses.asdict(flag))


def profile_state(profile: Any) -> Any:
    """A profile as JSON values (a dataclass's fields, a dict, or its name)."""
    if profile is None:
        return None
    if dataclasses.is_dataclass(profile) and not isinstance(profile, type):
        return json.loads(dumps(_jsonable(dataclasses.asdict(profile))))
    if isinstance(profile, dict):
        return json.loads(dumps(_jsonable(profile)))
    return {"name": str(getattr(profile, "name", profile))}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def build(
    state: Any,
    histories: Sequence[Any],
    chains: Sequence[Any],
    *,
    session: str,
    label: str | None = None,
    note: str | None = None,
    flags: Sequence[dict] = (),
    markers: Sequence[dict] = (),
    profile: Any = None,
    kind: str = "live",
    driver: Any = None,
    taken: float | None = None,
    platform_monitor: dict | None = None,
    codec_monitor: dict | None = None,
) -> dict:
    """A snapshot document from an ``EngineState``, each path's history and chain (and the
    platform monitor's mode and outcomes when it is on, and the codec monitor's readings,
    ``CodecMonitor.readings``, when the session has one)."""
    paths = []
    for i, p in enumerate(state.paths):
        readings = readings_to_dict(p.readings)
        role = "A" if i == state.a else ("B" if i == state.b else None)
        paths.append(
            {
                "index": i,
                "name": p.name,
                "role": role,
                "readings": readings,
                "harshness_db": harshness_db(
                    readings["band_hz"], readings["spectrum_long_db"], int(state.sample_rate)
                ),
                "platforms": platform_outcomes(p.readings),
                "history": history_window(histories[i]) if i < len(histories) else None,
                "chain": chain_state(chains[i]) if i < len(chains) else None,
                "latency_samples": int(p.latency_samples),
                "delay_samples": int(p.delay_samples),
                "muted_blocks": int(p.nonfinite_blocks),
            }
        )
    lat_in, lat_out = driver.latency_s if driver is not None else (0.0, 0.0)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "time": time.time() if taken is None else float(taken),
        "session": session,
        "label": label,
        "note": note,
        "source": {
            "kind": kind,
            "a": int(state.a),
            "b": int(state.b),
            "audible": state.audible,
            "loudness_match": bool(state.loudness_match),
            "match_a_db": _clean(state.match_a_db),
            "match_b_db": _clean(state.match_b_db),
            "monitor": dict(state.monitor),
            "position_s": _clean(state.position_s),
            **({"platform_monitor": platform_monitor} if platform_monitor else {}),
        },
        "audio": {
            "sample_rate": int(state.sample_rate),
            "block_size": int(driver.blocksize) if driver is not None else None,
            "latency_in_s": _clean(lat_in),
            "latency_out_s": _clean(lat_out),
            "driver": getattr(driver, "name", None),
            "callbacks": int(state.callbacks),
            "xruns": int(state.xruns),
            "dropped_commands": int(state.dropped_commands),
            "meter_skipped_frames": int(state.meter_skipped_frames),
            "callback_p99_us": _clean(state.callback_p99_us),
            "callback_max_us": _clean(state.callback_max_us),
        },
        "paths": paths,
        "flags": [flag_dict(f) for f in flags],
        "markers": [dict(m) for m in markers],
        "profile": profile_state(profile),
    }
    if codec_monitor is not None:
        doc["codec_monitor"] = dict(codec_monitor)
    return json.loads(dumps(doc))  # plain JSON values only, exactly what is stored


def platform_outcomes(readings: Any) -> list[dict]:
    """A path's ``platforms`` entries: what each platform's playback does to its programme."""
    from earmark.offline.platforms import outcomes

    return [o.to_json_dict() for o in outcomes(readings)]


def recent_history(bank: Any, seconds: float = HISTORY_WINDOW_S) -> Any:
    """The last ``seconds`` of a MeterBank's 10 Hz rows, without copying the whole ring."""
    rows = getattr(bank, "history_rows", None)
    if callable(rows):
        rows = rows()
    if not isinstance(rows, int):
        return bank.history()
    return bank.history(since=max(0, rows - int(round(seconds * 10)) - 1))


def from_session(
    session: Any, label: str | None = None, note: str | None = None, kind: str = "live"
) -> dict:
    """A snapshot of a running ``LiveSession`` (call on the session thread)."""
    from earmark.live.codec_monitor import readings_of

    state = session.state()
    n = len(state.paths)
    paths = session.engine.paths
    return build(
        state,
        [recent_history(paths[i].bank) if paths[i].bank else session.history(i) for i in range(n)],
        session.chains(),
        session=session.name,
        label=label,
        note=note,
        flags=list(session.flags),
        markers=list(session.markers),
        profile=session.profile,
        kind=kind,
        driver=session.driver,
        platform_monitor=_platform_monitor(session),
        codec_monitor=readings_of(session),
    )


def _platform_monitor(session: Any) -> dict | None:
    """The session's platform monitor as a snapshot keeps it (None when off or absent)."""
    monitor = getattr(session, "platform_monitor", None)
    return None if monitor is None else monitor.to_json_dict()


def from_engine(
    engine: Any,
    *,
    session: str = "offline",
    label: str | None = None,
    note: str | None = None,
    flags: Sequence[dict] = (),
    profile: Any = None,
    driver: Any = None,
    kind: str = "offline",
) -> dict:
    """A snapshot of an engine outside a session (offline renders, tests)."""
    state = engine.state()
    return build(
        state,
        [recent_history(p.bank) for p in engine.paths],
        [p.chain for p in engine.paths],
        session=session,
        label=label,
        note=note,
        flags=flags,
        profile=profile,
        kind=kind,
        driver=driver,
    )


def encode_clip(audio: Any, sample_rate: int) -> tuple[str, bytes, int, float]:
    """A short audio clip as 24-bit FLAC, ready for ``StoreWriter.take_snapshot(clip=...)``.

    ``audio`` is (frames, channels) float in [-1, 1]. Returns (format, bytes,
    sample_rate, seconds).
    """
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, int(sample_rate), format="FLAC", subtype="PCM_24")
    return "flac", buf.getvalue(), int(sample_rate), len(audio) / float(sample_rate)


# -- export -----------------------------------------------------------------------------


def to_json(doc: dict) -> str:
    """The snapshot as strict, readable JSON (what ``export --format json`` writes)."""
    return json.dumps(json.loads(dumps(doc)), indent=2, allow_nan=False) + "\n"


def read_json(text: str, source: str = "<json>") -> dict:
    """A snapshot document from exported JSON; ValueError naming ``source`` if it is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f'{source}: not an earmark snapshot (no "format": "{FORMAT}")')
    if int(doc.get("version", 0)) > VERSION:
        raise ValueError(
            f"{source}: snapshot format version {doc['version']} is newer than {VERSION}"
        )
    return doc


_CSV_HEAD = ("snapshot", "time", "session", "label", "path", "name", "role", "harshness_db")


def to_csv(doc: dict) -> str:
    """One row per path: every scalar reading, then the 1/3-octave spectrum by band."""
    paths = doc.get("paths") or []
    scalar: list[str] = []
    bands: list[float] = []
    for p in paths:
        for k, v in p["readings"].items():
            if not isinstance(v, list) and k not in scalar:
                scalar.append(k)
        bands = bands or list(p["readings"].get("band_hz") or [])
    band_cols = [f"spectrum_long_db_{hz_short(hz)}" for hz in bands]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_CSV_HEAD, *scalar, *band_cols])
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(doc.get("time") or 0))
    for p in paths:
        r = p["readings"]
        spectrum = list(r.get("spectrum_long_db") or [])
        writer.writerow(
            [
                doc.get("id", ""),
                when,
                doc.get("session", ""),
                doc.get("label") or "",
                p.get("index"),
                p.get("name"),
                p.get("role") or "",
                _cell(p.get("harshness_db")),
                *(_cell(r.get(k)) for k in scalar),
                *(_cell(v) for v in spectrum),
            ]
        )
    return out.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


# -- comparing --------------------------------------------------------------------------

# The measures a comparison of two snapshots lists, in order (earmark.offline.measures:
# labels, units, rounding and the smallest change worth a sentence).
COMPARED: tuple[Measure, ...] = measures(
    "integrated_lufs",
    "short_term_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "psr_db",
    "psr_median_db",
    "plr_db",
    "crest_db",
    "dr",
    "spectral_tilt_db_per_oct",
    "harshness_db",
    "sharpness_acum",
    "correlation_programme",
    "side_to_mid_db",
)
# Octave bands for tonal changes: third-octave bands whose centres lie in [low, high).
OCTAVES_HZ: tuple[tuple[float, float], ...] = tuple(
    (lo, lo * 2) for lo in (31.25, 62.5, 125, 250, 500, 1000, 2000, 4000, 8000)
)
TONAL_STEP_DB = 1.0  # the smallest loudness-matched band change worth a sentence


@dataclass
class Comparison:
    """Two snapshots side by side: one path of each, measure by measure."""

    a: dict
    b: dict
    path_a: dict
    path_b: dict
    rows: list[tuple[str, str, Any, Any, Any]] = field(default_factory=list)
    tonal: list[tuple[float, float, float]] = field(default_factory=list)  # (lo, hi, db)
    flags_new: list[dict] = field(default_factory=list)
    flags_gone: list[dict] = field(default_factory=list)
    flags_both: list[tuple[dict, dict]] = field(default_factory=list)
    chain_changes: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    # Per platform both paths' outcomes and what B's loudness change buys and costs there:
    # {"name", "a", "b", "summary"} (platform_comparison).
    platforms: list[dict] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The changes as one sentence: "B is 2.1 LU louder, PSR 3.4 dB lower, ..."."""
        return ", ".join(self.sentences) + "." if self.sentences else "No measured change."

    def to_dict(self) -> dict:
        """JSON form (``snapshots diff --json``)."""
        return {
            "a": {"id": self.a.get("id"), "path": self.path_a.get("name")},
            "b": {"id": self.b.get("id"), "path": self.path_b.get("name")},
            "measures": [
                {"key": k, "label": lab, "a": va, "b": vb, "delta": d}
                for k, lab, va, vb, d in self.rows
            ],
            "tonal": [{"low_hz": lo, "high_hz": hi, "change_db": db} for lo, hi, db in self.tonal],
            "flags_new": self.flags_new,
            "flags_gone": self.flags_gone,
            "chain_changes": self.chain_changes,
            "summary": self.summary,
            "platforms": self.platforms,
        }


def pick_path(doc: dict, which: str | int | None = None) -> dict:
    """A path of a snapshot: its A or B path (``"A"``, ``"B"``, any case), by its number
    (from 1, as the views and the controller maps count), by name (or a unique part of
    it); by default its A path. A path named exactly ``A`` or ``B`` wins over the role."""
    from earmark.ui.conventions import path_numbers

    paths = doc.get("paths") or []
    if not paths:
        raise ValueError(f"snapshot {doc.get('id', '?')} has no paths")
    if which is None:
        which = "A"
    text = str(which)
    if text.upper() in ("A", "B") and not any(p.get("name") == text for p in paths):
        return _role_path(doc, paths, text.upper())
    if text.isdigit() and 1 <= int(text) <= len(paths):
        return paths[int(text) - 1]
    exact = [p for p in paths if p.get("name") == text]
    part = [p for p in paths if text.lower() in str(p.get("name", "")).lower()]
    found = exact or part
    if len(found) != 1:
        names = path_numbers([str(p.get("name", "")) for p in paths])
        why = "matches several paths" if found else "matches no path"
        raise ValueError(f"snapshot {doc.get('id', '?')}: path {text!r} {why} ({names})")
    return found[0]


def _role_path(doc: dict, paths: list[dict], role: str) -> dict:
    """The path playing ``role`` ("A" or "B"): the one marked so, else the one the source
    names (A and B on one path mark it A only), else the first."""
    marked = [p for p in paths if p.get("role") == role]
    if marked:
        return marked[0]
    index = (doc.get("source") or {}).get(role.lower(), 0)
    return paths[index] if isinstance(index, int) and 0 <= index < len(paths) else paths[0]


def _value(path: dict, key: str) -> float | None:
    value = path.get(key, (path.get("readings") or {}).get(key))
    return None if value is None else float(value)


def compare(
    a: dict, b: dict, path_a: str | int | None = None, path_b: str | int | None = None
) -> Comparison:
    """Compare a path of snapshot ``a`` with a path of ``b`` (default: each one's A path)."""
    pa = pick_path(a, path_a)
    pb = pick_path(b, path_b if path_b is not None else path_a)
    cmp = Comparison(a, b, pa, pb)
    for m in COMPARED:
        va, vb = _value(pa, m.key), _value(pb, m.key)
        delta = None if va is None or vb is None else vb - va
        cmp.rows.append((m.key, m.title, va, vb, delta))
    cmp.tonal = tonal_changes(pa, pb)
    _compare_flags(cmp)
    cmp.chain_changes = chain_changes(pa.get("chain"), pb.get("chain"))
    cmp.sentences = _sentences(cmp)
    if a.get("id") is not None and a.get("id") != b.get("id"):
        names = (f"snapshot {a.get('id')}", f"snapshot {b.get('id')}")
    else:  # two paths of one snapshot (or documents not from the store)
        names = (str(pa.get("name") or "A"), str(pb.get("name") or "B"))
    cmp.platforms = platform_comparison(pa, pb, names)
    return cmp


def platform_comparison(pa: dict, pb: dict, names: tuple[str, str]) -> list[dict]:
    """Two snapshot paths' platform outcomes side by side (the ones both have, in A's
    order): ``{"name", "a", "b", "summary"}``, the summary
    :func:`earmark.offline.platforms.compare_sentence` with ``names`` for A and B.
    Empty for a version-1 snapshot (no ``platforms``)."""
    from earmark.offline.platforms import PlatformOutcome, compare_sentence

    def of(path: dict) -> dict[str, tuple[dict, Any]]:
        r = path.get("readings") or {}
        out: dict[str, tuple[dict, Any]] = {}
        for entry in path.get("platforms") or ():
            try:
                o = PlatformOutcome.from_json_dict(entry, r.get("integrated_lufs"), r.get("plr_db"))
            except (ValueError, TypeError):  # a platform this earmark does not know
                continue
            out[o.rule.name] = (entry, o)
        return out

    oa, ob = of(pa), of(pb)
    return [
        {
            "name": name,
            "a": ea,
            "b": ob[name][0],
            "summary": compare_sentence(o, ob[name][1], names),
        }
        for name, (ea, o) in oa.items()
        if name in ob
    ]


def _octave_levels(path: dict) -> list[float | None]:
    r = path.get("readings") or {}
    hz, db = r.get("band_hz") or [], r.get("spectrum_long_db") or []
    levels: list[float | None] = []
    for lo, hi in OCTAVES_HZ:
        power = sum(
            10.0 ** (d / 10.0)
            for h, d in zip(hz, db, strict=False)
            if d is not None and lo <= h < hi
        )
        levels.append(10.0 * math.log10(power) if power > 0 else None)
    return levels


def tonal_changes(pa: dict, pb: dict) -> list[tuple[float, float, float]]:
    """Octave bands whose level moved by at least 1 dB relative to the rest, A to B:
    [(low_hz, high_hz, change dB)], low to high.

    "Relative to the rest" is relative to the median octave change, so a gain
    change (every band alike) is no tonal change and an EQ move shows as itself:
    a +6 dB high shelf is "+5 dB at 8-16 kHz", not a loss in the lows.
    """
    la, lb = _octave_levels(pa), _octave_levels(pb)
    moves = [None if x is None or y is None else y - x for x, y in zip(la, lb, strict=True)]
    known = sorted(m for m in moves if m is not None)
    if not known:
        return []
    mid = len(known) // 2
    offset = known[mid] if len(known) % 2 else 0.5 * (known[mid - 1] + known[mid])
    out = []
    for (lo, hi), m in zip(OCTAVES_HZ, moves, strict=True):
        if m is not None and abs(m - offset) >= TONAL_STEP_DB:
            out.append((lo, hi, m - offset))
    return out


def _compare_flags(cmp: Comparison) -> None:
    def of(doc: dict, path: dict) -> list[dict]:
        flags = doc.get("flags") or []
        return [f for f in flags if f.get("path") in (None, path.get("index"), path.get("name"))]

    fa, fb = of(cmp.a, cmp.path_a), of(cmp.b, cmp.path_b)
    ids_a = {problem_key(f) for f in fa}
    ids_b = {problem_key(f) for f in fb}
    cmp.flags_new = [f for f in fb if problem_key(f) not in ids_a]
    cmp.flags_gone = [f for f in fa if problem_key(f) not in ids_b]
    by_id = {problem_key(f): f for f in fa}
    cmp.flags_both = [(by_id[problem_key(f)], f) for f in fb if problem_key(f) in ids_a]


def _num_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return f"{value:g}"
    return str(value)


def chain_changes(ca: dict | None, cb: dict | None) -> list[str]:
    """What differs between two chain states, one phrase each ("Compressor ratio 2 -> 6")."""
    if ca is None and cb is None:
        return []
    if ca is None or cb is None:
        name = _num_text((cb or ca or {}).get("name"))
        return [f"chain {name} {'added' if ca is None else 'removed'}"]
    out: list[str] = []
    if ca.get("name") != cb.get("name"):
        out.append(f"chain {ca.get('name')} -> {cb.get('name')}")
    pa, pb = ca.get("plugins") or [], cb.get("plugins") or []
    # Pair plugins by title in order (so an inserted plugin does not shift every pairing).
    unmatched_b = list(range(len(pb)))
    pairs: list[tuple[dict | None, dict | None]] = []
    for x in pa:
        j = next((j for j in unmatched_b if pb[j].get("title") == x.get("title")), None)
        if j is None:
            pairs.append((x, None))
        else:
            unmatched_b.remove(j)
            pairs.append((x, pb[j]))
    pairs += [(None, pb[j]) for j in unmatched_b]
    for x, y in pairs:
        if y is None:
            out.append(f"{x['title']} removed")
            continue
        if x is None:
            out.append(f"{y['title']} added")
            continue
        title = y["title"]
        if bool(x.get("bypass")) != bool(y.get("bypass")):
            out.append(f"{title} {'bypassed' if y.get('bypass') else 'back in'}")
        px, py = x.get("parameters") or {}, y.get("parameters") or {}
        for key in list(px) + [k for k in py if k not in px]:
            if px.get(key) != py.get(key):
                out.append(f"{title} {key} {_num_text(px.get(key))} -> {_num_text(py.get(key))}")
    return out


def _sentences(cmp: Comparison) -> list[str]:
    deltas = {k: d for k, _, _, _, d in cmp.rows}
    out: list[str] = []
    loud = deltas.get("integrated_lufs")
    if loud is None:
        loud = deltas.get("short_term_lufs")
    if loud is not None:
        if abs(loud) < 0.05:
            out.append("B is as loud as A")
        else:
            out.append(f"B is {abs(loud):.1f} LU {'louder' if loud > 0 else 'quieter'}")
    psr_key = "psr_median_db" if deltas.get("psr_median_db") is not None else "psr_db"
    phrases = (
        (psr_key, "PSR", "dB", "higher", "lower"),
        ("plr_db", "PLR", "dB", "higher", "lower"),
        ("loudness_range_lu", "LRA", "LU", "wider", "narrower"),
        ("true_peak_dbtp", "true peak", "dB", "higher", "lower"),
        ("crest_db", "crest factor", "dB", "higher", "lower"),
        ("harshness_db", "2-5 kHz energy", "dB", "up", "down"),
        ("sharpness_acum", "sharpness", "acum", "up", "down"),
    )
    thresholds = {m.key: m.step for m in COMPARED}
    for key, name, unit, up, down in phrases:
        d = deltas.get(key)
        if d is not None and abs(d) >= thresholds[key]:
            out.append(f"{name} {abs(d):.1f} {unit} {up if d > 0 else down}")
    for lo, hi, db in cmp.tonal:
        out.append(f"{db:+.1f} dB at {band_text(lo, hi)}")
    for f in cmp.flags_new:
        out.append(f"new flag {f.get('code')}")
    for f in cmp.flags_gone:
        out.append(f"{f.get('code')} cleared")
    out += cmp.chain_changes
    return out
