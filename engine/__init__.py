"""earmark.engine: audio drivers, the real-time block, plugin chains and the processes
that host them.

The names listed here are the engine's public face for the other rooms (ui/ may
import these and nothing else of the engine's internals).
"""

from .childproc import alive

__all__ = ["alive"]
