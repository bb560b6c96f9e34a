"""Decode media files with PyAV: RGB video frames with media times, and audio as 16 kHz mono float32.

PyAV bundles its own FFmpeg, so no system ffmpeg is needed. Every failure becomes a `MediaError` whose
message says what is wrong with the file (empty, not media, truncated, corrupt), never a hang: PyAV
decodes synchronously from a local file and stops at end of file.

Times are media times in seconds from the start of the stream (``frame.time`` minus the stream's
start time), never wall-clock time or OpenCV's ``CAP_PROP_POS_MSEC``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..packets import SAMPLE_RATE  # noqa: F401  (the rate decode_audio resamples to)

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".ogv", ".3gp", ".wmv"})
AUDIO_EXTS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aif", ".aiff"})
"""The one list of media file types: what extraction collects from a folder and what the page accepts for replay."""
MEDIA_EXTS = IMAGE_EXTS | VIDEO_EXTS | AUDIO_EXTS

_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif")


class MediaError(ValueError):
    """The file cannot be used: the message names the file and the reason."""


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds.

    Attributes:
        path: the file.
        kind: ``"image"`` (a still picture), ``"video"`` (has a moving-picture stream) or ``"audio"``.
        has_video: a picture stream is present (also true for images).
        has_audio: an audio stream is present.
        duration_s: container duration in seconds (0.0 for images or when the container does not say).
        width, height: picture size in pixels (0 without a picture stream).
        fps: nominal frame rate of the picture stream (0.0 when unknown).
    """

    path: str
    kind: str
    has_video: bool
    has_audio: bool
    duration_s: float
    width: int = 0
    height: int = 0
    fps: float = 0.0


def _open(path: str | os.PathLike):
    import av  # lazy: PyAV loads FFmpeg's shared libraries

    p = Path(path)
    if not p.exists():
        raise MediaError(f"{p}: no such file")
    if p.is_dir():
        raise MediaError(f"{p}: is a directory, not a media file")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: file is empty (0 bytes)")
    try:
        return av.open(str(p))
    except Exception as e:  # av.error.InvalidDataError and friends: header or index unreadable
        raise MediaError(
            f"{p}: cannot be opened as media ({type(e).__name__}: {e}); the file is corrupt or truncated "
            "(an mp4 cut short loses its index), or not a media file"
        ) from e


def probe(path: str | os.PathLike) -> MediaInfo:
    """Open the file and describe its streams; raises `MediaError` for empty, corrupt or non-media files."""
    with _open(path) as c:
        v = c.streams.video[0] if c.streams.video else None
        a = c.streams.audio[0] if c.streams.audio else None
        if v is None and a is None:
            raise MediaError(f"{path}: holds neither a picture nor an audio stream")
        is_image = c.format.name in _IMAGE_FORMATS or (
            Path(path).suffix.lower() in IMAGE_EXTS and a is None
        )
        duration = float(c.duration) / 1e6 if c.duration else 0.0
        fps = float(v.average_rate) if v is not None and v.average_rate else 0.0
        return MediaInfo(
            path=str(path),
            kind="image" if is_image else ("video" if v is not None else "audio"),
            has_video=v is not None,
            has_audio=a is not None,
            duration_s=0.0 if is_image else duration,
            width=int(v.codec_context.width) if v is not None else 0,
            height=int(v.codec_context.height) if v is not None else 0,
            fps=fps,
        )


def iter_video_frames(path: str | os.PathLike) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(t_seconds, rgb)`` for every decoded picture, ``rgb`` a (H, W, 3) uint8 array.

    ``t`` is the frame's media time from the stream start. Frames whose time does not increase (a
    duplicate or reordered timestamp) are dropped, so consumers can rely on strictly increasing times.
    Raises `MediaError` when decoding fails part-way (corrupt data).
    """
    with _open(path) as c:
        if not c.streams.video:
            raise MediaError(f"{path}: has no video stream")
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        t0 = float(s.start_time * s.time_base) if s.start_time is not None else 0.0
        last = -np.inf
        i = 0
        try:
            for frame in c.decode(s):
                t = float(frame.time) - t0 if frame.time is not None else i / float(s.average_rate or 25)
                i += 1
                if t <= last:
                    continue
                last = t
                yield t, frame.to_ndarray(format="rgb24")
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(f"{path}: video decoding failed after {i} frames ({type(e).__name__}: {e})") from e


def load_image(path: str | os.PathLike) -> np.ndarray:
    """The first picture of an image file as (H, W, 3) uint8 RGB."""
    for _, rgb in iter_video_frames(path):
        return rgb
    raise MediaError(f"{path}: no picture could be decoded")


def decode_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The first audio stream, downmixed to mono and resampled to ``sample_rate``, as float32 in [-1, 1].

    Raises `MediaError` when the file has no audio stream or decoding fails part-way.
    """
    import av

    with _open(path) as c:
        if not c.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        s = c.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        parts: list[np.ndarray] = []
        n = 0
        try:
            for frame in c.decode(s):
                n += 1
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except Exception as e:
            raise MediaError(f"{path}: audio decoding failed after {n} packets ({type(e).__name__}: {e})") from e
    audio = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    # Lossy codecs overshoot full scale (the shared AAC clip peaks at 1.15); clip so that every consumer
    # sees the same valid range (openSMILE converts to int16 and would wrap around otherwise).
    return np.clip(audio, -1.0, 1.0)
