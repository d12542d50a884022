"""`earmark snapshots list|show|diff|export` and `earmark history` on a real database.

The snapshots hold the readings of real engine runs through real pedalboard
chains the tests set themselves (+6 dB gain, compressor ratio 2 -> 6, a +6 dB
high shelf), so each difference the commands report has a known answer.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from earmark.cli import main
from earmark.store import Store, StoreWriter, snapshots

import snapdocs
from snapdocs import compressor, doc_for, gain, shelf, state_for


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "h"
    monkeypatch.setenv("EARMARK_HOME", str(folder))
    return folder


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def store_docs(*sessions: tuple[str, str, list[dict]]) -> list[int]:
    """Write sessions (name, ISO start, documents) through the real writer; return the ids."""
    writer = StoreWriter()
    writer.start()
    ids = []
    for name, started, docs in sessions:
        writer.begin_session(name, "test", sample_rate=48000, started=at(started))
        for doc in docs:
            ids.append(writer.take_snapshot(doc))
        writer.end_session()
    writer.stop()
    return ids


def timed(doc: dict, when: str) -> dict:
    doc["time"] = at(when)
    return doc


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- export -----------------------------------------------------------------------------------


def test_exported_json_reads_back_to_the_same_values(home, tmp_path):
    (sid,) = store_docs(("export", "2025-03-01 10:00", [doc_for(compressor(4.0), label="v2")]))
    out = tmp_path / "v2.json"
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "snapshots", "export", str(sid), "--format", "json",
         "--out", str(out)],
        capture_output=True, text=True, env=dict(os.environ), timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    back = snapshots.read_json(out.read_text(), str(out))
    with Store() as store:
        stored = store.snapshot(sid)
    assert back == stored  # every value, every path, the history, flags and chains
    state = state_for(compressor(4.0))
    for i, p in enumerate(state.paths):
        assert snapshots.readings_from_dict(back["paths"][i]["readings"]) == p.readings
    assert back["paths"][1]["chain"]["plugins"][0]["parameters"]["ratio"] == 4.0
    # And it can be stored again as it is (an import), identical once more.
    (again,) = store_docs(("import", "2025-03-02 10:00", [back]))
    with Store() as store:
        copy = store.snapshot(again)
    assert {k: v for k, v in copy.items() if k not in ("id", "session")} == {
        k: v for k, v in stored.items() if k not in ("id", "session")
    }


def test_exported_csv_has_one_row_per_path_with_exact_readings(home, capsys):
    (sid,) = store_docs(("csv", "2025-03-01 10:00", [doc_for(gain(6.0), label="plus six")]))
    code, out, _ = run(capsys, "snapshots", "export", str(sid), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    state = state_for(gain(6.0))
    assert [r["name"] for r in rows] == ["dry", "chain"] and [r["role"] for r in rows] == ["B", "A"]
    for row, path in zip(rows, state.paths, strict=True):
        assert float(row["integrated_lufs"]) == path.readings.integrated_lufs
        assert float(row["true_peak_dbtp"]) == path.readings.true_peak_dbtp
        bands = [k for k in row if k.startswith("spectrum_long_db_")]
        assert len(bands) == len(path.readings.band_hz)
        assert float(row["spectrum_long_db_1k"]) == path.readings.spectrum_long_db[17]


def test_exported_png_and_html_hold_the_plots(home, tmp_path, capsys):
    (sid,) = store_docs(("pictures", "2025-03-01 10:00", [doc_for(shelf(6.0), label="air")]))
    png, page = tmp_path / "s.png", tmp_path / "s.html"
    assert (
        run(capsys, "snapshots", "export", str(sid), "--format", "png", "--out", str(png))[0] == 0
    )
    assert (
        run(capsys, "snapshots", "export", str(sid), "--format", "html", "--out", str(page))[0] == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = page.read_text()
    assert "data:image/png;base64," in text and "HighShelfFilter" in text
    integrated = state_for(shelf(6.0)).paths[1].readings.integrated_lufs
    assert f"<td>{integrated:.1f}</td>" in text


# -- diff -----------------------------------------------------------------------------------


def test_diff_of_a_6_db_gain_says_b_is_6_lu_louder(home, capsys):
    a, b = store_docs(
        ("gain", "2025-03-01 10:00", [doc_for(gain(0.0), label="flat"), doc_for(gain(6.0))])
    )
    code, out, _ = run(capsys, "snapshots", "diff", str(a), str(b))
    assert code == 0
    assert "B is 6.0 LU louder" in out and "Gain gain_db 0 -> 6" in out
    assert "dB at" not in out  # a gain is no tonal change
    code, out, _ = run(capsys, "snapshots", "diff", str(a), str(b), "--json")
    data = json.loads(out)
    measured = {m["key"]: m for m in data["measures"]}
    assert measured["integrated_lufs"]["delta"] == pytest.approx(6.0, abs=0.01)
    assert measured["psr_median_db"]["delta"] == pytest.approx(0.0, abs=0.05)  # gain keeps PSR
    assert data["tonal"] == [] and data["chain_changes"] == ["Gain gain_db 0 -> 6"]


def test_diff_of_a_compressor_ratio_2_to_6_reports_lower_psr_and_the_parameter(home, capsys):
    a, b = store_docs(
        ("comp", "2025-03-01 10:00", [doc_for(compressor(2)), doc_for(compressor(6))])
    )
    code, out, _ = run(capsys, "snapshots", "diff", str(a), str(b), "--json")
    assert code == 0
    data = json.loads(out)
    ra = state_for(compressor(2)).paths[1].readings
    rb = state_for(compressor(6)).paths[1].readings
    psr = rb.psr_median_db - ra.psr_median_db
    loud = rb.integrated_lufs - ra.integrated_lufs
    assert psr < 0 and loud < 0  # more compression: peaks closer to the loudness, less level
    assert data["summary"].startswith(
        f"B is {abs(loud):.1f} LU quieter, PSR {abs(psr):.1f} dB lower"
    )
    assert "Compressor ratio 2 -> 6" in data["chain_changes"]
    assert "Compressor ratio 2 -> 6" in data["summary"]


def test_diff_of_a_high_shelf_names_the_octaves_it_lifted(home, capsys):
    a, b = store_docs(("shelf", "2025-03-01 10:00", [doc_for(shelf(0.0)), doc_for(shelf(6.0))]))
    code, out, _ = run(capsys, "snapshots", "diff", str(a), str(b), "--json")
    data = json.loads(out)
    tonal = {(t["low_hz"], t["high_hz"]): t["change_db"] for t in data["tonal"]}
    # A +6 dB shelf at 4 kHz: above the corner the lift approaches its full 6 dB, at the
    # corner it is half of it; nothing below 2 kHz moves.
    assert 3.0 <= tonal[(4000, 8000)] < tonal[(8000, 16000)] <= 6.0 + 0.2
    assert all(low >= 4000 for low, _ in tonal)
    assert f"+{tonal[(8000, 16000)]:.1f} dB at 8-16 kHz" in data["summary"]
    # The shelf reaches into 2-5 kHz (half its gain at 4 kHz): the harshness measure rises.
    harsh = {m["key"]: m for m in data["measures"]}["harshness_db"]["delta"]
    assert 0.5 < harsh < 6.0
    code, out, _ = run(capsys, "snapshots", "diff", str(a), str(b))
    assert code == 0 and "HighShelfFilter gain_db 0 -> 6" in out


def test_diff_can_compare_two_paths_of_one_snapshot(home, capsys):
    (sid,) = store_docs(("paths", "2025-03-01 10:00", [doc_for(gain(6.0))]))
    code, out, _ = run(capsys, "snapshots", "diff", str(sid), str(sid), "--path", "dry",
                       "--path-b", "chain", "--json")  # fmt: skip
    assert json.loads(out)["summary"].startswith("B is 6.0 LU louder")
    code, _, err = run(capsys, "snapshots", "diff", str(sid), str(sid), "--path", "nope")
    assert code == 2 and "matches no path" in err
    # Paths are numbered from 1, as in the views and the controller maps: 1 is dry.
    code, out, _ = run(capsys, "snapshots", "diff", str(sid), str(sid), "--path", "1",
                       "--path-b", "2", "--json")  # fmt: skip
    assert json.loads(out)["summary"].startswith("B is 6.0 LU louder")
    code, _, err = run(capsys, "snapshots", "diff", str(sid), str(sid), "--path", "0")
    assert code == 2 and "(1: dry, 2: chain" in err


# -- list, show ---------------------------------------------------------------------------------


def test_list_filters_by_session_label_and_date(home, capsys):
    store_docs(
        ("album", "2025-03-01 09:00", [timed(doc_for(gain(0.0), label="rough"), "2025-03-01 10:00"),
                                       timed(doc_for(gain(3.0), label="final v1"), "2025-03-02 10:00")]),
        ("single", "2025-03-05 09:00", [timed(doc_for(gain(6.0), label="final"), "2025-03-05 10:00")]),
    )  # fmt: skip

    def labels(*args: str) -> list[str]:
        code, out, _ = run(capsys, "snapshots", "list", "--json", *args)
        assert code == 0
        return [r["label"] for r in json.loads(out)]

    assert labels() == ["rough", "final v1", "final"]
    assert labels("--session", "album") == ["rough", "final v1"]
    assert labels("--label", "FINAL") == ["final v1", "final"]
    assert labels("--since", "2025-03-02") == ["final v1", "final"]
    assert labels("--until", "2025-03-01") == ["rough"]
    assert labels("--until", "2025-03-02") == ["rough", "final v1"]  # the day named, all of it
    assert labels("--since", "2025-03-02", "--until", "2025-03-03 00:00") == ["final v1"]
    code, out, _ = run(capsys, "snapshots", "list")
    assert code == 0 and "final v1" in out and "chain" in out
    listed = json.loads(run(capsys, "snapshots", "list", "--json", "--session", "single")[1])
    assert listed[0]["integrated_lufs"] == state_for(gain(6.0)).paths[1].readings.integrated_lufs


def test_show_prints_a_grouped_flag_once_with_its_occurrences_as_analyze_does(home, capsys):
    doc = doc_for(compressor(6.0), label="clipped")
    occ = [{"start_s": t, "end_s": t + 0.5, "at_s": t, "value": v, "severity": "problem"}
           for t, v in ((23.0, 1.2), (41.0, 3.96), (59.0, 0.5))]  # fmt: skip
    doc["flags"] = [{"code": "clipping", "severity": "problem", "start_s": 23.0, "end_s": 59.5,
                     "value": 3.96, "threshold": 0.0, "unit": "dBFS", "band_hz": None, "path": 1,
                     "occurrences": occ,
                     "message": "at 3 places between 23.0 and 59.5 s, worst +3.96 dBFS at 41.0 s."
                                " The worst: 12 clipped samples"}]  # fmt: skip
    (sid,) = store_docs(("grouped", "2025-03-01 10:00", [doc]))
    code, out, _ = run(capsys, "snapshots", "show", str(sid))
    assert code == 0
    # The span is said once (the summary says where), then the places with their values.
    assert "PROBLEM  clipping at 3 places between 23.0 and 59.5 s, worst +3.96 dBFS" in out
    assert "23.0-59.5 s:" not in out
    assert "places: 23.0 s +1.20 dBFS, 41.0 s +3.96 dBFS, 59.0 s +0.50 dBFS" in out


def test_show_prints_readings_flags_and_the_chain(home, capsys):
    doc = doc_for(compressor(6.0), label="squashed")
    tp = doc["paths"][1]["readings"]["true_peak_dbtp"]
    doc["flags"] = [{"code": "true_peak_over", "severity": "problem", "start_s": 1.0,
                     "end_s": 4.0, "value": tp, "threshold": tp - 1.0, "unit": "dBTP",
                     "band_hz": None, "path": 1, "message": f"true peak {tp:.1f} dBTP"}]  # fmt: skip
    (sid,) = store_docs(("show", "2025-03-01 10:00", [doc]))
    code, out, _ = run(capsys, "snapshots", "show", str(sid))
    assert code == 0
    assert "Flags on chain:" in out
    assert "PROBLEM  true_peak_over  1.0-4.0 s: true peak" in out
    assert "Compressor: threshold_db -30, ratio 6, attack_ms 0.1, release_ms 200" in out
    integrated = state_for(compressor(6.0)).paths[1].readings.integrated_lufs
    assert f"{integrated:.1f}" in out and "A: chain" in out and "B: dry" in out
    code, out, _ = run(capsys, "snapshots", "show", str(sid), "--json")
    assert json.loads(out)["flags"][0]["message"] == f"true peak {tp:.1f} dBTP"


def test_missing_database_snapshot_and_bad_dates_are_one_line_errors(home, capsys):
    code, _, err = run(capsys, "snapshots", "list")
    assert code == 3 and "no snapshots or session logs yet" in err and err.count("\n") == 1
    store_docs(("one", "2025-03-01 10:00", [doc_for(gain(0.0))]))
    code, _, err = run(capsys, "snapshots", "show", "999")
    assert code == 3 and "no snapshot 999" in err and err.count("\n") == 1
    with pytest.raises(SystemExit) as exc:
        main(["snapshots", "list", "--since", "last tuesday"])
    assert exc.value.code == 2
    assert "not a date or time: 'last tuesday'" in capsys.readouterr().err


# -- issue 16: out-of-range input, stored control characters, --path A, --until, colours ---------


def one_line_usage_error(capsys, *argv: str) -> str:
    """Run a command that must fail as a usage error: exit 2 and one line on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_since_beyond_the_calendar_is_a_one_line_usage_error(home, capsys):
    store_docs(("one", "2025-03-01 10:00", [doc_for(gain(0.0))]))
    for when in ("99999999999d", "9999999d", "1" * 400 + "d", "0001-01-01"):
        for command in (("snapshots", "list"), ("history",)):
            err = one_line_usage_error(capsys, *command, "--since", when)
            assert f"out of range: {when!r}" in err
    err = one_line_usage_error(capsys, "snapshots", "list", "--until", "99999999999w")
    assert "argument --until: out of range" in err


