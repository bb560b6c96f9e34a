"""The live preset on the project's own feature files, and raw-token text through the packaged MiniLM."""

import json
import pickle

import numpy as np
import pytest
import torch

from dmd_model import evaluate as evaluate_cli
from dmd_model import train as train_cli
from dmd_model.config import EMOTIONS7
from dmd_model.data import DataError, fit_length, load_dataset
from dmd_model.feature_file import FeatureFileError, ItemFeatures
from dmd_model.feature_spec import FeatureSpec, FeatureSpecMismatch, ModalitySpec, Word

SPEC = FeatureSpec(
    language=ModalitySpec(384, 0.0, "test-minilm", "1"),
    visual=ModalitySpec(321, 30.0, "test-blendshapes", "1"),
    acoustic=ModalitySpec(25, 100.0, "test-egemaps", "1"),
)


def make_item(i: int, rng, split: str) -> ItemFeatures:
    cls = i % 7
    t_v, t_a, t_l = 40 + i % 5, 150 + i % 7, 6 + i % 4
    vis = rng.normal(size=(t_v, 321)).astype(np.float32)
    vis[:, cls] += 3.0  # the class shows in every modality
    ac = rng.normal(size=(t_a, 25)).astype(np.float32)
    ac[:, cls] += 3.0
    lang = rng.normal(size=(t_l, 384)).astype(np.float32)
    lang[:, cls] += 3.0
    face = np.ones(t_v, bool)
    face[:3] = False
    absent = {"language": "no words"} if i % 11 == 0 else {}
    return ItemFeatures(
        spec=SPEC, language=lang, language_t=np.linspace(0, 1, t_l), visual=vis, visual_t=np.arange(t_v) / 30,
        face_present=face, acoustic=ac, acoustic_t=np.arange(t_a) / 100, source=f"item{i}.mp4",
        duration_s=t_v / 30, words=[Word("hello", 0.1, 0.4)],
        labels={"emotion7": EMOTIONS7[cls], "valence": [-0.6, -0.7, -0.6, 0.8, 0.0, -0.7, 0.3][cls], "split": split},
        absent=absent,
    )


@pytest.fixture(scope="module")
def feature_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(0)
    for i in range(70):
        split = "train" if i < 49 else ("valid" if i < 56 else "test")
        make_item(i, rng, split).save(d / f"item{i}")
    return d


def test_feature_file_round_trip(tmp_path):
    item = make_item(3, np.random.default_rng(1), "train")
    path = item.save(tmp_path / "x")
    assert path.name == "x.feat.npz"
    back = ItemFeatures.load(path)
    assert back.spec == SPEC
    np.testing.assert_array_equal(back.visual, item.visual)
    np.testing.assert_array_equal(back.face_present, item.face_present)
    assert back.words == item.words and back.labels == item.labels


def test_feature_file_errors(tmp_path):
    (tmp_path / "empty.feat.npz").write_bytes(b"")
    with pytest.raises(FeatureFileError, match="file is empty"):
        ItemFeatures.load(tmp_path / "empty.feat.npz")
    (tmp_path / "junk.feat.npz").write_bytes(b"junk" * 10)
    with pytest.raises(FeatureFileError, match="not a readable feature file"):
        ItemFeatures.load(tmp_path / "junk.feat.npz")
    with pytest.raises(FeatureFileError, match=r"visual has shape \(4, 3\), expected \(T, 321\)"):
        ItemFeatures(SPEC, np.zeros((0, 384)), np.zeros(0), np.zeros((4, 3)), np.zeros(4), np.ones(4, bool),
                     np.zeros((0, 25)), np.zeros(0))


def test_spec_mismatch_names_the_field():
    other = FeatureSpec(SPEC.language, ModalitySpec(321, 15.0, "test-blendshapes", "1"), SPEC.acoustic)
    with pytest.raises(FeatureSpecMismatch, match="visual.frame_rate_hz is 15.0 but the model expects 30.0"):
        SPEC.check_compatible(other)


def test_fit_length_averages_spans_and_keeps_short_sequences():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(fit_length(x, 3), [[1, 2], [5, 6], [9, 10]])
    assert fit_length(x, 10) is x


def test_packing_a_feature_directory(feature_dir):
    ds = load_dataset(feature_dir, seq_lens=(32, 32, 64))
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 49, "valid": 7, "test": 14}
    train = ds.split("train")
    assert train.visual.shape == (49, 32, 321) and train.acoustic.shape == (49, 64, 25)
    i0 = train.ids.index("item0.mp4")
    assert not train.present[i0, 0]  # 'no words' -> language absent
    assert train.lengths[i0, 1] == 32  # 37 face frames fitted into 32
    assert train.emotion.sum(1).tolist() == [1.0] * 49
    assert ds.spec == SPEC


