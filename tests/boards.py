"""The smallest chain an engine path accepts: a pedalboard plus its latency."""

from __future__ import annotations

import numpy as np
import pedalboard


class Board:
    """A pedalboard with a known latency (what engine paths need of a chain)."""

    def __init__(self, plugins, latency_samples: int = 0, sample_rate: int = 48000) -> None:
        self.board = pedalboard.Pedalboard(plugins)
        self.latency_samples = latency_samples
        self.sample_rate = sample_rate

    def process(self, block: np.ndarray) -> np.ndarray:
        return self.board(block, self.sample_rate, reset=False)
