"""The project's own per-item feature file (``*.feat.npz``), written by ``python -m realtime.extract``.

Layout: a NumPy ``.npz`` archive (loaded with ``allow_pickle=False``, so it can never execute code) holding

============== ================= =====================================================================
key            shape / dtype     meaning
============== ================= =====================================================================
language       (T_l, D_l) f32    token states (MiniLM, 384-d), one row per WordPiece token of the words
language_t     (T_l,) f64        media time (s) of each token: the centre of the word it came from
visual         (T_v, D_v) f32    per-frame face features (52 MediaPipe blendshapes + 13 geometry; see spec)
visual_t       (T_v,) f64        media time (s) of each frame
face_present   (T_v,) bool       False where no face was found (that row of ``visual`` is zeros)
acoustic       (T_a, D_a) f32    per-frame acoustic descriptors (25 eGeMAPSv02 LLDs per 10 ms)
acoustic_t     (T_a,) f64        media time (s) of each frame (frame centre)
meta_json      () str            JSON: ``spec`` (FeatureSpec), ``source``, ``duration_s``, ``words``
                                 ([text, start, end]), ``labels`` (e.g. emotion7, valence, split),
                                 ``absent`` ({modality: reason}) for modalities that could not be
                                 extracted (no audio track, no face, silence, no words)
============== ================= =====================================================================

A modality that is absent has zero rows; the reason is in ``absent``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .feature_spec import MODALITIES, FeatureSpec, Word

SUFFIX = ".feat.npz"


class FeatureFileError(ValueError):
    """A feature file is missing, empty, truncated or inconsistent."""


@dataclass
class ItemFeatures:
    """Features of one media item, in memory. See the module docstring for the meaning of each field."""

    spec: FeatureSpec
    language: np.ndarray
    language_t: np.ndarray
    visual: np.ndarray
    visual_t: np.ndarray
    face_present: np.ndarray
    acoustic: np.ndarray
    acoustic_t: np.ndarray
    source: str = ""
    duration_s: float = 0.0
    words: list[Word] = field(default_factory=list)
    labels: dict = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        dims = self.spec.dims()
        for m in MODALITIES:
            x, t = getattr(self, m), getattr(self, f"{m}_t")
            if x.ndim != 2 or (x.shape[0] and x.shape[1] != dims[m]):
                raise FeatureFileError(f"{m} has shape {x.shape}, expected (T, {dims[m]})")
            if t.shape != (x.shape[0],):
                raise FeatureFileError(f"{m}_t has shape {t.shape}, expected ({x.shape[0]},)")
            if x.size and not np.isfinite(x).all():
                raise FeatureFileError(f"{m} contains NaN or inf values")
        if self.face_present.shape != (self.visual.shape[0],):
            raise FeatureFileError("face_present must have one entry per visual frame")

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file then rename), so an interrupted extraction never leaves a half file."""
        path = Path(path)
        if not path.name.endswith(SUFFIX):
            path = path.with_name(path.name + SUFFIX)
        meta = {
            "spec": self.spec.to_dict(),
            "source": self.source,
            "duration_s": float(self.duration_s),
            "words": [[w.text, float(w.start), float(w.end)] for w in self.words],
            "labels": self.labels,
            "absent": self.absent,
        }
        arrays = {
            m: np.ascontiguousarray(getattr(self, m), dtype=np.float32) for m in MODALITIES
        } | {f"{m}_t": np.asarray(getattr(self, f"{m}_t"), dtype=np.float64) for m in MODALITIES}
        arrays["face_present"] = np.asarray(self.face_present, dtype=bool)
        arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ItemFeatures":
        path = Path(path)
        if not path.exists():
            raise FeatureFileError(f"{path}: no such feature file")
        if path.stat().st_size == 0:
            raise FeatureFileError(f"{path}: file is empty")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # zipfile.BadZipFile, ValueError, EOFError...
            raise FeatureFileError(f"{path}: not a readable feature file ({e})") from e
        missing = [k for k in (*MODALITIES, "face_present", "meta_json") if k not in arrays]
        if missing:
            raise FeatureFileError(f"{path}: missing arrays {missing}")
        meta = json.loads(str(arrays.pop("meta_json")))
        return cls(
            spec=FeatureSpec.from_dict(meta["spec"]),
            **{k: arrays[k] for k in arrays},
            source=meta.get("source", ""),
            duration_s=float(meta.get("duration_s", 0.0)),
            words=[Word(t, s, e) for t, s, e in meta.get("words", [])],
            labels=meta.get("labels", {}),
            absent=meta.get("absent", {}),
        )
