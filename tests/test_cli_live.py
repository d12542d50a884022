"""The live commands end to end, as a user runs them: real processes, a real JACK server."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import soundfile as sf

from clirun import earmark
from synth import sine

ENV = dict(os.environ, COLUMNS="200")


def summary_lufs(stderr: str, name: str) -> float:
    m = re.search(rf"{re.escape(name)}: (-?\d+\.\d) LUFS", stderr)
    assert m, stderr
    return float(m.group(1))


def test_devices_lists_the_jack_device(jack_server):
    proc = earmark("devices")
    assert proc.returncode == 0, proc.stderr
    assert "JACK Audio Connection Kit" in proc.stdout


def test_run_streams_a_reference_through_jack_and_reports_it(jack_server, tmp_path):
    ref = tmp_path / "ref.wav"
    sf.write(ref, sine(-20, 6, 44100), 44100)  # resampled to the stream's 48 kHz
    proc = earmark(
        "run", "--chain", "gentle-master", "--reference", str(ref), "--seconds", "3", "--no-ui"
    )
    assert proc.returncode == 0, proc.stderr
    assert "stream open" in proc.stderr and "null sink" not in proc.stderr  # the JACK device
    assert summary_lufs(proc.stderr, "reference: ref.wav") == pytest.approx(-20.0, abs=0.1)
    blocks = int(re.search(r"stopped after (\d+) blocks", proc.stderr).group(1))
    assert blocks > 48000 / 64  # it really streamed (3 s requested; start-up eats some)


def test_run_folds_a_surround_reference_down_and_says_so(jack_server, tmp_path):
    """A 5.1 master with a -20 dBFS tone in its centre only: the BS.775 fold-down
    puts it at -23 dBFS on both sides, which reads -23.0 LUFS on the stereo path."""
    import numpy as np

    tone = sine(-20, 6, 48000, channels=1)[:, 0]
    surround = np.zeros((len(tone), 6), dtype=np.float32)
    surround[:, 2] = tone  # L R C LFE Ls Rs
    ref = tmp_path / "m51.wav"
    sf.write(ref, surround, 48000, subtype="FLOAT")
    proc = earmark("run", "--reference", str(ref), "--seconds", "3", "--no-ui")
    assert proc.returncode == 0, proc.stderr
    assert "6 channels folded down to stereo (ITU-R BS.775" in proc.stderr
    name = "reference: m51.wav (6-channel fold-down)"
    assert summary_lufs(proc.stderr, name) == pytest.approx(-23.0, abs=0.1)


def test_run_refuses_more_than_two_input_channels():
    proc = earmark("run", "--channels", "1,2,3", "--seconds", "1")
    assert proc.returncode == 2
    assert "live paths are stereo" in proc.stderr and "'1,2,3'" in proc.stderr


def test_demo_without_a_device_runs_into_a_null_sink_in_real_time():
    env = dict(ENV, JACK_DEFAULT_SERVER="earmark-no-such-server")
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "demo", "--seconds", "3", "--no-ui"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "null sink" in proc.stderr
    blocks = int(re.search(r"stopped after (\d+) blocks", proc.stderr).group(1))
    assert blocks == pytest.approx(3 * 48000 / 64, rel=0.1)
    # The AI master is the aggressive master: about -7 LUFS, measured live.
    assert summary_lufs(proc.stderr, "AI master (reference)") == pytest.approx(-7.0, abs=0.7)


def test_run_with_a_malformed_chain_names_file_and_line(tmp_path, jack_server):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[plugin]]\nbuiltin = "Compressor"\nratio = 0.5\n')
    proc = earmark("run", "--chain", str(bad), "--seconds", "1")
    assert proc.returncode == 2
    assert "bad.toml:3" in proc.stderr and "ratio" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_finds_a_chain_saved_in_the_users_folder_and_a_broken_one_is_one_line(tmp_path):
    """`--chain NAME` looks in $EARMARK_HOME/chains (before issue 18 it never did); a
    broken preset there is one line naming its file, line and key, and exit 2."""
    chains = tmp_path / "home" / "chains"
    chains.mkdir(parents=True)
    chains.chmod(0o700)
    (chains / "my-glue.toml").write_text('name = "My glue"\n[[plugin]]\nbuiltin = "Gain"\n')
    (chains / "broken.toml").write_text('[[plugin]]\nbuiltin = "Compressor"\nratio = 0.5\n')
    env = dict(ENV, EARMARK_HOME=str(tmp_path / "home"))
    found = earmark("run", "--chain", "My Glue", "--seconds", "1", "--no-ui", env=env)
    assert found.returncode == 0, found.stderr
    assert "A input -> My Glue" in found.stderr
    broken = earmark("run", "--chain", "broken", "--seconds", "1", "--no-ui", env=env)
    assert broken.returncode == 2
    assert broken.stderr.strip().splitlines()[-1] == (
        "earmark: broken.toml:3: plugin 1 'ratio': must be between 1 and 100, got 0.5"
    )
    assert "Traceback" not in broken.stderr


def test_a_chain_its_host_cannot_load_in_time_is_one_clear_line_and_exit_2(tmp_path):
    # A real timeout: the host is not given the time to build even a built-in chain
    # (a slow plugin does the same to the default 600 s).
    env = dict(ENV, EARMARK_HOST_START_TIMEOUT_S="0.001")
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "run", "--chain", "gentle-master", "--no-ui",
         "--seconds", "1"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "did not load it within 0.001 s" in proc.stderr
    assert "EARMARK_HOST_START_TIMEOUT_S" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_with_an_isolated_chain_measures_what_the_chain_in_process_measures(jack_server):
    runs = {}
    for extra in ((), ("--no-isolate",)):
        proc = earmark("demo", "--seconds", "6", "--no-ui", *extra)
        assert proc.returncode == 0, proc.stderr
        runs[extra] = summary_lufs(proc.stderr, "mix -> gentle-master")
        runs[extra, "callback"] = "native callback" in proc.stderr
        view = re.search(r"\+ chains (\d+\.\d) ms", proc.stdout)  # the view's header
        assert view, proc.stdout
        runs[extra, "chains"] = float(view[1])
    # Same chain, same material: hosted in a child process (the default) it reads the
    # same loudness (a late block from a busy machine would read low; two blocks of
    # slack absorb it), and only then does the machine-code callback run.
    assert runs[()] == pytest.approx(runs[("--no-isolate",)], abs=0.2)
    assert runs[(), "callback"] and not runs[("--no-isolate",), "callback"]
    # What the chains add to the monitoring latency: the host's two blocks more.
    isolated_by_ms = runs[(), "chains"] - runs[("--no-isolate",), "chains"]
    assert isolated_by_ms == pytest.approx(2 * 64 / 48000 * 1e3, abs=0.11)


def offline_table(stdout: str) -> dict[str, list[str]]:
    """The offline demo's table: measure -> its cells (unit dropped)."""
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│")[1:-1]]
        if cells:
            rows[cells[0]] = cells[2:]
    return rows


