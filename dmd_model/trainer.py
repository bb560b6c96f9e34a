"""The training loop (spec §5): Adam, gradient accumulation with value clipping of the running sum,
ReduceLROnPlateau and early stopping on the validation split, optional DistributedDataParallel.

`Trainer` is used by the CLI (`dmd_model.train`), the recipes and the tests; it takes everything as arguments.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .config import TrainConfig
from .data import Dataset, SplitArrays
from .losses import Targets, dmd_objective
from .metrics import classification_metrics, regression_metrics, valence_metrics
from .model import DMD


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random; make cuDNN deterministic (as the reference's setup_seed)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


@dataclass
class Batch:
    language: torch.Tensor
    visual: torch.Tensor
    acoustic: torch.Tensor
    lengths: torch.Tensor
    present: torch.Tensor
    targets: Targets

    def inputs(self) -> tuple:
        return self.language, self.visual, self.acoustic


def make_batch(split: SplitArrays, idx: np.ndarray, device: torch.device | str) -> Batch:
    def t(x):
        return torch.from_numpy(np.ascontiguousarray(x[idx])).to(device)

    emotion = None if split.emotion is None else t(split.emotion).float()
    known = None if split.valence_known is None else t(split.valence_known).bool()
    return Batch(t(split.language).float(), t(split.visual).float(), t(split.acoustic).float(),
                 t(split.lengths).long(), t(split.present).bool(), Targets(t(split.valence).float(), emotion, known))


@dataclass
class Predictions:
    """Model outputs over a split, as numpy arrays (eval mode)."""

    prediction: np.ndarray  # (N, out)
    homo: np.ndarray  # (N, 3, out)
    hetero: np.ndarray  # (N, 3, out)
    shared_fusion: np.ndarray  # (N, out)
    homo_edges: np.ndarray  # (N, 6)
    hetero_edges: np.ndarray  # (N, 6)


@dataclass
class EpochLog:
    epoch: int
    train_terms: dict[str, float]
    valid_score: float
    lr: float


@dataclass
class FitResult:
    best_epoch: int
    best_valid_score: float
    history: list[EpochLog] = field(default_factory=list)
    final_terms: dict[str, float] = field(default_factory=dict)
    averaged_epochs: list[int] = field(default_factory=list)
    """The epochs whose end weights the model ends holding, averaged (``TrainConfig.average_from``); empty: the
    best epoch's weights."""
    averaged_valid_score: float | None = None


def compute_input_stats(model: DMD, split: SplitArrays) -> None:
    """Fill the model's input_mean/std buffers from the valid, present frames of a (training) split, so the
    checkpoint carries its normalisation. Dimensions with (near) zero spread keep std 1."""
    from .model import NAMES

    arrays = (split.language, split.visual, split.acoustic)
    for m, name in enumerate(NAMES):
        x = arrays[m]
        if x.ndim != 3:
            continue
        steps = np.arange(x.shape[1])[None, :] < split.lengths[:, m : m + 1]
        rows = x[steps & split.present[:, m : m + 1]]
        if rows.shape[0] < 2:
            continue
        with torch.no_grad():  # statistics of what forward() standardises: scores already as log-odds
            rows = model.score_logits(m, torch.from_numpy(np.ascontiguousarray(rows, np.float32))).numpy()
        mean = rows.mean(0, dtype=np.float64)
        std = rows.std(0, dtype=np.float64)
        std[std < 1e-6] = 1.0
        getattr(model, f"input_mean_{name}").copy_(torch.from_numpy(mean.astype(np.float32)))
        getattr(model, f"input_std_{name}").copy_(torch.from_numpy(std.astype(np.float32)))


