"""DMD's GD-Unit edges as the sinks and the page read them: a 3x3 ``W[teacher][student]`` matrix (rows and columns
L, V, A; diagonal 0) by edge name, in `dmd_model.config.EDGE_NAMES` order. Pure functions, no imports of note."""

from __future__ import annotations

import math
from typing import Sequence

from dmd_model.config import EDGE_NAMES
from dmd_model.feature_spec import MODALITY_SHORT


def edge_index(name: str) -> tuple[int, int]:
    """``"L→V"`` -> (teacher row, student column) in the L, V, A matrix."""
    teacher, student = name.split("→")
    return MODALITY_SHORT.index(teacher), MODALITY_SHORT.index(student)


def edge_weights(W: Sequence[Sequence[float | None]]) -> dict[str, float]:
    """The six edge weights of ``W`` keyed by name in EDGE_NAMES order (a missing or non-finite weight reads 0)."""
    out = {}
    for name in EDGE_NAMES:
        i, j = edge_index(name)
        w = W[i][j]
        w = float(w) if w is not None else 0.0
        out[name] = w if math.isfinite(w) else 0.0
    return out
