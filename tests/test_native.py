"""The GIL-free native callback (engine.native): same block as Engine.process, no GIL.

Offline, the native callback and the Python one run the same engine set-up on
the same input and must agree to the bit, commands included. Through a real
JACK server (dummy backend), the native callback must keep running while
another thread holds the GIL in one long C call, which stops the Python
callback; an isolated +6 dB chain must measure +6.0 dB at the output; and when
its host dies (SIGSEGV, as under a crashing plugin) only its path goes silent
until restart_chain brings it back.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from earmark.engine import abi, native
from earmark.engine.chains import parse_chain
from earmark.engine.drivers import SoundDeviceDriver
from earmark.engine.engine import Engine, Path
from earmark.engine.isolated import IsolatedChain
from earmark.engine.sources import LiveInput, Player

from synth import sine

FS = 48000
BLOCK = 64


def gain_spec(db: float):
    return parse_chain(f'name = "gain"\n[[plugin]]\nbuiltin = "Gain"\ngain_db = {db}\n')


def _engine(music: np.ndarray, chain: IsolatedChain | None = None) -> Engine:
    paths = [
        Path("mix", Player(music, "mix")),
        Path("input (L/R swapped)", LiveInput((1, 0))),
        Path("reference (mono)", Player(music[:, 0].copy(), "mono")),
    ]
    if chain is not None:
        paths.append(Path("mix -> chain", Player(music, "mix"), chain))
    engine = Engine(FS, paths, a=0, b=1, max_block=256, loudness_match=True)
    engine.meter_inline = False  # as under a real-time driver: the callback feeds the meters
    return engine


def _run(engine: Engine, step, live_in: np.ndarray, blocks: int) -> np.ndarray:
    """Blocks through ``step`` (a callback body) with commands at fixed blocks; the output."""
    out = np.zeros((blocks * BLOCK, 2), dtype=np.float32)
    chain = engine.paths[-1].chain
    for k in range(blocks):
        if k == 100:
            engine.post("select", "B")
        elif k == 200:
            engine.post("seek", 12345)
            engine.post("monitor", {"solo": "S", "trim_db": -3.0})
        elif k == 250:
            engine.post("compare", 0, 99)  # no such path (a remote client's mistake): ignored
        elif k == 300:
            engine.post("compare", 2, len(engine.paths) - 1)
            engine.post("select", "toggle")
        elif k == 400:
            engine.post("play", False)
        elif k == 450:
            engine.post("play", True)
            engine.post("reset_meters")
        block_in = np.ascontiguousarray(live_in[k * BLOCK : (k + 1) * BLOCK])
        step(block_in, out[k * BLOCK : (k + 1) * BLOCK], BLOCK, k in (7, 77))
        engine.meter_pending()
        if isinstance(chain, IsolatedChain):  # the host's pace must not decide the result
            deadline = time.monotonic() + 5.0
            while chain.last_done_block < k and time.monotonic() < deadline:
                time.sleep(0.0002)
    return out


@pytest.mark.parametrize("isolated", [False, True], ids=["players-and-input", "isolated-chain"])
def test_native_callback_matches_the_python_callback_to_the_bit(isolated):
    rng = np.random.default_rng(7)
    music = (0.2 * rng.standard_normal((FS, 2))).astype(np.float32)
    live_in = (0.1 * rng.standard_normal((FS, 3))).astype(np.float32)
    blocks = 600
    runs = []
    for kind in ("python", "native"):
        chain = IsolatedChain(gain_spec(6.0), FS, 2, block=BLOCK) if isolated else None
        try:
            engine = _engine(music, chain)
            engine.align_latency()
            if kind == "native":
                plan = native.NativePlan(engine, 3, 2)
                engine.native = True
                engine.drain_commands()
                step = plan.process
            else:
                step = engine.process
            out = _run(engine, step, live_in, blocks)
            state = engine.state()
            counted = _counted(engine)
        finally:
            if chain is not None:
                chain.close()
        runs.append((out, state, engine, counted))
    (py_out, py_state, py_engine, py_counted), (nat_out, nat_state, nat_engine, nat_counted) = runs
    assert np.abs(py_out).max() > 0.05  # real signal, not two silences
    np.testing.assert_array_equal(nat_out, py_out)
    assert nat_state.callbacks == py_state.callbacks == blocks
    assert nat_state.xruns == py_state.xruns == 2
    np.testing.assert_array_equal(nat_engine.xrun_callbacks[:2], [7, 77])
    assert nat_engine.transport.pos == py_engine.transport.pos == 12345 + 350 * BLOCK
    assert (nat_state.a, nat_state.b, nat_state.audible) == (py_state.a, py_state.b, "A")
    for p_nat, p_py in zip(nat_state.paths, py_state.paths, strict=True):
        assert p_nat.delay_samples == p_py.delay_samples
        assert p_nat.nonfinite_blocks == p_py.nonfinite_blocks == 0
        assert p_nat.readings.integrated_lufs == p_py.readings.integrated_lufs
    # Everything both callbacks count, read the same way (engine.block is one block).
    assert nat_counted == py_counted
    if isolated:
        assert nat_counted["chains"][0][0] == 0  # no late block
        assert nat_state.paths[0].delay_samples == 2 * BLOCK  # the pipeline's two blocks


def _counted(engine: Engine) -> dict:
    """What an engine counts and keeps of its blocks (not the timings: those differ)."""
    tap = np.zeros((engine.tap_frames, 4), dtype=np.float32)
    real = engine.read_tap(tap)
    state = engine.state()
    chains = [p.chain for p in engine.paths if isinstance(p.chain, IsolatedChain)]
    rows = engine.plan[abi.G_COUNT :].reshape(-1, abi.R_COUNT)
    return {
        # The same plan: each path's source and chain kinds (the rest are addresses).
        "plan": rows[:, [abi.R_SOURCE, abi.R_CHAIN]].tolist(),
        "counters": engine.counters.tolist(),  # callbacks, xruns, block, A, B
        "xrun_callbacks": engine.xrun_callbacks.tolist(),
        "transport": engine.transport.state.tolist(),
        "muted": [(p.nonfinite_blocks, p.muted_blocks, p.delay_samples) for p in engine.paths],
        "chains": [
            (c.late_blocks, c.dead_blocks, c.error_blocks, c.last_done_block) for c in chains
        ],
        "output": (state.output_muted, state.output_trips, state.meter_skipped_frames),
        "tap": (real, tap.tobytes()),
    }


def test_an_engine_with_a_chain_in_the_audio_process_keeps_the_python_callback():
    import pedalboard

    from boards import Board

    tone = sine(-20, 1, dtype=np.float32)
    engine = Engine(FS, [Path("gain", Player(tone, "t"), Board([pedalboard.Gain(gain_db=1)]))])
    reason = native.unsupported(engine)
    assert reason is not None and "'gain'" in reason and "isolate" in reason
    with pytest.raises(ValueError, match="native callback cannot run"):
        native.NativePlan(engine, 2, 2)
    driver = SoundDeviceDriver(engine, native=True)
    with pytest.raises(ValueError, match="isolate it"):
        driver.start()
    assert not engine.native and not engine.realtime


def _thp_enabled(pid: int) -> int:
    """Whether the kernel may give process ``pid`` transparent huge pages (1) or not (0)."""
    with open(f"/proc/{pid}/status") as status:
        return int(next(ln for ln in status if ln.startswith("THP_enabled:")).split()[1])


def _callbacks_during_gil_hold(engine: Engine) -> tuple[float, float]:
    """Hold the GIL in one C call (~0.5-1 s) in this thread; (callbacks run, expected)."""
    time.sleep(0.3)
    before, t0 = engine.callbacks, time.perf_counter()
    sum(range(40_000_000))  # one C call: the interpreter never lets another thread in
    elapsed = time.perf_counter() - t0
    return engine.callbacks - before, elapsed * FS / BLOCK


def test_the_native_callback_runs_while_another_thread_holds_the_gil(jack_server):
    tone = sine(-20, 30, dtype=np.float32)
    counts = {}
    for native_mode in (True, False):
        engine = Engine(FS, [Path("tone", Player(tone, "tone"))], b=0, max_block=1024)
        driver = SoundDeviceDriver(
            engine, device=jack_server.device(), blocksize=BLOCK, channels=(0, 2),
            native=native_mode,
        )  # fmt: skip
        driver.start()
        try:
            assert driver.callback_kind == ("native" if native_mode else "Python")
            assert _thp_enabled(os.getpid()) == 0  # no khugepaged stalls while streaming
            counts[native_mode] = _callbacks_during_gil_hold(engine)
        finally:
            driver.stop()
        assert _thp_enabled(os.getpid()) == 1
    ran, expected = counts[True]
    assert expected > 200  # the hold lasted several hundred periods
    assert ran >= 0.9 * expected, counts
    ran_py, expected_py = counts[False]
    assert ran_py <= 0.5 * expected_py, counts  # what the native callback is for
    jack_server.note(
        f"GIL held {expected / FS * BLOCK:.2f} s: native callback ran {ran / expected:.0%} "
        f"of its periods, the Python callback {ran_py / expected_py:.0%}"
    )


def _looped(jack_server, seconds: float) -> tuple[Engine, SoundDeviceDriver, IsolatedChain]:
    """A -20 dBFS tone through an isolated +6 dB chain (A) and dry (B), and JACK's
    loopback on the third path: the engine and its (unstarted) JACK driver."""
    tone = sine(-20, seconds, dtype=np.float32)
    chain = IsolatedChain(gain_spec(6.0), FS, 2, block=BLOCK)
    paths = [
        Path("+6 dB (isolated)", Player(tone, "tone"), chain),
        Path("dry", Player(tone, "tone")),
        Path("input", LiveInput((0, 1))),
    ]
    engine = Engine(FS, paths, a=0, b=1, loudness_match=False, max_block=1024)
    return engine, SoundDeviceDriver(engine, device=jack_server.device(), blocksize=BLOCK), chain


def test_an_isolated_chain_through_the_native_callback_measures_its_gain(jack_server):
    engine, driver, chain = _looped(jack_server, 30)
    driver.start()
    jack_server.loopback()
    try:
        assert driver.callback_kind == "native"
        readings = []
        for which in ("A", "B"):
            engine.post("select", which)
            time.sleep(0.3)  # the crossfade and the loop settle
            engine.post("reset_meters")
            time.sleep(2.0)
            readings.append(engine.state().paths[-1].readings.integrated_lufs)
        state = engine.state()
    finally:
        driver.stop()
        chain.close()
    assert readings[0] == pytest.approx(-14.0, abs=0.05)
    assert readings[1] == pytest.approx(-20.0, abs=0.05)
    assert state.paths[0].readings.integrated_lufs == pytest.approx(-14.0, abs=0.05)
    # Two blocks of pipeline, matched by the other paths' delay; none late at this pace
    # (a late block would be silence, and read low above).
    assert state.paths[1].delay_samples == 2 * BLOCK
    jack_server.note(
        f"native + isolated chain: {state.callbacks} blocks, {state.xruns} xruns, "
        f"{chain.late_blocks} late host blocks"
    )


def test_a_plugin_crash_under_the_native_callback_mutes_one_path_and_restarts(jack_server):
    """The default set-up (isolated chain, native callback) on a real JACK server: the
    host dies by SIGSEGV, as under a crashing plugin. The callback keeps real time,
    only the chain's path goes silent, and restart_chain brings its sound back."""
    from earmark.live.session import LiveSession

    engine, driver, chain = _looped(jack_server, 60)
    lines: list[str] = []
    session = LiveSession(engine, driver, say=lines.append)

    def loopback_lufs() -> float:  # what the output carries, read at the input
        engine.post("reset_meters")
        time.sleep(1.5)
        return engine.state().paths[2].readings.integrated_lufs

    try:
        with session:
            jack_server.loopback()
            assert driver.callback_kind == "native"
            time.sleep(0.5)
            before = loopback_lufs()
            os.kill(chain.pid, signal.SIGSEGV)
            t0 = time.monotonic()
            while not any("crashed" in line for line in lines) and time.monotonic() - t0 < 5:
                time.sleep(0.05)
            blocks0, dead0 = engine.callbacks, chain.dead_blocks
            time.sleep(1.0)
            blocks, dead = engine.callbacks - blocks0, chain.dead_blocks - dead0
            engine.post("select", "B")
            time.sleep(0.3)
            dry = loopback_lufs()
            engine.post("select", "A")
            assert session.call("restart_chain", 0) is True
            time.sleep(0.5)
            after = loopback_lufs()
    finally:
        chain.close()
    assert before == pytest.approx(-14.0, abs=0.05)
    assert any("chain 'gain' crashed in its isolated host (killed by SIGSEGV)" in x for x in lines)
    assert blocks == pytest.approx(FS / BLOCK, rel=0.1)  # the callback kept real time
    assert dead == pytest.approx(blocks, abs=2)  # and the crashed path was silent
    assert dry == pytest.approx(-20.0, abs=0.05)  # the dry path played on
    assert after == pytest.approx(-14.0, abs=0.05)  # restarted: +6 dB again
    assert chain.restarts == 1