class Trainer:
    """Trains a `DMD` model.

    Args:
        model: the network (its GD-Units are submodules and share the one optimizer, as in the reference).
        cfg: `TrainConfig`.
        device: where to train.
        rank, world_size: DistributedDataParallel position; a process group must already exist when
            world_size > 1. Each rank trains on its own shard of every epoch's shuffled order: rank 0's seed is
            broadcast so every rank draws the same order and the shards are disjoint and cover the split. The
            batch size is per rank, so one optimizer step sums ``batch_size * accumulation * world_size``
            samples (the reference's effective 160 needs ``accumulation`` divided by the number of ranks).
            Validation decisions (best epoch, early stop, ReduceLROnPlateau) use rank 0's score, broadcast,
            so no rank stops while the others wait for it. Gradients are all-reduced once per optimizer step
            (``no_sync`` on the other mini-batches, whose running sums are clipped per rank before the average).
        progress: show tqdm bars (rank 0 only).
        log: where progress lines go.
    """

    def __init__(self, model: DMD, cfg: TrainConfig, device: torch.device | str = "cpu", rank: int = 0,
                 world_size: int = 1, progress: bool = True, log: Callable[[str], None] = print):
        self.model = model.to(device)
        self.cfg = cfg
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.progress = progress and rank == 0
        self.log = log if rank == 0 else (lambda _msg: None)
        self.net = model
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=model.text_encoder is not None,
            )
        params = [p for p in model.parameters() if p.requires_grad]
        if cfg.weight_decay > 0:
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=cfg.lr)
        self.plateau = None  # per-epoch schedule on the validation score (reference)
        self.cosine = None  # per-step schedule, built in fit() once the run's length is known
        if cfg.lr_schedule == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer, mode="min", factor=cfg.plateau_factor, patience=cfg.plateau_patience
            )
        seed = cfg.seed
        if world_size > 1:  # one shuffled order for all ranks, or the shards overlap (and miss samples)
            seed = int(self._broadcast(float(seed)))
            self.cfg = cfg = dataclasses.replace(cfg, seed=seed)
        self.generator = np.random.default_rng(seed)

    def _broadcast(self, value: float) -> float:
        """Rank 0's `value` on every rank (identity without a process group)."""
        if self.world_size <= 1:
            return value
        import torch.distributed as dist

        dev = self.device if dist.get_backend() == "nccl" else torch.device("cpu")
        t = torch.tensor([value], dtype=torch.float64, device=dev)
        dist.broadcast(t, src=0)
        return float(t.item())

    # -- one pass ----------------------------------------------------------------------------------------------
    def _drop_modalities(self, present: torch.Tensor) -> torch.Tensor:
        p = self.cfg.modality_dropout
        if p <= 0:
            return present
        drop = torch.from_numpy(self.generator.random(present.shape) < p).to(present.device)
        kept = present & ~drop
        # never leave a sample with nothing: restore its originally present modalities
        empty = ~kept.any(1, keepdim=True)
        return torch.where(empty, present, kept)

    def _order(self, n: int) -> np.ndarray:
        order = self.generator.permutation(n)
        if self.world_size > 1:
            per = math.ceil(n / self.world_size)
            order = np.resize(order, per * self.world_size)  # pad by wrapping so every rank steps equally
            order = order[self.rank :: self.world_size]
        return order

    def steps_per_epoch(self, n: int) -> int:
        """Optimizer steps in one epoch over ``n`` samples on this rank."""
        per_rank = math.ceil(n / self.world_size)
        batches = math.ceil(per_rank / self.cfg.batch_size)
        return math.ceil(batches / max(1, self.cfg.accumulation))

    def train_steps(self, split: SplitArrays, max_steps: int | None = None, desc: str = "train") -> list[dict[str, float]]:
        """One epoch (or `max_steps` mini-batches); returns each mini-batch's loss terms."""
        self.net.train()
        order = self._order(len(split))
        bs = self.cfg.batch_size
        batches = [order[i : i + bs] for i in range(0, len(order), bs)]
        if max_steps is not None:
            batches = batches[:max_steps]
        logs: list[dict[str, float]] = []
        it = batches
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(batches, desc=desc, leave=False, dynamic_ncols=True)
            it = bar
        acc = max(1, self.cfg.accumulation)
        self.optimizer.zero_grad(set_to_none=True)
        for i, idx in enumerate(it):
            b = make_batch(split, idx, self.device)
            present = self._drop_modalities(b.present)
            steps = (i + 1) % acc == 0 or i + 1 == len(batches)
            # DDP: gradients are all-reduced only on the mini-batch that steps; the others accumulate locally
            sync = contextlib.nullcontext() if steps or self.net is self.model else self.net.no_sync()
            with sync:
                out = self.net(*b.inputs(), lengths=b.lengths, present=present)
                terms = dmd_objective(self.model, out, b.targets)
                # the reference sums (not averages) the accumulated gradients and clips the running sum
                terms.total.backward()
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.cfg.grad_clip)
            if steps:
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.cosine is not None:  # fit() sized it to exactly this run's optimizer steps
                    self.cosine.step()
            f = terms.as_floats()
            if not math.isfinite(f["total"]):
                raise FloatingPointError(f"loss became {f['total']} at step {i}; terms: {f}")
            logs.append(f)
            if bar is not None:
                bar.set_postfix(loss=f"{f['total']:.4f}", task=f"{f['task']:.4f}")
        return logs

    # -- evaluation --------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, split: SplitArrays, present: np.ndarray | None = None, batch_size: int = 256) -> Predictions:
        self.model.eval()
        parts: dict[str, list] = {k: [] for k in Predictions.__dataclass_fields__}
        for s in range(0, len(split), batch_size):
            idx = np.arange(s, min(s + batch_size, len(split)))
            b = make_batch(split, idx, self.device)
            pres = b.present if present is None else b.present & torch.as_tensor(np.array(present[idx], dtype=bool), device=self.device)
            out = self.model(*b.inputs(), lengths=b.lengths, present=pres)
            parts["prediction"].append(out.prediction)
            parts["homo"].append(out.homo_logits)
            parts["hetero"].append(out.hetero_logits)
            parts["shared_fusion"].append(out.shared_fusion_logits)
            parts["homo_edges"].append(out.homo_edges)
            parts["hetero_edges"].append(out.hetero_edges)
        return Predictions(**{k: torch.cat(v).float().cpu().numpy() for k, v in parts.items()})

    def valid_score(self, split: SplitArrays) -> float:
        """Lower is better: exact split MAE of the fused valence (spec §9 item 14), plus the fused emotion
        cross-entropy when the model classifies."""
        p = self.predict(split)
        return validation_score(self.model, p, split)

    def fit(self, ds: Dataset, epochs: int) -> FitResult:
        """Train up to `epochs` epochs with early stopping; the model ends holding the best validation weights, or
        with ``average_from`` the average of the end weights of every epoch from that one on."""
        train, valid = ds.split("train"), ds.split("valid")
        best, best_epoch, best_state, since = math.inf, 0, None, 0
        average = WeightAverage() if self.cfg.average_from else None
        result = FitResult(best_epoch=0, best_valid_score=math.inf)
        if self.cfg.lr_schedule == "cosine":
            total = max(1, epochs * self.steps_per_epoch(len(train)))
            self.cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimizer, T_max=total, eta_min=self.cfg.lr * self.cfg.min_lr_ratio
            )
        for epoch in range(1, epochs + 1):
            logs = self.train_steps(train, desc=f"epoch {epoch}/{epochs}")
            terms = {k: float(np.mean([l[k] for l in logs])) for k in logs[0]}
            # every rank decides on rank 0's score (evaluation need not be bit-identical across devices)
            score = self._broadcast(self.valid_score(valid))
            if self.plateau is not None:
                self.plateau.step(score)
            lr = self.optimizer.param_groups[0]["lr"]
            result.history.append(EpochLog(epoch, terms, score, lr))
            improved = score < best - 1e-6
            self.log(
                f"epoch {epoch:3d}  train loss {terms['total']:.6f}  task {terms['task']:.6f}  "
                f"valid score {score:.6f}  lr {lr:.2e}" + ("  *" if improved else "")
            )
            result.final_terms = terms
            if average is not None and epoch >= self.cfg.average_from:
                average.add(self.model.state_dict())
                result.averaged_epochs.append(epoch)
            if improved:
                best, best_epoch, since = score, epoch, 0
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                since += 1
                if since >= self.cfg.early_stop:
                    self.log(f"early stop: no validation improvement for {since} epochs")
                    break
        result.best_epoch, result.best_valid_score = best_epoch, best
        if average is not None and result.averaged_epochs:
            self.model.load_state_dict(average.state)
            result.averaged_valid_score = self._broadcast(self.valid_score(valid))
            self.log(f"weights averaged over epochs {result.averaged_epochs[0]}-{result.averaged_epochs[-1]}: valid "
                     f"score {result.averaged_valid_score:.6f} (best single epoch {best_epoch}: {best:.6f})")
        elif best_state is not None:
            if average is not None:
                self.log(f"stopped before epoch {self.cfg.average_from}: nothing averaged, best epoch kept")
            self.model.load_state_dict(best_state)
        return result


