"""Blurhash encoding (MSC2448 placeholders), pure Python.

The algorithm of https://blurha.sh (Wolt's reference implementation): the
image's DCT components (``x_components`` by ``y_components``) in linear RGB,
the DC term as sRGB, the AC terms quantised to 19 levels, all in base 83. Run
on a small (e.g. 32×32) copy of the image: the cost is pixels × components.
"""

from __future__ import annotations

import math
from typing import Sequence

_BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


def _b83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - i)) % 83] for i in range(1, length + 1))


def _b83_decode(text: str) -> int:
    value = 0
    for c in text:
        value = value * 83 + _BASE83.index(c)
    return value


def srgb_to_linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def linear_to_srgb(value: float) -> int:
    v = max(0.0, min(1.0, value))
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _sign_pow(value: float, exp: float) -> float:
    return math.copysign(abs(value) ** exp, value)


def encode(pixels: Sequence[tuple[int, int, int]], width: int, height: int,
           x_components: int = 4, y_components: int = 3) -> str:
    """The blurhash of an RGB image given as ``width*height`` pixels, row by row."""
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("components must be between 1 and 9")
    if len(pixels) != width * height or width < 1 or height < 1:
        raise ValueError("pixels do not match the size")
    linear = [(srgb_to_linear(r), srgb_to_linear(g), srgb_to_linear(b)) for r, g, b in pixels]
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    factors: list[tuple[float, float, float]] = []
    for j in range(y_components):
        for i in range(x_components):
            norm = 1.0 if i == 0 and j == 0 else 2.0
            r = g = b = 0.0
            cx = cos_x[i]
            for y in range(height):
                cy = cos_y[j][y] * norm
                row = y * width
                for x in range(width):
                    basis = cx[x] * cy
                    pr, pg, pb = linear[row + x]
                    r += basis * pr
                    g += basis * pg
                    b += basis * pb
            scale = 1.0 / (width * height)
            factors.append((r * scale, g * scale, b * scale))
    dc, ac = factors[0], factors[1:]
    out = _b83((x_components - 1) + (y_components - 1) * 9, 1)
    if ac:
        actual_max = max(abs(c) for f in ac for c in f)
        quantised_max = max(0, min(82, int(math.floor(actual_max * 166 - 0.5))))
        max_value = (quantised_max + 1) / 166
        out += _b83(quantised_max, 1)
    else:
        max_value = 1.0
        out += _b83(0, 1)
    out += _b83((linear_to_srgb(dc[0]) << 16) + (linear_to_srgb(dc[1]) << 8) + linear_to_srgb(dc[2]), 4)
    for f in ac:
        q = [max(0, min(18, int(math.floor(_sign_pow(c / max_value, 0.5) * 9 + 9.5)))) for c in f]
        out += _b83(q[0] * 19 * 19 + q[1] * 19 + q[2], 2)
    return out


def components(blurhash: str) -> tuple[int, int]:
    """(x_components, y_components) of a blurhash."""
    size = _b83_decode(blurhash[0])
    return size % 9 + 1, size // 9 + 1


def average_colour(blurhash: str) -> tuple[int, int, int]:
    """The sRGB colour of the DC term: the image's average colour."""
    value = _b83_decode(blurhash[2:6])
    return value >> 16, (value >> 8) & 255, value & 255


def is_valid(blurhash: str) -> bool:
    if len(blurhash) < 6 or any(c not in _BASE83 for c in blurhash):
        return False
    x, y = components(blurhash)
    return len(blurhash) == 4 + 2 * x * y
