"""The live session: everything that runs beside the audio callback.

- ``build``: ``build_session()``, the one place a session is assembled;
- ``audio``: devices, rates and drivers; the demo's and ``run``'s engines;
- ``session``: ``LiveSession``, its command queue and the thread that ticks services;
- ``flags`` and ``flags_worker``: the live detectors, in a worker process;
- ``publisher``: the state frame the dashboard reads, and the view (window or terminal);
- ``recorder``: the session log and snapshots (earmark.store);
- ``control``: the control socket (``earmark snapshot take``, markers, the dashboard).
"""
