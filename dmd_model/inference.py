"""The scoring forward of DMD: only what a prediction needs, from the same weights as `DMD.forward`.

`DMD.forward` is the training forward and the reference: it also computes what only the objective needs (the
self-regression decoders and reconstructions, the cycle re-encoding, the margin projections). `infer` computes the
heads, the fusion and both GD-Units' edges, and nothing else, with the same weights and the same arithmetic up to
float rounding (tests/dmd/test_inference.py holds the two to 1e-5). Why it is faster:

- nothing the objective alone needs is computed;
- the self-attention and memory transformers are read at one step (the last, or the last valid one), so their last
  layer runs its query, feed-forward and final LayerNorm on that step only (the keys and values still see every
  step); everything before the last layer is needed in full;
- batch-first (B, T, E) activations: the in-projections view straight into the (B, H, T, hd) layout that
  ``scaled_dot_product_attention`` takes and its output views back without a copy;
- layers are applied with ``torch.nn.functional`` on the modules' parameters (no module-call machinery), key-padding
  masks are built once per modality instead of once per transformer;
- each source modality is embedded and normalised once for the cross-modal transformers, and every layer's
  keys/values come from that one normalised sequence with its LayerNorm affine folded into the weights
  (`_cross_keys_values`), projected just before the layer runs; the private and shared encoders are one matmul; the
  input std divides the temporal conv's weights, not the input;
- attention is written out (matmul, softmax, matmul) below head dimension `SDPA_MIN_HEAD_DIM`, where it beats SDPA;
- under MulT's future mask, attention over `CAUSAL_SPLIT_MIN_STEPS` or more queries is written out at any head
  dimension and runs in two blocks of queries, the first over the keys it can see: a quarter less score, softmax
  and weighting work (MOSI/MOSEI);
- widths come from the weights, not the activations, so a frozen trace (`compiled.TracedScores`) folds all of the
  weight-side work above into constants.

Dropout is never applied: the path is for eval mode only and refuses a model in training mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import torch
import torch.nn.functional as F

from .gd_unit import edges_to_matrix
from .transformer import TransformerEncoder, causal_mask

if TYPE_CHECKING:
    from .model import DMD

NAMES = ("language", "visual", "acoustic")


@dataclass
class DMDScores:
    """What `infer` returns: the scoring subset of `DMDOutput`, same shapes and meanings.

    Attributes:
        prediction: (B, out) fused output y^ = [valence] + class logits.
        homo_logits, hetero_logits: (B, 3, out) per-modality heads (L, V, A).
        shared_fusion_logits: (B, out) head on the self-attention fusion of the shared features.
        homo_repr: (B, 3, d), hetero_repr: (B, 3, 2d): what the GD-Units see next to the logits.
        homo_edges, hetero_edges: (B, 6) edge weights in spec order (V→L, A→L, L→V, A→V, L→A, V→A).
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
    present: torch.Tensor

    @property
    def homo_edge_matrix(self) -> torch.Tensor:
        return edges_to_matrix(self.homo_edges)

    @property
    def hetero_edge_matrix(self) -> torch.Tensor:
        return edges_to_matrix(self.hetero_edges)


def infer(
    model: "DMD",
    language: torch.Tensor,
    visual: torch.Tensor,
    acoustic: torch.Tensor,
    lengths: torch.Tensor | None = None,
    present: torch.Tensor | None = None,
) -> DMDScores:
    """Score a batch with `model` (in eval mode) under ``torch.inference_mode``; arguments as `DMD.forward`."""
    if model.training:
        raise RuntimeError("DMD.infer is the eval-mode scoring path: call model.eval() first (training uses forward)")
    with torch.inference_mode():
        return scores(model, language, visual, acoustic, lengths, present)


