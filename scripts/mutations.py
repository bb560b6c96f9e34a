"""Fidelity mutation check: apply one single-line departure from the authors' DMD at a time to a temporary copy of
the tree, run the fidelity tests on it, and print whether the tests caught it.

    python scripts/mutations.py            # every mutation; exit status 1 if any is missed
    python scripts/mutations.py --list     # what each mutation changes
    python scripts/mutations.py -k causal  # only mutations whose name contains "causal"

The first nine are the ones issue 15 lists (each passed the whole suite before the fidelity tests existed); the
rest undo the fidelity fixes themselves. The unmutated copy must pass first, or nothing can be concluded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/dmd/test_fidelity.py", "tests/dmd/test_objective.py"]


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # file, relative to the repository root
    old: str  # must occur exactly once
    new: str


MUTATIONS = [
    Mutation("edges: student and teacher swapped", "dmd_model/gd_unit.py",
             "pairs = torch.cat([z[:, _STUDENTS], z[:, _TEACHERS]], dim=-1)",
             "pairs = torch.cat([z[:, _TEACHERS], z[:, _STUDENTS]], dim=-1)"),
    Mutation("homo flatten channel-major instead of time-major", "dmd_model/model.py",
             "return x.permute(0, 2, 1).flatten(1)", "return x.flatten(1)"),
    Mutation("cross-modal pairs reversed", "dmd_model/model.py",
             "self.cross_pairs = {L: (A, V), V: (L, A), A: (L, V)}",
             "self.cross_pairs = {L: (V, A), V: (A, L), A: (V, L)}"),
    Mutation("attention dropout from the wrong modality", "dmd_model/model.py",
             "src_dropout = (cfg.attn_dropout, cfg.attn_dropout_v, cfg.attn_dropout_a)",
             "src_dropout = (cfg.attn_dropout, cfg.attn_dropout_a, cfg.attn_dropout_v)"),
    Mutation("distillation weight 0.5", "dmd_model/config.py",
             "distill: float = 0.05", "distill: float = 0.5"),
    Mutation("hetero decorrelation term dropped", "dmd_model/losses.py",
             "het_gd = het.logit + het.reg + (het.repr if cfg.hetero_gd.use_repr_loss else 0.0)",
             "het_gd = het.logit + het.reg"),
    Mutation("no causal mask", "dmd_model/config.py",
             "attn_mask: bool = True", "attn_mask: bool = False"),
    Mutation("GD temperature 1", "dmd_model/config.py",
             "temperature: float = 8.0", "temperature: float = 1.0"),
    Mutation("no sqrt(d) input scaling", "dmd_model/transformer.py",
             "self.scale = math.sqrt(dim)", "self.scale = 1.0"),
    # beyond the nine: cross-modal query and source swapped, and the fixes of issue 15 undone
    Mutation("cross-modal query and source swapped", "dmd_model/model.py",
             'self.cross_modal[f"{t}<-{s}"](private_seq[t], private_seq[s], key_padding_mask=pad[s])',
             'self.cross_modal[f"{t}<-{s}"](private_seq[s], private_seq[t], key_padding_mask=pad[t])'),
    Mutation("positions renumbered over non-padding steps", "dmd_model/transformer.py",
             "return sinusoidal_positions(absolute * real, self.dim)",
             "return sinusoidal_positions(torch.cumsum(real, dim=0) * real, self.dim)"),
    Mutation("keys and values share one dropout mask", "dmd_model/transformer.py",
             "return k, self._embed(kv)", "return k, k"),
    Mutation("GD regulariser not renormalised over present edges", "dmd_model/gd_unit.py",
             "if present is None:\n            reg =", "if True:\n            reg ="),
    Mutation("valence loss on unlabelled samples", "dmd_model/losses.py",
             "vm = mask if y.valence_known is None else", "vm = mask if True else"),
    Mutation("Python rounding of the metrics", "dmd_model/metrics.py",
             "return float(np.round(np.float64(v), decimals))", "return round(float(v), decimals)"),
    Mutation("--text-encoder ignored on pickles", "dmd_model/train.py",
             "text_tokens=True if args.text_encoder else None)", "text_tokens=None)"),
]


def copy_tree(dst: Path) -> None:
    shutil.copytree(ROOT / "dmd_model", dst / "dmd_model", ignore=shutil.ignore_patterns("__pycache__"))
    (dst / "tests").mkdir()
    shutil.copy2(ROOT / "tests" / "conftest.py", dst / "tests" / "conftest.py")
    shutil.copytree(ROOT / "tests" / "dmd", dst / "tests" / "dmd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", dst / "pyproject.toml")


def run_tests(tree: Path) -> tuple[bool, str]:
    """True when every test passes; the tail of pytest's output names what failed."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
               PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not slow", "-p", "no:cacheprovider", *TESTS]
    res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    failed = [line for line in res.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return res.returncode == 0, (failed[0] if failed else res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-k", default="", help="only mutations whose name contains this")
    p.add_argument("--list", action="store_true", help="print the mutations and exit")
    args = p.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.k in m.name]
    if args.list:
        for m in chosen:
            print(f"{m.name}\n  {m.path}: {m.old!r}\n  -> {m.new!r}")
        return 0
    with tempfile.TemporaryDirectory(prefix="dmd-mutations-") as tmp:
        tree = Path(tmp)
        copy_tree(tree)
        ok, detail = run_tests(tree)
        print(f"baseline (no mutation): {'pass' if ok else 'FAIL'}  {detail}")
        if not ok:
            print("the unmutated tree fails its tests; fix that first")
            return 2
        missed = 0
        for m in chosen:
            f = tree / m.path
            original = f.read_text()
            if original.count(m.old) != 1:
                print(f"{'STALE':7s} {m.name}: the text to mutate is not found exactly once in {m.path}")
                missed += 1
                continue
            f.write_text(original.replace(m.old, m.new))
            try:
                passed, detail = run_tests(tree)
            finally:
                f.write_text(original)
            missed += passed
            print(f"{'missed' if passed else 'caught':7s} {m.name}  [{detail}]")
        print(f"{len(chosen) - missed} of {len(chosen)} mutations caught")
        return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
