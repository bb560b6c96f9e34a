"""The graph-distillation unit (GD-Unit), used twice: HomoGD on shared features, HeteroGD on private ones (spec §3).

One vertex per modality (L, V, A) and a directed edge teacher i -> student j for each ordered pair, 6 in all.
Edge scores are an affine function of both vertices' [logits ; representation] embeddings, normalised by one
softmax over all six edges (temperature 8). The loss weights are the edges plus a fixed prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import EDGE_NAMES, GDConfig  # noqa: F401  (EDGE_NAMES: the edge order below, named)

# (student j, teacher i) in the reference's order: edges 0..5 are V→L, A→L, L→V, A→V, L→A, V→A.
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1))
_STUDENTS = [j for j, _ in EDGES]
_TEACHERS = [i for _, i in EDGES]


def edges_to_matrix(edges: torch.Tensor) -> torch.Tensor:
    """(..., 6) edge weights -> (..., 3, 3) matrix W[teacher, student], zero diagonal, order L, V, A."""
    out = edges.new_zeros(*edges.shape[:-1], 3, 3)
    out[..., _TEACHERS, _STUDENTS] = edges
    return out


@dataclass
class GDLosses:
    """The GD-Unit's loss terms (each a scalar tensor)."""

    logit: torch.Tensor
    reg: torch.Tensor
    repr: torch.Tensor


class GDUnit(nn.Module):
    """Computes the six edge weights from per-modality logits and representations.

    Args:
        logit_dim: size of the per-modality "logit" vector the unit sees (1 for a sentiment score; for the live
            preset, valence plus the 7 class probabilities, see `DMD.distill_targets`).
        repr_dim: size of the per-modality representation (d for HomoGD, 2d for HeteroGD).
        cfg: the unit's `GDConfig`.
        distance_weights: per-dimension weights of the L1 logit distance (length `logit_dim`).
    """

    def __init__(self, logit_dim: int, repr_dim: int, cfg: GDConfig, distance_weights: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        g = cfg.embed_size
        self.embed_logit = nn.Linear(logit_dim, g)  # shared across modalities
        self.embed_repr = nn.Linear(repr_dim, g)
        # shared by all six edges; student embedding first. The reference's bias b_e is dropped: a constant added to
        # every edge score cancels in the softmax, so its gradient is identically zero (it could never train).
        self.edge_score = nn.Linear(4 * g, 1, bias=False)
        self.register_buffer("prior", torch.tensor(cfg.prior, dtype=torch.float32), persistent=False)
        if distance_weights is None:
            distance_weights = torch.ones(logit_dim)
        self.register_buffer("distance_weights", distance_weights.float(), persistent=False)

    def edges(self, logits: torch.Tensor, reprs: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Edge weights e, shape (B, 6), each row summing to 1 over the edges whose two ends are present.

        logits: (B, 3, logit_dim); reprs: (B, 3, repr_dim); present: (B, 3) bool or None (all present).
        Edges touching an absent modality get exactly 0; a sample with fewer than two modalities gets all zeros.
        """
        z = torch.cat([self.embed_logit(logits), self.embed_repr(reprs)], dim=-1)  # (B, 3, 2g)
        pairs = torch.cat([z[:, _STUDENTS], z[:, _TEACHERS]], dim=-1)  # (B, 6, 4g)
        scores = self.edge_score(pairs).squeeze(-1) / self.cfg.temperature
        if present is None:
            return torch.softmax(scores, dim=-1)
        valid = self.valid_edges(present)
        e = torch.softmax(scores.masked_fill(~valid, -1e4), dim=-1) * valid
        return e / e.sum(dim=-1, keepdim=True).clamp_min(1e-12)

    @staticmethod
    def valid_edges(present: torch.Tensor) -> torch.Tensor:
        """(B, 3) presence -> (B, 6) True where both the student and the teacher are present."""
        return present[:, _STUDENTS] & present[:, _TEACHERS]

    def losses(
        self,
        edges: torch.Tensor,
        logits: torch.Tensor,
        reprs: torch.Tensor,
        present: torch.Tensor | None = None,
    ) -> GDLosses:
        """The unit's loss terms (spec §3), given its edges.

        - logit: sum_x mean_b[omega_xb * |l_j - sg(l_i)|], omega = e + prior. The teacher is detached only inside
          the distance; the edges are not, so this also trains the edge network.
        - reg: reg_weight * sum_x (mean_b e_x - mean_b pi_bx)^2, pi_b the prior restricted to sample b's present
          edges and renormalised to sum 1 (as e_b is), the mean over samples with at least one edge. With every
          modality present this is the reference's reg_weight * sum_x (mean_b e_x - pi_x)^2; without the
          renormalisation a masked edge would count as 0 and the mean edges could never reach the prior.
        - repr: HomoGD, repr_weight * sum_x mean_b[omega * ||r_j - sg(r_i)||_1] (computed, unused by default);
          HeteroGD, repr_weight * sum_x mean_b[max(0, cos(q_j, sg(q_i)))] * mean_b[omega_x]: it *decorrelates*
          the student's exclusive features from the teacher's (spec §9 item 3), as the reference does.
        """
        valid = (
            torch.ones_like(edges, dtype=torch.bool) if present is None else self.valid_edges(present)
        ).to(edges.dtype)
        omega = (edges + self.prior) * valid  # (B, 6)
        student_l, teacher_l = logits[:, _STUDENTS], logits[:, _TEACHERS].detach()
        dist = ((student_l - teacher_l).abs() * self.distance_weights).sum(-1)  # (B, 6)
        logit = (omega * dist).mean(0).sum()
        if present is None:
            reg = self.cfg.reg_weight * ((edges.mean(0) - self.prior) ** 2).sum()
        else:
            target = self.prior * valid
            target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
            rows = valid.any(-1)  # samples with fewer than two modalities have no edges
            if rows.any():
                reg = self.cfg.reg_weight * ((edges[rows].mean(0) - target[rows].mean(0)) ** 2).sum()
            else:
                reg = edges.sum() * 0.0
        student_r, teacher_r = reprs[:, _STUDENTS], reprs[:, _TEACHERS].detach()
        if self.cfg.use_repr_loss:
            cos = F.cosine_similarity(student_r, teacher_r, dim=-1, eps=1e-8).clamp_min(0) * valid
            n = valid.sum(0).clamp_min(1)
            repr_ = self.cfg.repr_weight * ((cos.sum(0) / n) * omega.mean(0)).sum()
        else:
            l1 = (student_r - teacher_r).abs().sum(-1)
            repr_ = self.cfg.repr_weight * (omega * l1).mean(0).sum()
        return GDLosses(logit=logit, reg=reg, repr=repr_)
