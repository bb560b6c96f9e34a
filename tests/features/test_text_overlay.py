"""MiniLM's fine-tuned top layers (issue 14): cached lower layers + tuned top = the full encoder, the overlay file
round-trips, is refused for other base weights, and the checkpoint's spec decides whether the pipeline uses it."""

import json

import numpy as np
import pytest

from dmd_model.feature_spec import FeatureSpecMismatch
from realtime.features.specs import TEXT_OVERLAY_FILE, TEXT_OVERLAY_TAG, feature_spec, language_spec

LINES = ["I can't believe you did that, it's wonderful!", "Oh no.", "what on earth were you thinking, honestly"]


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    from dmd_model.text_encoder import MINILM, resolve_text_encoder_path

    d = resolve_text_encoder_path(MINILM)
    return d, AutoTokenizer.from_pretrained(str(d), local_files_only=True), AutoModel.from_pretrained(
        str(d), local_files_only=True).eval()


@pytest.fixture(scope="module")
def overlay(minilm, tmp_path_factory):
    """An overlay of layers 4-5 with every weight perturbed, and the states a model with those (fp16) weights gives."""
    import torch

    from dmd_model.text_encoder import TokenStateEncoder, layer_state, save_overlay, top_layers

    d, _tok, _ = minilm
    from transformers import AutoModel

    tuned = AutoModel.from_pretrained(str(d), local_files_only=True).eval()
    g = torch.Generator().manual_seed(0)
    top = top_layers(tuned, 4)
    with torch.no_grad():
        for p in top.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    path = tmp_path_factory.mktemp("ov") / TEXT_OVERLAY_FILE
    save_overlay(path, layer_state(top, 4), d, {"note": "test"})
    with torch.no_grad():  # what the overlay holds: the perturbed weights rounded to fp16
        for p in top.parameters():
            p.copy_(p.half().float())
    ref = TokenStateEncoder(threads=1)
    ref.start().model = tuned
    return path, [ref.encode(ln.split()).states for ln in LINES]


def test_cached_lower_layers_then_top_layers_equal_the_encoder(minilm):
    import torch

    from dmd_model.text_encoder import (TokenStateEncoder, layer_state, lower_states, run_layers, top_layers,
                                        word_token_batch)

    _d, tok, model = minilm
    rows = lower_states(model, tok, LINES, first=4, max_tokens=128, progress=False)
    h, mask, word = word_token_batch(rows)
    with torch.inference_mode():
        top = run_layers(top_layers(model, 4).eval(), h, mask)
    enc = TokenStateEncoder(threads=1)
    for i, line in enumerate(LINES):
        ref = enc.encode(line.split()).states
        got = top[i][word[i]].numpy()
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-4)  # padded batch: float rounding only
    assert set(layer_state(top_layers(model, 4), 4)) == {k for k in model.state_dict() if k.startswith(("encoder.layer.4.", "encoder.layer.5."))}


def test_overlay_round_trips_and_changes_the_states(overlay):
    from dmd_model.text_encoder import TokenStateEncoder

    path, want = overlay
    tuned = TokenStateEncoder(threads=1, overlay=path)
    base = TokenStateEncoder(threads=1)
    for line, w in zip(LINES, want):
        got = tuned.encode(line.split()).states
        np.testing.assert_allclose(got, w, atol=1e-5)
        assert np.abs(got - base.encode(line.split()).states).max() > 0.05


def test_overlay_for_other_base_weights_or_names_is_refused(overlay, minilm, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from dmd_model.text_encoder import OVERLAY_FORMAT, apply_overlay, overlay_metadata

    path, _ = overlay
    d, _tok, _ = minilm
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(d), local_files_only=True)
    md, tensors = overlay_metadata(path), load_file(str(path))
    other = tmp_path / "other.safetensors"
    save_file(tensors, str(other), metadata={**md, "base_sha256": "0" * 64})
    with pytest.raises(ValueError, match="tuned over base weights sha256 0000"):
        apply_overlay(model, other, d)
    bad = tmp_path / "bad.safetensors"
    save_file({**tensors, "encoder.layer.9.output.dense.bias": torch.zeros(384, dtype=torch.float16)}, str(bad),
              metadata=md)
    with pytest.raises(ValueError, match="parameters the model lacks"):
        apply_overlay(model, bad, d)
    plain = tmp_path / "plain.safetensors"
    save_file(tensors, str(plain))
    with pytest.raises(ValueError, match="not a text-encoder overlay"):
        apply_overlay(model, plain, d)
    with pytest.raises(FileNotFoundError, match="missing.safetensors not found: MiniLM's fine-tuned layers"):
        apply_overlay(model, tmp_path / "missing.safetensors", d)
    assert md["format"] == OVERLAY_FORMAT and json.loads(md["meta"]) == {"note": "test"}


