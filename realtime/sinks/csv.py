"""Writes one CSV row per score result as it is scored, beside the JSONL (edges by name, heads by unit and
modality, the shown readout and the window's words); moved into place at the end like the JSONL
(`realtime.sinks.atomic`)."""

from __future__ import annotations

import csv
import io
from typing import Sequence

from dmd_model.config import EDGE_NAMES
from dmd_model.feature_spec import MODALITIES
from dmd_model.feature_spec import MODALITY_SHORT as SHORT

from ..edges import edge_weights
from .atomic import AtomicLines, clean_json

UNITS = ("homo", "hetero")


class CsvSink(AtomicLines):
    """Args:
    path: the CSV file (written beside it, moved into place by `commit`).
    emotions: the checkpoint's class names, one ``p_<name>`` column each (`realtime.scorer.Scorer.emotions`).
    """

    def __init__(self, path, emotions: Sequence[str]):
        super().__init__(path, newline="")
        self.emotions = list(emotions)
        self._line(["t", "valence", "emotion"] + [f"p_{e}" for e in self.emotions]
                   + [f"{u}_{m}_valence" for u in UNITS for m in SHORT]
                   + [f"{u}_{e}" for u in UNITS for e in EDGE_NAMES]
                   + [f"present_{m}" for m in SHORT]
                   + ["face_fraction", "voiced_fraction", "capture_to_score_ms", "shown_label", "shown_valence",
                      "words"])
        self.written = 0  # results, not the header

    def _line(self, row: list) -> None:
        buf = io.StringIO()
        csv.writer(buf).writerow(row)
        self._write(buf.getvalue())

    def __call__(self, result) -> None:
        d = clean_json(result.to_json_dict())  # the values exactly as the JSONL has them (NaN -> empty)
        heads, probs = d.get("heads") or {}, d.get("probs") or {}
        row = [d["t"], d["valence"], d["emotion"]] + [probs.get(e) for e in self.emotions]
        row += [((heads.get(u) or {}).get(m) or {}).get("valence") for u in UNITS for m in SHORT]
        for u in UNITS:
            ew = edge_weights(d[f"{u}_edges"])
            row += [ew[e] for e in EDGE_NAMES]
        present = d.get("present") or {}
        row += [present.get(m) for m in MODALITIES]
        row += [d.get("face_fraction"), d.get("voiced_fraction"), (d.get("latency_ms") or {}).get("capture_to_score")]
        shown = d.get("readout") or {}  # what the page showed (smoothed), beside the raw scores
        row += [shown.get("label"), shown.get("valence"), " ".join(d.get("words") or [])]
        self._line(row)
