"""Plugin scanning: every bundle is validated in a child process, and a bad one stops nothing.

The broken plugin is real (a ``.vst3`` bundle holding garbage instead of a
binary), and so is the crashing one (a binary that raises SIGSEGV as it is
loaded, built with the system C compiler). The hanging plugin is the one
simulated fault: a real VST3 cannot be made to hang on demand, so the probe's
test hook (``EARMARK_PROBE_HANG``) makes the child sleep instead of loading,
and the timeout must kill it.
(On this project's Debian 12 machines ZamVerb really does spin at load; the
tests do not rely on it, since a fixed dependency would fix it.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from earmark import config
from earmark.cli import plugins as cli_plugins
from earmark.engine import plugins
from earmark.engine.plugins import PluginNotFoundError

from bundles import ZAM, needs

ZAM_COMP_X2, ZA_MAXIM_X2, ZAM_COMP = (ZAM[n] for n in ("ZamCompX2", "ZaMaximX2", "ZamComp"))
needs_zam = needs("ZamCompX2", "ZaMaximX2", "ZamComp")


def broken_bundle(folder: Path, name: str = "Broken") -> Path:
    """A bundle laid out like a real Linux VST3 whose binary is garbage."""
    binary = folder / f"{name}.vst3" / "Contents" / "x86_64-linux" / f"{name}.so"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(bytes(range(256)) * 64)
    return folder / f"{name}.vst3"


def copy_bundle(source: Path, folder: Path, name: str | None = None) -> Path:
    target = folder / (name or source.name)
    shutil.copytree(source, target)
    return target


# -- search path and bundles ----------------------------------------------------------


def test_earmark_plugin_path_comes_first_then_the_standard_folders(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(plugins.PLUGIN_PATH_ENV, f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    paths = plugins.default_search_path()
    assert paths[:2] == [tmp_path / "a", tmp_path / "b"]
    if sys.platform.startswith("linux"):
        assert Path("/usr/lib/vst3") in paths and Path.home() / ".vst3" in paths


def test_find_bundles_searches_folders_but_not_inside_bundles(tmp_path: Path):
    broken_bundle(tmp_path / "vendor")
    (tmp_path / "Outer.vst3" / "Contents" / "Inner.vst3").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("not a plugin")
    found = plugins.find_bundles([tmp_path, tmp_path / "missing", tmp_path / "Outer.vst3"])
    assert found == [tmp_path / "Outer.vst3", tmp_path / "vendor" / "Broken.vst3"]


# -- scanning -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory):
    """One scan of a folder with a broken bundle, a hanging one and (when installed) real ones."""
    folder = tmp_path_factory.mktemp("vst3")
    broken_bundle(folder)
    (folder / "Hang.vst3").mkdir()
    real = [copy_bundle(b, folder) for b in (ZAM_COMP_X2, ZA_MAXIM_X2, ZAM_COMP) if b]
    cache = folder.parent / "plugins.json"
    os.environ[plugins.PROBE_HANG_ENV] = "Hang.vst3"
    try:
        start = time.monotonic()
        records = plugins.scan([folder], cache, timeout_s=4.0)
        elapsed = time.monotonic() - start
    finally:
        del os.environ[plugins.PROBE_HANG_ENV]
    return folder, cache, {Path(r.path).name: r for r in records}, elapsed, real


def test_a_broken_bundle_is_marked_bad_and_the_scan_carries_on(scanned):
    _folder, _cache, records, _elapsed, real = scanned
    broken = records["Broken.vst3"]
    assert broken.status == "bad" and not broken.loadable
    assert broken.reason.startswith("failed to load:")
    assert len(records) == 2 + len(real)
    assert all(records[b.name].ok for b in real)


def test_a_hanging_plugin_is_killed_at_the_timeout(scanned):
    """Simulated (see the module docstring): the probe sleeps for an hour unless killed."""
    _folder, _cache, records, elapsed, _real = scanned
    hang = records["Hang.vst3"]
    assert hang.status == "bad" and not hang.loadable
    assert hang.reason == "timed out after 4 s (killed)"
    assert elapsed < 4.0 + 10.0  # killed at the timeout, not waited for


CRASH_ON_LOAD_C = """
#include <signal.h>
__attribute__((constructor)) static void crash_on_load(void) { raise(SIGSEGV); }
void *GetPluginFactory(void) { return 0; }
"""


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build the plugin")
def test_a_plugin_that_crashes_the_process_is_marked_bad_and_the_scan_carries_on(tmp_path: Path):
    """A real crash: the bundle's binary raises SIGSEGV as soon as it is loaded."""
    binary = tmp_path / "vst3" / "Crash.vst3" / "Contents" / "x86_64-linux" / "Crash.so"
    binary.parent.mkdir(parents=True)
    source = tmp_path / "crash.c"
    source.write_text(CRASH_ON_LOAD_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(binary), str(source)], check=True)
    broken_bundle(tmp_path / "vst3")
    records = {Path(r.path).name: r for r in plugins.scan([tmp_path / "vst3"])}
    assert records["Crash.vst3"].reason == "crashed (SIGSEGV)"
    assert not records["Crash.vst3"].loadable
    assert records["Broken.vst3"].reason.startswith("failed to load:")


