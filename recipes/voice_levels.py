"""How far each speaker's voice levels sit from the training speakers': the scale of `--voice-offset`.

    python -m recipes.voice_levels --cache runs/loco [--data ../shared/data] [--trained-on tess,emodb]

For every speaker of every speech corpus: the mean of their eGeMAPS levels (the 25 LLDs the calibration shifts),
taken over their clips' rows (each clip fitted to the model's acoustic length, as training packs it). Printed per
corpus, in units of the training rows' std of each level (what the model standardises with, and what the bootstrap
recipe's ``--voice-offset`` is measured in): the distance of each speaker's levels from the training speakers'
centroid (training split of the ``--trained-on`` corpora), and of the corpus's mean offset, with the level that
moves most. A speaker far outside the training speakers' spread is read by levels the model never saw, which only
a calibrated session corrects live.

Reads cached features only (``--cache``: a bootstrap or crosscorpus cache with the corpora's ``features/``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import corpora
from .neutral_reference import levels_std, mean_levels

SPEECH = ("ravdess", "tess", "emodb", "emovo")


def speaker_levels(seqs: list[np.ndarray | None], groups: list[str], level_dims: int) -> dict[str, np.ndarray]:
    """Speaker -> `mean_levels` of their items (None items skipped)."""
    by_speaker: dict[str, list[np.ndarray]] = {}
    for x, g in zip(seqs, groups):
        if x is not None and len(x):
            by_speaker.setdefault(g, []).append(x)
    return {g: mean_levels(xs, level_dims) for g, xs in by_speaker.items()}


def offsets_in_std(levels: dict[str, np.ndarray], centroid: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
    """Each speaker's levels minus the centroid, per level in units of ``std``."""
    return {g: (v - centroid) / std for g, v in levels.items()}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recipes.voice_levels", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    p.add_argument("--cache", type=Path, required=True, help="a recipe cache holding features/")
    p.add_argument("--trained-on", default="ravdess,tess,emodb",
                   help="the speech corpora whose training split sets the centroid and the std")
    return p


def main(argv: list[str] | None = None) -> int:
    from dmd_model.config import preset
    from realtime.features.specs import EGEMAPS_LLD_NAMES
    from .crosscorpus import load_media

    args = build_parser().parse_args(argv)
    trained = [c for c in args.trained_on.split(",") if c]
    if not trained or set(trained) - set(SPEECH):
        print(f"error: --trained-on takes speech corpora from {', '.join(SPEECH)}", file=sys.stderr)
        return 2
    if not (args.data / "manifest.csv").is_file():
        print(f"error: {args.data}/manifest.csv not found", file=sys.stderr)
        return 2
    k, seq_len = len(EGEMAPS_LLD_NAMES), preset("live").seq_lens[2]
    items = [it for it in corpora.media_items(args.data) if it.modality == "voice" and it.corpus in SPEECH]
    spec_box: list = []
    per_corpus, train_seqs, train_levels = {}, [], {}
    for c in SPEECH:
        its = [it for it in items if it.corpus == c]
        if not its:
            continue
        _, _, seqs = load_media(args.cache, its, "voice", seq_len, False, spec_box)
        per_corpus[c] = speaker_levels(seqs, [it.group for it in its], k)
        if c in trained:
            train = [(x, it.group) for x, it in zip(seqs, its) if it.split == "train" and x is not None]
            train_seqs += [x for x, _ in train]
            train_levels.update({f"{c}/{g}": v for g, v in
                                 speaker_levels([x for x, _ in train], [g for _, g in train], k).items()})
    if not train_seqs:
        print("error: no training rows in the cache for --trained-on", file=sys.stderr)
        return 2
    std = levels_std(train_seqs, k)
    centroid = np.mean(list(train_levels.values()), 0)
    print(f"eGeMAPS level offsets from the centroid of {len(train_levels)} training speakers ({', '.join(trained)}, "
          f"train split), in training-row std per level; distance = Euclidean norm over the {k} levels")
    for c, levels in per_corpus.items():
        off = offsets_in_std(levels, centroid, std)
        dist = np.array([np.linalg.norm(v) for v in off.values()])
        mean_off = np.mean(list(off.values()), 0)
        top = int(np.argmax(np.abs(mean_off)))
        role = "trained on" if c in trained else "held out"
        print(f"  {c:8s} ({role}, {len(off)} speakers): speaker distance min {dist.min():.2f} median "
              f"{np.median(dist):.2f} max {dist.max():.2f}; the corpus's mean offset {np.linalg.norm(mean_off):.2f} "
              f"(largest: {EGEMAPS_LLD_NAMES[top]} {mean_off[top]:+.2f})")
    train_dist = np.array([np.linalg.norm(v) for v in offsets_in_std(train_levels, centroid, std).values()])
    print(f"  training speakers (train split only): distance min {train_dist.min():.2f} median "
          f"{np.median(train_dist):.2f} max {train_dist.max():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
