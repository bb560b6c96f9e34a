"""The traced scoring path (`TracedScores`) agrees with the training forward to 1e-5 and with `DMD.infer`."""

import pytest
import torch
from presets import random_inputs, small
from test_inference import COMPARED, PRESENT, TOL, build, lengths_for

from dmd_model.compiled import TracedScores

PRESETS = ["mosi", "mosei", "live", "live-prior-free"]


@pytest.mark.parametrize("name", PRESETS)
def test_traced_agrees_with_forward_at_other_batch_sizes_with_absent_modalities(name):
    cfg = small(name)
    model = build(cfg, seed=11)
    traced = TracedScores(model)  # traced at batch 3
    for batch, kw in ((1, {}), (len(PRESENT), {"lengths": lengths_for(cfg), "present": PRESENT})):
        x = random_inputs(cfg, batch, seed=batch)
        with torch.inference_mode():
            ref = model(*x, **kw)
            fast = model.infer(*x, **kw)
        out = traced(*x, **kw)
        for k in COMPARED:
            err = (getattr(ref, k) - getattr(out, k)).abs().max().item()
            assert err <= TOL, f"{k}: max |forward - traced| = {err:.3g}"
            assert (getattr(fast, k) - getattr(out, k)).abs().max().item() <= TOL, k
        assert torch.equal(ref.present, out.present)


def test_traced_refuses_other_lengths_and_training_mode():
    cfg = small("live")
    model = build(cfg)
    traced = TracedScores(model)
    x = random_inputs(cfg, 2)
    with pytest.raises(ValueError, match="traced graph takes"):
        traced(x[0][:, :10], x[1], x[2])
    with pytest.raises(RuntimeError, match="eval"):
        TracedScores(model.train())


def test_cuda_graphs_refuse_a_cpu_model_with_the_reason():
    from dmd_model.compiled import GraphedScores
    from dmd_model.config import preset
    from dmd_model.model import DMD

    with pytest.raises(ValueError, match="needs a model on CUDA.*use TracedScores"):
        GraphedScores(DMD(preset("live")).eval())


@pytest.mark.slow
def test_inductor_agrees_with_forward_with_absent_modalities():
    """torch.compile of the scoring path (one graph per batch size, compiled on first call: slow); the live preset,
    the one it is a candidate for (docs/speed.md 3b: slower than the trace for mosi)."""
    from dmd_model.compiled import InductorScores

    cfg = small("live")
    model = build(cfg, seed=11)
    compiled = InductorScores(model)
    kw = {"lengths": lengths_for(cfg), "present": PRESENT}
    x = random_inputs(cfg, len(PRESENT), seed=5)
    with torch.inference_mode():
        ref = model(*x, **kw)
    out = compiled(*x, **kw)
    for k in COMPARED:
        err = (getattr(ref, k) - getattr(out, k)).abs().max().item()
        assert err <= TOL, f"{k}: max |forward - inductor| = {err:.3g}"
    assert torch.equal(ref.present, out.present)
    with pytest.raises(ValueError, match="graph takes"):
        compiled(x[0][:, :1], x[1], x[2])


@pytest.mark.parametrize("name", ["mosi", "live"])
def test_frozen_graph_computes_no_positional_sines(name):
    # the positional table is a constant of the frozen graph (a traced size once missed its cache on every call)
    traced = TracedScores(build(small(name), seed=13))
    kinds = {n.kind() for n in traced.graph.graph.nodes()}
    assert not kinds & {"aten::sin", "aten::cos"}


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")  # the int(T) that keys the table, meant constant
def test_traced_embedding_still_finds_padding_steps_per_call():
    # MOSI's positions depend on the data (a step whose channel 0 is exactly 0 gets position 0): the traced lookup
    # must follow the new input's zero steps, not the ones it was traced with
    from dmd_model.transformer import TransformerEncoder

    enc = TransformerEncoder(6, 2, layers=0, padding_from_zero=True).eval()
    traced_with, other = torch.ones(5, 2, 6), torch.ones(5, 2, 6)
    traced_with[1, 0, 0] = 0.0
    other[3, 1, 0] = other[0, 0, 0] = 0.0
    with torch.inference_mode():
        embed = torch.jit.trace(lambda x: enc._embed(x), (traced_with,), check_trace=False)
        got, want = embed(other), enc._embed(other)
    assert torch.equal(got, want)
    assert torch.equal(got[3, 1], enc.scale * other[3, 1])  # position 0 adds the zero vector
    assert not torch.equal(got[1, 0], enc.scale * other[1, 0])  # a real step, zero in the traced input only


@pytest.mark.parametrize("name", ["live", "mosi"])
def test_scoring_leaves_the_callers_inputs_as_they_were(name):
    # the scoring path masks and scales its normalised copy of each input in place; the caller's tensors (a live
    # window's buffers) must come back untouched, padded steps and absent modalities included
    cfg = small(name)
    model = build(cfg, seed=14)
    traced = TracedScores(model)
    kw = {"lengths": lengths_for(cfg), "present": PRESENT} if cfg.use_masks else {}
    x = random_inputs(cfg, len(PRESENT), seed=15)
    before = [t.clone() for t in x]
    model.infer(*x, **kw)
    traced(*x, **kw)
    for m in range(3):
        assert torch.equal(x[m], before[m]), m