def scores(model: "DMD", language, visual, acoustic, lengths=None, present=None) -> DMDScores:
    """`infer` without its mode switches (for tracing/export). Follows `DMD.forward` step for step."""
    cfg = model.cfg
    text = model._encode_text(language)
    inputs = (text, visual, acoustic)
    bsz = text.shape[0]
    dev = text.device
    for m, x in enumerate(inputs):
        if x.dim() != 3 or x.shape[0] != bsz or x.shape[2] != cfg.input_dims[m]:
            raise ValueError(f"{NAMES[m]} input has shape {tuple(x.shape)}; expected (B={bsz}, T, {cfg.input_dims[m]})")
    if present is None or not cfg.use_masks:
        present = torch.ones(bsz, 3, dtype=torch.bool, device=dev)
    present = present.to(dev, torch.bool)

    private, shared, step_masks, masks, read = [], [], [], [], []
    for m, x in enumerate(inputs):
        proj = model.project[m]
        conv = isinstance(proj, torch.nn.Conv1d)
        std = getattr(model, f"input_std_{NAMES[m]}")
        # a new tensor, not the caller's: the in-place ops below may write it
        x = model.score_logits(m, x) - getattr(model, f"input_mean_{NAMES[m]}")
        if not conv:
            x.div_(std)  # with a conv, the division by the input std moves into its weights (below): one pass fewer
        t = x.shape[1]
        here = present[:, m : m + 1]
        if cfg.use_masks:
            n = lengths[:, m].to(dev) if lengths is not None else torch.full((bsz,), t, device=dev)
            n = torch.where(here[:, 0], n.clamp(1, t), torch.ones_like(n))
            valid = torch.arange(t, device=dev).unsqueeze(0) < n.unsqueeze(1)
            # in place: a batch's input is megabytes, and a fresh copy of it costs page faults, not just a pass
            x.masked_fill_(~(valid & here).unsqueeze(-1), 0.0)
        if conv:
            x = _temporal_conv(x, proj.weight / std.view(1, -1, 1), proj.padding)
        tp = x.shape[1]
        # the private and the shared encoder (both bias-free 1x1 convs) as one matmul: [S_m ; C_m] side by side
        both = torch.matmul(x, torch.cat([model.private_encoders[m].weight[:, :, 0], model.shared_encoder.weight[:, :, 0]]).t())
        private.append(both[..., : cfg.d_model])
        shared.append(both[..., cfg.d_model :])
        if cfg.use_masks:
            sm = valid[:, :tp] & here
            step_masks.append(sm)
            # additive key-padding mask (B, 1, 1, T'); step 0 stays visible so an absent modality reads defined zeros
            kpm = ~sm
            kpm[:, 0] = False
            masks.append(torch.zeros(kpm.shape, dtype=x.dtype, device=dev).masked_fill(kpm, float("-inf")).view(bsz, 1, 1, tp))
        else:
            step_masks.append(None)
            masks.append(None)
        # DMD._last_index; without masks every step is valid, so the last valid step is the last one
        read.append((sm.sum(1) - 1).clamp_min(0) if cfg.readout == "last_valid" and cfg.use_masks else -1)

    causal = cfg.attn_mask
    # 4. homogeneous branch
    homo_logits, homo_repr, attended = [], [], []
    for m in range(3):
        c = shared[m]
        if cfg.temporal_pooling == "flatten":
            pooled = c.flatten(1)  # time-major, as DMD._pool
        else:
            w = step_masks[m].unsqueeze(-1).to(c.dtype)
            pooled = (c * w).sum(1) / w.sum(1).clamp_min(1.0)
        logit, rep = _head(model.homo_heads[m], pooled)
        homo_logits.append(logit)
        homo_repr.append(rep)
        a = encode(model.shared_self_attention[m], c, None, masks[m], read[m], causal)
        attended.append(a * present[:, m : m + 1])
    shared_fusion = torch.cat(attended, dim=-1)
    shared_fusion_logits, _ = _head(model.shared_fusion_head, shared_fusion)

    # 5. heterogeneous branch
    hetero_logits, hetero_repr, enhanced = [], [], []
    keys_values = _cross_keys_values(model, private)
    for t, sources in model.cross_pairs.items():
        h = torch.cat(
            [encode(model.cross_modal[f"{t}<-{s}"], private[t], keys_values[f"{t}<-{s}"], masks[s], None, causal)
             for s in sources],
            dim=-1,
        )
        z = encode(model.memory[t], h, None, masks[t], read[t], causal) * present[:, t : t + 1]
        logit, rep = _head(model.hetero_heads[t], z)
        enhanced.append(z)
        hetero_logits.append(logit)
        hetero_repr.append(rep)
    homo_logits_t, hetero_logits_t, homo_repr_t, hetero_repr_t, homo_edges, hetero_edges = model.distill(
        homo_logits, hetero_logits, homo_repr, hetero_repr, present
    )

    # 6. fusion
    blocks = enhanced + [shared_fusion]
    fused = torch.cat([torch.sigmoid(F.linear(b, g.weight, g.bias)) for g, b in zip(model.fusion_gates, blocks)], dim=-1)
    if cfg.use_masks:
        fused = fused * model.fusion_keep(present)
    prediction, _ = _head(model.fusion_head, fused)
    return DMDScores(
        prediction=prediction,
        homo_logits=homo_logits_t,
        hetero_logits=hetero_logits_t,
        shared_fusion_logits=shared_fusion_logits,
        homo_repr=homo_repr_t,
        hetero_repr=hetero_repr_t,
        homo_edges=homo_edges,
        hetero_edges=hetero_edges,
        present=present,
    )


