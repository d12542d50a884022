"""Bad options and unavailable devices for `earmark demo` and `earmark run`: one line,
the documented exit code (2 usage error, 3 unavailable device), never a traceback,
and never a silent switch to the null sink. Real processes, a real JACK server."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import pytest

from earmark.cli import args as cli_args

from conftest import JACKD_DUMMY

ENV = dict(os.environ, COLUMNS="200")
ENV.pop("DISPLAY", None)


def earmark(*args: str, env: dict | None = None, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "earmark", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
    )


def error_line(stderr: str) -> str:
    """The one line a usage error prints (``earmark demo: argument ...: ... (see --help)``),
    without its ``(see --help)`` tail; anything more on stderr fails the test."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("earmark "), stderr
    return lines[0].removesuffix(" (see --help)")


# -- usage errors (exit 2), before anything is rendered or opened ---------------------------


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--seconds", "0", "must be a number of seconds above 0"),
        ("--seconds", "-1", "must be a number of seconds above 0"),
        ("--seconds", "nan", "must be a number of seconds above 0"),
        ("--seconds", "inf", "must be a number of seconds above 0"),
        ("--blocksize", "-64", "must be a whole number of frames from 16 to 8192"),
        ("--blocksize", "0", "must be a whole number of frames from 16 to 8192"),
        ("--blocksize", "2", "must be a whole number of frames from 16 to 8192"),
        ("--blocksize", "15", "must be a whole number of frames from 16 to 8192"),
        ("--blocksize", "1000000", "must be a whole number of frames from 16 to 8192"),
        ("--samplerate", "0", "must be a whole number of Hz from 8000 to 384000"),
    ],
)
@pytest.mark.parametrize("command", ["demo", "run"])
def test_a_live_option_out_of_range_is_a_usage_error_naming_value_and_range(
    command, option, value, says
):
    bounded = () if option == "--seconds" else ("--seconds", "1")  # if it were accepted
    proc = earmark(command, "--no-ui", option, value, *bounded, timeout=60)
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc.stderr)
    assert f"argument {option}: {says}" in line and line.endswith(f", got {value}"), line
    assert "Traceback" not in proc.stderr


def test_the_argument_types_accept_their_bounds_and_refuse_just_beyond():
    assert cli_args.blocksize("16") == 16 and cli_args.blocksize("8192") == 8192
    assert cli_args.seconds("0.001") == pytest.approx(0.001)
    assert cli_args.sample_rate("8000") == 8000 and cli_args.sample_rate("384000") == 384000
    assert cli_args.clip_seconds("0") == 0.0 and cli_args.clip_seconds("60") == 60.0
    for kind, text in [
        (cli_args.blocksize, "8193"),
        (cli_args.blocksize, "64.5"),
        (cli_args.seconds, "-inf"),
        (cli_args.seconds, "ten"),
        (cli_args.sample_rate, "384001"),
        (cli_args.clip_seconds, "nan"),
        (cli_args.clip_seconds, "60.5"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(repr(text)) + "|" + text):
            kind(text)


# -- devices (exit 3): one line naming the device, and where to see the valid ones ------------


HINT = re.escape("; `earmark devices` lists the devices")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (("run", "--input", "Nope"), r"earmark: input device 'Nope': no input device matches it"),
        (
            ("demo", "--output", "999"),
            r"earmark: output device 999: no such device \(devices are numbered 0 to \d+\)",
        ),
        (
            ("run", "--output", "Nope"),
            r"earmark: output device 'Nope': no output device matches it",
        ),
    ],
)
def test_a_device_that_is_not_there_is_one_line_and_exit_3(jack_server, args, pattern):
    proc = earmark(*args, "--no-ui", "--seconds", "1")
    assert proc.returncode == 3, proc.stderr
    (said,) = proc.stderr.splitlines()  # nothing rendered, loaded or streamed first
    assert re.fullmatch(pattern + HINT, said), said


def test_input_channels_the_device_does_not_have_are_one_line_and_exit_3(jack_server):
    proc = earmark("run", "--channels", "1,5", "--no-ui", "--seconds", "1")
    assert proc.returncode == 3, proc.stderr
    (said,) = proc.stderr.splitlines()
    assert re.fullmatch(
        r"earmark: input device \d+ 'system' \(JACK Audio Connection Kit\) has 2 input "
        r"channel\(s\), 5 are needed" + HINT,
        said,
    ), said


def test_a_rate_the_device_refuses_is_an_error_and_without_one_the_device_rate_is_used():
    """A JACK server at 44.1 kHz: asked for 48 kHz (before: the default, silently
    streamed into the null sink instead) it is one line and exit 3; with no
    --samplerate the demo streams at the server's own rate."""
    name = f"earmark-44k-{os.getpid()}"
    subprocess.run(
        [str(JACKD_DUMMY), "start", name, "44100", "64"], check=True, capture_output=True
    )
    env = dict(ENV, JACK_DEFAULT_SERVER=name)
    try:
        refused = earmark("demo", "--samplerate", "48000", "--no-ui", "--seconds", "1", env=env)
        streamed = earmark("demo", "--no-ui", "--seconds", "2", env=env)
    finally:
        subprocess.run([str(JACKD_DUMMY), "stop", name], capture_output=True)
    assert refused.returncode == 3, refused.stderr
    (said,) = refused.stderr.splitlines()
    assert re.fullmatch(
        r"earmark: output device \d+ 'system' \(JACK Audio Connection Kit\) refuses 48000 Hz; "
        r"its own rate is 44100 Hz \(--samplerate 44100, or leave --samplerate out to use "
        r"it\)" + HINT,
        said,
    ), said
    assert streamed.returncode == 0, streamed.stderr
    assert "null sink" not in streamed.stderr
    assert "rendering the demo material at 44100 Hz" in streamed.stderr
    assert re.search(r"stream open: device \d+, 44100 Hz, 64 frames", streamed.stderr)
    blocks = int(re.search(r"stopped after (\d+) blocks", streamed.stderr).group(1))
    assert blocks > 44100 / 64  # it really streamed at the server's pace


def test_the_null_sink_is_only_for_a_machine_with_no_device_at_all():
    env = dict(ENV, JACK_DEFAULT_SERVER="earmark-no-such-server")
    named = earmark("demo", "--output", "0", "--no-ui", "--seconds", "1", env=env)
    assert named.returncode == 3, named.stderr
    assert named.stderr.splitlines() == [
        "earmark: output device 0: no such device (there are no devices); "
        "`earmark devices` lists the devices"
    ]
