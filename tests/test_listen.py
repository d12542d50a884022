"""Blind listening (`earmark listen`): the statistics, the staircase, the prepared versions,
the hidden truth played by the real engine, and the command on a real JACK server with
every answer stored at once (it survives kill -9)."""

from __future__ import annotations

import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from earmark.engine.demo import demo_mix
from earmark.engine.engine import Engine, Path
from earmark.engine.sources import Player
from earmark.live import listen
from earmark.meters.bank import integrated_lufs

from clirun import earmark

FS = 48000


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    return demo_mix(14.0, FS).astype(np.float32)


# -- statistics and the staircase ---------------------------------------------------------------


def test_the_p_value_is_the_exact_binomial_tail():
    # 12 of 16: (C(16,12) + C(16,13) + ... + C(16,16)) / 2^16 = 2517 / 65536.
    assert listen.binomial_p(12, 16) == pytest.approx(2517 / 65536, rel=1e-12)
    assert listen.binomial_p(16, 16) == pytest.approx(1 / 65536, rel=1e-12)
    assert listen.binomial_p(8, 16) == pytest.approx(39203 / 65536, rel=1e-12)
    assert listen.binomial_p(0, 5) == 1.0 and listen.binomial_p(0, 0) == 1.0


def _listener(threshold: float, rng: random.Random):
    """A LISTENER MODEL (not a person): a Weibull psychometric function for a two-choice
    task, right 70.7 % of the time at ``threshold``, slope 3, guessing (50 %) far below it."""
    k = -math.log(1.0 - 2.0 * (0.7071 - 0.5))

    def answers_right(amount: float) -> bool:
        p = 0.5 + 0.5 * (1.0 - math.exp(-k * (amount / threshold) ** 3.0))
        return rng.random() < p

    return answers_right


@pytest.mark.parametrize("true_threshold", [0.5, 1.0, 2.5])
def test_the_staircase_converges_on_a_simulated_listeners_threshold(true_threshold):
    estimates = []
    for seed in range(100):
        right = _listener(true_threshold, random.Random(seed))
        stairs = listen.Staircase(listen.CHANGES["shelf"].levels)
        while not stairs.done:
            stairs.record(right(stairs.amount))
        value, relation, _ = stairs.threshold()
        assert relation == "=" and stairs.trials <= 48
        estimates.append(value)
    e = np.array(estimates)
    # Two-down one-up converges on the 70.7 % point (Levitt 1971): the model's threshold.
    assert np.median(e) == pytest.approx(true_threshold, rel=0.15)
    assert np.mean(np.abs(np.log(e / true_threshold)) < math.log(1.5)) >= 0.8


def test_the_staircase_says_when_the_ladder_ends_first():
    always = listen.Staircase((4.0, 2.0, 1.0))
    while not always.done:
        always.record(True)
    assert always.threshold()[:2] == (1.0, "<=")  # heard even the smallest: an upper bound
    never = listen.Staircase((4.0, 2.0, 1.0))
    while not never.done:
        never.record(False)
    assert never.threshold()[:2] == (4.0, ">")  # not even the largest: a lower bound


# -- the prepared versions ------------------------------------------------------------------------


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x.mean(axis=1))) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / FS)
    return 10.0 * math.log10(float(spec[(f >= lo) & (f < hi)].sum()))


def test_shelf_versions_are_matched_and_measure_as_their_shelf(mix):
    m = listen.prepare_training(mix, FS, listen.CHANGES["shelf"], seconds=8.0)
    ref = m.matched_lu[0]
    # Every version plays at the reference's loudness (measured, BS.1770) ...
    assert all(abs(v - ref) < 0.05 for v in m.matched_lu)
    # ... with the same headroom for all: no version can give itself away by clipping.
    assert max(float(np.max(np.abs(a))) for a in m.audio) <= 10 ** (-1.0 / 20) + 1e-6
    for i, amount in enumerate(listen.CHANGES["shelf"].levels):
        if amount not in (6.0, 1.0):
            continue
        y = m.audio[1 + i]
        tilt = (_band_db(y, 10000, 16000) - _band_db(y, 100, 500)) - (
            _band_db(m.audio[0], 10000, 16000) - _band_db(m.audio[0], 100, 500)
        )
        assert tilt == pytest.approx(amount, abs=0.3)  # the shelf, measured on the music


