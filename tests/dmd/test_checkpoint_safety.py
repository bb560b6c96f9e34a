"""Issue 17, item 4: a checkpoint is checked from its config and safetensors header before anything is built (sizes
capped, every shape compared on the meta device), so a crafted config cannot exhaust memory; a feature spec that
contradicts the config is refused naming the file; the page's checkpoint upload goes through the same check."""

import json
import shutil
from pathlib import Path

import pytest
import torch

import dmd_model.checkpoint as ck
from dmd_model.checkpoint import CheckpointError, check_checkpoint, load_checkpoint, save_checkpoint
from dmd_model.config import preset
from dmd_model.model import DMD


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    from realtime.features.specs import feature_spec

    torch.manual_seed(0)
    return save_checkpoint(DMD(preset("live")).eval(), tmp_path_factory.mktemp("ck") / "live", feature_spec(10.0))


def crafted(good, tmp_path, **model_changes):
    d = tmp_path / "crafted"
    shutil.copytree(good, d)
    doc = json.loads((d / "config.json").read_text())
    doc["model"].update(model_changes)
    (d / "config.json").write_text(json.dumps(doc))
    return d


@pytest.fixture
def builds(monkeypatch):
    """Records the default device of every DMD the loader builds ('meta' costs nothing)."""
    seen = []
    real = ck.DMD

    def counting(cfg):
        seen.append(str(torch.get_default_device()))
        return real(cfg)

    monkeypatch.setattr(ck, "DMD", counting)
    return seen


def test_a_huge_d_model_is_refused_before_anything_is_built(good, tmp_path, builds):
    d = crafted(good, tmp_path, d_model=1024, num_heads=4)
    with pytest.raises(CheckpointError, match=r"crafted/config.json: invalid checkpoint config \(d_model 1024 is "
                                              r"outside 0\.\.512\)"):
        load_checkpoint(d)
    assert builds == []


def test_a_config_that_does_not_fit_the_weights_is_refused_from_the_header(good, tmp_path, builds):
    d = crafted(good, tmp_path, d_model=64)
    with pytest.raises(CheckpointError, match=r"crafted/model.safetensors: tensor .* does not fit: .*d_model"):
        load_checkpoint(d)
    assert builds == ["meta"]  # the shapes came from a model on the meta device; the weights were never read


def test_the_good_checkpoint_still_loads(good, builds):
    model, spec, _ = load_checkpoint(good)
    assert builds == ["meta", "cpu"] and spec.dims()["visual"] == 321
    assert not any(p.is_meta for p in model.parameters())


def test_a_feature_spec_that_contradicts_the_config_names_the_file(good, tmp_path):
    d = crafted(good, tmp_path)
    doc = json.loads((d / "config.json").read_text())
    doc["feature_spec"]["visual"]["dim"] = 65
    (d / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"crafted/config.json: invalid feature_spec \(ModalitySpec has 321 "
                                              r"feature_names for dim 65\)"):
        check_checkpoint(d)
    doc["feature_spec"]["visual"]["feature_names"] = []
    (d / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"crafted/config.json: feature_spec.visual.dim is 65 but "
                                              r"model.input_dims\[visual\] is 321"):
        check_checkpoint(d)
    del doc["feature_spec"]["acoustic"]
    (d / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"crafted/config.json: invalid feature_spec \(feature spec has no "
                                              r"'acoustic' entry\)"):
        check_checkpoint(d)


def test_file_sizes_and_header_are_capped(good, tmp_path, monkeypatch):
    d = crafted(good, tmp_path)
    monkeypatch.setattr(ck, "MAX_WEIGHTS_BYTES", 1000)
    with pytest.raises(CheckpointError, match="more than a DMD checkpoint can be"):
        check_checkpoint(d)
    monkeypatch.undo()
    w = d / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[:8] = (10**12).to_bytes(8, "little")  # a header length that promises a terabyte
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model.safetensors: unreadable safetensors file \(header length"):
        check_checkpoint(d)
    (d / "config.json").write_text(" " * (ck.MAX_CONFIG_BYTES + 1))
    with pytest.raises(CheckpointError, match="more than a checkpoint config can be"):
        check_checkpoint(d)


def test_a_text_encoder_folder_is_refused_for_uploads(good, tmp_path):
    d = crafted(good, tmp_path, text_encoder="/etc")
    with pytest.raises(CheckpointError, match="names a text encoder folder"):
        check_checkpoint(d, allow_text_encoder=False)


def test_the_settings_upload_goes_through_the_same_check(good, tmp_path, builds):
    from realtime.pipeline import PipelineConfig
    from realtime.ui.session import Session, Settings, UploadError

    s = Session(PipelineConfig(), Settings(checkpoint="unused"))
    try:
        bad = crafted(good, tmp_path, d_model=1024, num_heads=4)
        with pytest.raises(UploadError, match=r"^config.json: invalid checkpoint config \(d_model 1024"):
            s.add_checkpoint([bad / "model.safetensors", bad / "config.json"], max_mb=200)
        assert builds == [] and s.checkpoints == {} and not list(s.dir.glob("checkpoint-*"))
        name = s.add_checkpoint([good / "model.safetensors", good / "config.json"], max_mb=200)
        assert name == "upload checkpoint-0" and Path(s.checkpoints[name]).parent == s.dir
    finally:
        s.close()
