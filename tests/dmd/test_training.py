"""Training loop, CLIs, checkpoints and bad-input handling on synthetic MMSA-format data written by the tests."""

import json
import math
import pickle

import numpy as np
import pytest
import torch
from presets import small
from synthetic import write_mmsa_pickle

from dmd_model import evaluate as evaluate_cli
from dmd_model import train as train_cli
from dmd_model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dmd_model.config import TrainConfig
from dmd_model.data import load_dataset
from dmd_model.model import DMD
from dmd_model.trainer import Trainer, seed_everything

LENS = (12, 10, 14)


@pytest.fixture(scope="module")
def mmsa_pickle(tmp_path_factory):
    return write_mmsa_pickle(tmp_path_factory.mktemp("mmsa") / "syn.pkl", lens=LENS)


def no_dropout(cfg):
    return cfg.replace(text_dropout=0.0, output_dropout=0.0, embed_dropout=0.0, attn_dropout=0.0, attn_dropout_a=0.0)


def test_training_drives_train_mae_below_0_1(mmsa_pickle):
    ds = load_dataset(mmsa_pickle)
    assert len(ds.split("train")) == 64
    seed_everything(0)
    model = DMD(no_dropout(small("mosi")).replace(seq_lens=ds.seq_lens()))
    trainer = Trainer(model, TrainConfig(batch_size=16, lr=1e-3, accumulation=1), progress=False)
    train = ds.split("train")
    maes = []
    for _epoch in range(40):  # bound: 160 optimizer steps (it takes about 50 here)
        trainer.train_steps(train)
        maes.append(float(np.abs(trainer.predict(train).prediction[:, 0] - train.valence).mean()))
        if maes[-1] < 0.1:
            break
    assert maes[0] > 0.3  # it really had to learn
    assert maes[-1] < 0.1, maes


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_lr_schedule_over_a_run(mmsa_pickle, schedule):
    """cosine anneals per optimizer step to lr * min_lr_ratio exactly at the last step of the last epoch;
    plateau (the reference) halves the rate only after `plateau_patience` epochs without improvement."""
    ds = load_dataset(mmsa_pickle)
    seed_everything(0)
    model = DMD(small("mosi").replace(seq_lens=ds.seq_lens()))
    cfg = TrainConfig(batch_size=16, lr=1e-3, accumulation=3, lr_schedule=schedule, min_lr_ratio=0.05,
                      plateau_patience=0)
    trainer = Trainer(model, cfg, progress=False)
    # 64 samples / 16 = 4 batches, stepped after batches 3 and 4: 2 optimizer steps per epoch
    assert trainer.steps_per_epoch(64) == 2
    fit = trainer.fit(ds, epochs=3)
    lrs = [h.lr for h in fit.history]
    if schedule == "cosine":
        expected = [5e-5 + (1e-3 - 5e-5) * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in (2, 4, 6)]
        assert lrs == pytest.approx(expected, rel=1e-9)
        assert lrs[-1] == pytest.approx(5e-5, rel=1e-9)
    else:  # patience 0: exactly the epochs that do not improve on the best so far (torch's rel 1e-4) halve it
        best, lr = math.inf, 1e-3
        for h in fit.history:
            if h.valid_score < best * (1 - 1e-4):
                best = h.valid_score
            else:
                lr /= 2
            assert h.lr == pytest.approx(lr, rel=1e-12)


def test_weight_decay_switches_to_decoupled_adamw():
    model = DMD(small("live"))
    plain = Trainer(model, TrainConfig(), progress=False).optimizer
    decayed = Trainer(model, TrainConfig(weight_decay=0.05), progress=False).optimizer
    assert type(plain) is torch.optim.Adam and plain.param_groups[0]["weight_decay"] == 0
    assert type(decayed) is torch.optim.AdamW and decayed.param_groups[0]["weight_decay"] == 0.05