class WeightAverage:
    """Running mean of state dicts (stochastic weight averaging). Floating tensors are averaged; integer buffers
    keep the latest value. No batch-norm statistics to refit: DMD normalises with LayerNorm only."""

    def __init__(self) -> None:
        self.state: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, state: dict[str, torch.Tensor]) -> None:
        self.count += 1
        for k, v in state.items():
            v = v.detach()
            if k not in self.state or not v.is_floating_point():
                self.state[k] = v.clone()
            else:
                self.state[k] += (v - self.state[k]) / self.count


def validation_score(model: DMD, p: Predictions, split: SplitArrays) -> float:
    cfg = model.cfg
    score = 0.0
    known = split.valence_labelled()
    if cfg.regression and known.any():
        score += float(np.mean(np.abs(p.prediction[known, 0] - split.valence[known])))
    if cfg.num_classes and split.emotion is not None:
        logits = torch.from_numpy(p.prediction[:, int(cfg.regression) :])
        target = torch.from_numpy(split.emotion)
        labelled = target.sum(-1) > 0
        if labelled.any():
            ce = -(target * torch.log_softmax(logits, -1)).sum(-1)[labelled].mean()
            score += float(ce)
    return score


def split_metrics(model: DMD, p: Predictions, split: SplitArrays) -> dict:
    """The paper's metrics for the fused output, plus per-head metrics (classification when present)."""
    cfg = model.cfg
    r = int(cfg.regression)
    out: dict = {"n": len(split)}
    known = split.valence_labelled()  # valence metrics only over samples that have a valence label
    if cfg.regression and known.any():
        out["fused"] = regression_metrics(p.prediction[known, 0], split.valence[known])
    heads = {"shared_fusion": p.shared_fusion}
    absent = []
    for m, name in enumerate(("language", "visual", "acoustic")):
        if not split.present[:, m].any():
            absent.append(name)  # a head with no input in any sample: its figures would mean nothing
            continue
        heads[f"homo_{name}"] = p.homo[:, m]
        heads[f"hetero_{name}"] = p.hetero[:, m]
    if absent:
        out["heads_absent"] = absent
    if cfg.num_classes and split.emotion is not None:
        truth = np.where(split.emotion.sum(-1) > 0, split.emotion.argmax(-1), -1)
        out["fused_emotion"] = classification_metrics(p.prediction[:, r:], truth, cfg.num_classes)
        out["heads_emotion"] = {k: classification_metrics(v[:, r:], truth, cfg.num_classes) for k, v in heads.items()}
    if cfg.regression and known.any():
        out["heads_valence"] = {k: valence_metrics(v[known, 0], split.valence[known]) for k, v in heads.items()}
    out["mean_homo_edges"] = p.homo_edges.mean(0).round(6).tolist()
    out["mean_hetero_edges"] = p.hetero_edges.mean(0).round(6).tolist()
    return out
