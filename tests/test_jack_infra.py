"""The real audio server the live tests stand on: JACK's dummy backend via PortAudio.

A JACK server (tests/conftest.py, ``jack_server``) runs at 48 kHz with 64-frame
periods. These tests pin down what the engine's tests rely on: PortAudio sees
it, a stream's outputs looped back to its inputs return exactly what was sent a
whole number of periods later, and a plain copy callback runs at real-time pace
with few status flags (the dummy driver on a shared 2-core VM misses a deadline
now and then, so the count is reported, and only bounded).
"""

from __future__ import annotations

import re
import time

import numpy as np
import sounddevice as sd

SINE_HZ = 1000.0
SINE_DBFS = -20.0  # peak; the RMS is 3.01 dB lower
LEVEL_TOLERANCE_DB = 0.05


def _rms_db(x: np.ndarray) -> float:
    return 10.0 * np.log10(np.mean(np.square(x, dtype=np.float64)))


def _wait_until(done, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if done():
            return True
        time.sleep(0.02)
    return done()


def test_portaudio_lists_the_jack_host_api_with_a_duplex_device(jack_server):
    apis = [api["name"] for api in sd.query_hostapis()]
    assert jack_server.hostapi in apis

    dev = sd.query_devices(jack_server.device())
    assert dev["max_input_channels"] >= 2
    assert dev["max_output_channels"] >= 2
    assert dev["default_samplerate"] == jack_server.sample_rate
    assert dev["name"] == "system"


def test_loopback_returns_the_sent_sine_bit_for_bit_a_whole_number_of_periods_later(
    jack_server,
):
    fs, period = jack_server.sample_rate, jack_server.period
    # A noise burst to find the delay by cross-correlation (a sine alone repeats
    # every 48 samples), then the sine whose level is measured.
    rng = np.random.default_rng(3)
    gap = np.zeros(fs // 50, np.float32)
    burst = (0.1 * rng.standard_normal(fs // 10)).astype(np.float32)
    t = np.arange(2 * fs) / fs
    sine = (10.0 ** (SINE_DBFS / 20.0) * np.sin(2.0 * np.pi * SINE_HZ * t)).astype(np.float32)
    signal = np.concatenate([gap, burst, gap, sine])
    sine_start = len(gap) + len(burst) + len(gap)

    n = len(signal) + 16 * period  # room for the loop's delay
    sent = np.zeros((n, 2), np.float32)
    sent[: len(signal)] = signal[:, None]
    received = np.zeros_like(sent)
    pos = np.zeros(1, np.int64)  # frames played and recorded so far
    armed = np.zeros(1, np.bool_)  # set once the ports are wired

    def callback(indata, outdata, frames, _time, _status):
        p = int(pos[0])
        if not armed[0] or p >= n:
            outdata.fill(0.0)
            return
        k = min(frames, n - p)
        outdata[:k] = sent[p : p + k]
        outdata[k:] = 0.0
        received[p : p + k] = indata[:k]
        pos[0] = p + k

    with sd.Stream(
        samplerate=fs,
        blocksize=period,
        channels=2,
        dtype="float32",
        device=jack_server.device(),
        callback=callback,
    ) as stream:
        pairs = jack_server.loopback("PortAudio")
        reported_latency_s = stream.latency[0] + stream.latency[1]
        armed[0] = True
        finished = _wait_until(lambda: pos[0] >= n, timeout_s=10.0)
    assert finished, f"the stream delivered {int(pos[0])} of {n} frames in 10 s"
    # PortAudio numbers its ports on from the streams this process opened before.
    assert len(pairs) == 2
    for out, in_ in pairs:
        assert re.fullmatch(r"PortAudio:out_\d+", out)
        assert in_ == out.replace(":out_", ":in_")

    lags = []
    for ch in range(2):
        spectrum = np.fft.rfft(received[:, ch], 2 * n) * np.conj(np.fft.rfft(sent[:, ch], 2 * n))
        lags.append(int(np.argmax(np.fft.irfft(spectrum)[:n])))
    lag = lags[0]
    jack_server.note(
        f"loopback delay: {lag} samples = {lag / period:g} periods = {1e3 * lag / fs:.2f} ms "
        f"(stream.latency in+out: {reported_latency_s * fs:.0f} samples)"
    )
    assert lags[0] == lags[1]
    assert lag % period == 0, f"delay {lag} samples is not a whole number of {period}-frame periods"
    assert 0 < lag <= 8 * period

    edge = fs // 10  # leave out the onset and the end
    a, b = sine_start + edge, sine_start + len(sine) - edge
    sent_db = _rms_db(sent[a:b])
    received_db = _rms_db(received[a + lag : b + lag])
    assert abs(received_db - sent_db) <= LEVEL_TOLERANCE_DB, (sent_db, received_db)
    assert abs(sent_db - (SINE_DBFS - 10.0 * np.log10(2.0))) < 0.01  # the test's own signal
    # JACK moves float32 samples untouched.
    assert np.array_equal(received[lag : lag + len(signal)], sent[: len(signal)])


def test_plain_copy_callback_runs_in_real_time_with_rare_status_flags(jack_server):
    fs, period = jack_server.sample_rate, jack_server.period
    seconds = 2.0
    calls = np.zeros(1, np.int64)
    flagged = np.zeros(1, np.int64)
    underflows = np.zeros(1, np.int64)
    overflows = np.zeros(1, np.int64)

    def callback(indata, outdata, _frames, _time, status):
        outdata[:] = indata
        calls[0] += 1
        if status:
            flagged[0] += 1
            underflows[0] += status.output_underflow
            overflows[0] += status.input_overflow

    with sd.Stream(
        samplerate=fs,
        blocksize=period,
        channels=2,
        dtype="float32",
        device=jack_server.device(),
        callback=callback,
    ):
        time.sleep(seconds)

    expected = seconds * fs / period
    jack_server.note(
        f"copy callback: {int(flagged[0])} of {int(calls[0])} callbacks flagged "
        f"({int(underflows[0])} output underflow, {int(overflows[0])} input overflow) in {seconds:g} s"
    )
    assert calls[0] >= 0.8 * expected, (
        f"{int(calls[0])} callbacks in {seconds} s, expected ~{expected:.0f}"
    )
    assert flagged[0] <= 0.05 * calls[0], f"{int(flagged[0])} of {int(calls[0])} callbacks flagged"
