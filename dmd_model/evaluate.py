"""Evaluate a DMD checkpoint with the paper's protocol (MMSA metricsTop, spec §7).

    python -m dmd_model.evaluate --checkpoint DIR --data FILE [--split test] [--out FILE.json]

Prints and writes: Acc-2 and F1 in both conventions (Has0: negative vs non-negative; Non0: negative vs positive
with zero labels dropped, which is what the paper calls ACC2/F1), Acc-5, Acc-7, MAE and Corr for the fused
output; accuracy and macro-F1 for classification heads; per-head metrics; the mean GD edges. With
``--ablate``, also the fused result with each modality absent and with each alone (live checkpoints).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MODALITY_SETS = {
    "all": (1, 1, 1),
    "no_language": (0, 1, 1), "no_visual": (1, 0, 1), "no_acoustic": (1, 1, 0),
    "language_only": (1, 0, 0), "visual_only": (0, 1, 0), "acoustic_only": (0, 0, 1),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dmd_model.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.safetensors + config.json)")
    p.add_argument("--data", required=True, help="dataset: MMSA .pkl, packed .npz, or a directory of .feat.npz")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--out", default=None, help="write the metrics JSON here (default: CHECKPOINT/eval_<split>.json)")
    p.add_argument("--ablate", action="store_true", help="also score with each modality absent and each alone")
    return p


def evaluate(ckpt: str | Path, data: str | Path, split: str = "test", device: str = "cpu", ablate: bool = False) -> dict:
    import numpy as np

    from .checkpoint import load_checkpoint
    from .config import TrainConfig
    from .data import DataError, load_dataset
    from .trainer import Trainer, split_metrics

    model, spec, _doc = load_checkpoint(ckpt, device)
    cfg = model.cfg
    ds = load_dataset(data, seq_lens=cfg.seq_lens, text_tokens=cfg.text_encoder is not None or None)
    if spec is not None and spec.language.extractor not in ("mmsa", "unknown"):
        spec.check_compatible(ds.spec, what=str(data))  # features from another extractor would score silently wrong
    dims = list(ds.dims())
    if ds.text_tokens:
        dims[0] = cfg.input_dims[0]
    for m, name in enumerate(("language", "visual", "acoustic")):
        if dims[m] != cfg.input_dims[m]:
            raise DataError(f"{data}: {name} feature dim is {dims[m]} but the checkpoint expects {cfg.input_dims[m]}")
    s = ds.split(split)
    trainer = Trainer(model, TrainConfig(), device=device, progress=False)
    result = {"checkpoint": str(ckpt), "data": str(data), "split": split,
              "metrics": split_metrics(model, trainer.predict(s), s)}
    if ablate:
        result["ablation"] = {}
        for name, keep in MODALITY_SETS.items():
            mask = np.broadcast_to(np.array(keep, bool), (len(s), 3))
            p = trainer.predict(s, present=mask)
            m = split_metrics(model, p, s)
            result["ablation"][name] = {k: m[k] for k in ("fused", "fused_emotion") if k in m}
    return result


def format_report(r: dict) -> str:
    m = r["metrics"]
    lines = [f"{r['checkpoint']} on {r['data']} [{r['split']}], n={m['n']}"]
    if "fused" in m:
        f = m["fused"]
        lines.append(
            f"  fused: Acc2 (Non0, paper) {f['Non0_acc_2']}  F1 (Non0) {f['Non0_F1_score']}  "
            f"Acc2 (Has0) {f['Has0_acc_2']}  F1 (Has0) {f['Has0_F1_score']}  Acc5 {f['Mult_acc_5']}  "
            f"Acc7 {f['Mult_acc_7']}  MAE {f['MAE']}  Corr {f['Corr']}"
        )
    if "fused_emotion" in m:
        lines.append(f"  fused emotion: acc {m['fused_emotion']['acc']}  macro-F1 {m['fused_emotion']['macro_f1']}")
        for head, hm in m["heads_emotion"].items():
            lines.append(f"    {head:18s} acc {hm['acc']}  macro-F1 {hm['macro_f1']}")
    if "heads_valence" in m:
        for head, hm in m["heads_valence"].items():
            lines.append(f"    {head:18s} valence MAE {hm['MAE']}  Corr {hm['Corr']}")
    if m.get("heads_absent"):
        lines.append(f"    no head figures for {', '.join(m['heads_absent'])}: absent in every sample")
    lines.append(f"  mean HomoGD edges (V→L, A→L, L→V, A→V, L→A, V→A): {m['mean_homo_edges']}")
    lines.append(f"  mean HeteroGD edges:                              {m['mean_hetero_edges']}")
    for name, a in r.get("ablation", {}).items():
        parts = []
        if "fused_emotion" in a:
            parts.append(f"emotion acc {a['fused_emotion']['acc']} macro-F1 {a['fused_emotion']['macro_f1']}")
        if "fused" in a:
            parts.append(f"MAE {a['fused']['MAE']} Corr {a['fused']['Corr']}")
        lines.append(f"  ablation {name:14s} " + "  ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError
    from .data import DataError
    from .feature_spec import FeatureSpecMismatch

    try:
        r = evaluate(args.checkpoint, args.data, args.split, args.device, args.ablate)
    except (CheckpointError, DataError, FeatureSpecMismatch, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(r))
    out = Path(args.out) if args.out else Path(args.checkpoint) / f"eval_{args.split}.json"
    out.write_text(json.dumps(r, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
