"""`earmark listen`: blind tests between two files, and ear training on one.

    earmark listen A.wav B.wav [--mode abx|which] [--trials N]
    earmark listen SONG.wav --change shelf|compression|level [--mode which|abx]

The versions are prepared first (earmark.live.listen: the excerpt, loudness-matched,
the same headroom for all), then streamed as engine paths; the keys choose what plays
and answer. Each answer is stored as it is given (earmark.store.listening).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any

from earmark.cli import args as cli_args
from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, one_line

# earmark.live.listen.CHANGES's names, spelled here so the parser does not load numpy
# (tests check they agree).
CHANGE_NAMES = ("compression", "level", "shelf")

_DESCRIPTION = (
    "Blind listening, loudness-matched with the level hidden. With two files: ABX (is X A "
    "or B?) or 'which one is processed?' (B is the processed one), for a fixed number of "
    "trials, scored with the binomial p-value. With one file and --change: training on "
    "your own music, the change rendered at decreasing amounts and an adaptive staircase "
    "(two-down one-up) that finds the smallest amount you hear 70.7 % of the time. Keys: "
    "a/b/x play (ABX) or a/b play the first/second interval ('which'); 1/2 answer; q "
    "stops (the answers so far are kept). Every answer is stored at once; `earmark "
    "history` shows the thresholds over time."
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``listen`` to the top-level subparsers."""
    p = sub.add_parser(
        "listen", help="blind ABX / 'which is processed?' tests and ear training",
        description=_DESCRIPTION,
    )  # fmt: skip
    p.add_argument("files", nargs="+", metavar="FILE", help="one file to train on, or A and B")
    p.add_argument(
        "--change",
        choices=CHANGE_NAMES,
        default=None,
        help="training: the change to find your threshold for (one FILE)",
    )
    p.add_argument(
        "--mode",
        choices=("abx", "which"),
        default=None,
        help="abx, or which (which one is processed?); default: abx for two files, "
        "which for training",
    )
    p.add_argument(
        "--trials",
        type=cli_args.trials,
        default=16,
        metavar="N",
        help="trials of a two-file test (default 16; training stops on the staircase)",
    )
    p.add_argument(
        "--start",
        type=cli_args.start_seconds,
        default=None,
        metavar="S",
        help="where the looped excerpt starts, seconds (default: the loudest part)",
    )
    p.add_argument(
        "--seconds",
        type=cli_args.seconds,
        default=20.0,
        metavar="N",
        help="length of the looped excerpt (default 20)",
    )
    p.add_argument("--output", default=None, metavar="DEV", help="output device")
    p.add_argument(
        "--samplerate", type=cli_args.sample_rate, default=None, metavar="HZ",
        help="stream rate in Hz (default: the device's own; 48000 with no device)",
    )  # fmt: skip
    p.add_argument(
        "--blocksize", type=cli_args.blocksize, default=256, metavar="N",
        help="frames per audio block (default 256: nothing here needs low latency)",
    )  # fmt: skip
    p.set_defaults(handler=_cmd_listen, subparser=p)


