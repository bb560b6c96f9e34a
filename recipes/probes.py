"""Simple classifiers on the very same features as the bundled checkpoint: the bar its single-modality heads must meet.

    python -m recipes.probes --data ../shared/data --out DIR

DIR is a bootstrap work directory (``python -m recipes.bootstrap``): the probes read its feature caches
(``DIR/features``, ``DIR/text``), so they see exactly the vectors the model was trained and evaluated on, and fit
on the same corpora's training splits the recipe uses. For each anchor they print accuracy and macro-F1 of a
logistic regression, an MLP, a third model, and the soft vote of the three:

* face, FER2013: the visual vector of each image, averaged over its views' frames with a face (the still
  image, its mirror image, two slight rotations: `realtime.features.face.STILL_VIEWS`); train = FER2013 Training
  (train + valid carve) with a face found; test = all PublicTest + PrivateTest images, a missed face counted
  as an error (the third model: histogram gradient boosting; outside the vote, the logistic regression and the
  MLP again on the blendshape scores as log-odds, as the `live` model reads them);
* voice, RAVDESS: mean and standard deviation of the 25 eGeMAPS LLDs over the clip; train = actors 1-18,
  test = actors 19-24, global standardisation (the third model: an RBF SVM);
* text, GoEmotions Ekman: mean of the MiniLM token states; train = the GoEmotions train and valid lines in the
  recipe's text cache (the lines the model trained or early-stopped on), test = all single-label test rows (the third model: a
  linear SVM, calibrated).

Results go to ``DIR/probes.json``. Nothing is tuned on a test split: every hyperparameter is the library default
or fixed below.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import corpora
from .corpora import feature_path

SEED = 0


def _face(data: Path, out: Path):
    from dmd_model.feature_file import ItemFeatures

    items = [it for it in corpora.media_items(data) if it.corpus == "fer2013"]
    xs, ys, found = {"train": [], "test": []}, {"train": [], "test": []}, {"train": [], "test": []}
    for it in items:
        p = feature_path(out, it)
        if not p.exists():
            continue
        f = ItemFeatures.load(p)
        ok = "visual" not in f.absent and len(f.visual) > 0
        split = "test" if it.split == "test" else "train"
        xs[split].append(f.visual[f.face_present].mean(0) if ok else None)
        ys[split].append(it.emotion7)
        found[split].append(ok)
    dim = next(x for x in xs["train"] if x is not None).shape[0]
    pack = lambda s: (np.stack([x if x is not None else np.zeros(dim, np.float32) for x in xs[s]]),  # noqa: E731
                      np.array(ys[s]), np.array(found[s]))
    return pack("train"), pack("test")


def _voice(data: Path, out: Path):
    from dmd_model.feature_file import ItemFeatures

    items = [it for it in corpora.media_items(data) if it.corpus == "ravdess"]
    xs, ys = {"train": [], "test": []}, {"train": [], "test": []}
    for it in items:
        p = feature_path(out, it)
        if not p.exists():
            continue
        f = ItemFeatures.load(p)
        if "acoustic" in f.absent or len(f.acoustic) == 0:
            continue
        split = "test" if it.split == "test" else "train"  # actors 1-16 train + 17-18 valid = the 1-18
        xs[split].append(np.concatenate([f.acoustic.mean(0), f.acoustic.std(0)]))
        ys[split].append(it.emotion7)
    return tuple((np.stack(xs[s]), np.array(ys[s]), np.ones(len(ys[s]), bool)) for s in ("train", "test"))


def _text(data: Path, out: Path):
    caches = sorted((out / "text").glob("goemotions_L*.npz"))
    if not caches:
        raise FileNotFoundError(f"no GoEmotions text cache in {out / 'text'}; run the bootstrap recipe first")
    with np.load(caches[0], allow_pickle=False) as z:
        keys, lens, flat = [str(k) for k in z["keys"]], z["lengths"], z["states"]
    offs = np.concatenate([[0], np.cumsum(lens)])
    pooled = {k: flat[offs[i] : offs[i + 1]].mean(0) for i, k in enumerate(keys) if lens[i] > 0}
    items = corpora.goemotions_items(data)
    out_xy = []
    for split in ("train", "test"):
        its = [it for it in items if (it.split == split or (split == "train" and it.split == "valid")) and it.key in pooled]
        if split == "test":
            missing = sum(1 for it in items if it.split == "test" and it.key not in pooled)
            if missing:
                raise ValueError(f"{missing} GoEmotions test rows are not in {caches[0]}")
        out_xy.append((np.stack([pooled[it.key] for it in its]), np.array([it.emotion7 for it in its]),
                       np.ones(len(its), bool)))
    return tuple(out_xy)


def _models(kind: str):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    scaled = lambda m: make_pipeline(StandardScaler(), m)  # noqa: E731
    third = {
        "face": ("gradient_boosting", HistGradientBoostingClassifier(random_state=SEED)),
        "voice": ("rbf_svm", scaled(SVC(probability=True, random_state=SEED))),
        "text": ("linear_svm", scaled(CalibratedClassifierCV(LinearSVC(random_state=SEED)))),
    }[kind]
    return [
        ("logistic_regression", scaled(LogisticRegression(max_iter=3000))),
        ("mlp", scaled(MLPClassifier((128,), max_iter=300, early_stopping=True, random_state=SEED))),
        third,
    ]


def _log_odds_models():
    """Face only, outside the vote: the linear and MLP probes on the inputs as the `live` model reads them (the
    blendshape scores as log-odds, `DMDConfig.score_dims`), so that the model's input transform is not an edge
    the probes lack (gradient boosting is unaffected by a monotone transform)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from dmd_model.data import log_odds
    from realtime.features.specs import SCORE_DIMS

    k = SCORE_DIMS[1]  # the blendshape scores that lead the visual vector

    def scores_as_log_odds(x):
        return np.concatenate([log_odds(x[:, :k]), np.asarray(x[:, k:], np.float64)], axis=1)

    prep = lambda m: make_pipeline(FunctionTransformer(scores_as_log_odds), StandardScaler(), m)  # noqa: E731
    return [("logistic_regression_log_odds", prep(LogisticRegression(max_iter=3000))),
            ("mlp_log_odds", prep(MLPClassifier((128,), max_iter=300, early_stopping=True, random_state=SEED)))]


