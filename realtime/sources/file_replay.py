"""Recorded-file replay: a video or audio file's frames and audio, released at real-time pace or as fast as the
pipeline takes them (``fast``; media time then advances with the data, not the wall clock, so results are
deterministic). The pacing is a `realtime.clock.Pacer`, which the page can pause and switch between real time and
fast while the file plays. Decoding uses PyAV (via realtime.features.media); the audio is decoded before the clock starts so
that decoding cost never shows up as latency.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..clock import Pacer, monotonic
from ..packets import SAMPLE_RATE, AudioChunk, VideoFrame
from . import SourceError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayConfig:
    """Replay settings.

    Attributes:
        path: the video or audio file.
        fast: release packets as fast as they are consumed (True) or at real-time pace (False).
        audio_chunk_s: audio packet length (s); 0.1 s is fine-grained enough for every stage and cheap.
        start_at: skip the first seconds of the media (s), to jump to a moment of interest.
        max_width: frames wider than this are downscaled (pixels); 640 matches the webcam path and keeps the
            face landmarker at its measured speed.
    """

    path: str
    fast: bool = False
    audio_chunk_s: float = 0.1
    start_at: float = 0.0
    max_width: int = 640


class FileReplaySource:
    """Args:
    config: `ReplayConfig`.
    pacer: the `Pacer` that releases the packets (the page keeps it to pause and switch to fast); one for
        ``config.fast`` when None.
    """

    def __init__(self, config: ReplayConfig, pacer: Pacer | None = None):
        from ..features.media import MediaError, probe

        self.config = config
        self.pacer = pacer if pacer is not None else Pacer(realtime=not config.fast)
        path = Path(config.path)
        if not path.exists():
            raise SourceError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: file is empty")
        try:
            self.info = probe(path)
        except MediaError as e:
            raise SourceError(str(e)) from e
        if self.info.kind == "image":
            raise SourceError(f"{path}: is a still image; replay takes video or audio files")
        self.has_video = self.info.has_video
        self.has_audio = self.info.has_audio
        if not (self.has_video or self.has_audio):
            raise SourceError(f"{path}: no video or audio stream to replay")
        self.audio = None
        self.name = f"replay:{path.name}"
        self.declared_s = float(self.info.duration_s or 0.0)
        """What the container says the media lasts (s; 0 when it does not say)."""
        self.duration = self.declared_s
        self.audio_error: str | None = None
        self.problems: list[str] = []
        """Things the user should know about this file (e.g. it ended before its declared duration)."""
        from ..checks import SettingError, start_at

        try:
            start_at(config.start_at, self.declared_s or None, name="start at")
        except SettingError as e:
            raise SourceError(f"{path.name}: {e}") from None
        if not (config.audio_chunk_s > 0 and config.audio_chunk_s * SAMPLE_RATE >= 1):
            raise SourceError(f"audio_chunk_s {config.audio_chunk_s}: must be at least one sample")

    def prepare(self) -> None:
        """Decode the audio up front (before the clock starts)."""
        from ..features.media import MediaError, decode_audio

        if self.has_audio:
            try:
                self.audio = decode_audio(self.config.path)
            except MediaError as e:
                self.has_audio = False
                self.audio_error = str(e)
            else:
                self.duration = max(self.duration, len(self.audio) / SAMPLE_RATE)

    def _frames(self):
        from ..features.media import iter_video_frames

        for t, rgb in iter_video_frames(self.config.path):
            if rgb.shape[1] > self.config.max_width:
                import cv2

                h = round(rgb.shape[0] * self.config.max_width / rgb.shape[1])
                rgb = cv2.resize(rgb, (self.config.max_width, h), interpolation=cv2.INTER_AREA)
            yield t, rgb

    def run(self, emit, stop: threading.Event) -> float:
        """Emit every packet in media-time order; returns the media end time."""
        if self.audio is None and self.has_audio:
            self.prepare()
        cfg = self.config
        pacer = self.pacer
        step = int(round(cfg.audio_chunk_s * SAMPLE_RATE))
        audio = self.audio if self.has_audio and self.audio is not None else np.zeros(0, np.float32)
        a_pos = max(0, int(round(cfg.start_at * SAMPLE_RATE)))
        frames = self._frames() if self.has_video else iter(())
        next_frame = next(frames, None)
        while next_frame is not None and next_frame[0] < cfg.start_at:
            next_frame = next(frames, None)
        end = cfg.start_at
        pacer.start(0.0)
        while not stop.is_set():
            t_audio = a_pos / SAMPLE_RATE if a_pos < len(audio) else None
            if next_frame is None and t_audio is None:
                break
            if next_frame is not None and (t_audio is None or next_frame[0] <= t_audio):
                t, rgb = next_frame
                if not pacer.wait_until(t - cfg.start_at, stop):
                    break
                emit(VideoFrame(t=t, t_mono=monotonic(), rgb=rgb))
                end = max(end, t)
                next_frame = next(frames, None)
            else:
                chunk = audio[a_pos : a_pos + step]
                if not len(chunk):  # cannot happen with a_pos in [0, len(audio)), but must never spin
                    break
                t_end = (a_pos + len(chunk)) / SAMPLE_RATE
                # a chunk is "captured" when its last sample has arrived
                if not pacer.wait_until(t_end - cfg.start_at, stop):
                    break
                emit(AudioChunk(t=t_audio, t_mono=monotonic(), samples=chunk))
                a_pos += len(chunk)
                end = max(end, t_end)
        if not stop.is_set():
            self._check_end(end)
        return end

    ENDED_EARLY_S = 0.5
    """A file whose media stops this much before its declared duration is reported (truncated download, cut
    recording); less is ordinary container rounding (the last frame's duration, audio priming)."""

    def _check_end(self, end: float) -> None:
        if self.declared_s > 0 and end < self.declared_s - self.ENDED_EARLY_S:
            msg = (f"{Path(self.config.path).name} ended at {end:.2f} s, before its declared duration of "
                   f"{self.declared_s:.2f} s: the file is probably truncated")
            self.problems.append(msg)
            log.warning(msg)
