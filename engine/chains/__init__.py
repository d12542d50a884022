"""Chains are data: TOML presets turned into pedalboard plugins, edited live without blocking audio.

One concept per module:

- :mod:`.spec`: the preset format (:func:`load_chain`, :func:`parse_chain`,
  :class:`ChainSpec`, :class:`PresetError`) and the one unit table
  (:data:`UNITS`, :func:`split_unit`, :func:`convert_unit`);
- :mod:`.describe`: :class:`ChainLike`, the one chain interface, with its
  :meth:`~ChainLike.describe` and :meth:`~ChainLike.bypass_all`;
- :mod:`.chain`: :class:`Chain`, the running in-process chain;
- :mod:`.build`: :func:`build_chain`, plugins instantiated and their latency measured.

Plugin discovery and validation (``earmark plugins scan``) stay in
``earmark.engine.plugins``: a concept of its own, with its own child-process
entry point, used by the command line without any chain.
"""

from ..rt import MAX_BLOCK_FRAMES
from .build import build_chain
from .chain import BYPASS_RAMP_S, Chain
from .describe import ChainDescription, ChainLike, ParameterDescription, PluginDescription
from .spec import (
    BUILTINS,
    UNITS,
    ChainSpec,
    ParamValue,
    PluginSpec,
    PresetError,
    Unit,
    chain_names,
    convert_unit,
    load_chain,
    parse_chain,
    split_unit,
    unit_word,
)

__all__ = [
    "BUILTINS",
    "BYPASS_RAMP_S",
    "MAX_BLOCK_FRAMES",
    "UNITS",
    "Chain",
    "ChainDescription",
    "ChainLike",
    "ChainSpec",
    "ParamValue",
    "ParameterDescription",
    "PluginDescription",
    "PluginSpec",
    "PresetError",
    "Unit",
    "build_chain",
    "chain_names",
    "convert_unit",
    "load_chain",
    "parse_chain",
    "split_unit",
    "unit_word",
]
