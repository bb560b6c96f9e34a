"""Loss terms and metrics against the spec's worked examples (values from the reference functions)."""

import pytest
import torch

from dmd_model.config import GDConfig, HETERO_PRIOR_MASK, HOMO_PRIOR_MASK, softmax_prior
from dmd_model.gd_unit import GDUnit
from dmd_model.losses import margin_loss
from dmd_model.metrics import classification_metrics, regression_metrics


def test_priors_match_the_reference():
    homo = softmax_prior(HOMO_PRIOR_MASK)
    hetero = softmax_prior(HETERO_PRIOR_MASK)
    assert [round(v, 6) for v in homo] == [0.008834, 0.008834, 0.482332, 0.008834, 0.482332, 0.008834]
    assert [round(v, 6) for v in hetero] == [0.005995, 0.005995, 0.327338, 0.005995, 0.327338, 0.327338]


def gd_losses(prior_mask, use_repr, reprs):
    cfg = GDConfig(embed_size=4, prior=softmax_prior(prior_mask), use_repr_loss=use_repr)
    unit = GDUnit(1, reprs.shape[-1], cfg)
    logits = torch.tensor([[[0.5], [-0.2], [0.1]]])  # (B=1, L V A, 1)
    edges = torch.full((1, 6), 1 / 6)
    return unit.losses(edges, logits, reprs)


def test_homo_gd_worked_example():
    out = gd_losses(HOMO_PRIOR_MASK, False, torch.zeros(1, 3, 2))
    assert float(out.logit) == pytest.approx(1.012249, abs=1e-6)
    assert float(out.reg) == pytest.approx(2.98933, abs=1e-5)


def test_hetero_gd_worked_example():
    reprs = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # q_L, q_V, q_A
    out = gd_losses(HETERO_PRIOR_MASK, True, reprs)
    assert float(out.logit) == pytest.approx(0.933333, abs=1e-6)
    assert float(out.reg) == pytest.approx(1.548915, abs=1e-6)
    assert float(out.repr) == pytest.approx(9.428091, abs=1e-5)


def test_logit_loss_detaches_only_the_teacher():
    cfg = GDConfig(embed_size=4, prior=softmax_prior(HOMO_PRIOR_MASK))
    unit = GDUnit(1, 2, cfg)
    logits = torch.tensor([[[0.5], [-0.2], [0.1]]], requires_grad=True)
    edges = torch.full((1, 6), 1 / 6, requires_grad=True)
    unit.losses(edges, logits, torch.zeros(1, 3, 2)).logit.backward()
    # L is the student of V→L and A→L: d/dl_L = (1/6+pi0)*sign(0.7) + (1/6+pi1)*sign(0.4)
    assert float(logits.grad[0, 0, 0]) == pytest.approx(2 * (1 / 6 + 0.008834), abs=1e-5)
    assert edges.grad is not None and edges.grad.abs().sum() > 0  # edges are trained by this loss


def test_margin_loss_test_vector():
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    y = torch.tensor([1.0, 1.0, -1.0, -1.0])
    assert float(margin_loss(u, y, y)) == pytest.approx(0.7482606, abs=1e-6)


def test_margin_loss_without_positive_negative_pairs_is_zero():
    u = torch.randn(3, 4)
    assert float(margin_loss(u, torch.tensor([1.0, 1.0, 1.0]), torch.ones(3))) == 0.0


def test_mmsa_metrics_worked_example():
    truth = [-2.6, -1.2, 0.0, 0.0, 0.4, 1.5, 2.8, 3.0]
    pred = [-3.4, -0.5, 0.3, -0.2, -0.1, 2.5, 1.6, 0.2]
    m = regression_metrics(pred, truth)
    assert m == {
        "Has0_acc_2": 0.75, "Has0_F1_score": 0.7667, "Non0_acc_2": 0.8333, "Non0_F1_score": 0.8381,
        "Mult_acc_5": 0.75, "Mult_acc_7": 0.625, "MAE": 0.9375, "Corr": 0.7827,
    }


def test_classification_metrics_macro_f1():
    logits = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 2.0, 0], [0, 0, 2.0]]).numpy()
    truth = [0, 1, 2, -1]  # the last row is unlabelled
    m = classification_metrics(logits, truth, 3)
    # class 0: F1 1; class 1: P 0.5 R 1 -> 2/3; class 2: 0 -> macro 5/9
    assert m == {"acc": 0.6667, "macro_f1": 0.5556, "n": 3}


def test_split_word_runs_fits_the_token_budget():
    from dmd_model.text_encoder import split_word_runs

    # budget 6 - 2 specials = 4 tokens per run; a 5-token word gets a run alone
    assert split_word_runs([2, 2, 1, 3, 5, 1], 6) == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert split_word_runs([], 6) == [(0, 0)]
