"""Controller maps: the shipped ones read as their charts say; bad maps name file, line, key."""

from __future__ import annotations

import pytest

from earmark.errors import PresetError
from earmark.ui.midi.map import (
    ACTIONS,
    dump_map,
    load_map,
    map_names,
    parse_map,
)

SHIPPED = ["behringer-x-touch-mini", "behringer-x-touch-mini-mc", "generic", "korg-nanokontrol2",
           "novation-launch-control-xl"]  # fmt: skip

HEAD = 'name = "t"\nversion = 1\n[port]\ninput = "x"\noutput = "x"\n'


def error_of(text: str) -> str:
    with pytest.raises(PresetError) as info:
        parse_map(text, "my.toml")
    return str(info.value)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_map_parses_back_from_its_own_dump(name):
    cmap = load_map(name, user_dir="/nonexistent")
    assert cmap.controls
    assert parse_map(dump_map(cmap), "again.toml") == cmap


def test_every_action_is_bound_by_some_shipped_map_and_each_map_covers_the_comparison():
    bound = {b.action for name in SHIPPED for b in load_map(name, user_dir="/nonexistent").controls}
    assert bound == set(ACTIONS)
    for name in SHIPPED:
        actions = {b.action for b in load_map(name, user_dir="/nonexistent").controls}
        assert {"ab_toggle", "select_a", "select_b", "snapshot", "marker", "dim", "mono",
                "mute", "match", "next_reference", "previous_reference"} <= actions, name  # fmt: skip


def test_the_nanokontrol2_map_follows_korgs_cc_mode_chart():
    cmap = load_map("korg-nanokontrol2", user_dir="/nonexistent")
    by_name = {b.name: b for b in cmap.controls}
    # Transport and marker buttons, as the MIDI implementation's default scene lists them.
    assert [by_name[n].number for n in ("Play", "Stop", "Rewind", "Fast forward", "Rec", "Cycle")] == [
        41, 42, 43, 44, 45, 46]  # fmt: skip
    assert (by_name["Track <"].number, by_name["Track >"].number, by_name["Marker Set"].number) == (
        58, 59, 60)  # fmt: skip
    assert by_name["Slider 1"].number == 0 and by_name["Knob 1"].number == 16
    assert by_name["S1"].number == 32 and by_name["M1"].number == 48 and by_name["R1"].number == 64
    assert all(b.kind == "cc" and b.channel == 0 for b in cmap.controls)
    # LED echo: the button's own CC back on channel 1.
    for b in cmap.controls:
        if b.led is not None:
            assert (b.led.kind, b.led.channel, b.led.number, b.led.on, b.led.off) == (
                "cc", 0, b.number, 127, 0)  # fmt: skip


def test_the_x_touch_mini_map_uses_layer_a_on_channel_11_and_leds_on_the_global_channel():
    cmap = load_map("behringer-x-touch-mini", user_dir="/nonexistent")
    buttons = [b for b in cmap.controls if b.kind == "note"]
    assert all(b.channel == 10 for b in cmap.controls)
    assert sorted(b.number for b in buttons) == list(range(8, 24))
    for b in buttons:
        if b.led is not None:  # upper row notes 8-15 light notes 0-7, lower 16-23 light 8-15
            assert (b.led.channel, b.led.number, b.led.on, b.led.off) == (0, b.number - 8, 1, 0)
    fader = next(b for b in cmap.controls if b.name == "Fader")
    assert (fader.kind, fader.number, fader.action) == ("cc", 9, "trim")


def test_the_x_touch_mini_mc_map_reads_sign_magnitude_encoders_and_a_pitch_bend_fader():
    cmap = load_map("behringer-x-touch-mini-mc", user_dir="/nonexistent")
    encoders = [b for b in cmap.controls if b.kind == "cc"]
    assert [b.number for b in encoders] == list(range(16, 24))
    assert {b.mode for b in encoders} == {"relative-sign-magnitude"}
    fader = next(b for b in cmap.controls if b.kind == "pitchbend")
    assert fader.channel == 8 and fader.action == "trim"