def test_the_offline_demo_measures_the_chain_and_judges_against_the_profile(tmp_path):
    """Before, --chain and --profile were silently ignored with --offline. A chain of one
    +6 dB gain must read exactly 6 LU above the mix, and the flags be explained against
    the jazz profile."""
    chain = tmp_path / "plus6.toml"
    chain.write_text('[[plugin]]\nbuiltin = "Gain"\ngain_db = 6.0\n')
    proc = earmark(
        "demo", "--offline", "--seconds", "8", "--chain", str(chain), "--profile", "jazz"
    )
    assert proc.returncode == 0, proc.stderr
    rows = offline_table(proc.stdout)
    assert rows["Measure"] == ["Mix", f"Mix -> {chain}", "Aggressive master", "Change"]
    mix, chained, master, change = (float(v) for v in rows["Integrated"])
    assert chained - mix == pytest.approx(6.0, abs=0.05)
    assert change == pytest.approx(master - mix, abs=0.11)  # still the mix against the master
    assert f"Mix -> {chain} (jazz profile):" in proc.stdout
    assert "Aggressive master (jazz profile):" in proc.stdout
    assert "jazz profile's -1.0 dBTP ceiling" in proc.stdout


def test_the_offline_demo_refuses_a_chain_it_cannot_load_in_one_line(tmp_path):
    proc = earmark("demo", "--offline", "--seconds", "8", "--chain", "no-such-chain")
    assert proc.returncode == 2, proc.stderr
    # One line, before anything is rendered.
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("earmark: no chain preset named 'no-such-chain'")


@pytest.mark.parametrize(
    "live_only",
    [("--output", "0"), ("--controller", "korg-nanokontrol2"), ("--session", "s"),
     ("--clip-seconds", "5")],
)  # fmt: skip
def test_the_offline_demo_refuses_live_only_options_instead_of_ignoring_them(live_only):
    proc = earmark("demo", "--offline", "--seconds", "2", *live_only)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"earmark demo: {live_only[0]}: only for the live demo; --offline renders and measures "
        "without a device, a controller or a session (see --help)"
    ]