def test_unknown_lr_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_weight_average_is_the_mean_of_the_end_weights_from_the_chosen_epoch(mmsa_pickle):
    """average_from=2 over 3 epochs: the model ends holding the mean of epochs 2 and 3's end weights (not the best
    epoch's), and the logged score is that average's validation score."""
    ds = load_dataset(mmsa_pickle)
    seed_everything(0)
    model = DMD(small("mosi").replace(seq_lens=ds.seq_lens()))
    trainer = Trainer(model, TrainConfig(batch_size=16, lr=1e-3, accumulation=1, average_from=2), progress=False)
    seen, score = [], trainer.valid_score

    def snapshot(split):  # called once after each epoch, then once on the average
        seen.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return score(split)

    trainer.valid_score = snapshot
    fit = trainer.fit(ds, epochs=3)
    assert fit.averaged_epochs == [2, 3]
    assert len(seen) == 4
    name = "proj_l.weight" if "proj_l.weight" in seen[0] else next(k for k, v in seen[0].items() if v.ndim == 3)
    assert not torch.equal(seen[1][name], seen[2][name])  # the two epochs really differ
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (seen[1][k] + seen[2][k]) / 2, rtol=0, atol=1e-6)
            torch.testing.assert_close(seen[3][k], v, rtol=0, atol=0)
    assert fit.averaged_valid_score == pytest.approx(score(ds.split("valid")), rel=1e-9)


def test_weight_average_is_off_by_default_and_a_negative_start_is_refused(mmsa_pickle):
    assert TrainConfig().average_from == 0
    with pytest.raises(ValueError, match="average_from"):
        TrainConfig(average_from=-1)


def three_step_losses(ds, seed):
    seed_everything(seed)
    model = DMD(small("mosi").replace(seq_lens=ds.seq_lens()))
    trainer = Trainer(model, TrainConfig(batch_size=8, accumulation=2, seed=seed), progress=False)
    return trainer.train_steps(ds.split("train"), max_steps=3)


def test_same_seed_gives_the_same_losses(mmsa_pickle):
    ds = load_dataset(mmsa_pickle)
    a, b = three_step_losses(ds, 7), three_step_losses(ds, 7)
    c = three_step_losses(ds, 8)
    assert len(a) == 3
    assert a == b
    assert a != c


def test_checkpoint_round_trip_is_exact(tmp_path):
    cfg = small("live")
    torch.manual_seed(3)
    model = DMD(cfg).eval()
    model.input_mean_visual.fill_(0.25)  # buffers travel too
    save_checkpoint(model, tmp_path / "ck")
    loaded, _spec, _doc = load_checkpoint(tmp_path / "ck")
    x = [torch.randn(3, cfg.seq_lens[m], cfg.input_dims[m]) for m in range(3)]
    with torch.no_grad():
        a, b = model(*x), loaded(*x)
    assert torch.equal(a.prediction, b.prediction)
    assert torch.equal(a.homo_edges, b.homo_edges) and torch.equal(a.hetero_edges, b.hetero_edges)
    assert not loaded.training


def test_checkpoint_with_wrong_dims_names_the_dim(tmp_path):
    model = DMD(small("live"))
    save_checkpoint(model, tmp_path / "ck")
    doc = json.loads((tmp_path / "ck" / "config.json").read_text())
    doc["model"]["input_dims"] = [384, 60, 25]
    (tmp_path / "ck" / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"input_dims\[visual\]: the weights have 321, the config says 60"):
        load_checkpoint(tmp_path / "ck")


def test_checkpoint_files_are_safetensors_not_pickles(tmp_path):
    save_checkpoint(DMD(small("live")), tmp_path / "ck")
    head = (tmp_path / "ck" / "model.safetensors").read_bytes()[:16]
    assert head[:2] != b"\x80\x04" and b"PK" not in head[:2]  # neither a pickle nor a torch zip
    from safetensors import safe_open

    with safe_open(str(tmp_path / "ck" / "model.safetensors"), "pt") as f:
        assert "homo_gd.edge_score.weight" in f.keys()


