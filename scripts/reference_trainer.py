"""Run the authors' DMD trainer (a checkout of mdswyz/DMD, not part of this project) on an MMSA pickle, on the CPU,
for at most N epochs, and print the test metrics of the best-validation epoch, as its own run does at the end.

    python scripts/reference_trainer.py --ref /work/ref/DMD --data planted.pkl --epochs 30 --report 10 30

What is changed to make it run here, all from outside its code:
- ``.cuda()`` on tensors and modules is a no-op (the code calls it unconditionally); ``easydict`` and ``pynvml``
  are stubbed when not installed (only attribute access and nothing, respectively, are used on the CPU);
- ``use_bert`` is off: the text is the pickle's frozen ``text`` features, as ``--preset mosi`` without
  ``--text-encoder`` (no BERT weights are available offline);
- its orthogonality loss calls ``CosineEmbeddingLoss`` on 3-D tensors, which PyTorch >= 1.10 refuses (spec §9
  item 1); it is replaced by the per-position cosine over features, this project's default ``ort_mode``;
- ``ReduceLROnPlateau`` loses the ``verbose`` argument that torch 2.x no longer accepts;
- an epoch cap (the code has none): per-epoch validation losses and test metrics are recorded and the run stops
  after ``--epochs``; ``--report K`` prints the test metrics of the best-validation epoch among the first K
  (the code's own rule: validation L1 "Loss" improved by more than 1e-6), which is what a K-epoch run reports.
The data loaders use 0 workers; everything else (seed 1111, model, losses, Adam, accumulation of 10, value clipping,
ReduceLROnPlateau, early stopping after 10 epochs) is the code as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import types
from pathlib import Path


class _StopTraining(Exception):
    pass


def _stub_modules() -> None:
    try:
        import easydict  # noqa: F401
    except ImportError:
        mod = types.ModuleType("easydict")

        class EasyDict(dict):
            def __getattr__(self, k):
                try:
                    return self[k]
                except KeyError as e:
                    raise AttributeError(k) from e

            def __setattr__(self, k, v):
                self[k] = v

        mod.EasyDict = EasyDict
        sys.modules["easydict"] = mod
    try:
        import pynvml  # noqa: F401
    except ImportError:
        sys.modules["pynvml"] = types.ModuleType("pynvml")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", required=True, help="checkout of mdswyz/DMD")
    p.add_argument("--data", required=True, help="MMSA pickle (MOSI layout: text 768, audio 5, vision 20)")
    p.add_argument("--epochs", type=int, default=30, help="stop after this many epochs (the code has no cap)")
    p.add_argument("--report", type=int, nargs="+", default=None, help="epoch budgets to report (default: --epochs)")
    p.add_argument("--seed", type=int, default=1111, help="seed given to the reference code's setup_seed (default 1111, the code's own)")
    p.add_argument("--json", default=None, help="also write the per-epoch record here")
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    _stub_modules()
    torch.Tensor.cuda = lambda self, *a, **k: self
    nn.Module.cuda = lambda self, *a, **k: self
    ref = Path(args.ref).resolve()
    sys.path.insert(0, str(ref))
    from config import get_config_regression
    from data_loader import MMDataLoader
    import importlib

    from run import _run
    from utils import setup_seed

    trainer_module = importlib.import_module("trains.singleTask.DMD")  # the module (the package re-exports the class)

    cfg = get_config_regression("dmd", "mosi", ref / "config" / "config.json")
    cfg.update({"use_bert": False, "featurePath": str(Path(args.data).resolve()), "is_distill": True,
                "mode": "train", "device": torch.device("cpu"), "train_mode": "regression", "feature_T": "",
                "feature_A": "", "feature_V": "", "cur_seed": 1})

    record = {"valid_loss": [], "test": [], "seconds": []}
    original_do_test = trainer_module.DMD.do_test
    original_init = trainer_module.DMD.__init__
    t0 = time.perf_counter()

    def ort_cosine(s, c, _target):  # (T, B, d): mean over (t, b) of max(0, cos over features)
        return F.cosine_similarity(s, c, dim=-1, eps=1e-8).clamp_min(0).mean()

    def init(self, a):
        original_init(self, a)
        self.cosine = ort_cosine

    def do_test(self, model, dataloader, mode="VAL", return_sample_results=False):
        res = original_do_test(self, model, dataloader, mode, return_sample_results)
        if mode == "VAL":
            record["valid_loss"].append(float(res["Loss"]))
        elif mode == "TEST" and len(record["test"]) < len(record["valid_loss"]):  # not the final re-test
            record["test"].append({k: float(v) for k, v in res.items()})
            record["seconds"].append(time.perf_counter() - t0)
            n = len(record["test"])
            print(f"epoch {n:3d}  valid Loss {record['valid_loss'][-1]}  test MAE {res['MAE']}  "
                  f"Acc_7 {res['Acc_7']}  Acc_2 {res['Acc_2']}  ({record['seconds'][-1]:.0f} s)", flush=True)
            if n >= args.epochs:
                raise _StopTraining
        return res

    class Plateau(torch.optim.lr_scheduler.ReduceLROnPlateau):  # its 'verbose' argument is gone in torch 2.x
        def __init__(self, *a, verbose=False, **k):
            super().__init__(*a, **k)

    trainer_module.ReduceLROnPlateau = Plateau
    trainer_module.DMD.__init__ = init
    trainer_module.DMD.do_test = do_test
    with tempfile.TemporaryDirectory(prefix="dmd-ref-") as work:
        os.chdir(work)  # the trainer writes ./pt/<epoch>.pth and ./pt/dmd.pth
        Path("pt").mkdir()
        setup_seed(args.seed)
        try:
            _run(cfg, num_workers=0)
        except _StopTraining:
            pass
    epochs_run = len(record["test"])
    for k in args.report or [args.epochs]:
        best, best_epoch = 1e8, 0
        for e, loss in enumerate(record["valid_loss"][:k], start=1):
            if loss <= best - 1e-6:
                best, best_epoch = loss, e
        t = record["test"][best_epoch - 1]
        print(f"reference, {k} epochs (ran {min(k, epochs_run)}): best valid epoch {best_epoch}  test "
              + "  ".join(f"{m} {t[m]}" for m in ("MAE", "Acc_7", "Acc_2", "F1_score")))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
