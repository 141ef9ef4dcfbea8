"""Canonical JSON: the byte encoding that Matrix signs and hashes.

Spec: appendices, "Signing JSON" / "Canonical JSON"; room versions:
``rooms/fragments/v1-canonical-json.md`` (v1-v5: do not enforce) and
``rooms/fragments/v6-canonical-json.md`` (v6+: enforce strictly).

Canonical JSON is the shortest UTF-8 encoding with object keys sorted by
code point, no insignificant whitespace, and numbers as integers without
exponent, fraction or ``-0``. The ``canonicaljson`` library does the
encoding; this module adds the number rules the library leaves out:

* a float with an integral value (``1e10``, ``-0.0``) is written as that
  integer, as the spec's last example requires (``{"a":0,"b":10000000000}``);
* any other float (only legal in old room versions, e.g. "floaty" power
  levels) is written as Python's shortest repr, which is what the library
  (and so Synapse) does — there is no canonical form for it;
* NaN and infinities are refused.

``check_canonical_json_values`` is the strict check of room versions 6+:
integers within ``[-(2**53)+1, 2**53-1]`` and no floats at all.
"""

from __future__ import annotations

from typing import Any

import canonicaljson

CANONICALJSON_MAX_INT = (2**53) - 1
CANONICALJSON_MIN_INT = -CANONICALJSON_MAX_INT


def encode_canonical_json(obj: Any) -> bytes:
    """Encode ``obj`` as canonical JSON bytes.

    Args:
        obj: a JSON-compatible value (dicts with str keys, lists, str, int,
            float, bool, None).

    Returns:
        The UTF-8 canonical JSON encoding.

    Raises:
        ValueError: for NaN/infinite floats, or strings with lone surrogates.
        TypeError: for values JSON cannot represent.
    """
    return canonicaljson.encode_canonical_json(_integral_floats_to_int(obj))


def _integral_floats_to_int(value: Any) -> Any:
    """Replace integral floats by ints, copying only the containers that change."""
    if type(value) is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not allowed in JSON")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        new = None
        for k, v in value.items():
            nv = _integral_floats_to_int(v)
            if nv is not v:
                if new is None:
                    new = dict(value)
                new[k] = nv
        return value if new is None else new
    if isinstance(value, (list, tuple)):
        items = [_integral_floats_to_int(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value
        return items
    return value


def check_canonical_json_values(obj: Any) -> None:
    """Check that ``obj`` only holds numbers canonical JSON allows.

    Used for room versions with ``strict_canonicaljson`` (v6+).

    Raises:
        ValueError: naming the first float, or integer outside
            ``[-(2**53)+1, (2**53)-1]``, that is found.
    """
    stack: list[tuple[str, Any]] = [("", obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if isinstance(value, int):
            if not CANONICALJSON_MIN_INT <= value <= CANONICALJSON_MAX_INT:
                raise ValueError(f"integer out of range at {path or '<root>'}")
        elif isinstance(value, float):
            raise ValueError(f"float values are not allowed (at {path or '<root>'})")
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
