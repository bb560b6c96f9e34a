"""Cross-corpus protocol: leave one corpus out, per modality, for simple probes and a checkpoint.

    python -m recipes.crosscorpus [--data ../shared/data] [--cache runs/crosscorpus]
                                            [--checkpoint assets/dmd_live] [--out DIR] [--limit N]

For each modality, every corpus of ``../shared/data`` is held out in turn (speech: RAVDESS, TESS, EmoDB, EMOVO;
faces: FER2013, CK+48; text: GoEmotions Ekman, MELD) and scored on all of its labelled items:

* probes: a logistic regression (scikit-learn, standardised inputs, library defaults, nothing tuned) trained on
  all labelled items of the *other* corpora of that modality, on the features the checkpoint reads pooled over
  the item: the mean and std over time of the 25 eGeMAPS LLDs (voice), the mean over the frames with a face of
  the 321-d face vector (face), the mean of the MiniLM states (text). For the voice, also the candidates of
  `voice_candidates` (Whisper tiny.en encoder states, eGeMAPS functionals, both), each with global
  standardisation and with per-speaker standardisation (every speaker's items z-scored by that speaker's own
  mean and std, in training and held-out corpora alike), plus the failure case of the latter: held-out sessions
  that are each one speaker in one emotion (z-scoring such a session removes the emotion itself);
* the checkpoint: each item alone, only its modality present, scored by the fused output and by that modality's
  homogeneous and heterogeneous heads. Rows of corpora the checkpoint was trained on are flagged (they are not
  held out for it) and also scored on that corpus's test split alone (`corpora` splits: items it never saw).
  For the voice, three more versions of every head, each as the page would read the clip: calibrated (the
  calibrate control on the speaker's other neutral clips), and with the page's running baseline (on by default:
  `realtime.baseline`, `SESSION`) over a session that plays each speaker's clips one after another in a seeded
  random order, and over one-emotion sessions (each speaker in one emotion, the case a normaliser must not erase).

Scores are over the held-out corpus's own classes: the prediction is the arg-max over the classes that corpus
has (EmoDB has no surprise, CK+48 no neutral), accuracy and macro-F1 over those classes, the count and the
correct count per class; ``acc_7`` is the unrestricted 7-class arg-max. An item without features (no face found)
counts as an error. For the voice, an in-corpus anchor is added: RAVDESS speaker-independent (actors 1-18 train,
19-24 test), the issue's protocol.

Features come from the recipe caches (`bootstrap`): ``CACHE/features/<corpus>/<file>.feat.npz`` made by
``python -m realtime.extract`` as a subprocess (only missing files are extracted; ``--cache`` may point at a
bootstrap ``--out`` directory to reuse its features), ``CACHE/text/<corpus>_L32.npz`` and
``CACHE/voice/<corpus>_<candidate>.npz``. Writes ``OUT/crosscorpus.json`` and ``OUT/crosscorpus.md`` and prints
the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from argparse import Namespace
from pathlib import Path

import numpy as np

from dmd_model.config import EMOTIONS7
from realtime.baseline import BaselineConfig
from . import corpora
from .corpora import Item

MODALITY_CORPORA = {
    "voice": ("ravdess", "tess", "emodb", "emovo"),
    "face": ("fer2013", "ck48"),
    "text": ("goemotions", "meld"),
}
BOOTSTRAP_CORPORA = ("ravdess", "tess", "emodb", "ck48", "fer2013", "goemotions", "meld", "emobank")
"""What `bootstrap` trains on by default (its ``--corpora`` plus the text corpora): the bundled checkpoint's data."""
VOICE_FEATURES = ("egemaps_lld", "functionals", "whisper", "functionals+whisper")
VOICE_NORMS = ("global", "speaker", "speaker, one-emotion sessions")
CALIBRATION = BaselineConfig()
"""The page's baseline settings: how many voice levels a calibration shifts and its cap."""
SESSION = BaselineConfig()
"""The running baseline of the session rows: the page's defaults."""
SESSION_MIXED = "running baseline, speaker sessions"
SESSION_ONE = "running baseline, one-emotion sessions"
CALIBRATED = "calibrated (speaker's other neutral clips)"
"""Voice only: the eGeMAPS levels of each held-out clip shifted as the page's calibrate control would, with the
speaker's other neutral clips as the calibration (training as global)."""
HEAD_OF = {"voice": "acoustic", "face": "visual", "text": "language"}
PACK_INDEX = {"text": 0, "face": 1, "voice": 2}
TEXT_SEQ = 32  # the live preset's language steps (the text cache's L32)
SEED = 0
ROUND = 4


# -- scoring (pure) ----------------------------------------------------------------------------------------------
def corpus_classes(labels) -> list[str]:
    """The classes a corpus has, in EMOTIONS7 order."""
    present = set(labels)
    return [c for c in EMOTIONS7 if c in present]