def test_the_launch_control_xl_map_uses_factory_template_1_on_channel_9():
    cmap = load_map("novation-launch-control-xl", user_dir="/nonexistent")
    assert all(b.channel == 8 for b in cmap.controls)
    focus = [b.number for b in cmap.controls if b.name.startswith("Track focus")]
    assert focus == [41, 42, 43, 44, 57, 58, 59, 60]
    faders = [b.number for b in cmap.controls if b.name.startswith("Fader")]
    assert faders == [77, 78, 79, 80, 84]
    assert all(b.led.off == 12 for b in cmap.controls if b.led is not None)


def test_a_map_is_found_by_name_in_the_user_folder_after_the_shipped_ones(tmp_path):
    (tmp_path / "My Desk.toml").write_text(HEAD + '[[control]]\ncc = 1\naction = "dim"\n')
    assert load_map("my-desk", user_dir=tmp_path).name == "t"
    assert "My Desk" in map_names(user_dir=tmp_path)
    with pytest.raises(
        PresetError, match=r"no controller map named 'nothing' \(available: .*generic"
    ):
        load_map("nothing", user_dir=tmp_path)


@pytest.mark.parametrize(
    "body, expected",
    [
        ('[[control]]\ncc = 1\naction = "dimm"\n',
         "my.toml:8: control 1 'action': unknown action \"dimm\" (did you mean 'dim'?)"),
        ('[[control]]\ncc = 1\naction = "dim"\n\n[[control]]\ncc = 200\naction = "mute"\n',
         "my.toml:11: control 2 'cc': must be from 0 to 127, got 200"),
        ('[[control]]\nnote = 3\naction = "parameter"\nplugin = 1\nkey = "ratio"\nmin = 1\nmax = 4\n',
         "my.toml:7: control 1 'note': a note is a button; action 'parameter' needs a fader, knob or encoder"),
        ('[[control]]\ncc = 1\nmode = "relative"\naction = "parameter"\nplugin = 1\nkey = "k"\nmin = 0\nmax = 1\n',
         "my.toml:8: control 1 'mode': must be one of \"absolute\", \"relative-twos\""),
        ('[[control]]\ncc = 1\naction = "parameter"\nplugin = 1\nkey = "f_hz"\nmin = 0\nmax = 100\ncurve = "log"\n',
         "my.toml:13: control 1 'curve': a log curve needs min and max above 0, got 0..100"),
        ('[[control]]\ncc = 1\nchannel = 17\naction = "dim"\n',
         "my.toml:8: control 1 'channel': must be a MIDI channel from 1 to 16 or \"any\", got 17"),
        ('[[control]]\ncc = 1\naction = "dim"\nplugin = 2\n',
         "my.toml:9: control 1 'plugin': is not used by action 'dim'"),
        ('[[control]]\ncc = 1\naction = "dim"\n[[control]]\ncc = 1\naction = "mute"\n',
         "my.toml:10: control 2 'cc': CC 1 ch 1 is already bound by control 1"),
        ('[[control]]\ncc14 = 40\naction = "trim"\n',
         "my.toml:7: control 1 'cc14': must be from 0 to 31, got 40"),
        ('[[control]]\ncc = 4\naction = "mute"\nled = { note = 4, on = 300 }\n',
         "my.toml:9: control 1 'led': on: must be from 0 to 127, got 300"),
        ('[[control]]\ncc = 4\naction = "plugin_bypass"\n',
         "my.toml:6: control 1: action 'plugin_bypass' needs 'plugin' (counting from 1)"),
    ],
)  # fmt: skip
def test_a_bad_control_is_reported_with_file_line_and_key(body, expected):
    assert error_of(HEAD + body).startswith(expected)


def test_bad_top_level_keys_and_toml_syntax_name_the_line():
    assert error_of('name = "x"\nversoin = 1\n').startswith(
        "my.toml:2: 'versoin': unknown key (did you mean 'version'?)"
    )
    assert error_of('name = "x"\n[port]\ninput = "("\n').startswith(
        "my.toml:3: 'input': is not a valid pattern"
    )
    assert error_of('name = "x"\n[port\n').startswith("my.toml:2: invalid TOML")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(PresetError, match=r"^/.*nope\.toml: no such file$"):
        load_map(str(tmp_path / "nope.toml"))
