"""The dashboard's process: open the window on a session's state frame and run the
throttled render loop.

    python -m earmark.ui.dashboard --frame NAME --commands SOCKET

(``earmark run``/``demo`` start it; ``earmark dashboard`` re-attaches one.) It reads
the state frame (``earmark.ui.stateframe``) at up to 60 Hz and sends commands back on
the session's socket; it shares nothing else with the audio process, so it can crash,
hang or close without the audio noticing. The loop sleeps to at most 60 frames per
second: with no vsync (Xvfb) it would otherwise spin a core.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from earmark.errors import EXIT_OK, EXIT_UNAVAILABLE

from ..stateframe import CommandSender, StateFrameError, StateFrameReader
from ..xdisplay import display_available
from .style import BG, rgba
from .window import Dashboard

EXIT_NO_DISPLAY = EXIT_UNAVAILABLE
EXIT_NO_SESSION = EXIT_UNAVAILABLE

MAX_FPS = 60.0
IDLE_FPS = 10.0  # when no new state frame arrives (a paused or stale session)
MAX_LOAD = 0.5  # the largest share of a core the render loop may take


def _no_display() -> bool:
    """True (after saying why on stderr) when no display can show the window."""
    ok, reason = display_available()
    if not ok:
        print(
            f"earmark: {reason}: the dashboard cannot open; use the terminal view "
            "(earmark run --no-ui)",
            file=sys.stderr,
        )
    return not ok


def run(
    dashboard: Dashboard,
    *,
    title: str = "earmark",
    seconds: float | None = None,
    screenshot: str | None = None,
    screenshot_after_s: float = 10.0,
    max_fps: float = MAX_FPS,
    max_load: float = MAX_LOAD,
    on_frame: Callable[[Dashboard, Any], bool] | None = None,
) -> int:
    """Create the viewport and run the throttled render loop until closed (or ``seconds``).

    ``on_frame(dashboard, dpg)`` runs after each rendered frame (tests drive the
    window from it); returning False ends the loop.
    """
    if _no_display():
        return EXIT_NO_DISPLAY
    import dearpygui.dearpygui as dpg

    dpg.create_context()
    try:
        dpg.configure_app(manual_callback_management=True)
        dashboard.build()
        dpg.create_viewport(
            title=title,
            width=dashboard.width,
            height=dashboard.height,
            x_pos=0,
            y_pos=0,
            vsync=True,
            clear_color=rgba(BG),
        )
        dpg.setup_dearpygui()
        dpg.show_viewport()
        period = 1.0 / max_fps
        start = time.monotonic()
        shot_done = screenshot is None
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        last_seq, last_render = -1, 0.0
        while dpg.is_dearpygui_running() and not stop["now"]:
            t0 = time.monotonic()
            # Draw when the session published something new (30 Hz), and at least at
            # IDLE_FPS so input is answered while nothing moves; never over max_fps.
            if dashboard.peek() == last_seq and t0 - last_render < 1 / IDLE_FPS:
                time.sleep(period / 2)
                continue
            last_render = t0
            frame = dashboard.read()
            if frame is not None:
                last_seq = frame.seq
                dashboard.update(frame)
            dpg.run_callbacks(dpg.get_callback_queue())
            t1 = time.monotonic()
            dpg.render_dearpygui_frame()
            t2 = time.monotonic()
            dashboard.frame_times_ms.append((t2 - t0) * 1e3)
            dashboard.update_times_ms.append((t1 - t0) * 1e3)
            if not shot_done and time.monotonic() - start >= screenshot_after_s:
                dpg.output_frame_buffer(file=screenshot)
                shot_done = True
                dpg.render_dearpygui_frame()  # the file is written during a frame
            if on_frame is not None and on_frame(dashboard, dpg) is False:
                break
            if seconds is not None and time.monotonic() - start >= seconds and shot_done:
                break
            # Never more than max_load of a core on drawing: with software GL (Xvfb, no
            # GPU) a frame can take tens of milliseconds, and the audio comes first.
            spent = time.monotonic() - t0
            rest = max(period - spent, spent * (1.0 / max_load - 1.0))
            if rest > 0:
                time.sleep(rest)
    finally:
        dpg.destroy_context()
    return EXIT_OK


def be_polite() -> None:
    """Step back for the audio: a lower CPU priority, and one thread for Mesa's software
    renderer (llvmpipe would otherwise rasterise on every core at once). Both only
    matter on machines without a GPU; call before Dear PyGui is imported."""
    os.environ.setdefault("LP_NUM_THREADS", "1")
    with contextlib.suppress(OSError):
        os.nice(5)


def main(argv: list[str] | None = None) -> int:
    """``python -m earmark.ui.dashboard --frame NAME --commands SOCKET``."""
    parser = argparse.ArgumentParser(
        prog="earmark-dashboard", description="The earmark dashboard on a running session."
    )
    parser.add_argument("--frame", required=True, help="state frame (shared memory) name")
    parser.add_argument("--commands", default=None, help="the session's command socket")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--seconds", type=float, default=None, help="close after N seconds")
    parser.add_argument("--screenshot", default=None, metavar="PNG")
    parser.add_argument("--screenshot-after", type=float, default=10.0, metavar="S")
    parser.add_argument(
        "--frame-times",
        default=None,
        metavar="FILE",
        help="write every frame's time (ms) to FILE at exit",
    )
    parser.add_argument(
        "--pointer",
        default=None,
        metavar="X,Y",
        help="move the pointer here first (keeps hover readouts off plots)",
    )
    args = parser.parse_args(argv)
    be_polite()
    if _no_display():
        return EXIT_NO_DISPLAY
    try:
        reader = StateFrameReader(args.frame)
    except StateFrameError as exc:
        print(f"earmark: {exc}", file=sys.stderr)
        return EXIT_NO_SESSION
    if args.pointer:
        from ..xdisplay import XInput

        x, y = (int(v) for v in args.pointer.split(","))
        xin = XInput()
        xin.move(x, y)
        xin.close()
    dash = Dashboard(reader, CommandSender(args.commands), width=args.width, height=args.height)
    rc = run(
        dash,
        seconds=args.seconds,
        screenshot=args.screenshot,
        screenshot_after_s=args.screenshot_after,
    )
    if args.frame_times:
        Path(args.frame_times).write_text(
            "\n".join(
                f"{t:.3f} {u:.3f}"
                for t, u in zip(dash.frame_times_ms, dash.update_times_ms, strict=True)
            )
        )
    reader.close()
    return rc
