"""Checkpoints: ``model.safetensors`` (weights, never pickled) plus ``config.json`` (model config, feature spec,
training metadata). Loading rebuilds the model from the config and checks every tensor's shape, naming the
configuration dimension that disagrees.

A checkpoint may come from a stranger (the page's Settings tab takes uploads), so nothing is built before it has
been checked: the files' sizes are capped, the config's sizes are capped (`SIZE_LIMITS`), and every tensor's shape
is compared, from the safetensors header alone, with the shapes the config implies (the model built on PyTorch's
``meta`` device, which allocates nothing). Only then are the weights read and the model built. Without this, a
7.8 kB config with ``d_model: 1024`` made the loader allocate 3.3 GB before the shape check refused it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .checkpoint_config import (  # noqa: F401  (read_config and the limits: imported from here by callers)
    CONFIG, MAX_CONFIG_BYTES, MAX_HEADER_BYTES, MAX_WEIGHTS_BYTES, SIZE_LIMITS, WEIGHTS, CheckpointError, read_config,
)
from .config import DMDConfig
from .feature_spec import MODALITIES, FeatureSpec
from .model import DMD


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


def read_header(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a safetensors file's header, reading nothing else."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"{path}: {size / 1e6:.0f} MB, more than a DMD checkpoint can be "
                              f"({MAX_WEIGHTS_BYTES / 1e6:.0f} MB)")
    try:
        with path.open("rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if size < 8 or not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
                raise ValueError(f"header length {n} does not fit a {size}-byte file")
            doc = json.loads(f.read(n))
        out = {}
        for name, entry in doc.items():
            if name == "__metadata__":
                continue
            shape = tuple(int(x) for x in entry["shape"])
            out[name] = (str(entry["dtype"]), shape)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        raise CheckpointError(f"{path}: unreadable safetensors file ({e})") from e
    return out


def expected_shapes(cfg: DMDConfig) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes the config implies, from the model built on the ``meta`` device (no memory)."""
    with torch.device("meta"):
        model = DMD(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_checkpoint(ckpt_dir: str | Path, allow_text_encoder: bool = True) -> tuple[DMDConfig, FeatureSpec | None, dict]:
    """Everything `load_checkpoint` checks, without reading the weights or building the model: sizes, the config,
    and every tensor's name and shape against the header. Raises `CheckpointError` naming the file.

    ``allow_text_encoder=False`` refuses a config that names a text encoder folder (building the model would load
    it from this machine's disk: never for an upload)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"{ckpt_dir}: checkpoint directory not found")
    cfg, spec, doc = read_config(ckpt_dir)
    if cfg.text_encoder is not None and not allow_text_encoder:
        raise CheckpointError(f"{ckpt_dir / CONFIG}: names a text encoder folder ({cfg.text_encoder!r}); only "
                              "checkpoints on precomputed text features are accepted here")
    wpath = ckpt_dir / WEIGHTS
    if not wpath.is_file():
        raise CheckpointError(f"{ckpt_dir}: no {WEIGHTS}")
    header = read_header(wpath)
    if cfg.text_encoder is None:  # the text encoder's own tensors are checked by loading it
        own = expected_shapes(cfg)
        missing = sorted(set(own) - set(header))
        unexpected = sorted(set(header) - set(own))
        if missing or unexpected:
            raise CheckpointError(f"{wpath}: tensors do not match the config (missing {missing[:5]}, unexpected "
                                  f"{unexpected[:5]})")
        for k, (_dtype, shape) in header.items():
            if shape != own[k]:
                raise CheckpointError(f"{wpath}: tensor {k!r} does not fit: {_explain(k, own[k], shape, cfg)}")
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
    cfg, spec, doc = check_checkpoint(ckpt_dir)  # nothing is built before the header has been checked
    wpath = ckpt_dir / WEIGHTS
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
