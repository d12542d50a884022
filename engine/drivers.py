"""Audio drivers: what calls ``Engine.process`` and where its output goes.

A small interface (STYLE.md item 9) with three implementations:

- :class:`SoundDeviceDriver`: a PortAudio duplex stream (any host API; JACK on
  these machines, CoreAudio/WASAPI/ALSA elsewhere). It counts xruns from the
  callback's status flags, reports the stream's input->output latency, and when
  the stream dies (device unplugged, server gone) it says so and reopens the
  stream once the device is back, without touching the engine's state (the
  meters keep integrating across the gap).
- :class:`NullDriver`: no audio device; a thread runs the engine at real-time
  pace into a discarded buffer (the demo on a headless machine).
- :func:`render`: as fast as possible, for offline rendering and tests.
"""

from __future__ import annotations

import ctypes.util
import gc
import importlib.util
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from earmark.errors import one_line

from .childproc import huge_pages
from .engine import Engine, MeterThread

# sounddevice (0.5.6) sets ndarray.shape inside every callback, which NumPy 2.5
# deprecates: a warning per callback would cost far more than the callback.
warnings.filterwarnings(
    "ignore", message="Setting the shape on a NumPy array", category=DeprecationWarning
)

# While streaming, a Python thread that holds the GIL delays the callback by up
# to the switch interval (5 ms by default, four 64-frame periods): shorten it.
_SWITCH_INTERVAL_S = 0.0001


class AudioDriver(ABC):
    """Runs an engine against some audio I/O."""

    name: str = "driver"

    def __init__(self, engine: Engine, blocksize: int) -> None:
        self.engine = engine
        self.blocksize = int(blocksize)
        self.status = "stopped"
        self._saved_switch: float | None = None

    @abstractmethod
    def start(self) -> None:
        """Begin streaming."""

    @abstractmethod
    def stop(self) -> None:
        """Stop streaming (idempotent)."""

    @property
    def latency_s(self) -> tuple[float, float]:
        """(input, output) latency in seconds as the device reports it."""
        return (0.0, 0.0)

    def _enter_realtime(self) -> None:
        # GC pauses would land in the callback: freeze what exists, stop collecting.
        gc.collect()
        gc.freeze()
        gc.disable()
        self._saved_switch = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL_S)
        huge_pages(False)

    def _leave_realtime(self) -> None:
        if self._saved_switch is not None:
            sys.setswitchinterval(self._saved_switch)
            self._saved_switch = None
        gc.enable()
        gc.unfreeze()
        huge_pages(True)


