"""The injected clock: integer milliseconds, and timers, from one reactor.

Test-only clock control (``myelin.testing.enable_clock_control``, never in
production): `enable_control` makes the clock track the timers it starts, and
`advance` then moves the clock forward by an offset and brings every tracked
timer forward by the same amount, so that end-to-end tests can jump a real
server 24 hours ahead. Without it the clock is the reactor's, untouched.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from twisted.internet import defer, task

logger = logging.getLogger(__name__)


class Clock:
    """Time and timers from the reactor (a `MemoryReactorClock` in tests)."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._offset_s = 0.0
        # Timers started while clock control is on (None: off).
        self._tracked: set[Any] | None = None

    def time_msec(self) -> int:
        return int((self._reactor.seconds() + self._offset_s) * 1000)

    def time(self) -> float:
        return self._reactor.seconds() + self._offset_s

    def call_later(self, delay_s: float, func: Callable[..., Any], *args: Any) -> Any:
        tracked = self._tracked
        if tracked is None:
            return self._reactor.callLater(delay_s, func, *args)

        def _run() -> None:
            tracked.discard(call)
            func(*args)

        call = self._reactor.callLater(delay_s, _run)
        tracked.add(call)
        if len(tracked) > 10_000:  # cancelled timers are dropped lazily
            tracked.difference_update([c for c in tracked if not c.active()])
        return call

    def looping_call(self, func: Callable[..., Any], interval_s: float) -> task.LoopingCall:
        call = task.LoopingCall(func)
        call.clock = self._reactor if self._tracked is None else _ControlledReactorTime(self)
        call.start(interval_s, now=False)
        return call

    def sleep(self, seconds: float) -> "defer.Deferred[None]":
        d: defer.Deferred[None] = defer.Deferred()
        self.call_later(seconds, d.callback, None)
        return d

    # ------------------------------------------------- test-only clock control
    def enable_control(self) -> None:
        """Track timers started from now on, so that `advance` can bring them forward (tests only)."""
        if self._tracked is None:
            self._tracked = set()
            logger.warning("clock control is enabled: this server's time can be moved forward over HTTP."
                           " Never enable myelin.testing.enable_clock_control in production.")

    @property
    def controlled(self) -> bool:
        return self._tracked is not None

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward; tracked timers now due run on the next reactor turn."""
        if self._tracked is None:
            raise RuntimeError("clock control is not enabled")
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset_s += seconds
        now = self._reactor.seconds()
        for call in list(self._tracked):
            if not call.active():
                self._tracked.discard(call)
                continue
            call.reset(max(0.0, call.getTime() - now - seconds))


class _ControlledReactorTime:
    """`IReactorTime` for a `LoopingCall` that follows a controlled `Clock`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def seconds(self) -> float:
        return self._clock.time()

    def callLater(self, delay: float, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:  # noqa: N802
        return self._clock.call_later(delay, lambda: func(*args, **kw))
