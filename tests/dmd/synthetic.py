"""Synthetic MMSA-format data that the tests write themselves (no shared data needed)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def make_mmsa_split(n: int, dims=(768, 20, 5), lens=(50, 50, 50), seed: int = 0, tokens: bool = False) -> dict:
    """A learnable split: the label is a fixed linear function of the mean visual and acoustic features.
    `tokens`: also carry ``text_bert`` (ids / mask / types, as real MMSA pickles do next to ``text``)."""
    rng = np.random.default_rng(seed)
    d_l, d_v, d_a = dims
    text = rng.normal(size=(n, lens[0], d_l)).astype(np.float32)
    vision = rng.normal(size=(n, lens[1], d_v)).astype(np.float32)
    audio = rng.normal(size=(n, lens[2], d_a)).astype(np.float32)
    signal = rng.uniform(-3, 3, size=n).astype(np.float32)
    # plant the label in every modality so any branch can learn it
    text[:, :, 0] += signal[:, None]
    vision[:, :, 0] += signal[:, None]
    audio[:, :, 0] += signal[:, None]
    extra = {}
    if tokens:
        ids = rng.integers(1000, 5000, size=(n, lens[0]))
        ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
        extra["text_bert"] = np.stack([ids, np.ones_like(ids), np.zeros_like(ids)], 1).astype(np.float32)
    return extra | {
        "text": text, "vision": vision, "audio": audio,
        "audio_lengths": np.full(n, lens[2]), "vision_lengths": np.full(n, lens[1]),
        "regression_labels": signal, "id": np.array([f"s{seed}_{i}" for i in range(n)]),
    }


def write_mmsa_pickle(path: Path, n_train: int = 64, n_eval: int = 16, **kw) -> Path:
    data = {
        "train": make_mmsa_split(n_train, seed=1, **kw),
        "valid": make_mmsa_split(n_eval, seed=2, **kw),
        "test": make_mmsa_split(n_eval, seed=3, **kw),
    }
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


MOSI_SIZES = (1284, 229, 686)  # train / valid / test, spec §5
MOSI_DIMS = (768, 20, 5)  # text, vision, audio (MMSA stores audio 5-d, vision 20-d for MOSI)


def make_planted_split(n: int, dims=MOSI_DIMS, lens=(50, 50, 50), strength=(0.2, 0.15, 0.2), seed: int = 0,
                       directions_seed: int = 1234) -> dict:
    """A split in MMSA's layout whose label every modality carries weakly at every time step.

    The label y ~ N(0, 1.5) clipped to [-3, 3] (MOSI's range); each step of modality m is standard normal noise
    plus ``strength[m] * y * u_m``, with u_m a fixed random unit direction (the same in every split: seeded by
    `directions_seed`). One step alone says little; the time average, a linear read-out, says much more, and the
    three modalities together more than any one (see `ridge_ratios`). Channel 0 is never exactly 0, so the
    faithful positional embedding sees no padding.
    """
    rng = np.random.default_rng(seed)
    dirs = np.random.default_rng(directions_seed)
    y = np.clip(rng.normal(0.0, 1.5, size=n), -3, 3).astype(np.float32)
    out = {}
    for key, d, t, a in zip(("text", "vision", "audio"), dims, lens, strength):
        u = dirs.normal(size=d)
        u /= np.linalg.norm(u)
        x = rng.standard_normal((n, t, d), dtype=np.float32)
        x += (a * y[:, None, None] * u[None, None, :]).astype(np.float32)
        out[key] = x
    out |= {"audio_lengths": np.full(n, lens[2]), "vision_lengths": np.full(n, lens[1]),
            "regression_labels": y, "id": np.array([f"planted{seed}_{i}" for i in range(n)]),
            "raw_text": np.array([""] * n), "annotations": np.array([""] * n)}
    return out


def write_planted_pickle(path: Path, sizes=MOSI_SIZES, **kw) -> Path:
    """train / valid / test planted-signal splits (`make_planted_split`) as an MMSA pickle."""
    data = {name: make_planted_split(n, seed=s, **kw) for name, n, s in zip(("train", "valid", "test"), sizes, (11, 12, 13))}
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=4)
    return path


def ridge_ratios(data: dict, alphas=(0.1, 1.0, 10.0, 100.0, 1000.0)) -> dict[str, float]:
    """Test MAE of ridge regression on time-averaged features, as a fraction of predicting the train mean:
    for all modalities together and for each alone, the ridge penalty picked on the valid split. What a linear
    read-out of the planted signal reaches."""
    def feats(split, keys):
        return np.concatenate([split[k].mean(1) for k in keys], axis=1).astype(np.float64)

    tr, va, te = data["train"], data["valid"], data["test"]
    y = tr["regression_labels"].astype(np.float64)
    base = np.mean(np.abs(te["regression_labels"] - y.mean()))
    out = {}
    for name, keys in (("all", ("text", "vision", "audio")), ("text", ("text",)), ("vision", ("vision",)),
                       ("audio", ("audio",))):
        x = feats(tr, keys)
        mu = x.mean(0)

        def mae(split, w):
            return np.mean(np.abs((feats(split, keys) - mu) @ w + y.mean() - split["regression_labels"]))

        fits = [np.linalg.solve((x - mu).T @ (x - mu) + a * np.eye(x.shape[1]), (x - mu).T @ (y - y.mean()))
                for a in alphas]
        best = min(fits, key=lambda w: mae(va, w))
        out[name] = float(mae(te, best) / base)
    return out
