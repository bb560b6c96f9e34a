"""Scoring-path A/B: the working tree's `dmd_model/inference.py` against the same file at a git revision.

    python -m benchmarks.scoring_ab [--base HEAD] [--presets mosi,live] [--batches 1,16,64] [--repeats 40]
                                    [--threads 1] [--seed 0]

A change to the scoring path is judged against the path it replaces, not against a figure from another day: this
host's absolute times drift by tens of percent between runs (docs/speed.md), the ratio of two candidates timed
interleaved in one process does not. Both versions of `inference.scores` are traced and frozen
(`dmd_model.compiled.TracedScores`, as the live scorer runs them) on one model per preset with random weights (every
bias and LayerNorm perturbed, so folded affines are exercised), checked to agree to 1e-5 on the prediction, the
heads and the edges, and timed interleaved (the order rotates every repeat). Prints min and p50 per batch and the
ratio of p50s and of minima, base / working tree (> 1: the working tree is faster).

Only `dmd_model/inference.py` is taken from the revision; the rest of `dmd_model` is the working tree's.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

from .model_speed import TOL, reps_for, summary, timed

ROOT = Path(__file__).resolve().parents[1]
BASE_MODULE = "dmd_model._scoring_base"
COMPARED = ("prediction", "homo_logits", "hetero_logits", "shared_fusion_logits", "homo_edges", "hetero_edges")


def base_scores(rev: str):
    """`scores` from `dmd_model/inference.py` at git revision `rev`, imported as a module of the package (its
    relative imports resolve to the working tree's `dmd_model`)."""
    try:
        source = subprocess.run(["git", "show", f"{rev}:dmd_model/inference.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise SystemExit(f"error: cannot read dmd_model/inference.py at {rev!r}: {detail.strip()}") from None
    importlib.import_module("dmd_model")  # the parent package first

    spec = importlib.util.spec_from_loader(BASE_MODULE, loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = f"{rev}:dmd_model/inference.py"
    sys.modules[BASE_MODULE] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module.scores


def random_model(torch, name: str, seed: int):
    from dmd_model.config import preset
    from dmd_model.model import DMD

    torch.manual_seed(seed)
    model = DMD(preset(name)).eval()
    with torch.no_grad():
        for pname, param in model.named_parameters():
            if pname.endswith("bias") or "norm" in pname:
                param.add_(torch.empty_like(param).uniform_(-0.1, 0.1))
    return model


def inputs(torch, cfg, batch: int, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed)
    x = tuple(torch.randn(batch, cfg.seq_lens[m], cfg.input_dims[m], generator=g) for m in range(3))
    return x + (torch.tensor([list(cfg.seq_lens)] * batch), torch.ones(batch, 3, dtype=torch.bool))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scoring_ab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="HEAD", help="git revision whose dmd_model/inference.py is the base (default HEAD)")
    p.add_argument("--presets", default="mosi,live", help="comma-separated presets (default mosi,live)")
    p.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes (default 1,16,64)")
    p.add_argument("--repeats", type=int, default=40, help="timed runs per candidate at batch <= 8; a quarter above")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights and inputs")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    base_fn = base_scores(args.base)

    import torch

    from dmd_model.compiled import TracedScores
    from dmd_model.inference import scores

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, cpu, {args.threads} thread(s); frozen traces of the scoring path, interleaved; "
          f"base = dmd_model/inference.py at {args.base}, new = the working tree; ratio = base / new (> 1: new faster)")
    for name in args.presets.split(","):
        model = random_model(torch, name, args.seed)
        graphs = {"base": TracedScores(model, base_fn), "new": TracedScores(model, scores)}
        for b in batches:
            x = inputs(torch, model.cfg, b, args.seed + b)
            with torch.inference_mode():
                out = {k: g(*x) for k, g in graphs.items()}
            err = max((getattr(out["base"], f) - getattr(out["new"], f)).abs().max().item() for f in COMPARED)
            if err > TOL:
                print(f"{name} batch {b}: max |base - new| = {err:.3g} > {TOL}: not the same function; stopped")
                return 1
            times = timed({k: (lambda g=g: g(*x)) for k, g in graphs.items()}, reps_for(b, args.repeats), 2,
                          lambda: None)
            (b_lo, b_p50), (n_lo, n_p50) = summary(times["base"]), summary(times["new"])
            print(f"  {name} batch {b:3d}: max |base - new| {err:.2e} | base min {b_lo:.3f} p50 {b_p50:.3f} ms | "
                  f"new min {n_lo:.3f} p50 {n_p50:.3f} ms | p50 {b_p50 / n_p50:.4f}x, min {b_lo / n_lo:.4f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