def test_train_and_evaluate_cli(mmsa_pickle, tmp_path, capsys):
    out = tmp_path / "run"
    rc = train_cli.main(["--data", str(mmsa_pickle), "--preset", "mosi", "--epochs", "2", "--out", str(out),
                         "--seed", "5", "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "epoch   2" in printed and "final loss terms:" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["splits"]) == {"train", "valid", "test"}
    fused = metrics["splits"]["test"]["fused"]
    assert set(fused) == {"Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7",
                          "MAE", "Corr"}
    assert set(metrics["final_train_loss_terms"]) >= {"reconstruction", "cycle", "orthogonality", "margin",
                                                       "homo_gd_logit", "hetero_feature_decorrelation"}
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["seq_lens"] == list(LENS)  # faithful preset: lengths come from the data
    assert (out / "model.safetensors").stat().st_size > 0

    rc = evaluate_cli.main(["--checkpoint", str(out), "--data", str(mmsa_pickle), "--split", "test"])
    assert rc == 0
    report = capsys.readouterr().out
    assert "Acc2 (Non0, paper)" in report and "Acc7" in report
    ev = json.loads((out / "eval_test.json").read_text())
    # the evaluation CLI reproduces the training run's test metrics exactly
    assert ev["metrics"]["fused"] == fused


def test_help_explains_the_cli(capsys):
    with pytest.raises(SystemExit) as e:
        train_cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in ("--data", "--preset", "--epochs", "--out", "--device", "--seed", "MMSA", "torchrun", "live-prior-free"):
        assert word in text


def write_bad(tmp_path, mutate):
    with open(write_mmsa_pickle(tmp_path / "ok.pkl", n_train=8, n_eval=4, lens=LENS), "rb") as f:
        data = pickle.load(f)
    mutate(data)
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


def _nan(d):
    d["train"]["vision"][0, 0, 0] = np.nan


def _wrong_dim(d):
    for s in d.values():
        s["vision"] = s["vision"][:, :, :7]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("valid"), "missing split 'valid'"),
        (_wrong_dim, "visual feature dim is 7 but preset 'mosi' expects 20"),
        (_nan, "'vision' has 1 NaN/inf values"),
        (lambda d: d["test"].pop("regression_labels"), "missing key 'regression_labels'"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path, capsys, mutate, message):
    path = write_bad(tmp_path, mutate)
    rc = train_cli.main(["--data", str(path), "--preset", "mosi", "--epochs", "1", "--out", str(tmp_path / "o"),
                         "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content, message", [(b"", "file is empty"), (b"not a pickle", "not a readable MMSA pickle")])
def test_empty_or_garbage_file_is_a_clear_error(tmp_path, capsys, content, message):
    path = tmp_path / "x.pkl"
    path.write_bytes(content)
    rc = train_cli.main(["--data", str(path), "--preset", "mosi", "--epochs", "1", "--out", str(tmp_path / "o")])
    assert rc == 2 and message in capsys.readouterr().err


def test_missing_file_is_a_clear_error(tmp_path, capsys):
    rc = evaluate_cli.main(["--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path / "x.pkl")])
    assert rc == 2 and "checkpoint directory not found" in capsys.readouterr().err


def test_live_presets_take_the_acoustic_width_of_the_data(tmp_path):
    """25 eGeMAPS LLDs or those + 384 Whisper encoder states (409): the live presets read either; a faithful preset
    still refuses a width it was not built for, naming both."""
    from synthetic import write_mmsa_pickle

    from dmd_model import train as train_cli
    from dmd_model.data import DataError, load_dataset

    ds = load_dataset(write_mmsa_pickle(tmp_path / "w.pkl", n_train=4, n_eval=2, dims=(384, 321, 409), lens=(8, 8, 8)))
    for name in ("live", "live-prior-free"):
        assert train_cli.resolve_config(name, ds, None, False).input_dims == (384, 321, 409)
    with pytest.raises(DataError, match="language feature dim is 384 but preset 'mosi' expects 768"):
        train_cli.resolve_config("mosi", ds, None, False)