def _say(msg: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(msg, file=sys.stderr, flush=True)


def _cmd_listen(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from earmark.engine.files import AudioFileError
    from earmark.live import audio as live
    from earmark.live import listen

    if len(args.files) > 2:
        parser.error("give one FILE (training, with --change) or two (A and B)")
    training = len(args.files) == 1
    if training and args.change is None:
        parser.error("one FILE is training: say which --change (shelf, compression, level)")
    if not training and args.change is not None:
        parser.error("--change trains on one FILE; two files are compared as they are")
    mode = args.mode or ("which" if training else "abx")
    try:
        setup = live.audio_setup(output=_device(args.output), sample_rate=args.samplerate)
    except live.DeviceError as exc:
        _say(f"earmark: {exc}")
        return EXIT_UNAVAILABLE
    rate = setup.sample_rate
    from earmark.engine.sources import load_player

    try:
        players = [load_player(f, rate) for f in args.files]
    except (AudioFileError, OSError) as exc:
        _say(f"earmark: {one_line(exc)}")
        return EXIT_UNAVAILABLE
    _say("earmark: preparing the versions (rendered and loudness-matched by measurement) ...")
    try:
        if training:
            change = listen.CHANGES[args.change]
            material = listen.prepare_training(
                players[0].data, rate, change, args.start, args.seconds
            )
        else:
            change = None
            names = (players[0].name, players[1].name)
            material = listen.prepare_files(
                players[0].data, players[1].data, rate, names, args.start, args.seconds
            )
    except ValueError as exc:
        _say(f"earmark: {one_line(exc)}")
        return EXIT_USAGE
    test = listen.BlindTest(
        mode=mode,
        paths=len(material.audio),
        trials_wanted=args.trials,
        staircase=listen.Staircase(change.levels) if change is not None else None,
    )
    return _session(args, setup, material, test, change)


def _device(text: str | None) -> Any:
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def _session(args, setup, material, test, change) -> int:
    from earmark.config import store_file
    from earmark.engine.engine import Engine, Path
    from earmark.engine.sources import Player
    from earmark.live import audio as live
    from earmark.live.session import AudioStartError, LiveSession
    from earmark.store.listening import ListeningLog

    paths = [Path(n, Player(a, n)) for n, a in zip(material.names, material.audio, strict=True)]
    engine = Engine(
        material.sample_rate,
        paths,
        a=0,
        b=1,
        loudness_match=False,  # the versions are matched already; the level stays hidden
        max_block=max(4096, args.blocksize),
        block=args.blocksize,
    )
    driver = live.open_driver(
        engine, setup, blocksize=args.blocksize, input_channels=0, say=_say, start=False
    )
    session = LiveSession(engine, driver, name="listen", say=_say)
    what = change.what.format(amount="N") if change is not None else "B against A"
    log = ListeningLog(
        store_file(),
        mode=test.mode,
        change=change.name if change is not None else "files",
        unit=change.unit if change is not None else None,
        material=" | ".join(str(f) for f in args.files),
        adaptive=change is not None,
    )
    _say(
        f"earmark: {'training' if change else 'blind test'}, {_mode_text(test.mode)}: {what}; "
        f"{material.seconds:.0f} s looped from {material.start_s:.1f} s"
    )
    try:
        session.run(view=lambda s: _trials(s, test, log, change))
    except AudioStartError as exc:
        _say(f"earmark: {exc}")
        return EXIT_UNAVAILABLE
    finally:
        threshold, relation = None, "="
        if change is not None and test.staircase is not None and test.answered:
            threshold, relation, _ = test.staircase.threshold()
        log.finish(threshold, relation)
        log.close()
    _report(test, change, log.test_id)
    return EXIT_OK


def _mode_text(mode: str) -> str:
    return "ABX" if mode == "abx" else "which one is processed?"


def _trials(session, test, log, change) -> None:
    """The key loop: present each trial, play what is asked, store each answer at once."""
    from earmark.ui.terminal import cbreak, read_key

    play = {"a": "A", "b": "B", "x": "X"} if test.mode == "abx" else {"a": "1", "b": "2"}
    answers = {"1": "A", "2": "B"} if test.mode == "abx" else {"1": "1", "2": "2"}
    prompt = (
        "[a] A  [b] B  [x] X   answer: [1] X is A  [2] X is B   [q] stop"
        if test.mode == "abx"
        else "[a] first  [b] second   answer: [1] first is processed  [2] second   [q] stop"
    )
    with cbreak():
        while not test.done:
            for command in test.begin():
                session.post(*command)
            _say(f"trial {len(test.answered) + 1}: {prompt}")
            while True:
                key = read_key(0.2)
                if key is None:
                    continue
                key = key.lower()
                if key in ("q", ""):  # q, or the end of piped input
                    return
                if key in play:
                    for command in test.audition(play[key]):
                        session.post(*command)
                elif key in answers:
                    trial = test.answer(answers[key])
                    log.trial(trial, test.correct, test.p_value())
                    if change is not None:  # training: say at once (blind tests: at the end)
                        verdict = "right" if trial.correct else "wrong"
                        _say(
                            f"  {verdict}: {change.name} {trial.amount:g} {change.unit}, "
                            f"answered in {trial.response_s:.1f} s"
                        )
                    break
                time.sleep(0)


def _report(test, change, test_id) -> None:
    n, k = len(test.answered), test.correct
    print(
        f"{n} trials, {k} correct, p = {test.p_value():.3g} "
        f"(the chance of doing at least as well by guessing)"
    )
    if change is not None and test.staircase is not None:
        value, relation, how = test.staircase.threshold()
        if value is None:
            print(f"threshold: not found ({how})")
        else:
            words = {"=": "", "<=": "at most ", ">": "above "}[relation]
            print(f"threshold: {change.name} {words}{value:.2g} {change.unit} ({how})")
    print(f"stored as listening test {test_id}")