class SoundDeviceDriver(AudioDriver):
    """A sounddevice (PortAudio) duplex stream driving the engine.

    Args:
        engine: the engine to run.
        device: device name/index for both directions, or (input, output).
        blocksize: frames per callback (64 at 48 kHz is 1.33 ms).
        channels: (input, output) channel counts; input 0 opens output only.
        on_event: called (off the audio thread) with one line for each stream
            event: opened, lost, reopened.
        native: run the engine in the GIL-free native callback (``engine.native``):
            None uses it whenever the engine allows (every chain isolated), True
            requires it (ValueError otherwise), False keeps the Python callback.
    """

    name = "sounddevice"

    def __init__(
        self,
        engine: Engine,
        *,
        device: object = None,
        blocksize: int = 64,
        channels: tuple[int, int] = (2, 2),
        on_event: Callable[[str], None] | None = None,
        reopen_interval_s: float = 1.0,
        native: bool | None = None,
    ) -> None:
        super().__init__(engine, blocksize)
        self.native = native
        self._plan = None  # the native callback's plan while it runs
        self.device = device
        self.channels = channels
        self.on_event = on_event or (lambda msg: None)
        self.reopen_interval_s = reopen_interval_s
        self._stream = None
        self._want_running = False
        self._lost = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._dead: list = []
        self._sd = None  # the sounddevice module instance in use (see fresh_portaudio)
        self._meters = MeterThread(engine)
        self.reopens = 0

    def _open(self) -> None:
        if self._sd is None:
            import sounddevice

            self._sd = sounddevice
        sd = self._sd

        ch_in, ch_out = self.channels
        engine = self.engine

        def finished() -> None:  # PortAudio thread, after the stream ended
            if self._want_running:
                self._lost.set()

        kwargs = dict(
            samplerate=engine.sample_rate,
            blocksize=self.blocksize,
            dtype="float32",
            finished_callback=finished,
            device=self.device,
        )
        channels = (ch_in, ch_out) if ch_in > 0 else ch_out
        if self._plan is not None:
            from .native import callback as native_callback

            stream = sd._StreamBase(
                kind="duplex" if ch_in > 0 else "output",
                channels=channels,
                callback=native_callback.address,  # machine code: PortAudio calls it directly
                userdata=sd._ffi.cast("void*", self._plan.address),
                wrap_callback=None,
                **kwargs,
            )
        elif ch_in > 0:

            def callback(indata, outdata, frames, _time, status) -> None:  # audio thread
                engine.process(indata, outdata, frames, bool(status))

            stream = sd.Stream(channels=channels, callback=callback, **kwargs)
        else:
            stream = sd.OutputStream(
                channels=channels,
                callback=lambda outdata, frames, t, status: engine.process(
                    None, outdata, frames, bool(status)
                ),
                **kwargs,
            )
        stream.start()
        self._stream = stream
        self.status = "streaming"

    @property
    def callback_kind(self) -> str:
        """Which callback runs the engine: "native" (no GIL) or "Python"."""
        return "native" if self._plan is not None else "Python"

    def _native_plan(self):
        """The native callback's plan when it is to run, else None (see ``native``)."""
        if self.native is False:
            return None
        try:
            from . import native
        except Exception as exc:  # no machine code for this platform (C library, numba)
            if self.native:
                raise ValueError(f"the native callback is not available here: {exc}") from exc
            return None
        reason = native.unsupported(self.engine)
        if reason is None:
            return native.NativePlan(self.engine, *self.channels)
        if self.native:
            raise ValueError(f"the native callback cannot run this engine: {reason}")
        return None

    def start(self) -> None:
        self._plan = self._native_plan()
        self._want_running = True
        self._enter_realtime()
        self.engine.realtime = True
        self._meters.start()
        if self._plan is not None:
            self.engine.native = True
            self.engine.drain_commands()
        try:
            self._open()
        except Exception:
            self.engine.native = False
            self._meters.stop()
            self.engine.realtime = False
            self._leave_realtime()
            raise
        self.on_event(f"stream open: {self.describe()}")
        self._watchdog = threading.Thread(target=self._watch, name="earmark-watchdog", daemon=True)
        self._watchdog.start()

    def describe(self) -> str:
        """One line: device, rate, block, latency."""
        if self._stream is None:
            return "no stream"
        lat = self.latency_s
        dev = self._stream.device
        return (
            f"device {dev}, {self.engine.sample_rate} Hz, {self.blocksize} frames, "
            f"latency in {lat[0] * 1e3:.1f} ms / out {lat[1] * 1e3:.1f} ms, "
            f"{self.callback_kind} callback"
        )

    @property
    def latency_s(self) -> tuple[float, float]:
        if self._stream is None:
            return (0.0, 0.0)
        lat = self._stream.latency
        return (float(lat[0]), float(lat[1])) if isinstance(lat, tuple) else (0.0, float(lat))

    def _watch(self) -> None:
        """Notice a dead stream, say so, and open a new one once the device is back.

        PortAudio's JACK backend deadlocks in Pa_AbortStream/Pa_CloseStream/
        Pa_Terminate once its server has gone (measured: all four wait forever),
        and it keeps its dead JACK client, so no new stream opens in that
        PortAudio instance either. So a dead stream is never touched again, its
        instance's exit handler is dropped, and new streams are opened in a
        fresh PortAudio instance (:func:`fresh_portaudio`), tried every
        ``reopen_interval_s`` until the device answers.
        """
        import atexit

        while self._want_running:
            if not self._lost.wait(timeout=0.5):
                stream = self._stream
                # Not every host API calls finished_callback when its server dies.
                if stream is None or stream.active or not self._want_running:
                    continue
            if not self._want_running:
                break
            self.status = "device lost"
            self.engine.realtime = False  # no callbacks to wait for (Engine.after_callback)
            self.on_event("stream lost: the audio device or server went away; retrying")
            if self._stream is not None:
                self._dead.append(self._stream)  # never closed: that would hang
                self._stream = None
            if self._sd is not None:
                atexit.unregister(self._sd._exit_handler)
                self._dead.append(self._sd)
            attempts = 0
            while self._want_running:
                time.sleep(self.reopen_interval_s)
                attempts += 1
                try:
                    self._sd = fresh_portaudio()
                    self._open()
                except Exception as exc:  # still gone
                    self.status = f"device lost: {one_line(exc, name=True)} ({attempts} retries)"
                    _release(self._sd)  # it has no stream: safe to terminate and unload
                    self._sd = None
                    continue
                self._lost.clear()
                self.engine.realtime = True
                self.reopens += 1
                self.on_event(f"stream reopened after {attempts} tries: {self.describe()}")
                break

    def _close_quietly(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)
        except Exception:
            pass

    def stop(self) -> None:
        self._want_running = False
        self._lost.set()
        self._close_quietly()
        if self._watchdog is not None:
            self._watchdog.join(timeout=2.0)
            self._watchdog = None
        self.engine.native = False
        self._meters.stop()
        self.engine.realtime = False
        self._leave_realtime()
        self.status = "stopped"


