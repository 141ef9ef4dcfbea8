"""Still-image thumbnails with Pillow: EXIF orientation applied, metadata stripped.

JPEG sources (and video poster frames) give JPEG thumbnails; everything else
gives PNG (keeping transparency), as Synapse does. Nothing of the source's
metadata (EXIF, XMP, comments) is written to a thumbnail. Blocking; run on a
thread pool.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from PIL import Image, ImageOps

from media_repo.thumbnails import blurhash
from media_repo.thumbnails.sizes import Box, thumbnail_size

SUPPORTED = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff",
                       "image/x-icon", "image/avif"})

# Pillow's own bomb check (2× its limit raises) must not fire before ours.
Image.MAX_IMAGE_PIXELS = None
warnings.simplefilter("ignore", Image.DecompressionBombWarning)

_RESAMPLE = Image.Resampling.LANCZOS


class TooLarge(Exception):
    """More pixels than max_image_pixels."""


def open_checked(path: str, max_pixels: int) -> Image.Image:
    """Open ``path`` (reading only the header) and refuse it if it has too many pixels."""
    img = Image.open(path)
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise TooLarge(f"{width}x{height} is more than {max_pixels} pixels")
    return img


def _orientation_swaps(img: Image.Image) -> bool:
    try:
        return img.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except Exception:
        return False


def load_oriented(path: str, max_pixels: int, boxes: list[Box] | None = None) -> Image.Image:
    """The first frame of the image, decoded, turned upright by its EXIF orientation.

    ``boxes``: the thumbnails wanted; a JPEG is decoded at a reduced scale
    when every box allows it (much less memory and time for big photos).
    """
    img = open_checked(path, max_pixels)
    try:
        if boxes and img.format == "JPEG":
            side = max(max(b.width, b.height) for b in boxes)
            img.draft("RGB", (side, side))
        img.seek(0)
        img.load()
        upright = ImageOps.exif_transpose(img)
        if upright is None:  # pragma: no cover - only with in_place=True
            upright = img
        if upright is img:
            upright = img.copy()
    finally:
        img.close()
    return _plain(upright)


def _plain(img: Image.Image) -> Image.Image:
    """``img`` as RGB, RGBA or L, with no metadata left to write out."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    elif img.mode not in ("RGB", "RGBA", "L"):
        img = img.convert("RGB")
    img.info = {}
    return img


def analyse(path: str, max_pixels: int) -> dict[str, Any]:
    img = open_checked(path, max_pixels)
    try:
        width, height = img.size
        if _orientation_swaps(img):
            width, height = height, width
        animated = bool(getattr(img, "is_animated", False)) and getattr(img, "n_frames", 1) > 1
    finally:
        img.close()
    small = load_oriented(path, max_pixels, [Box(64, 64, "scale")])
    return {"width": width, "height": height, "animated": animated, "blurhash": blurhash_of(small)}


def blurhash_of(img: Image.Image) -> str:
    """The blurhash (4×3 components) of an image, computed on a 32×32 copy."""
    small = _plain(img)
    if small.mode == "RGBA":
        # Transparent areas look white in most clients.
        background = Image.new("RGBA", small.size, (255, 255, 255, 255))
        small = Image.alpha_composite(background, small)
    small = small.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    raw = small.tobytes()
    return blurhash.encode(list(zip(raw[0::3], raw[1::3], raw[2::3])), 32, 32)


def resize(img: Image.Image, box: Box) -> Image.Image:
    width, height = thumbnail_size(img.width, img.height, box)
    if box.method == "crop":
        if width == img.width and height == img.height:
            return img.copy()
        if width >= img.width or height >= img.height:
            # The image is smaller than the box on one side: cut the centre, no scaling.
            left, top = (img.width - width) // 2, (img.height - height) // 2
            return img.crop((left, top, left + width, top + height))
        return ImageOps.fit(img, (width, height), method=_RESAMPLE, centering=(0.5, 0.5))
    if (width, height) == img.size:
        return img.copy()
    return img.resize((width, height), _RESAMPLE, reducing_gap=3.0)


def encode(img: Image.Image, source_type: str, out_path: str) -> tuple[int, int, str, str, int]:
    """Write ``img`` as a thumbnail; returns (width, height, content type, path, length)."""
    img = _plain(img)
    if source_type == "image/jpeg":
        img.convert("RGB").save(out_path, format="JPEG", quality=80, optimize=True)
        content_type = "image/jpeg"
    else:
        img.save(out_path, format="PNG")
        content_type = "image/png"
    return img.width, img.height, content_type, out_path, os.path.getsize(out_path)


def make_thumbnails(img: Image.Image, source_type: str, boxes: list[Box],
                    out_paths: list[str]) -> list[tuple[int, int, str, str, int]]:
    img = _plain(img)
    return [encode(resize(img, box), source_type, out_path) for box, out_path in zip(boxes, out_paths)]
