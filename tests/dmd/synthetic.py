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
