"""Token-bucket rate limiting per key (user, IP, room…)."""

from __future__ import annotations

from typing import Any, Hashable

from homeserver.errors import MatrixError


class Ratelimiter:
    """``burst_count`` actions at once, refilled at ``per_second``.

    Args:
        limit: a config RateLimit (per_second, burst_count, enabled).
        clock: the injected clock.
    """

    def __init__(self, name: str, limit: Any, clock: Any, globally_enabled: bool = True) -> None:
        self.name = name
        self._rate = float(limit.per_second)
        self._burst = float(limit.burst_count)
        self._enabled = bool(limit.enabled) and globally_enabled
        self._clock = clock
        # key → (tokens used, time of last update in seconds)
        self._buckets: dict[Hashable, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self._enabled

    def can_do(self, key: Hashable, n: float = 1.0, update: bool = True) -> tuple[bool, float]:
        """(allowed, seconds until allowed)."""
        if not self._enabled:
            return True, 0.0
        now = self._clock.time()
        used, last = self._buckets.get(key, (0.0, now))
        used = max(0.0, used - (now - last) * self._rate)
        if used + n > self._burst:
            wait = (used + n - self._burst) / self._rate if self._rate > 0 else 3600.0
            return False, wait
        if update:
            self._buckets[key] = (used + n, now)
            if len(self._buckets) > 100_000:
                self._prune(now)
        return True, 0.0

    def ratelimit(self, key: Hashable, n: float = 1.0) -> None:
        """Raise M_LIMIT_EXCEEDED (429, retry_after_ms) if ``key`` is over its limit."""
        ok, wait = self.can_do(key, n)
        if not ok:
            retry_ms = int(wait * 1000) + 1
            raise MatrixError("M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=retry_ms,
                              headers={"Retry-After": str(max(1, int(wait + 0.999)))})

    def _prune(self, now: float) -> None:
        rate = self._rate
        self._buckets = {k: v for k, v in self._buckets.items() if v[0] - (now - v[1]) * rate > 0}
