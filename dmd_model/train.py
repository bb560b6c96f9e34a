"""Train DMD.

    python -m dmd_model.train --data FILE --preset NAME --epochs N --out DIR [--device cpu|cuda] [--seed S]

Several GPUs (or CPU processes with gloo): launch the same command with torchrun:

    torchrun --nproc_per_node 4 -m dmd_model.train --data ... --out ...

--batch-size is per process, so each optimizer step sums batch x accumulation x processes samples (the reference's
16 x 10 = 160 on one GPU becomes 640 on four; pass --accumulation to keep it). Rank 0's seed and validation score
are broadcast: one shuffled order split into disjoint shards, and the same early-stopping and learning-rate
decisions on every rank.

Writes DIR/model.safetensors, DIR/config.json and DIR/metrics.json (per-split metrics and per-term final losses).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from .config import PRESETS, TRAIN_PRESETS, preset

EPILOG = """\
data formats:
  *.pkl       MMSA feature pickle (CMU-MOSI/MOSEI, aligned or unaligned; 'text' or 'text_bert').
              Pickles can execute code when loaded: open only files you trust.
  *.npz       packed dataset (python -m recipes.bootstrap writes one)
  DIR/        a directory of *.feat.npz files from python -m realtime.extract

presets:
  mosi, mosei        the paper's hyperparameters (flattened heads; sequence lengths taken from the data).
                     Text path: the frozen 768-d 'text' BERT features by default; the paper fine-tunes BERT on
                     'text_bert' tokens, which --text-encoder DIR (a local bert-base-uncased) reproduces
  live               our extractors: MiniLM 384 / blendshapes+geometry 321 / eGeMAPS 25; valence + 7 emotions
  live-prior-free    live without the hand-set GD edge prior and its regulariser

