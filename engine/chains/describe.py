"""One chain interface: :class:`ChainLike`, what every chain (in-process or isolated) offers.

The session, the snapshots, the dashboard and the MIDI surface see a chain
only through this protocol. :meth:`ChainLike.describe` is the one description
of a chain (name, plugins, parameters with values and units, bypass, latency)
that the snapshot JSON and the dashboard's list are both made from, and
:meth:`ChainLike.bypass_all` is the one "bypass the whole chain and remember
the rest" that keys, dashboard and MIDI share. Both are written once here, on
top of the primitive members each chain implements; a chain class subclasses
:class:`ChainLike` to inherit them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .spec import ChainSpec, ParamValue, PluginSpec, split_unit

__all__ = ["ChainDescription", "ChainLike", "ParameterDescription", "PluginDescription"]


@dataclass(frozen=True, slots=True)
class ParameterDescription:
    """One parameter as set in the chain: ``threshold_db`` = -20.0 is (key
    ``threshold_db``, name ``threshold``, value -20.0, unit ``dB``)."""

    key: str  # the preset key, unit in the name
    name: str  # the key without its unit
    value: ParamValue
    unit: str  # the unit's word ("dB", "kHz", "%"), "" for none


@dataclass(frozen=True, slots=True)
class PluginDescription:
    """One plugin of a chain, in signal order (``index`` counts from 0)."""

    index: int
    title: str
    kind: str  # "builtin" | "vst3" | "au"
    target: str
    label: str | None
    bypass: bool
    mono: str
    latency_samples: int | None  # None when the chain does not know it
    parameters: tuple[ParameterDescription, ...]


@dataclass(frozen=True, slots=True)
class ChainDescription:
    """A chain as it is now, live edits included: what snapshots store and the dashboard lists."""

    name: str
    description: str
    source: str | None
    latency_samples: int
    plugins: tuple[PluginDescription, ...]

    @property
    def bypassed(self) -> bool:
        """The whole chain is bypassed (every plugin, and at least one)."""
        return bool(self.plugins) and all(p.bypass for p in self.plugins)


class ChainLike(Protocol):
    """What the engine, the session and the controllers use of a chain.

    Implemented by ``Chain`` (in-process) and ``IsolatedChain`` (in a child
    process). Indexes count from 0; every method but :meth:`process` is for
    threads other than the audio thread.
    """

    # Which plugins were bypassed when the whole chain was (see bypass_all); None: none.
    _whole_bypass_memory: tuple[bool, ...] | None = None

    @property
    def spec(self) -> ChainSpec:
        """The chain as it is now, edits included."""
        ...

    @property
    def latency_samples(self) -> int:
        """Delay from input to output in samples."""
        ...

    @property
    def bypassed(self) -> tuple[bool, ...]:
        """Per plugin: bypassed."""
        ...

    @property
    def plugin_latencies(self) -> tuple[int, ...]:
        """Per plugin: its own latency in samples."""
        ...

    def __len__(self) -> int: ...

    def process(self, block: np.ndarray) -> np.ndarray:
        """Run one block (audio thread)."""
        ...

    def parameter_values(self, index: int) -> dict[str, float]:
        """Plugin ``index``'s numeric parameters as it holds them now."""
        ...

    def set_parameter(self, index: int, name_with_unit: str, value: ParamValue) -> None:
        """Set a parameter by its preset key (``"threshold_db"``)."""
        ...

    def set_bypass(self, index: int, bypass: bool) -> None:
        """Bypass or restore one plugin."""
        ...

    def add(self, plugin: PluginSpec, index: int | None = None) -> None:
        """Insert a plugin (at the end by default)."""
        ...

    def remove(self, index: int) -> PluginSpec:
        """Take a plugin out and return its spec."""
        ...

    # -- written once, for every chain -------------------------------------------------

    def describe(self) -> ChainDescription:
        """The chain now: name, plugins, parameters with values and units, bypass, latency."""
        spec = self.spec
        bypassed = tuple(self.bypassed)
        latencies = tuple(self.plugin_latencies)
        plugins = tuple(
            PluginDescription(
                index=i,
                title=p.title,
                kind=p.kind,
                target=p.target,
                label=p.label,
                bypass=bool(bypassed[i]) if i < len(bypassed) else bool(p.bypass),
                mono=p.mono,
                latency_samples=int(latencies[i]) if i < len(latencies) else None,
                parameters=tuple(_parameter(key, value) for key, value in p.params),
            )
            for i, p in enumerate(spec.plugins)
        )
        return ChainDescription(
            name=spec.name,
            description=spec.description,
            source=spec.source,
            latency_samples=int(self.latency_samples or 0),
            plugins=plugins,
        )

    def bypass_all(self, on: bool) -> tuple[bool, ...]:
        """Bypass the whole chain (``on``), remembering which plugins were bypassed
        already, or restore it (``not on``) to exactly those. Returns the bypass
        state per plugin.

        Plugins added or removed in between make the memory useless: then every
        plugin comes back. Only the plugins that change are switched.
        """
        bypassed = tuple(self.bypassed)
        if on:
            if not all(bypassed):  # bypassing twice must not forget the first memory
                self._whole_bypass_memory = bypassed
            wanted: Sequence[bool] = (True,) * len(bypassed)
        else:
            remembered = self._whole_bypass_memory
            self._whole_bypass_memory = None
            if remembered is None or len(remembered) != len(bypassed):
                remembered = (False,) * len(bypassed)
            wanted = remembered
        for index, value in enumerate(wanted):
            if bypassed[index] != value:
                self.set_bypass(index, value)
        return tuple(self.bypassed)


def _parameter(key: str, value: ParamValue) -> ParameterDescription:
    name, unit = split_unit(key)
    return ParameterDescription(key=key, name=name, value=value, unit=unit)