def test_language_spec_names_the_overlay(overlay, tmp_path):
    path, _ = overlay
    plain, tuned = language_spec(), language_spec(None, path)
    assert TEXT_OVERLAY_TAG not in plain.extractor and tuned.extractor == plain.extractor + TEXT_OVERLAY_TAG
    assert tuned.extractor_version.startswith(plain.extractor_version + "; overlay sha256:")
    assert len(tuned.extractor_version.rsplit(":", 1)[1]) == 12
    assert language_spec(None, tmp_path / "nothing").extractor_version.endswith("overlay sha256:missing")


def test_checkpoint_decides_the_text_overlay(overlay, tmp_path):
    import shutil

    import torch

    from dmd_model.checkpoint import save_checkpoint
    from dmd_model.config import preset
    from dmd_model.model import DMD
    from realtime.config import PipelineConfig, StreamSettings, stream_config

    path, _ = overlay
    torch.manual_seed(0)
    ck = tmp_path / "tuned"
    save_checkpoint(DMD(preset("live")).eval(), ck, feature_spec(10.0, text_overlay=path))
    shutil.copyfile(path, ck / TEXT_OVERLAY_FILE)
    save_checkpoint(DMD(preset("live")).eval(), tmp_path / "plain", feature_spec(10.0))
    tuned = stream_config(PipelineConfig(), StreamSettings(str(ck)), live=False)
    assert tuned.text.overlay == str(ck / TEXT_OVERLAY_FILE)
    from dmd_model.checkpoint_config import read_config

    want = read_config(ck)[1]
    want.check_compatible(tuned.feature_spec())  # the live spec is the checkpoint's
    plain = stream_config(PipelineConfig(), StreamSettings(str(tmp_path / "plain")), live=False)
    assert plain.text.overlay is None
    with pytest.raises(FeatureSpecMismatch, match="language.extractor"):
        want.check_compatible(plain.feature_spec())
    (ck / TEXT_OVERLAY_FILE).unlink()  # a checkpoint without its overlay: the spec check names what is missing
    with pytest.raises(FeatureSpecMismatch, match="overlay sha256:missing"):
        want.check_compatible(stream_config(PipelineConfig(), StreamSettings(str(ck)), live=False).feature_spec())


def test_upload_takes_the_overlay_beside_the_weights(overlay, tmp_path):
    import torch

    from dmd_model.checkpoint import save_checkpoint
    from dmd_model.config import preset
    from dmd_model.model import DMD
    from realtime.ui.uploads import UploadError, install_checkpoint

    path, _ = overlay
    torch.manual_seed(0)
    save_checkpoint(DMD(preset("live")).eval(), tmp_path / "ck", feature_spec(10.0, text_overlay=path))
    files = [tmp_path / "ck" / "model.safetensors", tmp_path / "ck" / "config.json", path]
    into = tmp_path / "into"
    into.mkdir()
    d = install_checkpoint(files, 200.0, into)
    assert (d / TEXT_OVERLAY_FILE).read_bytes() == path.read_bytes()
    bogus = tmp_path / "b" / TEXT_OVERLAY_FILE
    bogus.parent.mkdir()
    bogus.write_bytes(b"not a safetensors file")
    with pytest.raises(UploadError, match="not a text-encoder overlay"):
        install_checkpoint(files[:2] + [bogus], 200.0, into)
    assert sorted(p.name for p in into.iterdir()) == [d.name]  # the refused upload left nothing behind


def test_a_voice_only_check_ignores_the_text_encoder(overlay):
    """Cross-corpus voice folds: files extracted without words are scored by a checkpoint on tuned text states."""
    path, _ = overlay
    tuned, plain = feature_spec(10.0, text_overlay=path), feature_spec(10.0)
    tuned.check_compatible(plain, modalities=("acoustic",))
    tuned.check_compatible(plain, modalities=("visual", "acoustic"))
    with pytest.raises(FeatureSpecMismatch, match="language.extractor"):
        tuned.check_compatible(plain)
    with pytest.raises(FeatureSpecMismatch, match="language.extractor"):
        tuned.check_compatible(plain, modalities=("language",))
