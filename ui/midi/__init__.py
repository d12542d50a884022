"""The MIDI controller: earmark's second user interface.

- :mod:`.ports`: MIDI back-ends (JACK first) and ports, hot-plug, finding a controller;
- :mod:`.decoder`: MIDI bytes to events (14-bit CC, NRPN, relative encoders);
- :mod:`.map`: controller maps (TOML: which control does what), loaded and checked;
- :mod:`.surface`: :class:`ControllerSurface`, the session service that turns a
  controller's moves into the session's commands and drives its LEDs;
- :mod:`.learn`: ``earmark midi learn`` (move a control, get a map).
"""

from .map import ControllerMap, load_map, map_names, parse_map
from .ports import MidiUnavailableError, list_ports
from .surface import ControllerSurface

__all__ = [
    "ControllerMap",
    "ControllerSurface",
    "MidiUnavailableError",
    "list_ports",
    "load_map",
    "map_names",
    "parse_map",
]