def test_a_snapshot_id_beyond_sqlite_integers_is_no_such_snapshot(home, capsys):
    (sid,) = store_docs(("one", "2025-03-01 10:00", [doc_for(gain(0.0))]))
    huge = "99999999999999999999999"
    for argv in (("show", huge), ("diff", str(sid), huge), ("export", huge, "--format", "csv")):
        code, out, err = run(capsys, "snapshots", *argv)
        assert code == 3 and out == ""
        assert err.endswith(f"earmark.sqlite: no snapshot {huge}\n") and err.count("\n") == 1


def test_until_today_includes_a_snapshot_taken_now(home, capsys):
    (sid,) = store_docs(("now", "2025-03-01 10:00", [doc_for(gain(0.0), label="just now")]))
    code, out, _ = run(capsys, "snapshots", "list", "--json", "--until", "today")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [sid]
    code, out, _ = run(capsys, "snapshots", "list", "--json", "--until", "yesterday")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, "history", "--json", "--until", "today")
    assert [r["snapshot"] for r in json.loads(out)["sessions"]] == [sid]


def test_diff_path_a_and_b_pick_the_paths_by_their_role(home, capsys):
    def named(doc: dict) -> dict:
        # Both names contain "a" and "b": the role must decide, not a part of a name.
        doc["paths"][0]["name"], doc["paths"][1]["name"] = "mix bass", "master bus"
        return doc

    a, b = store_docs(
        ("roles", "2025-03-01 10:00", [named(doc_for(gain(0.0))), named(doc_for(gain(6.0)))])
    )

    def compared(*extra: str) -> dict:
        code, out, err = run(capsys, "snapshots", "diff", str(a), str(b), "--json", *extra)
        assert code == 0, err
        data = json.loads(out)
        return {"paths": (data["a"]["path"], data["b"]["path"]),
                "lu": {m["key"]: m for m in data["measures"]}["integrated_lufs"]["delta"]}  # fmt: skip

    # A is the chain (+6 dB in B), B the dry path (unchanged between the snapshots).
    assert compared() == {"paths": ("master bus", "master bus"), "lu": pytest.approx(6.0, abs=0.01)}
    assert compared("--path", "A") == compared()
    assert compared("--path", "b") == {"paths": ("mix bass", "mix bass"), "lu": 0.0}
    assert compared("--path", "B", "--path-b", "A")["paths"] == ("mix bass", "master bus")
    assert compared("--path", "B", "--path-b", "A")["lu"] == pytest.approx(
        state_for(gain(6.0)).paths[1].readings.integrated_lufs
        - state_for(gain(0.0)).paths[0].readings.integrated_lufs
    )


