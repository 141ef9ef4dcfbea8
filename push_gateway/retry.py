"""Bounded retries with exponential back-off, driven by typed errors.

A pushkin's attempt raises ``TemporaryDispatchError`` (optionally with the
provider's ``Retry-After`` as ``custom_retry_delay_ms``) when trying again may
help, and ``DispatchError`` when it will not. ``next_delay_ms`` is the pure
decision; ``call_with_retries`` applies it with the injected clock, so tests
advance a ``twisted.internet.task.Clock`` instead of sleeping.
"""

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable, Optional, TypeVar

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from push_gateway import metrics
from push_gateway.errors import DispatchError, TemporaryDispatchError

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry one notification."""

    max_attempts: int
    base_delay_ms: int
    max_delay_ms: int


def next_delay_ms(
    policy: RetryPolicy, attempts_made: int, error: TemporaryDispatchError
) -> Optional[int]:
    """Decides the wait before the next attempt.

    Args:
        policy: the app's retry policy.
        attempts_made: attempts already made (1 after the first failure).
        error: the temporary failure of the last attempt.

    Returns:
        Milliseconds to wait, or None to give up: no attempts left, or the
        provider asked for a longer wait than ``max_delay_ms``.
    """
    if attempts_made >= policy.max_attempts:
        return None
    if error.custom_retry_delay_ms is not None:
        if error.custom_retry_delay_ms > policy.max_delay_ms:
            return None
        return error.custom_retry_delay_ms
    return min(policy.base_delay_ms * 2 ** (attempts_made - 1), policy.max_delay_ms)


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    clock: IReactorTime,
    kind: str,
) -> T:
    """Runs ``attempt`` until it returns, retrying temporary failures.

    Args:
        attempt: one try at the provider.
        policy: bounds on attempts and waits.
        clock: the reactor's clock, used for the waits.
        kind: provider kind, for metrics.

    Returns:
        What the successful attempt returned.

    Raises:
        DispatchError: a permanent failure, or the last temporary failure when
            retrying is over (a ``TemporaryDispatchError``).
    """
    attempts_made = 0
    while True:
        try:
            return await attempt()
        except TemporaryDispatchError as e:
            attempts_made += 1
            delay_ms = next_delay_ms(policy, attempts_made, e)
            if delay_ms is None:
                logger.warning("Giving up after %d attempt(s): %s", attempts_made, e)
                raise
            logger.info(
                "Temporary failure (%s); attempt %d in %d ms",
                e,
                attempts_made + 1,
                delay_ms,
            )
            metrics.RETRIES.labels(kind=kind).inc()
            await deferLater(clock, delay_ms / 1000.0)
        except DispatchError:
            raise


def parse_retry_after_ms(value: Optional[str]) -> Optional[int]:
    """Parses a ``Retry-After`` header given in seconds.

    The HTTP-date form is not used by FCM, APNs or the common Web Push
    services; it is treated as absent (exponential back-off applies).

    Returns:
        Milliseconds, or None when absent or not a number of seconds.
    """
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit():
        return None
    return int(value) * 1000
