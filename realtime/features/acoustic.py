"""Acoustic stream: the 25 eGeMAPSv02 low-level descriptors per 10 ms frame, from 16 kHz mono audio.

openSMILE's Python API processes a whole signal per call (``smile_run`` blocks until end of input), so
streaming is done with overlapping context windows on a fixed frame grid:

* eGeMAPSv02's LLDs come from two framers, both with a 10 ms step (``frameStep = 0.010``): 60 ms
  Gaussian-windowed frames for pitch, jitter/shimmer, HNR and formant amplitudes, and 20 ms Hamming
  frames for loudness, spectral and MFCC features (``GeMAPSv01b_core.lld.conf.inc``). Frame ``k`` starts
  at sample ``160 k``. On top of that come a 3-frame moving average (``smaWin = 3``) and a Viterbi pitch
  smoother with a 40-frame buffer, so a frame depends on audio before and after its own window.
* Frames are emitted in blocks of ``hop_s``. Block ``[k0, k0 + H)`` is computed from the audio
  ``[k0 - P, k0 + H + F)`` frames plus one 60 ms window, where ``P`` = ``context_s`` of past and ``F`` =
  ``lookahead_s`` of future context, and only the block's own frames are kept. The block layout depends
  only on the frame grid, never on how the audio was chunked, so any chunking gives bit-identical
  output. With enough context the output also equals openSMILE run on the whole signal: measured on the
  three shared clips, 50 past and 15 future frames already reproduce it exactly (0.0 difference at every
  block position); the defaults double that.
* `flush()` computes the last block up to the real end of the signal, as a whole-file run does.

Latency is at most ``hop_s + lookahead_s`` plus compute; compute per block covers ``context_s + hop_s +
lookahead_s`` of audio, so a longer hop lowers the real-time factor.

With ``AcousticConfig.whisper`` set, each block also goes through Whisper's encoder
(`realtime.features.whisper_states`): the same stretch of audio (the block with its past and future context) is
encoded and the block's own states kept, one per 20 ms; every pair of LLD frames is averaged onto the state it
shares its 20 ms with, and a frame is then the 25 LLDs followed by the 384 encoder states (409 values at 50 Hz).
The block layout is the same, so the output is still independent of the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..packets import SAMPLE_RATE
from .specs import EGEMAPS_LLD_NAMES, WHISPER_EXTRACTOR_TAG
from .whisper_states import MEL_PER_STATE, STATE_DIM, WhisperStatesConfig

HOP_SAMPLES = 160
"""10 ms frame step of eGeMAPSv02 at 16 kHz."""
WINDOW_SAMPLES = 960
"""60 ms: the longest analysis window of eGeMAPSv02 (the pitch framer)."""
N_FEATURES = len(EGEMAPS_LLD_NAMES)
FRAME_CENTRE_S = 0.010
"""A frame's time stamp is its start plus 10 ms, the centre of its 20 ms spectral window."""


@dataclass(frozen=True)
class AcousticConfig:
    """Settings of the streaming eGeMAPS extractor.

    Attributes:
        context_s: past audio (s) recomputed before each block; 1.0 s = 100 frames, twice the 50 frames
            that reproduce whole-signal output exactly on the shared clips (Viterbi pitch smoothing
            needs the most history).
        lookahead_s: future audio (s) waited for after each block; 0.3 s = 30 frames, twice the 15 that
            suffice on the shared clips (the Viterbi smoother decides with a lag).
        hop_s: audio (s) emitted per block, a multiple of 10 ms. 1.0 s trades latency (at most hop +
            lookahead, 1.3 s) against compute: each block recomputes 2.3 s of audio for 1 s of output,
            a real-time factor of about 0.03 on 2 cores (0.05 with ``hop_s=0.5``, over the 0.05 target).
        whisper: add Whisper encoder states to every frame (`WhisperStatesConfig`), or None for the 25 LLDs
            alone at 100 Hz. Which one a stream runs is the checkpoint's choice: `for_spec` reads it from the
            checkpoint's feature spec, so an older eGeMAPS-only checkpoint keeps its features.
    """

    context_s: float = 1.0
    lookahead_s: float = 0.3
    hop_s: float = 1.0
    whisper: WhisperStatesConfig | None = None

    def frames(self, s: float) -> int:
        return int(round(s * SAMPLE_RATE / HOP_SAMPLES))

    @property
    def dim(self) -> int:
        """Values per frame: 25 LLDs, plus 384 encoder states with ``whisper``."""
        return N_FEATURES + (STATE_DIM if self.whisper is not None else 0)

    @property
    def frame_rate_hz(self) -> float:
        return 100.0 / (MEL_PER_STATE if self.whisper is not None else 1)

    @staticmethod
    def reads_states(extractor: str | None) -> bool:
        """Whether an acoustic spec's ``extractor`` name is that of the stream with Whisper states."""
        return extractor is not None and WHISPER_EXTRACTOR_TAG in extractor

    def for_spec(self, extractor: str | None) -> "AcousticConfig":
        """This config with Whisper states on when the checkpoint's acoustic ``extractor`` name asks for them."""
        want = self.reads_states(extractor)
        if want == (self.whisper is not None):
            return self
        return replace(self, whisper=WhisperStatesConfig() if want else None)



@dataclass
class AcousticFrames:
    """A block of LLD frames: ``t`` (n,) float64 media times (s) and ``x`` (n, 25) float32 descriptors."""

    t: np.ndarray
    x: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    @staticmethod
    def empty(dim: int = N_FEATURES) -> "AcousticFrames":
        return AcousticFrames(np.zeros(0, np.float64), np.zeros((0, dim), np.float32))

    @staticmethod
    def concat(parts: list["AcousticFrames"], dim: int = N_FEATURES) -> "AcousticFrames":
        parts = [p for p in parts if len(p)]
        if not parts:
            return AcousticFrames.empty(dim)
        return AcousticFrames(np.concatenate([p.t for p in parts]), np.concatenate([p.x for p in parts]))


