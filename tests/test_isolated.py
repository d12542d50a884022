"""Isolated mode: a chain in a child process, pipelined by two blocks, crash-proof.

The engine is driven at real-time pace here (the host process needs the time
a real callback would give it). The crash is a real process death: the test
sends SIGSEGV to the host, the same death a crashing plugin causes (we have no
plugin bundle that crashes on demand).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import numpy as np
import pytest

from earmark.engine.chains import ChainSpec, PluginSpec, PresetError, build_chain, parse_chain
from earmark.engine.drivers import NullDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.isolated import IsolatedChain
from earmark.engine.sources import Player
from earmark.live.session import LiveSession
from earmark.ui.midi.surface import current_value

from bundles import ZAM, needs
from synth import sine

FS = 48000
BLOCK = 64


def gain_spec(db: float):
    return parse_chain(f'name = "gain"\n[[plugin]]\nbuiltin = "Gain"\ngain_db = {db}\n')


def paced(engine: Engine, seconds: float, taps: list[int]) -> list[np.ndarray]:
    """Run the engine block by block at real-time pace; return the taps' aligned outputs."""
    blocks = int(seconds * FS / BLOCK)
    out = np.zeros((BLOCK, 2), dtype=np.float32)
    got = [np.zeros((blocks * BLOCK, 2), dtype=np.float32) for _ in taps]
    t0 = time.perf_counter()
    for k in range(blocks):
        engine.process(None, out, BLOCK)
        if k == 0:  # the first block loads the meters' compiled code: start the clock after
            t0 = time.perf_counter() - BLOCK / FS
        for g, i in zip(got, taps, strict=True):
            g[k * BLOCK : (k + 1) * BLOCK] = engine.paths[i]._out[:BLOCK]
        wait = t0 + (k + 1) * BLOCK / FS - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    return got


@contextlib.contextmanager
def streaming(iso: IsolatedChain, tone: np.ndarray):
    """The isolated chain alone on one path, streamed at real-time pace (NullDriver)."""
    engine = Engine(FS, [Path("iso", Player(tone, "t"), iso)], a=0, b=0)
    driver = NullDriver(engine, blocksize=BLOCK)
    driver.start()
    try:
        yield engine
    finally:
        driver.stop()
        iso.close()


@pytest.fixture
def tone() -> np.ndarray:
    return sine(-20, 20, freq_hz=997.0, dtype=np.float32)


def test_an_isolated_chain_sounds_like_the_chain_and_stays_aligned_to_the_sample(tone):
    iso = IsolatedChain(gain_spec(0.0), FS, 2, block=BLOCK)
    try:
        assert iso.latency_samples == 2 * BLOCK  # the pipeline (depth 2 blocks), reported
        engine = Engine(FS, [Path("dry", Player(tone, "t")), Path("iso", Player(tone, "t"), iso)])
        dry, wet = paced(engine, 3.0, [0, 1])
    finally:
        iso.close()
    blocks_dry = dry[BLOCK * 8 :].reshape(-1, BLOCK, 2)
    blocks_wet = wet[BLOCK * 8 :].reshape(-1, BLOCK, 2)
    same = np.all(blocks_dry == blocks_wet, axis=(1, 2))
    silent = np.all(blocks_wet == 0.0, axis=(1, 2))
    # Every block is either the dry block to the sample (aligned), or a late one
    # (silence, counted). A misalignment of even one sample would match none.
    assert np.all(same | silent)
    assert same.mean() > 0.9
    assert silent.sum() <= iso.late_blocks


def test_gain_and_live_edits_in_the_host_are_measured_on_the_path(tone):
    iso = IsolatedChain(gain_spec(6.0), FS, 2, block=BLOCK)
    with streaming(iso, tone) as engine:
        time.sleep(4.0)
        first = engine.state().paths[0].readings.short_term_lufs
        iso.set_parameter(0, "gain_db", 12.0)
        assert dict(iso.spec.plugins[0].params)["gain_db"] == 12.0  # confirmed by the host
        time.sleep(3.5)
        second = engine.state().paths[0].readings.short_term_lufs
        with pytest.raises(PresetError, match="gain_db"):
            iso.set_parameter(0, "gain_db", "loud")
        iso.add(PluginSpec.builtin("Gain", gain_db=-9.0))  # built in the host, live
        assert [p.title for p in iso.spec.plugins] == ["Gain", "Gain"]
        time.sleep(3.5)
        added = engine.state().paths[0].readings.short_term_lufs
        removed = iso.remove(0)
        assert dict(removed.params)["gain_db"] == 12.0
        time.sleep(3.5)
        third = engine.state().paths[0].readings.short_term_lufs
        with pytest.raises(IndexError):
            iso.remove(5)
    late = iso.late_blocks / max(1, engine.callbacks)
    assert first == pytest.approx(-14.0, abs=0.1 + 20 * late)
    assert second == pytest.approx(-8.0, abs=0.1 + 20 * late)
    assert added == pytest.approx(-17.0, abs=0.1 + 20 * late)  # +12 then -9 dB
    assert third == pytest.approx(-29.0, abs=0.1 + 20 * late)  # only the -9 dB is left