@needs_zam
def test_probe_reads_name_channels_latency_and_parameters(scanned):
    _folder, _cache, records, _elapsed, _real = scanned
    maxim = records["ZaMaximX2.vst3"]
    assert maxim.name == "ZaMaximX2" and maxim.format == "vst3"
    assert maxim.input_channels == 2 and not maxim.mono_only
    assert maxim.latency_samples == 480
    assert maxim.process_ms is not None and maxim.process_ms > 0
    params = {p.name: p for p in maxim.parameters}
    assert params["output_ceiling_db"].units == "dB"
    assert (params["output_ceiling_db"].minimum, params["output_ceiling_db"].maximum) == (-30, 0)
    assert params["threshold_db"].writable
    assert not params["gain_reduction_db"].writable  # a meter the plugin reports
    assert records["ZamComp.vst3"].mono_only
    compx2 = {p.name: p for p in records["ZamCompX2.vst3"].parameters}
    assert {"threshold_db", "ratio", "attack_ms", "release_ms", "knee_db", "makeup_db"} <= set(
        compx2
    )
    assert compx2["ratio"].units is None and (compx2["ratio"].minimum, compx2["ratio"].maximum) == (
        1,
        20,
    )


def test_the_cache_holds_every_record_and_reloads_them(scanned):
    _folder, cache, records, _elapsed, _real = scanned
    data = json.loads(cache.read_text())
    assert data["version"] == plugins.CACHE_VERSION
    reloaded = {Path(r.path).name: r for r in plugins.load_records(cache)}
    assert reloaded == records


@needs_zam
def test_unchanged_bundles_are_not_probed_again_and_changed_ones_are(tmp_path: Path, monkeypatch):
    bundle = copy_bundle(ZAM_COMP_X2, tmp_path / "vst3")
    cache = tmp_path / "plugins.json"
    (first,) = plugins.scan([bundle], cache)
    assert first.ok

    # Any probe from here on would hang and time out: a current record must not be re-probed.
    monkeypatch.setenv(plugins.PROBE_HANG_ENV, bundle.name)
    (again,) = plugins.scan([bundle], cache, timeout_s=1.0)
    assert again == first

    binary = next(bundle.rglob("*.so"))
    later = first.mtime_ns + 10**9
    os.utime(binary, ns=(later, later))
    (changed,) = plugins.scan([bundle], cache, timeout_s=1.0)
    assert changed.reason == "timed out after 1 s (killed)" and changed.mtime_ns == later

    monkeypatch.delenv(plugins.PROBE_HANG_ENV)
    (forced,) = plugins.scan([bundle], cache, force=True)
    assert forced.ok and forced.probed_at > first.probed_at


