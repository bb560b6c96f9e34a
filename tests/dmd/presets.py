"""Small presets and random inputs for the DMD tests (a module of its own: every test folder has a ``conftest``, so
``from conftest import ...`` gets whichever was loaded last)."""

import torch

from dmd_model.config import preset


def small(name: str, **kw):
    """A preset with short sequences so CPU tests stay fast; architecture unchanged."""
    cfg = preset(name)
    lens = (12, 10, 14) if cfg.conv_padding == "valid" else cfg.seq_lens
    return cfg.replace(seq_lens=lens, **kw)


def random_inputs(cfg, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, cfg.seq_lens[m], cfg.input_dims[m], generator=g) for m in range(3)]
