"""What flows through the pipeline. Every packet carries its media time ``t`` (s) and its capture time ``t_mono``
(``realtime.clock.monotonic()``, s)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 16_000
"""Hz of every audio signal in the project (what the acoustic and Whisper stages take; sources resample to it)."""


@dataclass(frozen=True)
class VideoFrame:
    """One camera or file frame: ``rgb`` is (H, W, 3) uint8 RGB."""

    t: float
    t_mono: float
    rgb: np.ndarray


@dataclass(frozen=True)
class AudioChunk:
    """Contiguous 16 kHz mono float32 audio; ``t`` is the media time of the first sample."""

    t: float
    t_mono: float
    samples: np.ndarray

    @property
    def end(self) -> float:
        return self.t + len(self.samples) / SAMPLE_RATE

    def follows(self, other: "AudioChunk") -> bool:
        """This chunk starts where ``other`` ends (within half a sample): the two are one stretch of audio."""
        return abs(self.t - other.end) < 0.5 / SAMPLE_RATE


@dataclass(frozen=True)
class ClockTick:
    """From a live source: every packet with media time before ``t`` has been delivered. The face stage passes it
    on as its watermark when it has no frame waiting, so a live window is scored as soon as its end has passed,
    not when the next camera frame (up to 1 / fps later) has been read."""

    t: float


@dataclass(frozen=True)
class EndOfStream:
    """The source has no more data (end of file, or stop)."""

    t: float = 0.0


@dataclass(frozen=True)
class SourceEnd:
    """On the scorer's event queue: the source has ended at media time ``t`` (its last sample's end)."""

    t: float


@dataclass(frozen=True)
class CalibrateRequest:
    """On the scorer's event queue: start the session baseline's calibration from the next window on (it travels
    with the stage outputs, so it applies in media-time order)."""


@dataclass(frozen=True)
class FeatureEvent:
    """Output of an extraction stage.

    Attributes:
        modality: ``"visual"``, ``"acoustic"`` or ``"words"``.
        t: (n,) media times of the rows (frames; for words, their centres).
        x: (n, D) rows (visual, acoustic), or None for words.
        present: (n,) bool per visual frame (face found), or None.
        words: committed words (for ``"words"``).
        t_avail: media time at which a live system would have this output: the end of the input whose arrival
            produced it. The window uses only outputs with ``t_avail <= window end``, so replay is
            deterministic whatever the threads' timing.
        t_mono: capture time of the newest input behind it (for latency).
        landmarks: (478, 3) landmarks of the newest frame for the UI overlay, or None.
    """

    modality: str
    t: np.ndarray
    x: np.ndarray | None
    t_avail: float
    t_mono: float
    present: np.ndarray | None = None
    words: list = field(default_factory=list)
    landmarks: np.ndarray | None = None


@dataclass(frozen=True)
class Watermark:
    """A stage has consumed all input up to media time ``t`` (so no output with ``t_avail <= t`` is still due)."""

    stage: str
    t: float
