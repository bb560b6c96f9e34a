"""Check the page's running voice baseline (`realtime.baseline`) against other settings, on voices no run trained on.

    python -m recipes.baseline_grid --cache runs/loco --run runs/locoB/checkpoint=ravdess,emovo \
        --run assets/dmd_live=emovo [--priors 10,30,60] [--caps 0.5,1,1.5,2]

The running baseline's defaults (``prior_s`` 30 s of shrinkage, ``cap_std`` 1 std) were set by reasoning, not
measured. This scores every ``(prior_s, cap_std)`` of the grid, and no baseline at all, the way `recipes.crosscorpus`
scores its session rows (`crosscorpus.session_seqs`: each clip as the page reads it at the clip's end, in a session
of the speaker's clips in a seeded random order, or of one speaker in one emotion). Each ``--run`` is a checkpoint
and the voice corpora it never trained on (validation only: a transfer fold's held-out corpora); the accuracy of its
fused, homogeneous and heterogeneous heads on each is one cell.

The rule, set before any setting was compared with the defaults: a setting replaces the defaults only if its mean
accuracy over all cells in speaker sessions exceeds the defaults' by at least ``--min-gain`` (0.01), while in
one-emotion sessions it stays within 0.005 of the defaults' mean and no lower than no baseline's (the case a
normaliser must not erase). Prints every cell, then the means and the verdict.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

NONE = (0.0, 0.0)
"""The grid key of "no baseline" (a cap of 0 leaves every level where it is)."""


def parse_run(text: str) -> tuple[Path, list[str]]:
    path, _, corpora = text.partition("=")
    names = [c.strip() for c in corpora.split(",") if c.strip()]
    if not path or not names:
        raise argparse.ArgumentTypeError(f"--run takes CHECKPOINT=CORPUS[,CORPUS...], not {text!r}")
    return Path(path), names


def floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, not {text!r}") from None


def cells(args) -> dict[tuple[float, float], dict[str, list[float]]]:
    """{(prior_s, cap_std): {"mixed": [acc per cell], "one": [...]}}, printing each checkpoint's cells."""
    from realtime.baseline import BaselineConfig

    from . import crosscorpus as cc

    wanted = sorted({c for _, names in args.run for c in names})
    bad = set(wanted) - set(cc.MODALITY_CORPORA["voice"])
    if bad:
        raise SystemExit(f"error: not voice corpora: {sorted(bad)}; choose from {list(cc.MODALITY_CORPORA['voice'])}")
    for c in wanted:  # this tool reads features, it does not extract them
        if not (args.cache / "features" / c).is_dir():
            raise SystemExit(f"error: no {c} features under {args.cache / 'features'}; extract them first with "
                             f"python -m recipes.crosscorpus --cache {args.cache} --modalities voice")
    items = cc.select(args.data, ["voice"], None)
    grid = [NONE] + [(p, c) for p in args.priors for c in args.caps]
    out: dict = {k: {"mixed": [], "one": []} for k in grid}
    loaded: dict = {}
    default = BaselineConfig()
    for path, names in args.run:
        scorer = cc.CheckpointScorer(path)
        for c in names:
            if c not in loaded:  # the features do not depend on the checkpoint; its sequence length does not vary
                its = items[c]
                seconds: list = []
                x, found, seqs = cc.load_media(args.cache, its, "voice", scorer.cfg.seq_lens[2], False, [], seconds)
                y, g = cc.labels_and_groups(its)
                loaded[c] = (x, found, seqs, seconds, y, cc.session_groups(g, y))
            x, found, seqs, seconds, y, sessions = loaded[c]
            for key in grid:
                cfg = BaselineConfig(prior_s=key[0] or default.prior_s, cap_std=key[1])
                line = []
                for kind, name in (("mixed", cc.SESSION_MIXED), ("one", cc.SESSION_ONE)):
                    logits = scorer.logits(cc.session_seqs(scorer, seqs, x, seconds, sessions[name], cfg), "voice")
                    accs = [cc.score(y, v, scorer.classes, found=found)["acc"] for v in logits.values()]
                    out[key][kind] += accs
                    line.append(" ".join(f"{a:g}" for a in accs))
                what = "no baseline" if key == NONE else f"prior {key[0]:g} s, cap {key[1]:g} std"
                print(f"  {path} on {c}, {what}: speaker sessions {line[0]} | one-emotion {line[1]} "
                      "(fused homo hetero)", flush=True)
    return out


def verdict(table: dict, default: tuple[float, float], min_gain: float) -> tuple[list[str], tuple | None]:
    """The summary lines and the chosen setting (None: the defaults stay)."""
    mean = {k: {kind: statistics.fmean(v[kind]) for kind in v} for k, v in table.items()}
    d, none = mean[default], mean[NONE]
    lines, best = [], None
    for k, m in mean.items():
        ok = (m["mixed"] - d["mixed"] >= min_gain - 1e-12 and m["one"] >= d["one"] - 0.005 - 1e-12
              and m["one"] >= none["one"] - 1e-12)
        if ok and (best is None or m["mixed"] > mean[best]["mixed"]):
            best = k
        what = "no baseline" if k == NONE else f"prior {k[0]:g} s, cap {k[1]:g} std"
        mark = "  (defaults)" if k == default else ("  qualifies" if ok else "")
        lines.append(f"  {what:26s} speaker sessions {round(m['mixed'], 6):<9g} ({m['mixed'] - d['mixed']:+.6f})  "
                     f"one-emotion {round(m['one'], 6):<9g} ({m['one'] - d['one']:+.6f}){mark}")
    return lines, best


def main(argv: list[str] | None = None) -> int:
    from realtime.baseline import BaselineConfig

    here = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(prog="python -m recipes.baseline_grid", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--run", type=parse_run, action="append", required=True, metavar="CHECKPOINT=CORPORA",
                   help="a checkpoint and the voice corpora it never trained on (repeat for several)")
    p.add_argument("--cache", type=Path, required=True, help="the crosscorpus cache holding the voice features")
    p.add_argument("--data", type=Path, default=here.parent / "shared" / "data", help="the shared data folder")
    p.add_argument("--priors", type=floats, default=[10.0, 30.0, 60.0], help="prior_s values (s; default 10,30,60)")
    p.add_argument("--caps", type=floats, default=[0.5, 1.0, 1.5, 2.0],
                   help="cap_std values (std; default 0.5,1,1.5,2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the checkpoints (default 1)")
    p.add_argument("--min-gain", type=float, default=0.01,
                   help="mean speaker-session accuracy a setting must gain over the defaults (default 0.01)")
    args = p.parse_args(argv)
    if any(v <= 0 for v in args.priors + args.caps):
        p.error("--priors and --caps must be positive (no baseline is always scored)")
    d = BaselineConfig()
    default = (d.prior_s, d.cap_std)
    if default[0] not in args.priors or default[1] not in args.caps:
        p.error(f"the grid must hold the defaults (prior {d.prior_s:g}, cap {d.cap_std:g}) to compare with them")
    import torch

    torch.set_num_threads(max(1, args.threads))
    table = cells(args)
    n = len(table[default]["mixed"])
    print(f"\nmean accuracy over {n} cells (checkpoint x held-out corpus x head), change against the defaults:")
    lines, best = verdict(table, default, args.min_gain)
    print("\n".join(lines))
    if best is None or best == default:
        print(f"\nverdict: no setting gains {args.min_gain:g} in speaker sessions within the one-emotion bound; the "
              "defaults stay")
    else:
        print(f"\nverdict: prior {best[0]:g} s, cap {best[1]:g} std meets the rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
