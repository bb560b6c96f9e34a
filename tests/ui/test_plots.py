"""The drawing functions: exact widths, labels and positions from given edge matrices."""

import re

import pytest

from realtime.ui import plots

# W[teacher][student], order L, V, A; the six off-diagonal weights sum to 1
W = [[0.0, 0.30, 0.25],   # L→V 0.30, L→A 0.25
     [0.05, 0.0, 0.15],   # V→L 0.05, V→A 0.15
     [0.10, 0.15, 0.0]]   # A→L 0.10, A→V 0.15


def test_edge_names_match_the_model():
    from dmd_model.gd_unit import EDGE_NAMES

    assert plots.EDGE_NAMES == tuple(EDGE_NAMES)


def test_edge_weights_read_teacher_rows_and_student_columns():
    assert plots.edge_weights(W) == {"V→L": 0.05, "A→L": 0.10, "L→V": 0.30, "A→V": 0.15, "L→A": 0.25, "V→A": 0.15}


def test_edge_widths_and_labels():
    d = {e.name: (e.teacher, e.student, e.width, e.label) for e in plots.edge_draws(W)}
    assert d == {
        "V→L": ("V", "L", 1.5, "0.05"),
        "A→L": ("A", "L", 2.5, "0.10"),
        "L→V": ("L", "V", 6.5, "0.30"),
        "A→V": ("A", "V", 3.5, "0.15"),
        "L→A": ("L", "A", 5.5, "0.25"),
        "V→A": ("V", "A", 3.5, "0.15"),
    }
    assert [e.name for e in plots.edge_draws(W)] == list(plots.EDGE_NAMES)


@pytest.mark.parametrize("w, width", [(0.0, 0.5), (1 / 6, 3.83), (0.482332, 10.15), (0.7, 14.0), (-0.1, 0.5),
                                      (float("nan"), 0.5)])
def test_edge_width_scale(w, width):
    assert plots.edge_width(w) == width


def test_uniform_edges_at_initialisation():
    u = 1 / 6
    Wu = [[0, u, u], [u, 0, u], [u, u, 0]]
    assert {(e.width, e.label) for e in plots.edge_draws(Wu)} == {(3.83, "0.17")}


def _svg_edges(svg):
    widths = dict(re.findall(r'<path class="edge" data-unit="\w+" data-edge="([LVA]→[LVA])"[^>]*stroke-width="([\d.]+)"',
                             svg))
    labels = dict(re.findall(r'<text class="edge-label" data-unit="\w+" data-edge="([LVA]→[LVA])"[^>]*>([^<]*)</text>',
                             svg))
    return {k: float(v) for k, v in widths.items()}, labels


def test_graph_svg_draws_each_edge_with_its_width_and_label():
    svg = plots.graph_svg(W, "HomoGD", "homo")
    widths, labels = _svg_edges(svg)
    assert widths == {"V→L": 1.5, "A→L": 2.5, "L→V": 6.5, "A→V": 3.5, "L→A": 5.5, "V→A": 3.5}
    assert labels == {"V→L": "0.05", "A→L": "0.10", "L→V": "0.30", "A→V": "0.15", "L→A": "0.25", "V→A": "0.15"}
    assert svg.count('data-unit="homo"') == 13  # the svg itself + 6 paths + 6 labels
    for m in "LVA":
        assert f'dominant-baseline="central" fill="white">{m}</text>' in svg


def test_graph_svg_units_do_not_clash_and_empty_graph_says_so():
    het = plots.graph_svg(W, "HeteroGD", "hetero")
    assert 'marker id="ah-hetero"' in het and "ah-homo" not in het
    empty = plots.graph_svg(None, "HomoGD", "homo")
    assert "waiting for scores" in empty and "edge-label" not in empty


def test_matrix_html_cells():
    m = plots.matrix_html(W, "homo", plots.HOMO_PRIOR)
    cells = re.findall(r'<td title="([^"]*)"[^>]*>([^<]*)</td>', m)
    assert cells == [
        ("L→V (prior π 0.482)", "0.30"), ("L→A (prior π 0.482)", "0.25"),
        ("V→L (prior π 0.009)", "0.05"), ("V→A (prior π 0.009)", "0.15"),
        ("A→L (prior π 0.009)", "0.10"), ("A→V (prior π 0.009)", "0.15"),
    ]
    assert m.count('class="diag"') == 3