# Stored text with a terminal title (OSC), clear screen and colour (CSI), a C1 CSI, DEL,
# and a right-to-left override.
HOSTILE = "v1\x1b]0;pwned\x07\x1b[2J\x1b[31m red \x9b5m\x7f\u202e"
SHOWN = "v1\\x1b]0;pwned\\x07\\x1b[2J\\x1b[31m red \\x9b5m\\x7f\\u202e"


def assert_inert(text: str) -> None:
    for char in ("\x1b", "\x07", "\x9b", "\x7f", "\u202e"):
        assert char not in text


def test_stored_control_characters_are_shown_escaped_never_sent_to_the_terminal(home, capsys):
    doc = doc_for(compressor(6.0), label=HOSTILE)
    doc["note"] = "note " + HOSTILE
    doc["paths"][1]["name"] = "chain " + HOSTILE
    doc["paths"][1]["chain"]["name"] = "preset " + HOSTILE
    doc["flags"] = [{"code": "true_peak_over", "severity": "problem", "start_s": 1.0,
                     "end_s": 2.0, "path": 1, "message": "msg " + HOSTILE}]  # fmt: skip
    a, b = store_docs(("sess " + HOSTILE, "2025-03-01 10:00", [doc, doc_for(compressor(2.0))]))
    code, out, _ = run(capsys, "snapshots", "show", str(a))
    assert code == 0
    assert_inert(out)
    for shown in (f"session sess {SHOWN}", f"Label: {SHOWN}", f"Note: note {SHOWN}",
                  f"Chain on A: chain {SHOWN}: preset {SHOWN}", f"msg {SHOWN}"):  # fmt: skip
        assert shown in out
    for argv in (("snapshots", "list"), ("history",), ("snapshots", "diff", str(a), str(b))):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert_inert(out)
        assert "\\x1b]0;pwned" in out  # the table may fold the rest of the cell
    # Data formats keep the text exactly as stored (JSON escapes it itself) ...
    code, out, _ = run(capsys, "snapshots", "show", str(a), "--json")
    assert_inert(out)
    assert json.loads(out)["label"] == HOSTILE and json.loads(out)["note"] == "note " + HOSTILE
    code, out, _ = run(capsys, "snapshots", "export", str(a), "--format", "csv")
    assert next(csv.DictReader(io.StringIO(out)))["label"] == HOSTILE
    # ... but CSV printed on a terminal is shown escaped.
    on_terminal = terminal_output("snapshots", "export", str(a), "--format", "csv")
    assert_inert(on_terminal)
    assert f",{SHOWN}," in on_terminal
    # An error quoting a stored name is escaped too.
    code, _, err = run(capsys, "snapshots", "diff", str(a), str(b), "--path", "zzz")
    assert code == 2 and "matches no path" in err and err.count("\n") == 1
    assert_inert(err)


