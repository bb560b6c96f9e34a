"""The authors' DMD network (mdswyz/DMD), built from a local copy of their repository, with our weights copied in.

The reference code stays outside this project: `load_reference_class` imports ``trains/singleTask/model/dmd.py``
from the given directory at run time, under a private package name so that neither its trainer modules (imported
by ``trains/__init__.py``) nor any module of ours is touched. Its text model is not built (``use_bert=False``): both
networks take 768-d precomputed text features, as our ``mosi`` preset does.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

PACKAGE = "_dmd_reference"
MODALITY = ("l", "v", "a")  # our index 0, 1, 2


def load_reference_class(root: str | Path):
    """The reference `DMD` class from ``root`` (a checkout of mdswyz/DMD); FileNotFoundError if it is not there."""
    root = Path(root)
    trains = root / "trains"
    if not (trains / "singleTask" / "model" / "dmd.py").is_file():
        raise FileNotFoundError(f"no mdswyz/DMD checkout at {root} (expected trains/singleTask/model/dmd.py)")
    # stub packages: the real __init__ files would import the trainers (and their dependencies)
    for name, path in ((PACKAGE, trains), (f"{PACKAGE}.singleTask", trains / "singleTask"),
                       (f"{PACKAGE}.singleTask.model", trains / "singleTask" / "model"),
                       (f"{PACKAGE}.subNets", trains / "subNets")):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
    return importlib.import_module(f"{PACKAGE}.singleTask.model.dmd").DMD


def reference_args(cfg):
    """The reference's argument namespace for our faithful config (MOSI or MOSEI aligned, 50 steps)."""
    if cfg.seq_lens != (50, 50, 50) or cfg.conv_padding != "valid" or cfg.temporal_pooling != "flatten":
        raise ValueError("the reference network exists only for the faithful presets at 50 aligned steps")
    mosi = cfg.input_dims == (768, 20, 5)
    return types.SimpleNamespace(
        use_bert=False, use_finetune=False, transformers="bert", pretrained="bert-base-uncased",
        dataset_name="mosi" if mosi else "mosei", need_data_aligned=True,
        feature_dims=[cfg.input_dims[0], cfg.input_dims[2], cfg.input_dims[1]],  # theirs: text, audio, video
        dst_feature_dim_nheads=[cfg.d_model, cfg.num_heads], nlevels=cfg.num_layers,
        attn_dropout=cfg.attn_dropout, attn_dropout_a=cfg.attn_dropout_a, attn_dropout_v=cfg.attn_dropout_v,
        relu_dropout=cfg.relu_dropout, embed_dropout=cfg.embed_dropout, res_dropout=cfg.res_dropout,
        output_dropout=cfg.output_dropout, text_dropout=cfg.text_dropout, attn_mask=cfg.attn_mask,
        conv1d_kernel_size_l=cfg.conv_kernels[0], conv1d_kernel_size_v=cfg.conv_kernels[1],
        conv1d_kernel_size_a=cfg.conv_kernels[2],
    )


def _encoder_names(ours: str, theirs: str, layers: int) -> dict[str, str]:
    out = {f"{ours}.norm_out.{p}": f"{theirs}.layer_norm.{p}" for p in ("weight", "bias")}
    for i in range(layers):
        a, b = f"{ours}.layers.{i}", f"{theirs}.layers.{i}"
        out[f"{a}.attn.in_proj_weight"] = f"{b}.self_attn.in_proj_weight"
        out[f"{a}.attn.in_proj_bias"] = f"{b}.self_attn.in_proj_bias"
        for p in ("weight", "bias"):
            out[f"{a}.attn.out_proj.{p}"] = f"{b}.self_attn.out_proj.{p}"
            out[f"{a}.norm_attn.{p}"] = f"{b}.layer_norms.0.{p}"
            out[f"{a}.norm_ff.{p}"] = f"{b}.layer_norms.1.{p}"
            out[f"{a}.fc1.{p}"] = f"{b}.fc1.{p}"
            out[f"{a}.fc2.{p}"] = f"{b}.fc2.{p}"
    return out


