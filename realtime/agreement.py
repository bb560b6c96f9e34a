"""Where the modalities agree with the fused label and where they disagree: a pure function of one scored window.

DMD scores every modality on its own twice, through its homogeneous head (the modality's shared, modality-irrelevant
features) and its heterogeneous head (its private features after the cross-modal transformers). Comparing those
per-modality labels with the fused one costs nothing and tells the user *why* the readout says what it says, e.g.
"face happy, voice angry". Only present modalities are judged: an absent modality's heads see zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

MODALITIES = (("L", "language", "words"), ("V", "visual", "face"), ("A", "acoustic", "voice"))

AGREE, PARTLY, DISAGREE = "agrees", "partly", "disagrees"


@dataclass(frozen=True)
class ModalityVote:
    """One present modality's opinion.

    Attributes:
        short: "L", "V" or "A"; name: "words", "face" or "voice".
        homo, hetero: the labels of the modality's homogeneous and heterogeneous heads (None if not predicted).
        verdict: "agrees" (both heads give the fused label), "partly" (one does), "disagrees" (neither does).
    """

    short: str
    name: str
    homo: str | None
    hetero: str | None
    verdict: str

    def to_json_dict(self) -> dict:
        return {"homo": self.homo, "hetero": self.hetero, "verdict": self.verdict}


def modality_votes(heads: dict, present: dict, fused: str) -> list[ModalityVote]:
    """The present modalities' votes against the ``fused`` label, in L, V, A order.

    Args:
        heads: ``ScoreResult.heads``: {"homo": {"L": {"emotion": ...}, ...}, "hetero": {...}}.
        present: ``ScoreResult.present``: {"language": bool, "visual": bool, "acoustic": bool}.
        fused: the label to compare with (the window's fused label, or the page's shown label).
    """
    out = []
    for short, long_name, name in MODALITIES:
        if not present.get(long_name):
            continue
        homo = ((heads.get("homo") or {}).get(short) or {}).get("emotion")
        hetero = ((heads.get("hetero") or {}).get(short) or {}).get("emotion")
        hits = sum(1 for lab in (homo, hetero) if lab is not None and lab == fused)
        verdict = AGREE if hits == 2 else PARTLY if hits == 1 else DISAGREE
        out.append(ModalityVote(short, name, homo, hetero, verdict))
    return out


def votes_json(votes: list[ModalityVote]) -> dict:
    """{short: {homo, hetero, verdict}} for the JSONL."""
    return {v.short: v.to_json_dict() for v in votes}


def votes_text(votes: list[ModalityVote]) -> str:
    """Compact one-line summary, e.g. ``face ✓ happy · voice ✗ angry/sad · words ½ happy/neutral``."""
    marks = {AGREE: "✓", PARTLY: "½", DISAGREE: "✗"}
    parts = []
    for v in votes:
        labels = v.homo if v.homo == v.hetero else "/".join(x or "–" for x in (v.homo, v.hetero))
        parts.append(f"{v.name} {marks[v.verdict]} {labels}")
    return " · ".join(parts)
