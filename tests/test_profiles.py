"""Profiles: the shipped files, the loader's errors, lookup, and learning from trusted masters."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pedalboard
import pytest
import soundfile as sf

import earmark
from earmark.engine.demo import demo_mix
from earmark.errors import PresetError
from earmark.meters.profile import parse_profile
from earmark.meters.tonal import k_weighting_gain_db, relative_levels
from earmark.profiles import default_profile, list_profiles, load_profile

FS = 48000
SHIPPED = sorted(
    e.name[: -len(".toml")]
    for e in (resources.files("earmark.presets") / "profiles").iterdir()
    if e.name.endswith(".toml")
)
GENRES = ["pop", "rock", "electronic", "hip-hop", "jazz", "classical", "acoustic", "speech"]
DELIVERIES = ["spotify", "apple-music", "youtube", "tidal", "deezer", "ebu-r128", "apple-podcasts"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("EARMARK_HOME", str(tmp_path / "home"))


def run_cli(*args: str, home) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EARMARK_DEBUG"}
    env["EARMARK_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "earmark", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


# -- shipped profiles ------------------------------------------------------------------------


def test_the_genres_and_deliveries_the_issue_names_are_shipped():
    assert set(GENRES + DELIVERIES + ["default"]) <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_value_carries_its_rationale(name):
    text = (resources.files("earmark.presets") / "profiles" / f"{name}.toml").read_text()
    lines = text.splitlines()
    labels = r"^\s*(name|description|kind|extends|platform)\s*="
    for i, line in enumerate(lines):
        if re.match(r"^\s*[a-z_]+\s*=", line) and not re.match(labels, line):
            # The rationale is on the line, or in the comment right above it.
            commented = "#" in line or (i > 0 and lines[i - 1].lstrip().startswith("#"))
            assert commented, f"{name}.toml:{i + 1}: {line.strip()} has no rationale"
    if "inference" not in text:
        pytest.fail(
            f"{name}.toml says nothing is inferred; docs/reference.md marks most values as inference"
        )


@pytest.mark.parametrize("name", SHIPPED)
def test_every_source_pointer_names_a_section_of_the_reference_page_in_the_repo(name):
    text = (resources.files("earmark.presets") / "profiles" / f"{name}.toml").read_text()
    page = (Path(__file__).parents[1] / "docs" / "reference.md").read_text()
    sections = set(re.findall(r"^## (.+)$", page, flags=re.M))
    assert "REFERENCE" not in text and "workspace" not in text and "../shared" not in text
    assert "docs/reference.md" in text, f"{name}.toml does not say where its sources are"
    for quoted in re.findall(r'docs/reference\.md "([^"]+)"', text):
        assert quoted in sections, f"{name}.toml points at a missing section {quoted!r}"


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads(name):
    p = load_profile(name)
    assert p.name == name and p.true_peak is not None and p.true_peak.ceiling_dbtp == -1.0


def test_delivery_targets_match_reference():
    expected = {"spotify": -14.0, "apple-music": -16.0, "youtube": -14.0, "tidal": -14.0,
                "deezer": -15.0, "ebu-r128": -23.0, "apple-podcasts": -16.0}  # fmt: skip
    for name, target in expected.items():
        p = load_profile(name)
        assert p.loudness is not None and p.loudness.target_lufs == target, name
        # Deliveries add their target to the default's unambiguous checks.
        assert p.dynamics is not None and p.dynamics.psr_min_db == 8.0, name
    assert load_profile("ebu-r128").loudness.tolerance_lu == 0.5
    assert load_profile("ebu-r128").loudness.severity == "problem"


def test_dynamic_genres_expect_more_than_loud_ones():
    jazz, classical, pop = load_profile("jazz"), load_profile("classical"), load_profile("pop")
    assert jazz.dynamics.lra_min_lu == 6.0 and classical.dynamics.lra_min_lu == 9.0
    assert pop.dynamics.psr_min_db == 8.0  # the published floor for loud genres
    assert classical.dynamics.psr_min_db > pop.dynamics.psr_min_db
    assert classical.resonance is None  # pedal points and timpani are not resonances


def test_the_default_profile_flags_only_unambiguous_problems():
    p = default_profile()
    assert p.name == "default" and p.loudness is None and p.resonance is None
    assert p.dynamics.lra_min_lu is None and p.dynamics.plr_min_db is None
    # Over-compression without a genre: Dynameter's "Limited" floor, corroborated by
    # the programme (PLR or DR), and no collapsed_dynamics (one loss, one flag).
    assert p.dynamics.psr_min_db == 8.0 and p.dynamics.psr_problem_db == 6.0
    assert p.dynamics.corroborate and p.dynamics.dr_min is None
    assert not load_profile("pop").dynamics.corroborate
    assert p.transients.crest_min_db is None  # transients only against a BEFORE version
    assert p.harshness.require_before
    assert earmark.analyze(np.zeros((FS, 2)), sample_rate=FS).profile == "default"


def test_tonal_model_follows_the_published_slopes():
    # Elowsson & Friberg: per-Hz slope -2.35 dB/oct at 200 Hz, -8.94 at 6.4 kHz; in
    # 1/3-octave levels 3 dB/oct higher.
    t = load_profile("pop").tonal
    lv = dict(zip(t.band_hz, t.level_db, strict=True))
    slope_200 = (lv[250.0] - lv[160.0]) / math.log2(250 / 160)
    slope_6k = (lv[8000.0] - lv[5000.0]) / math.log2(8000 / 5000)
    assert slope_200 == pytest.approx(-2.35 + 3.0, abs=0.35)
    assert slope_6k == pytest.approx(-8.94 + 3.0, abs=0.35)
    # Relative to the K-weighted total: the bands sum to 0 dB through K-weighting.
    k = k_weighting_gain_db(t.band_hz, FS)
    finite = np.isfinite(t.level_db)
    total = 10 * np.log10(np.sum(10 ** ((np.array(t.level_db)[finite] + k[finite]) / 10)))
    assert total == pytest.approx(0.0, abs=1e-9)


# -- lookup and combination -----------------------------------------------------------------------


def test_lookup_by_name_file_and_user_folder(tmp_path):
    by_path = tmp_path / "mine.toml"
    by_path.write_text('name = "mine"\n[true_peak]\nceiling_dbtp = -2.0  # my label\n')
    assert load_profile(str(by_path)).true_peak.ceiling_dbtp == -2.0
    user = tmp_path / "home" / "profiles"
    user.mkdir(parents=True)
    (user / "house-style.toml").write_text(
        'extends = "jazz"\n[dynamics]\nlra_min_lu = 8.0  # our records\n'
    )
    p = load_profile("House Style")
    assert p.dynamics.lra_min_lu == 8.0 and p.dynamics.psr_min_db == 10.0  # the rest is jazz
    assert any(i.name == "house-style" and i.origin == "user" for i in list_profiles())


def test_a_target_moved_without_naming_a_platform_is_not_called_the_platforms(tmp_path):
    mine = tmp_path / "louder.toml"
    mine.write_text('extends = "spotify"\n[loudness]\ntarget_lufs = -11.0  # our label\n')
    assert load_profile(str(mine)).loudness.platform is None
    assert load_profile("spotify").loudness.platform == "Spotify"
    named = tmp_path / "named.toml"
    named.write_text(
        'extends = "spotify"\n[loudness]\ntarget_lufs = -11.0  # Loud\nplatform = "Spotify Loud"\n'
    )
    assert load_profile(str(named)).loudness.platform == "Spotify Loud"


def test_combining_a_genre_and_a_delivery_keeps_the_genre():
    p = load_profile("jazz+spotify")
    assert p.name == "jazz+spotify"
    assert p.loudness.target_lufs == -14.0  # spotify's
    assert p.dynamics.psr_min_db == 10.0  # jazz's, not the default's that spotify extends
    assert p.dynamics.lra_min_lu == 6.0


# -- errors name the file, line and key -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key", "cause"),
    [
        ("[dynamics]\npsr_min_db = \"eight\"\n", 2, "dynamics.psr_min_db", "must be a number"),
        ("[dynamics]\n\npsr_min = 8.0\n", 3, "dynamics.psr_min", "did you mean 'psr_min_db'"),
        ("[dynamcis]\npsr_min_db = 8.0\n", 1, "dynamcis", "unknown section"),
        ("[true_peak]\nceiling_dbtp = 12.0\n", 2, "true_peak.ceiling_dbtp", "between -30 and 6"),
        ('[loudness]\ntarget_lufs = -14\nseverity = "fatal"\n', 3, "loudness.severity", "one of"),
        ("[tonal]\nband_hz = [100, 200]\nlevel_db = [1.0]\n", 3, "tonal.level_db", "needs 2"),
        ("[dynamics]\npsr_min_db = 8.0\npsr_problem_db = 9.0\n", 3, "dynamics.psr_problem_db",
         "at most psr_min_db"),
        ("kind = 'genre'\nnmae = 'x'\n", 2, "nmae", "did you mean 'name'"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_key(tmp_path, text, line, key, cause):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as caught:
        load_profile(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: '{key}': "), message
    assert cause in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_invalid_toml_and_missing_things_are_one_line_errors(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[dynamics]\npsr_min_db = = 8\n")
    with pytest.raises(PresetError, match=rf"^{re.escape(str(path))}:2: invalid TOML"):
        load_profile(str(path))
    with pytest.raises(PresetError, match=r"no profile named 'bebop'.*jazz"):
        load_profile("bebop")
    with pytest.raises(PresetError, match="no such file"):
        load_profile(str(tmp_path / "gone.toml"))
    child = tmp_path / "child.toml"
    child.write_text('name = "child"\nextends = "nonesuch"\n')
    with pytest.raises(PresetError, match=rf"^{re.escape(str(child))}:2: 'extends': .*nonesuch"):
        load_profile(str(child))
    loop = tmp_path / "loop.toml"
    loop.write_text(f'extends = "{loop}"\n')
    with pytest.raises(PresetError, match="extends itself"):
        load_profile(str(loop))


def test_a_threshold_set_to_false_turns_its_check_off(tmp_path):
    path = tmp_path / "lenient.toml"
    path.write_text('extends = "jazz"\n[dynamics]\ndr_min = false  # no DR floor\n')
    p = load_profile(str(path))
    assert p.dynamics.dr_min is None and p.dynamics.lra_min_lu == 6.0
    data = parse_profile("[dynamics]\nlra_min_lu = false\n", "x.toml")
    assert data.sections["dynamics"]["lra_min_lu"] is False


def test_cli_analyze_reports_a_bad_profile_as_a_usage_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[dynamics]\npsr_min_db = 'x'\n")
    audio = tmp_path / "a.wav"
    sf.write(audio, np.zeros((FS, 2)), FS)
    proc = run_cli("analyze", "--profile", str(bad), str(audio), home=tmp_path / "home")
    assert proc.returncode == 2
    assert f"{bad}:2: 'dynamics.psr_min_db': must be a number" in proc.stderr


# -- learning from trusted masters ------------------------------------------------------------------


def _master(seed: int) -> np.ndarray:
    """A tasteful master of a demo mix: gentle glue, +5 dB, a limiter 1 dB below full scale."""
    x = demo_mix(30.0, FS, seed=seed)
    board = pedalboard.Pedalboard(
        [
            pedalboard.Compressor(threshold_db=-20, ratio=2, attack_ms=30, release_ms=200),
            pedalboard.Gain(gain_db=5.0 + seed),
            pedalboard.Limiter(threshold_db=-3.0, release_ms=100),
        ]
    )
    y = board(np.ascontiguousarray(x.T), FS).T * 10 ** (-1.5 / 20)
    return np.ascontiguousarray(y)


def test_profile_build_learns_values_that_reproduce_the_references(tmp_path):
    home = tmp_path / "home"
    paths = []
    for seed in (0, 1):
        path = tmp_path / f"trusted-{seed}.wav"
        sf.write(path, _master(seed), FS, subtype="FLOAT")
        paths.append(str(path))
    proc = run_cli("profile", "build", "House", *paths, home=home)
    assert proc.returncode == 0, proc.stderr
    written = home / "profiles" / "house.toml"
    assert f"wrote {written}" in proc.stdout
    text = written.read_text()
    assert "learned by `earmark profile build`" in text and "trusted-0.wav" in text

    profile = load_profile("house")
    # The loudness range is the references' taste, judged as normalised playback hears it,
    # and a resonance is not learned (a held note in a trusted master is music).
    assert profile.loudness.normalised_playback and profile.resonance is None
    refs = [earmark.analyze(p, profile=profile) for p in paths]
    # Loudness: the middle of the references, with a tolerance covering both.
    loud = [a.integrated_lufs for a in refs]
    assert profile.loudness.target_lufs == pytest.approx((min(loud) + max(loud)) / 2, abs=0.05)
    assert all(abs(v - profile.loudness.target_lufs) <= profile.loudness.tolerance_lu for v in loud)
    # Dynamics: the lowest reference less the documented margins.
    assert profile.dynamics.lra_min_lu == pytest.approx(
        min(a.loudness_range_lu for a in refs) - 1.0, abs=0.11
    )
    assert profile.dynamics.plr_min_db == pytest.approx(min(a.plr_db for a in refs) - 1.0, abs=0.11)
    assert profile.dynamics.dr_min == min(a.dr for a in refs) - 1
    # Tonal target: the mean of the references' long-term relative levels, band by band.
    k = k_weighting_gain_db(refs[0].band_hz, FS)
    rel = [
        relative_levels(np.array([np.nan if v is None else v for v in a.spectrum_long_db]), k)
        for a in refs
    ]
    for f, target in zip(profile.tonal.band_hz, profile.tonal.level_db, strict=True):
        i = refs[0].band_hz.index(f)
        assert target == pytest.approx((rel[0][i] + rel[1][i]) / 2, abs=0.051), f
    # The references pass their own profile ...
    for a in refs:
        assert a.flags == (), [f["message"] for f in a.flags]
    # ... and a master that departs from them does not.
    crushed = pedalboard.Pedalboard(
        [pedalboard.Gain(gain_db=12.0), pedalboard.Limiter(threshold_db=-8.0, release_ms=40)]
    )(np.ascontiguousarray(_master(0).T, dtype=np.float32), FS).T * 10 ** (-1.5 / 20)
    loud_one = earmark.analyze(np.ascontiguousarray(crushed), sample_rate=FS, profile=profile)
    flagged = {f["code"] for f in loud_one.flags}
    assert {"over_compression", "loudness_target", "collapsed_dynamics"} <= flagged


def test_a_learned_profile_stores_each_references_sharpness_and_ranks_a_master_by_it(tmp_path):
    from earmark.meters import MeterBank
    from earmark.meters.detectors import Detector
    from earmark.offline.learn import learn_profile_text, measure_reference

    paths = []
    for seed in (0, 1):
        path = tmp_path / f"trusted-{seed}.wav"
        sf.write(path, _master(seed), FS, subtype="FLOAT")
        paths.append(str(path))
    refs = [measure_reference(p) for p in paths]
    (tmp_path / "house.toml").write_text(learn_profile_text("house", refs))
    profile = load_profile(tmp_path / "house.toml")
    stored = profile.harshness.reference_sharpness_acum
    assert len(stored) == 2
    for path, value in zip(paths, stored, strict=True):
        # The median DIN 45692 sharpness of the reference's loud 3 s spectra.
        x, _ = sf.read(path, dtype="float32")
        bank = MeterBank(2, FS)
        bank.process(x)
        h = bank.history()
        loud = h.short_term_lufs >= bank.readings().integrated_lufs - 20.0
        assert value == pytest.approx(float(np.nanmedian(h.sharpness_acum()[loud])), abs=0.011)
    # The single-file harsh test expects the references' median sharpness.
    det = Detector(profile, FS, 2)
    assert det._expected_sharp() == pytest.approx(float(np.median(stored)))
    # A flag's sentence ranks the master among the references by sharpness.
    assert det._sharp_text([max(stored) + 0.1]).endswith("sharper than 2 of your 2 references")
    assert det._sharp_text([min(stored) - 0.1]).endswith("sharper than 0 of your 2 references")


def test_a_learned_profile_flags_a_master_brighter_and_sharper_than_every_reference(tmp_path):
    from earmark.offline.learn import learn_profile_text, measure_reference

    paths = []
    for seed in (0, 1):
        path = tmp_path / f"trusted-{seed}.wav"
        sf.write(path, _master(seed), FS, subtype="FLOAT")
        paths.append(str(path))
    (tmp_path / "house.toml").write_text(
        learn_profile_text("house", [measure_reference(p) for p in paths])
    )
    profile = load_profile(tmp_path / "house.toml")
    ha = profile.harshness
    x = _master(0)
    # A reference, and a quieter copy of it, are no brighter than the references.
    for y in (x, x * 10 ** (-6 / 20)):
        a = earmark.analyze(np.ascontiguousarray(y), sample_rate=FS, profile=profile)
        assert "harsh_highs" not in {f["code"] for f in a.flags}
    # A +3 dB shelf from 3 kHz: under the per-window thresholds (the references' brightest
    # 3 s), but its median 5-10 kHz level and its sharpness are above every reference's.
    shelf = pedalboard.HighShelfFilter(cutoff_frequency_hz=3000.0, gain_db=3.0, q=0.7)
    y = shelf(np.ascontiguousarray(x.T, dtype=np.float32), FS).T
    a = earmark.analyze(np.ascontiguousarray(y), sample_rate=FS, profile=profile)
    (f,) = [f for f in a.flags if f["code"] == "harsh_highs"]
    assert f["severity"] == "warning" and f["band_hz"] == [5000.0, 10000.0]
    assert f["threshold"] == pytest.approx(max(ha.reference_air_db) + 0.5)
    assert f["value"] > f["threshold"]
    assert "brighter than all 2 of your references" in f["message"]
    sharp = re.search(r"its sharpness ([0-9.]+) acum \(DIN 45692\) is above all 2", f["message"])
    assert sharp and float(sharp.group(1)) > max(ha.reference_sharpness_acum)


def test_profile_build_refuses_built_in_names_and_skips_unreadable_files(tmp_path):
    home = tmp_path / "home"
    good = tmp_path / "good.wav"
    sf.write(good, _master(0), FS)
    proc = run_cli("profile", "build", "jazz", str(good), home=home)
    assert proc.returncode == 2 and "built-in profile" in proc.stderr
    proc = run_cli("profile", "build", "mine", str(good), str(tmp_path / "gone.wav"), home=home)
    assert proc.returncode == 3  # one input unreadable, the profile still written
    assert f"earmark: {tmp_path / 'gone.wav'}: no such file (skipped)" in proc.stderr
    assert (home / "profiles" / "mine.toml").exists()
    proc = run_cli("profile", "build", "mine", str(good), home=home)
    assert proc.returncode == 2 and "--force" in proc.stderr
    listed = run_cli("profile", "list", home=home)
    assert listed.returncode == 0
    assert re.search(r"│ mine\s+│ learned\s+│ user", listed.stdout)
    assert re.search(r"│ jazz\s+│ genre\s+│ built-in", listed.stdout)


def test_cli_analyze_with_a_profile_prints_and_returns_the_flags(tmp_path):
    from earmark.engine.demo import aggressive_master

    home = tmp_path / "home"
    path = tmp_path / "ai-master.wav"
    sf.write(path, aggressive_master(demo_mix(30.0, FS), FS), FS, subtype="FLOAT")
    proc = run_cli("analyze", "--json", "--profile", "jazz", str(path), home=home)
    assert proc.returncode == 0
    (obj,) = json.loads(proc.stdout)
    assert obj["profile"] == "jazz"
    assert {"true_peak_over", "collapsed_dynamics", "over_compression"} <= {
        f["code"] for f in obj["flags"]
    }
    strict = run_cli("analyze", "--strict", "--profile", "jazz", str(path), home=home)
    assert strict.returncode == 1
    assert "PROBLEM  collapsed_dynamics" in strict.stdout
    assert "typical of a loud pop master" in strict.stdout