def terminal_output(*argv: str) -> str:
    """What ``earmark ARGV`` prints with a real terminal (a pseudo-terminal) as stdout."""
    import pty

    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "earmark", *argv], stdout=follower,
                                stderr=subprocess.PIPE, env=dict(os.environ))  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the program closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        proc.stderr.close()
    finally:
        os.close(leader)
    return b"".join(chunks).decode("utf-8")


def test_a_label_or_note_longer_than_the_limit_is_refused_in_one_line(home, capsys):
    for option in ("--label", "--note"):
        err = one_line_usage_error(capsys, "snapshot", "take", option, "x" * 100 * 1024)
        assert f"argument {option}: too long: 102400 characters (at most 500)" in err
    # At the limit the text is accepted: the command goes on to look for the session.
    code, _, err = run(capsys, "snapshot", "take", "--label", "x" * snapshots.TEXT_MAX_CHARS)
    assert code == 3 and "too long" not in err


def test_exports_draw_a_and_b_in_the_dashboards_colours(home, tmp_path, capsys):
    from PIL import Image

    from earmark.offline import plots as report
    from earmark.ui.dashboard import style as dashboard

    assert (dashboard.A_COL, dashboard.B_COL) == (report.A_RGB, report.B_RGB)
    (sid,) = store_docs(("colours", "2025-03-01 10:00", [doc_for(shelf(6.0))]))
    png, page = tmp_path / "s.png", tmp_path / "s.html"
    run(capsys, "snapshots", "export", str(sid), "--format", "png", "--out", str(png))
    run(capsys, "snapshots", "export", str(sid), "--format", "html", "--out", str(page))
    pixels = np.asarray(Image.open(png).convert("RGB")).astype(int).reshape(-1, 3)

    def count(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(pixels - np.array(rgb)).max(axis=1) <= 8).sum())

    # Both paths are drawn (history, PSR, spectrum): hundreds of pixels each, in the
    # dashboard's A blue and B orange, and none in the colours the export used to swap in.
    assert count(report.A_RGB) > 500 and count(report.B_RGB) > 500
    assert count((0xDD, 0x84, 0x52)) == 0 and count((0x4C, 0x72, 0xB0)) == 0
    text = page.read_text()
    assert f'<th style="border-bottom:4px solid {report.A_COLOR}">A: chain</th>' in text
    assert f'<th style="border-bottom:4px solid {report.B_COLOR}">B: dry</th>' in text