def test_a_crashing_host_mutes_its_path_is_reported_and_the_rest_plays_on(tone):
    iso = IsolatedChain(gain_spec(0.0), FS, 2, block=BLOCK)
    engine = Engine(FS, [Path("dry", Player(tone, "t")), Path("iso", Player(tone, "t"), iso)])
    driver = NullDriver(engine, blocksize=BLOCK)
    lines: list[str] = []
    session = LiveSession(engine, driver, say=lines.append)
    driver.start()
    try:
        with session:
            time.sleep(1.0)
            os.kill(iso.pid, signal.SIGSEGV)
            t0 = time.monotonic()
            while not lines and time.monotonic() - t0 < 5:
                time.sleep(0.05)
            noticed_s = time.monotonic() - t0
            # Both counts read back to back (two shared-memory slots, no state() between
            # them, which meters every path and lets blocks pass under load).
            muted, blocks = engine.paths[1].muted_blocks, engine.callbacks
            time.sleep(1.0)
            muted_after, blocks_after = engine.paths[1].muted_blocks, engine.callbacks
            muted_after, blocks_after = muted_after - muted, blocks_after - blocks
            assert session.call("restart_chain", 1) is True
            time.sleep(0.5)
            muted_restarted = engine.paths[1].muted_blocks
            time.sleep(1.0)
            still_muted = engine.paths[1].muted_blocks - muted_restarted
            dry = engine.state().paths[0].readings
    finally:
        iso.close()
    assert noticed_s < 1.5
    assert lines[0].startswith(
        "earmark: chain 'gain' crashed in its isolated host (killed by SIGSEGV)"
    )
    assert blocks_after == pytest.approx(FS / BLOCK, rel=0.2)  # the engine kept real time
    assert muted_after == pytest.approx(blocks_after, abs=2)  # the crashed path was silent
    assert still_muted <= 0.05 * FS / BLOCK  # after the restart it plays again
    assert dry.integrated_lufs == pytest.approx(-20.0, abs=0.05)  # the dry path never stopped
    assert iso.restarts == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_to_the_process_group_leaves_the_host_to_the_session(tone, signum):
    """A terminal closing or `kill -- -PGID` reaches the hosts too; the session stops
    them after the audio, so the signal itself must not end a host mid-stream."""
    iso = IsolatedChain(gain_spec(6.0), FS, 2, block=BLOCK)
    with streaming(iso, tone) as engine:
        time.sleep(1.0)
        os.kill(iso.pid, signum)
        time.sleep(3.5)
        alive = iso.restarts == 0 and iso.pid is not None and os.waitpid(iso.pid, os.WNOHANG)
        loud = engine.state().paths[0].readings.short_term_lufs
    assert alive == (0, 0)  # the very same host process, still running
    late = iso.late_blocks / max(1, engine.callbacks)
    assert loud == pytest.approx(-14.0, abs=0.1 + 20 * late)  # +6 dB on a -20 LUFS tone


def test_a_chain_that_cannot_load_fails_in_the_parent_with_the_preset_error():
    bad = parse_chain('name = "bad"\n[[plugin]]\nbuiltin = "Gain"\ngain_db = 6.0\n', "bad.toml")
    bad = type(bad)(bad.name, bad.description, (PluginSpec.vst3("NoSuchPlugin"),), bad.source)
    with pytest.raises(PresetError, match="NoSuchPlugin"):
        IsolatedChain(bad, FS, 2, block=BLOCK)


