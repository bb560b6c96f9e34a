"""The scoring path `DMD.infer` agrees with the training forward `DMD.forward` (the reference) to 1e-5."""

import pytest
import torch
from presets import random_inputs, small

from dmd_model.config import preset
from dmd_model.model import DMD

PRESETS = ["mosi", "mosei", "live", "live-prior-free"]
COMPARED = ("prediction", "homo_logits", "hetero_logits", "shared_fusion_logits", "homo_edges", "hetero_edges",
            "homo_repr", "hetero_repr")
TOL = 1e-5

# samples 0..5: all present, each single modality absent, two absent, all absent; lengths include 0 and short ones
PRESENT = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=torch.bool)


def lengths_for(cfg):
    full = list(cfg.seq_lens)
    return torch.tensor([full, [0, 3, full[2]], [2, 0, 5], [full[0], 1, 0], [0, 0, 1], [0, 0, 0]])


def build(cfg, seed=0):
    torch.manual_seed(seed)
    model = DMD(cfg).eval()
    # non-trivial input statistics, so the normalisation is exercised too
    for name, dim in zip(("language", "visual", "acoustic"), cfg.input_dims):
        getattr(model, f"input_mean_{name}").uniform_(-0.5, 0.5)
        getattr(model, f"input_std_{name}").uniform_(0.5, 2.0)
    # biases start at zero and LayerNorms at the identity: perturb them, so that folding a LayerNorm's affine or a
    # bias into another weight (the scoring path does both) is exercised, not multiplied by 1 or added as 0
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
        for pname, param in model.named_parameters():
            if pname.endswith("bias") and "norm" not in pname:  # LayerNorms done above
                param.uniform_(-0.1, 0.1)
    return model


def assert_agree(model, *args, **kw):
    with torch.inference_mode():
        ref = model(*args, **kw)
        fast = model.infer(*args, **kw)
    for name in COMPARED:
        a, b = getattr(ref, name), getattr(fast, name)
        assert a.shape == b.shape, name
        err = (a - b).abs().max().item()
        assert err <= TOL, f"{name}: max |forward - infer| = {err:.3g}"
    assert torch.equal(ref.present, fast.present)
    for name in ("homo_edge_matrix", "hetero_edge_matrix"):
        assert (getattr(ref, name) - getattr(fast, name)).abs().max().item() <= TOL, name
    return ref, fast


@pytest.mark.parametrize("name", PRESETS)
@pytest.mark.parametrize("batch", [1, 6])
def test_infer_agrees_with_forward_all_present(name, batch):
    cfg = small(name)
    model = build(cfg)
    assert_agree(model, *random_inputs(cfg, batch, seed=batch))


@pytest.mark.parametrize("name", PRESETS)
def test_infer_agrees_with_forward_with_absent_modalities_and_padding(name):
    cfg = small(name)
    model = build(cfg, seed=1)
    x = random_inputs(cfg, len(PRESENT), seed=3)
    ref, fast = assert_agree(model, *x, lengths=lengths_for(cfg), present=PRESENT)
    if cfg.use_masks:
        # the comparison covers the masked cases: edges touching an absent modality are exactly 0 in both
        assert (fast.homo_edges[4] == 0).all() and (fast.hetero_edges[5] == 0).all()
        assert (fast.homo_edges[0] > 0).all()


@pytest.mark.parametrize("name", ["mosi", "mosei"])
def test_infer_agrees_with_forward_on_zero_padded_faithful_inputs(name):
    # MMSA pads with zero steps; MulT's positional embedding numbers only non-zero steps, in both paths
    cfg = small(name)
    model = build(cfg, seed=2)
    x = random_inputs(cfg, 3, seed=4)
    for m in range(3):
        x[m][0, -4:] = 0.0
        x[m][1, :2] = 0.0
    assert_agree(model, *x)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_infer_agrees_at_full_preset_sizes(name):
    cfg = preset(name)
    model = build(cfg, seed=5)
    kw = {"lengths": lengths_for(cfg), "present": PRESENT} if cfg.use_masks else {}
    assert_agree(model, *random_inputs(cfg, len(PRESENT), seed=6), **kw)