def _temporal_conv(x: torch.Tensor, weight: torch.Tensor, padding) -> torch.Tensor:
    """The bias-free temporal Conv1d, batch-first: (B, T, D_in) -> (B, T', d), without transposing the input.

    One matmul gives every tap's contribution at every step, taps[b, t, j] = W[:, :, j] @ x[b, t]; output step t
    sums tap j at input step t + j - p (zero outside the input), p = (k - 1) // 2 for ``"same"`` padding (T' = T)
    and 0 for none (T' = T - k + 1), exactly Conv1d's cross-correlation.
    """
    d, d_in, k = weight.shape
    bsz, t, _ = x.shape
    same = isinstance(padding, str)
    if (same and padding != "same") or (not same and tuple(padding) != (0,)):
        raise ValueError(f"unsupported Conv1d padding {padding!r}")
    p = (k - 1) // 2 if same else 0
    t_out = t if same else t - k + 1
    taps = torch.matmul(x, weight.permute(1, 2, 0).reshape(d_in, k * d)).view(bsz, t, k, d)
    out = taps[:, :t_out, p].clone()  # the tap with offset 0 covers every output step
    for j in range(k):
        s = j - p
        if s:
            lo, hi = max(0, -s), min(t_out, t - s)
            out[:, lo:hi] += taps[:, lo + s : hi + s, j]
    return out


