"""Reactor lag: how long callbacks keep the reactor from running a timer on time.

A timer is armed every `interval` seconds; when it fires, the difference
between when it fired and when it was due is how long the reactor was busy
with other callbacks (or blocked outright) at that moment. A healthy server
shows ~0; a request that runs 200 ms of CPU without yielding shows up as a
200 ms sample. Synapse's `python_twisted_reactor_tick_time` answers the same
question from inside the reactor loop; a timer needs no reactor patching.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

# Lateness above this is also logged at WARNING: the whole server stalled.
STALL_WARNING_S = 1.0


class ReactorLagSampler:
    """Samples reactor lateness into a histogram.

    Args:
        reactor: anything with ``seconds()`` and ``callLater()``.
        histogram: a `series.Histogram` with no labels.
        interval: seconds between samples.
    """

    def __init__(self, reactor: Any, histogram: Any, interval: float = 0.2) -> None:
        self._reactor = reactor
        self._histogram = histogram
        self._interval = interval
        self._call: Any = None
        self._due = 0.0
        self.last_lag = 0.0

    def start(self) -> None:
        if self._call is None:
            self._arm()

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _arm(self) -> None:
        self._due = self._reactor.seconds() + self._interval
        self._call = self._reactor.callLater(self._interval, self._tick)

    def _tick(self) -> None:
        lag = max(0.0, self._reactor.seconds() - self._due)
        self.last_lag = lag
        self._histogram.observe((), lag)
        if lag >= STALL_WARNING_S:
            logger.warning("reactor was blocked for %.2fs", lag)
        self._arm()
