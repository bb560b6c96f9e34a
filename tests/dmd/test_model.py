"""Shapes, gradients, edges and masks of the DMD network."""

import pytest
import torch
from presets import random_inputs, small

from dmd_model.config import EMOTIONS7, preset
from dmd_model.losses import Targets, dmd_objective
from dmd_model.model import DMD

PRESETS = ["mosi", "mosei", "live", "live-prior-free"]


def targets_for(cfg, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    valence = torch.rand(batch, generator=g) * 2 - 1
    emotion = None
    if cfg.num_classes:
        emotion = torch.nn.functional.one_hot(torch.randint(0, cfg.num_classes, (batch,), generator=g), cfg.num_classes).float()
    return Targets(valence, emotion)


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("batch", [1, 16])
def test_shapes(name, batch):
    cfg = preset(name)  # full paper sizes: 50 steps, 768-d text for MOSI/MOSEI
    torch.manual_seed(0)
    model = DMD(cfg).eval()
    with torch.no_grad():
        out = model(*random_inputs(cfg, batch))
    k = cfg.out_dim
    assert k == (1 if name in ("mosi", "mosei") else 8)
    assert out.prediction.shape == (batch, k)
    assert out.homo_logits.shape == (batch, 3, k)
    assert out.hetero_logits.shape == (batch, 3, k)
    assert out.shared_fusion_logits.shape == (batch, k)
    assert out.homo_repr.shape == (batch, 3, cfg.d_model)
    assert out.hetero_repr.shape == (batch, 3, 2 * cfg.d_model)
    assert out.homo_edge_matrix.shape == (batch, 3, 3)
    assert out.hetero_edge_matrix.shape == (batch, 3, 3)
    assert out.margin_embeddings.shape == (batch, 3, cfg.d_model)
    for m in range(3):
        t_proj = cfg.projected_len(m, cfg.seq_lens[m])
        assert out.shared[m].shape == out.private[m].shape == out.reconstructed[m].shape == (batch, cfg.d_model, t_proj)


def test_parameter_counts_match_the_reference():
    # spec §2: reference counts include the dead proj_cosine layers (3 x (T'd*d + d)) and exclude the GD kernels
    mosi = DMD(preset("mosi"))
    gd = sum(p.numel() for p in mosi.homo_gd.parameters()) + sum(p.numel() for p in mosi.hetero_gd.parameters())
    assert gd == (3649 - 1) + (3425 - 1)  # minus the edge-score bias, which cancels in the softmax
    assert mosi.num_parameters() - gd + 3 * (46 * 50 * 50 + 50) == 4_743_658
    mosei = DMD(preset("mosei"))
    gd = sum(p.numel() for p in mosei.homo_gd.parameters()) + sum(p.numel() for p in mosei.hetero_gd.parameters())
    assert gd == (2369 - 1) + (2145 - 1)
    assert mosei.num_parameters() - gd + (46 + 48 + 50) * 30 * 30 + 3 * 30 == 1_792_778


@pytest.mark.parametrize("name", PRESETS)
def test_every_parameter_gets_a_gradient(name):
    cfg = small(name)
    torch.manual_seed(0)
    model = DMD(cfg).train()
    batch = 7  # odd: an L1 loss can leave an output bias with an exactly zero gradient at an even batch (spec §9)
    out = model(*random_inputs(cfg, batch))
    terms = dmd_objective(model, out, targets_for(cfg, batch))
    for k, v in terms.as_floats().items():
        assert torch.isfinite(torch.tensor(v)), k
    terms.total.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)]
    assert no_grad == []


