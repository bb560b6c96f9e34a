"""MulT-style transformer encoder (spec §2, "TransformerEncoder"), used for self-attention and cross-modal attention.

Differences from ``torch.nn.TransformerEncoder`` that matter for fidelity: the input is scaled by sqrt(E) and gets
a sinusoidal positional embedding (sin and cos halves concatenated, positions counted from 1); layers are
pre-LayerNorm with one LayerNorm shared by query, key and value; in cross-attention the keys/values are the
embedded source sequence, held fixed across layers; a final LayerNorm closes the stack.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_positions(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Embed integer positions (any shape, 0 = padding -> zero vector) into `dim` channels.

    Channels are [sin(p*w_i) for i < dim/2] + [cos(p*w_i)], w_i = 10000^(-i/(dim/2 - 1)), zero-padded when
    `dim` is odd (fairseq's table, as MulT uses it).
    """
    half = dim // 2
    step = math.log(10000) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, device=positions.device, dtype=torch.float32) * -step)
    angles = positions.to(torch.float32).unsqueeze(-1) * freqs
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb * (positions != 0).unsqueeze(-1).to(emb.dtype)


def causal_mask(t_q: int, t_k: int, device: torch.device) -> torch.Tensor:
    """MulT's additive future mask: -inf where key j > i + |T_k - T_q|; the last query sees every key."""
    full = torch.full((t_q, t_k), float("-inf"), device=device)
    return torch.triu(full, diagonal=1 + abs(t_k - t_q))


