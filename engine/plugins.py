"""Finding, validating and caching third-party plugins (VST3; AU on macOS).

One concept: a plugin is known only after a child process has seen it work; the
scan, the probe the child runs and the cache of their results belong together, and
the module stays out of engine/chains/ so a probe child does not load numba.

Third-party plugins crash, hang and misbehave, and a plugin that takes the
process down with it must not take a mastering session along. So earmark never
trusts a bundle it has not first seen work in a child process (DESIGN.md,
"Data flow"): :func:`scan` runs ``python -m earmark.engine.plugins --probe
BUNDLE`` for each bundle, which loads the plugin, processes one second of noise
at 48 kHz (stereo, then mono when stereo is refused), checks that the output
is finite, times it and reads the plugin's name, channel configuration,
reported latency and parameters (with units and ranges) and prints them as
JSON. A crash (signal), a non-zero exit, a timeout (the child is killed) or
non-finite output marks that plugin ``bad`` with the reason, and the scan
carries on with the next bundle. Probes run in parallel.

Results are cached as JSON (:func:`load_records`), keyed by bundle path and the
newest modification time inside the bundle, so an unchanged bundle is not
probed again unless ``force`` is given. :func:`resolve` turns a scanned name
("ZaMaximX2") or a path into a bundle path for the chain loader.

Search path (:func:`default_search_path`): ``EARMARK_PLUGIN_PATH`` (a
``:``-separated list) first, then the platform's standard folders, then the
project's own plugin folder (:data:`PROJECT_PLUGIN_DIR`, where
``scripts/install-plugins`` unpacks Debian 13's VST3 builds on Debian 12) when
earmark runs from its source tree, so no environment variable is needed.

A ``bad`` record is still *loadable* when the fault is in what the plugin
outputs (non-finite samples at default settings: the chain replaces those by
silence and counts them), and not loadable when the plugin failed to load,
crashed, hung or exited: loading that one in-process could take the session
down, so :func:`resolve` refuses it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from earmark.errors import EarmarkError, one_line

from .childproc import signal_name

__all__ = [
    "PLUGIN_PATH_ENV",
    "PROBE_HANG_ENV",
    "PROJECT_PLUGIN_DIR",
    "ParameterInfo",
    "PluginNotFoundError",
    "PluginRecord",
    "default_search_path",
    "find_bundles",
    "load_records",
    "probe",
    "resolve",
    "scan",
    "unscanned_bundles",
]

PLUGIN_PATH_ENV = "EARMARK_PLUGIN_PATH"
# Where scripts/install-plugins unpacks the VST3 bundles on Debian 12 (it has no
# VST3 packages of its own): inside the project, beside this source tree. Part of
# the search path whenever it exists, so a chain naming those plugins works
# after `make demo` without EARMARK_PLUGIN_PATH (`scripts/install-plugins
# --print-path` prints the same folder).
PROJECT_PLUGIN_DIR = Path(__file__).resolve().parents[1] / ".cache" / "plugins" / "usr/lib/vst3"
# Test hook: a probe whose bundle file name equals this value sleeps instead of
# loading, so the timeout path can be exercised (a real VST3 cannot be made to
# hang on demand). Never set outside tests.
PROBE_HANG_ENV = "EARMARK_PROBE_HANG"

PROBE_SAMPLE_RATE_HZ = 48000
PROBE_SECONDS = 1.0
PROBE_NOISE_RMS = 0.1  # -20 dBFS white noise: loud enough to drive dynamics, far from clipping
DEFAULT_TIMEOUT_S = 20.0
CACHE_VERSION = 1

STATUS_OK = "ok"
STATUS_BAD = "bad"

# Bundle suffix -> format name. AU components exist on macOS only.
BUNDLE_FORMATS = {".vst3": "vst3", ".component": "au"}

# DPF and others print a space as the unit of unitless parameters.
_NO_UNITS = {"", " ", "-"}


class PluginNotFoundError(EarmarkError, LookupError):
    """No usable plugin for a name or path; ``str()`` says why in one line."""


@dataclass(frozen=True, slots=True)
class ParameterInfo:
    """One parameter of a plugin as pedalboard exposes it.

    ``name`` is pedalboard's Python name (the plugin's name plus its unit label,
    normalised: "Threshold" in dB is ``threshold_db``; a ``%`` label is dropped
    by pedalboard, so "Dry Level" in % is ``dry_level``). ``minimum`` and
    ``maximum`` are in the plugin's ``units``. ``writable`` is False for the
    values a plugin reports rather than accepts (gain reduction, output level
    meters, DPF's buffer size and sample rate).
    """

    name: str
    display_name: str
    units: str | None
    kind: str  # "float" | "bool" | "choice"
    minimum: float | None = None
    maximum: float | None = None
    default: float | bool | str | None = None
    choices: tuple[str, ...] = ()
    writable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "units": self.units,
            "kind": self.kind,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "default": self.default,
            "choices": list(self.choices),
            "writable": self.writable,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParameterInfo:
        return cls(
            name=str(data["name"]),
            display_name=str(data.get("display_name") or data["name"]),
            units=data.get("units"),
            kind=str(data.get("kind", "float")),
            minimum=data.get("minimum"),
            maximum=data.get("maximum"),
            default=data.get("default"),
            choices=tuple(data.get("choices") or ()),
            writable=bool(data.get("writable", True)),
        )


@dataclass(frozen=True, slots=True)
class PluginRecord:
    """What a probe found out about one plugin in one bundle."""

    path: str  # absolute bundle path
    format: str  # "vst3" | "au"
    mtime_ns: int  # newest modification time inside the bundle when probed
    status: str  # "ok" | "bad"
    reason: str | None = None  # why it is bad, one line
    loadable: bool = True  # safe to load in-process (False after a crash, hang, exit, load error)
    name: str | None = None  # the plugin's own name; None when it never loaded
    plugin_name: str | None = None  # which plugin of a multi-plugin bundle
    manufacturer: str | None = None
    version: str | None = None
    identifier: str | None = None
    category: str | None = None
    input_channels: int | None = None  # 2, or 1 for a mono-only plugin
    latency_samples: int | None = None  # as reported at 48 kHz
    process_ms: float | None = None  # wall time to process 1 s of audio at 48 kHz
    parameters: tuple[ParameterInfo, ...] = field(default=())
    probed_at: float = 0.0  # Unix time

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def mono_only(self) -> bool:
        return self.input_channels == 1

    @property
    def display_name(self) -> str:
        return self.name or self.plugin_name or _bundle_stem(Path(self.path))

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "mtime_ns": self.mtime_ns,
            "status": self.status,
            "reason": self.reason,
            "loadable": self.loadable,
            "name": self.name,
            "plugin_name": self.plugin_name,
            "manufacturer": self.manufacturer,
            "version": self.version,
            "identifier": self.identifier,
            "category": self.category,
            "input_channels": self.input_channels,
            "latency_samples": self.latency_samples,
            "process_ms": self.process_ms,
            "parameters": [p.to_json() for p in self.parameters],
            "probed_at": self.probed_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PluginRecord:
        return cls(
            path=str(data["path"]),
            format=str(data.get("format", "vst3")),
            mtime_ns=int(data.get("mtime_ns", 0)),
            status=str(data.get("status", STATUS_BAD)),
            reason=data.get("reason"),
            loadable=bool(data.get("loadable", True)),
            name=data.get("name"),
            plugin_name=data.get("plugin_name"),
            manufacturer=data.get("manufacturer"),
            version=data.get("version"),
            identifier=data.get("identifier"),
            category=data.get("category"),
            input_channels=data.get("input_channels"),
            latency_samples=data.get("latency_samples"),
            process_ms=data.get("process_ms"),
            parameters=tuple(ParameterInfo.from_json(p) for p in data.get("parameters") or ()),
            probed_at=float(data.get("probed_at", 0.0)),
        )


# -- search path and bundles ----------------------------------------------------------


def default_search_path() -> list[Path]:
    """``EARMARK_PLUGIN_PATH`` entries first, then the platform's standard plugin folders,
    then :data:`PROJECT_PLUGIN_DIR` if it exists.

    The standard folders are included even when they do not exist (a scan skips
    them), so the list reads the same on every machine of a platform; the
    project's folder only exists in a source tree whose bootstrap filled it.
    """
    paths = [Path(p).expanduser() for p in os.environ.get(PLUGIN_PATH_ENV, "").split(":") if p]
    user = Path.home()
    if sys.platform == "darwin":
        paths += [
            user / "Library/Audio/Plug-Ins/VST3",
            Path("/Library/Audio/Plug-Ins/VST3"),
            user / "Library/Audio/Plug-Ins/Components",
            Path("/Library/Audio/Plug-Ins/Components"),
        ]
    elif sys.platform == "win32":
        common = os.environ.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files")
        paths.append(Path(common) / "VST3")
    else:
        paths += [user / ".vst3", Path("/usr/lib/vst3"), Path("/usr/local/lib/vst3")]
    if PROJECT_PLUGIN_DIR.is_dir():
        paths.append(PROJECT_PLUGIN_DIR)
    return _unique(paths)


def find_bundles(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Plugin bundles in ``paths``: each path is a bundle or a folder searched recursively.

    Bundles are not searched inside (a ``.vst3`` holds its binaries, not more
    plugins). Missing paths are skipped. The result is absolute, deduplicated
    and in search order (sorted within each folder).
    """
    found: list[Path] = []
    for entry in paths:
        path = _absolute(Path(entry).expanduser())
        if _is_bundle(path):
            if path.exists():
                found.append(path)
            continue
        if not path.is_dir():
            continue
        for root, dirs, files in os.walk(path, followlinks=True):
            here = Path(root)
            bundles = sorted(d for d in dirs if _is_bundle(here / d))
            # A VST3 may be a single file on some platforms (legacy Windows layout).
            bundles += sorted(f for f in files if _is_bundle(here / f))
            found += [here / b for b in sorted(bundles)]
            dirs[:] = sorted(d for d in dirs if not _is_bundle(here / d))
    return _unique(found)


def _is_bundle(path: Path) -> bool:
    return path.suffix.lower() in BUNDLE_FORMATS


def _bundle_stem(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def _unique(paths: Iterable[Path]) -> list[Path]:
    return list(dict.fromkeys(paths))


def bundle_mtime_ns(bundle: Path) -> int:
    """The newest modification time of the bundle or anything inside it.

    A bundle folder's own time does not change when the binary inside is
    replaced, so the whole (small) tree is looked at.
    """
    newest = bundle.stat().st_mtime_ns
    if bundle.is_dir():
        for root, dirs, files in os.walk(bundle):
            for item in (*dirs, *files):
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, item)).st_mtime_ns)
    return newest


