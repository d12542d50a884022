"""The running chain: one block at a time on the audio thread, edited from any other.

:func:`build_chain` turns a :class:`ChainSpec` into a :class:`Chain` for one
sample rate and channel count. :meth:`Chain.process` is called from the audio
thread with one block at a time; the edits (:meth:`Chain.set_parameter`,
:meth:`Chain.set_bypass`, :meth:`Chain.add`, :meth:`Chain.remove`) are called
from any other thread. An edit prepares a new immutable list of plugin slots
off the audio thread and publishes it with one attribute assignment; the
audio thread reads that attribute once per block and never waits for an edit
(STYLE.md item 7). Parameter values reach the live plugin instances at the
next block boundary, applied by the audio thread itself, so a plugin is only
ever touched by one thread while it streams and keeps its state (a
compressor's envelope, a limiter's lookahead) across the change.

:attr:`Chain.latency_samples` is the sum of the plugins' latencies, measured
when they are built (:mod:`.build`); a latent plugin's short first outputs are
padded, so every block comes back as long as it went in.

Bypass keeps a chain's timing: a bypassed plugin still runs (its state stays
current, and it still costs its CPU), its output is replaced by the input
delayed by the plugin's latency, and the switch is a linear crossfade of at
most :data:`BYPASS_RAMP_S` within the next block. Adding or removing a plugin
changes :attr:`Chain.latency_samples`.

Non-finite plugin output (NaN/Inf) never leaves the chain: the block becomes
silence, :attr:`Chain.nonfinite_blocks` counts it and
:attr:`Chain.last_nonfinite_plugin` names the plugin (0-based index). Nor does
an output of the wrong shape or type: it counts as the plugin raising, in
:attr:`Chain.error_blocks` and :attr:`Chain.last_error`. (An empty output is
silence, whatever its shape: pedalboard shapes a latent plugin's first, empty
outputs for 1- and 2-frame stereo blocks (frames, 0).)"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from .. import rt
from ..rt import MAX_BLOCK_FRAMES
from .describe import ChainLike
from .spec import ChainSpec, ParamDef, ParamValue, PluginSpec, resolve_values

__all__ = ["BYPASS_RAMP_S", "Chain", "Runtime", "Slot", "SlotBuilder", "pad"]

BYPASS_RAMP_S = 0.005  # 5 ms: long enough not to click, short enough to feel instant
_RETIRE_AFTER_S = 2.0  # removed plugins are freed off the audio thread after this


class SlotBuilder(Protocol):
    """What a running chain needs made off the audio thread (``build.PluginBuilder``):
    new plugins, a built-in's latency measured again, instances prepared for streaming.
    Handed in, so this module never touches pedalboard's constructors."""

    def slot(self, spec: PluginSpec, warnings: list[str]) -> Slot:
        """Build and measure one plugin (its warnings appended to ``warnings``)."""
        ...

    def builtin_latency(
        self, name: str, values: Mapping[str, tuple[ParamDef, ParamValue]], channels: int
    ) -> int:
        """A built-in's latency with these values, measured on a fresh copy."""
        ...

    def prime(self, instances: Sequence[Any], channels: int) -> None:
        """Prepare instances for the largest block, so streaming never re-prepares them."""
        ...

    def builtin_value(self, name: str, target: str, native: ParamValue) -> Any:
        """A built-in parameter's value as pedalboard takes it (an enum for a mode)."""
        ...


class _DelayLine:
    """A whole-sample delay for the bypass path (audio thread only).

    Fed every block (so its history is right the moment bypass engages) through
    a preallocated ring; the delayed block is copied out only when it is heard.
    """

    __slots__ = ("_delay", "_out", "_pos", "_ring")

    def __init__(self, delay: int, channels: int) -> None:
        self._delay = delay
        self._ring = np.zeros((delay + 1, channels), dtype=np.float32)
        self._out = np.zeros((MAX_BLOCK_FRAMES, channels), dtype=np.float32)
        self._pos = 0

    def feed(self, x: np.ndarray) -> None:
        if self._delay:
            self._pos = rt.delay(x, x.shape[0], self._ring, self._pos, self._delay, self._out)

    def delayed(self, x: np.ndarray) -> np.ndarray:
        """The block fed last, delayed (``x`` itself when there is no delay)."""
        return self._out[: x.shape[0]].copy() if self._delay else x