# -- history ------------------------------------------------------------------------------------


def test_history_follows_each_sessions_final_snapshot_and_its_drift(home, capsys):
    store_docs(
        ("jan", "2025-01-10 10:00", [timed(doc_for(gain(0.0), label="final"), "2025-01-10 11:00"),
                                     timed(doc_for(gain(6.0), label="alt"), "2025-01-10 12:00")]),
        ("feb", "2025-02-10 10:00", [timed(doc_for(gain(3.0)), "2025-02-10 11:00")]),
        ("mar", "2025-03-10 10:00", [timed(doc_for(gain(6.0), label="Final master"),
                                           "2025-03-10 11:00")]),
    )  # fmt: skip
    code, out, _ = run(capsys, "history", "--json")
    assert code == 0
    data = json.loads(out)
    rows = data["sessions"]
    assert [r["session"] for r in rows] == ["jan", "feb", "mar"]
    assert [r["label"] for r in rows] == ["final", None, "Final master"]  # 'final' wins in jan
    base = state_for(gain(0.0)).paths[1].readings.integrated_lufs
    assert [r["integrated_lufs"] - base for r in rows] == pytest.approx([0.0, 3.0, 6.0], abs=0.01)
    assert data["drift"]["integrated_lufs"] == pytest.approx(6.0, abs=0.01)
    assert data["drift"]["psr_db"] == pytest.approx(0.0, abs=0.05)
    assert data["drift"]["harshness_db"] == pytest.approx(0.0, abs=0.05)  # loudness-normalised
    # Sharpness is judged at a fixed listening level: a gain change leaves it where it was.
    assert rows[0]["sharpness_acum"] == pytest.approx(
        state_for(gain(0.0)).paths[1].readings.sharpness_acum, abs=1e-9
    )
    assert data["drift"]["sharpness_acum"] == pytest.approx(0.0, abs=0.01)
    code, out, _ = run(capsys, "history")
    assert "Drift over 3 sessions (2025-01-10 -> 2025-03-10): I +6.0 LU" in out
    code, out, _ = run(capsys, "history", "--json", "--since", "2025-02-01")
    assert [r["session"] for r in json.loads(out)["sessions"]] == ["feb", "mar"]
    code, out, _ = run(capsys, "history", "--json", "--session", "feb")
    assert [r["session"] for r in json.loads(out)["sessions"]] == ["feb"]


