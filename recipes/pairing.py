"""The label-matched composite: each sample pairs a face, a voice clip and a text of the same emotion7 class.

This pairing is **synthetic**: the three items come from unrelated people and corpora and only share a label.

* Agreeing triples: one face, one voice, one text of class c. Target: one-hot c; valence: mean of the three items'
  valences (the class valence for media; text items carry their own).
* Cross-class triples (training only, fraction ``cross_frac``): one modality, chosen at random, is taken from another
  class c'. Target: the mean of the three items' one-hot labels (2/3 c + 1/3 c'), so the model does not learn that
  the modalities always agree; valence: the mean of the three valences.
* Unimodal extras (training only): text-only samples drawn with the corpora's natural class distribution, and
  EmoBank text-only samples with rated valence and no class label (the emotion row is all zeros = unlabelled).
* Each modality's pool is reshuffled and cycled, so every item of a small pool (voices) is used about equally often.
  Optionally (``voice_groups``, off by default) the voices are drawn speaker by speaker instead: each training
  speaker equally often, its clips cycled. Drawn clip by clip, TESS's one training speaker is 490 of the bundled
  recipe's 1,739 training clips (24 speakers) and 490 of fold B's 779 (8 speakers; docs/bootstrap.md,
  "Speaker-balanced voices").
* Training faces get small per-frame noise (``face_noise``) on the blendshape scores' log-odds, the space the model
  reads them in (`DMDConfig.score_dims`), on top of the variation of the still-image views; optionally
  (``face_scale``, off by default) one intensity factor per sample on the scores, since posed peak expressions
  (CK+) and webcam faces differ most in how strongly the same blendshapes fire.
* Optionally (``voice_offset``, off by default) training voices get one random offset per sample on their eGeMAPS
  levels, constant over the clip: a voice's absolute levels move with the speaker, microphone and room, more than
  between the training speakers (docs/bootstrap.md, "Voice level offsets"), which the calibrate control corrects
  live but an uncalibrated session does not; the clip's own dynamics are kept.

Absent modalities (a missing face, silence) are learnt from the trainer's per-modality dropout
(``TrainConfig.modality_dropout``) on top of these samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dmd_model.config import EMOTIONS7, preset
from dmd_model.data import SplitArrays, fit_length, log_odds
from realtime.baseline import lower_levels
from realtime.features.specs import SCORE_DIMS as FACE_SCORE_DIMS


@dataclass
class Unit:
    """One unimodal item's features, ready to pack: ``x`` (T, D) float32, its class and valence."""

    key: str
    x: np.ndarray
    emotion7: str
    valence: float
    group: str = ""
    """speaker or subject (`corpora.Item.group`; "" where unknown): what ``voice_groups`` balances over."""


@dataclass
class SplitPools:
    """Per-class pools of one split: modality -> class -> [Unit]."""

    face: dict[str, list[Unit]] = field(default_factory=dict)
    voice: dict[str, list[Unit]] = field(default_factory=dict)
    text: dict[str, list[Unit]] = field(default_factory=dict)


MODS = ("text", "face", "voice")  # packed order: language, visual, acoustic
DIMS = preset("live").input_dims
"""(language, visual, acoustic) sizes of the live features with eGeMAPS alone; a run with Whisper states passes its
spec's dims (`pack_samples`'s ``dims``)."""
SCORE_DIMS = FACE_SCORE_DIMS[1]
"""The visual vector starts with MediaPipe's 52 blendshape scores (0-1; the face spec's `SCORE_DIMS`): training noise is added to their log-odds
(multiplicative near 0, so a score of 0.001 stays small, unlike additive noise on the score); the geometry after
them (head pose in radians, signed distances) is left as measured."""


class _Cycler:
    """Endless reshuffled passes over a list."""

    def __init__(self, units: list[Unit], rng: np.random.Generator):
        self.units, self.rng, self.order, self.pos = units, rng, np.array([], int), 0

    def __len__(self) -> int:
        return len(self.units)

    def next(self) -> Unit:
        if self.pos >= len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.units)), 0
        u = self.units[self.order[self.pos]]
        self.pos += 1
        return u


class _GroupCycler:
    """Endless passes over groups (speakers), each pass in a new order; each group's units cycled (`_Cycler`), so every
    group is drawn equally often however many units it holds. Units of group "" form one group."""

    def __init__(self, units: list[Unit], rng: np.random.Generator):
        groups: dict[str, list[Unit]] = {}
        for u in units:
            groups.setdefault(u.group, []).append(u)
        self.n = len(units)
        self.cyclers = _Cycler([_Cycler(us, rng) for _, us in sorted(groups.items())], rng)

    def __len__(self) -> int:
        return self.n

    def next(self) -> Unit:
        return self.cyclers.next().next()


def _cycler(units: list[Unit], rng: np.random.Generator, by_group: bool) -> _Cycler | _GroupCycler:
    return _GroupCycler(units, rng) if by_group else _Cycler(units, rng)


def balanced_draw(units: list[Unit], n: int, rng: np.random.Generator) -> list[Unit]:
    """``n`` units drawn group by group (`_GroupCycler`): every group about ``n / groups`` times."""
    cyc = _GroupCycler(units, rng)
    return [cyc.next() for _ in range(n)] if len(cyc) else []


