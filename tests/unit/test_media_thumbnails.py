"""Thumbnail making on real image and video files: sizes, EXIF, animation, video poster frames, bad input."""

from __future__ import annotations

import os

import pytest

from media_repo.thumbnails import ThumbnailError, TooLargeError, analyse, make_thumbnails
from media_repo.thumbnails.sizes import Box
from tests.unit.test_media_samples import (animated, exif_rotated_jpeg, image_bytes, open_image, png_bomb,
                                           video_mp4)

MAX_PIXELS = 32 * 1024 * 1024
BOXES = [Box(32, 32, "crop"), Box(96, 96, "crop"), Box(320, 240, "scale"), Box(640, 480, "scale"),
         Box(800, 600, "scale")]


def _write(tmp_path, name: str, data: bytes) -> str:
    path = os.path.join(tmp_path, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def _thumbs(tmp_path, src: str, kind: str, boxes, animated_: bool = False):
    outs = [os.path.join(tmp_path, f"out{i}") for i in range(len(boxes))]
    return make_thumbnails(src, kind, boxes, animated_, outs, MAX_PIXELS)


@pytest.mark.parametrize("fmt,kind,out_type", [("JPEG", "image/jpeg", "image/jpeg"), ("PNG", "image/png", "image/png"),
                                               ("GIF", "image/gif", "image/png"), ("WEBP", "image/webp", "image/png")])
def test_configured_sizes(tmp_path, fmt, kind, out_type):
    """Each configured size comes out with the right dimensions and type, from each image format."""
    src = _write(tmp_path, "src", image_bytes(fmt))
    made = _thumbs(tmp_path, src, kind, BOXES)
    assert [(t.width, t.height) for t in made] == [(32, 32), (96, 96), (320, 160), (640, 320), (800, 400)]
    for t in made:
        assert t.content_type == out_type
        img = open_image(open(t.path, "rb").read())
        assert img.size == (t.width, t.height)
        assert img.format == out_type.split("/")[1].upper()
    # crop keeps the centre: both colours of the halves are visible at the 96x96 crop's edges
    crop = open_image(open(made[1].path, "rb").read()).convert("RGB")
    assert crop.getpixel((2, 48))[0] > 150 and crop.getpixel((93, 48))[2] > 150


def test_exif_orientation_applied_and_stripped(tmp_path):
    """The EXIF orientation turns the thumbnail upright and no EXIF (or camera tag) survives."""
    src = _write(tmp_path, "src", exif_rotated_jpeg((400, 200), orientation=6))
    found = analyse(src, "image/jpeg", MAX_PIXELS)
    assert (found.width, found.height) == (200, 400)  # as displayed
    made = _thumbs(tmp_path, src, "image/jpeg", [Box(320, 240, "scale"), Box(96, 96, "crop")])
    data = open(made[0].path, "rb").read()
    img = open_image(data)
    assert img.size == (120, 240)  # portrait: the rotation was applied
    assert b"Exif" not in data and b"SecretCameraMaker" not in data
    assert len(img.getexif()) == 0
    # Orientation 6 is "rotate 90° clockwise": the left (red) half ends on top.
    top, bottom = img.convert("RGB").getpixel((60, 20)), img.convert("RGB").getpixel((60, 220))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


@pytest.mark.parametrize("fmt,kind", [("GIF", "image/gif"), ("WEBP", "image/webp")])
def test_animated_thumbnails_keep_animation(tmp_path, fmt, kind):
    """animated=true gives an animated WebP with every frame and its timing; false a still image."""
    src = _write(tmp_path, "src", animated(fmt, (200, 100), frames=3))
    assert analyse(src, kind, MAX_PIXELS).animated
    made = _thumbs(tmp_path, src, kind, [Box(96, 96, "crop"), Box(320, 240, "scale")], animated_=True)
    assert [t.content_type for t in made] == ["image/webp", "image/webp"] and all(t.animated for t in made)
    img = open_image(open(made[1].path, "rb").read())
    assert img.size == (200, 100) and img.is_animated and img.n_frames == 3
    colours = []
    for i in range(3):
        img.seek(i)
        colours.append(img.convert("RGB").getpixel((10, 10)))
    assert colours[0][0] > 200 and colours[1][1] > 200 and colours[2][2] > 200
    still = _thumbs(tmp_path, src, kind, [Box(96, 96, "crop")], animated_=False)[0]
    assert still.content_type == "image/png" and not still.animated
    assert not getattr(open_image(open(still.path, "rb").read()), "is_animated", False)


def test_still_image_with_animated_flag_is_still(tmp_path):
    """animated=true on a still image behaves as false."""
    src = _write(tmp_path, "src", image_bytes("PNG", (100, 100)))
    made = _thumbs(tmp_path, src, "image/png", [Box(32, 32, "crop")], animated_=True)[0]
    assert made.content_type == "image/png" and not made.animated


def test_video_poster_frame(tmp_path):
    """A video gets duration and dimensions, and a JPEG poster-frame thumbnail (the first frame, red)."""
    src = _write(tmp_path, "src.mp4", video_mp4((160, 96), frames=20, fps=10))
    found = analyse(src, "video/mp4", MAX_PIXELS)
    assert (found.width, found.height) == (160, 96)
    assert 1800 <= found.duration_ms <= 2200
    assert found.blurhash
    made = _thumbs(tmp_path, src, "video/mp4", [Box(96, 96, "crop"), Box(320, 240, "scale")])
    assert [(t.width, t.height, t.content_type) for t in made] == [(96, 96, "image/jpeg"), (160, 96, "image/jpeg")]
    r, g, b = open_image(open(made[0].path, "rb").read()).convert("RGB").getpixel((48, 48))
    assert r > 180 and b < 80


def test_decompression_bomb_refused(tmp_path):
    """An image with more pixels than max_image_pixels is never decoded."""
    src = _write(tmp_path, "bomb.png", png_bomb(10000, 10000))
    assert analyse(src, "image/png", MAX_PIXELS).too_large
    with pytest.raises(TooLargeError):
        _thumbs(tmp_path, src, "image/png", [Box(32, 32, "crop")])


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "garbage"])
def test_bad_images_fail_cleanly(tmp_path, damage):
    """Truncated or corrupted images raise ThumbnailError, and analysis never raises."""
    data = image_bytes("JPEG", (640, 480))
    if damage == "truncated":
        data = data[: len(data) // 3]
    elif damage == "corrupted":
        data = data[:200] + bytes(range(256)) * 20 + data[-100:]
    else:
        data = b"\xff\xd8\xff" + os.urandom(2000)
    src = _write(tmp_path, "bad.jpg", data)
    analyse(src, "image/jpeg", MAX_PIXELS)
    with pytest.raises(ThumbnailError):
        _thumbs(tmp_path, src, "image/jpeg", [Box(32, 32, "crop")])
