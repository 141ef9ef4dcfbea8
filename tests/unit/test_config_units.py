"""Synapse's duration and size syntax, read and written."""

import pytest

from homeserver.config import parse_duration, parse_size
from homeserver.config.options import format_duration, format_size


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        (0, 0),
        (1500, 1500),
        ("1500", 1500),
        ("5s", 5_000),
        ("10m", 600_000),
        ("1h", 3_600_000),
        ("1.5h", 5_400_000),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        ("1y", 31_536_000_000),
        (" 2d ", 172_800_000),
    ],
)
def test_parse_duration(value: object, ms: int) -> None:
    """Integers are milliseconds; strings take an optional s/m/h/d/w/y unit."""
    assert parse_duration(value) == ms


@pytest.mark.parametrize("value", ["", "5x", "m", "-5s", "5 minutes", True, 1.5, None, [1], -1])
def test_parse_duration_rejects(value: object) -> None:
    """Anything else is refused with a message saying what is expected."""
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1000, 1000),
        ("1000", 1000),
        ("50K", 50 * 1024),
        ("50M", 50 * 1024**2),
        ("1G", 1024**3),
        ("2T", 2 * 1024**4),
        ("10m", 10 * 1024**2),
        ("1.5K", 1536),
    ],
)
def test_parse_size(value: object, size: int) -> None:
    """Integers are bytes; strings take an optional K/M/G/T unit (powers of 1024)."""
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["", "50Q", "M", "50 MB", False, 2.5, None])
def test_parse_size_rejects(value: object) -> None:
    """Anything else is refused with a message saying what is expected."""
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(value)


@pytest.mark.parametrize(
    ("ms", "written"),
    [(0, 0), (1500, 1500), (2000, "2s"), (300_000, "5m"), (86_400_000, "1d"), (604_800_000, "7d")],
)
def test_format_duration(ms: int, written: object) -> None:
    """Durations are written in the largest exact unit, days rather than weeks."""
    assert format_duration(ms) == written
    assert parse_duration(written) == ms


@pytest.mark.parametrize(
    ("size", "written"), [(0, 0), (1000, 1000), (87 * 1024, "87K"), (50 * 1024**2, "50M")]
)
def test_format_size(size: int, written: object) -> None:
    """Sizes are written in the largest exact unit."""
    assert format_size(size) == written
    assert parse_size(written) == size
