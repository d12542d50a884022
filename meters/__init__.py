"""earmark.meters: numba-compiled streaming meters (BS.1770/R128 loudness, LRA, true peak,
PSR/PLR, DR, 1/3-octave spectrum, stereo). Imports nothing of earmark's own but numpy/numba."""

from .bank import MeterBank
from .readings import History, Readings

__all__ = ["History", "MeterBank", "Readings"]