def test_compression_versions_reduce_by_the_amount_measured(mix):
    m = listen.prepare_training(mix, FS, listen.CHANGES["compression"], seconds=4.0)
    levels = listen.CHANGES["compression"].levels
    assert m.gain_reduction_db[0] is None
    for amount, gr in zip(levels, m.gain_reduction_db[1:], strict=True):
        assert gr == pytest.approx(amount, abs=listen.GR_TOLERANCE_DB)
    assert all(abs(v - m.matched_lu[0]) < 0.05 for v in m.matched_lu)


def test_level_versions_keep_their_level(mix):
    m = listen.prepare_training(mix, FS, listen.CHANGES["level"], seconds=8.0)
    for amount, lufs in zip(listen.CHANGES["level"].levels, m.matched_lu[1:], strict=True):
        assert lufs - m.matched_lu[0] == pytest.approx(amount, abs=0.02)


# -- the hidden truth, played by the engine ----------------------------------------------------


def _play(engine: Engine, seconds: float) -> np.ndarray:
    out = np.zeros((256, 2), dtype=np.float32)
    blocks = []
    for _ in range(int(seconds * FS / 256)):
        engine.process(None, out, 256)
        blocks.append(out.copy())
    return np.concatenate(blocks)


@pytest.mark.parametrize("mode", ["abx", "which"])
def test_each_audition_plays_the_version_the_hidden_truth_says(mix, mode):
    m = listen.prepare_training(mix, FS, listen.CHANGES["level"], seconds=6.0)
    paths = [Path(n, Player(a, n)) for n, a in zip(m.names, m.audio, strict=True)]
    engine = Engine(FS, paths, loudness_match=False, fade_ms=5.0)
    test = listen.BlindTest(mode, len(paths), staircase=listen.Staircase(
        listen.CHANGES["level"].levels), rng=random.Random(4))  # fmt: skip
    ref_lufs = m.matched_lu[0]
    seen = set()
    for _ in range(6):
        for command in test.begin():
            engine.post(*command)
        amount = test.amount
        labels = ("A", "B", "X") if mode == "abx" else ("1", "2")
        heard = {}
        for label in labels:
            for command in test.audition(label):
                engine.post(*command)
            y = _play(engine, 1.2)[int(0.2 * FS) :]  # after the crossfade
            heard[label] = integrated_lufs(y, FS)

        # The processed version is `amount` dB louder: the output says which one played.
        processed = {label: heard[label] - ref_lufs > amount / 2 for label in labels}
        if mode == "abx":
            assert not processed["A"] and processed["B"]
            truth = "B" if processed["X"] else "A"
        else:
            assert processed["1"] != processed["2"]
            truth = "1" if processed["1"] else "2"
        seen.add(truth)
        trial = test.answer(truth)
        assert trial.correct and trial.truth == truth
    assert len(seen) == 2  # both truths came up in six draws (seeded)
    assert test.correct == 6 and test.p_value() == pytest.approx(1 / 64)


# -- the command, on a real JACK server -----------------------------------------------------------


