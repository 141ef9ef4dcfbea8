"""Building blocks shared by every config section: `option()`, `ConfigError`, and
Synapse's duration and size syntax.

An option is a dataclass field whose metadata carries its help text and how its
YAML value is read (`kind`). The field's default and help are the only copy of
those facts: the loader (`load.py`) reads values with them and the sample
generator (`sample.py`) writes `homeserver.yaml` from them.

Imports nothing from Myelin.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from typing import Any

# Duration units, in milliseconds (Synapse's `parse_duration`: a year is 365 days).
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
YEAR = 365 * DAY

# Size units, in bytes (Synapse's `parse_size`: powers of 1024).
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
TiB = 1024 * GiB

# Values of an option's `kind`: how its YAML value is read and written.
DURATION = "duration"  # int milliseconds; YAML: int ms or "5s", "10m", "1h", "1d", "1w", "1y"
SIZE = "size"  # int bytes; YAML: int bytes or "50K", "50M", "1G", "1T"
PATH = "path"  # str; a relative path is made absolute against the working directory
SECRET = "secret"  # str; may instead be read from the file named by `<key>_path`

_DURATION_UNITS = {"s": SECOND, "m": MINUTE, "h": HOUR, "d": DAY, "w": WEEK, "y": YEAR}
_SIZE_UNITS = {"K": KiB, "M": MiB, "G": GiB, "T": TiB}
_NUMBER_AND_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]?)\s*$")


class ConfigError(Exception):
    """An invalid configuration value.

    Attributes:
        message: what is wrong, e.g. "expected an integer".
        path: where, as a dotted key path with list indices, e.g.
            "listeners[0].port"; empty for a problem with a whole file.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.message = message
        self.path = path


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002 - the name the brief and dataclass readers expect
    *,
    kind: str | None = None,
    key: str | None = None,
    inline: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    coerce_str: bool = False,
    secret_file_for: str | None = None,
) -> Any:
    """Declare one config option as a dataclass field.

    Args:
        default: the default value. Lists, dicts and dataclass instances are
            deep-copied for each new config, so no two configs share them.
            Omit it for a required option (only inside list items).
        help: the documentation written above the option in the sample.
            Paragraphs are separated by a blank line.
        kind: DURATION, SIZE, PATH or SECRET (see the constants above); applies
            to each item when the option is a list.
        key: the YAML key when it differs from the attribute name.
        inline: for a dataclass-typed field: its options are read from the
            same mapping as this field's siblings instead of from a sub-mapping
            (this is how sections group Synapse's top-level keys).
        minimum: the smallest number accepted.
        maximum: the largest number accepted.
        coerce_str: accept a YAML number for this string option (e.g.
            `default_room_version: 10`).
        secret_file_for: on a `*_path` option: the attribute name of the secret
            that is read from the file this option names.

    Returns:
        A `dataclasses.field`.
    """
    metadata = {
        "help": help,
        "kind": kind,
        "key": key,
        "inline": inline,
        "minimum": minimum,
        "maximum": maximum,
        "coerce_str": coerce_str,
        "secret_file_for": secret_file_for,
    }
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(
            default_factory=lambda: copy.deepcopy(default), metadata=metadata
        )
    return dataclasses.field(default=default, metadata=metadata)


def yaml_key(f: dataclasses.Field[Any]) -> str:
    """The YAML key of a field: its `key` option, else its attribute name."""
    return (f.metadata.get("key") if f.metadata else None) or f.name


def parse_duration(value: object) -> int:
    """Read a duration as Synapse does.

    Args:
        value: an integer number of milliseconds, or a string of a number and an
            optional unit: s, m, h, d, w or y (no unit: milliseconds). A
            fraction is allowed ("1.5h").

    Returns:
        The duration in milliseconds.

    Raises:
        ValueError: the value is not a duration; the message says what is expected.
    """
    return _parse_with_units(value, _DURATION_UNITS, "a duration", case_sensitive=True)


def parse_size(value: object) -> int:
    """Read a size in bytes as Synapse does.

    Args:
        value: an integer number of bytes, or a string of a number and an
            optional unit: K, M, G or T, powers of 1024 (lower case accepted).

    Returns:
        The size in bytes.

    Raises:
        ValueError: the value is not a size; the message says what is expected.
    """
    return _parse_with_units(value, _SIZE_UNITS, "a size", case_sensitive=False)


def _parse_with_units(
    value: object, units: dict[str, int], what: str, *, case_sensitive: bool
) -> int:
    suffixes = ", ".join(units)
    expected = f"expected {what}: an integer or a number with a unit ({suffixes})"
    if isinstance(value, bool):
        raise ValueError(expected)
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected {what} of at least 0")
        return value
    if not isinstance(value, str):
        raise ValueError(expected)
    match = _NUMBER_AND_UNIT.match(value)
    if match is None:
        raise ValueError(expected)
    number, unit = match.groups()
    if not case_sensitive:
        unit = unit.upper()
    if unit and unit not in units:
        raise ValueError(expected)
    return int(round(float(number) * (units[unit] if unit else 1)))


def format_duration(ms: int) -> int | str:
    """Write milliseconds in the largest unit that divides them exactly ("1d").

    Returns the plain integer when no unit fits (e.g. 0 or 1500).
    """
    return _format_with_units(ms, _DURATION_UNITS)


def format_size(size: int) -> int | str:
    """Write bytes in the largest unit that divides them exactly ("50M")."""
    return _format_with_units(size, _SIZE_UNITS)


def _format_with_units(value: int, units: dict[str, int]) -> int | str:
    if value <= 0:
        return value
    for suffix, unit in sorted(units.items(), key=lambda item: -item[1]):
        if suffix == "w":
            continue  # "7d" and "28d" read better than "1w" and "4w"
        if value % unit == 0:
            return f"{value // unit}{suffix}"
    return value
