"""DistributedDataParallel on the CPU with the gloo backend: two processes, one optimizer step; and a short run in
which the ranks validate on different data yet make the same decisions and train on disjoint, covering shards."""

import datetime
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    sys.path.insert(0, str(HERE))
    import torch.distributed as dist

    from presets import small
    from dmd_model.config import TrainConfig
    from dmd_model.data import load_dataset
    from dmd_model.model import DMD
    from dmd_model.trainer import Trainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    ds = load_dataset(data)
    torch.manual_seed(100 + rank)  # deliberately different initial weights: DDP must broadcast rank 0's
    model = DMD(small("mosi").replace(seq_lens=ds.seq_lens()))
    trainer = Trainer(model, TrainConfig(batch_size=4, accumulation=1, seed=rank), world_size=world, rank=rank,
                      progress=False)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    logs = trainer.train_steps(ds.split("train"), max_steps=1)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.save({"before": before, "after": after, "loss": logs[0]["total"]}, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def _fit_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    sys.path.insert(0, str(HERE))
    import numpy as np
    import torch.distributed as dist

    from presets import small
    from dmd_model.config import TrainConfig
    from dmd_model.data import load_dataset
    from dmd_model.model import DMD
    from dmd_model.trainer import Trainer

    torch.set_num_threads(1)
    # a short timeout: if the ranks ever disagreed on when to stop, the waiting rank fails instead of hanging
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    ds = load_dataset(data)
    if rank == 1:  # rank 1 validates on other data: labels negated, so its own score would rarely improve
        ds.splits["valid"].valence = -ds.splits["valid"].valence
    torch.manual_seed(0)
    model = DMD(small("mosi").replace(seq_lens=ds.seq_lens()))
    cfg = TrainConfig(batch_size=2, accumulation=2, seed=10 + rank, lr=1e-3, early_stop=2, plateau_patience=0)
    trainer = Trainer(model, cfg, world_size=world, rank=rank, progress=False)
    n = len(ds.split("train"))
    first_shard = trainer._order(n).tolist()  # both generators advance alike, so they stay in step
    own_scores = []
    orig = trainer.valid_score
    trainer.valid_score = lambda split: own_scores.append(orig(split)) or own_scores[-1]
    fit = trainer.fit(ds, epochs=6)
    state = torch.cat([p.detach().flatten() for p in model.parameters()])
    # plain JSON for the figures and safetensors for the weights: nothing in this test is unpickled
    Path(f"{out}/fit{rank}.json").write_text(json.dumps({
        "shard": first_shard, "seed": trainer.cfg.seed, "epochs": len(fit.history), "best": fit.best_epoch,
        "scores": [float(h.valid_score) for h in fit.history], "own": [float(v) for v in own_scores],
        "lrs": [float(h.lr) for h in fit.history], "n": n}))
    save_file({"state": state.contiguous()}, f"{out}/fit{rank}.safetensors")
    dist.destroy_process_group()


def test_ranks_with_different_validation_data_stop_together_on_disjoint_covering_shards(tmp_path):
    sys.path.insert(0, str(HERE))
    from synthetic import write_mmsa_pickle

    data = write_mmsa_pickle(tmp_path / "d.pkl", n_train=12, n_eval=6, lens=(12, 10, 14))
    mp.spawn(_fit_worker, args=(2, free_port(), str(data), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = ({**json.loads((tmp_path / f"fit{r}.json").read_text()),
               "state": load_file(tmp_path / f"fit{r}.safetensors")["state"]} for r in (0, 1))
    # rank 0's seed was enforced (each rank was given its own): the shards are disjoint and cover the split
    assert r0["seed"] == r1["seed"] == 10
    assert set(r0["shard"]).isdisjoint(r1["shard"])
    assert sorted(r0["shard"] + r1["shard"]) == list(range(r0["n"]))
    # the ranks' own validation scores differ, yet both decided on rank 0's: same epochs, best epoch, lrs, weights
    assert r0["own"] != r1["own"]
    assert r0["scores"] == r1["scores"] == r0["own"]
    assert r0["epochs"] == r1["epochs"] and r0["best"] == r1["best"] and r0["lrs"] == r1["lrs"]
    assert torch.equal(r0["state"], r1["state"])


def test_two_gloo_ranks_hold_identical_parameters_after_one_step(tmp_path):
    sys.path.insert(0, str(HERE))
    from synthetic import write_mmsa_pickle

    data = write_mmsa_pickle(tmp_path / "d.pkl", n_train=16, n_eval=4, lens=(12, 10, 14))
    mp.spawn(_worker, args=(2, free_port(), str(data), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert torch.equal(r0["before"], r1["before"])  # DDP broadcast rank 0's weights at construction
    assert r0["loss"] != r1["loss"]  # each rank saw its own shard
    assert torch.equal(r0["after"], r1["after"])  # averaged gradients -> identical parameters
    assert not torch.equal(r0["before"], r0["after"])  # and a step was really taken


@pytest.mark.slow
def test_torchrun_cli_with_two_processes(tmp_path):
    sys.path.insert(0, str(HERE))
    from synthetic import write_mmsa_pickle

    data = write_mmsa_pickle(tmp_path / "d.pkl", n_train=16, n_eval=4, lens=(50, 50, 50))
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "dmd_model.train", "--data", str(data), "--preset", "mosi", "--epochs", "1", "--out", str(out),
           "--device", "cpu", "--no-progress"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "world=2" in res.stdout
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()
