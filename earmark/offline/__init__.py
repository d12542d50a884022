"""Offline analysis: files and arrays in, readings, flags and reports out.

- ``analysis``: ``analyze()`` (the ``earmark analyze`` command's engine): a file or an
  array through one MeterBank and the detectors, in the blocks the live engine uses;
- ``transform``: ``diff()``: what turned BEFORE into AFTER (alignment, gain, EQ moves,
  dynamics, limiting, transients, stereo), built on ``earmark.meters.diff``;
- ``report``: the self-contained HTML reports of both (plots as embedded PNG);
- ``learn``: ``earmark profile build``: a profile learned from trusted masters;
- ``measures``: the one table of measures the text, JSON and HTML outputs list.
"""
