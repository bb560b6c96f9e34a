"""The feature contract: what each modality's input means, stamped into every feature file and checkpoint.

A model trained on features from one extractor and served on features from another is the most common way
these systems fail silently. So the dims, frame rates and extractor versions travel with the data, and
`FeatureSpec.check_compatible` refuses a mismatch at load time, naming the field that differs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

MODALITIES = ("language", "visual", "acoustic")
"""Modality order used by every stacked tensor in this project (the DMD reference's L, V, A order)."""
MODALITY_SHORT = ("L", "V", "A")
"""The same modalities by their one-letter names (GD-Unit edges, heads, the page), in `MODALITIES` order."""

SHORT = {"language": "L", "visual": "V", "acoustic": "A"}


class FeatureSpecMismatch(ValueError):
    """Raised when features or a checkpoint were made by a different extractor configuration."""


@dataclass(frozen=True)
class ModalitySpec:
    """One modality's stream.

    Attributes:
        dim: feature size per frame or token.
        frame_rate_hz: frames per second for clocked streams (visual, acoustic); 0.0 for event-timed streams
            (language tokens carry their own word times).
        extractor: which extractor produced the stream, e.g. ``"mediapipe.FaceLandmarker.blendshapes"``.
        extractor_version: version string of that extractor (library version plus model file hash where known),
            so that a silent model upgrade is visible.
        feature_names: optional names of the ``dim`` columns (blendshape or eGeMAPS descriptor names).
    """

    dim: int
    frame_rate_hz: float = 0.0
    extractor: str = "unknown"
    extractor_version: str = "unknown"
    feature_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.dim <= 0:
            raise ValueError(f"ModalitySpec.dim must be positive, got {self.dim}")
        if self.feature_names and len(self.feature_names) != self.dim:
            raise ValueError(f"ModalitySpec has {len(self.feature_names)} feature_names for dim {self.dim}")


@dataclass(frozen=True)
class FeatureSpec:
    """The three streams DMD reads, in `MODALITIES` order.

    Attributes:
        language, visual, acoustic: one `ModalitySpec` each.
        normalisation: how the stored values were normalised before saving. Feature files store raw
            extractor output (``"none"``); checkpoints hold their own input statistics as buffers.
        format_version: bumped when the on-disk layout changes.
    """

    language: ModalitySpec
    visual: ModalitySpec
    acoustic: ModalitySpec
    normalisation: str = "none"
    format_version: int = 1

    def dims(self) -> dict[str, int]:
        return {m: getattr(self, m).dim for m in MODALITIES}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        mods = {}
        for m in MODALITIES:
            if m not in d:
                raise FeatureSpecMismatch(f"feature spec has no '{m}' entry")
            md = dict(d[m])
            md["feature_names"] = tuple(md.get("feature_names") or ())
            mods[m] = ModalitySpec(**md)
        return cls(**mods, normalisation=d.get("normalisation", "none"), format_version=int(d.get("format_version", 1)))

    @classmethod
    def from_json(cls, s: str) -> "FeatureSpec":
        return cls.from_dict(json.loads(s))

    def check_compatible(self, other: "FeatureSpec", what: str = "features",
                         modalities: tuple[str, ...] = MODALITIES) -> None:
        """Raise `FeatureSpecMismatch` naming the first field where `other` differs from this spec.

        Feature names are compared only when both sides have them; versions must match exactly because a
        different model file gives different numbers for the same name. ``modalities`` limits the check to the
        streams that are used (e.g. voice-only files scored by a checkpoint whose text encoder they never ran).
        """
        for m in modalities:
            a, b = getattr(self, m), getattr(other, m)
            for f in ("dim", "frame_rate_hz", "extractor", "extractor_version"):
                va, vb = getattr(a, f), getattr(b, f)
                if va != vb:
                    hint = ("; install the library versions the model names (pyproject.toml pins those of the "
                            "bundled checkpoint), or re-extract the features and retrain") if f == "extractor_version" else ""
                    raise FeatureSpecMismatch(f"{what}: {m}.{f} is {vb!r} but the model expects {va!r}{hint}")
            if a.feature_names and b.feature_names and a.feature_names != b.feature_names:
                raise FeatureSpecMismatch(f"{what}: {m}.feature_names differ from what the model expects")


def generic_spec(dims: dict[str, int], extractor: str = "unknown") -> FeatureSpec:
    """A spec that records only dims, for data whose extractor is unknown (e.g. MMSA pickles)."""
    return FeatureSpec(**{m: ModalitySpec(dim=int(dims[m]), extractor=extractor) for m in MODALITIES})


@dataclass(frozen=True)
class Word:
    """A transcribed word with media times in seconds."""

    text: str
    start: float
    end: float
    probability: float = field(default=1.0, compare=False)


def mean_word_prob(words) -> float:
    """The mean of the words' probabilities (Whisper's, per word); 1.0 for no words. How sure the recogniser was of
    a segment, a window or a file: the one measure every floor on words reads."""
    return sum(w.probability for w in words) / len(words) if words else 1.0