class Runtime:
    """Per-slot state owned by the audio thread: bypass path and fault counters."""

    __slots__ = ("bypassed", "delay", "errors", "last_error", "nonfinite")

    def __init__(self, latency: int, channels: int, bypassed: bool) -> None:
        self.delay = _DelayLine(latency, channels)
        self.bypassed = bypassed  # what the audio thread rendered last
        self.nonfinite = 0
        self.errors = 0
        self.last_error: str | None = None

    def moved_to(self, latency: int, channels: int) -> Runtime:
        """A runtime for a new latency, keeping the counters and the bypass state."""
        other = Runtime(latency, channels, self.bypassed)
        other.nonfinite, other.errors, other.last_error = self.nonfinite, self.errors, None
        return other


class Slot:
    """One plugin of a published chain state.

    Immutable once published, except ``applied`` (set by the audio thread once
    ``writes`` reached the instances; shared by versions with the same writes)
    and ``runtime`` (the audio thread's own state).
    """

    __slots__ = (
        "applied",
        "bypass",
        "defs",
        "external",
        "instances",
        "latency",
        "parameters",
        "runtime",
        "sample_rate",
        "spec",
        "values",
        "writes",
    )

    def __init__(
        self,
        spec: PluginSpec,
        instances: tuple[Any, ...],
        defs: tuple[ParamDef, ...],
        values: dict[str, tuple[ParamDef, ParamValue]],
        latency: int,
        runtime: Runtime,
        sample_rate: float,
        external: bool = False,
        parameters: Mapping[str, Any] | None = None,
        writes: tuple[tuple[str, Any], ...] = (),
    ) -> None:
        self.spec = spec
        self.instances = instances
        self.defs = defs
        self.values = values
        self.latency = latency
        self.runtime = runtime
        self.sample_rate = sample_rate
        self.external = external
        self.parameters = parameters  # pedalboard's parameter objects (external plugins)
        self.bypass = spec.bypass
        self.writes = writes
        self.applied = [not writes]

    def evolve(self, **changes: Any) -> Slot:
        names = (
            "spec",
            "instances",
            "defs",
            "values",
            "latency",
            "runtime",
            "sample_rate",
            "external",
            "parameters",
            "writes",
        )
        fields = {name: changes.get(name, getattr(self, name)) for name in names}
        new = Slot(**fields)
        if "writes" not in changes:
            new.applied = self.applied
        return new

    def run(self, x: np.ndarray, frames: int) -> np.ndarray:
        """The plugin's output for ``x``, exactly ``frames`` long (audio thread)."""
        instances = self.instances
        if len(instances) == 1:
            y = instances[0].process(x, self.sample_rate, MAX_BLOCK_FRAMES, False)
            return pad(y, frames, x.shape[1])
        out = np.empty_like(x)
        for channel, inst in enumerate(instances):
            mono = np.ascontiguousarray(x[:, channel : channel + 1])
            y = inst.process(mono, self.sample_rate, MAX_BLOCK_FRAMES, False)
            out[:, channel : channel + 1] = pad(y, frames, 1)
        return out

    def apply_writes(self) -> None:
        """Hand pending parameter values to the plugin instances (audio thread)."""
        try:
            if self.external:
                for inst in self.instances:
                    for cpp_name, raw in self.writes:
                        parameter = inst._get_parameter(cpp_name)
                        if parameter is not None:
                            parameter.raw_value = raw
            else:
                for inst in self.instances:
                    for attr, value in self.writes:
                        setattr(inst, attr, value)
        finally:
            # Once is enough, even when a value was refused: retrying every block would
            # repeat the error forever.
            self.applied[0] = True


@dataclass(frozen=True, slots=True)
class _State:
    slots: tuple[Slot, ...]
    spec: ChainSpec
    latency: int


