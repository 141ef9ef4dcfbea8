"""Thumbnail geometry, pure: the spec's "crop" and "scale" methods, and which size to serve.

Content repository, Thumbnails: *scale* keeps the aspect ratio and fits the
image inside the box (one side may be smaller than asked); *crop* fills the
box exactly and cuts off the excess. Never upscale: when the image is
smaller than the box, the thumbnail keeps the image's size (crop keeps what of
the box fits).
"""

from __future__ import annotations

from typing import Iterable, NamedTuple


class Box(NamedTuple):
    width: int
    height: int
    method: str  # "crop" or "scale"


def scale_size(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The size of a *scale* thumbnail of a ``src_w``×``src_h`` image for the box."""
    if src_w <= box_w and src_h <= box_h:
        return src_w, src_h
    if box_w * src_h <= box_h * src_w:  # the width limits
        return box_w, max(1, round(box_w * src_h / src_w))
    return max(1, round(box_h * src_w / src_h)), box_h


def crop_size(src_w: int, src_h: int, box_w: int, box_h: int) -> tuple[int, int]:
    """The size of a *crop* thumbnail: the box, or what of it the image covers."""
    return min(box_w, src_w), min(box_h, src_h)


def thumbnail_size(src_w: int, src_h: int, box: Box) -> tuple[int, int]:
    if box.method == "crop":
        return crop_size(src_w, src_h, box.width, box.height)
    return scale_size(src_w, src_h, box.width, box.height)


def select_box(configured: Iterable[Box], req_w: int, req_h: int, method: str) -> Box:
    """The configured box to serve for a request: the smallest of the same method
    that is at least as big as asked, else the biggest of that method."""
    boxes = list(configured)
    same = [b for b in boxes if b.method == method] or boxes
    big_enough = [b for b in same if b.width >= req_w and b.height >= req_h]
    if big_enough:
        return min(big_enough, key=lambda b: (b.width * b.height, b.width))
    return max(same, key=lambda b: (b.width * b.height, b.width))
