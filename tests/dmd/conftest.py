import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # for `synthetic`

from dmd_model.config import preset  # noqa: E402


def small(name: str, **kw):
    """A preset with short sequences so CPU tests stay fast; architecture unchanged."""
    cfg = preset(name)
    lens = (12, 10, 14) if cfg.conv_padding == "valid" else cfg.seq_lens
    return cfg.replace(seq_lens=lens, **kw)


def random_inputs(cfg, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, cfg.seq_lens[m], cfg.input_dims[m], generator=g) for m in range(3)]


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)
