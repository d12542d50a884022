"""The X display, through libX11 and libXtst with ctypes (no Python dependency).

Dear PyGui (GLFW) aborts the whole process with SIGABRT when it cannot open a
display, so the dashboard asks :func:`display_available` first; that opens and
closes a connection with ``XOpenDisplay``, which fails with a NULL instead.

:class:`XInput` sends real input events through the XTEST extension (Xvfb
has it): the tests press keys and click buttons the way a user does, and move
the pointer off the plots, whose hover readouts would change pixels.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping

__all__ = ["XInput", "display_available"]


def _x11() -> ctypes.CDLL | None:
    lib = ctypes.util.find_library("X11")
    if lib is None:
        return None
    try:
        x11 = ctypes.CDLL(lib)
    except OSError:
        return None
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    return x11


def display_available(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether an X display can be opened; (ok, reason in words)."""
    env = os.environ if env is None else env
    display = env.get("DISPLAY", "")
    if not display:
        return False, "no display (DISPLAY is not set)"
    x11 = _x11()
    if x11 is None:
        return False, "no display (libX11 is not installed)"
    handle = x11.XOpenDisplay(display.encode())
    if not handle:
        return False, f"no display (cannot open X display {display!r})"
    x11.XCloseDisplay(handle)
    return True, f"X display {display}"


class XInput:
    """Real keyboard and pointer events on an X display (XTEST)."""

    def __init__(self, display: str | None = None) -> None:
        x11 = _x11()
        xtst_name = ctypes.util.find_library("Xtst")
        if x11 is None or xtst_name is None:
            raise OSError("XTEST input needs libX11 and libXtst (Debian: libxtst6)")
        self._x11 = x11
        self._xtst = ctypes.CDLL(xtst_name)
        name = (display or os.environ.get("DISPLAY", "")).encode()
        self._dpy = x11.XOpenDisplay(name)
        if not self._dpy:
            raise OSError(f"cannot open X display {name.decode()!r}")
        x11.XStringToKeysym.restype = ctypes.c_ulong
        x11.XStringToKeysym.argtypes = [ctypes.c_char_p]
        x11.XKeysymToKeycode.restype = ctypes.c_ubyte
        x11.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x11.XFlush.argtypes = [ctypes.c_void_p]
        x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
        for fn in ("XTestFakeKeyEvent", "XTestFakeButtonEvent"):
            getattr(self._xtst, fn).argtypes = [
                ctypes.c_void_p,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_ulong,
            ]
        self._xtst.XTestFakeMotionEvent.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_ulong,
        ]

    def move(self, x: int, y: int) -> None:
        """Move the pointer to screen position (x, y)."""
        screen = self._x11.XDefaultScreen(self._dpy)
        self._xtst.XTestFakeMotionEvent(self._dpy, screen, int(x), int(y), 0)
        self._x11.XSync(self._dpy, 0)

    def key(self, keysym: str, press: bool | None = None) -> None:
        """Press and release (or only press/release) a key by X keysym name ("space", "b")."""
        code = self._x11.XKeysymToKeycode(self._dpy, self._x11.XStringToKeysym(keysym.encode()))
        if not code:
            raise ValueError(f"no keycode for keysym {keysym!r}")
        for down in (True, False) if press is None else (press,):
            self._xtst.XTestFakeKeyEvent(self._dpy, code, int(down), 0)
            self._x11.XSync(self._dpy, 0)

    def button(self, number: int = 1, press: bool | None = None) -> None:
        """Press and release (or only press/release) a pointer button (1 = left)."""
        for down in (True, False) if press is None else (press,):
            self._xtst.XTestFakeButtonEvent(self._dpy, int(number), int(down), 0)
            self._x11.XSync(self._dpy, 0)

    def close(self) -> None:
        if self._dpy:
            self._x11.XCloseDisplay(self._dpy)
            self._dpy = None