class AcousticProcessor:
    """Push-style eGeMAPS extractor: ``push(samples) -> AcousticFrames`` for contiguous 16 kHz mono audio."""

    def __init__(self, config: AcousticConfig = AcousticConfig(), models=None):
        if config.frames(config.hop_s) < 1:
            raise ValueError("AcousticConfig.hop_s must be at least 10 ms")
        if config.whisper is not None and (config.frames(config.hop_s) % 2 or config.frames(config.context_s) % 2):
            raise ValueError("with Whisper states, AcousticConfig.hop_s and context_s must be multiples of 20 ms")
        self.config = config
        self._P = config.frames(config.context_s)
        self._F = config.frames(config.lookahead_s)
        self._H = config.frames(config.hop_s)
        self._smile = None
        self._whisper = None
        self._models = models  # a realtime.models.ModelCache to take the (shareable) extractor from, or None
        self.reset()

    def start(self) -> "AcousticProcessor":
        if self.config.whisper is not None and self._whisper is None:
            from .whisper_states import WhisperStates

            self._whisper = WhisperStates(self.config.whisper).start()  # per stream: see realtime.models
        if self._models is not None:
            self._smile = self._models.smile()
            return self
        import opensmile  # lazy: pulls pandas, pyarrow and the native library

        self._smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02,
            feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
        )
        return self

    def reset(self, start_time_s: float = 0.0) -> None:
        """Start a new stream whose first sample is at media time ``start_time_s``."""
        self._t0 = float(start_time_s)
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute sample index of _buf[0], always a multiple of HOP_SAMPLES
        self._total = 0  # samples pushed so far
        self._next = 0  # next frame index to emit

    def _run(self, seg: np.ndarray) -> np.ndarray:
        if self._smile is None:
            self.start()
        # Smile converts float to int16 by x * 32768: clip so that full-scale samples do not wrap around.
        seg = np.clip(seg, -1.0, 32767 / 32768).astype(np.float32)
        y = self._smile(seg[None, :], SAMPLE_RATE)  # (1, 25, n_frames)
        return np.asarray(y[0].T, dtype=np.float32)

    def _block(self, k0: int, k1: int | None, seg_end: int) -> AcousticFrames:
        """Frames ``[k0, k1)`` (k1 None: all) computed from samples ``[(k0-P)*160, seg_end)``."""
        s0 = max(0, k0 - self._P) * HOP_SAMPLES
        seg = self._buf[s0 - self._buf_start : seg_end - self._buf_start]
        if len(seg) < WINDOW_SAMPLES:
            return AcousticFrames.empty(self.config.dim)
        x = self._run(seg)
        first = k0 - s0 // HOP_SAMPLES
        x = x[first : None if k1 is None else first + (k1 - k0)]
        if self.config.whisper is not None:
            return self._with_states(seg, first, k0, x)
        if not np.isfinite(x).all():  # openSMILE pads a too-short segment with NaN
            x = x[np.isfinite(x).all(axis=1)]
        t = self._t0 + (k0 + np.arange(len(x))) * (HOP_SAMPLES / SAMPLE_RATE) + FRAME_CENTRE_S
        return AcousticFrames(t.astype(np.float64), x)

    def _with_states(self, seg: np.ndarray, first: int, k0: int, lld: np.ndarray) -> AcousticFrames:
        """The block's LLD frames averaged in pairs beside the encoder states of the same 20 ms, from one encoder
        call on the block's whole stretch ``seg`` (its context included); ``first`` = the block's first LLD frame
        in ``seg`` (even: hop and context are whole 20 ms)."""
        if self._whisper is None:
            self.start()
        n = len(lld) // MEL_PER_STATE
        states = self._whisper.encode(seg, first // MEL_PER_STATE, None)[:n]
        n = len(states)
        pairs = lld[: 2 * n].reshape(n, 2, -1).mean(axis=1)
        x = np.concatenate([pairs, states], axis=1).astype(np.float32)
        keep = np.isfinite(x).all(axis=1)  # drops a pair with a NaN frame (openSMILE's padding at the very end)
        # a pair's time is the mean of its two LLD stamps (frame centres 10 and 20 ms after the pair starts)
        t = self._t0 + (k0 + 2 * np.arange(n)) * (HOP_SAMPLES / SAMPLE_RATE) + FRAME_CENTRE_S + 0.005
        return AcousticFrames(t[keep].astype(np.float64), x[keep])

    def push(self, samples: np.ndarray) -> AcousticFrames:
        """Append audio (float, -1..1, 16 kHz mono) and return every block that is now complete."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, samples])
        self._total += len(samples)
        out = []
        while True:
            k1 = self._next + self._H
            need = (k1 + self._F) * HOP_SAMPLES + WINDOW_SAMPLES
            if self._total < need:
                break
            out.append(self._block(self._next, k1, need))
            self._next = k1
            keep_from = max(0, self._next - self._P) * HOP_SAMPLES
            self._buf = self._buf[keep_from - self._buf_start :]
            self._buf_start = keep_from
        return AcousticFrames.concat(out, self.config.dim)

    def flush(self) -> AcousticFrames:
        """End of stream: the remaining frames, computed up to the last sample as a whole-signal run is."""
        out = self._block(self._next, None, self._total)
        self._next += len(out)
        return out

    def process(self, audio: np.ndarray) -> AcousticFrames:
        """Convenience for a whole signal: reset, push it all, flush."""
        self.reset(self._t0)
        return AcousticFrames.concat([self.push(audio), self.flush()], self.config.dim)
