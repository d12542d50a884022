"""Every example in README.md works as written, after `make demo`.

What "after `make demo`" is, for each example block, from scratch:

- a fresh folder, the project folder of a user, holding ``demo/`` as
  ``scripts/demo-files`` writes it (what `make demo` runs first);
- a fresh ``EARMARK_HOME`` in which ``earmark demo --seconds 2 --no-ui`` ran
  (what `make demo` runs next, for 20 s; its session-end snapshot is id 1);
- ``earmark`` on the PATH as the bootstrap's launcher or an activated venv put it
  (this interpreter's bin folder), and no ``EARMARK_PLUGIN_PATH``: nothing a
  user would not have;
- the run's JACK dummy server as the audio device (``jack_server``).

Then every fenced block runs, each in a copy of that state:

- ``sh`` blocks: each command line (``\\`` continuations joined, comments kept out)
  through ``bash -c``, exactly as written, except that a live command
  (``earmark demo``/``earmark run``, which stream until q) gets
  ``--seconds N --no-ui`` appended; ``earmark listen`` gets a listener's keys on its
  input (:data:`LISTENER_KEYS`). A live command followed by
  ``earmark snapshot take`` ("from another terminal") runs in the background
  while that command is retried until it reaches the session (the session
  answers from before its stream starts until it has stopped). A command must
  exit 0 (0 or 1 with
  ``--strict``, whose 1 means "problem flagged") and never print a traceback.
- ``$ earmark ...`` lines of output samples run the same way, and each line of
  the sample under them must be in what the command printed (whitespace aside,
  so wrapping does not matter; a line ending in "..." is a beginning; a line
  "..." stands for what was left out).
- ``python`` blocks: each as a script of its own (so each needs its imports).
- ``toml`` blocks: read by the loader of what they are (chain, profile,
  controller map); the chain must be ``demo/my-chain.toml`` word for word.
- Blocks without a language are output samples and synopses; not run.

The few commands that cannot run here are in :data:`SKIPPED` with the reason.
Each block is one test (its README line in the id) and a failure lists every
failing command of the block with its exit code and its last lines.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin: where `earmark` is after activation
LIVE_SECONDS = 3  # a live command of the README, stopped after this long
BACKGROUND_SECONDS = 5  # a live command other commands talk to while it runs
REACH_TIMEOUT_S = 120  # how long they may wait for its session to come up (a loaded machine)
# `earmark listen` reads a person's keys: these play both versions and answer, 60 times
# (more than any README example's trials), then the input ends, which stops the test.
LISTENER_KEYS = "ab1ab2ab2ab1" * 15
COMMAND_TIMEOUT_S = 240  # `plugins scan` probes 21 bundles; one of them hangs 20 s

# Commands that cannot run headless, with why. Keep it short: anything that can
# run here must.
SKIPPED = {
    'earmark run --input "Scarlett 2i2" --output 3 --channels 1,2 --chain demo/my-chain.toml': (
        "names a Focusrite Scarlett 2i2 audio interface and output device 3"
    ),
    'earmark midi learn --port "nanoKONTROL2" --out my-desk': (
        "asks a person which action each control of a connected nanoKONTROL2 does"
    ),
    "earmark midi learn --out my-desk --bind ab_toggle:led=true --bind "
    '"parameter:plugin=1,key=threshold_db,min=-40,max=0" --bind dim:button=momentary': (
        "waits for three controls of a MIDI controller to be moved"
    ),
    "earmark run ... --controller my-desk": (
        "`...` stands for the run options, and my-desk is the map learned just above"
    ),
    "earmark dashboard": (
        "opens a window until it is closed (test_dashboard.py attaches one to a running session)"
    ),
    "earmark dashboard --session mix": (
        "opens a window until it is closed, on a session named mix (see test_dashboard.py)"
    ),
    "make demo": "the state every example starts from (see the module docstring)",
    "make test": "the test suite this test is part of",
    "make screenshot": "rewrites docs/dashboard.png (Xvfb, 30 s): a build step, not an example",
}

# Exit codes other than 0 that an example shows on purpose (the README says why).
EXPECTED_EXIT = {
    "earmark diff demo/mix.wav demo/other-song.wav": 3,  # a doubtful alignment
}

# What a command prints, where the README says so in a comment rather than a sample.
EXPECTED_STDOUT = {
    'earmark snapshot take --label v3 --note "less glue, more air"': "2",  # its id
}

# -- reading the README ------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    lang: str
    text: str


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    blocks, lang, start, body = [], None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            if lang is None:
                lang, start, body = line[3:].strip(), number, []
            else:
                blocks.append(Block(start, lang, "\n".join(body) + "\n"))
                lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def strip_comment(line: str) -> str:
    """The line without its `# comment` (a # outside quotes, after a space)."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def block_commands(block: Block) -> list[str]:
    """The commands of a block: sh lines, or `$ `-prompted lines of an output sample."""
    joined = block.text.replace("\\\n", " ")
    out = []
    for raw in joined.splitlines():
        line = " ".join(strip_comment(raw).split())
        if block.lang == "sh":
            if line.startswith(("earmark ", "make ")) or line in ("earmark", "make"):
                out.append(line)
        elif not block.lang and line.startswith("$ earmark "):
            out.append(line[2:])
    return out


def sample_lines(block: Block) -> dict[str, list[str]]:
    """For an output sample: each `$ ` command and the lines shown as its output."""
    shown: dict[str, list[str]] = {}
    current = None
    for raw in block.text.splitlines():
        if raw.startswith("$ earmark "):
            current = " ".join(strip_comment(raw[2:]).split())
            shown[current] = []
        elif current is not None and raw.strip() and raw.strip() != "...":
            shown[current].append(raw.strip())
    return shown


def squeeze(text: str) -> str:
    return " ".join(text.split())


def runnable(block: Block) -> bool:
    return block.lang in ("python", "toml") or bool(block_commands(block))


BLOCKS = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if runnable(b)]


