"""The notifier: events wake at once; typing/receipt bursts wake waiting syncs once, after the delay."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock

from homeserver.streams.notifier import Notifier
from homeserver.streams.tokens import StreamToken


class _Clock:
    def __init__(self) -> None:
        self.reactor = Clock()
        self.timers = 0

    def call_later(self, delay, fn, *args):
        self.timers += 1
        return self.reactor.callLater(delay, fn, *args)


def _setup(delay_ms: int):
    clock = _Clock()
    position = [StreamToken.from_string("s1_0_0_0_0_0_0_0")]
    notifier = Notifier(clock, lambda: position[0], ephemeral_delay_ms=delay_ms)
    return clock, position, notifier


def _wait(notifier, user, rooms, seen, timeout_ms=30_000):
    results: list[bool] = []
    d = defer.ensureDeferred(notifier.wait(user, rooms, seen, timeout_ms))
    d.addCallback(results.append)
    return results


def test_a_burst_of_ephemeral_changes_is_one_wake_up_after_the_delay():
    clock, position, notifier = _setup(100)
    seen = position[0]
    a = _wait(notifier, "@a:hs", ["!r:hs"], seen)
    b = _wait(notifier, "@b:hs", ["!r:hs"], seen)
    other = _wait(notifier, "@c:hs", ["!other:hs"], seen)
    for _ in range(5):
        notifier.on_new_room_ephemeral("!r:hs")
    assert a == [] and b == []
    timers_after_burst = clock.timers
    clock.reactor.advance(0.099)
    assert a == []
    clock.reactor.advance(0.001)
    assert a == [True] and b == [True] and other == []
    assert notifier.wakeups == 2
    # One timer for the burst (besides the three waits' timeouts).
    assert timers_after_burst == 3 + 1


def test_a_new_event_still_wakes_at_once_during_the_delay_and_takes_the_pending_wake_along():
    clock, position, notifier = _setup(100)
    a = _wait(notifier, "@a:hs", ["!r:hs"], position[0])
    other_room = _wait(notifier, "@c:hs", ["!s:hs"], position[0])
    notifier.on_new_room_ephemeral("!r:hs")
    notifier.on_new_room_ephemeral("!s:hs")
    notifier.on_new_room_event("!r:hs", 7)
    assert a == [True]
    # A sync that waits again after answering (its token includes the change) is
    # not woken by the cancelled delayed wake...
    again = _wait(notifier, "@a:hs", ["!r:hs"], position[0])
    clock.reactor.advance(0.1)
    assert again == [] and notifier.wakeups == 2  # ...while the other room's still fires
    assert other_room == [True]
    # A change after the event starts a new delay.
    notifier.on_new_room_ephemeral("!r:hs")
    clock.reactor.advance(0.1)
    assert again == [True]


def test_a_sync_that_starts_after_the_change_returns_at_once():
    clock, position, notifier = _setup(100)
    seen = position[0]
    notifier.on_new_room_ephemeral("!r:hs")
    position[0] = StreamToken.from_string("s1_0_0_1_0_0_0_0")  # the typing stream moved
    assert _wait(notifier, "@a:hs", ["!r:hs"], seen) == [True]


def test_zero_delay_wakes_at_once():
    clock, position, notifier = _setup(0)
    a = _wait(notifier, "@a:hs", ["!r:hs"], position[0])
    notifier.on_new_room_ephemeral("!r:hs")
    assert a == [True]


def _linger(notifier, user, rooms, seen, timeout_ms):
    done: list[bool] = []
    d = defer.ensureDeferred(notifier.linger(user, rooms, seen, timeout_ms))
    d.addCallback(lambda _: done.append(True))
    return done


def test_linger_waits_out_a_burst_of_ephemeral_changes_but_not_an_event():
    clock, position, notifier = _setup(100)
    seen = position[0]
    position[0] = StreamToken.from_string("s1_0_0_2_3_0_0_0")  # only typing and receipts moved
    lingering = _linger(notifier, "@a:hs", ["!r:hs"], seen, 100)
    assert lingering == []
    notifier.on_new_room_ephemeral("!r:hs")  # more of the burst: does not end the linger
    clock.reactor.advance(0.1)
    assert lingering == [True]
    # A new event ends it at once.
    lingering = _linger(notifier, "@a:hs", ["!r:hs"], seen, 100)
    notifier.on_new_room_event("!r:hs", 9)
    assert lingering == [True]


def test_linger_returns_at_once_when_more_than_ephemeral_moved_or_nothing_did():
    clock, position, notifier = _setup(100)
    seen = position[0]
    assert _linger(notifier, "@a:hs", ["!r:hs"], seen, 100) == [True]  # nothing moved
    position[0] = StreamToken.from_string("s2_0_0_1_0_0_0_0")  # an event and typing
    assert _linger(notifier, "@a:hs", ["!r:hs"], seen, 100) == [True]
    position[0] = StreamToken.from_string("s1_0_1_1_0_0_0_0")  # to-device and typing
    assert _linger(notifier, "@a:hs", ["!r:hs"], seen, 100) == [True]
