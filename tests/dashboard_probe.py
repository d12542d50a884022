"""The real dashboard, driven by a test: run in a subprocess under Xvfb.

    python tests/dashboard_probe.py FRAME_NAME COMMAND_SOCKET

It runs :class:`earmark.ui.dashboard.Dashboard` on the session's state frame,
exactly as ``python -m earmark.ui.dashboard`` does, and between frames answers
one JSON request per stdin line with one JSON line on stdout:

- ``{"op": "values", "tags": [...]}``: each item's value and label
- ``{"op": "config", "tag": T}``: an item's configuration (draw items: points, colours)
- ``{"op": "geometry"}``: item rectangles on the viewport (``Dashboard.geometry``)
- ``{"op": "limits", "axis": T}``: a plot axis' limits
- ``{"op": "framebuffer", "path": P}``: the rendered frame as an (h, w, 3) uint8 .npy
- ``{"op": "key", "keysym": "space", "hold_s": 0}``: a real key press (XTEST), held
  ``hold_s`` seconds
- ``{"op": "click", "tag": T}``: a real left click on an item's centre (XTEST)
- ``{"op": "state"}``: the dashboard's own state (follow, selected flag, commands sent)

Input goes through the X server like a user's: between clicks the pointer rests
on the keys line at the bottom of the window, away from every plot, so no hover
readout changes pixels.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
from typing import Any

import numpy as np

from earmark.ui.dashboard import Dashboard, run
from earmark.ui.stateframe import CommandSender, StateFrameReader
from earmark.ui.xdisplay import XInput

PARK = (1910, 1070)  # outside the 1600 x 960 viewport, until the window is up


class Lines:
    """Non-blocking line reader on a file descriptor (select + os.read, no buffering surprises)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = b""
        self.eof = False

    def poll(self) -> list[str]:
        while not self.eof and select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [line.decode() for line in lines if line.strip()]


def reply(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_plain) + "\n")
    sys.stdout.flush()


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return str(v)


class Probe:
    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.lines = Lines(sys.stdin.fileno())
        self.xin = XInput()
        self.xin.move(*PARK)
        self.steps: list = []  # actions spread over frames (clicks)
        self.capture: dict | None = None

    def on_frame(self, dash: Dashboard, dpg: Any) -> bool:
        if self.steps:
            self.steps.pop(0)()
            return True
        if self.capture is not None:
            return True  # waiting for the frame buffer callback
        for line in self.lines.poll():
            req = json.loads(line)
            if req["op"] == "quit":
                reply({"ok": True})
                return False
            out = self.handle(req, dpg)
            if out is not None:
                reply(out)
            if self.steps or self.capture is not None:
                break
        return not self.lines.eof

    def rest(self, dpg: Any) -> tuple[int, int]:
        """Where the pointer waits: on the keys line at the bottom (no plot, no button).

        Inside the window: a pointer that left it and comes back is not seen by the
        first click after (GLFW under a bare X server)."""
        x0, y0 = dpg.get_item_rect_min("em_keys")
        return int(x0 + 40), int(y0 + 8)

    def handle(self, req: dict, dpg: Any) -> dict | None:
        op = req["op"]
        if op == "values":
            out = {}
            for tag in req["tags"]:
                if not dpg.does_item_exist(tag):
                    out[tag] = None
                    continue
                out[tag] = {"value": dpg.get_value(tag), "label": dpg.get_item_label(tag)}
            return out
        if op == "config":
            cfg = dpg.get_item_configuration(req["tag"])
            return {k: v for k, v in cfg.items() if isinstance(v, int | float | str | list | tuple)}
        if op == "geometry":
            return self.dash.geometry()
        if op == "limits":
            return {"limits": list(dpg.get_axis_limits(req["axis"]))}
        if op == "state":
            sel = self.dash.selected_flag
            return {
                "follow": self.dash.follow,
                "selected": sel,
                "commands": [list(c) for c in self.dash.commands_sent],
                "frames": len(self.dash.frame_times_ms),
            }
        if op == "mouse":
            return {
                "pos": list(dpg.get_mouse_pos(local=False)),
                "down": dpg.is_mouse_button_down(dpg.mvMouseButton_Left),
            }
        if op == "key":
            # Keys go to the window under the pointer when no window manager sets the focus.
            # "hold_s" keeps the key down that long (frames go on meanwhile) before release.
            release_at = [0.0]

            def press() -> None:
                self.xin.key(req["keysym"], True)
                release_at[0] = time.monotonic() + float(req.get("hold_s", 0.0))

            def hold() -> None:
                if time.monotonic() < release_at[0]:
                    self.steps.insert(0, hold)

            self.steps = [
                lambda: self.xin.move(*self.rest(dpg)),
                lambda: None,
                press,
                hold,
                lambda: self.xin.key(req["keysym"], False),
                lambda: None,
                lambda: reply({"ok": True}),
            ]
            return None
        if op == "click":
            x0, y0 = dpg.get_item_rect_min(req["tag"])
            w, h = dpg.get_item_rect_size(req["tag"])
            x, y = int(x0 + w / 2), int(y0 + h / 2)
            self.steps = [
                lambda: self.xin.move(x, y),
                lambda: None,
                lambda: self.xin.button(1, True),
                lambda: None,
                lambda: self.xin.button(1, False),
                lambda: None,
                lambda: self.xin.move(*self.rest(dpg)),
                lambda: reply({"ok": True, "at": [x, y]}),
            ]
            return None
        if op == "framebuffer":
            path = req["path"]
            self.capture = {"path": path}

            def done(_sender: Any, buf: Any, *_: Any) -> None:
                w = dpg.get_viewport_client_width()
                h = dpg.get_viewport_client_height()
                a = np.asarray(buf, dtype=np.float32).reshape(h, w, 4)[:, :, :3]
                np.save(path, np.round(a * 255).astype(np.uint8))
                self.capture = None
                reply({"ok": True, "shape": [h, w]})

            dpg.output_frame_buffer(callback=done)
            return None
        return {"error": f"unknown op {op!r}"}


def main() -> int:
    frame, commands = sys.argv[1], sys.argv[2]
    dash = Dashboard(StateFrameReader(frame), CommandSender(commands))
    probe = Probe(dash)
    reply({"ready": True})
    return run(dash, title="earmark probe", on_frame=probe.on_frame)


if __name__ == "__main__":
    sys.exit(main())
