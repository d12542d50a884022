"""The engine's signal path, rendered offline through real pedalboard plugins.

These run the same ``Engine.process`` the audio callback runs, block by block,
without an audio server (the JACK tests exercise the real-time drivers).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path as Path_

import numpy as np
import pedalboard
import pytest

from earmark.engine.drivers import NullDriver, render
from earmark.engine.engine import Engine, MeterThread, Path
from earmark.engine.sources import LiveInput, Player
from earmark.meters import MeterBank

from boards import Board
from bundles import ZAM, needs
from synth import sine

FS = 48000


def loudness(x: np.ndarray) -> float:
    bank = MeterBank(2, FS)
    bank.process(x)
    return bank.readings().integrated_lufs


def two_paths(x: np.ndarray, plugins, **kw) -> Engine:
    return Engine(
        FS, [Path("dry", Player(x, "x")), Path("chain", Player(x, "x"), Board(plugins))], **kw
    )


def test_a_b_selects_the_audible_path_and_both_are_metered():
    x = sine(-20, 6, dtype=np.float32)
    engine = two_paths(x, [pedalboard.Gain(gain_db=6.0)], loudness_match=False)
    out_a = render(engine, 3, 64)
    engine.post("select", "B")
    out_b = render(engine, 3, 64)
    assert loudness(out_a[FS:]) == pytest.approx(-20.0, abs=0.05)
    assert loudness(out_b[FS:]) == pytest.approx(-14.0, abs=0.05)
    state = engine.state()
    assert state.audible == "B"
    assert state.paths[0].readings.integrated_lufs == pytest.approx(-20.0, abs=0.05)
    assert state.paths[1].readings.integrated_lufs == pytest.approx(-14.0, abs=0.05)


def test_loudness_match_plays_a_and_b_within_half_a_lu():
    x = sine(-20, 8, dtype=np.float32)
    engine = two_paths(x, [pedalboard.Gain(gain_db=6.0)], loudness_match=True)
    render(engine, 2, 64)  # the match follows the meters
    out_a = render(engine, 3, 64)
    engine.post("select", "B")
    render(engine, 0.5, 64)
    out_b = render(engine, 3, 64)
    assert abs(loudness(out_a) - loudness(out_b)) <= 0.5
    state = engine.state()
    assert state.match_b_db == pytest.approx(-6.0, abs=0.1)  # the louder path is attenuated
    assert state.match_a_db == pytest.approx(0.0, abs=1e-9)  # the quieter is never boosted


def max_step(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=0)).max())


@pytest.mark.parametrize(("fade_ms", "clicks"), [(30.0, False), (0.0, True)])
def test_switching_is_click_free_only_with_the_crossfade(fade_ms, clicks):
    # Worst case: B is A in opposite phase. With the equal-power fade the output's
    # sample-to-sample step during the switch stays within the signal's own; a hard
    # switch (fade 0) jumps by up to twice the amplitude, which this test detects.
    # 1234.5 Hz is at a crest when the switch lands (0.5 s): the hard switch's worst moment.
    a = sine(-6, 2, freq_hz=1234.5, dtype=np.float32)
    engine = Engine(
        FS,
        [Path("a", Player(a, "a")), Path("b", Player(-a, "b"))],
        loudness_match=False,
        fade_ms=fade_ms,
    )
    before = render(engine, 0.5, 64)
    engine.post("select", "B")
    during = render(engine, 0.1, 64)
    own = max_step(a)
    step = max_step(np.concatenate([before[-1:], during]))
    if clicks:
        assert step > own * 1.5
    else:
        assert step <= own * 1.001


def test_latency_compensation_aligns_paths_to_the_sample():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((FS * 2, 2)) * 0.1).astype(np.float32)
    # pedalboard's Delay(0.01 s) at 48 kHz delays by 479 samples, not 480: measure it,
    # as the engine's chains do, with an impulse through a fresh instance.
    impulse = np.zeros((2048, 2), np.float32)
    impulse[0] = 1.0
    probe = pedalboard.Delay(delay_seconds=0.01, feedback=0.0, mix=1.0)
    lag = int(np.argmax(probe(impulse, FS)[:, 0]))
    assert lag == 479
    delay = pedalboard.Delay(delay_seconds=0.01, feedback=0.0, mix=1.0)
    delayed = Board([delay], latency_samples=lag)
    engine = Engine(
        FS,
        [Path("dry", Player(x, "x")), Path("delay", Player(x, "x"), delayed)],
        loudness_match=False,
        max_block=512,
    )
    assert [p.delay_samples for p in engine.paths] == [0, 0]  # applied at the first block
    out_dry = render(engine, 1, 64)
    assert [p.delay_samples for p in engine.paths] == [lag, 0]
    engine.post("select", "B")
    render(engine, 0.1, 64)  # let the crossfade finish
    out_delay = render(engine, 0.5, 64)
    # Same transport position -> the aligned paths give the same samples.
    start = int(1.1 * FS)
    np.testing.assert_allclose(out_delay, x[start - lag : start - lag + len(out_delay)], atol=1e-6)
    np.testing.assert_allclose(out_dry[lag:], x[: FS - lag], atol=1e-6)


def test_a_chain_whose_latency_changes_live_is_realigned_to_the_sample():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((FS * 2, 2)) * 0.1).astype(np.float32)
    lag = 479  # pedalboard's Delay(0.01 s) at 48 kHz (measured in the test above)
    chain = Board([])
    engine = Engine(
        FS,
        [Path("dry", Player(x, "x")), Path("chain", Player(x, "x"), chain)],
        loudness_match=False,
        max_block=512,
    )
    render(engine, 0.2, 64)
    # A plugin with latency joins the chain while it plays (as Chain.add does).
    chain.board.append(pedalboard.Delay(delay_seconds=0.01, feedback=0.0, mix=1.0))
    chain.latency_samples = lag
    state = engine.state()  # notices the change and realigns
    assert state.paths[1].latency_samples == lag
    render(engine, 0.1, 64)
    assert [p.delay_samples for p in engine.paths] == [lag, 0]
    engine.post("select", "B")
    render(engine, 0.1, 64)
    out_chain = render(engine, 0.5, 64)
    start = int(0.4 * FS)  # the transport position when out_chain begins
    np.testing.assert_allclose(out_chain, x[start - lag : start - lag + len(out_chain)], atol=1e-6)


def test_monitor_dim_mute_mono_and_solo_never_touch_the_meters():
    t = np.arange(3 * FS) / FS
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    x = np.stack([left, np.zeros_like(left)], 1).astype(np.float32)
    engine = Engine(FS, [Path("x", Player(x, "x"))], loudness_match=False)
    render(engine, 0.2, 64)
    engine.post("monitor", {"solo": "R"})
    out = render(engine, 0.3, 64)
    assert np.abs(out[-FS // 10 :]).max() < 1e-4  # R solo of a left-only signal: silence
    engine.post("monitor", {"solo": None, "mono": True})
    out = render(engine, 0.3, 64)
    np.testing.assert_allclose(out[-100:, 0], out[-100:, 1])
    assert np.abs(out[-FS // 10 :, 0]).max() == pytest.approx(0.25, rel=0.01)  # (L + R) / 2
    engine.post("monitor", {"mono": False, "dim": True})
    out = render(engine, 0.3, 64)
    assert 20 * np.log10(np.abs(out[-FS // 10 :, 0]).max() / 0.5) == pytest.approx(-20.0, abs=0.1)
    engine.post("monitor", {"mute": True})
    out = render(engine, 0.3, 64)
    assert np.abs(out[-FS // 10 :]).max() < 1e-5
    # The path's meters saw the signal all along.
    assert engine.state().paths[0].readings.sample_peak_dbfs == pytest.approx(-6.02, abs=0.01)


def test_non_finite_plugin_output_is_silenced_and_reported():
    # pedalboard's Gain at +1000 dB overflows float32: a real plugin producing inf.
    x = sine(-20, 2, dtype=np.float32)
    engine = two_paths(x, [pedalboard.Gain(gain_db=1000.0)], loudness_match=False)
    engine.post("select", "B")
    out = render(engine, 1, 64)
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= np.abs(x).max() + 1e-6  # only the fading-out dry path is heard
    state = engine.state()
    assert state.paths[1].nonfinite_blocks == 1 * FS // 64 + (1 if FS % 64 else 0)
    assert state.paths[1].readings.true_peak_dbtp is None  # the meters saw silence
    assert state.paths[0].readings.integrated_lufs == pytest.approx(-20.0, abs=0.05)


def test_players_share_one_transport_and_seek_together():
    ramp = np.repeat(np.arange(FS * 2, dtype=np.float32)[:, None] / (FS * 2), 2, axis=1)
    engine = Engine(
        FS, [Path("a", Player(ramp, "a")), Path("b", Player(ramp, "b"))], loudness_match=False
    )
    render(engine, 0.5, 100)
    engine.post("seek", FS)
    render(engine, 0.001, 48)  # one block after the seek
    a, b = engine.paths[0]._out[:48, 0], engine.paths[1]._out[:48, 0]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, ramp[FS : FS + 48, 0])


def test_live_input_feeds_its_path():
    x = sine(-23, 5, dtype=np.float32)
    engine = Engine(FS, [Path("in", LiveInput((0, 1)))], loudness_match=False)
    render(engine, 5, 64, indata=x)
    assert engine.state().paths[0].readings.integrated_lufs == pytest.approx(-23.0, abs=0.05)


def test_a_command_flood_from_another_thread_is_bounded_and_counted():
    x = sine(-20, 4, dtype=np.float32)
    engine = two_paths(x, [pedalboard.Gain(gain_db=3.0)])
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            engine.post("select", "toggle")
            engine.post("monitor", {"dim": True})
            engine.post("monitor", {"dim": False})

    t = threading.Thread(target=hammer)
    t.start()
    try:
        out = render(engine, 2, 64)
    finally:
        stop.set()
        t.join()
    assert np.isfinite(out).all()
    # An equal-power fade between two in-phase versions peaks at sqrt(2) x the
    # louder one mid-fade; that is its bound, however fast the toggles come.
    assert np.abs(out).max() <= np.sqrt(2) * 10 ** (-17 / 20) + 1e-3
    state = engine.state()
    assert state.dropped_commands > 0  # the flood outran the blocks and was cut, not queued
    assert len(engine._commands) <= 1024


def test_null_driver_runs_in_real_time():
    x = sine(-20, 3, dtype=np.float32)
    engine = Engine(FS, [Path("x", Player(x, "x"))])
    render(engine, 0.01, 64)  # load the compiled kernels before timing
    driver = NullDriver(engine, blocksize=64)
    driver.start()
    time.sleep(0.2)
    first, t0 = engine.callbacks, time.perf_counter()
    time.sleep(1.0)
    blocks, elapsed = engine.callbacks - first, time.perf_counter() - t0
    driver.stop()
    assert blocks / elapsed == pytest.approx(FS / 64, rel=0.05)


def test_reference_file_is_decoded_and_resampled_to_the_stream_rate(tmp_path):
    import soundfile as sf

    from earmark.engine.sources import load_player

    path = tmp_path / "ref-44k1.wav"
    sf.write(path, sine(-20, 3, 44100, freq_hz=1000.0), 44100, subtype="FLOAT")
    player = load_player(path, FS)
    assert player.frames == pytest.approx(3 * FS, abs=64)
    x = player.data[FS // 2 : FS // 2 + FS, 0]  # one second from the middle
    crossings = np.count_nonzero(np.signbit(x[1:]) != np.signbit(x[:-1]))
    assert crossings / 2 == pytest.approx(1000.0, abs=1.0)  # still 1 kHz at 48 kHz
    engine = Engine(FS, [Path("ref", player)])
    render(engine, 3, 64)
    assert engine.state().paths[0].readings.integrated_lufs == pytest.approx(-20.0, abs=0.05)


def test_surround_reference_folds_down_to_stereo_by_bs775(tmp_path):
    """A 5.1 reference plays on the stereo paths as its BS.775 fold-down: each
    channel carries its own tone, and each tone lands where and how loud the
    fold-down puts it (C and Ls/Rs at -3 dB, the LFE left out)."""
    import soundfile as sf

    from earmark.engine.sources import load_player

    fs_file, amp = 44100, 0.1
    tones = {"L": 500, "R": 700, "C": 1000, "LFE": 60, "Ls": 1500, "Rs": 2500}
    t = np.arange(2 * fs_file) / fs_file
    data = np.stack([amp * np.sin(2 * np.pi * f * t) for f in tones.values()], axis=1)
    path = tmp_path / "master-5.1.wav"
    sf.write(path, data, fs_file, subtype="FLOAT")
    player = load_player(path, FS)
    assert player.data.shape[1] == 2
    assert "6 channels folded down to stereo" in player.note
    seg = player.data[FS // 2 : FS // 2 + FS].astype(np.float64)  # one second: whole cycles
    k = np.arange(FS) / FS

    def level(side: int, freq: float) -> float:
        return 2 * abs(np.sum(seg[:, side] * np.exp(-2j * np.pi * freq * k))) / FS / amp

    expected = {  # (left, right) gain of each source channel
        "L": (1, 0),
        "R": (0, 1),
        "C": (0.7071, 0.7071),
        "LFE": (0, 0),
        "Ls": (0.7071, 0),
        "Rs": (0, 0.7071),
    }
    for name, freq in tones.items():
        got = (level(0, freq), level(1, freq))
        assert got == pytest.approx(expected[name], abs=0.01), name


@needs("ZaMaximX2")
def test_dry_and_vst3_limiter_paths_align_to_the_sample():
    from earmark.engine.chains import ChainSpec, PluginSpec, build_chain

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((FS * 2, 2)) * 0.05).astype(np.float32)  # far below the ceiling
    spec = ChainSpec(
        name="limiter",
        plugins=(PluginSpec.vst3(ZAM["ZaMaximX2"], threshold_db=0.0, output_ceiling_db=0.0),),
    )
    chain = build_chain(spec, FS, 2)
    lag = chain.latency_samples
    assert lag == 480  # ZaMaximX2's lookahead, as it reports it
    engine = Engine(
        FS,
        [Path("dry", Player(x, "x")), Path("limited", Player(x, "x"), chain)],
        loudness_match=False,
        max_block=1024,
    )
    out_dry = render(engine, 1, 64)
    engine.post("select", "B")
    render(engine, 0.1, 64)
    out_lim = render(engine, 0.5, 64)
    start = int(1.1 * FS)
    np.testing.assert_allclose(out_dry[lag:], x[: FS - lag], atol=1e-6)
    np.testing.assert_allclose(out_lim, x[start - lag : start - lag + len(out_lim)], atol=1e-5)


@needs("ZamEQ2")
def test_a_chain_that_silences_its_own_nan_shows_the_path_as_muted():
    # ZamEQ2 really outputs NaN; the Chain silences it before the engine sees it,
    # and the engine's state must still report the path as muted.
    from earmark.engine.chains import ChainSpec, PluginSpec, build_chain

    chain = build_chain(ChainSpec(name="eq", plugins=(PluginSpec.vst3(ZAM["ZamEQ2"]),)), FS, 2)
    x = sine(-20, 1, dtype=np.float32)
    engine = Engine(FS, [Path("dry", Player(x, "x")), Path("eq", Player(x, "x"), chain)])
    render(engine, 0.5, 64)
    state = engine.state()
    assert state.paths[1].nonfinite_blocks == chain.nonfinite_blocks > 0
    assert state.paths[0].nonfinite_blocks == 0


def _stereo_noise(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((int(seconds * FS), 2))).astype(np.float32)


def test_meter_thread_reads_exactly_what_metering_in_the_callback_reads():
    """The live driver meters in a MeterThread fed by the callback: same readings to the bit,
    and a meter reset lands on the frame of the block where the command applied."""
    x = _stereo_noise(6, 1)
    inline = two_paths(x, [pedalboard.Gain(gain_db=-3.0)], loudness_match=False)
    threaded = two_paths(x, [pedalboard.Gain(gain_db=-3.0)], loudness_match=False)

    def paced(engine: Engine, seconds: float) -> None:
        # render() runs far faster than real time: hand over a quarter feed at a time
        # and let the meter thread catch up, as it does at real-time pace.
        for _ in range(int(seconds / 0.25)):
            render(engine, 0.25, 64)
            deadline = time.monotonic() + 5.0
            while any(p._metered < p._fed[0] for p in engine.paths) and not engine.meter_inline:
                assert time.monotonic() < deadline
                time.sleep(0.002)

    meters = MeterThread(threaded, interval_s=0.002)
    meters.start()
    try:
        for engine in (inline, threaded):
            paced(engine, 2.0)
            engine.post("reset_meters")
            paced(engine, 3.0)
    finally:
        meters.stop()
    assert threaded.meter_inline and threaded.meter_skipped_frames == 0
    for a, b in zip(inline.paths, threaded.paths, strict=True):
        ra, rb = a.bank.readings(), b.bank.readings()
        assert b.bank.frames == 3 * FS  # metered since the reset, no frame lost or repeated
        assert rb.integrated_lufs == ra.integrated_lufs
        assert rb.true_peak_dbtp == ra.true_peak_dbtp
        assert rb.loudness_range_lu == ra.loudness_range_lu


def test_a_meter_thread_a_whole_feed_behind_skips_and_counts_the_gap():
    """Fault caused for real: the meter thread is simply not run while 3 s stream through a
    1 s feed. The meters must not read frames being overwritten; the gap is counted."""
    x = _stereo_noise(4, 2)
    engine = two_paths(x, [pedalboard.Gain(gain_db=0.0)], loudness_match=False)
    engine.meter_inline = False
    render(engine, 3.0, 64)
    engine.meter_pending()
    feed = engine.paths[0]._feed.shape[0]
    frames = engine.paths[0].bank.frames
    assert frames == feed // 2
    assert engine.meter_skipped_frames == 2 * (3 * FS - feed // 2)  # both paths


_FIRST_CALLBACK = """
import sys
import numpy as np
import pedalboard
sys.path.insert(0, sys.argv[2])
from boards import Board
from earmark.engine import block
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import LiveInput, Player
if sys.argv[1] == "cold":
    block.warm_up = lambda: None  # what the engine did before it warmed its stages
x = np.zeros((4800, 2), dtype=np.float32)
engine = Engine(48000, [
    Path("live", LiveInput((0, 1))),
    Path("file", Player(x, "x"), Board([pedalboard.Gain(6.0)])),
])
def loaded():
    return sum(len(getattr(block, n).signatures) for n in dir(block) if hasattr(getattr(block, n), "signatures"))
before = loaded()
indata = np.zeros((64, 2), dtype=np.float32)
out = np.zeros((64, 2), dtype=np.float32)
engine.process(indata, out, 64)  # meters in the callback
engine.meter_inline = False
engine.process(indata, out, 64)  # meters fed to the meter thread (streaming)
print(loaded() - before)
"""


@pytest.mark.parametrize(("mode", "expected"), [("warm", 0), ("cold", 3)])  # start, finish, end
def test_the_first_callback_loads_no_kernel_code(mode, expected):
    # Kernels load their machine code (with the GIL) on their first call with a type;
    # numba's signatures count the loads, in a fresh process for a clean count.
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _FIRST_CALLBACK, mode, str(Path_(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    if expected:
        assert int(done.stdout) >= expected  # the check sees loads when they happen
    else:
        assert int(done.stdout) == 0
