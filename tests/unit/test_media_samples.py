"""Sample media the media tests make on the fly: images, animations, a video, bad files (no tests here)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (1200, 600), colour: tuple[int, int, int] = (200, 30, 30),
                **save: object) -> bytes:
    img = Image.new("RGBA" if fmt == "PNG" else "RGB", size, colour)
    # A second colour on the right half, so crops and rotations are visible in the pixels.
    img.paste((20, 40, 220), (size[0] // 2, 0, size[0], size[1]))
    out = io.BytesIO()
    img.save(out, fmt, **save)
    return out.getvalue()


def exif_rotated_jpeg(size: tuple[int, int] = (400, 200), orientation: int = 6) -> bytes:
    """A JPEG whose pixels are landscape (left red, right blue) with an EXIF orientation tag and a camera tag."""
    img = Image.new("RGB", size, (255, 0, 0))
    img.paste((0, 0, 255), (size[0] // 2, 0, size[0], size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SecretCameraMaker"
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


def animated(fmt: str, size: tuple[int, int] = (200, 100), frames: int = 3) -> bytes:
    """An animated GIF or WebP whose frames are red, green, blue..."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    images = [Image.new("RGB", size, colours[i % len(colours)]) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], duration=[100, 200, 300][:frames] or 100,
                   loop=0)
    return out.getvalue()


def png_bomb(width: int = 10000, height: int = 10000) -> bytes:
    """A tiny PNG claiming width×height 1-bit pixels: a decompression bomb (all zeros, compressed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    compressor = zlib.compressobj(1)
    block = row * 1000
    parts = [compressor.compress(block) for _ in range(height // 1000)]
    parts.append(compressor.compress(row * (height % 1000)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def video_mp4(size: tuple[int, int] = (160, 96), frames: int = 20, fps: int = 10) -> bytes:
    """A short MP4 (MPEG-4 part 2) made with PyAV: frames turn from red to blue."""
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            shade = int(255 * i / max(1, frames - 1))
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (255 - shade, 0, shade)))
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


def open_image(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img
