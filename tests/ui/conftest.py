import pytest


@pytest.fixture(scope="session")
def ui_checkpoint(tmp_path_factory):
    """The bundled checkpoint when present (what a user sees), else an untrained `live` checkpoint with the real
    feature spec (as tests/pipeline's `live_checkpoint`): the page test checks plumbing and rates, not accuracy."""
    from pathlib import Path

    import torch

    bundled = Path(__file__).resolve().parents[2] / "assets" / "dmd_live"
    if (bundled / "model.safetensors").is_file():
        return bundled

    from dmd_model.checkpoint import save_checkpoint
    from dmd_model.config import preset
    from dmd_model.model import DMD
    from realtime.features.specs import feature_spec

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "live"
    save_checkpoint(DMD(preset("live")).eval(), out, feature_spec(10.0))
    return out
