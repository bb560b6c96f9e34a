"""Evaluation metrics, computed exactly as MMSA's ``metricsTop`` regression protocol does (spec §7).

The paper's "ACC2/F1" are the **Non0** convention (negative vs positive, samples with a label of exactly 0
dropped); both conventions are reported and labelled. F1 is sklearn's support-weighted F1, as MMSA uses.
"""

from __future__ import annotations

import numpy as np


def _weighted_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, average="weighted"))


def regression_metrics(pred, truth) -> dict[str, float]:
    """MMSA regression metrics on unclipped predictions and labels (any shape; flattened).

    Returns Has0_acc_2, Has0_F1_score, Non0_acc_2, Non0_F1_score, Mult_acc_5, Mult_acc_7, MAE, Corr, each
    rounded to 4 decimals as MMSA does (`mmsa_round`: numpy rounding, which differs from Python's at ties).
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(truth, dtype=np.float64).reshape(-1)
    if p.shape != t.shape or p.size == 0:
        raise ValueError(f"need equally many predictions and labels, got {p.size} and {t.size}")
    mae = float(np.mean(np.abs(p - t)))
    corr = float(np.corrcoef(p, t)[0, 1]) if p.size > 1 and p.std() > 0 and t.std() > 0 else 0.0
    # np.round rounds half to even (2.5 -> 2), as MMSA does
    acc7 = float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(t, -3, 3))))
    acc5 = float(np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(t, -2, 2))))
    non0 = t != 0
    non0_truth, non0_pred = t[non0] > 0, p[non0] > 0
    has0_truth, has0_pred = t >= 0, p >= 0
    out = {
        "Has0_acc_2": float(np.mean(has0_pred == has0_truth)),
        "Has0_F1_score": _weighted_f1(has0_truth, has0_pred),
        "Non0_acc_2": float(np.mean(non0_pred == non0_truth)) if non0.any() else float("nan"),
        "Non0_F1_score": _weighted_f1(non0_truth, non0_pred) if non0.any() else float("nan"),
        "Mult_acc_5": acc5,
        "Mult_acc_7": acc7,
        "MAE": mae,
        "Corr": corr,
    }
    return {k: mmsa_round(v) for k, v in out.items()}


def mmsa_round(v: float, decimals: int = 4) -> float:
    """Round as MMSA's ``round(x, 4)`` does on its numpy scalars: numpy rounding of x * 10^4, half to even. Python's
    ``round`` on a float rounds the decimal expansion instead, so at an exact tie the two differ by 1e-4 (1/160 =
    0.00625: numpy 0.0062, Python 0.0063)."""
    return float(np.round(np.float64(v), decimals))


def classification_metrics(logits_or_pred, truth, num_classes: int | None = None) -> dict[str, float]:
    """Accuracy and macro-F1 of class predictions (argmax of logits when 2-D). Unlabelled rows (-1) are dropped."""
    from sklearn.metrics import f1_score

    x = np.asarray(logits_or_pred)
    pred = x.argmax(-1) if x.ndim == 2 else x.astype(int)
    t = np.asarray(truth).astype(int).reshape(-1)
    keep = t >= 0
    pred, t = pred[keep], t[keep]
    if t.size == 0:
        return {"acc": float("nan"), "macro_f1": float("nan"), "n": 0}
    labels = list(range(num_classes)) if num_classes else None
    return {
        "acc": round(float(np.mean(pred == t)), 4),
        "macro_f1": round(float(f1_score(t, pred, average="macro", labels=labels, zero_division=0)), 4),
        "n": int(t.size),
    }


def valence_metrics(pred, truth) -> dict[str, float]:
    """MAE and Pearson correlation of a continuous valence prediction."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(truth, dtype=np.float64).reshape(-1)
    corr = float(np.corrcoef(p, t)[0, 1]) if p.size > 1 and p.std() > 0 and t.std() > 0 else 0.0
    return {"MAE": round(float(np.mean(np.abs(p - t))), 4), "Corr": round(corr, 4)}