def _empty(n: int, seq_lens: tuple[int, int, int], dims: tuple[int, int, int] = DIMS) -> list[np.ndarray]:
    return [np.zeros((n, seq_lens[m], dims[m]), np.float32) for m in range(3)]


def pack_samples(samples: list[list[Unit | None]], seq_lens: tuple[int, int, int], rng: np.random.Generator | None = None,
                 face_noise: float = 0.0, emotions: tuple[str, ...] = EMOTIONS7,
                 dims: tuple[int, int, int] = DIMS, face_scale: float = 0.0,
                 voice_offset: np.ndarray | None = None) -> SplitArrays:
    """Pack samples (each a [text, face, voice] list, None = absent) into `SplitArrays` of feature sizes ``dims``.

    With ``rng``: ``face_scale`` > 0 multiplies a face's blendshape scores by one factor drawn uniformly from
    [1 - face_scale, 1 + face_scale] (clipped to [0, 1]), then ``face_noise`` adds per-frame noise to their log-odds;
    the geometry after the scores is left as measured. ``voice_offset`` (one std per eGeMAPS level, in the levels'
    units) shifts a voice's leading ``len(voice_offset)`` columns by one normal draw per sample and level."""
    n = len(samples)
    arrs = _empty(n, seq_lens, dims)
    lengths = np.ones((n, 3), np.int64)
    present = np.zeros((n, 3), bool)
    valence = np.zeros(n, np.float32)
    emotion = np.zeros((n, len(emotions)), np.float32)
    ids = []
    for i, units in enumerate(samples):
        vals, labs, parts = [], [], []
        for m, u in enumerate(units):
            if u is None or u.x.shape[0] == 0:
                parts.append("-")
                continue
            x = u.x
            if m == 1 and face_scale > 0 and rng is not None:
                x = x.copy()
                x[:, :SCORE_DIMS] = np.clip(x[:, :SCORE_DIMS] * rng.uniform(1 - face_scale, 1 + face_scale), 0.0, 1.0)
            if m == 1 and face_noise > 0 and rng is not None:
                x = x.copy()
                z = log_odds(x[:, :SCORE_DIMS]) + rng.normal(0.0, face_noise, (x.shape[0], SCORE_DIMS))
                x[:, :SCORE_DIMS] = (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
            if m == 2 and voice_offset is not None and rng is not None:
                x = lower_levels(x, rng.normal(0.0, 1.0, len(voice_offset)) * voice_offset)
            x = fit_length(x, seq_lens[m])
            arrs[m][i, : x.shape[0]] = x
            lengths[i, m] = x.shape[0]
            present[i, m] = True
            vals.append(u.valence)
            if u.emotion7:
                labs.append(emotions.index(u.emotion7))
            parts.append(u.key)
        for c in labs:
            emotion[i, c] += 1.0 / len(labs)
        valence[i] = float(np.mean(vals)) if vals else 0.0
        ids.append("|".join(parts))
    return SplitArrays(*arrs, lengths, present, valence, emotion, ids)


def composite_samples(pools: SplitPools, n_per_class: int | None, rng: np.random.Generator, cross_frac: float = 0.0,
                      cap: int | None = None, emotions: tuple[str, ...] = EMOTIONS7,
                      voice_groups: bool = False) -> list[list[Unit | None]]:
    """Triples of one split. ``n_per_class`` fixed (training), or None: as many as the largest of the class's three
    pools (every item used at least once), at most ``cap``. ``voice_groups``: each class's voices drawn speaker by
    speaker (`_GroupCycler`) instead of clip by clip."""
    cyc = {mod: {c: _cycler(getattr(pools, mod).get(c, []), rng, voice_groups and mod == "voice") for c in emotions}
           for mod in MODS}
    out: list[list[Unit | None]] = []
    for c in emotions:
        sizes = [len(cyc[mod][c]) for mod in MODS]
        if not any(sizes):
            continue
        n = n_per_class if n_per_class is not None else max(sizes)
        if cap:
            n = min(n, cap)
        for _ in range(n):
            trip: list[Unit | None] = [cyc[mod][c].next() if len(cyc[mod][c]) else None for mod in MODS]
            if cross_frac > 0 and rng.random() < cross_frac:
                m = int(rng.integers(3))
                others = [o for o in emotions if o != c and len(cyc[MODS[m]][o])]
                if others:
                    trip[m] = cyc[MODS[m]][others[int(rng.integers(len(others)))]].next()
            out.append(trip)
    return out


def unimodal_samples(units: list[Unit], modality: str) -> list[list[Unit | None]]:
    m = MODS.index(modality)
    return [[u if k == m else None for k in range(3)] for u in units]


def empty_split(seq_lens: tuple[int, int, int], emotions: tuple[str, ...] = EMOTIONS7,
                dims: tuple[int, int, int] = DIMS) -> SplitArrays:
    return SplitArrays(*_empty(0, seq_lens, dims), np.ones((0, 3), np.int64), np.zeros((0, 3), bool), np.zeros(0, np.float32),
                       np.zeros((0, len(emotions)), np.float32), [])