def test_live_training_and_ablation_on_own_features(feature_dir, tmp_path, capsys):
    out = tmp_path / "live"
    rc = train_cli.main(["--data", str(feature_dir), "--preset", "live", "--epochs", "12", "--batch-size", "8", "--out", str(out),
                         "--no-progress", "--seed", "3"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())["splits"]["test"]
    assert set(m["heads_emotion"]) == {"shared_fusion", "homo_language", "hetero_language", "homo_visual",
                                       "hetero_visual", "homo_acoustic", "hetero_acoustic"}
    assert m["fused_emotion"]["n"] == 14
    assert m["fused_emotion"]["acc"] > 0.5  # the planted class signal is easy; chance is 1/7
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["feature_spec"]["visual"]["extractor"] == "test-blendshapes"
    capsys.readouterr()
    rc = evaluate_cli.main(["--checkpoint", str(out), "--data", str(feature_dir), "--ablate"])
    assert rc == 0
    assert "ablation visual_only" in capsys.readouterr().out
    ev = json.loads((out / "eval_test.json").read_text())
    assert set(ev["ablation"]) == {"all", "no_language", "no_visual", "no_acoustic", "language_only", "visual_only",
                                   "acoustic_only"}
    assert ev["ablation"]["all"]["fused_emotion"] == ev["metrics"]["fused_emotion"]
    # a modality absent in every sample gets no head figures (its heads had no input), and says so
    import dataclasses

    from dmd_model.checkpoint import load_checkpoint
    from dmd_model.config import TrainConfig
    from dmd_model.trainer import Trainer, split_metrics

    model, _, _ = load_checkpoint(out)
    test = load_dataset(feature_dir, seq_lens=model.cfg.seq_lens).split("test")
    test = dataclasses.replace(test, present=test.present & np.array([True, False, True]))
    m = split_metrics(model, Trainer(model, TrainConfig(), progress=False).predict(test), test)
    assert m["heads_absent"] == ["visual"]
    assert set(m["heads_emotion"]) == {"shared_fusion", "homo_language", "hetero_language", "homo_acoustic",
                                       "hetero_acoustic"}
    assert "heads_absent" not in ev["metrics"]


def test_features_from_another_extractor_are_refused(feature_dir, tmp_path, capsys):
    out = tmp_path / "live"
    assert train_cli.main(["--data", str(feature_dir), "--preset", "live", "--epochs", "1", "--out", str(out),
                           "--no-progress"]) == 0
    doc = json.loads((out / "config.json").read_text())
    doc["feature_spec"]["acoustic"]["extractor_version"] = "2"
    (out / "config.json").write_text(json.dumps(doc))
    assert evaluate_cli.main(["--checkpoint", str(out), "--data", str(feature_dir)]) == 2
    err = capsys.readouterr().err
    assert "acoustic.extractor_version is '1' but the model expects '2'; install the library versions" in err


def test_empty_feature_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no \\*.feat.npz feature files"):
        load_dataset(tmp_path, seq_lens=(32, 32, 64))


@pytest.mark.slow
def test_text_bert_tokens_through_the_packaged_minilm(tmp_path, capsys):
    rng = np.random.default_rng(0)

    def split(n):
        ids = rng.integers(1000, 5000, size=(n, 20))
        ids[:, 0], ids[:, -1] = 101, 102  # [CLS] ... [SEP]
        tb = np.stack([ids, np.ones_like(ids), np.zeros_like(ids)], 1).astype(np.float32)
        return {"text_bert": tb, "vision": rng.normal(size=(n, 20, 20)).astype(np.float32),
                "audio": rng.normal(size=(n, 20, 5)).astype(np.float32),
                "regression_labels": rng.uniform(-3, 3, n).astype(np.float32)}

    path = tmp_path / "tok.pkl"
    with open(path, "wb") as f:
        pickle.dump({"train": split(6), "valid": split(3), "test": split(3)}, f)
    out = tmp_path / "run"
    rc = train_cli.main(["--data", str(path), "--preset", "mosi", "--epochs", "1", "--out", str(out),
                         "--text-encoder", "minilm", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["text_encoder"] == "minilm" and cfg["model"]["input_dims"][0] == 384
    assert evaluate_cli.main(["--checkpoint", str(out), "--data", str(path)]) == 0


def test_fine_tuning_starts_from_the_checkpoint_weights(feature_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    base = tmp_path / "base"
    assert train_cli.main(["--data", str(feature_dir), "--preset", "live", "--epochs", "1", "--out", str(base),
                           "--no-progress", "--seed", "3"]) == 0
    # zero epochs of fine-tuning: the written weights and input statistics are the initial checkpoint's, exactly
    same = tmp_path / "same"
    assert train_cli.main(["--data", str(feature_dir), "--init", str(base), "--epochs", "0", "--out", str(same),
                           "--no-progress"]) == 0
    a, b = load_file(str(base / "model.safetensors")), load_file(str(same / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    tuned = tmp_path / "tuned"
    assert train_cli.main(["--data", str(feature_dir), "--init", str(base), "--epochs", "1", "--out", str(tuned),
                           "--no-progress"]) == 0
    c = load_file(str(tuned / "model.safetensors"))
    assert any(not torch.equal(a[k], c[k]) for k in a if k.endswith("weight"))
    out = capsys.readouterr().out
    assert "initialised from" in out and "copied" not in out and not (tuned / "text_encoder.safetensors").exists()
    # an init that reads MiniLM through fine-tuned layers hands them on: the new checkpoint reads the same features
    (base / "text_encoder.safetensors").write_bytes(b"overlay bytes")
    again = tmp_path / "again"
    assert train_cli.main(["--data", str(feature_dir), "--init", str(base), "--epochs", "0", "--out", str(again),
                           "--no-progress"]) == 0
    assert (again / "text_encoder.safetensors").read_bytes() == b"overlay bytes"
    assert f"copied text_encoder.safetensors from {base}" in capsys.readouterr().out
    (base / "text_encoder.safetensors").unlink()
    # a checkpoint whose feature spec differs from the data's is refused with the field named
    doc = json.loads((base / "config.json").read_text())
    doc["feature_spec"]["visual"]["extractor_version"] = "2"
    (base / "config.json").write_text(json.dumps(doc))
    assert train_cli.main(["--data", str(feature_dir), "--init", str(base), "--epochs", "1", "--out",
                           str(tmp_path / "bad"), "--no-progress"]) == 2
    assert "visual.extractor_version" in capsys.readouterr().err