def test_listen_stores_every_answer_and_reports_the_score(jack_server, tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, EARMARK_HOME=str(home))
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    x = demo_mix(10.0, FS)
    sf.write(a, x, FS)
    sf.write(b, x * 0.5, FS)  # 6 dB down: matched away, the level hidden
    proc = earmark(
        "listen", str(a), str(b), "--trials", "4", "--seconds", "5",
        env=env, input="ax1bx2x1x2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "stream open" in proc.stderr and "null sink" not in proc.stderr  # JACK
    db = sqlite3.connect(home / "earmark.sqlite")
    test = db.execute(
        "SELECT mode, change, trials, correct, p_value, finished FROM listening_tests"
    ).fetchall()
    assert len(test) == 1
    mode, change, n, k, p, finished = test[0]
    assert (mode, change, n) == ("abx", "files", 4) and finished is not None
    rows = db.execute("SELECT answer, truth, correct FROM listening_trials ORDER BY n").fetchall()
    assert [r[0] for r in rows] == ["A", "B", "A", "B"]
    assert k == sum(r[0] == r[1] for r in rows) == sum(r[2] for r in rows)
    assert p == pytest.approx(listen.binomial_p(k, 4))
    assert f"4 trials, {k} correct, p = {listen.binomial_p(k, 4):.3g}" in proc.stdout


def test_a_killed_test_keeps_every_answer_it_had(jack_server, tmp_path):
    home = tmp_path / "home"
    env = dict(os.environ, EARMARK_HOME=str(home), COLUMNS="200")
    song = tmp_path / "song.wav"
    sf.write(song, demo_mix(10.0, FS), FS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "earmark", "listen", str(song), "--change", "level",
         "--seconds", "5"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    db_path = home / "earmark.sqlite"

    def stored() -> int:
        if not db_path.exists():
            return 0
        with sqlite3.connect(db_path) as db:
            try:
                return db.execute("SELECT count(*) FROM listening_trials").fetchone()[0]
            except sqlite3.OperationalError:  # the tables are being created
                return 0

    try:
        for n in range(1, 4):
            proc.stdin.write(b"ab1")
            proc.stdin.flush()
            t0 = time.monotonic()
            while stored() < n and time.monotonic() - t0 < 60:
                time.sleep(0.05)
            assert stored() == n
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT n, amount, answer FROM listening_trials ORDER BY n").fetchall()
        test = db.execute("SELECT trials, finished FROM listening_tests").fetchone()
    assert [r[0] for r in rows] == [1, 2, 3] and all(r[2] == "1" for r in rows)
    assert rows[0][1] == listen.CHANGES["level"].levels[0]  # the staircase starts easy
    assert test == (3, None)  # every answer kept; never finished


def test_listen_says_what_is_wrong_in_one_line(tmp_path):
    proc = earmark("listen", str(tmp_path / "missing.wav"), "--change", "shelf")
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1, proc.stderr
    assert "missing.wav" in proc.stderr
    proc = earmark("listen", str(tmp_path / "one.wav"))
    assert proc.returncode == 2 and "--change" in proc.stderr
    from earmark.cli.listen import CHANGE_NAMES

    assert tuple(sorted(listen.CHANGES)) == CHANGE_NAMES


def test_history_shows_the_thresholds_over_time_and_their_drift(tmp_path):
    import json

    from earmark.store.listening import ListeningLog

    home = tmp_path / "home"
    db = home / "earmark.sqlite"
    home.mkdir(mode=0o700)
    for threshold, relation in ((0.7, "="), (0.25, "<="), (1.5, "=")):
        log = ListeningLog(db, mode="which", change="shelf", unit="dB", material="song.wav",
                           adaptive=True)  # fmt: skip
        for n, correct in enumerate((True, True, False), start=1):
            trial = listen.Trial(n, 6.0, "1", "1" if correct else "2", correct, 1.5, time.time())
            log.trial(trial, sum((True, True, False)[:n]), 0.5)
        log.finish(threshold, relation)
        log.close()
    env = dict(os.environ, EARMARK_HOME=str(home))
    proc = earmark("history", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [t["threshold"] for t in doc["listening"]] == [0.7, 0.25, 1.5]
    assert [t["trials"] for t in doc["listening"]] == [3, 3, 3]
    # The drift is between found thresholds only (a bound is not a measurement).
    assert doc["listening_drift"] == {"shelf": pytest.approx(0.8)}
    proc = earmark("history", env=env)
    assert "<= 0.25 dB" in proc.stdout and "shelf +0.80 dB (hearing less)" in proc.stdout
