"""Snapshot documents made from real engine runs, for the store, control and CLI tests.

Each document comes from an ``Engine`` that processed real audio through a real
pedalboard chain (``engine.chains.build_chain``), rendered offline block by block
the way the audio callback runs it; the readings are the engine's own.
"""

from __future__ import annotations

import copy
import time
from functools import cache, lru_cache

import numpy as np

from earmark.engine.chains import ChainSpec, PluginSpec, build_chain
from earmark.engine.drivers import render
from earmark.engine.engine import Engine, EngineState, Path
from earmark.engine.sources import Player
from earmark.store import snapshots

from synth import music_like

FS = 48000
SECONDS = 8.0


@lru_cache(maxsize=1)
def material() -> np.ndarray:
    """Music-like stereo material (transients at a tempo, a falling spectrum)."""
    return music_like(SECONDS, FS).astype(np.float32)


def chain_engine(
    *plugins: PluginSpec, name: str = "test chain", seconds: float = SECONDS
) -> Engine:
    """The material dry (path 0, B) and through ``plugins`` (path 1, A), rendered ``seconds``."""
    x = material()
    chain = build_chain(ChainSpec(name, plugins=tuple(plugins)), FS, 2)
    engine = Engine(
        FS,
        [Path("dry", Player(x, "material")), Path("chain", Player(x, "material"), chain)],
        a=1,
        b=0,
        loudness_match=False,
    )
    if seconds:
        render(engine, seconds, 512)
    return engine


@cache
def _render(plugins: tuple[PluginSpec, ...]) -> tuple[EngineState, dict]:
    engine = chain_engine(*plugins)
    state = engine.state()  # readings() is read once: the document holds exactly these
    doc = snapshots.build(
        state,
        [p.bank.history() for p in engine.paths],
        [p.chain for p in engine.paths],
        session="tests",
        kind="offline",
    )
    return state, doc


def doc_for(*plugins: PluginSpec, label: str | None = None) -> dict:
    """A snapshot document of :func:`chain_engine` (a fresh copy; the render is cached)."""
    doc = copy.deepcopy(_render(plugins)[1])
    doc["label"] = label
    doc["time"] = time.time()  # taken now (the render is shared)
    return doc


def state_for(*plugins: PluginSpec) -> EngineState:
    """The engine state :func:`doc_for` was built from (its readings are the document's)."""
    return _render(plugins)[0]


def gain(db: float) -> PluginSpec:
    return PluginSpec.builtin("Gain", gain_db=float(db))


def compressor(ratio: float) -> PluginSpec:
    """A fast compressor: at 0.1 ms attack it catches the transients, so a higher ratio
    brings the peaks closer to the loudness (lower PSR)."""
    return PluginSpec.builtin(
        "Compressor", threshold_db=-30.0, ratio=float(ratio), attack_ms=0.1, release_ms=200.0
    )


def shelf(db: float, hz: float = 4000.0) -> PluginSpec:
    return PluginSpec.builtin("HighShelfFilter", cutoff_frequency_hz=hz, gain_db=float(db))