# -- the cache ------------------------------------------------------------------------


def load_records(cache_file: str | os.PathLike[str]) -> list[PluginRecord]:
    """The records of the last scan; empty when there is no cache or it is unreadable.

    The cache is disposable: a file from another version, or a damaged one,
    reads as empty and the next scan rewrites it.
    """
    try:
        data = json.loads(Path(cache_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
        return []
    records = []
    for item in data.get("records") or ():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            records.append(PluginRecord.from_json(item))
    return records


def _save_records(cache_file: Path, records: Sequence[PluginRecord]) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    payload = {"version": CACHE_VERSION, "records": [r.to_json() for r in records]}
    text = json.dumps(payload, indent=1, allow_nan=False)
    # Written beside the target and renamed: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(prefix=".plugins-", suffix=".json", dir=cache_file.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, cache_file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- scanning -------------------------------------------------------------------------


def scan(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    cache_file: str | os.PathLike[str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    force: bool = False,
    jobs: int | None = None,
    progress: Callable[[PluginRecord], None] | None = None,
) -> list[PluginRecord]:
    """Validate every bundle under ``paths`` in child processes; return their records.

    Args:
        paths: Folders and/or bundles; default :func:`default_search_path`.
        cache_file: JSON cache to read and update; without it every bundle is probed.
        timeout_s: How long one probe may take before its process is killed.
        force: Probe again even bundles whose cached record is current.
        jobs: Probes running at once (default: the CPU count, at most 4).
        progress: Called with each record as it is settled (cached or probed).

    Returns:
        One record per plugin found, in bundle order. Records of bundles
        outside ``paths`` stay in the cache; records of deleted bundles are dropped.
    """
    bundles = find_bundles(default_search_path() if paths is None else paths)
    cache_path = Path(cache_file) if cache_file is not None else None
    cached = load_records(cache_path) if cache_path is not None else []
    by_path: dict[str, list[PluginRecord]] = {}
    for record in cached:
        by_path.setdefault(record.path, []).append(record)

    results: dict[Path, list[PluginRecord]] = {}
    to_probe: list[tuple[Path, int]] = []
    for bundle in bundles:
        try:
            mtime = bundle_mtime_ns(bundle)
        except OSError as exc:
            results[bundle] = [_bad(bundle, 0, f"unreadable: {exc.strerror or exc}", False)]
            continue
        previous = by_path.get(str(bundle), [])
        if not force and previous and all(r.mtime_ns == mtime for r in previous):
            results[bundle] = previous
            if progress is not None:
                for record in previous:
                    progress(record)
        else:
            to_probe.append((bundle, mtime))

    workers = max(1, min(jobs or min(4, os.cpu_count() or 1), len(to_probe) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            bundle: (mtime, pool.submit(_probe_bundle, bundle, mtime, timeout_s))
            for bundle, mtime in to_probe
        }
        for bundle, (mtime, future) in futures.items():
            try:
                results[bundle] = future.result()
            except OSError as exc:  # the child could not even be started
                results[bundle] = [_bad(bundle, mtime, f"probe failed to start: {exc}", False)]
            if progress is not None:
                for record in results[bundle]:
                    progress(record)

    scanned = [record for bundle in bundles for record in results[bundle]]
    if cache_path is not None:
        keep = [
            r
            for r in cached
            if Path(r.path) not in results and (Path(r.path).exists() or Path(r.path).is_symlink())
        ]
        _save_records(cache_path, keep + scanned)
    return scanned


def probe(
    bundle: str | os.PathLike[str],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    plugin_name: str | None = None,
) -> list[PluginRecord]:
    """Probe one bundle in a child process (every plugin in it, or just ``plugin_name``)."""
    path = _absolute(Path(bundle).expanduser())
    try:
        mtime = bundle_mtime_ns(path)
    except OSError as exc:
        return [_bad(path, 0, f"unreadable: {exc.strerror or exc}", False)]
    if plugin_name is not None:
        return [_probe_one(path, mtime, timeout_s, plugin_name)]
    return _probe_bundle(path, mtime, timeout_s)


def _probe_bundle(bundle: Path, mtime: int, timeout_s: float) -> list[PluginRecord]:
    """One child lists the bundle's plugins and probes the only one; shells get one child each."""
    outcome = _run_child(bundle, None, timeout_s)
    if isinstance(outcome, str):
        return [_bad(bundle, mtime, outcome, False)]
    names = [str(n) for n in outcome.get("names") or ()]
    if "records" in outcome:
        return [_record_from_child(bundle, mtime, item) for item in outcome["records"]]
    if not names:
        return [_bad(bundle, mtime, "the bundle contains no plugin", False)]
    # A multi-plugin bundle: each plugin gets its own child, so one bad plugin
    # does not condemn its siblings; they run one after another in this worker.
    return [_probe_one(bundle, mtime, timeout_s, name) for name in names]


def _probe_one(bundle: Path, mtime: int, timeout_s: float, name: str) -> PluginRecord:
    outcome = _run_child(bundle, name, timeout_s)
    if isinstance(outcome, str):
        return replace(_bad(bundle, mtime, outcome, False), plugin_name=name)
    records = outcome.get("records") or ()
    if not records:
        return replace(_bad(bundle, mtime, "the probe returned no result", False), plugin_name=name)
    return _record_from_child(bundle, mtime, records[0])


def _run_child(bundle: Path, plugin_name: str | None, timeout_s: float) -> dict[str, Any] | str:
    """Run the probe in a child process: its JSON result, or the reason it failed."""
    command = [sys.executable, "-m", "earmark.engine.plugins", "--probe", str(bundle)]
    if plugin_name is not None:
        command += ["--plugin", plugin_name]
    with tempfile.TemporaryFile() as err:
        # Its own session, so a kill reaches anything the plugin started too.
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
        try:
            out, _ = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            return f"timed out after {timeout_s:g} s (killed)"
        err.seek(0)
        last = _last_line(err.read())
    code = child.returncode
    if code < 0:
        name = signal_name(-code)
        return f"crashed ({name})" + (f": {last}" if last else "")
    if code != 0:
        return f"probe exited with code {code}" + (f": {last}" if last else "")
    try:
        result = json.loads(out.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "the probe printed no result" + (f": {last}" if last else "")
    if not isinstance(result, dict):
        return "the probe printed no result"
    return result


def _last_line(raw: bytes, limit: int = 200) -> str:
    """The last non-empty stderr line, trimmed: enough to say what went wrong."""
    for line in reversed(raw.decode("utf-8", "replace").splitlines()):
        text = " ".join(line.split())
        # Strip terminal colour codes that some plugin frameworks print.
        while "\x1b[" in text:
            start = text.index("\x1b[")
            end = text.find("m", start)
            text = text[:start] + (text[end + 1 :] if end >= 0 else "")
        if text:
            return text if len(text) <= limit else text[: limit - 3] + "..."
    return ""


def _bad(bundle: Path, mtime: int, reason: str, loadable: bool) -> PluginRecord:
    return PluginRecord(
        path=str(bundle),
        format=BUNDLE_FORMATS.get(bundle.suffix.lower(), "vst3"),
        mtime_ns=mtime,
        status=STATUS_BAD,
        reason=reason,
        loadable=loadable,
        probed_at=time.time(),
    )


def _record_from_child(bundle: Path, mtime: int, item: dict[str, Any]) -> PluginRecord:
    data = dict(item)
    data["path"] = str(bundle)
    data["mtime_ns"] = mtime
    data["format"] = BUNDLE_FORMATS.get(bundle.suffix.lower(), "vst3")
    data.setdefault("probed_at", time.time())
    return PluginRecord.from_json(data)


# -- resolving names ------------------------------------------------------------------


def resolve(
    name_or_path: str | os.PathLike[str],
    cache_file: str | os.PathLike[str] | None = None,
    search_path: Sequence[str | os.PathLike[str]] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """The bundle for a scanned plugin name ("ZaMaximX2") or a bundle path, validated.

    A name is matched, ignoring case, against the plugin and bundle names in
    ``cache_file``, then against the bundles in ``search_path`` (default
    :func:`default_search_path`). Whatever is found has been validated in a
    child process: a bundle without a current record in ``cache_file`` (or
    any bundle, without a cache) is probed now, and the record is cached.

    Raises:
        PluginNotFoundError: nothing matches, or the plugin crashed, hung or
            failed to load in its probe (non-finite output alone does not stop
            it: chains replace that by silence and count it).
    """
    text = os.fspath(name_or_path)
    records = load_records(cache_file) if cache_file is not None else []
    if _looks_like_path(text):
        bundle = _absolute(Path(text).expanduser())
        if not bundle.exists():
            raise PluginNotFoundError(f"no plugin bundle at {bundle}")
        wanted = None
    else:
        wanted = text.casefold()
        if wanted.endswith(tuple(BUNDLE_FORMATS)):
            wanted = wanted.rsplit(".", 1)[0]
        named = [r for r in records if _matches(r, wanted) and Path(r.path).exists()]
        if named:
            bundle = Path(named[0].path)
        else:
            roots = default_search_path() if search_path is None else search_path
            found = [b for b in find_bundles(roots) if _bundle_stem(b).casefold() == wanted]
            if not found:
                raise PluginNotFoundError(_not_found(text, roots, records))
            bundle = found[0]
    current = _current_records(bundle, records, cache_file, timeout_s)
    if wanted is not None and len(current) > 1:
        current = [r for r in current if _matches(r, wanted)] or current
    usable = [r for r in current if r.loadable]
    if not usable:
        bad = current[0] if current else _bad(bundle, 0, "the probe returned no result", False)
        raise PluginNotFoundError(f"{bad.display_name} ({bundle}) failed its probe: {bad.reason}")
    return bundle


def _not_found(name: str, roots: Sequence[str | os.PathLike[str]], records) -> str:
    """One line: what was searched, what is known, and exactly what to do about it."""
    where = ", ".join(str(r) for r in roots) or "no folder"
    known = sorted({r.display_name for r in records})
    scanned = f"; scanned: {', '.join(known)}" if known else ""
    return (
        f"no plugin named {name!r} was found in {where}{scanned}: install its .vst3 bundle "
        f"in one of those folders or add its folder to {PLUGIN_PATH_ENV}, then run "
        "'earmark plugins scan' (or give the bundle's path)"
    )


def unscanned_bundles(
    records: Sequence[PluginRecord], paths: Iterable[str | os.PathLike[str]] | None = None
) -> list[Path]:
    """Bundles under ``paths`` (default :func:`default_search_path`) without a current record.

    What ``earmark plugins list`` shows as not scanned yet: installed, found,
    but not validated (a chain naming one probes it when it loads).
    """
    current: dict[str, int] = {r.path: r.mtime_ns for r in records}
    out = []
    for bundle in find_bundles(default_search_path() if paths is None else paths):
        try:
            mtime = bundle_mtime_ns(bundle)
        except OSError:
            mtime = -1
        if current.get(str(bundle)) != mtime:
            out.append(bundle)
    return out


def _current_records(
    bundle: Path,
    records: Sequence[PluginRecord],
    cache_file: str | os.PathLike[str] | None,
    timeout_s: float,
) -> list[PluginRecord]:
    """The bundle's records: from the cache when current, else from a probe run now."""
    mine = [r for r in records if r.path == str(bundle)]
    try:
        mtime = bundle_mtime_ns(bundle)
    except OSError:
        mtime = -1
    if mine and all(r.mtime_ns == mtime for r in mine):
        return mine
    if cache_file is not None:
        return scan([bundle], cache_file, timeout_s)
    return probe(bundle, timeout_s)


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith("~")


def _matches(record: PluginRecord, wanted: str) -> bool:
    names = {_bundle_stem(Path(record.path)).casefold()}
    if record.name:
        names.add(record.name.casefold())
    if record.plugin_name:
        names.add(record.plugin_name.casefold())
    return wanted in names


# -- the probe (runs in the child) -----------------------------------------------------


def _probe_main(bundle: str, plugin_name: str | None) -> int:
    """Entry point of the child: JSON on the real stdout, everything else on stderr."""
    # Plugins print to fd 1 as they please; only our JSON may reach the parent's pipe.
    result_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    hang = os.environ.get(PROBE_HANG_ENV, "")
    if hang and Path(bundle).name == hang:
        time.sleep(3600.0)

    result = _probe_in_process(Path(bundle), plugin_name)
    with os.fdopen(result_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(result, allow_nan=False))
    return 0


def _probe_in_process(bundle: Path, plugin_name: str | None) -> dict[str, Any]:
    import pedalboard

    fmt = BUNDLE_FORMATS.get(bundle.suffix.lower(), "vst3")
    cls = getattr(pedalboard, "AudioUnitPlugin" if fmt == "au" else "VST3Plugin", None)
    if cls is None:
        return {"records": [_bad_json(f"{fmt.upper()} plugins are not supported here")]}
    if plugin_name is None:
        try:
            names = list(cls.get_plugin_names_for_file(str(bundle)))
        except Exception as exc:
            return {"records": [_bad_json(f"failed to load: {one_line(exc)}")]}
        if len(names) != 1:
            return {"names": names}
        plugin_name = names[0]
    return {"records": [_probe_plugin(cls, bundle, plugin_name)]}


def _probe_plugin(cls: Any, bundle: Path, plugin_name: str) -> dict[str, Any]:
    import numpy as np

    try:
        plugin = cls(str(bundle), plugin_name=plugin_name)
    except Exception as exc:
        return _bad_json(f"failed to load: {one_line(exc)}", plugin_name)
    info: dict[str, Any] = {
        "plugin_name": plugin_name,
        "name": str(plugin.name),
        "manufacturer": _attr(plugin, "manufacturer_name"),
        "version": _attr(plugin, "version"),
        "identifier": _attr(plugin, "identifier"),
        "category": _attr(plugin, "category"),
        "status": STATUS_OK,
        "reason": None,
        "loadable": True,
        "probed_at": time.time(),
    }
    if getattr(plugin, "is_instrument", False) and not getattr(plugin, "is_effect", True):
        info.update(status=STATUS_BAD, reason="an instrument, not an effect")
        return info

    rate = PROBE_SAMPLE_RATE_HZ
    frames = round(PROBE_SECONDS * rate)
    noise = np.random.default_rng(0).standard_normal((2, frames)) * PROBE_NOISE_RMS
    noise = noise.astype(np.float32)
    output = None
    errors = []
    for channels in (2, 1):
        try:
            start = time.perf_counter()
            output = plugin.process(noise[:channels], float(rate))
            info["process_ms"] = round(1000.0 * (time.perf_counter() - start), 3)
            info["input_channels"] = channels
            break
        except Exception as exc:
            errors.append(f"{channels} ch: {one_line(exc)}")
    if output is None:
        info.update(status=STATUS_BAD, reason="cannot process audio: " + "; ".join(errors))
        return info
    finite = np.isfinite(output)
    if not finite.all():
        bad = int(output.size - np.count_nonzero(finite))
        info.update(
            status=STATUS_BAD,
            reason=f"non-finite output (NaN/Inf) at default settings: {bad} of {output.size} "
            "samples",
        )
    with contextlib.suppress(Exception):
        info["latency_samples"] = int(plugin.reported_latency_samples)
    try:
        info["parameters"] = [p.to_json() for p in _parameter_infos(plugin)]
    except Exception as exc:
        info["parameters"] = []
        if info["status"] == STATUS_OK:
            info.update(status=STATUS_BAD, reason=f"cannot read parameters: {one_line(exc)}")
    return info


def parameter_infos(plugin: Any) -> list[ParameterInfo]:
    """The parameters of a loaded external plugin (also used by the chain loader)."""
    return _parameter_infos(plugin)


def _parameter_infos(plugin: Any) -> list[ParameterInfo]:
    infos = []
    for name, parameter in plugin.parameters.items():
        cpp = plugin._get_parameter(parameter.name)
        writable = bool(getattr(cpp, "is_automatable", True)) if cpp is not None else True
        units = parameter.units
        units = None if units is None or str(units).strip() in _NO_UNITS else str(units).strip()
        if parameter.type is bool:
            kind, low, high = "bool", None, None
            default: float | bool | str | None = bool(getattr(plugin, name))
            choices: tuple[str, ...] = ()
        elif parameter.type is float:
            kind = "float"
            low = _finite_or_none(parameter.min_value)
            high = _finite_or_none(parameter.max_value)
            default = _finite_or_none(float(getattr(plugin, name)))
            choices = ()
        else:
            kind, low, high = "choice", None, None
            default = str(getattr(plugin, name))
            choices = tuple(str(v) for v in parameter.valid_values)
        infos.append(
            ParameterInfo(
                name=name,
                display_name=str(parameter.name),
                units=units,
                kind=kind,
                minimum=low,
                maximum=high,
                default=default,
                choices=choices,
                writable=writable,
            )
        )
    return infos


def _finite_or_none(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _attr(plugin: Any, name: str) -> str | None:
    try:
        value = getattr(plugin, name)
    except Exception:
        return None
    return None if value is None else str(value)


def _bad_json(reason: str, plugin_name: str | None = None) -> dict[str, Any]:
    return {
        "plugin_name": plugin_name,
        "status": STATUS_BAD,
        "reason": reason,
        "loadable": False,
        "probed_at": time.time(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m earmark.engine.plugins",
        description="Probe one plugin bundle (used by 'earmark plugins scan'; prints JSON).",
    )
    parser.add_argument("--probe", required=True, metavar="BUNDLE")
    parser.add_argument("--plugin", metavar="NAME", help="which plugin of a multi-plugin bundle")
    args = parser.parse_args(argv)
    return _probe_main(args.probe, args.plugin)


if __name__ == "__main__":
    sys.exit(main())
