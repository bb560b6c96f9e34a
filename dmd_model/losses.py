"""DMD's full objective (spec §4):

    L = task + distill * (homo_logit + homo_reg + hetero_logit + hetero_repr + hetero_reg)
          + decouple * (cycle + reconstruction + margin_ort * (margin + orthogonality))

with distill = 0.05, decouple = 0.1, margin_ort = 0.1 in the reference. Every term is returned separately so
training can log it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import DMDConfig
from .model import DMDOutput


@dataclass
class Targets:
    """Labels for one batch.

    Attributes:
        valence: (B,) regression target (sentiment in [-3, 3] for MOSI/MOSEI, valence in [-1, 1] for live).
        emotion: (B, C) class distribution (one-hot, or soft for cross-class pairings); an all-zero row means
            "no class label" for that sample. None when the model has no classifier.
        valence_known: (B,) bool, False where the sample has no valence label (its `valence` is a placeholder
            that the valence loss skips); None = every sample has one.
    """

    valence: torch.Tensor
    emotion: torch.Tensor | None = None
    valence_known: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "Targets":
        def move(t):
            return None if t is None else t.to(device)

        return Targets(self.valence.to(device), move(self.emotion), move(self.valence_known))


@dataclass
class LossTerms:
    total: torch.Tensor
    terms: dict[str, torch.Tensor]

    def as_floats(self) -> dict[str, float]:
        return {"total": float(self.total.detach())} | {k: float(v.detach()) for k, v in self.terms.items()}


def _masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp_min(1.0)


def task_loss(
    cfg: DMDConfig, out: DMDOutput, y: Targets
) -> tuple[torch.Tensor, torch.Tensor]:
    """L1 valence loss and cross-entropy emotion loss, each summed over the 8 heads (spec §9 item 7).

    Per-modality heads of an absent modality are excluded: nothing can be predicted from a missing face.
    Samples without a valence label (`Targets.valence_known` False) are excluded from the valence loss, and
    samples without a class label from the emotion loss.
    """
    heads = [(out.prediction, None), (out.shared_fusion_logits, None)]
    heads += [(out.homo_logits[:, m], out.present[:, m]) for m in range(3)]
    heads += [(out.hetero_logits[:, m], out.present[:, m]) for m in range(3)]
    r = int(cfg.regression)
    zero = out.prediction.new_zeros(())
    valence_loss, emotion_loss = zero, zero
    for logits, mask in heads:
        if cfg.regression:
            vm = mask if y.valence_known is None else (y.valence_known if mask is None else mask & y.valence_known)
            valence_loss = valence_loss + _masked_mean((logits[:, 0] - y.valence).abs(), vm)
        if cfg.num_classes and y.emotion is not None:
            labelled = y.emotion.sum(-1) > 0
            m = labelled if mask is None else labelled & mask
            ce = torch.sum(-y.emotion * F.log_softmax(logits[:, r:], dim=-1), dim=-1)
            emotion_loss = emotion_loss + _masked_mean(ce, m)
    return valence_loss, emotion_loss


def _step_mean(x: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, d, T) over valid steps and channels."""
    w = step_mask.unsqueeze(1).to(x.dtype).expand_as(x)
    return (x * w).sum() / w.sum().clamp_min(1.0)


def reconstruction_loss(out: DMDOutput) -> torch.Tensor:
    """sum_m MSE(R_m, X~_m); neither side detached, as in the reference."""
    return sum(_step_mean((out.reconstructed[m] - out.projected[m]) ** 2, out.step_mask[m]) for m in range(3))


def cycle_loss(out: DMDOutput) -> torch.Tensor:
    """Self-regression: sum_m MSE(E^prt_m(R_m), S_m)."""
    return sum(_step_mean((out.private_cycle[m] - out.private[m]) ** 2, out.step_mask[m]) for m in range(3))


def orthogonality_loss(out: DMDOutput, mode: str = "features") -> torch.Tensor:
    """sum_m mean max(0, cos(private, shared)).

    ``features``: cosine over the d channels at each (sample, step): the intended per-sample decorrelation.
    ``batch_axis``: cosine across the batch for each (step, channel), what PyTorch 1.9 computed (spec §9 item 1).
    """
    total = out.prediction.new_zeros(())
    for m in range(3):
        s, c = out.private[m], out.shared[m]  # (B, d, T)
        if mode == "features":
            cos = F.cosine_similarity(s, c, dim=1, eps=1e-8).clamp_min(0)  # (B, T)
            total = total + _masked_mean(cos, out.step_mask[m])
        elif mode == "batch_axis":
            num = (s * c).sum(0)
            den = torch.sqrt((s * s).sum(0) * (c * c).sum(0) + 1e-12)
            total = total + (num / den).clamp_min(0).mean()
        else:
            raise ValueError(f"unknown ort_mode {mode!r}")
    return total


