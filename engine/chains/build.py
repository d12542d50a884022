"""Building a chain from its spec: plugins instantiated, checked, measured and primed.

:func:`build_chain` turns a :class:`~.spec.ChainSpec` into a running
:class:`~.chain.Chain`. :attr:`Chain.latency_samples` is the sum of the plugins'
latencies: a VST3's own report (pedalboard exposes it; an impulse pushed
through at build time cross-checks it and a disagreement lands in
:attr:`Chain.warnings`), a built-in's measured with an impulse through a fresh
copy (pedalboard reports none for built-ins). Every plugin is prepared for
:data:`MAX_BLOCK_FRAMES` before it streams, so no block size ever makes
pedalboard re-prepare (and clear) it mid-stream.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .. import plugins
from ..rt import MAX_BLOCK_FRAMES
from .chain import Chain, Runtime, Slot, pad
from .spec import (
    ChainSpec,
    ParamDef,
    ParamValue,
    PluginSpec,
    builtin_defs,
    external_defs,
    resolve_values,
    spec_error,
)

__all__ = ["PluginBuilder", "build_chain"]

# Every plugin is prepared once for blocks of MAX_BLOCK_FRAMES (rt) and then always
# handed blocks no larger (pedalboard splits bigger ones), so a stream never
# triggers a re-prepare, which would clear the plugin's state mid-stream.
_LATENCY_PROBE_S = 1.0  # the impulse response window: longer than any plugin's latency
_LATENCY_IMPULSE = 0.25  # -12 dBFS: below limiter ceilings, above gates' thresholds


def build_chain(
    spec: ChainSpec,
    sample_rate: float,
    channels: int,
    search_path: Sequence[str | os.PathLike[str]] | None = None,
    cache_file: str | os.PathLike[str] | None = None,
) -> Chain:
    """Instantiate every plugin of ``spec`` for ``sample_rate`` and ``channels``.

    VST3 plugins are found by :func:`earmark.engine.plugins.resolve` (scanned
    name or path) and validated in a child process before they are loaded
    here. Each plugin's latency is measured with an impulse (built-ins on a
    fresh copy; external plugins on the instance, which is then reset) and
    compared with what the plugin reports.

    Raises:
        PresetError: naming the file, line and key, e.g. an unknown VST3, a
            parameter outside the plugin's range, a mono-only plugin with
            ``mono = "off"`` on stereo material.
    """
    if not 1 <= int(channels) <= 64:
        raise ValueError(f"channels must be between 1 and 64, got {channels}")
    if not 8000 <= float(sample_rate) <= 384000:
        raise ValueError(f"sample_rate must be between 8000 and 384000 Hz, got {sample_rate}")
    warnings: list[str] = []
    numbered = [p if p.number else replace(p, number=i) for i, p in enumerate(spec.plugins, 1)]
    builder = PluginBuilder(float(sample_rate), int(channels), search_path, cache_file)
    slots = [builder.slot(p, warnings) for p in numbered]
    chain = Chain(spec, slots, sample_rate, channels, builder, warnings)
    # The first block loads compiled kernels (~0.3 s): do it here, not in the audio
    # callback. One sample of silence, as if the stream had started a sample earlier.
    chain.process(np.zeros((1, int(channels)), dtype=np.float32))
    chain.reset_counters()
    return chain


class PluginBuilder:
    """Makes the plugins of one chain (its sample rate, channels and plugin search):
    the ``SlotBuilder`` a :class:`Chain` calls for its edits, off the audio thread."""

    def __init__(
        self,
        sample_rate: float,
        channels: int,
        search_path: Sequence[str | os.PathLike[str]] | None = None,
        cache_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.search_path = search_path
        self.cache_file = cache_file

    def slot(self, spec: PluginSpec, warnings: list[str]) -> Slot:
        """Build, measure and prime one plugin; its warnings go to ``warnings``."""
        if spec.kind == "builtin":
            return _build_builtin(spec, self.sample_rate, self.channels)
        return _build_external(
            spec, self.sample_rate, self.channels, self.search_path, self.cache_file, warnings
        )

    def builtin_latency(
        self, name: str, values: Mapping[str, tuple[ParamDef, ParamValue]], channels: int
    ) -> int:
        """A built-in's latency with these values, measured on a fresh copy."""
        fresh = _make_builtin(name, values)
        return _measure_latency([fresh], self.sample_rate, channels, _window_s(values)) or 0

    def prime(self, instances: Sequence[Any], channels: int) -> None:
        """Prepare instances for the largest block (see :func:`_prime`)."""
        _prime(instances, self.sample_rate, channels)

    def builtin_value(self, name: str, target: str, native: ParamValue) -> Any:
        """A built-in parameter's value as pedalboard takes it."""
        return _builtin_value(name, target, native)