class MultiheadAttention(nn.Module):
    """Multi-head scaled dot-product attention with one packed in-projection (as MulT's), xavier-uniform weights
    and zero biases. A lean replacement for ``nn.MultiheadAttention``, whose per-call checks dominate at the small
    sizes the live preset runs (24 attention calls per window)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(
        self, q: torch.Tensor, kv: torch.Tensor, mask: torch.Tensor | None, v: torch.Tensor | None = None
    ) -> torch.Tensor:
        """q: (T_q, B, E), kv: (T_k, B, E) keys (and values unless `v` is given); mask: additive, broadcastable to
        (B, H, T_q, T_k), or None. v: (T_k, B, E) values when they differ from the keys (MulT's cross-attention in
        training: keys and values are the same source with separate embedding-dropout masks)."""
        t_q, bsz, dim = q.shape
        t_k = kv.shape[0]
        h, hd = self.heads, dim // self.heads
        if q is kv and (v is None or v is kv):
            qp, kp, vp = F.linear(q, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        elif v is not None and v is not kv:
            w_q, w_k, w_v = self.in_proj_weight.chunk(3)
            b_q, b_k, b_v = self.in_proj_bias.chunk(3)
            qp, kp, vp = F.linear(q, w_q, b_q), F.linear(kv, w_k, b_k), F.linear(v, w_v, b_v)
        else:
            w_q, w_kv = self.in_proj_weight.split([dim, 2 * dim])
            b_q, b_kv = self.in_proj_bias.split([dim, 2 * dim])
            qp = F.linear(q, w_q, b_q)
            kp, vp = F.linear(kv, w_kv, b_kv).chunk(2, dim=-1)
        # (T, B, E) -> (B, H, T, hd)
        qp = qp.reshape(t_q, bsz, h, hd).permute(1, 2, 0, 3)
        kp = kp.reshape(t_k, bsz, h, hd).permute(1, 2, 0, 3)
        vp = vp.reshape(t_k, bsz, h, hd).permute(1, 2, 0, 3)
        out = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.permute(2, 0, 1, 3).reshape(t_q, bsz, dim))


class EncoderLayer(nn.Module):
    """Pre-LN layer: x + MHA(LN0(x), LN0(kv), LN0(kv)), then x + FC2(ReLU(FC1(LN1(x))))."""

    def __init__(self, dim: int, heads: int, attn_dropout: float, relu_dropout: float, res_dropout: float):
        super().__init__()
        self.attn = MultiheadAttention(dim, heads, attn_dropout)
        self.norm_attn = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        self.norm_ff = nn.LayerNorm(dim)
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout

    def forward(
        self, x: torch.Tensor, kv: torch.Tensor | None, mask: torch.Tensor | None, v: torch.Tensor | None = None
    ) -> torch.Tensor:
        q = self.norm_attn(x)
        k = q if kv is None else self.norm_attn(kv)  # same LayerNorm for query, key and value (MulT)
        vn = None if (v is None or v is kv) else self.norm_attn(v)
        h = self.attn(q, k, mask, vn)
        if self.training:
            h = F.dropout(h, self.res_dropout, True)
        x = x + h
        h = F.relu(self.fc1(self.norm_ff(x)))
        if self.training:
            h = F.dropout(h, self.relu_dropout, True)
        h = self.fc2(h)
        if self.training:
            h = F.dropout(h, self.res_dropout, True)
        return x + h


class TransformerEncoder(nn.Module):
    """A stack of `EncoderLayer`s over sequence-first tensors (T, B, E).

    Args:
        dim: embedding size E.
        heads: attention heads.
        layers: number of layers.
        attn_dropout: dropout on attention weights (chosen by the key/value modality, MulT convention).
        relu_dropout, res_dropout, embed_dropout: dropout after FC1's ReLU, on residual branches, after embedding.
        causal: apply `causal_mask`.
        padding_from_zero: MulT treats a step whose (unscaled) input channel 0 is exactly 0 as padding for the
            positional embedding: that step gets a zero vector, every other step its absolute position 1..T
            (fairseq ``make_positions``). Off in the live preset, which passes explicit key-padding masks instead.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        layers: int,
        attn_dropout: float = 0.0,
        relu_dropout: float = 0.0,
        res_dropout: float = 0.0,
        embed_dropout: float = 0.0,
        causal: bool = False,
        padding_from_zero: bool = True,
    ):
        super().__init__()
        self.dim = dim
        self.scale = math.sqrt(dim)
        self.embed_dropout = embed_dropout
        self.causal = causal
        self.padding_from_zero = padding_from_zero
        self._table_cache: dict = {}
        self.layers = nn.ModuleList(
            EncoderLayer(dim, heads, attn_dropout, relu_dropout, res_dropout) for _ in range(layers)
        )
        self.norm_out = nn.LayerNorm(dim)

    def _positions(self, x: torch.Tensor) -> torch.Tensor:
        # int(): under torch.jit.trace a size is a traced tensor, and as a key it would miss the table on every call
        t = int(x.shape[0])
        key = (t, x.device)
        table = self._table_cache.get(key)
        if table is None:  # positions 0..T never change: compute the table once per length (row 0, padding, is 0)
            table = sinusoidal_positions(torch.arange(0, t + 1, device=x.device).unsqueeze(1), self.dim)
            self._table_cache[key] = table
        if self.padding_from_zero:
            # fairseq make_positions (right padding): step t keeps its absolute position t (1-based) and a
            # padding step gets 0, e.g. channel 0 = [a, b, 0, c] -> positions [1, 2, 0, 4]. Later steps are not
            # renumbered around the padding. Looked up in the table: the same values as computing them per step
            real = (x[:, :, 0] != 0).long()
            absolute = torch.arange(1, t + 1, device=x.device).unsqueeze(1)
            return F.embedding(absolute * real, table[:, 0])
        return table[1:]

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        h = self.scale * x + self._positions(x).to(x.dtype)
        return F.dropout(h, self.embed_dropout, True) if self.training else h

    def _embed_kv(self, kv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded keys and values of a cross-attention source. The reference embeds the source twice, once as
        keys and once as values, so in training each gets its own embedding-dropout mask; otherwise they are one
        tensor (the attention then projects it in one packed call)."""
        k = self._embed(kv)
        if self.training and self.embed_dropout > 0:
            return k, self._embed(kv)
        return k, k

    def forward(
        self, x: torch.Tensor, kv: torch.Tensor | None = None, key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (T_q, B, E); kv: (T_k, B, E) for cross-attention or None; key_padding_mask: (B, T_k), True = pad."""
        h = self._embed(x)
        kv_h, v_h = (None, None) if kv is None else self._embed_kv(kv)
        t_k = x.shape[0] if kv is None else kv.shape[0]
        mask = causal_mask(x.shape[0], t_k, x.device) if self.causal else None
        if key_padding_mask is not None:  # built once for all layers: (B, 1, 1, T_k) additive
            pad = torch.zeros(key_padding_mask.shape, dtype=h.dtype, device=h.device)
            pad = pad.masked_fill(key_padding_mask, float("-inf")).view(h.shape[1], 1, 1, t_k)
            mask = pad if mask is None else pad + mask
        for layer in self.layers:
            h = layer(h, kv_h, mask, v_h)
        return self.norm_out(h)
