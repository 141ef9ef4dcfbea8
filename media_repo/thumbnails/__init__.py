"""Thumbnails and content analysis, one interface over the format families.

`analyse()` finds an upload's size, duration, animation and blurhash;
`make_thumbnails()` writes thumbnails for boxes (`sizes.Box`). A module per
family does the work: `images` (still images, Pillow), `animated` (animated
GIF/WebP/PNG, kept animated as WebP), `video` (a poster frame through FFmpeg's
libraries, PyAV). Everything here blocks: callers run it on a thread pool
(``cpu_runner``), never on the reactor thread.

Guards: an image with more than ``max_pixels`` pixels is never decoded
(decompression bombs); a corrupt or truncated file raises `ThumbnailError`.
"""

from __future__ import annotations

import dataclasses
import logging

from media_repo.thumbnails import images, video
from media_repo.thumbnails.sizes import Box

logger = logging.getLogger(__name__)

IMAGE_TYPES = images.SUPPORTED
VIDEO_TYPES = video.SUPPORTED
AUDIO_TYPES = video.AUDIO


class ThumbnailError(Exception):
    """This content cannot be thumbnailed (corrupt, truncated or unsupported)."""


class TooLargeError(ThumbnailError):
    """The image has more pixels than max_image_pixels."""


@dataclasses.dataclass(frozen=True)
class Analysis:
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    animated: bool = False
    blurhash: str | None = None
    too_large: bool = False


@dataclasses.dataclass(frozen=True)
class Thumbnail:
    box: Box
    animated: bool
    width: int
    height: int
    content_type: str
    path: str
    length: int


def can_thumbnail(sniffed_type: str | None) -> bool:
    return sniffed_type in IMAGE_TYPES or sniffed_type in VIDEO_TYPES


def analyse(path: str, sniffed_type: str | None, max_pixels: int) -> Analysis:
    """What the file at ``path`` is: dimensions, duration, animation, blurhash.

    Never raises for bad content: a file that cannot be read gives an empty Analysis.
    """
    try:
        if sniffed_type in IMAGE_TYPES:
            return Analysis(**images.analyse(path, max_pixels))
        if sniffed_type in VIDEO_TYPES or sniffed_type in AUDIO_TYPES:
            return Analysis(**video.analyse(path, max_pixels))
    except images.TooLarge:
        return Analysis(too_large=True)
    except Exception as e:  # corrupt input is expected here, not a bug of ours
        logger.info("could not analyse %s content: %s", sniffed_type, e)
    return Analysis()


def make_thumbnails(path: str, sniffed_type: str | None, boxes: list[Box], animated: bool,
                    out_paths: list[str], max_pixels: int) -> list[Thumbnail]:
    """Write a thumbnail of the file at ``path`` for each box, to the matching out path.

    ``animated``: keep animation (as animated WebP) when the source is animated.

    Raises:
        TooLargeError: the image has more than ``max_pixels`` pixels.
        ThumbnailError: the content cannot be thumbnailed.
    """
    try:
        if sniffed_type in IMAGE_TYPES:
            if animated:
                from media_repo.thumbnails import animated as animated_mod

                made = animated_mod.make_thumbnails(path, boxes, out_paths, max_pixels)
                if made is not None:
                    return [Thumbnail(box, True, *m) for box, m in zip(boxes, made)]
            made = images.make_thumbnails(images.load_oriented(path, max_pixels, boxes), sniffed_type, boxes,
                                          out_paths)
        elif sniffed_type in VIDEO_TYPES:
            made = images.make_thumbnails(video.poster_frame(path, max_pixels), "image/jpeg", boxes, out_paths)
        else:
            raise ThumbnailError(f"cannot thumbnail {sniffed_type}")
    except images.TooLarge as e:
        raise TooLargeError(str(e)) from None
    except ThumbnailError:
        raise
    except Exception as e:
        raise ThumbnailError(f"cannot thumbnail this {sniffed_type}: {e}") from None
    return [Thumbnail(box, False, *m) for box, m in zip(boxes, made)]
