"""CUDA checks; skipped with the reason on machines without a GPU."""

import pytest
import torch

from dmd_model.config import preset
from dmd_model.model import DMD

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")]


def test_live_forward_on_cuda_matches_cpu():
    cfg = preset("live")
    torch.manual_seed(0)
    model = DMD(cfg).eval()
    x = [torch.randn(4, cfg.seq_lens[m], cfg.input_dims[m]) for m in range(3)]
    present = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.bool)
    lengths = torch.tensor([[32, 32, 64], [1, 20, 30], [10, 1, 64], [5, 32, 1]])
    with torch.no_grad():
        cpu = model(*x, lengths=lengths, present=present)
        gpu = model.cuda()(*[t.cuda() for t in x], lengths=lengths.cuda(), present=present.cuda())
    torch.testing.assert_close(gpu.prediction.cpu(), cpu.prediction, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu.homo_edges.cpu(), cpu.homo_edges, atol=1e-5, rtol=1e-4)


def test_training_step_on_cuda():
    from dmd_model.losses import Targets, dmd_objective

    cfg = preset("mosi").replace(seq_lens=(12, 10, 14))
    model = DMD(cfg).cuda()
    x = [torch.randn(5, cfg.seq_lens[m], cfg.input_dims[m], device="cuda") for m in range(3)]
    terms = dmd_objective(model, model(*x), Targets(torch.rand(5, device="cuda")))
    terms.total.backward()
    assert torch.isfinite(terms.total) and model.fusion_head.out.weight.grad is not None


def test_scoring_paths_on_cuda_match_the_training_forward():
    from dmd_model.compiled import TracedScores

    cfg = preset("live")
    torch.manual_seed(0)
    model = DMD(cfg).eval().cuda()
    x = [torch.randn(4, cfg.seq_lens[m], cfg.input_dims[m], device="cuda") for m in range(3)]
    kw = {"lengths": torch.tensor([[32, 32, 64], [1, 20, 30], [10, 1, 64], [5, 32, 1]], device="cuda"),
          "present": torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.bool, device="cuda")}
    with torch.inference_mode():
        ref = model(*x, **kw)
    for out in (model.infer(*x, **kw), TracedScores(model)(*x, **kw)):
        for k in ("prediction", "homo_logits", "hetero_logits", "homo_edges", "hetero_edges"):
            torch.testing.assert_close(getattr(out, k), getattr(ref, k), atol=1e-5, rtol=1e-4)


def test_cuda_graphs_match_the_training_forward_and_replay_new_inputs():
    from dmd_model.compiled import GraphedScores

    cfg = preset("live")
    torch.manual_seed(0)
    model = DMD(cfg).eval().cuda()
    graphed = GraphedScores(model)
    kw = {"lengths": torch.tensor([[32, 32, 64], [1, 20, 30], [10, 1, 64], [5, 32, 1]], device="cuda"),
          "present": torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=torch.bool, device="cuda")}
    for seed in (1, 2):  # the second call replays the captured graph on new inputs
        torch.manual_seed(seed)
        x = [torch.randn(4, cfg.seq_lens[m], cfg.input_dims[m], device="cuda") for m in range(3)]
        with torch.inference_mode():
            ref = model(*x, **kw)
        out = graphed(*x, **kw)
        for k in ("prediction", "homo_logits", "hetero_logits", "homo_edges", "hetero_edges"):
            torch.testing.assert_close(getattr(out, k), getattr(ref, k), atol=1e-5, rtol=1e-4)