def margin_loss(
    embeddings: torch.Tensor, keys: torch.Tensor, scores: torch.Tensor, margin_scale: float = 0.15,
    margin_class: float = 0.0,
) -> torch.Tensor:
    """The reference's HingeLoss on the shared-feature embeddings u (spec §4).

    Args:
        embeddings: (N, d) vectors (every present modality of every sample).
        keys: (N,) labels compared with exact equality: positives share the key, negatives do not.
        scores: (N,) label values; the margin is ``margin_scale * |y_a - y_n|`` (+ ``margin_class`` when the keys
            differ, used with class keys whose derived valence can tie).
    Returns the mean over anchors with at least one positive and one negative of
    mean_{p,n} max(0, margin(a, n) - cos(u_a, u_p) + cos(u_a, u_n)); 0 when there is no such anchor.
    """
    n = embeddings.shape[0]
    norm = torch.sqrt((embeddings**2).sum(-1) + 1e-8).clamp_min(1e-8)
    unit = embeddings / norm.unsqueeze(-1)
    sim = unit @ unit.T  # (N, N)
    same = keys.unsqueeze(0) == keys.unsqueeze(1)
    pos = same & ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
    neg = ~same
    margin = margin_scale * (scores.unsqueeze(1) - scores.unsqueeze(0)).abs() + margin_class * neg
    # hinge[a, p, n] = margin[a, n] - sim[a, p] + sim[a, n]
    hinge = (margin.unsqueeze(1) - sim.unsqueeze(2) + sim.unsqueeze(1)).clamp_min(0)
    pair = (pos.unsqueeze(2) & neg.unsqueeze(1)).to(hinge.dtype)
    count = pair.sum((1, 2))
    per_anchor = (hinge * pair).sum((1, 2)) / count.clamp_min(1)
    usable = count > 0
    if not usable.any():
        return embeddings.new_zeros(())
    return per_anchor[usable].mean()


def dmd_margin_loss(cfg: DMDConfig, out: DMDOutput, y: Targets) -> torch.Tensor:
    """Margin loss over u_m of present modalities; class keys when there are class labels, else exact scores."""
    u = out.margin_embeddings  # (B, 3, d)
    bsz = u.shape[0]
    if cfg.num_classes and y.emotion is not None:
        labelled = y.emotion.sum(-1) > 0
        keys = torch.where(labelled, y.emotion.argmax(-1), -1 - torch.arange(bsz, device=u.device))
    else:
        keys = y.valence
    keep = out.present.reshape(-1)
    keys3 = keys.repeat_interleave(3)[keep]
    scores3 = y.valence.repeat_interleave(3)[keep]
    return margin_loss(u.reshape(bsz * 3, -1)[keep], keys3, scores3, cfg.loss.margin_scale, cfg.loss.margin_class)


def dmd_objective(model, out: DMDOutput, y: Targets) -> LossTerms:
    """Every term of the objective, weighted as the spec says. `model` is the `DMD` that produced `out`."""
    cfg: DMDConfig = model.cfg
    w = cfg.loss
    valence, emotion = task_loss(cfg, out, y)
    task = w.valence * valence + w.emotion * emotion
    rec = reconstruction_loss(out)
    cyc = cycle_loss(out)
    ort = orthogonality_loss(out, w.ort_mode)
    mar = dmd_margin_loss(cfg, out, y)
    gd_present = out.present if cfg.use_masks else None
    homo = model.homo_gd.losses(out.homo_edges, model.distill_targets(out.homo_logits), out.homo_repr, gd_present)
    het = model.hetero_gd.losses(
        out.hetero_edges, model.distill_targets(out.hetero_logits), out.hetero_repr, gd_present
    )
    homo_gd = homo.logit + homo.reg + (homo.repr if cfg.homo_gd.use_repr_loss else 0.0)
    het_gd = het.logit + het.reg + (het.repr if cfg.hetero_gd.use_repr_loss else 0.0)
    total = task + w.distill * (homo_gd + het_gd) + w.decouple * (cyc + rec + w.margin_ort * (mar + ort))
    terms = {
        "task": task,
        "task_valence": valence,
        "task_emotion": emotion,
        "reconstruction": rec,
        "cycle": cyc,
        "orthogonality": ort,
        "margin": mar,
        "homo_gd_logit": homo.logit,
        "homo_gd_reg": homo.reg,
        "homo_gd_repr": homo.repr,
        "hetero_gd_logit": het.logit,
        "hetero_gd_reg": het.reg,
        "hetero_feature_decorrelation": het.repr,
    }
    return LossTerms(total=total, terms=terms)