def _build_builtin(spec: PluginSpec, sample_rate: float, channels: int) -> Slot:
    import pedalboard

    defs = builtin_defs(spec)
    if getattr(pedalboard, spec.target, None) is None:
        raise spec_error(
            spec,
            "builtin",
            f"built-in {spec.target!r} is not in the installed pedalboard "
            f"{getattr(pedalboard, '__version__', '')}; a newer pedalboard has it",
        )
    values = resolve_values(spec, defs, sample_rate)
    dual = spec.mono == "dual" and channels > 1
    count = channels if dual else 1
    instances = tuple(_make_builtin(spec.target, values) for _ in range(count))
    width = 1 if dual else channels
    fresh = _make_builtin(spec.target, values)
    latency = _measure_latency([fresh], sample_rate, width, _window_s(values)) or 0
    _prime(instances, sample_rate, width)
    runtime = Runtime(latency, channels, spec.bypass)
    return Slot(spec, instances, defs, values, latency, runtime, sample_rate)


def _make_builtin(name: str, values: Mapping[str, tuple[ParamDef, ParamValue]]) -> Any:
    import pedalboard

    cls = getattr(pedalboard, name)
    kwargs = {
        target: _builtin_value(name, target, native) for target, (_d, native) in values.items()
    }
    return cls(**kwargs)


def _builtin_value(name: str, target: str, native: ParamValue) -> Any:
    if name == "LadderFilter" and target == "mode":
        import pedalboard

        return getattr(pedalboard.LadderFilter.Mode, str(native))
    return native