def predict_over(scores: np.ndarray, model_classes, classes) -> np.ndarray:
    """Arg-max of ``scores`` (N, K over ``model_classes``) restricted to ``classes`` (those the model has)."""
    cols = [i for i, c in enumerate(model_classes) if c in set(classes)]
    if not cols:
        return np.full(len(scores), "<none>", dtype=object)
    names = np.array([model_classes[i] for i in cols], dtype=object)
    return names[np.asarray(scores)[:, cols].argmax(1)]


def score(y, scores: np.ndarray, model_classes, classes=None, found=None) -> dict:
    """Accuracy and macro-F1 over ``classes`` (default: those of ``y``) with the prediction restricted to them,
    per-class counts, and ``acc_7``, the unrestricted arg-max over all of ``model_classes``. Items with
    ``found`` False are errors whatever their scores say."""
    y = np.asarray(y, dtype=object)
    classes = list(classes) if classes is not None else corpus_classes(y)
    model_classes = list(model_classes)
    found = np.ones(len(y), bool) if found is None else np.asarray(found, bool)
    pred = np.where(found, predict_over(scores, model_classes, classes), "<none>")
    pred7 = np.where(found, np.array(model_classes, dtype=object)[np.asarray(scores).argmax(1)], "<none>")
    per_class, f1s = {}, []
    for c in classes:
        n, npred = int((y == c).sum()), int((pred == c).sum())
        ok = int(((y == c) & (pred == c)).sum())
        p = ok / npred if npred else 0.0
        r = ok / n if n else 0.0
        f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        per_class[c] = {"n": n, "correct": ok, "predicted": npred}
    return {"n": int(len(y)), "n_found": int(found.sum()), "classes": classes,
            "acc": round(float((pred == y).mean()), ROUND) if len(y) else float("nan"),
            "macro_f1": round(float(np.mean(f1s)), ROUND) if f1s else float("nan"),
            "acc_7": round(float((pred7 == y).mean()), ROUND) if len(y) else float("nan"),
            "per_class": per_class}


def loco_folds(corpus_names) -> list[tuple[str, list[str]]]:
    """(held-out corpus, training corpora) for each corpus: all the others."""
    names = list(corpus_names)
    return [(h, [c for c in names if c != h]) for h in names]


def standardise_groups(x: np.ndarray, groups) -> np.ndarray:
    """Z-score each group's rows by the group's own mean and std (a per-speaker normaliser that has seen all of
    the speaker's items). A feature constant within a group becomes 0 there."""
    x = np.asarray(x, np.float64)
    groups = np.asarray(groups, dtype=object)
    out = np.empty_like(x)
    for g in dict.fromkeys(groups.tolist()):
        m = groups == g
        mu, sd = x[m].mean(0), x[m].std(0)
        out[m] = np.where(sd > 1e-12, (x[m] - mu) / np.where(sd > 1e-12, sd, 1.0), 0.0)
    return out


def speaker_neutral_means(item_means: np.ndarray, y, groups, found=None) -> np.ndarray:
    """(N, D): for each item, the mean of ``item_means`` over its speaker's *other* neutral items with features,
    what the page's calibrate control would take as the speaker's neutral voice, never including the clip being
    scored; a NaN row where the speaker has no other neutral item."""
    x = np.asarray(item_means, np.float64)
    y, g = np.asarray(y, dtype=object), np.asarray(groups, dtype=object)
    ok = np.ones(len(y), bool) if found is None else np.asarray(found, bool)
    out = np.full_like(x, np.nan)
    for speaker in dict.fromkeys(g.tolist()):
        mine = g == speaker
        neutral = mine & (y == "neutral") & ok
        total, k = x[neutral].sum(0), int(neutral.sum())
        for i in np.flatnonzero(mine):
            n = k - int(neutral[i])
            if n > 0:
                out[i] = (total - (x[i] if neutral[i] else 0.0)) / n
    return out


def calibrate_levels(x: np.ndarray, reference: np.ndarray, target: np.ndarray, pop_std: np.ndarray,
                     cap_std: float) -> np.ndarray:
    """Shift the leading ``len(target)`` columns of an item's rows ``x`` (T, D) as a calibration on ``reference``
    (that many values: the speaker's neutral mean) would, moving it onto ``target`` (the training neutral, or the
    population mean) in steps of ``pop_std`` (`realtime.baseline.calibration_shift_std`); a NaN reference leaves
    ``x`` as it is."""
    from realtime.baseline import calibration_shift_std, lower_levels

    if np.isnan(reference).any():
        return x
    return lower_levels(x, calibration_shift_std(reference, target, pop_std, cap_std) * pop_std)