examples:
  python -m dmd_model.train --data MOSI/aligned_50.pkl --preset mosi --epochs 50 --out runs/mosi
  python -m dmd_model.train --data MOSI/aligned_50.pkl --preset mosi --text-encoder ~/bert-base-uncased --out runs/mosi-bert
  python -m dmd_model.train --data MOSI/aligned_50.pkl --preset mosi --text-encoder minilm --out runs/mosi-minilm
  torchrun --nproc_per_node 2 -m dmd_model.train --data feats/ --preset live --epochs 20 --out runs/live
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dmd_model.train", description="Train DMD (Decoupled Multimodal Distilling).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="dataset: MMSA .pkl, packed .npz, or a directory of .feat.npz")
    p.add_argument("--preset", default="live", choices=sorted(PRESETS), help="model preset (default: live)")
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs; early stopping may end sooner (default 30)")
    p.add_argument("--out", required=True, help="output directory for the checkpoint and metrics.json")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's, 1111)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size per process; with torchrun a step sums batch x accumulation x processes "
                        "(default: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the preset's)")
    p.add_argument("--accumulation", type=int, default=None, help="mini-batches summed per optimizer step")
    p.add_argument("--lr-schedule", choices=("plateau", "cosine"), default=None,
                   help="plateau: halve the rate when the validation score stalls (reference); cosine: anneal it "
                        "to 1%% over --epochs (default: the preset's; live uses cosine)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="decoupled weight decay (AdamW); 0 = plain Adam as the reference (default: the preset's)")
    p.add_argument("--early-stop", type=int, default=None, help="epochs without validation improvement before stopping")
    p.add_argument("--modality-dropout", type=float, default=None, help="per-modality absent-mask probability in training")
    p.add_argument("--average-from", type=int, default=None, metavar="EPOCH",
                   help="average the end weights of every epoch from EPOCH on (stochastic weight averaging) and keep "
                        "the average instead of the best-validation epoch (default: off)")
    p.add_argument("--text-encoder", default=None,
                   help="train a text encoder on token ids: 'minilm' (packaged) or a local Hugging Face directory "
                        "(e.g. bert-base-uncased, as the paper). On an MMSA pickle this reads 'text_bert' (an error "
                        "if it has none); without it the faithful presets read the frozen 'text' features")
    p.add_argument("--freeze-text-encoder", action="store_true", help="do not fine-tune the text encoder")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights and input statistics (fine-tuning, e.g. the bundled "
                        "assets/dmd_live on your own features) instead of a fresh model; its config replaces the "
                        "preset's, and its feature spec must match the data's; the optimiser starts fresh; its "
                        "MiniLM overlay (text_encoder.safetensors), if any, is copied beside the new weights")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def _device(arg: str | None, local_rank: int) -> str:
    import torch

    if arg is None:
        arg = "cuda" if torch.cuda.is_available() else "cpu"
    if arg.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda was asked for, but CUDA is not available on this machine")
    if arg == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        arg = f"cuda:{local_rank}"
    return arg


def resolve_config(preset_name: str, ds, text_encoder: str | None, freeze: bool):
    """Preset -> DMDConfig fitted to the data: faithful presets take their sequence lengths from the data; dims must
    match the preset (a mismatch is an error naming the modality and both dims)."""
    from .data import DataError
    from .text_encoder import text_encoder_dim

    cfg = preset(preset_name)
    dims = list(ds.dims())
    if text_encoder and not ds.text_tokens:
        raise DataError(
            f"{ds.source}: --text-encoder {text_encoder} needs token ids, but the text here is precomputed features; "
            "drop --text-encoder, or use an MMSA pickle with 'text_bert'"
        )
    if ds.text_tokens:
        enc = text_encoder or cfg.text_encoder
        if enc is None:
            raise DataError(
                f"{ds.source}: the text is token ids ('text_bert'); pass --text-encoder minilm or a local model directory"
            )
        dims[0] = text_encoder_dim(enc)  # the encoder's hidden size replaces the preset's text dim
        cfg = cfg.replace(text_encoder=enc, finetune_text_encoder=not freeze,
                          input_dims=(dims[0], *cfg.input_dims[1:]))
    if preset_name.startswith("live") and dims[2] != cfg.input_dims[2]:
        # the live presets take either acoustic stream: 25 eGeMAPS LLDs, or those + 384 Whisper encoder states
        cfg = cfg.replace(input_dims=(*cfg.input_dims[:2], dims[2]))
    for m, name in enumerate(("language", "visual", "acoustic")):
        if dims[m] != cfg.input_dims[m]:
            raise DataError(
                f"{ds.source}: {name} feature dim is {dims[m]} but preset {preset_name!r} expects {cfg.input_dims[m]}"
            )
    if cfg.temporal_pooling == "flatten":
        cfg = cfg.replace(seq_lens=tuple(int(t) for t in ds.seq_lens()))
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from .checkpoint import save_checkpoint
    from .data import DataError, load_dataset
    from .model import DMD
    from .trainer import Trainer, seed_everything, split_metrics, compute_input_stats

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _device(args.device, local_rank)
    if world > 1:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))

    tcfg = TRAIN_PRESETS[args.preset]
    overrides = {k: v for k, v in {
        "seed": args.seed, "batch_size": args.batch_size, "lr": args.lr, "accumulation": args.accumulation,
        "early_stop": args.early_stop, "modality_dropout": args.modality_dropout, "lr_schedule": args.lr_schedule,
        "weight_decay": args.weight_decay, "average_from": args.average_from,
    }.items() if v is not None}
    tcfg = dataclasses.replace(tcfg, max_epochs=args.epochs, **overrides)
    seed_everything(tcfg.seed)

    try:
        # asking for a text encoder means training it on token ids ('text_bert'), never on frozen features
        ds = load_dataset(args.data, seq_lens=preset(args.preset).seq_lens,
                          text_tokens=True if args.text_encoder else None)
        cfg = resolve_config(args.preset, ds, args.text_encoder, args.freeze_text_encoder)
    except (DataError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    log = print if rank == 0 else (lambda *_: None)
    if args.init:
        from .checkpoint import CheckpointError, load_checkpoint
        from .feature_spec import FeatureSpecMismatch

        try:
            model, init_spec, _ = load_checkpoint(args.init)
            if init_spec is not None and ds.spec is not None:
                init_spec.check_compatible(ds.spec, what=f"{args.data} vs --init {args.init}")
        except (CheckpointError, FeatureSpecMismatch) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        cfg = model.cfg
        model.train()  # keeps the checkpoint's input statistics: the weights were trained with them
        log(f"initialised from {args.init}")
    else:
        model = DMD(cfg)
        if cfg.use_masks and not ds.text_tokens:
            compute_input_stats(model, ds.split("train"))
    log(f"DMD preset={args.preset} params={model.num_parameters():,} device={device} world={world} "
        f"train/valid/test={len(ds.split('train'))}/{len(ds.split('valid'))}/{len(ds.split('test'))}")
    trainer = Trainer(model, tcfg, device=device, rank=rank, world_size=world, progress=not args.no_progress, log=log)
    t0 = time.perf_counter()
    fit = trainer.fit(ds, args.epochs)
    elapsed = time.perf_counter() - t0

    if rank == 0:
        metrics = {name: split_metrics(model, trainer.predict(ds.split(name)), ds.split(name)) for name in ds.splits}
        doc = {
            "splits": metrics,
            "final_train_loss_terms": fit.final_terms,
            "best_epoch": fit.best_epoch,
            "best_valid_score": fit.best_valid_score,
            "averaged_epochs": fit.averaged_epochs,
            "averaged_valid_score": fit.averaged_valid_score,
            "epochs_run": len(fit.history),
            "history": [dataclasses.asdict(h) for h in fit.history],
            "train_seconds": elapsed,
            "seed": tcfg.seed,
            "data": str(args.data),
        }
        out = Path(args.out)
        save_checkpoint(model, out, ds.spec, extra={"train": dataclasses.asdict(tcfg), "preset": args.preset,
                                                    "emotions": list(cfg.emotions)})
        if args.init:
            carried = carry_text_overlay(Path(args.init), out)
            if carried:
                log(f"copied {carried.name} from {args.init}: the features it reads were made with it")
        (out / "metrics.json").write_text(json.dumps(doc, indent=2, default=float))
        for name, m in metrics.items():
            line = f"{name:5s} n={m['n']}"
            if "fused" in m:
                f = m["fused"]
                line += (f"  MAE {f['MAE']}  Corr {f['Corr']}  Acc7 {f['Mult_acc_7']}  "
                         f"Acc2 non0 {f['Non0_acc_2']} / has0 {f['Has0_acc_2']}  F1 non0 {f['Non0_F1_score']}")
            if "fused_emotion" in m:
                line += f"  emotion acc {m['fused_emotion']['acc']}  macro-F1 {m['fused_emotion']['macro_f1']}"
            log(line)
        log("final loss terms: " + ", ".join(f"{k} {v:.6f}" for k, v in fit.final_terms.items()))
        kept = (f"weights averaged over epochs {fit.averaged_epochs}" if fit.averaged_epochs
                else f"best epoch {fit.best_epoch}")
        log(f"{kept}; wrote {out / 'model.safetensors'}, config.json, metrics.json")
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return 0


def carry_text_overlay(init_dir: Path, out_dir: Path) -> Path | None:
    """A fine-tuned checkpoint reads the language features its ``--init`` read: copy the init's MiniLM overlay
    (`TEXT_OVERLAY_FILE`) beside the new weights, so the page and ``realtime.extract`` find it there. None when the
    init has none."""
    import shutil

    from .checkpoint_config import TEXT_OVERLAY_FILE

    src = Path(init_dir) / TEXT_OVERLAY_FILE
    if not src.is_file() or src.resolve() == (Path(out_dir) / TEXT_OVERLAY_FILE).resolve():
        return None
    return Path(shutil.copyfile(src, Path(out_dir) / TEXT_OVERLAY_FILE))


if __name__ == "__main__":
    sys.exit(main())
