"""Nothing a chain does reaches the speakers above the output ceiling, and no meter
reads garbage (issue 16, item 1).

With 1- and 2-frame blocks pedalboard returned (frames, 0) arrays for a latent
plugin's first outputs, the engine's kernels read past them, and values up to
+700 dBFS reached the output while the meters read hundreds of LUFS. Now:

- the engine refuses block sizes outside 16-8192 frames;
- a Chain pads such empty outputs into silence, and counts any other wrong
  plugin output as the plugin failing;
- the engine checks every array a chain returns and guards every path's block
  (NaN/Inf or beyond +40 dBFS: silence), so the meters never see garbage;
- the last stage of the block mutes the output at any sample that is not finite
  or above +6 dBFS, fades back in after a second without one, and says why.

Real plugins cause most of these faults (a latent limiter at 1-2 frame blocks,
pedalboard's Gain at +70 dB or +20 dB); the few that no real plugin causes
through a Chain are small Python processors, each saying so.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pedalboard
import pytest

from earmark.engine import abi, rt
from earmark.engine.chains import build_chain, parse_chain
from earmark.engine.drivers import SoundDeviceDriver, render
from earmark.engine.engine import OUTPUT_CEILING_DBFS, Engine, Path
from earmark.engine.isolated import IsolatedChain, _run_block
from earmark.engine.sources import LiveInput, Player

from boards import Board
from synth import sine

FS = 48000
BLOCK = 64
CEILING = 10.0 ** (OUTPUT_CEILING_DBFS / 20.0)
LIMITER = parse_chain(
    'name = "limiter"\n[[plugin]]\nbuiltin = "BrickwallLimiter"\n'
    "ceiling_db = -1.0\ntrue_peak = true\nlookahead_ms = 5.0\n"
)


def gain_spec(db: float):
    return parse_chain(f'name = "gain"\n[[plugin]]\nbuiltin = "Gain"\ngain_db = {db}\n')


def peak_dbfs(x: np.ndarray) -> float:
    peak = float(np.abs(x).max())
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


# -- block sizes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block": 1}, "block size must be 16-8192 frames, got 1"),
        ({"block": 2}, "block size must be 16-8192 frames, got 2"),
        ({"block": -64}, "block size must be 16-8192 frames, got -64"),
        ({"max_block": 8}, r"largest block \(max_block\) must be 16-8192 frames, got 8"),
        ({"max_block": 1 << 20}, "must be 16-8192 frames, got 1048576"),
        ({"block": 2048, "max_block": 1024}, "block size must be 16-1024 frames"),
    ],
)
def test_the_engine_refuses_a_block_size_outside_its_range_naming_value_and_range(kwargs, message):
    tone = sine(-20, 0.1, dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        Engine(FS, [Path("tone", Player(tone, "t"))], **kwargs)


def test_an_isolated_chain_refuses_a_one_frame_block_before_starting_a_host():
    with pytest.raises(ValueError, match="block size must be 16-8192 frames, got 1"):
        IsolatedChain(gain_spec(0.0), FS, 2, block=1)


# -- what a chain returns ----------------------------------------------------------------


@pytest.mark.parametrize("frames", [1, 2])
def test_a_latent_chain_at_one_and_two_frame_blocks_returns_whole_stereo_blocks(frames):
    # pedalboard's BrickwallLimiter returns (frames, 0) arrays while its lookahead fills.
    chain = build_chain(LIMITER, FS, 2)
    x = np.full((frames, 2), 0.25, dtype=np.float32)
    shapes = set()
    silent = 0
    for _ in range(600 // frames):
        y = chain.process(x)
        shapes.add((y.shape, y.dtype))
        silent += int(not y.any())
    assert shapes == {((frames, 2), np.dtype(np.float32))}
    assert chain.error_blocks == 0 and chain.nonfinite_blocks == 0
    assert silent > 0  # the lookahead's empty outputs came back as silence
    np.testing.assert_array_equal(y, np.full((frames, 2), 0.25, np.float32))  # then the audio


class EmptyViewOntoGarbage:
    """A fake for a fault no real plugin causes on demand: what pedalboard's (frames, 0)
    arrays were to the engine, with known memory behind them. A real one points at
    whatever the heap holds (+245 to +697 dBFS at the output when measured); this
    view points at 1e19, so the engine reading past it is measurable every time."""

    latency_samples = 0

    def __init__(self) -> None:
        self._garbage = np.full((8192, 2), 1e19, dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        return self._garbage[: block.shape[0], :0]


def test_an_empty_array_from_a_chain_never_reaches_the_output_or_the_meters():
    tone = sine(-20, 2, dtype=np.float32)
    engine = Engine(
        FS,
        [
            Path("garbage", Player(tone, "t"), EmptyViewOntoGarbage()),
            Path("dry", Player(tone, "t")),
        ],
        a=0,
        b=1,
        loudness_match=False,
    )
    out = render(engine, 1.0, BLOCK)
    state = engine.state()
    assert np.abs(out).max() == 0.0  # before: 1e19 (+380 dBFS) at the output
    assert state.paths[0].nonfinite_blocks == FS // BLOCK
    assert state.paths[0].readings.true_peak_dbtp is None  # the meters saw silence
    assert state.paths[1].readings.integrated_lufs == pytest.approx(-20.0, abs=0.05)
    assert state.output_trips == 0  # caught at the path, before the mix
    lines = engine.poll_status()
    assert lines == [
        "path 1 (garbage) muted: its chain returned a float32 array shaped (64, 0), "
        "not a (frames, 2) float32 array (750 blocks so far)"
    ]
    assert engine.poll_status() == []  # one line, not one per poll


def test_a_pedalboard_limiter_at_two_frame_blocks_is_caught_by_the_engine_too():
    # A raw pedalboard (not a Chain, which pads) returns (0, 2) and (frames, 0) arrays
    # while its lookahead fills: the engine mutes those blocks, then plays the audio.
    board = Board([pedalboard.BrickwallLimiter(ceiling_db=-1.0, lookahead_ms=5.0)])
    tone = sine(-20, 2, dtype=np.float32)
    engine = Engine(FS, [Path("limiter", Player(tone, "t"), board)], b=0, loudness_match=False)
    board.process(np.zeros((BLOCK, 2), np.float32))  # pedalboard needs a non-square first block
    out = render(engine, 1.0, 2)
    state = engine.state()
    assert 0 < state.paths[0].nonfinite_blocks < 400  # the lookahead's blocks, no more
    assert np.isfinite(out).all() and peak_dbfs(out) == pytest.approx(-20.0, abs=0.01)
    assert state.paths[0].readings.true_peak_dbtp < -19.0


def read_only(y: np.ndarray) -> np.ndarray:
    y.flags.writeable = False
    return y


class WrongReturn:
    """A fake for faults no real plugin causes through a Chain (which checks its plugins'
    outputs): a Processor that returns ``make(block)`` or raises what it returns."""

    latency_samples = 0

    def __init__(self, make) -> None:
        self.make = make

    def process(self, block: np.ndarray) -> np.ndarray:
        y = self.make(block)
        if isinstance(y, Exception):
            raise y
        return y


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda b: (b * 8).astype(np.float64), "returned a float64 array shaped (64, 2)"),
        (lambda b: (b * 8)[:, :1], "returned a non-C-contiguous float32 array shaped (64, 1)"),
        (lambda b: np.ascontiguousarray(b[:, :1]) * 8, "returned a float32 array shaped (64, 1)"),
        (lambda b: np.tile(b, (2, 1)) * 8, "returned a float32 array shaped (128, 2)"),
        (lambda b: np.asfortranarray(b * 8), "a non-C-contiguous float32 array shaped (64, 2)"),
        (lambda b: read_only(b * 8), "returned a read-only float32 array shaped (64, 2)"),
        (lambda b: (b * 8).tolist(), "returned a list, not a (frames, 2)"),
        (lambda b: None, "returned a NoneType"),
        (lambda b: ValueError("plugin state lost"), "raised ValueError: plugin state lost"),
    ],
    ids=[
        "float64",
        "one-column view",
        "one column",
        "too long",
        "fortran",
        "read-only",
        "list",
        "none",
        "raises",
    ],
)
def test_a_wrong_array_from_a_chain_mutes_its_path_and_says_what_came_back(make, said):
    tone = sine(-20, 1, dtype=np.float32)
    engine = Engine(
        FS, [Path("wrong", Player(tone, "t"), WrongReturn(make))], b=0, loudness_match=False
    )
    out = render(engine, 0.5, BLOCK)
    state = engine.state()
    assert np.abs(out).max() == 0.0
    assert state.paths[0].nonfinite_blocks == FS // 2 // BLOCK
    assert state.paths[0].readings.true_peak_dbtp is None
    (line,) = engine.poll_status()
    assert line.startswith("path 1 (wrong) muted: its chain ") and said in line, line


def test_a_real_plugin_at_absurd_levels_is_muted_before_the_meters_and_the_output():
    # pedalboard's Gain twice at +40 dB on a -20 dBFS tone: +60 dBFS, finite but no audio.
    tone = sine(-20, 2, dtype=np.float32)
    spec = parse_chain(
        'name = "gain"\n[[plugin]]\nbuiltin = "Gain"\ngain_db = 40.0\n'
        '[[plugin]]\nbuiltin = "Gain"\ngain_db = 40.0\n'
    )
    chain = build_chain(spec, FS, 2)
    engine = Engine(
        FS,
        [Path("absurd", Player(tone, "t"), chain), Path("dry", Player(tone, "t"))],
        a=0,
        b=1,
        loudness_match=False,
    )
    out = render(engine, 1.0, BLOCK)
    state = engine.state()
    assert np.abs(out).max() == 0.0  # before: +60 dBFS at the output
    assert state.paths[0].readings.true_peak_dbtp is None  # before: +60 dBTP and LUFS
    assert state.paths[0].readings.integrated_lufs is None
    assert state.paths[0].nonfinite_blocks == FS // BLOCK
    assert engine.poll_status()[0] == (
        "path 1 (absurd) muted: it produced samples beyond +40 dBFS (garbage) (750 blocks so far)"
    )


# -- the output guard ---------------------------------------------------------------------


def hot_burst() -> tuple[np.ndarray, int, int]:
    """-6 dBFS, then +12 dBFS from frame 49000 for half a second, then -6 dBFS again:
    the signal and its first and last samples above the +6 dBFS ceiling."""
    x = sine(-6, 4, dtype=np.float32)
    start, end = 49000, 49000 + FS // 2
    x[start:end] *= np.float32(10.0 ** (18.0 / 20.0))
    over = np.flatnonzero(np.abs(x[:, 0]) > CEILING)
    return x, int(over[0]), int(over[-1])


def test_the_output_guard_mutes_from_the_first_sample_over_plus_6_dbfs_with_a_ramp():
    x, first, last = hot_burst()
    engine = Engine(FS, [Path("hot", Player(x, "t"))], b=0, loudness_match=False)
    out = render(engine, 3.5, BLOCK)
    state = engine.state()
    ramp = min(first % BLOCK, round(rt.OUTPUT_RAMP_S * FS))
    assert ramp > 0  # the offending sample is mid-block: there is something to fade
    # Untouched up to the ramp, fading to it, silent from it on.
    np.testing.assert_array_equal(out[: first - ramp], x[: first - ramp])
    fade = (first - np.arange(first - ramp, first)) / (ramp + 1)
    np.testing.assert_allclose(
        out[first - ramp : first], x[first - ramp : first] * fade[:, None], rtol=1e-6
    )
    # Silent until a second passed without an offending sample (counted in whole
    # blocks after the last one's), then back in over the ramp.
    back = (last // BLOCK + 1 + math.ceil(rt.OUTPUT_HOLD_S * FS / BLOCK)) * BLOCK
    assert np.abs(out[first:back]).max() == 0.0
    steps = round(rt.OUTPUT_RAMP_S * FS)
    gain = np.minimum(1.0, np.arange(1, steps + 1) / steps)
    np.testing.assert_allclose(out[back : back + steps], x[back : back + steps] * gain[:, None])
    np.testing.assert_array_equal(out[back + steps :], x[back + steps : len(out)])
    assert peak_dbfs(out) == pytest.approx(-6.0, abs=0.01)  # nothing over ever played
    assert state.paths[0].readings.sample_peak_dbfs == pytest.approx(12.0, abs=0.01)  # metered
    assert (state.output_trips, state.output_muted) == (1, False)
    expected = (
        "output muted: a sample at +12.0 dBFS from path 1 (hot), above the +6 dBFS output "
        "ceiling; it plays again after 1 s without one"
    )
    assert state.output_status == expected
    assert engine.poll_status() == [expected]


def test_a_chain_over_the_ceiling_cannot_bypass_the_guard_even_inaudible_in_a_crossfade():
    # pedalboard's Gain at +20 dB on a -12 dBFS tone: +8 dBFS on A; B is the dry tone.
    tone = sine(-12, 3, dtype=np.float32)
    chain = build_chain(gain_spec(20.0), FS, 2)
    engine = Engine(
        FS,
        [Path("dry", Player(tone, "t")), Path("+20 dB", Player(tone, "t"), chain)],
        a=0,
        b=1,
        loudness_match=False,
    )
    clean = render(engine, 0.5, BLOCK)
    engine.post("select", "B")
    muted = render(engine, 0.5, BLOCK)
    state = engine.state()
    assert peak_dbfs(clean) == pytest.approx(-12.0, abs=0.01)
    assert state.output_muted and state.output_trips == 1
    assert peak_dbfs(muted) < OUTPUT_CEILING_DBFS  # the crossfade's start, then silence
    assert np.abs(muted[FS // 10 :]).max() == 0.0
    assert "dBFS from path 2 (+20 dB), above the +6 dBFS output ceiling" in state.output_status
    engine.post("select", "A")  # back to the clean path: it plays again after the hold
    back = render(engine, 1.5, BLOCK)
    assert np.abs(back[: FS // 2]).max() == 0.0
    assert peak_dbfs(back[-FS // 4 :]) == pytest.approx(-12.0, abs=0.01)
    assert not engine.state().output_muted


def test_a_non_finite_sample_at_the_last_stage_mutes_the_whole_block_and_is_named():
    """The guard kernel itself (both callbacks run it): paths are guarded before the mix,
    so NaN reaches the last stage only through a broken gain, which nothing can cause."""
    og = rt.new_guard_state(FS)
    a = np.full((BLOCK, 2), 0.5, dtype=np.float32)
    b = a.copy()
    b[10, 1] = np.nan
    out = b.copy()
    assert rt.guard_output(out, BLOCK, a, b, 0, 3, True, og) == 1
    assert np.abs(out[10:]).max() == 0.0 and not np.isnan(out).any()
    assert out[0, 0] == pytest.approx(0.5 * 10 / 11)  # 10 frames to fade over
    assert og[abi.O_CAUSE] == abi.FAULT_NONFINITE and og[abi.O_SOURCE] == 3  # B, audible
    out = a * 4  # +12 dBFS, still muted: no new trip
    assert rt.guard_output(out, BLOCK, a, a, 0, 3, False, og) == 0
    assert np.abs(out).max() == 0.0 and og[abi.O_TRIPS] == 1


def test_a_nan_monitor_trim_mutes_instead_of_poisoning_the_mix():
    tone = sine(-20, 1, dtype=np.float32)
    engine = Engine(FS, [Path("tone", Player(tone, "t"))], b=0, loudness_match=False)
    engine.post("monitor", {"trim_db": float("nan")})
    out = render(engine, 0.2, BLOCK)
    assert np.isfinite(out).all() and np.abs(out[-FS // 20 :]).max() < 1e-4  # muted
    engine.post("monitor", {"trim_db": 0.0})
    out = render(engine, 0.4, BLOCK)
    assert peak_dbfs(out[-FS // 10 :]) == pytest.approx(-20.0, abs=0.01)  # and recovers
    engine.post("monitor", {"trim_db": 1e9})  # would overflow 10 ** (dB / 20)
    out = render(engine, 0.2, BLOCK)
    assert np.abs(out[FS // 10 :]).max() == 0.0 and engine.state().output_muted


# -- the isolated host ----------------------------------------------------------------------


def test_an_isolated_host_outlives_a_latent_chain_fed_one_frame_blocks():
    # Before: the host assigned the limiter's (1, 0) output into its (1, 2) slot and died.
    iso = IsolatedChain(LIMITER, FS, 2, block=BLOCK)
    try:
        x = np.full((1, 2), 0.25, dtype=np.float32)
        for _ in range(600):
            iso.process(x)
            time.sleep(0.0002)
        deadline = time.monotonic() + 5.0
        while iso.last_done_block < 599 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert iso.last_done_block == 599  # the host ran every block
        assert iso.alive and iso.poll() is None
        assert iso.error_blocks == iso.late_blocks  # no block failed in the host
        assert iso._y[599 % abi.ISO_SLOTS, :1].tolist() == [[0.25, 0.25]]  # past the lookahead
    finally:
        iso.close()


class HostileChain:
    """A fake for faults no real plugin causes through a Chain (which pads and checks its
    plugins' outputs): what a broken chain could hand the isolated host's loop."""

    nonfinite_blocks = error_blocks = 0

    def __init__(self, result) -> None:
        self.result = result

    def process(self, block: np.ndarray):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result(block)


@pytest.mark.parametrize(
    "result",
    [
        lambda b: b[:, :0],
        lambda b: b.astype(np.float64),
        lambda b: b[:1],
        lambda b: "not audio",
        RuntimeError("plugin gone"),
    ],
    ids=["empty", "float64", "short", "str", "raises"],
)
def test_the_isolated_host_writes_silence_for_what_a_faulty_chain_returns(result):
    x = np.full((BLOCK, 2), 0.5, dtype=np.float32)
    y = np.full((BLOCK, 2), 7.0, dtype=np.float32)  # stale audio in the ring slot
    assert _run_block(HostileChain(result), x, y) is False
    assert not y.any()
    assert _run_block(HostileChain(lambda b: b * 2), x, y) is True
    assert (y == 1.0).all()


# -- on a real JACK server ---------------------------------------------------------------


def test_on_jack_a_path_over_the_ceiling_mutes_the_output_and_the_session_says_so(jack_server):
    """The default set-up (isolated chain, native callback) on the JACK dummy server,
    the output looped back into a live-input path: an isolated +20 dB Gain puts A at
    +8 dBFS; nothing over the ceiling comes back, the session prints why, and after
    switching to the clean path the output plays it again."""
    from earmark.live.session import LiveSession

    tone = sine(-12, 60, dtype=np.float32)
    chain = IsolatedChain(gain_spec(20.0), FS, 2, block=BLOCK)
    paths = [
        Path("+20 dB (isolated)", Player(tone, "tone"), chain),
        Path("dry", Player(tone, "tone")),
        Path("input", LiveInput((0, 1))),
    ]
    engine = Engine(FS, paths, a=1, b=0, loudness_match=False, max_block=1024, block=BLOCK)
    driver = SoundDeviceDriver(engine, device=jack_server.device(), blocksize=BLOCK)
    lines: list[str] = []
    session = LiveSession(engine, driver, say=lines.append)

    def loopback() -> tuple[float | None, float | None]:
        """(sample peak dBFS, integrated LUFS) of what came back, over 1.5 s."""
        engine.post("reset_meters")
        time.sleep(1.5)
        r = engine.state().paths[2].readings
        return r.sample_peak_dbfs, r.integrated_lufs

    try:
        with session:
            jack_server.loopback()
            assert driver.callback_kind == "native"
            time.sleep(0.5)
            dry_peak, dry_lufs = loopback()
            engine.post("select", "B")  # the +8 dBFS path
            t0 = time.monotonic()
            while not any("output muted" in x for x in lines) and time.monotonic() - t0 < 5:
                time.sleep(0.05)
            time.sleep(0.2)
            hot_peak, _ = loopback()
            hot = engine.state()
            engine.post("select", "A")
            time.sleep(rt.OUTPUT_HOLD_S + 0.5)
            back_peak, back_lufs = loopback()
    finally:
        chain.close()
    assert dry_peak == pytest.approx(-12.0, abs=0.05)
    assert hot.output_muted and hot.output_trips == 1
    assert hot.paths[0].readings.sample_peak_dbfs == pytest.approx(8.0, abs=0.05)  # metered
    assert hot_peak is None or hot_peak < -90.0  # silence came back
    said = [x for x in lines if x.startswith("earmark: output muted: a sample at +")]
    assert len(said) == 1
    assert said[0].endswith(
        " dBFS from path 1 (+20 dB (isolated)), above the +6 dBFS output ceiling; "
        "it plays again after 1 s without one"
    )
    assert back_peak == pytest.approx(-12.0, abs=0.05)
    assert back_lufs == pytest.approx(dry_lufs, abs=0.05)
    jack_server.note(
        f"output guard on JACK: path at {hot.paths[0].readings.sample_peak_dbfs:+.1f} dBFS, "
        f"loopback peak while muted {hot_peak}, {hot.output_trips} trip"
    )