@pytest.mark.parametrize("name", ["mosi", "live"])
def test_loss_terms_are_finite_and_all_logged(name):
    cfg = small(name)
    torch.manual_seed(1)
    model = DMD(cfg)
    out = model(*random_inputs(cfg, 8))
    f = dmd_objective(model, out, targets_for(cfg, 8)).as_floats()
    expected = {"total", "task", "task_valence", "task_emotion", "reconstruction", "cycle", "orthogonality", "margin",
                "homo_gd_logit", "homo_gd_reg", "homo_gd_repr", "hetero_gd_logit", "hetero_gd_reg",
                "hetero_feature_decorrelation"}
    assert set(f) == expected
    assert all(map(lambda v: v == v and abs(v) < float("inf"), f.values()))
    assert f["task"] > 0 and f["reconstruction"] > 0 and f["homo_gd_reg"] > 0
    # at initialisation all edges are ~1/6, so the homo regulariser is close to the spec's 2.989
    assert f["homo_gd_reg"] == pytest.approx(2.989, abs=0.05)
    if name == "live":
        assert f["task_emotion"] > 0


@pytest.mark.parametrize("name", ["mosi", "live"])
def test_edges_zero_diagonal_normalised_and_input_dependent(name):
    cfg = small(name)
    torch.manual_seed(0)
    model = DMD(cfg).eval()
    with torch.no_grad():
        a = model(*random_inputs(cfg, 4, seed=0))
        b = model(*random_inputs(cfg, 4, seed=5))
    for W in (a.homo_edge_matrix, a.hetero_edge_matrix):
        assert W.shape == (4, 3, 3)
        assert torch.all(torch.diagonal(W, dim1=1, dim2=2) == 0)
        # one softmax over all six edges: the off-diagonal entries sum to 1 per sample (spec §3)
        torch.testing.assert_close(W.sum((1, 2)), torch.ones(4))
        assert torch.all(W >= 0)
    assert not torch.allclose(a.homo_edges, b.homo_edges)
    assert not torch.allclose(a.hetero_edges, b.hetero_edges)


def test_edge_matrix_layout_teacher_rows_student_columns():
    from dmd_model.gd_unit import EDGE_NAMES, edges_to_matrix

    W = edges_to_matrix(torch.arange(1.0, 7.0))
    order = "LVA"
    for x, name in enumerate(EDGE_NAMES):
        teacher, student = name.split("→")
        assert W[order.index(teacher), order.index(student)] == x + 1