def block_id(block: Block) -> str:
    first = block_commands(block)[:1] or [block.text.strip().splitlines()[0]]
    return f"L{block.line}-{block.lang or 'sample'}: {first[0][:60]}"


# -- the state after `make demo` -----------------------------------------------------------------


def user_env(home: Path) -> dict[str, str]:
    """A user's shell after `make demo`: earmark on the PATH, nothing else of ours set."""
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_PLUGIN_PATH"}
    env.update(
        EARMARK_HOME=str(home),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        COLUMNS="160",
        NO_COLOR="1",
    )
    return env


@pytest.fixture(scope="module")
def after_make_demo(jack_server, tmp_path_factory) -> Path:
    """A folder with demo/ and home/ as `make demo` leaves them (see the module docstring)."""
    base = tmp_path_factory.mktemp("after-make-demo")
    files = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo-files"), "demo"],
        cwd=base, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert files.returncode == 0, files.stderr
    demo = subprocess.run(
        ["earmark", "demo", "--seconds", "2", "--no-ui"],
        cwd=base, env=user_env(base / "home"), capture_output=True, text=True,
        timeout=COMMAND_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    return base


@pytest.fixture()
def user_folder(after_make_demo: Path, tmp_path: Path) -> Path:
    """A copy of the state after `make demo`, for one block."""
    for part in ("demo", "home"):
        shutil.copytree(after_make_demo / part, tmp_path / part)
    return tmp_path


# -- running -----------------------------------------------------------------------------------


LIVE = re.compile(r"^earmark (demo|run)\b(?!.*--offline)")


def is_live(command: str) -> bool:
    return bool(LIVE.match(command))


@dataclass
class Outcome:
    command: str
    code: int | None
    stdout: str
    stderr: str

    def problem(self, shown: list[str] = ()) -> str | None:
        """Why this run does not match the README (None when it does)."""
        allowed = {0, 1} if "--strict" in self.command else {0}
        if self.command in EXPECTED_EXIT:
            allowed = {EXPECTED_EXIT[self.command]}
        code = "timed out" if self.code is None else f"exit {self.code}"
        if self.code not in allowed or "Traceback (most recent call last)" in self.stderr:
            tail = "\n      ".join((self.stderr.strip() or self.stdout.strip()).splitlines()[-6:])
            return f"  $ {self.command}\n    {code}:\n      {tail}"
        printed = squeeze(self.stdout + "\n" + self.stderr)
        missing = [line for line in shown if squeeze(line.removesuffix("...")) not in printed]
        if missing:
            return f"  $ {self.command}\n    printed no line like: {missing[0]!r}"
        expected = EXPECTED_STDOUT.get(self.command)
        if expected is not None and self.stdout.strip() != expected:
            return f"  $ {self.command}\n    printed {self.stdout.strip()!r}, not {expected!r}"
        return None


def shell(command: str, folder: Path, seconds: int = LIVE_SECONDS) -> subprocess.Popen:
    if is_live(command):
        command += f" --seconds {seconds} --no-ui"
    listens = command.startswith("earmark listen")
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=folder,
        env=user_env(folder / "home"),
        stdin=subprocess.PIPE if listens else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if listens:  # a listener's keys (play both, answer), then the end of the input
        proc.stdin.write(LISTENER_KEYS)
        proc.stdin.close()
        proc.stdin = None  # communicate() must not flush a closed pipe
    return proc


def finish(command: str, proc: subprocess.Popen) -> Outcome:
    try:
        out, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        return Outcome(command, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Outcome(command, None, out, err)


def run_commands(commands: list[str], folder: Path) -> list[Outcome]:
    outcomes: list[Outcome] = []
    background: tuple[str, subprocess.Popen] | None = None
    for k, command in enumerate(commands):
        if command in SKIPPED:
            continue
        talks_to_it = any(c.startswith("earmark snapshot take") for c in commands[k + 1 :])
        if is_live(command) and talks_to_it:
            background = (command, shell(command, folder, BACKGROUND_SECONDS))
            continue
        if command.startswith("earmark snapshot take") and background is not None:
            # "From another terminal", once the session is up: until then it says
            # there is none (exit 3), as it would to a user who typed it too soon.
            deadline = time.monotonic() + REACH_TIMEOUT_S
            while True:
                outcome = finish(command, shell(command, folder))
                if (
                    outcome.code != 3
                    or time.monotonic() > deadline
                    or background[1].poll() is not None
                ):
                    break
                time.sleep(0.5)
            outcomes.append(outcome)
            outcomes.append(finish(*background))
            background = None
            continue
        outcomes.append(finish(command, shell(command, folder)))
    if background is not None:
        outcomes.append(finish(*background))
    return outcomes


# -- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_the_readme_example_runs_as_written_after_make_demo(block: Block, user_folder: Path):
    if block.lang == "python":
        proc = subprocess.run(
            [sys.executable, "-c", block.text],
            cwd=user_folder, env=user_env(user_folder / "home"), capture_output=True,
            text=True, timeout=COMMAND_TIMEOUT_S, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            pytest.fail(
                f"README line {block.line}: the Python example fails:\n{proc.stderr[-3000:]}",
                pytrace=False,
            )
        return
    if block.lang == "toml":
        check_toml(block, user_folder)
        return
    commands = block_commands(block)
    if all(c in SKIPPED for c in commands):
        pytest.skip("; ".join(f"{c}: {SKIPPED[c]}" for c in commands))
    shown = sample_lines(block)
    outcomes = run_commands(commands, user_folder)
    failed = [p for o in outcomes if (p := o.problem(shown.get(o.command, [])))]
    if failed:
        pytest.fail(
            f"README line {block.line}: these examples fail:\n" + "\n".join(failed), pytrace=False
        )


def check_toml(block: Block, folder: Path) -> None:
    """Read a TOML example with the loader of its kind (errors name the README line)."""
    source = f"README.md:{block.line}"
    if re.search(r"^\[\[control\]\]", block.text, re.M):
        from earmark.ui.midi.map import parse_map

        parse_map(block.text, source)
    elif re.search(r"^\[\[plugin\]\]", block.text, re.M):
        from earmark.engine.chains import parse_chain

        parse_chain(block.text, source)
        assert block.text == (folder / "demo" / "my-chain.toml").read_text(encoding="utf-8"), (
            f"README line {block.line}: the chain shown is not demo/my-chain.toml"
        )
    else:
        from earmark.profiles import load_profile

        path = folder / "readme-profile.toml"
        path.write_text(block.text, encoding="utf-8")
        load_profile(str(path))


def test_the_readme_has_examples_of_every_kind_and_few_are_skipped():
    """The parser sees the blocks it should (a change of fence or prompt style would
    silently drop examples), and every skipped command is still in the README."""
    commands = [c for b in BLOCKS for c in block_commands(b)]
    langs = {b.lang for b in BLOCKS}
    assert {"sh", "python", "toml", ""} <= langs
    assert len(commands) >= 40
    assert sum(1 for b in BLOCKS if b.lang == "python") == 4
    stale = [c for c in SKIPPED if c not in commands]
    assert not stale, f"skipped commands no longer in the README: {stale}"
    earmark_skipped = [c for c in commands if c in SKIPPED and c.startswith("earmark")]
    assert len(earmark_skipped) <= 6, earmark_skipped


def test_a_python_example_without_its_imports_is_caught():
    """The README's diff snippet once used json without importing it; a block runs alone."""
    diff_block = next(b for b in BLOCKS if b.lang == "python" and "json.dumps" in b.text)
    assert re.search(r"^import json$", diff_block.text, re.M)
    imports = r"^(import earmark|from earmark[\w.]* import \w)"
    assert all(re.search(imports, b.text, re.M) for b in BLOCKS if b.lang == "python")


# -- `earmark` on the PATH -----------------------------------------------------------------------


def run_bootstrap(launcher_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / "bootstrap")],
        env=dict(os.environ, EARMARK_LAUNCHER_DIR=str(launcher_dir)),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def as_typed(launcher_dir: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """`earmark ...` typed in a shell whose PATH has the launcher's folder and no venv."""
    path = os.pathsep.join([str(launcher_dir), "/usr/bin", "/bin"])
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        ["bash", "-c", " ".join(["earmark", *argv])],
        cwd=cwd, env=dict(env, PATH=path), capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the launcher goes to /usr/local/bin, which is root's; as a user the README says "
    "'. .venv/bin/activate'",
)


@needs_root
def test_bootstrap_as_root_puts_earmark_on_the_path_running_this_project(tmp_path):
    bin_dir = tmp_path / "bin"
    proc = run_bootstrap(bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert f"bootstrap: {bin_dir / 'earmark'} runs {ROOT / '.venv/bin/earmark'}" in proc.stdout
    typed = as_typed(bin_dir, "--version", cwd=tmp_path)
    assert typed.returncode == 0, typed.stderr
    assert typed.stdout.startswith("earmark ")
    # It is this project's earmark: its plugin folder is the one it searches.
    where = as_typed(bin_dir, "plugins", "scan", str(tmp_path / "nothing-here"), cwd=tmp_path)
    assert where.returncode == 3 and "nothing-here: no such file or directory" in where.stderr
    # A second run leaves it as it is, and says nothing about it.
    again = run_bootstrap(bin_dir)
    assert again.returncode == 0 and "earmark runs" not in again.stdout


@needs_root
def test_bootstrap_leaves_an_earmark_that_is_not_its_launcher_alone(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mine = bin_dir / "earmark"
    mine.write_text("#!/bin/sh\necho my own earmark\n")
    mine.chmod(0o755)
    proc = run_bootstrap(bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert "exists and is not earmark's launcher; left alone" in proc.stderr
    assert mine.read_text() == "#!/bin/sh\necho my own earmark\n"


@needs_root
def test_a_launcher_for_a_checkout_that_is_gone_is_replaced_and_says_what_to_run(tmp_path):
    bin_dir = tmp_path / "bin"
    assert run_bootstrap(bin_dir).returncode == 0
    launcher = bin_dir / "earmark"
    gone = tmp_path / "old-checkout" / ".venv" / "bin" / "earmark"
    launcher.write_text(launcher.read_text().replace(str(ROOT / ".venv/bin/earmark"), str(gone)))
    typed = as_typed(bin_dir, "--version", cwd=tmp_path)
    assert typed.returncode == 3
    assert typed.stderr.strip() == (
        f"earmark: {gone} is missing: run 'make demo' in {tmp_path / 'old-checkout'}"
    )
    assert run_bootstrap(bin_dir).returncode == 0
    assert as_typed(bin_dir, "--version", cwd=tmp_path).returncode == 0