def test_infer_agrees_with_causal_masks_read_at_the_last_valid_step():
    # not a preset: causal attention with last-valid readout takes the path that gathers the future mask's rows
    cfg = small("live", attn_mask=True)
    model = build(cfg, seed=7)
    x = random_inputs(cfg, len(PRESENT), seed=8)
    assert_agree(model, *x, lengths=lengths_for(cfg), present=PRESENT)


def test_infer_refuses_training_mode_and_bad_shapes():
    cfg = small("live")
    model = DMD(cfg)
    x = random_inputs(cfg, 2)
    with pytest.raises(RuntimeError, match="eval"):
        model.infer(*x)
    model.eval()
    bad = [x[0], x[1][:, :, :10], x[2]]
    with pytest.raises(ValueError, match="visual input has shape"):
        model.infer(*bad)


@pytest.mark.parametrize("name", ["mosi", "live"])
@pytest.mark.parametrize("min_head_dim", [0, 1_000])
def test_infer_agrees_with_either_attention_kernel(name, min_head_dim, monkeypatch):
    # MOSI's head dim 5 takes the written-out attention and live's 8/16 SDPA; force each preset through the other
    from dmd_model import inference

    monkeypatch.setattr(inference, "SDPA_MIN_HEAD_DIM", min_head_dim)
    cfg = small(name)
    model = build(cfg, seed=9)
    kw = {"lengths": lengths_for(cfg), "present": PRESENT} if cfg.use_masks else {}
    assert_agree(model, *random_inputs(cfg, len(PRESENT), seed=10), **kw)


def test_cross_modal_keys_values_match_each_layers_own_projection():
    # the folded, shared projection gives every cross-modal layer the keys/values its own LayerNorm + in-projection do
    from dmd_model.inference import _cross_keys_values, _keys_values, _ln

    cfg = small("live")
    model = build(cfg, seed=12)
    private = [torch.randn(2, cfg.seq_lens[m], cfg.d_model) for m in range(3)]
    with torch.inference_mode():
        got = _cross_keys_values(model, private)
        assert sorted(got) == sorted(model.cross_modal.keys())
        for key, enc in model.cross_modal.items():
            src = enc._embed(private[int(key.split("<-")[1])].transpose(0, 1)).transpose(0, 1)
            assert len(got[key]) == len(enc.layers)
            for keys, layer in zip(got[key], enc.layers):
                k, v = keys.keys_values()
                k_ref, v_ref = _keys_values(layer.attn, _ln(layer.norm_attn, src))
                assert (k - k_ref).abs().max().item() <= 1e-5 and (v - v_ref).abs().max().item() <= 1e-5


@pytest.mark.parametrize("min_head_dim", [None, 1_000], ids=["default-kernels", "all-written-out"])
@pytest.mark.parametrize("name", ["mosi", "live"])
def test_infer_agrees_when_causal_attention_skips_the_masked_block(name, min_head_dim, monkeypatch):
    # under the future mask the written-out attention runs its first queries over the first keys only; the small
    # presets are shorter than the step count that turns this on, so lower it. MOSI's cross-modal pairs have
    # different lengths here (the |T_k - T_q| offset of the mask); live adds padding and absent modalities. With the
    # default kernels the split also takes the head dimensions SDPA would otherwise run (MOSI's memory's 10)
    from dmd_model import inference

    monkeypatch.setattr(inference, "CAUSAL_SPLIT_MIN_STEPS", 2)
    if min_head_dim is not None:
        monkeypatch.setattr(inference, "SDPA_MIN_HEAD_DIM", min_head_dim)
    cfg = small(name, attn_mask=True)
    model = build(cfg, seed=11)
    kw = {"lengths": lengths_for(cfg), "present": PRESENT} if cfg.use_masks else {}
    split_head_dims = []
    attend = inference._attend

    def spy(*a):
        if len(a) > 5 and a[5]:
            split_head_dims.append(a[1].shape[-1])
        return attend(*a)

    monkeypatch.setattr(inference, "_attend", spy)
    assert_agree(model, *random_inputs(cfg, len(PRESENT), seed=12), **kw)
    assert split_head_dims  # the split ran
    if min_head_dim is None:  # ... also where SDPA would run without it
        assert max(split_head_dims) >= inference.SDPA_MIN_HEAD_DIM
