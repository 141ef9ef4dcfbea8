"""Animated thumbnails: animated GIF, WebP and PNG sources stay animated, as WebP.

The spec (thumbnail ``animated``) prefers ``image/webp`` for animated
thumbnails. Frames are composited by Pillow, turned upright by the first
frame's EXIF orientation, resized one at a time (only the small frames are
kept) and written with their durations and loop count. The decompression guard
counts every frame: a source whose frames add up to more than
``FRAME_PIXEL_FACTOR × max_pixels`` pixels, or with more than ``MAX_FRAMES``
frames, gets a still thumbnail instead.
"""

from __future__ import annotations

import os

from PIL import Image, ImageSequence

from media_repo.thumbnails.images import _plain, open_checked, resize
from media_repo.thumbnails.sizes import Box

MAX_FRAMES = 500
FRAME_PIXEL_FACTOR = 4

_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def make_thumbnails(path: str, boxes: list[Box], out_paths: list[str],
                    max_pixels: int) -> list[tuple[int, int, str, str, int]] | None:
    """Animated WebP thumbnails, or None when the source is not (acceptably) animated."""
    img = open_checked(path, max_pixels)
    try:
        n_frames = getattr(img, "n_frames", 1)
        if not getattr(img, "is_animated", False) or n_frames < 2:
            return None
        if n_frames > MAX_FRAMES or img.width * img.height * n_frames > FRAME_PIXEL_FACTOR * max_pixels:
            return None
        try:
            transpose = _TRANSPOSE.get(img.getexif().get(0x0112, 1))
        except Exception:
            transpose = None
        loop = img.info.get("loop", 0)
        frames: list[list[Image.Image]] = [[] for _ in boxes]
        durations: list[int] = []
        for frame in ImageSequence.Iterator(img):
            durations.append(int(frame.info.get("duration", 100)) or 100)
            rgba = frame.convert("RGBA")
            if transpose is not None:
                rgba = rgba.transpose(transpose)
            for i, box in enumerate(boxes):
                frames[i].append(_plain(resize(rgba, box)))
    finally:
        img.close()
    out = []
    for box_frames, out_path in zip(frames, out_paths):
        first = box_frames[0]
        first.save(out_path, format="WEBP", save_all=True, append_images=box_frames[1:], duration=durations,
                   loop=loop, quality=80, method=4)
        out.append((first.width, first.height, "image/webp", out_path, os.path.getsize(out_path)))
    return out


