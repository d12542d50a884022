"""HTML reports: self-contained pages whose plots and numbers come from real measurements.

The pages are checked for what a reader relies on: every plot embedded (PNG
data, no external resource), the measured numbers and the explained moves and
flags in the text. The plotting functions are checked against curves whose
values are known (a -23 dBFS stereo sine reads -23 LUFS; a 4:1 curve above
-20 dBFS maps -10 to -17.5).
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import subprocess
import sys

import numpy as np
import pedalboard as pb
import pytest
import soundfile as sf
from PIL import Image

import earmark
from earmark.engine.demo import aggressive_master, demo_mix
from earmark.meters import MeterBank
from earmark.meters.diff import CompressorFit
from earmark.offline.report import (
    diff_report,
    figure_png,
    new_figure,
    plot_level_transfer,
    plot_loudness_history,
    plot_spectrum,
)

from synth import sine

SR = 48000
_IMG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def images(page: str) -> list[Image.Image]:
    out = []
    for data in _IMG.findall(page):
        raw = base64.b64decode(data)
        assert raw[:8] == b"\x89PNG\r\n\x1a\n"
        out.append(Image.open(io.BytesIO(raw)))
    return out


def assert_self_contained(page: str) -> None:
    assert "<link" not in page and "<script" not in page
    assert not re.search(r'src="(?!data:)', page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_diff_report_embeds_the_plots_and_the_numbers():
    mix = demo_mix(12.0, SR, seed=4)
    chain = pb.Pedalboard([pb.HighShelfFilter(4000.0, 6.0), pb.Limiter(-8.0, 100.0)])
    t = earmark.diff(mix, chain(mix.T, SR).T, sample_rate=SR)
    page = diff_report(t)
    assert_self_contained(page)
    pics = images(page)
    assert len(pics) == 3  # spectra + EQ, level transfer, loudness/PSR history
    assert all(im.width >= 1000 and im.height >= 400 for im in pics)
    for measured in (t.before.integrated_lufs, t.after.integrated_lufs, t.after.psr_median_db):
        assert f"{measured:.1f}" in page
    assert f"{t.loudness_change_lu:+.1f}" in page
    for move in t.eq_moves:
        assert move.describe() in page
    assert t.limited and "limited:" in page
    for flag in t.flags_introduced:
        assert html.escape(flag["message"]) in page


def test_analyze_report_from_the_command_line(tmp_path):
    mix = demo_mix(12.0, SR, seed=5)
    path = tmp_path / "master.wav"
    sf.write(path, aggressive_master(mix, SR), SR, subtype="PCM_24")
    out = tmp_path / "report.html"
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_DEBUG"}
    proc = subprocess.run(
        [sys.executable, "-m", "earmark", "analyze", str(path), "--profile", "pop",
         "--report", str(out), "--json"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = out.read_text(encoding="utf-8")
    assert_self_contained(page)
    assert len(images(page)) == 2  # loudness + PSR over time, spectrum against the target
    a = earmark.analyze(path, profile="pop")
    assert f"{a.integrated_lufs:.1f}" in page and f"{a.true_peak_dbtp:.1f}" in page
    assert "pop profile" in page and "tonal target" in page
    assert "true_peak_over" in {f["code"] for f in a.flags}
    assert html.escape(next(f for f in a.flags if f["code"] == "true_peak_over")["message"]) in page


def test_loudness_history_plot_reads_the_meter_and_shades_the_flag():
    x = sine(-23.0, 8.0, SR, freq_hz=1000.0, channels=2, fade_s=0.05)
    bank = MeterBank(2, SR)
    bank.process(x)
    history = bank.history()
    flag = {"code": "loudness_target", "severity": "warning", "start_s": 2.0, "end_s": 5.0}
    fig = new_figure(8, 3)
    ax = fig.subplots()
    plot_loudness_history(ax, history, [flag])
    short = ax.get_lines()[1].get_ydata()
    steady = np.asarray(short)[np.asarray(history.t_s) > 3.5]
    assert np.allclose(steady, -23.0, atol=0.05)  # EBU Tech 3341 case 1
    lo, hi = ax.get_ylim()
    assert lo < -23.0 < hi
    spans = [p for p in ax.patches if p.get_x() == pytest.approx(2.0)]
    assert spans and all(p.get_width() == pytest.approx(3.0) for p in spans)
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_level_transfer_plot_draws_the_fitted_curve():
    fit = CompressorFit(
        gain_db=0.0, threshold_db=-20.0, ratio=4.0, knee_db=0.0, rms_error_db=0.0, flat_error_db=1.0
    )
    levels = np.linspace(-40.0, -5.0, 300)
    fig = new_figure(6, 4)
    ax = fig.subplots()
    plot_level_transfer(ax, levels, levels + fit.gain_at(levels), fit)
    curve = ax.get_lines()[0]
    xs, ys = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    assert np.interp(-10.0, xs, ys) == pytest.approx(-17.5, abs=0.05)  # 10 dB over at 4:1
    assert np.interp(-30.0, xs, ys) == pytest.approx(-30.0, abs=0.05)


def test_spectrum_plot_shades_the_target_band():
    hz = [100.0, 1000.0, 10000.0]
    fig = new_figure(6, 3)
    ax = fig.subplots()
    plot_spectrum(ax, hz, [-10.0, -20.0, None], target=(hz, [-12, -22, -35], [-8, -18, -29]))
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(-35.0) and band[:, 1].max() == pytest.approx(-8.0)
    ys = ax.get_lines()[0].get_ydata()
    assert ys[0] == -10.0 and np.isnan(ys[2])


def test_a_grouped_flag_is_one_bullet_listing_its_places_and_one_lane_bar_per_place():
    from earmark.offline.report import analysis_report
    from earmark.store.report import html as snapshot_html

    import material

    x = material.with_bursts(material.SEVEN_PLACES)
    a = earmark.analyze(x, sample_rate=SR, profile="default")
    (clip,) = [f for f in a.flags if f["code"] == "clipping"]
    assert len(clip["occurrences"]) == 7
    places = ", ".join(f"{s:.1f} s {db:+.2f} dBFS" for s, db in material.SEVEN_PLACES)
    bullet = "problem: clipping at 7 places between 23.0 and 59.2 s, worst +3.96 dBFS at 55.0 s."
    page = analysis_report([("seven", a, None)])
    (li,) = [li for li in re.findall(r"<li>(.*?)</li>", page, re.S) if "clipping" in li]
    assert html.unescape(re.sub(r"<[^>]+>", "", li)).startswith(bullet)
    assert f"(places: {places})" in html.unescape(li)
    # On the loudness history, the clipping lane has a bar at each place, not one bar
    # from the first to the last.
    bank = MeterBank(2, SR)
    bank.process(x)
    fig = new_figure(8, 3)
    ax = fig.subplots()
    plot_loudness_history(ax, bank.history(), [clip])
    starts = sorted({round(p.get_x(), 3) for p in ax.patches})
    assert starts == [s for s, _ in material.SEVEN_PLACES]
    # A snapshot's page lists the places under the flag too.
    import snapdocs

    doc = snapdocs.doc_for(snapdocs.gain(0.0))
    doc["flags"] = [{**clip, "path": 1}]
    page = html.unescape(snapshot_html(doc))
    assert f"clipping on {doc['paths'][1]['name']}: at 7 places" in page
    assert f"(places: {places})" in page
