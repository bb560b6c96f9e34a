"""Several trainings of one leave-one-corpus-out fold, read together: each held-out head beside its probe, per run
and over the runs.

    python -m recipes.transfer_summary runs/locoB runs/locoB_seed1 runs/locoB_seed2 [--metric acc|macro_f1]

One training of a narrow fold moves its held-out heads by up to 0.1 (docs/bootstrap.md, "How far one seed moves the
transfer figures"), so a head-against-probe count from one run says little. Each argument is one training's folder
holding its `recipes.crosscorpus` outputs (any ``crosscorpus.json`` below it, one per modality). For every corpus
that the run's checkpoint never saw (``--trained-on`` of the crosscorpus run), the plain heads (fused, homogeneous,
heterogeneous; each clip alone, no baseline or calibration) are printed per run, with their mean, minimum and
maximum over the runs and how many runs reach the probe trained on the same corpora (the probe is a deterministic
logistic regression on fixed features: the same in every run). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HEADS = ("fused", "homo", "hetero")


def probe_of(fold: dict, metric: str) -> float | None:
    """The fold's probe on the checkpoint's features trained on the checkpoint's corpora: the same-corpora row when
    the crosscorpus run added one, else the fold's globally normalised probe on the checkpoint's features."""
    same = [p for p in fold["probes"] if p.get("as_checkpoint")]
    plain = [p for p in fold["probes"] if p["norm"] == "global"]
    rows = same or plain[:1]
    return rows[0][metric] if rows else None


def held_out_heads(doc: dict, metric: str) -> dict[tuple[str, str], dict]:
    """{(modality, corpus): {"probe": float, "fused"/"homo"/"hetero": float}} for the corpora the checkpoint never
    saw, from one crosscorpus.json."""
    out = {}
    for fold in doc["folds"]:
        plain = {c["head"].split("_")[0]: c[metric] for c in fold["checkpoint"]
                 if not c["seen_in_training"] and c["items"] == "all" and "," not in c["head"]}
        if set(plain) >= set(HEADS):
            out[(fold["modality"], fold["held_out"])] = {"probe": probe_of(fold, metric), **plain}
    return out


def read_run(folder: Path, metric: str) -> dict:
    files = sorted(folder.rglob("crosscorpus.json"))
    if not files:
        raise SystemExit(f"error: no crosscorpus.json below {folder}")
    cells: dict = {}
    for f in files:
        cells.update(held_out_heads(json.loads(f.read_text()), metric))
    return cells


def table(runs: dict[str, dict], metric: str) -> list[str]:
    """The Markdown lines: one row per held-out corpus and head, then each run's mean over its held-out heads."""
    names = list(runs)
    cols = sorted({k for cells in runs.values() for k in cells})
    lines = [f"| held out | probe | head | {' | '.join(names)} | mean | min | max | runs >= probe |",
             "|---|---|---|" + "---|" * (len(names) + 4)]
    for key in cols:
        have = [runs[n][key] for n in names if key in runs[n]]
        probe = have[0]["probe"]
        for h in HEADS:
            vals = [runs[n][key][h] if key in runs[n] else None for n in names]
            got = [v for v in vals if v is not None]
            reach = sum(v >= probe for v in got) if probe is not None else 0
            cells = " | ".join("-" if v is None else f"{v:g}" for v in vals)
            lines.append(f"| {key[0]}: {key[1]} | {probe if probe is not None else '-'} | {h} | {cells} | "
                         f"{round(statistics.fmean(got), 6):g} | {min(got):g} | {max(got):g} | {reach} of {len(got)} |")
    means = []
    for n in names:
        v = [c[h] for c in runs[n].values() for h in HEADS]
        means.append(f"{round(statistics.fmean(v), 6):g} ({len(v)} heads)")
    lines.append("")
    lines.append(f"mean {metric} of each run's held-out heads: " + "; ".join(f"{n} {m}" for n, m in zip(names, means)))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.transfer_summary", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("runs", nargs="+", type=Path, help="one folder per training, holding its crosscorpus outputs")
    p.add_argument("--metric", choices=("acc", "macro_f1"), default="acc", help="the figure read (default acc)")
    args = p.parse_args(argv)
    for r in args.runs:
        if not r.is_dir():
            p.error(f"{r} is not a folder")
    runs = {str(r): read_run(r, args.metric) for r in args.runs}
    if not any(runs.values()):
        print("error: no held-out corpus in these runs (every crosscorpus row is of a corpus the checkpoint saw)",
              file=sys.stderr)
        return 1
    print("\n".join(table(runs, args.metric)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
