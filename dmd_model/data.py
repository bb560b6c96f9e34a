"""Datasets for training and evaluation: MMSA feature pickles and the project's own feature files.

Three inputs are accepted (`load_dataset` picks by path):

* ``*.pkl``: an MMSA pickle (CMU-MOSI/MOSEI, aligned or unaligned): splits ``train``/``valid``/``test`` with
  ``text`` (B, T, 768) or ``text_bert`` (B, 3, T), ``audio``, ``vision``, optional ``audio_lengths`` /
  ``vision_lengths``, and ``regression_labels``. **Pickles can execute code when loaded: open only files you
  trust.**
* ``*.npz``: a packed dataset written by `save_packed` (for example by the bootstrap recipe): keys
  ``<split>/<field>`` for the fields of `SplitArrays`, plus ``meta_json`` holding the `FeatureSpec` and the
  emotion names. Loaded with ``allow_pickle=False``.
* a directory of ``*.feat.npz`` per-item feature files (``python -m realtime.extract``). Each item's split comes
  from its ``labels["split"]``; items without one are assigned train/valid/test 80/10/10 by a hash of the name.
  Labels: ``labels["emotion7"]`` (a class name), ``labels["valence"]`` (float), optional ``labels["emotion_soft"]``.

Every loader returns a `Dataset` of `SplitArrays`: fixed-length, zero-padded arrays with per-modality lengths and
presence, checked for NaN/inf and shape errors with messages that say which split, key and dimension.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import EMOTIONS7, SCORE_EPS
from .feature_spec import MODALITIES, FeatureSpec, generic_spec

SPLITS = ("train", "valid", "test")


class DataError(ValueError):
    """A dataset file is missing, empty, malformed or inconsistent with the model."""


@dataclass
class SplitArrays:
    """One split, ready for batching.

    Attributes:
        language: (N, T_L, D_L) float32 features, or (N, 3, T_L) token ids/mask/types when `text_tokens`.
        visual: (N, T_V, D_V) float32. acoustic: (N, T_A, D_A) float32.
        lengths: (N, 3) int64 valid steps per modality (L, V, A).
        present: (N, 3) bool, False where a modality is absent.
        valence: (N,) float32 regression target.
        emotion: (N, C) float32 class distribution (all-zero row = unlabelled), or None.
        ids: sample identifiers.
        valence_known: (N,) bool, False where the item has no valence label (its `valence` entry is a placeholder
            0 that no loss or metric may read), or None: every sample has one (MMSA pickles, the recipes).
    """

    language: np.ndarray
    visual: np.ndarray
    acoustic: np.ndarray
    lengths: np.ndarray
    present: np.ndarray
    valence: np.ndarray
    emotion: np.ndarray | None = None
    ids: list[str] = field(default_factory=list)
    valence_known: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.valence.shape[0])

    def subset(self, idx: np.ndarray) -> "SplitArrays":
        return SplitArrays(
            self.language[idx], self.visual[idx], self.acoustic[idx], self.lengths[idx], self.present[idx],
            self.valence[idx], None if self.emotion is None else self.emotion[idx],
            [self.ids[i] for i in idx] if self.ids else [],
            None if self.valence_known is None else self.valence_known[idx],
        )

    def valence_labelled(self) -> np.ndarray:
        """(N,) bool: samples whose valence is a real label."""
        return np.ones(len(self), bool) if self.valence_known is None else self.valence_known.astype(bool)


@dataclass
class Dataset:
    """Splits plus what describes them.

    Attributes:
        splits: name -> `SplitArrays`.
        spec: the feature contract of the arrays.
        text_tokens: language is raw token ids (needs a text encoder in the model).
        emotions: class names when `SplitArrays.emotion` is set.
        source: where it was loaded from.
    """

    splits: dict[str, SplitArrays]
    spec: FeatureSpec
    text_tokens: bool = False
    emotions: tuple[str, ...] = ()
    source: str = ""

    def split(self, name: str) -> SplitArrays:
        if name not in self.splits:
            raise DataError(f"{self.source}: no split {name!r} (has {sorted(self.splits)})")
        return self.splits[name]

    def dims(self) -> tuple[int, int, int]:
        return tuple(self.spec.dims()[m] for m in MODALITIES)

    def seq_lens(self) -> tuple[int, int, int]:
        s = next(iter(self.splits.values()))
        return (s.language.shape[-1] if self.text_tokens else s.language.shape[1], s.visual.shape[1], s.acoustic.shape[1])


# --------------------------------------------------------------------------------------------------------------
def log_odds(scores: np.ndarray) -> np.ndarray:
    """``logit(clip(scores, SCORE_EPS, 1 - SCORE_EPS))`` in float64: the numpy twin of `DMD.score_logits`, for
    code that handles 0-1 scores outside the model (training noise, probes)."""
    s = np.clip(np.asarray(scores, np.float64), SCORE_EPS, 1.0 - SCORE_EPS)
    return np.log(s) - np.log1p(-s)


def fit_length(x: np.ndarray, t_out: int) -> np.ndarray:
    """Fit a (T, D) sequence into at most `t_out` steps: shorter sequences are returned unchanged, longer ones are
    averaged over `t_out` equal spans (the live window uses this same function, so training and serving agree)."""
    t = x.shape[0]
    if t <= t_out:
        return x
    edges = np.linspace(0, t, t_out + 1)
    idx = np.floor(edges).astype(int)
    out = np.empty((t_out, x.shape[1]), dtype=x.dtype)
    for i in range(t_out):
        lo, hi = idx[i], max(idx[i + 1], idx[i] + 1)
        out[i] = x[lo:hi].mean(0)
    return out


def _check_finite(name: str, x: np.ndarray, where: str) -> None:
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise DataError(f"{where}: '{name}' has {bad} NaN/inf values; clean the features before training")


def load_mmsa_pickle(path: str | Path, text_tokens: bool | None = None) -> Dataset:
    """Read an MMSA feature pickle (see module docstring). `text_tokens`: use ``text_bert`` (True; a clear
    `DataError` when the pickle has none), ``text`` (False), or whichever is present, preferring precomputed
    ``text`` (None). Real MMSA pickles carry both; the trainer asks for tokens exactly when a text encoder is
    requested."""
    path = Path(path)
    _check_file(path)
    try:
        with path.open("rb") as f:
            raw = pickle.load(f)  # MMSA's format is a pickle: only open files you trust
    except Exception as e:
        raise DataError(f"{path}: not a readable MMSA pickle ({type(e).__name__}: {e})") from e
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a dict of splits, got {type(raw).__name__}")
    splits: dict[str, SplitArrays] = {}
    dims = None
    for name in SPLITS:
        if name not in raw:
            raise DataError(f"{path}: missing split {name!r} (has {sorted(map(str, raw))})")
        s = raw[name]
        where = f"{path}[{name}]"
        use_tokens = text_tokens if text_tokens is not None else ("text" not in s and "text_bert" in s)
        tkey = "text_bert" if use_tokens else "text"
        if use_tokens and "text_bert" not in s:
            raise DataError(
                f"{where}: a text encoder needs token ids, but there is no 'text_bert' key (only "
                f"{sorted(k for k in ('text', 'text_bert') if k in s) or 'no text'}); drop --text-encoder to train on "
                "the precomputed 'text' features"
            )
        for k in (tkey, "audio", "vision", "regression_labels"):
            if k not in s:
                raise DataError(f"{where}: missing key {k!r}")
        text = np.asarray(s[tkey], dtype=np.float32)
        audio = np.asarray(s["audio"], dtype=np.float32).copy()
        vision = np.asarray(s["vision"], dtype=np.float32)
        audio[np.isneginf(audio)] = 0.0  # the reference loader does this for MOSEI's COVAREP
        y = np.asarray(s["regression_labels"], dtype=np.float32).reshape(-1)
        n = y.shape[0]
        for k, x in ((tkey, text), ("audio", audio), ("vision", vision)):
            if x.ndim != 3 or x.shape[0] != n:
                raise DataError(f"{where}: '{k}' has shape {x.shape}; expected ({n}, T, D)")
            _check_finite(k, x, where)
        _check_finite("regression_labels", y, where)
        t_l = text.shape[2] if use_tokens else text.shape[1]
        len_l = text[:, 1].sum(1).astype(np.int64) if use_tokens else np.full(n, t_l, np.int64)
        len_a = np.asarray(s.get("audio_lengths", np.full(n, audio.shape[1])), dtype=np.int64).reshape(-1)
        len_v = np.asarray(s.get("vision_lengths", np.full(n, vision.shape[1])), dtype=np.int64).reshape(-1)
        d = (768 if use_tokens else text.shape[2], vision.shape[2], audio.shape[2])
        if dims is not None and d != dims:
            raise DataError(f"{where}: feature dims {d} differ from the train split's {dims}")
        dims = d
        ids = [str(i) for i in s.get("id", [])] or [f"{name}-{i}" for i in range(n)]
        splits[name] = SplitArrays(
            language=text, visual=vision, acoustic=audio,
            lengths=np.stack([len_l, np.clip(len_v, 1, vision.shape[1]), np.clip(len_a, 1, audio.shape[1])], 1),
            present=np.ones((n, 3), dtype=bool), valence=y, ids=ids,
        )
        text_tokens = use_tokens
    spec = generic_spec(dict(zip(MODALITIES, dims)), extractor="mmsa")
    return Dataset(splits, spec, text_tokens=bool(text_tokens), source=str(path))


def save_packed(ds: Dataset, path: str | Path) -> Path:
    """Write a `Dataset` as a packed ``.npz`` (no pickles inside)."""
    path = Path(path)
    arrays = {}
    for name, s in ds.splits.items():
        for k in ("language", "visual", "acoustic", "lengths", "present", "valence"):
            arrays[f"{name}/{k}"] = getattr(s, k)
        if s.emotion is not None:
            arrays[f"{name}/emotion"] = s.emotion
        if s.valence_known is not None:
            arrays[f"{name}/valence_known"] = s.valence_known
        arrays[f"{name}/ids"] = np.array(s.ids if s.ids else [""] * len(s))
    meta = {"spec": ds.spec.to_dict(), "emotions": list(ds.emotions), "text_tokens": ds.text_tokens}
    arrays["meta_json"] = np.array(json.dumps(meta))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def load_packed(path: str | Path) -> Dataset:
    path = Path(path)
    _check_file(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:
        raise DataError(f"{path}: not a readable packed dataset ({type(e).__name__}: {e})") from e
    if "meta_json" not in arrays:
        raise DataError(f"{path}: no meta_json; is this a per-item feature file? pass its directory instead")
    meta = json.loads(str(arrays["meta_json"]))
    splits = {}
    for name in sorted({k.split("/")[0] for k in arrays if "/" in k}):
        where = f"{path}[{name}]"
        need = ("language", "visual", "acoustic", "lengths", "present", "valence")
        missing = [k for k in need if f"{name}/{k}" not in arrays]
        if missing:
            raise DataError(f"{where}: missing {missing}")
        for k in ("language", "visual", "acoustic", "valence"):
            _check_finite(k, arrays[f"{name}/{k}"], where)
        splits[name] = SplitArrays(
            *(arrays[f"{name}/{k}"] for k in need),
            emotion=arrays.get(f"{name}/emotion"),
            ids=[str(i) for i in arrays.get(f"{name}/ids", [])],
            valence_known=arrays.get(f"{name}/valence_known"),
        )
    for name in SPLITS:
        if name not in splits:
            raise DataError(f"{path}: missing split {name!r} (has {sorted(splits)})")
    return Dataset(splits, FeatureSpec.from_dict(meta["spec"]), bool(meta.get("text_tokens", False)),
                   tuple(meta.get("emotions", ())), str(path))


def _hash_split(name: str) -> str:
    h = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 10
    return "train" if h < 8 else ("valid" if h == 8 else "test")


def pack_items(items, seq_lens: tuple[int, int, int], emotions: tuple[str, ...] = EMOTIONS7, source: str = "") -> Dataset:
    """Pack `ItemFeatures` into a `Dataset`, fitting each modality to at most `seq_lens` steps (L, V, A)."""
    if not items:
        raise DataError(f"{source}: no feature items")
    spec = items[0].spec
    for it in items[1:]:
        spec.check_compatible(it.spec, what=f"{it.source or 'item'}")
    dims = [spec.dims()[m] for m in MODALITIES]
    grouped: dict[str, list] = {s: [] for s in SPLITS}
    for it in items:
        grouped[it.labels.get("split") or _hash_split(it.source)].append(it)
    splits = {}
    for name, group in grouped.items():
        n = len(group)
        arrs = [np.zeros((n, seq_lens[m], dims[m]), np.float32) for m in range(3)]
        lengths = np.ones((n, 3), np.int64)
        present = np.zeros((n, 3), bool)
        valence = np.zeros(n, np.float32)
        valence_known = np.zeros(n, bool)  # an item with only a class label has no valence to learn from
        emotion = np.zeros((n, len(emotions)), np.float32)
        for i, it in enumerate(group):
            for m, mod in enumerate(MODALITIES):
                x = getattr(it, mod)
                if mod == "visual" and x.shape[0]:
                    x = x[it.face_present]  # frames without a face carry no visual evidence
                if x.shape[0] == 0 or mod in it.absent:
                    continue
                x = fit_length(x, seq_lens[m])
                arrs[m][i, : x.shape[0]] = x
                lengths[i, m] = x.shape[0]
                present[i, m] = True
            lab = it.labels
            if "emotion_soft" in lab:
                emotion[i] = np.asarray(lab["emotion_soft"], np.float32)
            elif lab.get("emotion7") in emotions:
                emotion[i, emotions.index(lab["emotion7"])] = 1.0
            if lab.get("valence") is not None:
                valence[i] = float(lab["valence"])
                valence_known[i] = True
        splits[name] = SplitArrays(*arrs, lengths, present, valence, emotion, [it.source for it in group],
                                   valence_known)
    return Dataset(splits, spec, emotions=tuple(emotions), source=source)


def load_feature_dir(path: str | Path, seq_lens: tuple[int, int, int]) -> Dataset:
    from .feature_file import SUFFIX, FeatureFileError, ItemFeatures

    path = Path(path)
    files = sorted(path.glob(f"*{SUFFIX}"))
    if not files:
        raise DataError(f"{path}: no *{SUFFIX} feature files (make them with python -m realtime.extract)")
    items = []
    for f in files:
        try:
            items.append(ItemFeatures.load(f))
        except FeatureFileError as e:
            raise DataError(str(e)) from e
    return pack_items(items, seq_lens, source=str(path))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")


def load_dataset(path: str | Path, seq_lens: tuple[int, int, int] | None = None, text_tokens: bool | None = None) -> Dataset:
    """Load any supported dataset (see module docstring). `seq_lens` is needed for a feature directory."""
    path = Path(path)
    if path.is_dir():
        if seq_lens is None:
            raise DataError("a feature directory needs seq_lens to pack items")
        return load_feature_dir(path, seq_lens)
    if path.suffix == ".npz":
        return load_packed(path)
    return load_mmsa_pickle(path, text_tokens=text_tokens)