def test_snapdocs_material_is_what_the_engine_metered():
    # The documents above come from real renders: the dry path reads the material itself.
    from earmark.meters import MeterBank

    bank = MeterBank(2, snapdocs.FS)
    bank.process(snapdocs.material())
    dry = state_for(gain(0.0)).paths[0].readings
    assert dry.integrated_lufs == pytest.approx(bank.readings().integrated_lufs, abs=1e-9)


def test_an_audio_clip_is_stored_as_flac_and_exported_bit_exact(home, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    clip_audio = snapdocs.material()[: 2 * snapdocs.FS]
    writer = StoreWriter()
    writer.start()
    writer.begin_session("clip")
    with_clip = writer.take_snapshot(
        doc_for(gain(0.0), label="with clip"), clip=snapshots.encode_clip(clip_audio, snapdocs.FS)
    )
    without = writer.take_snapshot(doc_for(gain(0.0), label="no clip"))
    writer.stop()
    out = tmp_path / "clip.flac"
    code, _, _ = run(capsys, "snapshots", "export", str(with_clip), "--format", "flac",
                     "--out", str(out))  # fmt: skip
    assert code == 0
    back, rate = sf.read(out, dtype="float64")
    assert rate == snapdocs.FS and back.shape == clip_audio.shape
    # 24-bit FLAC is lossless at 24 bits: the error is the quantisation step at most.
    assert np.abs(back - clip_audio).max() <= 2.0**-23
    code, _, err = run(capsys, "snapshots", "export", str(without), "--format", "flac")
    assert code == 3 and "has no audio clip" in err


def test_a_snapshots_chain_exports_as_a_preset_that_rebuilds_it(home, tmp_path, capsys):
    from earmark.engine.chains.spec import load_chain

    # A chain edited live: its compressor's ratio 4 and the Gain bypassed, as taken.
    doc = doc_for(compressor(4.0), gain(6.0), label="edited")
    doc["paths"][1]["chain"]["plugins"][1]["bypass"] = True
    (sid,) = store_docs(("chain", "2025-03-01 10:00", [doc]))
    out = tmp_path / "edited.toml"
    code, _, err = run(capsys, "snapshots", "export", str(sid), "--format", "chain",
                       "--out", str(out))  # fmt: skip
    assert code == 0, err
    spec = load_chain(out)
    assert [(p.target, dict(p.params), p.bypass) for p in spec.plugins] == [
        ("Compressor", {"threshold_db": -30.0, "ratio": 4.0, "attack_ms": 0.1,
                        "release_ms": 200.0}, False),
        ("Gain", {"gain_db": 6.0}, True),
    ]  # fmt: skip
    code, _, err = run(capsys, "snapshots", "export", str(sid), "--format", "chain",
                       "--out", str(out))  # fmt: skip
    assert code == 2 and "--force" in err  # never over an existing file without --force