def _build_external(
    spec: PluginSpec,
    sample_rate: float,
    channels: int,
    search_path: Sequence[str | os.PathLike[str]] | None,
    cache_file: str | os.PathLike[str] | None,
    warnings: list[str],
) -> Slot:
    import pedalboard

    cls_name = "VST3Plugin" if spec.kind == "vst3" else "AudioUnitPlugin"
    cls = getattr(pedalboard, cls_name, None)
    if cls is None:
        where = "macOS" if spec.kind == "au" else "this platform's pedalboard"
        raise spec_error(spec, spec.kind, f"{spec.kind.upper()} plugins need {where}")
    try:
        bundle = plugins.resolve(spec.target, cache_file, search_path)
    except plugins.PluginNotFoundError as exc:
        raise spec_error(spec, spec.kind, str(exc)) from None
    for record in plugins.load_records(cache_file) if cache_file is not None else ():
        if record.path == str(bundle) and not record.ok:
            warnings.append(f"{spec.title}: its probe found {record.reason}")

    def load() -> Any:
        try:
            names = cls.get_plugin_names_for_file(str(bundle))
            wanted = [n for n in names if n.casefold() == spec.target.casefold()]
            return cls(str(bundle), plugin_name=(wanted or names)[0])
        except Exception as exc:
            raise spec_error(spec, spec.kind, f"cannot load {bundle}: {exc}") from None

    first = load()
    infos = plugins.parameter_infos(first)
    defs = external_defs(infos)
    values = resolve_values(spec, defs, sample_rate)
    parameters = first.parameters
    mono_only = channels > 1 and not _accepts(first, channels, sample_rate)
    if mono_only and spec.mono == "off":
        raise spec_error(
            spec,
            "mono" if spec.line_of("mono") != spec.line_of() else spec.kind,
            f"{first.name} is mono-only and the material has {channels} channels; "
            'set mono = "auto" or "dual" to run one instance per channel',
        )
    dual = channels > 1 and (mono_only or spec.mono == "dual")
    if dual and not mono_only and not _accepts(first, 1, sample_rate):
        raise spec_error(
            spec, "mono", f'{first.name} does not accept one channel: mono = "dual" cannot run it'
        )
    instances = [first] + [load() for _ in range(channels - 1 if dual else 0)]
    raws = [
        (d.cpp_name, float(parameters[d.target].get_raw_value_for(native)))
        for d, native in values.values()
    ]
    for inst in instances:
        for cpp_name, raw in raws:
            inst._get_parameter(cpp_name).raw_value = raw
    width = 1 if dual else channels
    # The plugin's own report is the latency (an impulse cannot tell a delay from a
    # wet effect); the impulse is the cross-check, and a disagreement is reported.
    measured = _measure_latency(instances, sample_rate, width)
    reported = int(getattr(first, "reported_latency_samples", 0) or 0)
    for inst in instances:
        inst.reset()
    _prime(instances, sample_rate, width)
    latency = reported
    if measured is not None and measured != reported:
        warnings.append(
            f"{spec.title}: reports {reported} samples of latency but an impulse came out "
            f"after {measured}; using the reported value"
        )
    runtime = Runtime(latency, channels, spec.bypass)
    return Slot(
        spec,
        tuple(instances),
        defs,
        values,
        latency,
        runtime,
        sample_rate,
        external=True,
        parameters=parameters,
    )


def _accepts(plugin: Any, channels: int, sample_rate: float) -> bool:
    """Whether a plugin processes ``channels`` channels (mono-only plugins refuse 2)."""
    try:
        plugin.process(np.zeros((64, channels), np.float32), sample_rate, 64, False)
    except Exception:
        plugin.reset()
        return False
    plugin.reset()
    return True


def _prime(instances: Sequence[Any], sample_rate: float, channels: int) -> None:
    """Prepare each plugin for the largest block it will see, so streaming never re-prepares."""
    silence = np.zeros((MAX_BLOCK_FRAMES, channels), np.float32)
    for inst in instances:
        inst.process(silence, sample_rate, MAX_BLOCK_FRAMES, False)


def _window_s(values: Mapping[str, tuple[ParamDef, ParamValue]]) -> float:
    """How long to listen for the impulse: a long Delay needs more than the default."""
    delay = values.get("delay_seconds")
    return max(_LATENCY_PROBE_S, float(delay[1]) + 0.1) if delay else _LATENCY_PROBE_S


def _measure_latency(
    instances: Sequence[Any],
    sample_rate: float,
    channels: int,
    window_s: float = _LATENCY_PROBE_S,
) -> int | None:
    """Samples from an impulse in to the largest absolute sample out, streamed as live.

    None when nothing came out (a gate shut on the impulse).
    """
    # Whole blocks: a tail of a frame or two would defeat pedalboard's layout guess.
    frames = -(-max(MAX_BLOCK_FRAMES, round(window_s * sample_rate)) // MAX_BLOCK_FRAMES)
    frames *= MAX_BLOCK_FRAMES
    impulse = np.zeros((frames, channels), np.float32)
    impulse[0] = _LATENCY_IMPULSE
    response = np.zeros(frames, np.float32)
    for inst in instances[:1]:
        for start in range(0, frames, MAX_BLOCK_FRAMES):
            block = impulse[start : start + MAX_BLOCK_FRAMES]
            y = pad(inst.process(block, sample_rate, MAX_BLOCK_FRAMES, False), *block.shape)
            response[start : start + block.shape[0]] = np.max(np.abs(y), axis=1)
    if not np.isfinite(response).all() or response.max() < 1e-3 * _LATENCY_IMPULSE:
        return None
    return int(np.argmax(response))
