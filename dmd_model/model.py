"""DMD: Decoupled Multimodal Distilling (Li, Wang, Cui, CVPR 2023), spec §2.

Reading order of `DMD.forward`, in the paper's terms:

1. temporal Conv1d projection of each modality to width d (X~_m);
2. decoupling: a *shared* (modality-irrelevant) encoder and one *private* (modality-exclusive) encoder per
   modality;
3. self-regression: a decoder reconstructs X~_m from [private, shared], and the private encoder re-encodes the
   reconstruction;
4. homogeneous branch on the shared features: per-modality heads, HomoGD edges, and a self-attention fusion;
5. heterogeneous branch on the private features: cross-modal transformers (each modality attends to the other
   two), per-modality heads, HeteroGD edges;
6. fusion of both branches and the final prediction.

Modalities are always indexed 0 = language, 1 = visual, 2 = acoustic.

Live preset: each head outputs [valence, 7 class logits]. The GD-Units cannot compare raw class logits (they are
shift-invariant, so an L1 distance between them means nothing); they see `distill_targets`: valence plus the
class *probabilities*, and the logit distance is |dvalence| + 0.5 * sum|dp| (valence L1 plus total variation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import SCORE_EPS, DMDConfig
from .gd_unit import GDUnit, edges_to_matrix
from .transformer import TransformerEncoder

L, V, A = 0, 1, 2
NAMES = ("language", "visual", "acoustic")


@dataclass
class DMDOutput:
    """Everything `DMD.forward` produces. Per-modality tensors are stacked in (L, V, A) order on dim 1.

    Attributes:
        prediction: (B, out) fused output y^ = [valence] + class logits; the only output used at test time.
        homo_logits: (B, 3, out) heads on the shared features (l^homo_m).
        hetero_logits: (B, 3, out) heads on the cross-modally enhanced private features (l^het_m).
        shared_fusion_logits: (B, out) head on the self-attention fusion of the shared features (l^c).
        homo_repr: (B, 3, d) post-ReLU hidden of the homogeneous heads (r_m).
        hetero_repr: (B, 3, 2d) post-residual hetero features (q_m).
        homo_edges, hetero_edges: (B, 6) edge weights in spec order (V→L, A→L, L→V, A→V, L→A, V→A).
        homo_edge_matrix, hetero_edge_matrix: (B, 3, 3) W[teacher, student].
        projected, reconstructed, private, private_cycle, shared: per-modality lists of (B, d, T'_m): X~_m, R_m,
            S_m, S^r_m = E^prt_m(R_m), C_m.
        margin_embeddings: (B, 3, d) u_m for the margin loss.
        step_mask: per-modality (B, T'_m) bool, True at valid (non-padding) steps of present modalities.
        present: (B, 3) bool presence mask actually used.
    """

    prediction: torch.Tensor
    homo_logits: torch.Tensor
    hetero_logits: torch.Tensor
    shared_fusion_logits: torch.Tensor
    homo_repr: torch.Tensor
    hetero_repr: torch.Tensor
    homo_edges: torch.Tensor
    hetero_edges: torch.Tensor
    projected: list[torch.Tensor]
    reconstructed: list[torch.Tensor]
    private: list[torch.Tensor]
    private_cycle: list[torch.Tensor]
    shared: list[torch.Tensor]
    margin_embeddings: torch.Tensor
    step_mask: list[torch.Tensor]
    present: torch.Tensor

    @property
    def homo_edge_matrix(self) -> torch.Tensor:
        return edges_to_matrix(self.homo_edges)

    @property
    def hetero_edge_matrix(self) -> torch.Tensor:
        return edges_to_matrix(self.hetero_edges)


class ResidualHead(nn.Module):
    """Linear -> ReLU -> Dropout -> Linear, plus the input, then Linear to the outputs.

    The returned representation is the post-ReLU hidden (`r_m`, homo heads) when `repr_is_hidden`, else the
    post-residual feature (`q_m`, hetero heads), as the reference returns them.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float, repr_is_hidden: bool):
        super().__init__()
        self.proj1 = nn.Linear(in_dim, hidden)
        self.proj2 = nn.Linear(hidden, in_dim)
        self.out = nn.Linear(in_dim, out_dim)
        self.dropout = dropout
        self.repr_is_hidden = repr_is_hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = F.relu(self.proj1(x))
        residual = self.proj2(F.dropout(hidden, self.dropout, self.training)) + x
        return self.out(residual), (hidden if self.repr_is_hidden else residual)


class DMD(nn.Module):
    """The DMD network and its two GD-Units (HomoGD, HeteroGD), built from a `DMDConfig`."""

    def __init__(self, cfg: DMDConfig):
        super().__init__()
        self.cfg = cfg
        d, out = cfg.d_model, cfg.out_dim
        self.text_encoder = None
        if cfg.text_encoder is not None:
            from .text_encoder import load_text_encoder

            self.text_encoder = load_text_encoder(cfg.text_encoder, finetune=cfg.finetune_text_encoder)

        # Input statistics (identity by default); training fills them for the live preset so that the
        # checkpoint carries its own normalisation.
        for m, dim in zip(NAMES, cfg.input_dims):
            self.register_buffer(f"input_mean_{m}", torch.zeros(dim))
            self.register_buffer(f"input_std_{m}", torch.ones(dim))

        # 1. temporal projection (no bias, as the reference)
        pad = "same" if cfg.conv_padding == "same" else 0
        self.project = nn.ModuleList(
            nn.Identity()
            if (cfg.skip_proj_if_equal and cfg.input_dims[m] == d)
            else nn.Conv1d(cfg.input_dims[m], d, cfg.conv_kernels[m], padding=pad, bias=False)
            for m in range(3)
        )
        # 2. decoupling: one private encoder per modality, one shared encoder for all
        self.private_encoders = nn.ModuleList(nn.Conv1d(d, d, 1, bias=False) for _ in range(3))
        self.shared_encoder = nn.Conv1d(d, d, 1, bias=False)
        # 3. self-regression decoders: [private, shared] -> X~_m
        self.decoders = nn.ModuleList(nn.Conv1d(2 * d, d, 1, bias=False) for _ in range(3))

        # 4. homogeneous heads; width depends on length only in the faithful flatten mode
        if cfg.temporal_pooling == "flatten":
            flat = [cfg.projected_len(m, cfg.seq_lens[m]) * d for m in range(3)]
            self.homo_heads = nn.ModuleList(
                ResidualHead(flat[m], d, out, cfg.output_dropout, True) for m in range(3)
            )
            self.margin_proj = nn.ModuleList(nn.Linear(flat[m], d) for m in range(3))
        else:
            self.homo_heads = nn.ModuleList(ResidualHead(d, d, out, cfg.output_dropout, True) for _ in range(3))
            self.margin_proj = nn.ModuleList(nn.Linear(d, d) for _ in range(3))

        # attention dropout is chosen by the key/value (source) modality, as MulT does
        src_dropout = (cfg.attn_dropout, cfg.attn_dropout_v, cfg.attn_dropout_a)

        def encoder(dim: int, source: int, layers: int) -> TransformerEncoder:
            return TransformerEncoder(
                dim,
                cfg.num_heads,
                layers,
                attn_dropout=src_dropout[source],
                relu_dropout=cfg.relu_dropout,
                res_dropout=cfg.res_dropout,
                embed_dropout=cfg.embed_dropout,
                causal=cfg.attn_mask,
                padding_from_zero=cfg.pe_padding_from_zero,
            )

        self.shared_self_attention = nn.ModuleList(encoder(d, m, cfg.num_layers) for m in range(3))
        self.shared_fusion_head = ResidualHead(3 * d, 3 * d, out, cfg.output_dropout, False)

        # 5. heterogeneous branch: cross-modal transformers, keyed "target<-source"
        self.cross_pairs = {L: (A, V), V: (L, A), A: (L, V)}  # MulT's concat order per target
        self.cross_modal = nn.ModuleDict(
            {f"{t}<-{s}": encoder(d, s, cfg.num_layers) for t, sources in self.cross_pairs.items() for s in sources}
        )
        mem_layers = cfg.mem_layers if cfg.mem_layers is not None else max(cfg.num_layers, 3)
        self.memory = nn.ModuleList(encoder(2 * d, L, mem_layers) for _ in range(3))
        self.hetero_heads = nn.ModuleList(ResidualHead(2 * d, 2 * d, out, cfg.output_dropout, False) for _ in range(3))

        # GD-Units
        gd_dim = out
        dist_w = torch.tensor([1.0] * int(cfg.regression) + [0.5] * cfg.num_classes)
        self.homo_gd = GDUnit(gd_dim, d, cfg.homo_gd, dist_w)
        self.hetero_gd = GDUnit(gd_dim, 2 * d, cfg.hetero_gd, dist_w)

        # 6. final fusion: each block replaced by sigmoid(Linear(block)), then a residual MLP
        self.fusion_gates = nn.ModuleList([nn.Linear(2 * d, 2 * d) for _ in range(3)] + [nn.Linear(3 * d, 3 * d)])
        self.fusion_head = ResidualHead(9 * d, 9 * d, out, cfg.output_dropout, False)

    # ------------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def score_logits(self, m: int, x: torch.Tensor) -> torch.Tensor:
        """Modality ``m``'s raw input with its leading ``cfg.score_dims[m]`` 0-1 scores as log-odds (the input
        statistics are taken after this, see `trainer.compute_input_stats`)."""
        k = self.cfg.score_dims[m]
        if not k:
            return x
        s = x[..., :k].clamp(SCORE_EPS, 1.0 - SCORE_EPS)
        return torch.cat([torch.log(s) - torch.log1p(-s), x[..., k:]], dim=-1)

    def distill(self, homo_logits: list, hetero_logits: list, homo_repr: list, hetero_repr: list, present):
        """Stack the per-modality heads into (B, 3, .) in modality order and score both graphs' edges on them
        (HomoGD on the shared branch, HeteroGD on the cross-modally enhanced private branch)."""
        homo_logits_t, hetero_logits_t = torch.stack(homo_logits, 1), torch.stack(hetero_logits, 1)
        homo_repr_t, hetero_repr_t = torch.stack(homo_repr, 1), torch.stack(hetero_repr, 1)
        gd_present = present if self.cfg.use_masks else None
        homo_edges = self.homo_gd.edges(self.distill_targets(homo_logits_t), homo_repr_t, gd_present)
        hetero_edges = self.hetero_gd.edges(self.distill_targets(hetero_logits_t), hetero_repr_t, gd_present)
        return homo_logits_t, hetero_logits_t, homo_repr_t, hetero_repr_t, homo_edges, hetero_edges

    def fusion_keep(self, present: torch.Tensor) -> torch.Tensor:
        """(B, 9d) mask over the fused vector: each modality's enhanced block (2d) where it is present, the shared
        fusion block (3d) where any is, so an absent modality feeds zeros, not its gate's bias, to the fusion head."""
        bsz, d = present.shape[0], self.cfg.d_model
        return torch.cat(
            [present[:, m : m + 1].expand(bsz, 2 * d) for m in range(3)] + [present.any(1, keepdim=True).expand(bsz, 3 * d)],
            dim=-1,
        )

    def distill_targets(self, logits: torch.Tensor) -> torch.Tensor:
        """What the GD-Units compare: the valence score as is, the class logits as probabilities."""
        if not self.cfg.num_classes:
            return logits
        r = int(self.cfg.regression)
        return torch.cat([logits[..., :r], torch.softmax(logits[..., r:], dim=-1)], dim=-1)

    def _encode_text(self, language: torch.Tensor) -> torch.Tensor:
        if self.text_encoder is None:
            return language
        # (B, 3, T): input ids, attention mask, token-type ids (MMSA text_bert layout)
        ids, mask, types = language[:, 0].long(), language[:, 1].float(), language[:, 2].long()
        return self.text_encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    def forward(
        self,
        language: torch.Tensor,
        visual: torch.Tensor,
        acoustic: torch.Tensor,
        lengths: torch.Tensor | None = None,
        present: torch.Tensor | None = None,
    ) -> DMDOutput:
        """Score a batch.

        Args:
            language: (B, T_L, D_L) token features, or (B, 3, T_L) token ids/mask/types with a text encoder.
            visual: (B, T_V, D_V) frames. acoustic: (B, T_A, D_A) frames.
            lengths: (B, 3) valid steps per modality (L, V, A); None = full length. Used when `cfg.use_masks`.
            present: (B, 3) bool, False for an absent modality (no face, silence, no words). None = all present.
        """
        cfg = self.cfg
        text = self._encode_text(language)
        inputs = [text, visual, acoustic]
        bsz = text.shape[0]
        dev = text.device
        for m, x in enumerate(inputs):
            if x.dim() != 3 or x.shape[0] != bsz or x.shape[2] != cfg.input_dims[m]:
                raise ValueError(
                    f"{NAMES[m]} input has shape {tuple(x.shape)}; expected (B={bsz}, T, {cfg.input_dims[m]})"
                )
        if present is None:
            present = torch.ones(bsz, 3, dtype=torch.bool, device=dev)
        present = present.to(dev, torch.bool)
        if not cfg.use_masks:
            present = torch.ones_like(present)

        projected, private, shared, step_masks = [], [], [], []
        for m, x in enumerate(inputs):
            x = (self.score_logits(m, x) - getattr(self, f"input_mean_{NAMES[m]}")) / getattr(self, f"input_std_{NAMES[m]}")
            t = x.shape[1]
            if cfg.use_masks:
                n = lengths[:, m].to(dev) if lengths is not None else torch.full((bsz,), t, device=dev)
                n = torch.where(present[:, m], n.clamp(1, t), torch.ones_like(n))
                valid = torch.arange(t, device=dev).unsqueeze(0) < n.unsqueeze(1)
                # padding and absent modalities enter as zeros, so their content cannot leak in
                x = torch.where((valid & present[:, m : m + 1]).unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=dev))
            if m == L:
                x = F.dropout(x, cfg.text_dropout, self.training)
            x_proj = self.project[m](x.transpose(1, 2))  # (B, d, T'_m)
            tp = x_proj.shape[2]
            if cfg.use_masks:
                step_mask = valid[:, :tp] & present[:, m : m + 1]
            else:
                step_mask = torch.ones(bsz, tp, dtype=torch.bool, device=dev)
            projected.append(x_proj)
            private.append(self.private_encoders[m](x_proj))
            shared.append(self.shared_encoder(x_proj))
            step_masks.append(step_mask)

        # 3. self-regression
        reconstructed = [self.decoders[m](torch.cat([private[m], shared[m]], dim=1)) for m in range(3)]
        private_cycle = [self.private_encoders[m](reconstructed[m]) for m in range(3)]

        # key-padding masks (True = ignore); keep step 0 visible so an absent modality yields defined zeros
        pad = [None] * 3
        if cfg.use_masks:
            pad = []
            for sm in step_masks:
                kpm = ~sm
                kpm[:, 0] = False
                pad.append(kpm)
        last = [self._last_index(step_masks[m]) for m in range(3)]

        # 4. homogeneous branch on the shared features
        homo_logits, homo_repr, margin = [], [], []
        for m in range(3):
            pooled = self._pool(shared[m], step_masks[m])
            logit, rep = self.homo_heads[m](pooled)
            homo_logits.append(logit)
            homo_repr.append(rep)
            margin_in = pooled if cfg.temporal_pooling == "mean" else shared[m].flatten(1)  # channel-major
            margin.append(self.margin_proj[m](margin_in))
        shared_seq = [c.permute(2, 0, 1) for c in shared]  # (T', B, d)
        attended = [
            self._read(self.shared_self_attention[m](shared_seq[m], key_padding_mask=pad[m]), last[m])
            for m in range(3)
        ]
        attended = [a * present[:, m : m + 1] for m, a in enumerate(attended)]
        shared_fusion = torch.cat(attended, dim=-1)  # (B, 3d)
        shared_fusion_logits, _ = self.shared_fusion_head(shared_fusion)

        # 5. heterogeneous branch on the private features
        private_seq = [s.permute(2, 0, 1) for s in private]
        hetero_logits, hetero_repr, enhanced = [], [], []
        for t, sources in self.cross_pairs.items():
            h = torch.cat(
                [self.cross_modal[f"{t}<-{s}"](private_seq[t], private_seq[s], key_padding_mask=pad[s]) for s in sources],
                dim=-1,
            )
            z = self._read(self.memory[t](h, key_padding_mask=pad[t]), last[t]) * present[:, t : t + 1]
            logit, rep = self.hetero_heads[t](z)
            enhanced.append(z)
            hetero_logits.append(logit)
            hetero_repr.append(rep)
        # cross_pairs iterates L, V, A, so the lists are in modality order
        homo_logits_t, hetero_logits_t, homo_repr_t, hetero_repr_t, homo_edges, hetero_edges = self.distill(
            homo_logits, hetero_logits, homo_repr, hetero_repr, present
        )

        # 6. fusion
        blocks = enhanced + [shared_fusion]
        fused = torch.cat([torch.sigmoid(gate(b)) for gate, b in zip(self.fusion_gates, blocks)], dim=-1)
        if cfg.use_masks:
            fused = fused * self.fusion_keep(present)
        prediction, _ = self.fusion_head(fused)

        return DMDOutput(
            prediction=prediction,
            homo_logits=homo_logits_t,
            hetero_logits=hetero_logits_t,
            shared_fusion_logits=shared_fusion_logits,
            homo_repr=homo_repr_t,
            hetero_repr=hetero_repr_t,
            homo_edges=homo_edges,
            hetero_edges=hetero_edges,
            projected=projected,
            reconstructed=reconstructed,
            private=private,
            private_cycle=private_cycle,
            shared=shared,
            margin_embeddings=torch.stack(margin, 1),
            step_mask=step_masks,
            present=present,
        )

    def infer(self, language, visual, acoustic, lengths=None, present=None):
        """The scoring forward (eval mode): heads, fusion and edges only, faster; see `dmd_model.inference`."""
        from .inference import infer

        return infer(self, language, visual, acoustic, lengths, present)

    # ------------------------------------------------------------------------------------------------------
    def _pool(self, x: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
        """(B, d, T) -> (B, d) masked mean (live), or (B, T*d) time-major flatten (faithful)."""
        if self.cfg.temporal_pooling == "flatten":
            return x.permute(0, 2, 1).flatten(1)
        w = step_mask.unsqueeze(1).to(x.dtype)
        return (x * w).sum(-1) / w.sum(-1).clamp_min(1.0)

    def _last_index(self, step_mask: torch.Tensor) -> torch.Tensor | None:
        if self.cfg.readout != "last_valid":
            return None
        return (step_mask.sum(1) - 1).clamp_min(0)

    @staticmethod
    def _read(h: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
        """(T, B, E) -> (B, E): the last step, or the last valid step per sample."""
        if last is None:
            return h[-1]
        return h[last, torch.arange(h.shape[1], device=h.device)]

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
