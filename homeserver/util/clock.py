"""The injected clock: integer milliseconds, and timers, from one reactor."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet import defer, task


class Clock:
    """Time and timers from the reactor (a `MemoryReactorClock` in tests)."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def time_msec(self) -> int:
        return int(self._reactor.seconds() * 1000)

    def time(self) -> float:
        return self._reactor.seconds()

    def call_later(self, delay_s: float, func: Callable[..., Any], *args: Any) -> Any:
        return self._reactor.callLater(delay_s, func, *args)

    def looping_call(self, func: Callable[..., Any], interval_s: float) -> task.LoopingCall:
        call = task.LoopingCall(func)
        call.clock = self._reactor
        call.start(interval_s, now=False)
        return call

    def sleep(self, seconds: float) -> "defer.Deferred[None]":
        d: defer.Deferred[None] = defer.Deferred()
        self._reactor.callLater(seconds, d.callback, None)
        return d
