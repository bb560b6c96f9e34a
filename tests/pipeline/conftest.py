import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def live_checkpoint(tmp_path_factory):
    """An untrained `live` checkpoint stamped with the real extractors' feature spec (scores are meaningless but
    finite; the pipeline tests check plumbing, not accuracy)."""
    import torch

    from dmd_model.checkpoint import save_checkpoint
    from dmd_model.config import preset
    from dmd_model.model import DMD
    from realtime.features.specs import feature_spec

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "live"
    save_checkpoint(DMD(preset("live")).eval(), out, feature_spec(10.0))
    return out