def fit_probe(x: np.ndarray, y):
    """The probe: standardised inputs, multinomial logistic regression with scikit-learn's defaults."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    return model.fit(np.asarray(x, np.float64), np.asarray(y))


def calibrated_probe_fold(train: dict, test: dict, level_dims: int, cap_std: float) -> dict:
    """The global probe, its held-out items' first ``level_dims`` columns (the clip means of the eGeMAPS levels)
    calibrated on each speaker's other neutral clips towards the training items' neutral mean, as the page's
    calibrate control shifts a live voice towards the checkpoint's neutral reference."""
    ok = np.asarray(train["found"], bool)
    levels = np.asarray(train["x"], np.float64)[ok][:, :level_dims]
    neutral = np.asarray(train["y"], dtype=object)[ok] == "neutral"
    std = levels.std(0)
    std = np.where(std > 1e-12, std, 1.0)
    mean = levels[neutral].mean(0) if neutral.any() else levels.mean(0)
    xte = np.asarray(test["x"], np.float64)
    ref = speaker_neutral_means(xte[:, :level_dims], test["y"], test["group"], test["found"])
    xte = np.stack([calibrate_levels(row, r, mean, std, cap_std) for row, r in zip(xte, ref)]) if len(xte) else xte
    return probe_fold(train, dict(test, x=xte), "global")


def probe_fold(train: dict, test: dict, norm: str = "global") -> dict:
    """Fit on ``train`` and score ``test``; each is {"x", "y", "found", "group"} (arrays, one row per item).
    norm: "global" (the probe's own standardisation only), "speaker" (first z-score each group) or
    "speaker, one-emotion sessions" (training as "speaker"; held-out groups are speaker x emotion)."""
    ok = np.asarray(train["found"], bool)
    xtr, ytr, xte = np.asarray(train["x"])[ok], np.asarray(train["y"], dtype=object)[ok], np.asarray(test["x"])
    if norm != "global":
        xtr = standardise_groups(xtr, np.asarray(train["group"], dtype=object)[ok])
        gte = np.asarray(test["group"], dtype=object)
        if norm == "speaker, one-emotion sessions":
            gte = np.array([f"{g}|{e}" for g, e in zip(gte, test["y"])], dtype=object)
        xte = standardise_groups(xte, gte)
    t = time.perf_counter()
    model = fit_probe(xtr, ytr)
    res = score(test["y"], model.predict_proba(xte), list(model.classes_), found=test["found"])
    res["n_train"], res["fit_s"] = int(len(ytr)), round(time.perf_counter() - t, 2)
    res["train_classes"] = [str(c) for c in model.classes_]
    return res


# -- items and features ------------------------------------------------------------------------------------------
def select(data: Path, modalities, limit: int | None) -> dict[str, list[Item]]:
    """corpus -> its labelled items (all splits), at most ``limit`` per class (the first by `corpora.stable_key`)."""
    want = {c for m in modalities for c in MODALITY_CORPORA[m]}
    items: list[Item] = []
    if want & set(MODALITY_CORPORA["voice"] + MODALITY_CORPORA["face"]):
        items += [it for it in corpora.media_items(data) if it.corpus in want]
    if "goemotions" in want:
        items += corpora.goemotions_items(data)
    if "meld" in want:
        items += corpora.meld_items(data)
    out: dict[str, list[Item]] = {}
    for c in sorted(want):
        its = sorted((it for it in items if it.corpus == c), key=lambda it: corpora.stable_key(it.key))
        if limit:
            n: dict[str, int] = {}
            keep = []
            for it in its:
                if n.get(it.emotion7, 0) < limit:
                    keep.append(it)
                    n[it.emotion7] = n.get(it.emotion7, 0) + 1
            its = keep
        if not its:
            raise SystemExit(f"error: no labelled items of corpus {c} in {data}")
        out[c] = its
    return out


def _feature_file(cache: Path, it: Item) -> Path:
    from .corpora import feature_path

    return feature_path(cache, it)


def load_media(cache: Path, its: list[Item], modality: str, seq_len: int, progress: bool, spec_box: list,
               seconds: list | None = None):
    """(pooled vectors (N, D), found (N,), packed-ready sequences or None per item). ``spec_box`` holds the first
    feature spec seen: every file must match it (one contract, as in `bootstrap.load_units`). ``seconds``, when
    given, receives each item's feature duration (its rows over the stream's frame rate; 0 without features)."""
    from tqdm.auto import tqdm

    from dmd_model.data import fit_length
    from dmd_model.feature_file import FeatureFileError, ItemFeatures

    vecs, found, seqs = [], [], []
    for it in tqdm(its, desc=f"load {its[0].corpus if its else ''}", unit="file", disable=not progress,
                   dynamic_ncols=True, leave=False):
        p = _feature_file(cache, it)
        try:
            f = ItemFeatures.load(p)
        except FeatureFileError as e:
            raise SystemExit(f"error: {p}: {e}; run without --no-extract") from None
        if not spec_box:
            spec_box.append(f.spec)
        else:
            try:
                spec_box[0].check_compatible(f.spec)
            except ValueError as e:
                raise SystemExit(f"error: {p} was extracted with another feature spec ({e}); delete "
                                 f"{cache / 'features'} and run again") from None
        if modality == "face":
            x = f.visual[f.face_present] if "visual" not in f.absent else f.visual[:0]
            v = x.mean(0) if len(x) else None
        else:
            x = f.acoustic if "acoustic" not in f.absent else f.acoustic[:0]
            v = np.concatenate([x.mean(0), x.std(0)]) if len(x) else None
        vecs.append(v)
        found.append(v is not None)
        if seconds is not None:
            rate = (f.spec.visual if modality == "face" else f.spec.acoustic).frame_rate_hz
            seconds.append(len(x) / rate if rate > 0 else 0.0)
        seqs.append(np.ascontiguousarray(fit_length(x, seq_len), np.float32) if len(x) else None)
    dim = next((v.shape[0] for v in vecs if v is not None), 1)
    x = np.stack([v if v is not None else np.zeros(dim, np.float32) for v in vecs]).astype(np.float32)
    return x, np.array(found, bool), seqs