class Chain(ChainLike):
    """A running chain of pedalboard plugins for one sample rate and channel count.

    Built by :func:`build_chain`. :meth:`process` belongs to the audio thread;
    every other method may be called from any other thread, and none of them
    makes :meth:`process` wait. Indexes count from 0. ``describe()`` and
    ``bypass_all()`` come from :class:`ChainLike`, shared with ``IsolatedChain``.
    """

    def __init__(
        self,
        spec: ChainSpec,
        slots: Sequence[Slot],
        sample_rate: float,
        channels: int,
        builder: SlotBuilder,
        warnings: Sequence[str] = (),
    ) -> None:
        self.sample_rate = float(sample_rate)
        self.channels = int(channels)
        self.warnings: list[str] = list(warnings)
        self.nonfinite_blocks = 0  # blocks replaced by silence because a plugin output NaN/Inf
        self.last_nonfinite_plugin: int | None = None
        self.nonfinite_input_blocks = 0  # blocks whose input was not finite (silenced on entry)
        self.error_blocks = 0  # blocks silenced because a plugin raised
        self.last_error: str | None = None
        self._builder = builder
        self._edit_lock = threading.Lock()
        self._retired: list[tuple[float, Slot]] = []
        self._ramp_frames = max(1, round(BYPASS_RAMP_S * self.sample_rate))
        self._state = _State(tuple(slots), spec, sum(s.latency for s in slots))

    # -- reading ---------------------------------------------------------------------

    @property
    def spec(self) -> ChainSpec:
        """The chain as it is now, edits included (save it to reproduce the sound)."""
        return self._state.spec

    @property
    def latency_samples(self) -> int:
        """Delay from input to output in samples; bypassed plugins keep theirs."""
        return self._state.latency

    @property
    def plugins(self) -> tuple[Any, ...]:
        """The pedalboard plugin objects (the first instance of a dual-mono pair)."""
        return tuple(slot.instances[0] for slot in self._state.slots)

    @property
    def instances(self) -> tuple[tuple[Any, ...], ...]:
        """Every plugin instance per slot (one per channel for dual-mono)."""
        return tuple(slot.instances for slot in self._state.slots)

    @property
    def bypassed(self) -> tuple[bool, ...]:
        return tuple(slot.bypass for slot in self._state.slots)

    @property
    def dual_mono(self) -> tuple[bool, ...]:
        return tuple(len(slot.instances) > 1 for slot in self._state.slots)

    @property
    def plugin_latencies(self) -> tuple[int, ...]:
        return tuple(slot.latency for slot in self._state.slots)

    @property
    def nonfinite_counts(self) -> tuple[int, ...]:
        """Per plugin: blocks in which it produced non-finite output."""
        return tuple(slot.runtime.nonfinite for slot in self._state.slots)

    def parameter_values(self, index: int) -> dict[str, float]:
        """Plugin ``index``'s numeric parameters as it holds them now, by pedalboard
        name (``threshold_db``): the values a preset left at the plugin's default
        included, an edit the audio thread has not applied yet too. Not for the
        audio thread."""
        slot = self._slot(self._state, index)
        plugin = slot.instances[0]
        values: dict[str, float] = {}
        for d in slot.defs:
            if d.kind != "float":
                continue
            if d.target in slot.values:
                value = slot.values[d.target][1]
            else:
                try:
                    value = getattr(plugin, d.target)
                except Exception:  # a plugin may refuse to report one
                    continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                values[d.target] = number
        return values

    def __len__(self) -> int:
        return len(self._state.slots)

    def reset_counters(self) -> None:
        """Forget faults counted so far (after the warm-up block, before streaming)."""
        self.nonfinite_blocks = self.nonfinite_input_blocks = self.error_blocks = 0
        self.last_nonfinite_plugin = self.last_error = None
        for slot in self._state.slots:
            slot.runtime.nonfinite = slot.runtime.errors = 0
            slot.runtime.last_error = None

    # -- the audio thread ----------------------------------------------------------------

    def process(self, block: np.ndarray) -> np.ndarray:
        """Run one block, float32 shaped (frames, channels); return a new array of that shape.

        Audio-thread rules: no locks, bounded work, never raises for a plugin's
        fault. Pending parameter values are applied first; a plugin that raises
        or outputs NaN/Inf turns the block into silence and is counted.
        """
        state = self._state  # the one read of the published state for this block
        x = block
        if x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"block must be shaped (frames, {self.channels}), got {np.shape(block)}"
            )
        frames = x.shape[0]
        if not rt.all_finite(x, frames):
            self.nonfinite_input_blocks += 1
            clean = np.empty_like(x)
            rt.copy_zeroing_non_finite(x, frames, clean)
            x = clean
        if frames == 0 or not state.slots:
            return x.copy() if x is block else x
        raised: int | None = None  # first plugin that raised in this block
        nonfinite: int | None = None  # first audible plugin that output NaN/Inf
        for index, slot in enumerate(state.slots):
            runtime = slot.runtime
            try:
                if not slot.applied[0]:
                    slot.apply_writes()
                wet = slot.run(x, frames)
            except Exception as exc:
                runtime.errors += 1
                runtime.last_error = str(exc)
                self.last_error = f"plugin {index + 1} ({slot.spec.title}): {exc}"
                raised = index if raised is None else raised
                wet = np.zeros_like(x)
            if not rt.all_finite(wet, frames):
                # Downstream plugins get silence, so the fault does not poison their state.
                wet = np.zeros_like(x)
                if not (slot.bypass and runtime.bypassed):  # an audible plugin
                    runtime.nonfinite += 1
                    nonfinite = index if nonfinite is None else nonfinite
            x = self._mix(slot, runtime, x, wet, frames)
        if raised is not None or nonfinite is not None:
            if raised is not None:
                self.error_blocks += 1
            if nonfinite is not None:
                self.nonfinite_blocks += 1
                self.last_nonfinite_plugin = nonfinite
            return np.zeros_like(x)
        # Never hand back the caller's own array (all plugins bypassed, no latency).
        return x.copy() if x is block else x

    def _mix(
        self, slot: Slot, runtime: Runtime, dry: np.ndarray, wet: np.ndarray, frames: int
    ) -> np.ndarray:
        runtime.delay.feed(dry)
        target = slot.bypass
        if target == runtime.bypassed:
            return runtime.delay.delayed(dry) if target else wet
        delayed = runtime.delay.delayed(dry)
        # A bypass switch: a linear crossfade (both sides are the same signal, in phase).
        runtime.bypassed = target
        n = min(frames, self._ramp_frames)
        start, end = (wet, delayed) if target else (delayed, wet)
        out = end.copy()
        fade = (np.arange(1, n + 1, dtype=np.float32) / np.float32(n))[:, None]
        out[:n] = end[:n] * fade + start[:n] * (np.float32(1.0) - fade)  # exact at both ends
        return out

    # -- edits (any thread but the audio thread) --------------------------------------------

    def set_parameter(self, index: int, name_with_unit: str, value: ParamValue) -> None:
        """Set a parameter by its preset key (``"threshold_db"``, ``"attack_s"``).

        Checked like a preset value (:class:`PresetError` on a bad one); reaches
        the plugin at the next block. A built-in whose latency depends on the
        parameter (BrickwallLimiter's lookahead) is measured again.
        """
        with self._edit_lock:
            state = self._state
            slot = self._slot(state, index)
            probe = replace(
                slot.spec,
                params=((name_with_unit, value),),
                source=None,
                lines=(),
                number=index + 1,
            )
            ((d, native),) = resolve_values(probe, slot.defs, self.sample_rate).values()
            values = dict(slot.values)
            values[d.target] = (d, native)
            # Values published but not yet applied must travel with this edit: the audio
            # thread may skip straight to the newest state.
            pending = {name for name, _ in slot.writes} if not slot.applied[0] else set()
            pending.add(str(d.cpp_name) if slot.external else d.target)
            writes = tuple(self._write(slot, values, name) for name in sorted(pending))
            spec = replace(slot.spec, params=_replace_param(slot, d.target, name_with_unit, value))
            latency = slot.latency
            if d.latency and not slot.external:
                width = self._slot_channels(slot)
                latency = self._builder.builtin_latency(spec.target, values, width)
            runtime = slot.runtime
            if latency != slot.latency:
                runtime = runtime.moved_to(latency, self.channels)
            new = slot.evolve(
                spec=spec, values=values, writes=writes, latency=latency, runtime=runtime
            )
            self._publish(state, index, new)

    def set_bypass(self, index: int, bypass: bool) -> None:
        """Bypass or restore a plugin from the next block on (with a 5 ms crossfade)."""
        with self._edit_lock:
            state = self._state
            slot = self._slot(state, index)
            self._publish(state, index, slot.evolve(spec=replace(slot.spec, bypass=bool(bypass))))

    def add(self, plugin: PluginSpec, index: int | None = None) -> None:
        """Insert a plugin (at the end by default). It is built and measured here, off
        the audio thread; only the finished list is published."""
        if not plugin.number:
            plugin = replace(plugin, number=len(self) + 1 if index is None else index + 1)
        slot = self._builder.slot(plugin, self.warnings)
        with self._edit_lock:
            state = self._state
            slots = list(state.slots)
            position = len(slots) if index is None else index
            if not 0 <= position <= len(slots):
                raise IndexError(f"plugin index {index} out of range 0..{len(slots)}")
            slots.insert(position, slot)
            self._swap(slots, state.spec)

    def remove(self, index: int) -> PluginSpec:
        """Take a plugin out and return its spec (its instances are freed off the audio thread)."""
        with self._edit_lock:
            state = self._state
            slot = self._slot(state, index)
            slots = list(state.slots)
            del slots[index]
            self._swap(slots, state.spec)
            # The audio thread may still be inside a block that uses it; freeing a
            # plugin (unloading a VST3) there would cost that block dearly.
            self._retired.append((time.monotonic(), slot))
            return slot.spec

    def reset(self) -> None:
        """Clear every plugin's internal state (tails, envelopes). Not while streaming."""
        with self._edit_lock:
            for slot in self._state.slots:
                for inst in slot.instances:
                    inst.reset()
                self._builder.prime(slot.instances, self._slot_channels(slot))
                slot.runtime.delay = _DelayLine(slot.latency, self.channels)

    # -- helpers -------------------------------------------------------------------------

    def _slot(self, state: _State, index: int) -> Slot:
        if not isinstance(index, int) or not 0 <= index < len(state.slots):
            raise IndexError(f"plugin index {index} out of range 0..{len(state.slots) - 1}")
        return state.slots[index]

    def _slot_channels(self, slot: Slot) -> int:
        return 1 if len(slot.instances) > 1 else self.channels

    def _write(self, slot: Slot, values: Mapping[str, Any], name: str) -> tuple[str, Any]:
        if slot.external:
            d = next(d for d in slot.defs if d.cpp_name == name)
            parameter = (slot.parameters or {})[d.target]
            return name, float(parameter.get_raw_value_for(values[d.target][1]))
        d, native = values[name]
        return name, self._builder.builtin_value(slot.spec.target, name, native)

    def _publish(self, state: _State, index: int, slot: Slot) -> None:
        slots = list(state.slots)
        slots[index] = slot
        self._swap(slots, state.spec)

    def _swap(self, slots: Sequence[Slot], spec: ChainSpec) -> None:
        spec = replace(spec, plugins=tuple(s.spec for s in slots))
        # The single publishing step: the audio thread sees the old or the new state.
        self._state = _State(tuple(slots), spec, sum(s.latency for s in slots))
        now = time.monotonic()
        self._retired = [(t, s) for t, s in self._retired if now - t < _RETIRE_AFTER_S]


