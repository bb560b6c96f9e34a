"""The cross-corpus protocol: fold and score logic on hand-made arrays (fast), the command end to end on a tiny
subset of the shared corpora with real features (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recipes import crosscorpus as cc

ROOT = Path(__file__).parents[2]
CLASSES7 = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def onehot_scores(pred, classes=CLASSES7):
    s = np.zeros((len(pred), len(classes)))
    for i, p in enumerate(pred):
        s[i, classes.index(p)] = 1.0
    return s


# -- fast: pure logic --------------------------------------------------------------------------------------------
def test_loco_folds_hold_out_each_corpus_once():
    assert cc.loco_folds(["a", "b", "c"]) == [("a", ["b", "c"]), ("b", ["a", "c"]), ("c", ["a", "b"])]
    assert cc.loco_folds(cc.MODALITY_CORPORA["face"]) == [("fer2013", ["ck48"]), ("ck48", ["fer2013"])]


def test_corpus_classes_in_emotion7_order():
    assert cc.corpus_classes(["sad", "angry", "sad", "happy"]) == ["angry", "happy", "sad"]


def test_score_exact_accuracy_macro_f1_and_counts():
    y = ["angry", "angry", "happy", "happy", "sad", "sad"]
    pred = ["angry", "happy", "happy", "happy", "sad", "angry"]
    r = cc.score(y, onehot_scores(pred), CLASSES7)
    # angry: P 1/2 R 1/2 F1 1/2; happy: P 2/3 R 1 F1 4/5; sad: P 1 R 1/2 F1 2/3 -> macro (0.5 + 0.8 + 2/3) / 3
    assert r["acc"] == round(4 / 6, 4) == 0.6667
    assert r["macro_f1"] == round((0.5 + 0.8 + 2 / 3) / 3, 4) == 0.6556
    assert r["acc_7"] == 0.6667
    assert r["classes"] == ["angry", "happy", "sad"]
    assert r["per_class"] == {"angry": {"n": 2, "correct": 1, "predicted": 2},
                              "happy": {"n": 2, "correct": 2, "predicted": 3},
                              "sad": {"n": 2, "correct": 1, "predicted": 1}}
    assert (r["n"], r["n_found"]) == (6, 6)


def test_score_restricts_the_argmax_to_the_held_out_corpus_classes():
    # the top score is "surprise", which this corpus does not have (EmoDB): the restricted arg-max takes the next
    y = ["angry", "sad"]
    s = np.zeros((2, 7))
    s[:, CLASSES7.index("surprise")] = 5.0
    s[0, CLASSES7.index("angry")] = 2.0
    s[1, CLASSES7.index("sad")] = 3.0
    s[1, CLASSES7.index("angry")] = 1.0
    r = cc.score(y, s, CLASSES7)
    assert (r["acc"], r["macro_f1"], r["acc_7"]) == (1.0, 1.0, 0.0)


def test_score_counts_items_without_features_as_errors():
    y = ["happy", "happy", "sad", "sad"]
    r = cc.score(y, onehot_scores(y), CLASSES7, found=[True, False, True, True])
    assert (r["acc"], r["n_found"]) == (0.75, 3)
    # happy: P 1 R 1/2 F1 2/3; sad: F1 1 -> macro 5/6
    assert r["macro_f1"] == 0.8333
    assert r["per_class"]["happy"] == {"n": 2, "correct": 1, "predicted": 1}


def test_score_over_classes_the_model_cannot_predict():
    # a probe trained without neutral (CK+48 has none) scored on a corpus with neutral: neutral is always wrong
    model_classes = ["angry", "happy"]
    y = ["angry", "neutral", "happy"]
    r = cc.score(y, np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), model_classes)
    assert r["classes"] == ["angry", "happy", "neutral"]
    assert r["acc"] == 0.6667
    # angry: P 1/2 R 1 F1 2/3; happy: 1; neutral: 0 -> macro 5/9
    assert r["macro_f1"] == 0.5556


def test_standardise_groups_uses_each_group_own_statistics():
    x = np.array([[1.0, 5.0], [3.0, 5.0], [10.0, 0.0], [14.0, 2.0]])
    z = cc.standardise_groups(x, ["a", "a", "b", "b"])
    np.testing.assert_array_equal(z, [[-1.0, 0.0], [1.0, 0.0], [-1.0, -1.0], [1.0, 1.0]])


def _sessions(speakers, offset_scale, spread, n_per=4):
    """Three classes in one feature direction each, plus a large per-speaker offset in every feature and a small
    ``spread`` between the items of one speaker and class."""
    classes = ["angry", "happy", "sad"]
    x, y, g = [], [], []
    for s, spk in enumerate(speakers):
        off = offset_scale * (s + 1) * np.array([1.0, -2.0, 3.0])
        for k, c in enumerate(classes):
            for j in range(n_per):
                x.append(off + 3.0 * np.eye(3)[k] + spread * np.array([j, -j, 2 * j]) / n_per)
                y.append(c)
                g.append(spk)
    return {"x": np.array(x), "y": np.array(y, dtype=object), "found": np.ones(len(y), bool),
            "group": np.array(g, dtype=object)}


def test_per_speaker_norm_removes_speaker_offsets_but_a_one_emotion_session_loses_the_emotion():
    train, test = _sessions(["s1", "s2", "s3"], 10.0, 0.1), _sessions(["t1", "t2"], 25.0, 0.0)
    speaker = cc.probe_fold(train, test, "speaker")
    assert speaker["acc"] == 1.0 and speaker["n_train"] == 36
    one = cc.probe_fold(train, test, "speaker, one-emotion sessions")
    # every held-out session is one speaker in one emotion: z-scored by its own statistics, the class offset is
    # gone with the speaker's, every item becomes the zero vector and all are scored as one class
    assert len({c for c, v in one["per_class"].items() if v["predicted"]}) == 1
    assert one["acc"] == round(1 / 3, 4)


# -- slow: the command end to end ----------------------------------------------------------------------------------
def test_help_explains_the_protocol():
    r = subprocess.run([sys.executable, "-m", "recipes.crosscorpus", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for s in ("--limit", "--checkpoint", "--cache", "leave", "held-out corpus", "per-speaker"):
        assert s in r.stdout


def test_text_overlay_is_for_probes_only(tmp_path, capsys):
    overlay = ROOT / "assets" / "dmd_live" / "text_encoder.safetensors"
    assert cc.main(["--text-overlay", str(overlay), "--data", str(tmp_path)]) == 2
    assert "--text-overlay is for probes only" in capsys.readouterr().err
    assert cc.main(["--no-checkpoint", "--text-overlay", str(tmp_path / "none.safetensors")]) == 2
    assert "none.safetensors not found" in capsys.readouterr().err


@pytest.mark.slow
def test_text_probes_read_the_overlay_asked_for(shared_data, tmp_path):
    """--no-checkpoint --text-overlay: the text folds encode with the tuned layers (their own cache files, named
    by the overlay's hash) and the report says which layers."""
    from realtime.features.specs import sha256_prefix

    overlay = ROOT / "assets" / "dmd_live" / "text_encoder.safetensors"
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "recipes.crosscorpus", "--data", str(shared_data), "--no-checkpoint",
                        "--text-overlay", str(overlay), "--modalities", "text", "--cache", str(tmp_path / "cache"),
                        "--out", str(out), "--limit", "1", "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((out / "crosscorpus.json").read_text())
    assert res["text_overlay"] == str(overlay) and res["checkpoint"] is None
    tag = sha256_prefix(overlay)
    assert sorted(p.name for p in (tmp_path / "cache" / "text").iterdir()) == [
        f"goemotions_L{cc.TEXT_SEQ}_ov{tag}.npz", f"meld_L{cc.TEXT_SEQ}_ov{tag}.npz"]
    assert f"Text states: MiniLM with the tuned layers of `{overlay}`." in (out / "crosscorpus.md").read_text()
    assert [(f["held_out"], [(p["features"], p["n"]) for p in f["probes"]]) for f in res["folds"]] == [
        ("goemotions", [("minilm_mean", 7)]), ("meld", [("minilm_mean", 7)])]


@pytest.mark.slow
def test_command_end_to_end_on_a_tiny_subset(shared_data, tmp_path):
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "recipes.crosscorpus", "--data", str(shared_data),
                        "--cache", str(tmp_path / "cache"), "--out", str(out), "--limit", "1", "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((out / "crosscorpus.json").read_text())
    md = (out / "crosscorpus.md").read_text()
    assert md in r.stdout  # the printed table is the written one
    assert set(res) == {"protocol", "data", "cache", "limit", "checkpoint", "trained_on", "text_overlay", "corpora",
                        "folds", "in_corpus", "timing"}
    from realtime.features.specs import TEXT_OVERLAY_FILE

    # the bundled checkpoint reads tuned text states: the text folds ran MiniLM with its overlay
    assert res["text_overlay"] == str(Path(res["checkpoint"]) / TEXT_OVERLAY_FILE)
    assert res["limit"] == 1
    selected = cc.select(shared_data, ["voice", "face", "text"], 1)
    # folds: every corpus held out once, trained on the other corpora of its modality, in this order
    assert [(f["modality"], f["held_out"], f["train_corpora"]) for f in res["folds"]] == [
        ("voice", "ravdess", ["tess", "emodb", "emovo"]), ("voice", "tess", ["ravdess", "emodb", "emovo"]),
        ("voice", "emodb", ["ravdess", "tess", "emovo"]), ("voice", "emovo", ["ravdess", "tess", "emodb"]),
        ("face", "fer2013", ["ck48"]), ("face", "ck48", ["fer2013"]),
        ("text", "goemotions", ["meld"]), ("text", "meld", ["goemotions"])]
    all7 = CLASSES7
    expect_classes = {"ravdess": all7, "tess": all7, "emodb": [c for c in all7 if c != "surprise"],
                      "emovo": all7, "fer2013": all7, "ck48": [c for c in all7 if c != "neutral"],
                      "goemotions": all7, "meld": all7}
    heads = {"voice": "acoustic", "face": "visual", "text": "language"}
    # the probe on the checkpoint's own voice features is named after what they hold
    from dmd_model.checkpoint_config import read_config

    spec = read_config(ROOT / "assets" / "dmd_live")[1]
    from realtime.features.acoustic import AcousticConfig

    base = "lld+whisper_stream" if AcousticConfig.reads_states(spec.acoustic.extractor) else "egemaps_lld"
    voice_features = [base if v == "egemaps_lld" else v for v in cc.VOICE_FEATURES]
    for f in res["folds"]:
        held, mod = f["held_out"], f["modality"]
        assert f["classes"] == expect_classes[held] and f["n"] == len(expect_classes[held])
        assert res["corpora"][held]["counts"] == {c: 1 for c in expect_classes[held]}
        # probes: each voice feature under each norm; one probe for face and text
        # (voice: then the checkpoint's own features calibrated on the speaker's other neutral clips)
        want = ([(v, n) for v in voice_features for n in cc.VOICE_NORMS] + [(base, cc.CALIBRATED)] if mod == "voice"
                else [({"face": "face321", "text": "minilm_mean"}[mod], "global")])
        assert [(p["features"], p["norm"]) for p in f["probes"]] == want
        for p in f["probes"]:
            assert p["classes"] == expect_classes[held]
            assert sum(v["n"] for v in p["per_class"].values()) == p["n"] == f["n"]
            assert 0.0 <= p["acc"] <= 1.0 and 0.0 <= p["macro_f1"] <= 1.0
            assert p["n_train"] == sum(res["corpora"][c]["n_with_features"] for c in f["train_corpora"])
        # the checkpoint: fused, homo and hetero heads on all items; flagged; plus the test split when it saw it
        seen = held != "emovo"
        has_test = any(it.split == "test" for it in selected[held])
        rows = [(c["head"], c["items"], c["seen_in_training"]) for c in f["checkpoint"]]
        want_rows = []
        names = ["fused", f"homo_{heads[mod]}", f"hetero_{heads[mod]}"]
        voice_rows = [f"{n}, {v}" for v in ("calibrated", cc.SESSION_MIXED, cc.SESSION_ONE) for n in names]
        for h in names + (voice_rows if mod == "voice" else []):
            want_rows.append((h, "all", seen))
            if seen and has_test:
                want_rows.append((h, "test split", True))
        assert rows == want_rows
        for c in f["checkpoint"]:
            assert c["classes"] == expect_classes[held]
    ravdess_test = any(it.split == "test" for it in selected["ravdess"])
    assert [(a["features"], a["norm"]) for a in res["in_corpus"]] == (
        [(v, n) for v in voice_features for n in ("global", "speaker")] if ravdess_test else [])
    assert res["timing"]["extract"]["media_items"] == sum(len(selected[c]) for c in
                                                          cc.MODALITY_CORPORA["voice"] + cc.MODALITY_CORPORA["face"])
    assert "**held out**" in md and "| emovo (7, 7) |" in md


def test_summary_lays_out_probes_and_heads_per_held_out_corpus():
    def s(acc, f1):
        return {"acc": acc, "macro_f1": f1}

    res = {"folds": [
        {"modality": "face", "held_out": "fer2013", "n": 10, "classes": CLASSES7,
         "probes": [dict(s(0.5, 0.4), features="face321", norm="global")],
         "checkpoint": [dict(s(0.6, 0.5), head="fused", items="all", seen_in_training=True),
                        dict(s(0.55, 0.45), head="fused", items="test split", seen_in_training=True)]},
        {"modality": "face", "held_out": "ck48", "n": 6, "classes": CLASSES7[:4] + CLASSES7[5:],
         "probes": [dict(s(0.3, 0.2), features="face321", norm="global")],
         "checkpoint": [dict(s(0.25, 0.2), head="fused", items="all", seen_in_training=False)]}]}
    assert cc.summary(res).splitlines() == [
        "#### face: acc / macro-F1 per held-out corpus", "",
        "| model | fer2013 (10, 7 classes) | ck48 (6, 6 classes) |", "|---|---|---|",
        "| LR probe: face321 (global) | 0.5 / 0.4 | 0.3 / 0.2 |",
        "| checkpoint fused | 0.6 / 0.5* | 0.25 / 0.2 |"]


def test_a_held_out_corpus_gets_a_probe_trained_on_what_the_checkpoint_saw():
    """RAVDESS held out of a checkpoint trained on TESS and EmoDB: the usual probe trains on the three other
    corpora (EMOVO too); the extra one on TESS and EmoDB alone, as the checkpoint. Each corpus is separable on its
    own, but its classes sit at an offset, so which corpora train the probe decides what it gets right."""
    def corpus(offset, n=6):
        y = np.array(["angry", "sad"] * (n // 2), dtype=object)
        x = np.where(y == "angry", 1.0, -1.0)[:, None] + offset
        return {"base": x, "y": y, "found": np.ones(n, bool), "group": np.array(["g"] * n, dtype=object)}

    feats = {"ravdess": corpus(10.0), "tess": corpus(0.0), "emodb": corpus(0.5), "emovo": corpus(9.5)}
    sets = {"lld+whisper_stream": "base", "whisper": "whisper"}
    [p] = cc.same_corpora_probe(feats, sets, "ravdess", ["tess", "emodb", "emovo"], ["tess", "emodb"])
    assert (p["features"], p["norm"], p["train_corpora"], p["as_checkpoint"]) == (
        "lld+whisper_stream", "global", ["tess", "emodb"], True)
    assert p["n_train"] == 12 and p["acc"] == 0.5  # everything at RAVDESS's offset reads as angry
    assert cc.same_corpora_probe(feats, sets, "ravdess", ["tess", "emodb", "emovo"], ["tess", "emodb", "emovo"]) == []
    assert cc.same_corpora_probe(feats, sets, "ravdess", ["tess", "emodb", "emovo"], ["ck48"]) == []
    res = {"folds": [
        {"modality": "voice", "held_out": "ravdess", "n": 6, "classes": ["angry", "sad"], "train_corpora": ["a"],
         "probes": [dict(p, acc=0.5, macro_f1=0.3333)],
         "checkpoint": [{"acc": 0.6, "macro_f1": 0.5, "acc_7": 0.6, "head": "fused", "items": "all", "seen_in_training": False}]},
        {"modality": "voice", "held_out": "tess", "n": 6, "classes": ["angry", "sad"], "train_corpora": ["a"],
         "probes": [],
         "checkpoint": [{"acc": 0.9, "macro_f1": 0.9, "acc_7": 0.9, "head": "fused", "items": "all", "seen_in_training": True}]}]}
    assert cc.summary(res).splitlines()[4:] == [
        "| LR probe: lld+whisper_stream (global, the checkpoint's corpora) | 0.5 / 0.3333 | - |",
        "| checkpoint fused | 0.6 / 0.5 | 0.9 / 0.9* |"]
    assert "| ravdess (6, 2) | tess+emodb | LR probe | lld+whisper_stream | global |" in cc.markdown(dict(res, in_corpus=[]))


def test_speaker_neutral_means_leave_the_scored_clip_out():
    x = np.array([[1.0], [3.0], [5.0], [100.0], [7.0], [9.0]])
    y = ["neutral", "neutral", "neutral", "angry", "neutral", "angry"]
    g = ["a", "a", "a", "a", "b", "b"]
    ref = cc.speaker_neutral_means(x, y, g, found=[True, True, True, True, True, True])
    # a's neutral clips 1, 3, 5: each neutral one gets the mean of the other two, the angry one all three
    np.testing.assert_array_equal(ref[:4, 0], [4.0, 3.0, 2.0, 3.0])
    # b has one neutral clip: its own reference would be itself, so none; b's angry clip gets it
    assert np.isnan(ref[4, 0]) and ref[5, 0] == 7.0
    # a neutral clip without features is no calibration
    ref = cc.speaker_neutral_means(x, y, g, found=[True, False, True, True, True, True])
    np.testing.assert_array_equal(ref[:4, 0], [5.0, 3.0, 1.0, 3.0])


def test_calibration_moves_a_speakers_neutral_onto_the_population_and_is_capped():
    x = np.array([[10.0, 2.0, 7.0], [12.0, 0.0, 7.0]])  # two frames; two levels, then a column left alone
    out = cc.calibrate_levels(x, np.array([11.0, -20.0]), np.array([1.0, 0.0]), np.array([2.0, 1.0]), 3.0)
    # level 0: (11 - 1) / 2 = 5 std, capped at 3 -> lowered by 6; level 1: -20 std capped at -3 -> raised by 3
    np.testing.assert_array_equal(out, [[4.0, 5.0, 7.0], [6.0, 3.0, 7.0]])
    assert cc.calibrate_levels(x, np.array([np.nan, 0.0]), np.zeros(2), np.ones(2), 3.0) is x


def test_calibrated_probe_removes_a_held_out_speakers_offset():
    """Training speakers' levels: sad -1, neutral 0, angry +1 (mean 0, the neutral's); the held-out speaker's every
    clip is 2 units louder, so the global probe calls most clips angry. Calibrated on the speaker's other neutral
    clips (towards the training mean, as the page's control does), the offset is gone."""
    def speaker(offset, name, n=9):
        y = np.array(["sad", "neutral", "angry"] * (n // 3), dtype=object)
        level = np.select([y == "sad", y == "angry"], [-1.0, 1.0], 0.0) + offset
        return {"x": np.stack([level, np.zeros(n)], 1), "y": y, "found": np.ones(n, bool),
                "group": np.array([name] * n, dtype=object)}

    train, test = speaker(0.0, "s1"), speaker(2.0, "t1")
    assert cc.probe_fold(train, test, "global")["acc"] == 0.3333
    cal = cc.calibrated_probe_fold(train, test, level_dims=1, cap_std=3.0)
    assert cal["acc"] == 1.0 and cal["n_train"] == 9


def test_session_baseline_shifts_each_clip_by_the_running_estimate_at_its_end():
    """A speaker's clips played as one session: each clip is lowered by the page's running shift over the clips so
    far and itself, weighted by seconds, trusted n / (n + prior_s), capped; groups are separate sessions."""
    import torch
    from types import SimpleNamespace

    from realtime.baseline import BaselineConfig

    model = SimpleNamespace(input_mean_acoustic=torch.zeros(3), input_std_acoustic=torch.tensor([1.0, 2.0, 1.0]))
    scorer = SimpleNamespace(model=model)
    cfg = BaselineConfig(prior_s=10.0, cap_std=1.0, level_dims=2)
    a = np.array([[2.0, 4.0, 9.0], [2.0, 4.0, 9.0]], np.float32)  # levels (2, 4) = (2, 2) std; column 3 left alone
    b = np.zeros((2, 3), np.float32)
    means = np.array([r.mean(0) if r is not None else np.zeros(3) for r in (a, None, b)])
    out = cc.session_seqs(scorer, [a, None, b], means, [10.0, 3.0, 30.0], ["s1", "s1", "s2"], cfg)
    # s1: the one clip with features, 10 s: trust 10 / 20, shift 0.5 * (2, 2) = (1, 1) std = (1, 2) in units
    np.testing.assert_array_equal(out[0], [[1.0, 2.0, 9.0], [1.0, 2.0, 9.0]])
    assert out[1] is None
    np.testing.assert_array_equal(out[2], b)  # at the population mean: no shift
    # two clips of one speaker: the one played second is shifted by the estimate over both (order seeded)
    loud = np.full((2, 3), 8.0, np.float32)  # 8 std above on level 0, 4 on level 1
    got = cc.session_seqs(scorer, [b, loud], np.array([b.mean(0), loud.mean(0)]), [30.0, 30.0], ["s", "s"], cfg, seed=0)
    order = np.random.default_rng(0).permutation(2)
    if order[0] == 1:  # loud first: 30 s, trust 0.75, shift capped at (1, 1) std; then b: mean (4, 2) std over 60 s
        np.testing.assert_array_equal(got[1], np.full((2, 3), [7.0, 6.0, 8.0], np.float32))
        np.testing.assert_array_equal(got[0], np.full((2, 3), [-1.0, -2.0, 0.0], np.float32))
    else:  # b first: 30 s at the mean, no shift; then loud: mean (4, 2) std over 60 s, trust 6/7, capped at 1
        np.testing.assert_array_equal(got[0], b)
        np.testing.assert_array_equal(got[1], np.full((2, 3), [7.0, 6.0, 8.0], np.float32))