def test_a_damaged_or_foreign_cache_reads_as_empty(tmp_path: Path):
    cache = tmp_path / "plugins.json"
    assert plugins.load_records(cache) == []
    cache.write_text("{not json")
    assert plugins.load_records(cache) == []
    cache.write_text(json.dumps({"version": 999, "records": [{"path": "/x"}]}))
    assert plugins.load_records(cache) == []


# -- resolving ------------------------------------------------------------------------


@needs_zam
def test_resolve_finds_scanned_plugins_by_name_and_refuses_ones_that_hung(scanned):
    folder, cache, _records, _elapsed, _real = scanned
    assert plugins.resolve("zamaximx2", cache) == folder / "ZaMaximX2.vst3"
    assert plugins.resolve(str(folder / "ZamComp.vst3"), cache) == folder / "ZamComp.vst3"
    with pytest.raises(PluginNotFoundError, match=r"Hang .*failed its probe: timed out"):
        plugins.resolve("Hang", cache, search_path=[folder])
    with pytest.raises(PluginNotFoundError, match="no plugin named 'ZamNothing' was found"):
        plugins.resolve("ZamNothing", cache, search_path=[folder])


def test_resolve_probes_a_bundle_it_has_not_seen_before_trusting_it(tmp_path: Path):
    folder = tmp_path / "vst3"
    broken_bundle(folder, "Unseen")
    cache = tmp_path / "plugins.json"
    with pytest.raises(PluginNotFoundError, match=r"Unseen .*failed its probe: failed to load"):
        plugins.resolve("Unseen", cache, search_path=[folder])
    assert [Path(r.path).name for r in plugins.load_records(cache)] == ["Unseen.vst3"]


def test_a_plugin_found_nowhere_names_the_folders_searched_and_what_to_run(tmp_path: Path):
    folders = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(PluginNotFoundError) as err:
        plugins.resolve("ZamNothing", tmp_path / "plugins.json", search_path=folders)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(
        f"no plugin named 'ZamNothing' was found in {folders[0]}, {folders[1]}"
    )
    assert f"add its folder to {plugins.PLUGIN_PATH_ENV}, then run 'earmark plugins scan'" in (
        message
    )


# -- command line and config --------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="earmark")
    cli_plugins.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.handler(args, args.subparser)


def test_plugins_scan_and_list_commands(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv(config.HOME_ENV, str(tmp_path / "home"))
    folder = tmp_path / "vst3"
    broken_bundle(folder)
    assert run_cli("plugins", "scan", str(folder), str(tmp_path / "missing")) == 3
    out, err = capsys.readouterr()
    assert "Broken" in out and "bad" in out and "failed to load" in out
    assert f"earmark: {tmp_path / 'missing'}: no such file or directory" in err
    assert config.plugin_cache_file().is_file()

    assert run_cli("plugins", "list") == 0
    out, _ = capsys.readouterr()
    for column in ("Name", "Format", "Channels", "Latency", "Status", "Reason"):
        assert column in out
    assert "Broken" in out and "VST3" in out

    assert run_cli("plugins", "list", "--json") == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["status"] == "bad" and record["path"] == str(folder / "Broken.vst3")
    assert run_cli("plugins") == 2


def test_config_paths_follow_earmark_home(monkeypatch, tmp_path: Path):
    from earmark.presets import user_folder

    monkeypatch.setenv(config.HOME_ENV, str(tmp_path))
    assert config.home() == tmp_path
    assert config.cache_dir() == tmp_path / "cache"
    assert config.plugin_cache_file() == tmp_path / "cache" / "plugins.json"
    assert user_folder("chains") == tmp_path / "chains"
    monkeypatch.delenv(config.HOME_ENV)
    assert config.home().name == "earmark" and config.cache_dir().name == "earmark"