def run_probe(kind: str, train, test) -> dict:
    """Fit the three models and their soft vote on ``train``; score on every ``test`` item (missed = error)."""
    from sklearn.metrics import f1_score

    (xtr, ytr, ftr), (xte, yte, fte) = train, test
    xtr, ytr = xtr[ftr], ytr[ftr]
    res, probas = {}, []
    for name, model in _models(kind):
        model.fit(xtr, ytr)
        p = model.predict_proba(xte)
        probas.append(p)
        res[name] = _score(model.classes_[p.argmax(1)], yte, fte, f1_score)
    vote = np.mean(probas, 0)
    res["vote"] = _score(model.classes_[vote.argmax(1)], yte, fte, f1_score)
    for name, extra in (_log_odds_models() if kind == "face" else []):
        extra.fit(xtr, ytr)
        res[name] = _score(extra.predict(xte), yte, fte, f1_score)
    res["n_train"], res["n_test"], res["n_test_found"] = int(len(ytr)), int(len(yte)), int(fte.sum())
    return res


def _score(pred, y, found, f1_score) -> dict:
    pred = np.where(found, pred, "<no face>")  # a missed face is an error, whatever was predicted
    return {"acc": round(float((pred == y).mean()), 4),
            "macro_f1": round(float(f1_score(y, pred, labels=sorted(set(y)), average="macro")), 4),
            "acc_found": round(float((pred[found] == y[found]).mean()), 4)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipes.probes", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", required=True, type=Path, help="the shared data folder (with manifest.csv)")
    ap.add_argument("--out", required=True, type=Path, help="the bootstrap work directory (its caches are read)")
    ap.add_argument("--only", choices=("face", "voice", "text"), action="append", help="run only these probes")
    args = ap.parse_args(argv)
    if not (args.out / "features").is_dir():
        print(f"error: {args.out / 'features'} not found; run python -m recipes.bootstrap first", file=sys.stderr)
        return 2
    loaders = {"face": _face, "voice": _voice, "text": _text}
    results = {}
    for kind in args.only or ("face", "voice", "text"):
        train, test = loaders[kind](args.data, args.out)
        results[kind] = run_probe(kind, train, test)
        r = results[kind]
        print(f"{kind}: train {r['n_train']}, test {r['n_test']} ({r['n_test_found']} with features)")
        for name, s in r.items():
            if isinstance(s, dict):
                print(f"  {name:20s} acc {s['acc']}  macro-F1 {s['macro_f1']}  acc on items with features {s['acc_found']}")
    (args.out / "probes.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out / 'probes.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
