"""Write a checkpoint's neutral reference: the calibration's target for the voice's eGeMAPS levels.

    python -m recipes.neutral_reference --checkpoint DIR [--data ../shared/data] [--cache runs/crosscorpus]
                                        [--corpora ravdess,tess,emodb]

The page's calibrate control takes a few seconds of the speaker's neutral voice and shifts their eGeMAPS levels so
that this neutral lands on a target (`realtime.baseline`). The target is the mean of the levels over the
checkpoint's training split's neutral voice items, each fitted to the model's acoustic length as training packs
it (`dmd_model.data.fit_length`), written as ``DIR/neutral_reference.json``. Without the file the target is the
population mean of every training emotion, which leaves a calibrated neutral voice a little aroused: on speech
corpora no training run saw, the neutral target lifted every voice head (model card, "Calibration").

The bootstrap recipe writes the file after training (from the items it trained on); this command writes it for a
checkpoint trained before that, from the same features (`--cache`: a bootstrap or crosscorpus cache holding
the corpora's ``features/``; missing files are an error, not extracted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from . import corpora

VOICE_CORPORA = ("ravdess", "tess", "emodb")
"""What the bootstrap recipe trains the voice on by default (EMOVO stays held out)."""


def mean_levels(seqs: list[np.ndarray], level_dims: int) -> np.ndarray:
    """Mean of the leading ``level_dims`` columns over every row of ``seqs`` (empty items skipped)."""
    rows = [np.asarray(x, np.float64)[:, :level_dims] for x in seqs if len(x)]
    if not rows:
        raise ValueError("no voice item with features: no levels to average")
    return np.concatenate(rows).mean(0)


def levels_std(seqs: list[np.ndarray], level_dims: int) -> np.ndarray:
    """Std of each of the leading ``level_dims`` columns over every row of ``seqs``: the unit of `recipes.voice_levels`'
    offsets and of the recipe's ``--voice-offset``."""
    return np.concatenate([np.asarray(x, np.float64)[:, :level_dims] for x in seqs if len(x)]).std(0)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recipes.neutral_reference",
                                description=__doc__.split("\n\n", 2)[1],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path, help="the checkpoint folder to write the file into")
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    p.add_argument("--cache", type=Path, default=Path("runs/crosscorpus"),
                   help="feature cache in the bootstrap layout (CACHE/features/<corpus>/...)")
    p.add_argument("--corpora", default=",".join(VOICE_CORPORA), help="the speech corpora the checkpoint trained on")
    return p


def write_for_items(ckpt_dir: Path, items: list, cache: Path) -> Path:
    """Write ``ckpt_dir``'s reference from the voice ``items`` (the training split's neutral ones are used) whose
    features are in ``cache``. Raises ValueError naming the problem (a missing or mismatched feature file, none)."""
    from dmd_model.checkpoint_config import read_config
    from dmd_model.data import fit_length
    from dmd_model.feature_file import FeatureFileError, ItemFeatures
    from realtime.baseline import write_neutral_reference
    from realtime.features.specs import EGEMAPS_LLD_NAMES
    from .corpora import feature_path

    cfg, spec = read_config(ckpt_dir)[:2]
    if spec is None:
        raise ValueError(f"{ckpt_dir} has no feature spec: cannot tell which features it reads")
    chosen = [it for it in items if it.modality == "voice" and it.split == "train" and it.emotion7 == "neutral"]
    seqs = []
    for it in chosen:
        path = feature_path(cache, it)
        try:
            f = ItemFeatures.load(path)
        except FeatureFileError as e:
            raise ValueError(f"{e} (extract it first, e.g. with python -m recipes.crosscorpus)") from None
        spec.check_compatible(f.spec, what=f"{path} vs checkpoint {ckpt_dir}", modalities=("acoustic",))
        if "acoustic" not in f.absent:
            seqs.append(fit_length(f.acoustic, cfg.seq_lens[2]))
    levels = mean_levels(seqs, len(EGEMAPS_LLD_NAMES))  # raises when no neutral item has features
    return write_neutral_reference(ckpt_dir, levels, spec.acoustic.extractor, len(seqs),
                                   sorted({it.corpus for it in chosen}))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.data / "manifest.csv").is_file():
        print(f"error: {args.data}/manifest.csv not found", file=sys.stderr)
        return 2
    names = [c.strip() for c in args.corpora.split(",") if c.strip()]
    items = [it for it in corpora.media_items(args.data) if it.corpus in names]
    try:
        path = write_for_items(args.checkpoint, items, args.cache)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