def _replace_param(
    slot: Slot, target: str, key: str, value: ParamValue
) -> tuple[tuple[str, ParamValue], ...]:
    """The spec's parameters with ``target`` set by ``key``, in place when it was set before."""
    params: list[tuple[str, ParamValue]] = []
    for k, v in slot.spec.params:
        if _target_of(slot.defs, k) != target:
            params.append((k, v))
        elif (key, value) not in params:
            params.append((key, value))
    if (key, value) not in params:
        params.append((key, value))
    return tuple(params)


def _target_of(defs: Sequence[ParamDef], key: str) -> str | None:
    for d in defs:
        if key in d.key_factors():
            return d.target
    return None


def pad(y: np.ndarray, frames: int, channels: int) -> np.ndarray:
    """Left-pad a short output with silence: a latent plugin's first blocks are short.

    An empty output is no output, whatever its shape: pedalboard shapes a latent
    plugin's empty output for a 1- or 2-frame stereo block (frames, 0), whose memory
    the audio kernels would read past. Raises ValueError for anything else that is
    not a float32 array of at most (``frames``, ``channels``).
    """
    if isinstance(y, np.ndarray) and y.size == 0:
        return np.zeros((frames, channels), dtype=np.float32)
    if (
        not isinstance(y, np.ndarray)
        or y.dtype != np.float32
        or y.ndim != 2
        or y.shape[1] != channels
        or y.shape[0] > frames
    ):
        shown = tuple(y.shape) if isinstance(y, np.ndarray) else type(y).__name__
        raise ValueError(
            f"returned {shown} for a ({frames}, {channels}) block"
            + (f" ({y.dtype})" if isinstance(y, np.ndarray) and y.dtype != np.float32 else "")
        )
    if y.shape[0] == frames:
        return y
    out = np.zeros((frames, channels), dtype=np.float32)
    out[frames - y.shape[0] :] = y
    return out
