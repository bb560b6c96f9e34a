"""Pure drawing functions for the page: DMD's edge graphs, the edge matrix, the valence timeline, probability bars,
and the end-of-replay summary PNG. No Gradio here, and no state: every function maps data to a string (or a file).

Why SVG/HTML strings and not matplotlib figures for the live views: the page redraws several times a second on a
2-core machine that is also running the face, Whisper and openSMILE stages. A matplotlib figure costs tens of ms
to render and ships a PNG; an SVG string costs well under a millisecond, is a few kB, stays sharp, and its labels
are real DOM text (the browser test reads the edge labels). matplotlib is used once, for the summary PNG.

Edge conventions (the DMD reference specification, ../shared/docs/dmd-spec.md §3, outside this repository): a GD-Unit matrix ``W[teacher][student]`` in order L, V, A; the diagonal is
0 and the six off-diagonal weights sum to 1 per window (softmax over all six edges jointly). The edge order used
everywhere below is the code's: V→L, A→L, L→V, A→V, L→A, V→A (``dmd_model.config.EDGE_NAMES``).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from dmd_model.config import EDGE_NAMES, HETERO_PRIOR_MASK, HOMO_PRIOR_MASK, softmax_prior
from dmd_model.feature_spec import MODALITY_SHORT as MODS

from ..edges import edge_index, edge_weights  # noqa: F401  (part of what the views draw with)

MOD_NAMES = {"L": "language", "V": "visual", "A": "acoustic"}

MIN_WIDTH = 0.5
"""Stroke width (px) of an edge of weight 0."""
WIDTH_PER_WEIGHT = 20.0
"""Extra px per unit weight: 1/6 (uniform) -> 3.83 px; 0.48 (the homo prior's favourite) -> 10.1 px."""
MAX_WIDTH = 14.0

HOMO_PRIOR = softmax_prior(HOMO_PRIOR_MASK)
HETERO_PRIOR = softmax_prior(HETERO_PRIOR_MASK)
"""The reference code's hand-set priors π (spec §3, `dmd_model.config`), in EDGE_NAMES order; shown until a
stream's checkpoint gives its own."""

PRIOR_CAVEAT = (
    "Caveat: the dominant edges reported in the DMD paper (HomoGD L→A and L→V; HeteroGD L→A, L→V and V→A) are "
    "exactly the edges the reference code's hand-set prior π favours, with a regulariser (weight 10) pulling the mean "
    "edges toward π. What you see here therefore mostly reflects that prior, not patterns learned from scratch. "
    "Compare with the bundled prior-free checkpoint (Settings: assets/dmd_live_prior_free, preset live-prior-free, "
    "same data) to see what the data alone gives. Its shown label is less steady: its face head reads a brief smile "
    "firmly enough to show it (assets/MODEL_CARD.md, \"The displayed readout\")."
)


def edge_width(w: float) -> float:
    """Stroke width in px for an edge weight (linear, clamped to [MIN_WIDTH, MAX_WIDTH], rounded to 0.01)."""
    w = max(0.0, float(w)) if math.isfinite(w) else 0.0
    return round(min(MAX_WIDTH, MIN_WIDTH + WIDTH_PER_WEIGHT * w), 2)


def edge_label(w: float) -> str:
    """The text drawn on an edge: the weight with two decimals."""
    return f"{w:.2f}" if math.isfinite(w) else "–"


@dataclass(frozen=True)
class EdgeDraw:
    name: str
    teacher: str
    student: str
    weight: float
    width: float
    label: str


def edge_draws(W: Sequence[Sequence[float]]) -> list[EdgeDraw]:
    """What the graph draws for each edge, in EDGE_NAMES order."""
    return [EdgeDraw(n, n[0], n[-1], w, edge_width(w), edge_label(w)) for n, w in edge_weights(W).items()]


# vertex positions (L on top, A bottom-left, V bottom-right), in a 300 x 250 viewBox
_POS = {"L": (150.0, 38.0), "A": (48.0, 205.0), "V": (252.0, 205.0)}
_COLOURS = {"L": "#2563eb", "V": "#16a34a", "A": "#dc2626"}
_R = 22.0


def _curve(a: tuple[float, float], b: tuple[float, float], bend: float = 26.0):
    """A quadratic curve from a to b bent to the right of the direction a->b (so i→j and j→i do not overlap),
    shortened by the vertex radius at both ends. Returns (path d, label x, label y)."""
    (x1, y1), (x2, y2) = a, b
    dx, dy = x2 - x1, y2 - y1
    d = math.hypot(dx, dy)
    ux, uy = dx / d, dy / d
    nx, ny = -uy, ux  # right-hand normal in SVG coordinates (y down)
    mx, my = (x1 + x2) / 2 + nx * bend, (y1 + y2) / 2 + ny * bend
    # start/end on the circles, aimed at the control point
    def clip(px, py, cx, cy, r):
        vx, vy = cx - px, cy - py
        n = math.hypot(vx, vy)
        return px + vx / n * r, py + vy / n * r

    sx, sy = clip(x1, y1, mx, my, _R + 2)
    ex, ey = clip(x2, y2, mx, my, _R + 9)
    lx, ly = 0.25 * sx + 0.5 * mx + 0.25 * ex, 0.25 * sy + 0.5 * my + 0.25 * ey  # curve midpoint
    lx, ly = lx + nx * 11, ly + ny * 11
    return f"M{sx:.1f},{sy:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}", lx, ly


def graph_svg(W: Sequence[Sequence[float]] | None, title: str, unit: str) -> str:
    """A GD-Unit as a 3-vertex directed graph: edge widths and labels are the weights of ``W[teacher][student]``.

    ``unit`` ("homo" / "hetero") goes into element ids and ``data-`` attributes so tests and CSS can find each
    label: ``<text class="edge-label" data-unit="homo" data-edge="L→V">0.20</text>``.
    """
    parts = [f'<svg class="gd-graph" data-unit="{unit}" viewBox="0 0 300 250" width="100%" '
             f'style="max-width:340px" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{html.escape(title)}">',
             '<defs><marker id="ah-' + unit + '" viewBox="0 0 10 10" refX="6" refY="5" markerWidth="3.2" '
             'markerHeight="3.2" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#475569"/></marker></defs>',
             f'<text x="4" y="14" font-size="13" font-weight="600" fill="currentColor">{html.escape(title)}</text>']
    if W is None:
        parts.append('<text x="150" y="130" text-anchor="middle" font-size="12" fill="#64748b">waiting for scores…</text>')
    else:
        for e in edge_draws(W):
            d, lx, ly = _curve(_POS[e.teacher], _POS[e.student])
            opacity = 0.35 + 0.65 * min(1.0, e.weight * 3)
            parts.append(f'<path class="edge" data-unit="{unit}" data-edge="{e.name}" d="{d}" fill="none" '
                         f'stroke="#475569" stroke-opacity="{opacity:.2f}" stroke-width="{e.width}" '
                         f'marker-end="url(#ah-{unit})"><title>{e.name}: {e.weight:.4f}</title></path>')
            parts.append(f'<text class="edge-label" data-unit="{unit}" data-edge="{e.name}" x="{lx:.1f}" y="{ly:.1f}" '
                         f'font-size="12" text-anchor="middle" dominant-baseline="middle" fill="currentColor">'
                         f'{e.label}</text>')
    for m, (x, y) in _POS.items():
        parts.append(f'<circle cx="{x}" cy="{y}" r="{_R}" fill="{_COLOURS[m]}" fill-opacity="0.9"/>'
                     f'<text x="{x}" y="{y}" font-size="15" font-weight="700" text-anchor="middle" '
                     f'dominant-baseline="central" fill="white">{m}</text>')
    parts.append("</svg>")
    return "".join(parts)


def matrix_html(W: Sequence[Sequence[float]] | None, unit: str, prior: Sequence[float] | None = None) -> str:
    """The 3x3 matrix (rows = teacher, columns = student), cells shaded by weight; prior π in the tooltip."""
    pri = dict(zip(EDGE_NAMES, prior)) if prior is not None else {}
    rows = ['<table class="gd-matrix" data-unit="' + unit + '"><tr><th title="row = teacher, column = student">'
            't\\s</th>' + "".join(f"<th>{m}</th>" for m in MODS) + "</tr>"]
    for i, t in enumerate(MODS):
        cells = [f"<th>{t}</th>"]
        for j, s in enumerate(MODS):
            if i == j:
                cells.append('<td class="diag">·</td>')
                continue
            w = float(W[i][j]) if W is not None else float("nan")
            shade = 0 if not math.isfinite(w) else min(1.0, w * 2.5)
            tip = f"{t}→{s}" + (f" (prior π {pri[f'{t}→{s}']:.3f})" if f"{t}→{s}" in pri else "")
            cells.append(f'<td title="{tip}" style="background:rgba(37,99,235,{shade:.2f});'
                         f'color:{"white" if shade > 0.55 else "inherit"}">{edge_label(w) if W is not None else "–"}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


class EdgeAverager:
    """Time-averaged edges: the mean of every scored window's matrix since `reset` (windows where a unit has no
    valid edge, i.e. an all-zero matrix because fewer than two modalities were present, are not counted)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sum = {"homo": [[0.0] * 3 for _ in range(3)], "hetero": [[0.0] * 3 for _ in range(3)]}
        self.n = {"homo": 0, "hetero": 0}

    def add(self, homo: Sequence[Sequence[float]], hetero: Sequence[Sequence[float]]) -> None:
        for unit, W in (("homo", homo), ("hetero", hetero)):
            if W is None or not any(float(W[i][j]) > 0 for i in range(3) for j in range(3)):
                continue
            for i in range(3):
                for j in range(3):
                    self.sum[unit][i][j] += float(W[i][j])
            self.n[unit] += 1

    def mean(self, unit: str) -> list[list[float]] | None:
        n = self.n[unit]
        return [[v / n for v in row] for row in self.sum[unit]] if n else None


def average_html(avg: EdgeAverager, homo_prior: Sequence[float], hetero_prior: Sequence[float]) -> str:
    """Time-averaged view: per edge, the session mean for each unit next to its prior π, with bars."""
    head = (f'<table class="gd-average"><tr><th>edge</th><th>HomoGD mean (n={avg.n["homo"]})</th><th>π homo</th>'
            f'<th>HeteroGD mean (n={avg.n["hetero"]})</th><th>π hetero</th></tr>')
    rows = [head]
    means = {u: avg.mean(u) for u in ("homo", "hetero")}
    for k, name in enumerate(EDGE_NAMES):
        cells = [f"<td><b>{name}</b></td>"]
        for unit, prior in (("homo", homo_prior), ("hetero", hetero_prior)):
            m = means[unit]
            if m is None:
                cells.append("<td>–</td>")
            else:
                i, j = edge_index(name)
                w = m[i][j]
                cells.append(f'<td><span class="bar" style="width:{min(100, w * 200):.0f}px"></span> {w:.3f}</td>')
            cells.append(f"<td>{prior[k]:.3f}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


# -- valence timeline ----------------------------------------------------------------------------------------------

SERIES = ("fused", "homo L", "homo V", "homo A", "hetero L", "hetero V", "hetero A")
SERIES_COLOURS = {"fused": "#111827", "homo L": "#2563eb", "homo V": "#16a34a", "homo A": "#dc2626",
                  "hetero L": "#93c5fd", "hetero V": "#86efac", "hetero A": "#fca5a5"}
SERIES_DASH = {"fused": "", "homo L": "", "homo V": "", "homo A": "",
               "hetero L": "5,3", "hetero V": "5,3", "hetero A": "5,3"}


def series_row(result) -> tuple[float, dict[str, float | None]]:
    """(t, {series: valence}) from a ScoreResult (the per-modality heads may have valence None)."""
    vals: dict[str, float | None] = {"fused": result.valence}
    for unit in ("homo", "hetero"):
        for m in MODS:
            vals[f"{unit} {m}"] = (result.heads.get(unit, {}).get(m) or {}).get("valence")
    return result.t, vals


def y_range(values: Iterable[float]) -> float:
    """Symmetric y half-range: at least 1, otherwise the largest |value| rounded up to 0.5."""
    big = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)
    return max(1.0, math.ceil(big * 2) / 2)


def timeline_svg(rows: Sequence[tuple[float, dict]], shown: Sequence[str], span_s: float = 60.0,
                 width: int = 640, height: int = 220) -> str:
    """Valence over the last ``span_s`` seconds of media time: one polyline per shown series."""
    shown = [s for s in SERIES if s in shown]
    pad_l, pad_r, pad_t, pad_b = 38, 8, 10, 22
    pw, ph = width - pad_l - pad_r, height - pad_t - pad_b
    t_end = rows[-1][0] if rows else 0.0
    t0 = max(0.0, t_end - span_s) if t_end > span_s else 0.0
    t1 = max(t0 + span_s, t_end)
    visible = [(t, v) for t, v in rows if t >= t0]
    yr = y_range(v.get(s) for _, v in visible for s in shown)

    def X(t):
        return pad_l + (t - t0) / (t1 - t0) * pw

    def Y(v):
        return pad_t + (1 - (v + yr) / (2 * yr)) * ph

    out = [f'<svg class="valence-timeline" viewBox="0 0 {width} {height}" width="100%" '
           f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="valence over the last {span_s:.0f} s">']
    for v in (-yr, -yr / 2, 0.0, yr / 2, yr):
        y = Y(v)
        out.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#cbd5e1" '
                   f'stroke-width="{1.2 if v == 0 else 0.6}"/><text x="{pad_l - 4}" y="{y + 4:.1f}" font-size="10" '
                   f'text-anchor="end" fill="#64748b">{v:+.1f}</text>')
    step = 10 if span_s >= 30 else 5
    k = math.ceil(t0 / step) * step
    while k <= t1 + 1e-9:
        x = X(k)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad_t}" y2="{pad_t + ph}" stroke="#e2e8f0" stroke-width="0.6"/>'
                   f'<text x="{x:.1f}" y="{height - 6}" font-size="10" text-anchor="middle" fill="#64748b">{k:.0f}s</text>')
        k += step
    for s in shown:
        pts = [f"{X(t):.1f},{Y(v[s]):.1f}" for t, v in visible if v.get(s) is not None and math.isfinite(v[s])]
        if len(pts) >= 1:
            dash = f' stroke-dasharray="{SERIES_DASH[s]}"' if SERIES_DASH[s] else ""
            w = 2.4 if s == "fused" else 1.4
            out.append(f'<polyline class="series" data-series="{s}" fill="none" stroke="{SERIES_COLOURS[s]}" '
                       f'stroke-width="{w}"{dash} points="{" ".join(pts)}"/>')
    lx = pad_l + 4
    for s in shown:
        out.append(f'<rect x="{lx}" y="{pad_t + 2}" width="10" height="3" fill="{SERIES_COLOURS[s]}"/>'
                   f'<text x="{lx + 13}" y="{pad_t + 7}" font-size="10" fill="#334155">{s}</text>')
        lx += 13 + 7 * len(s) + 10
    if not visible:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="12" fill="#64748b">'
                   "no scores yet</text>")
    out.append("</svg>")
    return "".join(out)


def probs_html(probs: dict[str, float], emotion: str) -> str:
    """Emotion probabilities as horizontal bars, most likely first."""
    if not probs:
        return '<div class="probs">no emotion classes in this checkpoint</div>'
    rows = []
    for name, p in sorted(probs.items(), key=lambda kv: -kv[1]):
        cls = ' class="top"' if name == emotion else ""
        rows.append(f'<div{cls}><span class="pname">{html.escape(name)}</span><span class="pbar" '
                    f'style="width:{p * 160:.0f}px"></span> {p:.2f}</div>')
    return '<div class="probs">' + "".join(rows) + "</div>"


# -- summary PNG (matplotlib, once per replay) ---------------------------------------------------------------------

def summary_png(rows: Sequence[tuple[float, dict]], avg: EdgeAverager, path, title: str = "") -> str:
    """The end-of-replay summary: valence timelines (fused and per-modality heads) and the mean edge matrices."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 6.5), dpi=100)
    gs = fig.add_gridspec(2, 2, height_ratios=[1.2, 1])
    ax = fig.add_subplot(gs[0, :])
    ts = [t for t, _ in rows]
    for s in SERIES:
        ys = [v.get(s) if v.get(s) is not None else float("nan") for _, v in rows]
        ax.plot(ts, ys, color=SERIES_COLOURS[s], lw=2.2 if s == "fused" else 1.1,
                ls="--" if SERIES_DASH[s] else "-", label=s)
    ax.axhline(0, color="#94a3b8", lw=0.8)
    ax.set_xlabel("media time (s)")
    ax.set_ylabel("valence")
    ax.legend(ncol=7, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.16))
    ax.set_title(title, fontsize=10, pad=28)
    for k, unit in enumerate(("homo", "hetero")):
        a = fig.add_subplot(gs[1, k])
        m = avg.mean(unit)
        mat = [[float("nan") if i == j else (m[i][j] if m else 0.0) for j in range(3)] for i in range(3)]
        a.imshow(mat, cmap="Blues", vmin=0, vmax=0.5)
        for i in range(3):
            for j in range(3):
                if i != j:
                    a.text(j, i, f"{mat[i][j]:.3f}", ha="center", va="center", fontsize=10)
        a.set_xticks(range(3), MODS)
        a.set_yticks(range(3), MODS)
        a.set_xlabel("student")
        a.set_ylabel("teacher")
        a.set_title(f"{'HomoGD' if unit == 'homo' else 'HeteroGD'}: mean edges (n={avg.n[unit]} windows)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return str(path)