def load_text(cache: Path, its: list[Item], progress: bool, overlay: Path | None = None):
    from .bootstrap import text_states

    st = text_states(cache, its, TEXT_SEQ, progress, overlay)
    seqs = [st[it.key] for it in its]
    x = np.stack([s.mean(0) for s in seqs]).astype(np.float32)
    return x, np.ones(len(its), bool), seqs


# -- the checkpoint ----------------------------------------------------------------------------------------------
class CheckpointScorer:
    """A checkpoint scoring single-modality items: fused, homo_<m> and hetero_<m> emotion logits."""

    def __init__(self, path: Path, device: str = "cpu"):
        from dmd_model.checkpoint import load_checkpoint
        from dmd_model.config import TrainConfig
        from dmd_model.trainer import Trainer

        self.path = Path(path)
        self.model, self.spec, _ = load_checkpoint(path, device)
        self.cfg = self.model.cfg
        if not self.cfg.num_classes:
            raise SystemExit(f"error: {path} has no emotion head")
        self.trainer = Trainer(self.model, TrainConfig(), device=device, progress=False)
        self.classes = list(EMOTIONS7)

    @property
    def text_overlay(self) -> Path | None:
        """MiniLM's fine-tuned layers the checkpoint was trained on (its directory's overlay), or None."""
        from realtime.features.text import TextConfig

        extractor = self.spec.language.extractor if self.spec is not None else None
        ov = TextConfig().for_checkpoint(extractor, self.path).overlay
        return Path(ov) if ov else None

    def check_spec(self, spec, modality: str) -> None:
        """The cached files' ``modality`` stream must be what the checkpoint expects (the others are not scored:
        voice files extracted without words need not name the checkpoint's text encoder)."""
        if spec is not None and self.spec is not None:
            self.spec.check_compatible(spec, what="the cached features", modalities=(HEAD_OF[modality],))

    def logits(self, seqs: list, modality: str, chunk: int = 1024) -> dict[str, np.ndarray]:
        """{head: (N, 7)} for items given as (T, D) sequences (None = no features: zeros, counted as errors)."""
        from .pairing import Unit, pack_samples, unimodal_samples

        m = PACK_INDEX[modality]
        r = int(self.cfg.regression)
        name = HEAD_OF[modality]
        parts: dict[str, list] = {"fused": [], f"homo_{name}": [], f"hetero_{name}": []}
        dim = self.cfg.input_dims[m]
        for s in range(0, len(seqs), chunk):
            units = [Unit(str(i), x if x is not None else np.zeros((1, dim), np.float32), "", 0.0)
                     for i, x in enumerate(seqs[s : s + chunk])]
            split = pack_samples(unimodal_samples(units, modality), tuple(self.cfg.seq_lens),
                                 dims=tuple(self.cfg.input_dims))
            p = self.trainer.predict(split)
            parts["fused"].append(p.prediction[:, r:])
            parts[f"homo_{name}"].append(p.homo[:, m, r:])
            parts[f"hetero_{name}"].append(p.hetero[:, m, r:])
        return {k: np.concatenate(v) if v else np.zeros((0, len(self.classes))) for k, v in parts.items()}


def calibrated_seqs(scorer: CheckpointScorer, seqs: list, y, groups, found) -> list:
    """Each clip's rows with its eGeMAPS levels shifted as the page's calibrate control would
    (`realtime.baseline`: onto the checkpoint's neutral reference if it ships one, else its input mean; capped),
    the calibration being the speaker's other neutral clips."""
    from realtime.baseline import load_neutral_reference

    cfg = CALIBRATION
    k = cfg.level_dims
    target = scorer.model.input_mean_acoustic.detach().cpu().numpy().astype(np.float64)[:k]
    neutral = load_neutral_reference(scorer.path, None if scorer.spec is None else scorer.spec.acoustic.extractor)
    if neutral is not None:
        target = neutral["acoustic"]
    std = scorer.model.input_std_acoustic.detach().cpu().numpy().astype(np.float64)[:k]
    std = np.where(std > 1e-6, std, 1.0)  # as `SessionBaseline` guards a constant feature
    means = np.stack([x[:, :k].mean(0) if x is not None and len(x) else np.zeros(k) for x in seqs])
    ref = speaker_neutral_means(means, y, groups, found)
    return [None if x is None else calibrate_levels(x, r, target, std, cfg.calibration_cap_std)
            for x, r in zip(seqs, ref)]