_instances = itertools.count(1)


def fresh_portaudio():
    """A new, independent sounddevice module on its own copy of the PortAudio library.

    ``dlopen`` of a different file gives the library fresh globals, so the new
    instance initialises PortAudio (and its JACK client) from scratch while the
    old one, stuck with a dead server, is left alone. The copy is unlinked once
    loaded. Raises OSError when the library cannot be located or copied.
    """
    import sounddevice

    source = _loaded_library_path(sounddevice._libname)
    n = next(_instances)
    folder = tempfile.mkdtemp(prefix="earmark-portaudio-")
    copy = os.path.join(folder, f"portaudio-{n}{os.path.splitext(source)[1] or '.so'}")
    shutil.copyfile(source, copy)
    saved = ctypes.util.find_library
    ctypes.util.find_library = lambda name: copy if name == "portaudio" else saved(name)
    try:
        spec = importlib.util.spec_from_file_location(
            f"_earmark_sounddevice_{n}", sounddevice.__file__
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        ctypes.util.find_library = saved
        shutil.rmtree(folder, ignore_errors=True)  # the mapping outlives the file (POSIX)
    return module


def _release(module) -> None:
    """Terminate and unload a fresh PortAudio instance that never opened a stream.

    Only safe for an instance with no stream on a dead server (that is what
    deadlocks); without this, an outage of an hour would map thousands of copies.
    """
    if module is None:
        return
    import atexit

    atexit.unregister(module._exit_handler)
    try:
        module._terminate()
        module._ffi.dlclose(module._lib)
    except Exception:
        pass


def _loaded_library_path(libname: str) -> str:
    """The file behind sounddevice's ``_libname`` (a path, or a soname on Linux)."""
    if os.path.isabs(libname) and os.path.exists(libname):
        return libname
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                base, want = os.path.basename(path), os.path.basename(libname)
                if base == want or base.startswith(want + "."):  # soname -> real file
                    return path
    except OSError:
        pass
    raise OSError(f"cannot locate the PortAudio library {libname!r} to load a fresh copy")


class NullDriver(AudioDriver):
    """No audio device: run the engine at real-time pace, output discarded."""

    name = "null sink"

    def __init__(self, engine: Engine, blocksize: int = 64) -> None:
        super().__init__(engine, blocksize)
        self._thread: threading.Thread | None = None
        self._running = False

    def start(self) -> None:
        self._running = True
        self._enter_realtime()
        self._thread = threading.Thread(target=self._run, name="earmark-null-sink", daemon=True)
        self._thread.start()
        self.status = "streaming (null sink)"

    def _run(self) -> None:
        n = self.blocksize
        out = np.zeros((n, 2), dtype=np.float32)
        period = n / self.engine.sample_rate
        deadline = time.perf_counter()
        while self._running:
            self.engine.process(None, out, n, False)
            deadline += period
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elif delay < -0.5:  # fell far behind (suspended?): resynchronise
                deadline = time.perf_counter()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._leave_realtime()
        self.status = "stopped"


def render(
    engine: Engine, seconds: float, blocksize: int = 512, indata: np.ndarray | None = None
) -> np.ndarray:
    """Run the engine for ``seconds`` as fast as possible; returns the monitor output.

    ``indata`` (frames, channels) feeds live-input sources, block by block.
    """
    total = int(round(seconds * engine.sample_rate))
    out = np.zeros((total, 2), dtype=np.float32)
    pos = 0
    while pos < total:
        n = min(blocksize, total - pos)
        block_in = None if indata is None else indata[pos : pos + n]
        engine.process(block_in, out[pos : pos + n], n, False)
        pos += n
    return out
