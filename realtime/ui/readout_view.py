"""The "now" box: the smoothed readout, the raw window beside it, where the modalities agree, and the baseline's
state. Pure functions of a `ScoreResult` (no Gradio, no state), unit-tested exactly."""

from __future__ import annotations

import html
import math

from ..agreement import AGREE, DISAGREE, PARTLY, modality_votes
from ..readout import NO_SIGNAL, UNCERTAIN
from . import plots

_VERDICT_CLASS = {AGREE: "agree", PARTLY: "partly", DISAGREE: "disagree"}
_VERDICT_MARK = {AGREE: "✓", PARTLY: "½", DISAGREE: "✗"}
_BASELINE_NAMES = (("visual", "face"), ("acoustic", "voice"))


def _fmt(v) -> str:
    return "–" if v is None or not isinstance(v, (int, float)) or not math.isfinite(v) else f"{v:+.3f}"


def votes_html(result, label: str) -> str:
    """One chip per present modality: its heads' labels and whether they agree with ``label`` (the shown label,
    or the window's fused label when the page shows "uncertain")."""
    votes = modality_votes(result.heads or {}, result.present or {}, label)
    if not votes:
        return ""
    chips = []
    for v in votes:
        labels = v.homo if v.homo == v.hetero else f"{v.homo or '–'}/{v.hetero or '–'}"
        chips.append(f'<span class="vote vote-{_VERDICT_CLASS[v.verdict]}" data-modality="{v.short}" '
                     f'title="{v.name}: homogeneous head {html.escape(str(v.homo))}, heterogeneous head '
                     f'{html.escape(str(v.hetero))}; {v.verdict} with {html.escape(label)}">'
                     f'{v.name} {_VERDICT_MARK[v.verdict]} {html.escape(labels)}</span>')
    return f'<div class="votes" id="dmd-votes">{"".join(chips)}</div>'


def baseline_text(baseline: dict | None) -> str:
    """e.g. ``baseline: face running 21% · voice calibrated``; "" without a baseline."""
    if not baseline:
        return ""
    parts = []
    for key, name in _BASELINE_NAMES:
        st = baseline.get(key)
        if not st:
            continue
        state = st.get("state")
        if state == "running":
            text = f"{name} running {100 * st.get('trust', 0.0):.0f}%"
            if st.get("calibration_failed"):
                text += " (calibration found none)"
        else:
            text = f"{name} {state}"
        parts.append(text)
    return "baseline: " + " · ".join(parts) if parts else ""


def now_html(result, count: int, state_text: str = "") -> str:
    """The readout of the newest shown window (``result``: a ScoreResult, or None before the first)."""
    if result is None:
        return (f'<div class="now"><div class="val">valence <span id="dmd-valence">–</span></div>'
                f'<div class="meta">{html.escape(state_text)}</div></div>')
    shown = result.readout or {"label": result.emotion, "probs": result.probs, "valence": result.valence}
    label = shown.get("label") or "–"
    probs = shown.get("probs") or {}
    against = result.emotion if label in (UNCERTAIN, NO_SIGNAL) else label
    raw = (f'raw window: {html.escape(result.emotion or "–")}'
           + (f' {max(result.probs.values()):.2f}' if result.probs else "")
           + f' · model valence {_fmt(result.valence)}')
    base = baseline_text(result.baseline)
    cls = " nosignal" if label == NO_SIGNAL else " uncertain" if label == UNCERTAIN else ""
    return (f'<div class="now"><div class="val">valence <span id="dmd-valence">{_fmt(shown.get("valence"))}</span></div>'
            f'<div class="emo{cls}">emotion <b id="dmd-emotion">{html.escape(label)}</b></div>'
            f'<div class="meta" id="dmd-raw">{raw}</div>'
            + (votes_html(result, against) if label != NO_SIGNAL else "")
            + f'<div class="meta">window ending at <span id="dmd-result-t">{result.t:.2f}</span> s · '
            f'<span id="dmd-count">{count}</span> windows scored</div>'
            + (f'<div class="meta" id="dmd-baseline">{html.escape(base)}</div>' if base else "")
            + (plots.probs_html(probs, label) if probs else "")
            + "</div>")