def test_live_presence_mask_gives_defined_outputs():
    cfg = preset("live")
    torch.manual_seed(0)
    model = DMD(cfg).eval()
    x = random_inputs(cfg, 5)
    present = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.bool)
    lengths = torch.tensor([[5, 32, 64], [0, 3, 10], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    # NaNs in absent modalities and in padding must not leak (an absent face can arrive as garbage)
    x[1][2] = float("nan")
    x[1][1, 3:] = float("nan")
    with torch.no_grad():
        out = model(*x, lengths=lengths, present=present)
    assert torch.isfinite(out.prediction).all()
    assert torch.isfinite(out.homo_edges).all() and torch.isfinite(out.hetero_edges).all()
    # edges touching an absent modality are exactly 0; with two or more present the rest sum to 1
    assert torch.all(out.homo_edge_matrix[1, 0, :] == 0) and torch.all(out.homo_edge_matrix[1, :, 0] == 0)
    torch.testing.assert_close(out.homo_edges[:2].sum(1), torch.ones(2))
    assert torch.all(out.homo_edges[2:] == 0)
    # an absent modality's content cannot change the output
    y = random_inputs(cfg, 5, seed=9)
    y[0][2] = x[0][2]  # sample 2 keeps its language (present); its visual and acoustic content changes
    with torch.no_grad():
        out2 = model(*y, lengths=lengths, present=present)
    torch.testing.assert_close(out.prediction[2], out2.prediction[2])
    assert not torch.allclose(out.prediction[0], out2.prediction[0])


def test_live_checkpoint_is_not_tied_to_sequence_length():
    cfg = preset("live")
    model = DMD(cfg).eval()
    with torch.no_grad():
        for lens in [(1, 1, 1), (7, 50, 123)]:
            x = [torch.randn(2, lens[m], cfg.input_dims[m]) for m in range(3)]
            assert torch.isfinite(model(*x).prediction).all()


def test_padding_beyond_length_is_ignored_in_live():
    cfg = preset("live")
    torch.manual_seed(0)
    model = DMD(cfg).eval()
    x = random_inputs(cfg, 2)
    lengths = torch.tensor([[10, 12, 20], [10, 12, 20]])
    y = [t.clone() for t in x]
    for m, n in enumerate((10, 12, 20)):
        y[m][:, n:] = torch.randn_like(y[m][:, n:])
    with torch.no_grad():
        a = model(*x, lengths=lengths).prediction
        b = model(*y, lengths=lengths).prediction
    torch.testing.assert_close(a, b)


def test_wrong_input_dim_is_a_clear_error():
    cfg = preset("live")
    model = DMD(cfg)
    x = random_inputs(cfg, 2)
    x[1] = torch.randn(2, 32, 35)
    with pytest.raises(ValueError, match=r"visual input has shape \(2, 32, 35\); expected \(B=2, T, 321\)"):
        model(*x)


def test_live_emotions_and_prior_free_variant():
    live, free = preset("live"), preset("live-prior-free")
    assert live.emotions == EMOTIONS7 == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert max(live.homo_gd.prior) == pytest.approx(0.482332, abs=1e-6)
    assert max(live.hetero_gd.prior) == pytest.approx(0.327338, abs=1e-6)
    assert free.homo_gd.prior == (0.0,) * 6 and free.homo_gd.reg_weight == 0.0
    assert free.hetero_gd.prior == (0.0,) * 6 and free.hetero_gd.reg_weight == 0.0
    model = DMD(free)
    out = model(*random_inputs(free, 3))
    f = dmd_objective(model, out, targets_for(free, 3)).as_floats()
    assert f["homo_gd_reg"] == 0.0 and f["hetero_gd_reg"] == 0.0


def test_live_reads_blendshape_scores_as_log_odds_and_stats_follow():
    import numpy as np

    from dmd_model.config import SCORE_EPS, DMDConfig
    from dmd_model.data import SplitArrays
    from dmd_model.trainer import compute_input_stats

    cfg = preset("live")
    assert cfg.score_dims == (0, 52, 0)
    model = DMD(cfg)
    x = torch.rand(2, 5, 321)
    x[0, 0, 0], x[0, 0, 1] = 0.0, 1.0  # exact 0 and 1 are clipped, never infinite
    z = model.score_logits(1, x)
    s = x[..., :52].clamp(SCORE_EPS, 1 - SCORE_EPS)
    assert torch.allclose(z[..., :52], torch.log(s / (1 - s)), atol=1e-5)
    assert torch.equal(z[..., 52:], x[..., 52:])  # geometry is left as measured
    assert z[0, 0, 0].item() == pytest.approx(-9.2102, abs=1e-3) and z[0, 0, 1].item() == pytest.approx(9.2102, abs=1e-3)
    lang = torch.rand(2, 5, 384)
    assert model.score_logits(0, lang) is lang  # no scores in the other modalities

    # the stored statistics are those of the log-odds, i.e. of what forward() standardises
    rng = np.random.default_rng(0)
    n, t = 6, 4
    vis = rng.random((n, t, 321)).astype(np.float32)
    split = SplitArrays(rng.random((n, t, 384)).astype(np.float32), vis, rng.random((n, t, 25)).astype(np.float32),
                        np.full((n, 3), t), np.ones((n, 3), bool), np.zeros(n, np.float32), np.zeros((n, 7), np.float32),
                        [str(i) for i in range(n)])
    compute_input_stats(model, split)
    rows = vis.reshape(-1, 321).astype(np.float64)
    s = np.clip(rows[:, :52], SCORE_EPS, 1 - SCORE_EPS)
    want = np.log(s / (1 - s)).mean(0)
    assert np.allclose(model.input_mean_visual[:52].numpy(), want, atol=1e-4)
    assert np.allclose(model.input_mean_visual[52:].numpy(), rows[:, 52:].mean(0), atol=1e-5)

    # checkpoints written before the field existed read their inputs as they are; bad values are refused
    d = cfg.to_dict()
    del d["score_dims"]
    assert DMDConfig.from_dict(d).score_dims == (0, 0, 0)
    with pytest.raises(ValueError, match="score_dims"):
        cfg.replace(score_dims=(0, 322, 0))