def test_the_native_block_guards_paths_and_output_exactly_as_the_python_block():
    """A NaN, a +60 dBFS burst (absurd: the path is muted) and a +12 dBFS burst (over the
    output ceiling: the output is muted, then fades back in) on a player path: the
    native block and the Python block mute the same blocks and play the same bits."""
    from earmark.engine import rt

    rng = np.random.default_rng(11)
    music = (0.2 * rng.standard_normal((3 * FS, 2))).astype(np.float32)
    music[5000, 1] = np.nan
    music[9000:9100] *= 5000.0  # +60 dBFS
    music[20000:21000] *= 8.0  # +12 dBFS peaks: over the +6 dBFS ceiling
    live_in = (0.1 * rng.standard_normal((3 * FS, 2))).astype(np.float32)
    blocks = 2 * FS // BLOCK
    runs = []
    for kind in ("python", "native"):
        paths = [Path("music", Player(music, "m")), Path("input", LiveInput((0, 1)))]
        engine = Engine(FS, paths, a=0, b=1, max_block=256, loudness_match=False)
        engine.meter_inline = False
        step = engine.process
        if kind == "native":
            step = native.NativePlan(engine, 2, 2).process
            engine.native = True
        out = np.zeros((blocks * BLOCK, 2), dtype=np.float32)
        for k in range(blocks):
            block_in = np.ascontiguousarray(live_in[k * BLOCK : (k + 1) * BLOCK])
            step(block_in, out[k * BLOCK : (k + 1) * BLOCK], BLOCK, False)
            engine.meter_pending()
        runs.append((out, engine.state(), engine))
    (py_out, py_state, py_engine), (nat_out, nat_state, nat_engine) = runs
    np.testing.assert_array_equal(nat_out, py_out)
    np.testing.assert_array_equal(nat_engine._og, py_engine._og)
    # The NaN's block and the three blocks the +60 dBFS burst touches were muted at the path.
    assert nat_state.paths[0].nonfinite_blocks == py_state.paths[0].nonfinite_blocks == 4
    assert nat_state.output_trips == py_state.output_trips == 1
    first = 20000 + int(np.argmax(np.abs(music[20000:21000]).max(axis=1) > 10 ** (6 / 20)))
    assert np.abs(py_out[first : 21000 + FS]).max() == 0.0  # muted for the hold
    assert np.abs(py_out).max() <= 10 ** (rt.OUTPUT_CEILING_DBFS / 20)
    for p_nat, p_py in zip(nat_state.paths, py_state.paths, strict=True):
        assert p_nat.readings.true_peak_dbtp == p_py.readings.true_peak_dbtp
    assert py_state.paths[0].readings.sample_peak_dbfs < 20.0  # +60 dBFS never metered
