"""Video: duration, dimensions and a poster frame, through FFmpeg's libraries (PyAV).

The poster frame is the first decodable frame of the first video stream; its
thumbnails are made like a JPEG's (`images`). Audio files get a duration.
Decoding stops after ``MAX_PACKETS`` packets so a broken file cannot keep a
thread busy. Blocking; run on a thread pool.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from media_repo.thumbnails import images

SUPPORTED = frozenset({"video/mp4", "video/webm", "video/x-matroska", "video/quicktime", "video/ogg"})
AUDIO = frozenset({"audio/mpeg", "audio/ogg", "audio/flac", "audio/wav", "audio/mp4", "audio/webm"})

MAX_PACKETS = 500


def _open(path: str) -> Any:
    import av

    return av.open(path, mode="r", timeout=30)


def _duration_ms(container: Any, stream: Any) -> int | None:
    if container.duration is not None and container.duration > 0:
        return int(container.duration / 1000)  # AV_TIME_BASE is microseconds
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return int(float(stream.duration * stream.time_base) * 1000)
    return None


def analyse(path: str, max_pixels: int) -> dict[str, Any]:
    with _open(path) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        out: dict[str, Any] = {"duration_ms": _duration_ms(container, video or audio)}
        if video is None:
            return out
        width, height = video.codec_context.width, video.codec_context.height
        out["width"], out["height"] = width, height
        if width * height > max_pixels:
            out["too_large"] = True
            return out
    frame = poster_frame(path, max_pixels)
    out["width"], out["height"] = frame.size
    out["blurhash"] = images.blurhash_of(frame)
    return out


def poster_frame(path: str, max_pixels: int) -> Image.Image:
    """The first frame of the first video stream, as an RGB image."""
    with _open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.width * stream.codec_context.height > max_pixels:
            raise images.TooLarge("video frame has too many pixels")
        stream.thread_type = "AUTO"
        for n, packet in enumerate(container.demux(stream)):
            if n >= MAX_PACKETS:
                break
            for frame in packet.decode():
                return frame.to_image().convert("RGB")
    raise ValueError("no decodable video frame")