def _head(head, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`ResidualHead.forward` in eval mode."""
    hidden = F.relu(F.linear(x, head.proj1.weight, head.proj1.bias))
    residual = F.linear(hidden, head.proj2.weight, head.proj2.bias) + x
    return F.linear(residual, head.out.weight, head.out.bias), (hidden if head.repr_is_hidden else residual)


class SourceKeys(NamedTuple):
    """What one cross-modal layer's keys and values are projected from (`keys_values`): the source's normalised
    embedding ``x^`` (B, T_s, E), shared by every layer that reads the source, and the layer's key/value
    in-projection with its LayerNorm affine folded in, (2E, E) and (2E,)."""

    normalised: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    heads: int

    def keys_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's keys and values, (B, H, T_s, hd) each."""
        return _project_keys_values(self.normalised, self.weight, self.bias, self.heads)


def _cross_keys_values(model: "DMD", private: list[torch.Tensor]) -> dict[str, list[SourceKeys]]:
    """Every cross-modal layer's `SourceKeys`, keyed like `DMD.cross_modal`.

    A source modality's private sequence feeds two cross-modal transformers, and in each layer the keys/values are
    ``LN_l(embed(S_s)) @ W_kv,l + b_kv,l``. The embedding is the same in both transformers (same width, scale and
    positions: they are built alike in `DMD.__init__`), and a LayerNorm's affine folds into the projection after it
    (``(x^ * w + b) @ W^T = x^ @ (W * w)^T + W b``), so each source is embedded and normalised once. Each layer
    projects its own keys and values just before it runs: one wide matmul for all layers up front kept every
    layer's keys alive through the branch, and was 5 to 8% slower at MOSI batch 16 and 64 (docs/speed.md 3e).
    Under `torch.jit.freeze` the folded weights are constants.
    """
    out: dict[str, list] = {}
    for s in range(3):
        users = [f"{t}<-{s}" for t, sources in model.cross_pairs.items() if s in sources]
        first = model.cross_modal[users[0]].layers[0]
        dim = _width(first.attn)
        src = model.cross_modal[users[0]]._embed(private[s].transpose(0, 1)).transpose(0, 1)  # (B, T_s, E)
        x_hat = F.layer_norm(src, (dim,), None, None, first.norm_attn.eps)  # every LayerNorm has the default eps
        for key in users:
            out[key] = [SourceKeys(x_hat, lay.attn.in_proj_weight[dim:] * lay.norm_attn.weight,
                                   torch.mv(lay.attn.in_proj_weight[dim:], lay.norm_attn.bias) + lay.attn.in_proj_bias[dim:],
                                   lay.attn.heads)
                        for lay in model.cross_modal[key].layers]
    return out


def encode(
    enc: TransformerEncoder,
    x: torch.Tensor,
    kv: list[SourceKeys] | None,
    mask: torch.Tensor | None,
    read: torch.Tensor | int | None,
    causal: bool,
) -> torch.Tensor:
    """`TransformerEncoder.forward` in eval mode, batch-first, optionally read at one step.

    Args:
        enc: the encoder whose weights (and embedding, `TransformerEncoder._embed`) are used.
        x: (B, T_q, E) input before embedding.
        kv: None for self-attention; for cross-attention each layer's `SourceKeys` (`_cross_keys_values`).
        mask: additive key-padding mask (B, 1, 1, T_k), or None.
        read: None returns every step (B, T_q, E); -1 or a (B,) index tensor returns that step only (B, E), and then
            the last layer computes its query and feed-forward at that step only.
        causal: MulT's future mask (`causal_mask`), combined with `mask`.
    """
    bsz, t_q, _ = x.shape
    h = enc._embed(x.transpose(0, 1)).transpose(0, 1)  # the embedding works sequence-first
    t_k = t_q if kv is None else kv[0].normalised.shape[1]
    full = mask
    future = None
    if causal:
        future = causal_mask(t_q, t_k, x.device)
        full = future if mask is None else mask + future
    layers = enc.layers
    last = len(layers) - 1 if read is not None else len(layers)
    # under the future mask the first queries see only the first keys: those rows skip the masked block
    split = t_q // 2 if causal and t_q >= CAUSAL_SPLIT_MIN_STEPS else 0
    for i, layer in enumerate(layers[:last]):
        h = _layer(layer, h, None if kv is None else kv[i], full, split)
    if read is None:
        return F.layer_norm(h, enc.norm_out.normalized_shape, enc.norm_out.weight, enc.norm_out.bias, enc.norm_out.eps)

    # last layer at the read step: its keys/values are the whole (normalised) sequence, its query one step
    if isinstance(read, int):
        if read != -1:
            raise ValueError(f"read must be None, -1 or an index tensor, got {read}")
        step = h[:, -1:]
        row = None  # MulT's future mask lets the last query see every key: only the padding mask is left
    else:
        step = h[torch.arange(bsz, device=h.device), read].unsqueeze(1)
        row = None if future is None else future.index_select(0, read).view(bsz, 1, 1, t_k)
    step_mask = mask if row is None else (row if mask is None else mask + row)
    layer = layers[-1]
    k, v = _keys_values(layer.attn, _ln(layer.norm_attn, h)) if kv is None else kv[-1].keys_values()
    out = _attend(layer.attn, _query(layer.attn, _ln(layer.norm_attn, step)), k, v, step_mask).add_(step)
    out = _feed_forward(layer, out)
    return F.layer_norm(out[:, 0], enc.norm_out.normalized_shape, enc.norm_out.weight, enc.norm_out.bias, enc.norm_out.eps)


def _ln(norm, x: torch.Tensor) -> torch.Tensor:
    return F.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)


def _layer(layer, h: torch.Tensor, kv: SourceKeys | None, mask: torch.Tensor | None,
           split: int = 0) -> torch.Tensor:
    """`EncoderLayer.forward` in eval mode, batch-first; `kv` as `encode`'s, one layer's; `split` as `_attend`'s."""
    q_in = _ln(layer.norm_attn, h)
    if kv is None:
        q, k, v = _queries_keys_values(layer.attn, q_in)
    else:
        q, (k, v) = _query(layer.attn, q_in), kv.keys_values()
    h = _attend(layer.attn, q, k, v, mask, split).add_(h)
    return _feed_forward(layer, h)


def _linear(x: torch.Tensor, linear) -> torch.Tensor:
    """``F.linear`` as a matmul plus an in-place bias: addmm would first copy the broadcast bias into its output,
    a full extra pass over the activations (measured ~10% of the batch-64 forward)."""
    return torch.matmul(x, linear.weight.t()).add_(linear.bias)