def test_edge_averager_skips_windows_without_edges():
    avg = plots.EdgeAverager()
    zero = [[0.0] * 3 for _ in range(3)]
    W2 = [[0.0, 0.10, 0.35], [0.05, 0.0, 0.25], [0.10, 0.15, 0.0]]
    avg.add(W, zero)
    avg.add(W2, W2)
    avg.add(zero, zero)
    assert avg.n == {"homo": 2, "hetero": 1}
    mean = avg.mean("homo")
    assert mean[0][1] == pytest.approx(0.20) and mean[0][2] == pytest.approx(0.30) and mean[1][2] == pytest.approx(0.2)
    assert avg.mean("hetero") == W2
    html = plots.average_html(avg, plots.HOMO_PRIOR, plots.HETERO_PRIOR)
    assert "HomoGD mean (n=2)" in html and "HeteroGD mean (n=1)" in html
    row = re.search(r"<td><b>L→A</b></td>(.*?)</tr>", html).group(1)
    assert re.findall(r"(\d\.\d{3})", row) == ["0.300", "0.482", "0.350", "0.327"]


class _R:
    def __init__(self, t, v, homo=None, hetero=None):
        self.t, self.valence = t, v
        self.heads = {"homo": {m: {"valence": (homo or {}).get(m)} for m in "LVA"},
                      "hetero": {m: {"valence": (hetero or {}).get(m)} for m in "LVA"}}


def test_series_row_and_timeline():
    rows = [plots.series_row(_R(t, 0.5 * (-1) ** i, homo={"L": 0.2, "V": 1.7})) for i, t in
            enumerate([61.0, 62.0, 70.0])]
    assert rows[0] == (61.0, {"fused": 0.5, "homo L": 0.2, "homo V": 1.7, "homo A": None,
                              "hetero L": None, "hetero V": None, "hetero A": None})
    svg = plots.timeline_svg(rows, ["fused", "homo V", "hetero A"], span_s=60)
    series = re.findall(r'data-series="([^"]+)"[^>]*points="([^"]*)"', svg)
    assert [s for s, _ in series] == ["fused", "homo V"]  # hetero A has no values: nothing drawn
    fused = [tuple(map(float, p.split(","))) for p in series[0][1].split()]
    assert len(fused) == 3
    # x axis runs 10..70 s (last 60 s): 38 px left pad, 594 px plot width; y range ±2 (|1.7| rounded up to 2)
    assert fused[0][0] == pytest.approx(38 + 51 / 60 * 594, abs=0.05)
    assert fused[-1][0] == pytest.approx(38 + 594, abs=0.05)
    assert fused[0][1] == pytest.approx(10 + (1 - (0.5 + 2) / 4) * 188, abs=0.05)
    assert ">+2.0</text>" in svg and ">-2.0</text>" in svg


def test_y_range():
    assert plots.y_range([]) == 1.0
    assert plots.y_range([0.2, -0.9, None, float("nan")]) == 1.0
    assert plots.y_range([1.2, -0.3]) == 1.5
    assert plots.y_range([-2.6]) == 3.0


def test_probs_html_orders_by_probability():
    h = plots.probs_html({"sad": 0.2, "happy": 0.7, "neutral": 0.1}, "happy")
    assert re.findall(r'class="pname">(\w+)<', h) == ["happy", "sad", "neutral"]
    assert '<div class="top"><span class="pname">happy' in h


def test_summary_png(tmp_path):
    avg = plots.EdgeAverager()
    avg.add(W, W)
    rows = [plots.series_row(_R(t * 0.25, 0.1 * t, homo={"L": 0.1})) for t in range(20)]
    out = plots.summary_png(rows, avg, tmp_path / "s.png", title="test")
    data = open(out, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_prior_caveat_names_the_prior_edges():
    for s in ("L→A", "L→V", "V→A", "prior", "prior-free"):
        assert s in plots.PRIOR_CAVEAT