def labels_and_groups(its: list[Item]) -> tuple[np.ndarray, np.ndarray]:
    """Each item's 7-class label and its group (the speaker where the corpus names one, else the corpus)."""
    return (np.array([it.emotion7 for it in its], dtype=object),
            np.array([it.group or it.corpus for it in its], dtype=object))


def session_groups(groups: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The sessions the running-baseline rows play (`session_seqs`): each speaker's clips (``SESSION_MIXED``), and
    each speaker in one emotion (``SESSION_ONE``: the case a normaliser must not erase)."""
    return {SESSION_MIXED: groups, SESSION_ONE: groups + "/" + y}


def session_seqs(scorer: CheckpointScorer, seqs: list, means: np.ndarray, seconds, groups, config=SESSION,
                 seed: int = 0) -> list:
    """Each clip's rows with its eGeMAPS levels shifted by the page's running baseline (`realtime.baseline`,
    ``config``: shrunk by ``prior_s``, capped at ``cap_std``) as it stands at the clip's end, in a session that plays
    the clips of each group (a speaker, or a speaker in one emotion) one after another in a seeded random order:
    the estimate holds the session's earlier clips and this one, each clip's mean levels (``means``, over its own
    rows) weighted by its seconds, as the page weights media time. Clips without features stay None."""
    from realtime.baseline import lower_levels, running_shift_std

    k = config.level_dims
    mean = scorer.model.input_mean_acoustic.detach().cpu().numpy().astype(np.float64)[:k]
    std = scorer.model.input_std_acoustic.detach().cpu().numpy().astype(np.float64)[:k]
    std = np.where(std > 1e-6, std, 1.0)  # as `SessionBaseline` guards a constant feature
    rng = np.random.default_rng(seed)
    g = np.asarray(groups, dtype=object)
    out = list(seqs)
    for group in dict.fromkeys(g.tolist()):
        total, seen = np.zeros(k), 0.0
        for i in rng.permutation(np.flatnonzero(g == group)):
            x = seqs[i]
            if x is None or not len(x) or seconds[i] <= 0:
                continue
            total += seconds[i] * np.asarray(means[i][:k], np.float64)
            seen += seconds[i]
            shift = running_shift_std(total / seen, seen, mean, std, config.prior_s, config.cap_std)
            out[i] = lower_levels(x, shift * std)
    return out


# -- the protocol ------------------------------------------------------------------------------------------------
def checkpoint_acoustic(args) -> str:
    """The acoustic stream to extract: the checkpoint's (``egemaps+whisper`` when its spec names encoder states), so
    that its rows read the features it was trained on; ``egemaps`` without a checkpoint."""
    from dmd_model.checkpoint_config import read_config
    from realtime.features.acoustic import AcousticConfig

    if args.no_checkpoint or args.checkpoint is None:
        return "egemaps"
    spec = read_config(args.checkpoint)[1]
    return "egemaps+whisper" if spec is not None and AcousticConfig.reads_states(spec.acoustic.extractor) else "egemaps"


def extract(args, items: list[Item]) -> dict:
    """Missing feature files through ``python -m realtime.extract`` (the bootstrap recipe's batches)."""
    from .bootstrap import extract_media

    media = [it for it in items if it.modality != "text"]
    missing = sum(1 for it in media if not _feature_file(args.cache, it).exists())
    t = time.perf_counter()
    if missing and args.no_extract:
        raise SystemExit(f"error: {missing} media items have no feature file in {args.cache / 'features'}")
    extract_media(Namespace(out=args.cache, data=args.data, no_extract=args.no_extract, no_progress=args.no_progress,
                            extract_batch=args.extract_batch, acoustic=checkpoint_acoustic(args)), media)
    return {"media_items": len(media), "extracted_now": missing, "seconds": round(time.perf_counter() - t, 1)}


def run(args) -> dict:
    t0 = time.perf_counter()
    mods = [m.strip() for m in args.modalities.split(",") if m.strip()]
    bad = set(mods) - set(MODALITY_CORPORA)
    if bad:
        raise SystemExit(f"error: unknown modalities {sorted(bad)}; choose from {sorted(MODALITY_CORPORA)}")
    voice_feats = [v.strip() for v in args.voice_features.split(",") if v.strip()]
    bad = set(voice_feats) - set(VOICE_FEATURES)
    if bad:
        raise SystemExit(f"error: unknown voice features {sorted(bad)}; choose from {list(VOICE_FEATURES)}")
    trained_on = [c.strip() for c in args.trained_on.split(",") if c.strip()]
    by_corpus = select(args.data, mods, args.limit)
    all_items = [it for its in by_corpus.values() for it in its]
    timing: dict = {"extract": extract(args, all_items)}
    log(f"features: {timing['extract']}")
    scorer = None if args.no_checkpoint else CheckpointScorer(args.checkpoint)
    # text states as the checkpoint was trained on them; without a checkpoint, the overlay asked for (or none)
    overlay = args.text_overlay if scorer is None else scorer.text_overlay
    result = {"protocol": "leave-one-corpus-out per modality; held-out corpus scored on all its labelled items over "
                          "its own classes; probes = standardised logistic regression on the other corpora",
              "data": str(args.data), "cache": str(args.cache), "limit": args.limit,
              "checkpoint": None if scorer is None else str(args.checkpoint), "trained_on": trained_on,
              "text_overlay": None if overlay is None else str(overlay),
              "corpora": {}, "folds": [], "in_corpus": [], "timing": timing}
    for mod in mods:
        names = MODALITY_CORPORA[mod]
        feats: dict[str, dict] = {}
        ck_logits: dict[str, dict] = {}
        spec_box: list = []
        t = time.perf_counter()
        for c in names:
            its = by_corpus[c]
            y, groups = labels_and_groups(its)
            if mod == "text":
                x, found, seqs = load_text(args.cache, its, not args.no_progress, overlay)
            else:
                seq_len = (scorer.cfg.seq_lens if scorer else (TEXT_SEQ, 32, 64))[PACK_INDEX[mod]]
                seconds: list = []
                x, found, seqs = load_media(args.cache, its, mod, seq_len, not args.no_progress, spec_box, seconds)
            feats[c] = {"base": x, "found": found, "y": y, "group": groups, "items": its}
            result["corpora"][c] = {"modality": mod, "n_items": len(its), "n_with_features": int(found.sum()),
                                    "classes": corpus_classes(y),
                                    "counts": {k: int((y == k).sum()) for k in corpus_classes(y)}}
            if scorer is not None:
                if spec_box:
                    scorer.check_spec(spec_box[0], mod)
                ck_logits[c] = scorer.logits(seqs, mod)
                if mod == "voice":
                    ck_logits[c].update({f"{h}, calibrated": v for h, v in
                                         scorer.logits(calibrated_seqs(scorer, seqs, y, groups, found), mod).items()})
                    for name, g in session_groups(groups, y).items():
                        ck_logits[c].update({f"{h}, {name}": v for h, v in
                                             scorer.logits(session_seqs(scorer, seqs, x, seconds, g), mod).items()})
            del seqs
        timing[f"load_{mod}_s"] = round(time.perf_counter() - t, 1)
        feature_sets = {"egemaps_lld" if mod == "voice" else ("face321" if mod == "face" else "minilm_mean"): "base"}
        if mod == "voice":
            feature_sets = voice_feature_sets(args, feats, voice_feats, timing)
            if spec_box and spec_box[0].acoustic.dim != 25:  # the files hold LLDs + streamed encoder states
                feature_sets = {("lld+whisper_stream" if k == "egemaps_lld" else k): v for k, v in feature_sets.items()}
        base_name = next(k for k, v in feature_sets.items() if v == "base")  # the checkpoint's own features
        norms = VOICE_NORMS if mod == "voice" else ("global",)
        folds = loco_folds(names)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(folds) * len(feature_sets) * len(norms), desc=f"probes {mod}",
                   disable=args.no_progress, dynamic_ncols=True)
        t = time.perf_counter()
        for held, train_names in folds:
            te = feats[held]
            fold = {"modality": mod, "held_out": held, "train_corpora": train_names,
                    "classes": corpus_classes(te["y"]), "n": len(te["y"]), "probes": [], "checkpoint": []}
            for fname, key in feature_sets.items():
                for norm in norms:
                    r = probe_fold(fold_data(feats, train_names, key), fold_data(feats, [held], key), norm)
                    fold["probes"].append({"features": fname, "norm": norm, **r})
                    bar.update(1)
            if mod == "voice":
                r = calibrated_probe_fold(fold_data(feats, train_names), fold_data(feats, [held]),
                                          CALIBRATION.level_dims, CALIBRATION.calibration_cap_std)
                fold["probes"].append({"features": base_name, "norm": CALIBRATED, **r})
            if scorer is not None and held not in trained_on:
                fold["probes"] += same_corpora_probe(feats, feature_sets, held, train_names, trained_on)
            if scorer is not None:
                seen = held in trained_on
                test_mask = np.array([it.split == "test" for it in te["items"]], bool)
                for head, lg in ck_logits[held].items():
                    fold["checkpoint"].append({"head": head, "items": "all", "seen_in_training": seen,
                                               **score(te["y"], lg, scorer.classes, found=te["found"])})
                    if seen and test_mask.any():
                        fold["checkpoint"].append({"head": head, "items": "test split", "seen_in_training": seen,
                                                   **score(te["y"][test_mask], lg[test_mask], scorer.classes,
                                                           corpus_classes(te["y"]), te["found"][test_mask])})
            result["folds"].append(fold)
        bar.close()
        if mod == "voice" and "ravdess" in feats:
            result["in_corpus"] += ravdess_anchor(feats["ravdess"], feature_sets)
        timing[f"probes_{mod}_s"] = round(time.perf_counter() - t, 1)
    timing["total_s"] = round(time.perf_counter() - t0, 1)
    return result


def fold_data(feats: dict, names: list[str], key: str = "base") -> dict:
    """The probe inputs {"x", "y", "found", "group"} of the corpora ``names`` stacked, ``x`` from feature set
    ``key``."""
    return {k: np.concatenate([feats[c][key if k == "x" else k] for c in names]) for k in ("x", "y", "found", "group")}


def same_corpora_probe(feats: dict, feature_sets: dict, held: str, train_names: list[str],
                       trained_on: list[str]) -> list[dict]:
    """The probe on the checkpoint's own features trained on exactly the corpora of this modality the checkpoint
    was trained on, when that is not all the others (the fold's usual training set): so a head that never saw
    ``held`` is compared with a probe that never saw more than it did. [] when the sets agree or it saw none."""
    ck_train = [c for c in train_names if c in trained_on]
    if not ck_train or ck_train == list(train_names):
        return []
    name = next(k for k, v in feature_sets.items() if v == "base")
    r = probe_fold(fold_data(feats, ck_train), fold_data(feats, [held]), "global")
    return [{"features": name, "norm": "global", "train_corpora": ck_train, "as_checkpoint": True, **r}]


def voice_feature_sets(args, feats: dict, names: list[str], timing: dict) -> dict[str, str]:
    """Add the voice candidates to ``feats`` (key per name) and return {feature name: key}."""
    from .voice_candidates import clip_features

    need = sorted({p for n in names if n != "egemaps_lld" for p in n.split("+")})
    if need:
        items = [it for c in feats for it in feats[c]["items"]]
        vf, cost = clip_features(args.data, args.cache, items, need, threads=1, progress=not args.no_progress)
        timing["voice_candidates"] = {k: dict(v, seconds=round(v["seconds"], 1), audio_s=round(v["audio_s"], 1))
                                      for k, v in cost.items()}
        for c, f in feats.items():
            for n in need:
                f[n] = np.stack([vf[n][it.key] for it in f["items"]])
            for n in names:
                if "+" in n:
                    f[n] = np.concatenate([f[p] for p in n.split("+")], axis=1)
    return {n: ("base" if n == "egemaps_lld" else n) for n in names}


def ravdess_anchor(f: dict, feature_sets: dict) -> list[dict]:
    """In-corpus RAVDESS speaker-independent (actors 1-18 train, 19-24 test), the issue's reference protocol."""
    test = np.array([it.split == "test" for it in f["items"]], bool)
    out = []
    if not test.any() or test.all():
        return out
    for fname, key in feature_sets.items():
        for norm in ("global", "speaker"):
            sub = lambda m: {"x": f[key][m], "y": f["y"][m], "found": f["found"][m], "group": f["group"][m]}  # noqa: E731
            out.append({"corpus": "ravdess", "protocol": "actors 1-18 / 19-24", "features": fname, "norm": norm,
                        **probe_fold(sub(~test), sub(test), norm)})
    return out


# -- report ------------------------------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    """The tables (figures copied from the JSON, never re-rounded)."""
    lines = []
    for mod in MODALITY_CORPORA:
        folds = [f for f in res["folds"] if f["modality"] == mod]
        if not folds:
            continue
        lines += [f"### {mod}: leave one corpus out", ""]
        if mod == "text" and res.get("text_overlay"):
            lines += [f"Text states: MiniLM with the tuned layers of `{res['text_overlay']}`.", ""]
        lines += [
                  "| held out (n, classes) | trained on | model | features | norm | acc | macro-F1 | acc_7 |",
                  "|---|---|---|---|---|---|---|---|"]
        for f in folds:
            what = f"{f['held_out']} ({f['n']}, {len(f['classes'])})"
            for p in f["probes"]:
                lines.append(f"| {what} | {'+'.join(p.get('train_corpora', f['train_corpora']))} | LR probe | {p['features']} | {p['norm']} | "
                             f"{p['acc']} | {p['macro_f1']} | {p['acc_7']} |")
            for c in f["checkpoint"]:
                flag = "**held out**" if not c["seen_in_training"] else f"seen in training ({c['items']})"
                lines.append(f"| {what} | checkpoint: {flag} | {c['head']} | checkpoint's | - | {c['acc']} | "
                             f"{c['macro_f1']} | {c['acc_7']} |")
        lines.append("")
    if res["in_corpus"]:
        lines += ["### voice: in-corpus anchor, RAVDESS actors 1-18 / 19-24", "",
                  "| features | norm | acc | macro-F1 |", "|---|---|---|---|"]
        for r in res["in_corpus"]:
            lines.append(f"| {r['features']} | {r['norm']} | {r['acc']} | {r['macro_f1']} |")
        lines.append("")
    lines += ["Per-class counts (n / correct / predicted) are in crosscorpus.json.", ""]
    return "\n".join(lines)


def summary(res: dict) -> str:
    """Per modality, one row per probe or checkpoint head and one column per held-out corpus: "acc / macro-F1"
    (copied from the JSON, never re-rounded); checkpoint cells are on all items, marked * where the checkpoint
    saw that corpus in training (not held out for it)."""
    lines = []
    for mod in MODALITY_CORPORA:
        folds = [f for f in res["folds"] if f["modality"] == mod]
        if not folds:
            continue
        rows: dict[str, dict[int, str]] = {}  # row label -> fold index -> cell ("-" where a fold has none)
        for i, f in enumerate(folds):
            for p in f["probes"]:
                mine = ", the checkpoint's corpora" if p.get("as_checkpoint") else ""
                rows.setdefault(f"LR probe: {p['features']} ({p['norm']}{mine})", {})[i] = f"{p['acc']} / {p['macro_f1']}"
            for c in f["checkpoint"]:
                if c["items"] == "all":
                    rows.setdefault(f"checkpoint {c['head']}", {})[i] = (
                        f"{c['acc']} / {c['macro_f1']}" + ("*" if c["seen_in_training"] else ""))
        cols = [f"{f['held_out']} ({f['n']}, {len(f['classes'])} classes)" for f in folds]
        lines += [f"#### {mod}: acc / macro-F1 per held-out corpus", "", "| model | " + " | ".join(cols) + " |",
                  "|---" * (len(cols) + 1) + "|"]
        lines += [f"| {k} | " + " | ".join(v.get(i, "-") for i in range(len(folds))) + " |" for k, v in rows.items()]
        lines.append("")
    return "\n".join(lines)


def log(msg: str) -> None:
    print(f"[crosscorpus {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recipes.crosscorpus",
                                description=__doc__.split("\n", 1)[0] + "\n" + __doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"),
                   help="the shared data folder, with manifest.csv (default ../shared/data)")
    p.add_argument("--cache", type=Path, default=Path("runs/crosscorpus"),
                   help="feature caches, the bootstrap layout (default runs/crosscorpus; a bootstrap --out reuses "
                        "its features)")
    p.add_argument("--out", type=Path, default=None, help="where crosscorpus.json and .md go (default CACHE/report)")
    p.add_argument("--checkpoint", type=Path, default=Path("assets/dmd_live"),
                   help="checkpoint scored with one modality present (default assets/dmd_live)")
    p.add_argument("--no-checkpoint", action="store_true", help="probes only")
    p.add_argument("--text-overlay", type=Path, default=None, metavar="FILE",
                   help="with --no-checkpoint: MiniLM's tuned layers (a recipes.finetune_text output) whose states the "
                        "text probes read, to measure how a tuning carries over to a corpus it did not see (default: "
                        "MiniLM as shipped; a checkpoint's rows always read the checkpoint's own overlay)")
    p.add_argument("--trained-on", default=",".join(BOOTSTRAP_CORPORA),
                   help="corpora the checkpoint was trained on, flagged in its rows (default: what the bootstrap "
                        "recipe trains on, i.e. the bundled checkpoint's data)")
    p.add_argument("--modalities", default="voice,face,text", help="comma-separated: voice, face, text")
    p.add_argument("--voice-features", default=",".join(VOICE_FEATURES),
                   help=f"voice probe features, comma-separated from {', '.join(VOICE_FEATURES)}")
    p.add_argument("--limit", type=int, default=0,
                   help="at most N items per corpus and class (0: all; a few make a quick smoke run)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the checkpoint and text encoder")
    p.add_argument("--extract-batch", type=int, default=3000, help="files per realtime.extract call")
    p.add_argument("--no-extract", action="store_true", help="fail instead of extracting missing features")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.text_overlay is not None and not args.no_checkpoint:
        print("error: --text-overlay is for probes only (--no-checkpoint): a checkpoint reads its own overlay",
              file=sys.stderr)
        return 2
    if args.text_overlay is not None and not args.text_overlay.is_file():
        print(f"error: --text-overlay {args.text_overlay} not found", file=sys.stderr)
        return 2
    if not (args.data / "manifest.csv").is_file():
        print(f"error: {args.data}/manifest.csv not found (--data)", file=sys.stderr)
        return 2
    if not args.no_checkpoint and not (args.checkpoint / "model.safetensors").is_file():
        print(f"error: {args.checkpoint} is not a checkpoint (no model.safetensors); use --no-checkpoint",
              file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(max(1, args.threads))
    out = args.out or args.cache / "report"
    res = run(args)
    out.mkdir(parents=True, exist_ok=True)
    md = markdown(res) + "\n" + summary(res)
    (out / "crosscorpus.json").write_text(json.dumps(res, indent=2))
    (out / "crosscorpus.md").write_text(md)
    print(md)
    log(f"timing: {json.dumps(res['timing'])}")
    log(f"wrote {out / 'crosscorpus.json'} and {out / 'crosscorpus.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