def test_the_host_runs_at_real_time_priority_and_is_woken_without_a_lock(monkeypatch):
    # Below JACK's client threads (5), above every normal process; 0 turns it off.
    chains = {}
    for setting in ("4", "0"):
        monkeypatch.setenv("EARMARK_HOST_RTPRIO", setting)
        chains[setting] = IsolatedChain(gain_spec(0.0), FS, 2, block=BLOCK)
    try:
        rt_host, normal_host = chains["4"], chains["0"]
        if rt_host.warnings:  # a system that does not allow it: said so, normal scheduling
            assert "real-time priority 4 not allowed" in rt_host.warnings[-1]
            assert os.sched_getscheduler(rt_host.pid) == os.SCHED_OTHER
        else:
            assert os.sched_getscheduler(rt_host.pid) == os.SCHED_FIFO
            assert os.sched_getparam(rt_host.pid).sched_priority == 4
        assert os.sched_getscheduler(normal_host.pid) == os.SCHED_OTHER
        with open(f"/proc/{rt_host.pid}/status") as status:  # no khugepaged stalls either
            assert "THP_enabled:\t0" in status.read()
        # The callback's wake-up is an eventfd (a write that takes no sleeping lock).
        assert os.readlink(f"/proc/self/fd/{rt_host._wake_w}") == "anon_inode:[eventfd]"
    finally:
        for chain in chains.values():
            chain.close()


@needs("ZamComp", "ZaMaximX2")
def test_an_isolated_chain_reports_its_plugins_as_the_chain_in_process_does():
    # Per-plugin latency, dual mono and current parameter values come from the host,
    # at load and after each edit: the session's snapshots record them, and a
    # controller's relative encoder starts from the value a preset left at default.
    spec = ChainSpec(
        name="report",
        plugins=(
            PluginSpec.builtin("Compressor", threshold_db=-18.0),  # ratio etc. at defaults
            PluginSpec.vst3(ZAM["ZamComp"], threshold_db=-20.0),  # mono-only: dual mono
            PluginSpec.vst3(ZAM["ZaMaximX2"], threshold_db=-3.0),  # reports its lookahead
        ),
    )
    local = build_chain(spec, FS, 2)
    iso = IsolatedChain(spec, FS, 2, block=BLOCK)
    try:
        assert iso.dual_mono == local.dual_mono == (False, True, False)
        assert iso.plugin_latencies == local.plugin_latencies == (0, 0, 480)
        assert iso.latency_samples == 480 + 2 * BLOCK
        assert local.parameter_values(0)["ratio"] == 1.0  # pedalboard's default
        assert local.parameter_values(0)["threshold_db"] == -18.0
        assert local.parameter_values(2)["threshold_db"] == -3.0
        for i in range(3):
            assert iso.parameter_values(i) == local.parameter_values(i), i
        assert current_value(iso, 2, "release_ms") == current_value(local, 2, "release_ms")
        assert current_value(iso, 2, "release_ms") is not None  # not in the preset

        for chain in (local, iso):
            chain.set_parameter(0, "ratio", 4.0)
            chain.set_parameter(1, "release_ms", 250.0)
        assert iso.parameter_values(0)["ratio"] == 4.0
        assert iso.parameter_values(1)["release_ms"] == 250.0
        for i in range(3):
            assert iso.parameter_values(i) == local.parameter_values(i), i

        for chain in (local, iso):
            chain.remove(1)
        assert iso.dual_mono == local.dual_mono == (False, False)
        assert iso.plugin_latencies == local.plugin_latencies == (0, 480)
        assert iso.parameter_values(1) == local.parameter_values(1)
        with pytest.raises(IndexError):
            iso.parameter_values(2)
    finally:
        iso.close()


@needs("ZaMaximX2")
def test_the_path_plays_on_while_the_host_loads_an_added_plugin(tone):
    iso = IsolatedChain(gain_spec(0.0), FS, 2, block=BLOCK)
    with streaming(iso, tone) as engine:
        time.sleep(1.0)
        late0, calls0 = iso.late_blocks, engine.callbacks
        t0 = time.perf_counter()
        iso.add(PluginSpec.vst3(ZAM["ZaMaximX2"], threshold_db=0.0))
        took = time.perf_counter() - t0
        late, calls = iso.late_blocks - late0, engine.callbacks - calls0
    assert iso.plugin_latencies == (0, 480)  # it arrived
    # The load spans many blocks; had the host loaded it in its own loop, every one of
    # them would have been late (silence on the path).
    assert calls >= 10, f"the load took {took * 1e3:.0f} ms: too quick to show anything"
    assert late <= 0.1 * calls + 2, f"{late} of {calls} blocks late during a {took:.2f} s load"