def _head_names(ours: str, proj1: str, proj2: str, out: str) -> dict[str, str]:
    return {f"{ours}.{a}.{p}": f"{b}.{p}" for a, b in (("proj1", proj1), ("proj2", proj2), ("out", out))
            for p in ("weight", "bias")}


def name_map(model) -> dict[str, str]:
    """Our parameter name -> the reference's, for every parameter the reference network has (the GD-Units are not
    part of it: the reference computes edges in a separate module, during training only)."""
    cfg = model.cfg
    names: dict[str, str] = {}
    for m, x in enumerate(MODALITY):
        names[f"project.{m}.weight"] = f"proj_{x}.weight"
        names[f"private_encoders.{m}.weight"] = f"encoder_s_{x}.weight"
        names[f"decoders.{m}.weight"] = f"decoder_{x}.weight"
        names[f"margin_proj.{m}.weight"] = f"align_c_{x}.weight"
        names[f"margin_proj.{m}.bias"] = f"align_c_{x}.bias"
        names.update(_head_names(f"homo_heads.{m}", f"proj1_{x}_low", f"proj2_{x}_low", f"out_layer_{x}_low"))
        names.update(_head_names(f"hetero_heads.{m}", f"proj1_{x}_high", f"proj2_{x}_high", f"out_layer_{x}_high"))
        names.update(_encoder_names(f"shared_self_attention.{m}", f"self_attentions_c_{x}", cfg.num_layers))
        mem = cfg.mem_layers if cfg.mem_layers is not None else max(cfg.num_layers, 3)
        names.update(_encoder_names(f"memory.{m}", f"trans_{x}_mem", mem))
        for p in ("weight", "bias"):
            names[f"fusion_gates.{m}.{p}"] = f"weight_{x}.{p}"
    for t, sources in model.cross_pairs.items():
        for s in sources:
            names.update(_encoder_names(f"cross_modal.{t}<-{s}", f"trans_{MODALITY[t]}_with_{MODALITY[s]}", cfg.num_layers))
    names["shared_encoder.weight"] = "encoder_c.weight"
    names.update(_head_names("shared_fusion_head", "proj1_c", "proj2_c", "out_layer_c"))
    names.update(_head_names("fusion_head", "proj1", "proj2", "out_layer"))
    for p in ("weight", "bias"):
        names[f"fusion_gates.3.{p}"] = f"weight_c.{p}"
    return names


def build_reference(model, root: str | Path):
    """The reference network for `model`'s config, in eval mode, holding `model`'s weights (copied by name).

    Every reference parameter is filled except the dead ``proj_cosine_*`` layers (built but never used in its loss);
    a shape mismatch or a missing name is an error, so a silent partial copy cannot happen.
    """
    import torch

    ref = load_reference_class(root)(reference_args(model.cfg))
    ours = model.state_dict()
    theirs = ref.state_dict()
    filled = set()
    with torch.no_grad():
        for a, b in name_map(model).items():
            if theirs[b].shape != ours[a].shape:
                raise ValueError(f"shape of {a} {tuple(ours[a].shape)} != reference {b} {tuple(theirs[b].shape)}")
            theirs[b].copy_(ours[a])
            filled.add(b)
    left = {k for k, v in ref.named_parameters() if k not in filled and not k.startswith("proj_cosine_")}
    if left:
        raise ValueError(f"reference parameters without a counterpart: {sorted(left)}")
    return ref.to(model.device).eval()


def reference_outputs(ref, language, visual, acoustic):
    """The reference's outputs in our layout: prediction, homo/hetero logits (B, 3, 1), shared fusion logits."""
    import torch

    res = ref(language, acoustic, visual)  # theirs: text, audio, video
    return {
        "prediction": res["output_logit"],
        "homo_logits": torch.stack([res[f"logits_{x}_homo"] for x in MODALITY], 1),
        "hetero_logits": torch.stack([res[f"logits_{x}_hetero"] for x in MODALITY], 1),
        "shared_fusion_logits": res["logits_c"],
    }