def _feed_forward(layer, h: torch.Tensor) -> torch.Tensor:
    """``h + FC2(ReLU(FC1(LN(h))))``, with the bias, ReLU and residual applied in place on fresh tensors."""
    x = _linear(_ln(layer.norm_ff, h), layer.fc1).relu_()
    return _linear(x, layer.fc2).add_(h)


def _queries_keys_values(attn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Self-attention's packed in-projection of (B, T, E) into queries, keys and values, (B, H, T, hd) each."""
    dim = _width(attn)
    qkv = torch.matmul(x, attn.in_proj_weight.t()).add_(attn.in_proj_bias)
    qkv = qkv.unflatten(-1, (3, attn.heads, dim // attn.heads)).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def _width(attn) -> int:
    """E, read off the weights rather than the activations: under tracing a weight's size folds into a constant once
    the weights are frozen, so the weight slices and the folding in `_cross_keys_values` are done at build time."""
    return attn.in_proj_weight.shape[1]


def _query(attn, x: torch.Tensor) -> torch.Tensor:
    dim = _width(attn)
    q = torch.matmul(x, attn.in_proj_weight[:dim].t()).add_(attn.in_proj_bias[:dim])
    return q.unflatten(-1, (attn.heads, dim // attn.heads)).transpose(1, 2)


def _keys_values(attn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dim = _width(attn)
    return _project_keys_values(x, attn.in_proj_weight[dim:], attn.in_proj_bias[dim:], attn.heads)


def _project_keys_values(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                         heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, E) through a packed (2E, E) key/value in-projection: keys and values, (B, H, T, hd) each."""
    kv = torch.matmul(x, weight.t()).add_(bias)
    kv = kv.unflatten(-1, (2, heads, weight.shape[1] // heads)).permute(2, 0, 3, 1, 4)
    return kv[0], kv[1]


SDPA_MIN_HEAD_DIM = 8
"""Below this head dimension attention is written out (matmul, softmax, matmul): the CPU flash kernel runs one
tiny GEMM per (batch, head, block), and at MOSI's 10 heads of 5 it was 15 to 40% slower than batched matmuls
(docs/speed.md); from 8 up (the live preset's 8 and 16, MOSI's memory transformers' 10) it is the faster one."""


CAUSAL_SPLIT_MIN_STEPS = 16
"""From this many query steps on, attention under MulT's future mask is written out at any head dimension and runs in
two blocks of queries. Set by reasoning, not measured: the split adds about a dozen operators per call (9% at MOSI
batch 1, docs/speed.md 3d), which a short sequence's quarter would not pay for. At MOSI's memory transformers (head
dimension 10) the split written-out attention beat SDPA, which sees the future mask as any additive mask and cannot
skip the block (docs/speed.md 3e)."""


def _attend(attn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
            split: int = 0) -> torch.Tensor:
    """Scaled dot-product attention of (B, H, T_q, hd) queries over (B, H, T_k, hd) keys/values, then the output
    projection: (B, T_q, E).

    ``split`` > 0 says `mask` contains MulT's future mask (`causal_mask`): the first ``split`` queries then see
    only the first ``split + |T_k - T_q|`` keys, so their scores, softmax and weighted sum skip the keys every one
    of them masks (a quarter of the written-out work at ``split = T_q / 2``; exact, since those weights are 0).
    """
    hd = q.shape[-1]
    if hd < SDPA_MIN_HEAD_DIM or split:  # under the future mask SDPA cannot skip the masked block
        q = q * hd ** -0.5
        if split:
            t_q, t_k = q.shape[2], k.shape[2]
            seen = min(t_k, split + abs(t_k - t_q))
            k_t, v = k.transpose(-2, -1).contiguous(), v.contiguous()  # sliced twice below: made contiguous once
            out = torch.cat([_weighted(q[:, :, :split], k_t[..., :seen], v[:, :, :seen], mask[..., :split, :seen]),
                             _weighted(q[:, :, split:], k_t, v, mask[..., split:, :])], dim=2)
        else:
            out = _weighted(q, k.transpose(-2, -1), v, mask)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return _linear(out.transpose(1, 2).flatten(2), attn.out_proj)


def _weighted(q: torch.Tensor, k_t: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T + mask) v, written out; `q` already scaled, `k_t` the keys transposed, (B, H, hd, T_k)."""
    s = torch.matmul(q, k_t)
    if mask is not None:
        s.add_(mask)
    return torch.matmul(torch.softmax(s, dim=-1), v)
