"""Reports and exports never overwrite an input, and an existing file only with --force.

Every case runs the real command on real files (a WAV the test writes, a real
snapshot database), then checks the bytes on disk: the input is the same file
with the same content afterwards, or the report holds the numbers measured.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import earmark
from earmark import outfiles
from earmark.cli import main

from synth import sine

SR = 48000


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def wavs(tmp_path) -> dict[str, Path]:
    """A -20 dBFS and a -26 dBFS 1 kHz stereo sine, 3 s each."""
    quiet, loud = tmp_path / "quiet.wav", tmp_path / "loud.wav"
    sf.write(quiet, sine(-26.0, 3.0, SR), SR, subtype="PCM_24")
    sf.write(loud, sine(-20.0, 3.0, SR), SR, subtype="PCM_24")
    return {"quiet": quiet, "loud": loud, "folder": tmp_path}


def assert_untouched_audio(path: Path, before: str) -> None:
    assert digest(path) == before
    data, rate = sf.read(path)
    assert rate == SR and data.shape == (3 * SR, 2)


def only_files(folder: Path) -> set[str]:
    """What is in ``folder``: no temporary file may be left behind."""
    return {p.name for p in folder.iterdir()}


# -- analyze --report ---------------------------------------------------------------------------


def test_analyze_report_refuses_to_overwrite_its_input(wavs, capsys):
    wav = wavs["loud"]
    before = digest(wav)
    for extra in ((), ("--force",)):
        code, out, err = run(capsys, "analyze", str(wav), "--report", str(wav), *extra)
        assert code == 2
        assert err == (
            f"earmark: --report {wav}: is the input {wav}; choose another file "
            "(--force never replaces an input)\n"
        )
        assert out == ""  # refused before the analysis
        assert_untouched_audio(wav, before)
    assert only_files(wavs["folder"]) == {"quiet.wav", "loud.wav"}


def test_analyze_report_onto_a_link_to_its_input_is_refused_even_with_force(wavs, capsys):
    wav = wavs["loud"]
    before = digest(wav)
    soft, hard = wavs["folder"] / "soft.html", wavs["folder"] / "hard.html"
    soft.symlink_to(wav.name)
    os.link(wav, hard)
    for link in (soft, hard):
        code, _, err = run(capsys, "analyze", str(wav), "--report", str(link), "--force")
        assert code == 2 and err.count("\n") == 1
        assert f"is the input {wav}" in err
    assert_untouched_audio(wav, before)
    assert soft.is_symlink() and os.stat(hard).st_ino == os.stat(wav).st_ino


def test_analyze_report_replaces_an_existing_file_only_with_force(wavs, capsys):
    wav, page = wavs["loud"], wavs["folder"] / "report.html"
    page.write_text("an earlier report")
    code, out, err = run(capsys, "analyze", str(wav), "--report", str(page))
    assert code == 2 and out == ""
    assert err == (
        f"earmark: --report {page}: exists; give --force to replace it, or another file name\n"
    )
    assert page.read_text() == "an earlier report"
    code, _, err = run(capsys, "analyze", str(wav), "--report", str(page), "--force", "--json")
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    # A -20 dBFS stereo 1 kHz sine reads -20.0 LUFS (EBU Tech 3341): the page holds it.
    measured = earmark.analyze(wav).integrated_lufs
    assert measured == pytest.approx(-20.0, abs=0.05)
    assert text.startswith("<!DOCTYPE html>") and f"{measured:.1f}" in text
    assert only_files(wavs["folder"]) == {"quiet.wav", "loud.wav", "report.html"}


# -- diff --report --------------------------------------------------------------------------------


def test_diff_report_refuses_to_overwrite_after_or_before_even_with_force(wavs):
    quiet, loud = wavs["quiet"], wavs["loud"]
    sums = {p: digest(p) for p in (quiet, loud)}
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_DEBUG"}
    for target in (loud, quiet):
        proc = subprocess.run(
            [sys.executable, "-m", "earmark", "diff", str(quiet), str(loud),
             "--report", str(target), "--force"],
            capture_output=True, text=True, timeout=300, env=env,
        )  # fmt: skip
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [
            f"earmark: --report {target}: is the input {target}; choose another file "
            "(--force never replaces an input)"
        ]
    for path, before in sums.items():
        assert_untouched_audio(path, before)


def test_diff_report_is_written_when_new_and_refused_when_it_exists(wavs, capsys):
    quiet, loud = wavs["quiet"], wavs["loud"]
    page = wavs["folder"] / "diff.html"
    code, _, err = run(capsys, "diff", str(quiet), str(loud), "--report", str(page), "--json")
    assert code == 0, err
    first = page.read_text(encoding="utf-8")
    change = earmark.diff(quiet, loud).loudness_change_lu
    assert change == pytest.approx(6.0, abs=0.05)
    assert f"{change:+.1f}" in first  # AFTER is 6 LU louder: the measured change is on the page
    code, _, err = run(capsys, "diff", str(quiet), str(loud), "--report", str(page))
    assert code == 2 and "exists; give --force" in err and err.count("\n") == 1
    assert page.read_text(encoding="utf-8") == first


# -- snapshots export -------------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path, monkeypatch) -> int:
    """One real snapshot in a real database under a private EARMARK_HOME; its id."""
    from earmark.store import StoreWriter

    from snapdocs import doc_for, gain

    monkeypatch.setenv("EARMARK_HOME", str(tmp_path / "home"))
    writer = StoreWriter()
    writer.start()
    writer.begin_session("exports", "test", sample_rate=48000)
    sid = writer.take_snapshot(doc_for(gain(6.0), label="plus six"))
    writer.end_session()
    writer.stop()
    return sid


def test_snapshot_export_refuses_to_overwrite_audio_without_force(stored, wavs, capsys):
    wav = wavs["loud"]
    before = digest(wav)
    code, out, err = run(capsys, "snapshots", "export", str(stored), "--format", "csv",
                         "--out", str(wav))  # fmt: skip
    assert code == 2 and out == ""
    assert (
        err == f"earmark: --out {wav}: exists; give --force to replace it, or another file name\n"
    )
    assert_untouched_audio(wav, before)
    code, out, _ = run(capsys, "snapshots", "export", str(stored), "--format", "csv",
                       "--out", str(wav), "--force")  # fmt: skip
    assert code == 0 and out == f"{wav}\n"
    assert wav.read_text().startswith("snapshot,time,session,label,path,name,role")


def test_snapshot_export_never_writes_onto_its_own_database(stored, capsys):
    from earmark import config
    from earmark.store import Store

    database = config.store_file()
    for fmt in ("csv", "png"):
        code, _, err = run(capsys, "snapshots", "export", str(stored), "--format", fmt,
                           "--out", str(database), "--force")  # fmt: skip
        assert code == 2 and err.count("\n") == 1 and "is the input" in err
    with Store() as store:
        assert store.snapshot(stored)["label"] == "plus six"


def test_snapshot_export_replaces_a_symlink_never_its_target(stored, tmp_path, capsys):
    elsewhere = tmp_path / "keep.txt"
    elsewhere.write_text("not yours")
    link = tmp_path / "out.json"
    link.symlink_to(elsewhere)
    code, _, err = run(capsys, "snapshots", "export", str(stored), "--out", str(link))
    assert code == 2 and "exists" in err  # a link is an existing file
    code, _, err = run(capsys, "snapshots", "export", str(stored), "--out", str(link), "--force")
    assert code == 0, err
    assert elsewhere.read_text() == "not yours"
    assert not link.is_symlink() and link.read_text().startswith(
        '{\n  "format": "earmark-snapshot"'
    )


def test_snapshot_export_default_file_is_not_overwritten(stored, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "snapshots", "export", str(stored), "--format", "png")
    assert code == 0 and out == f"snapshot-{stored}.png\n"
    first = digest(tmp_path / f"snapshot-{stored}.png")
    code, _, err = run(capsys, "snapshots", "export", str(stored), "--format", "png")
    assert code == 2 and f"--out snapshot-{stored}.png: exists" in err
    assert digest(tmp_path / f"snapshot-{stored}.png") == first


# -- earmark.outfiles ---------------------------------------------------------------------------


def test_a_forced_write_renames_a_new_file_into_place(tmp_path):
    """A reader of the old file keeps the whole old file: the new one is another inode,
    renamed over it, never the old one truncated and rewritten."""
    target = tmp_path / "r.html"
    target.write_bytes(b"old " * 1000)
    old_inode = target.stat().st_ino
    with open(target, "rb") as reader:
        outfiles.write(target, "new page", force=True)
        assert reader.read() == b"old " * 1000
    assert target.read_text() == "new page" and target.stat().st_ino != old_inode
    assert only_files(tmp_path) == {"r.html"}


def test_an_output_named_through_another_path_is_still_the_input(tmp_path, monkeypatch):
    folder = tmp_path / "a"
    folder.mkdir()
    audio = folder / "mix.wav"
    sf.write(audio, np.zeros((100, 2)), SR)
    monkeypatch.chdir(folder)
    for name in ("mix.wav", "./mix.wav", "../a/mix.wav", str(audio)):
        with pytest.raises(outfiles.OutputError, match="is the input"):
            outfiles.write(name, b"x", inputs=[str(audio)], force=True)
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(outfiles.OutputError, match="exists; give --force"):
        outfiles.write(dangling, b"x")


def test_an_output_in_a_missing_folder_or_onto_a_folder_is_one_line(tmp_path):
    with pytest.raises(outfiles.OutputError) as missing:
        outfiles.check(tmp_path / "no" / "x.html", option="--report")
    assert str(missing.value) == (
        f"--report {tmp_path / 'no' / 'x.html'}: cannot write: no such folder {tmp_path / 'no'}"
    )
    with pytest.raises(outfiles.OutputError, match="is a folder"):
        outfiles.check(tmp_path, force=True)
