"""earmark.meters: numba-compiled streaming meters (BS.1770/R128 loudness, LRA, true peak,
PSR/PLR, DR, 1/3-octave spectrum, stereo) and the detectors that explain what they read.
Imports nothing of earmark's own but the leaf ``earmark.errors`` (a bad profile is a
``PresetError``)."""

from .bank import MeterBank
from .detectors import Detector
from .flags import Flag
from .profile import Profile
from .readings import History, Readings

__all__ = ["Detector", "Flag", "History", "MeterBank", "Profile", "Readings"]
