"""The dashboard: a Dear PyGui window on a live session's state frame, in its own process
(``python -m earmark.ui.dashboard``; see :mod:`.app`).

What it shows (DASHBOARD.md), one module per panel:

- :mod:`.header`: A and B side by side, the audible one marked (▶) and the other
  dimmed; the loudness match (or the platform A and B play as, with each one's gain,
  loudness heard and loudness penalty), the profile, the stream, the controller,
  LIVE/STALE;
- :mod:`.meters`: loudness bars (momentary, short-term) with the integrated value,
  LRA, true peak with hold and overs, PLR and PSR, each with its unit and a word
  (OK / WATCH / PROBLEM) as well as a colour;
- :mod:`.history`: the loudness and PSR history with the flags on a lane where they
  happened, and the markers;
- :mod:`.spectrum`: the spectrum A vs B with the profile's band, and harsh bands
  outlined when in excess;
- :mod:`.stereo`: correlation and goniometers;
- :mod:`.flags`: the flag list (click to centre the history on a flag);
- :mod:`.chain`: the chains with bypass;
- :mod:`.control`: the monitor section, loudness match and platform monitor, snapshot
  and marker, the status lines.

:mod:`.window` composes them into the :class:`Dashboard` (layout, commands, updates);
:mod:`.style` is the look they share.

Keys (``earmark.ui.conventions.KEYS``, the terminal view's too): Space A/B,
B bypass chain, L loudness match, P platform monitor, D dim, O mono, R reset meters
and peak holds,
S snapshot, M marker. Paths are numbered from 1, as everywhere a user types one.
"""

from .app import be_polite, main, run
from .window import KEYS_HELP, Dashboard

__all__ = ["KEYS_HELP", "Dashboard", "be_polite", "main", "run"]
