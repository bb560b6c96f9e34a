"""Checkpoints: ``model.safetensors`` (weights, never pickled) plus ``config.json`` (model config, feature spec,
training metadata). Loading rebuilds the model from the config and checks every tensor's shape, naming the
configuration dimension that disagrees.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import DMDConfig
from .feature_spec import MODALITIES, FeatureSpec
from .model import DMD

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match its config or the data."""


def save_checkpoint(model: DMD, out_dir: str | Path, spec: FeatureSpec | None = None, extra: dict | None = None) -> Path:
    """Write ``out_dir/model.safetensors`` and ``out_dir/config.json``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS), metadata={"format": "dmd-live", "config": CONFIG})
    doc = {"model": model.cfg.to_dict(), "feature_spec": spec.to_dict() if spec else None} | (extra or {})
    (out / CONFIG).write_text(json.dumps(doc, indent=2, sort_keys=True))
    return out


def read_config(ckpt_dir: str | Path) -> tuple[DMDConfig, FeatureSpec | None, dict]:
    path = Path(ckpt_dir) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{ckpt_dir}: no {CONFIG}")
    try:
        doc = json.loads(path.read_text())
        cfg = DMDConfig.from_dict(doc["model"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: invalid checkpoint config ({e})") from e
    spec = FeatureSpec.from_dict(doc["feature_spec"]) if doc.get("feature_spec") else None
    return cfg, spec, doc


def _explain(name: str, expected: tuple, got: tuple, cfg: DMDConfig) -> str:
    """Name the config dimension behind a shape mismatch."""
    parts = name.split(".")
    if parts[0] == "project" and len(expected) == 3:
        m = int(parts[1])
        for axis, what in ((1, f"input_dims[{MODALITIES[m]}]"), (0, "d_model"), (2, f"conv_kernels[{MODALITIES[m]}]")):
            if expected[axis] != got[axis]:
                return f"{what}: the weights have {got[axis]}, the config says {expected[axis]}"
    if parts[0].startswith("input_mean_") or parts[0].startswith("input_std_"):
        mod = parts[0].split("_", 2)[2]
        return f"input_dims[{mod}]: the weights have {got[0]}, the config says {expected[0]}"
    if parts[0] in ("homo_heads", "margin_proj") and cfg.temporal_pooling == "flatten":
        return (f"seq_lens[{MODALITIES[int(parts[1])]}] or d_model (flattened heads are length-dependent): "
                f"weights {got}, config {expected}")
    if parts[0] in ("homo_gd", "hetero_gd"):
        return f"{parts[0]}.embed_size, d_model or out_dim (num_classes + regression): weights {got}, config {expected}"
    if parts[-2:] == ["out", "weight"] or parts[-2:] == ["out", "bias"]:
        return f"out_dim (num_classes + regression): the weights have {got[0]}, the config says {expected[0]}"
    return f"d_model: weights {got}, config {expected}"


def load_checkpoint(ckpt_dir: str | Path, device: str | torch.device = "cpu") -> tuple[DMD, FeatureSpec | None, dict]:
    """Rebuild the model from ``config.json`` and load ``model.safetensors`` (shape-checked, strict), in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"{ckpt_dir}: checkpoint directory not found")
    cfg, spec, doc = read_config(ckpt_dir)
    wpath = ckpt_dir / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{ckpt_dir}: no {WEIGHTS}")
    try:
        state = load_file(str(wpath), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{wpath}: unreadable safetensors file ({e})") from e
    model = DMD(cfg)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{wpath}: tensors do not match the config (missing {missing[:5]}, unexpected {unexpected[:5]})")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{wpath}: tensor {k!r} does not fit: {_explain(k, tuple(own[k].shape), tuple(v.shape), cfg)}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), spec, doc
