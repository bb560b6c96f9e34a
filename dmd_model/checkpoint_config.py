"""A checkpoint's ``config.json`` read and checked without torch: the model config, the feature spec and the
training metadata, with every size capped before anything is built (`dmd_model.checkpoint` builds and loads the
model; this module is what a caller needs to know a checkpoint's shapes before loading it)."""

from __future__ import annotations

import json
from pathlib import Path

from .config import DMDConfig
from .feature_spec import MODALITIES, FeatureSpec

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TEXT_OVERLAY_FILE = "text_encoder.safetensors"
"""A checkpoint trained on MiniLM states with fine-tuned top layers keeps those layers beside its weights under this
name (`dmd_model.text_encoder.save_overlay`); the live pipeline reads them from there."""

MAX_CONFIG_BYTES = 1 << 20
"""config.json is about 11 kB (its feature names included)."""
MAX_WEIGHTS_BYTES = 1 << 30
"""1 GiB: the bundled live model is 3.5 MB, a faithful MOSI model 18 MB; a fine-tuned BERT inside adds 0.44 GB."""
MAX_HEADER_BYTES = 16 << 20
"""The safetensors JSON header (names, dtypes, shapes): a few kB for DMD."""
SIZE_LIMITS = {"d_model": 512, "num_heads": 64, "num_layers": 16, "mem_layers": 16, "embed_size": 1024,
               "input_dims": 4096, "seq_lens": 4096, "conv_kernels": 64, "num_classes": 1000}
"""Largest accepted value of each config size, far above the paper's (d_model 50/30, 10/6 heads, 4 layers, BERT 768
inputs, 50-500 steps) and the live preset's (32, 4, 2), so that a config cannot make the loader allocate gigabytes."""


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match its config or the data."""


def read_config(ckpt_dir: str | Path) -> tuple[DMDConfig, FeatureSpec | None, dict]:
    path = Path(ckpt_dir) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{ckpt_dir}: no {CONFIG}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{path}: {path.stat().st_size} bytes, more than a checkpoint config can be "
                              f"({MAX_CONFIG_BYTES})")
    try:
        doc = json.loads(path.read_text())
        _check_sizes(doc["model"])
        cfg = DMDConfig.from_dict(doc["model"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: invalid checkpoint config ({e})") from e
    try:
        spec = FeatureSpec.from_dict(doc["feature_spec"]) if doc.get("feature_spec") else None
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: invalid feature_spec ({e})") from e
    if spec is not None:
        for m, want in zip(MODALITIES, cfg.input_dims):
            if m == "language" and cfg.text_encoder is not None:
                continue  # the spec describes the tokens; input_dims[language] is the encoder's output width
            if spec.dims()[m] != want:
                raise CheckpointError(f"{path}: feature_spec.{m}.dim is {spec.dims()[m]} but model.input_dims"
                                      f"[{m}] is {want}: the config contradicts itself")
    return cfg, spec, doc


def _check_sizes(model: dict) -> None:
    """Refuse config sizes beyond `SIZE_LIMITS` before anything is built (ValueError naming the field)."""

    def check(name: str, value, limit: int) -> None:
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= limit):
                raise ValueError(f"{name} {value!r} is outside 0..{limit}")

    for name, limit in SIZE_LIMITS.items():
        if name == "embed_size":
            for gd in ("homo_gd", "hetero_gd"):
                if isinstance(model.get(gd), dict) and "embed_size" in model[gd]:
                    check(f"{gd}.embed_size", model[gd]["embed_size"], limit)
        elif name in model:
            check(name, model[name], limit)
    if model.get("text_encoder") is not None and not isinstance(model["text_encoder"], str):
        raise ValueError("text_encoder must be a folder name or null")
