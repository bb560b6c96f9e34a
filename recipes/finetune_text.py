"""Fine-tune MiniLM's top layers on the text corpora; the tuned layers ship as a small safetensors overlay.

The paper fine-tunes its text encoder; the ``live`` preset used to freeze MiniLM. On a 2-core CPU a full
fine-tune of all six layers is too slow to repeat, so this tunes the top ``--layers`` layers (the lower ones stay
as shipped): the lower layers' states of every training line are computed once and cached, and each epoch then
runs only the tuned layers forward and backward. The objective is 7-class cross-entropy (class-weighted by
inverse square-root frequency, for macro-F1) of a mean over each line's word tokens, the tokens DMD reads.

Data: GoEmotions (Ekman, single-label) and MELD train splits (``--corpora`` picks one of them, to measure how the
tuned layers carry over to the other); the epoch kept is the one with the best validation macro-F1 of the first
tuned corpus, GoEmotions by default (the test splits are scored once at the end, for the report only). Output: ``OUT``: the tuned
layers' weights (fp16) with the base model's sha256, the layer indices and the figures in its metadata;
`dmd_model.text_encoder.TokenStateEncoder` applies it over the packaged MiniLM. Then
``python -m recipes.bootstrap --text-overlay OUT ...`` trains DMD on the tuned states.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

from recipes import corpora


class RawDefaults(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and every option's default."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m recipes.finetune_text", description=__doc__,
                                formatter_class=RawDefaults)
    p.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data folder")
    p.add_argument("--out", type=Path, required=True,
                   help="where to write the overlay (safetensors; its figures go beside it with a .json suffix)")
    p.add_argument("--layers", type=int, default=2, help="how many top MiniLM layers to tune (of 6)")
    p.add_argument("--epochs", type=int, default=3, help="passes over the train lines (the best valid epoch is kept)")
    p.add_argument("--batch", type=int, default=32, help="lines per step")
    p.add_argument("--lr", type=float, default=6e-5, help="peak learning rate of the tuned layers (the head: 20x)")
    p.add_argument("--max-tokens", type=int, default=128, help="most tokens per line during tuning, specials included")
    p.add_argument("--limit", type=int, default=0, help="train lines per corpus (0: all; for quick trials and tests)")
    p.add_argument("--corpora", default="goemotions,meld",
                   help="text corpora to tune on, comma-separated (goemotions, meld); the first one's validation "
                        "macro-F1 picks the epoch. Both are still scored every epoch, so a run on one corpus shows "
                        "how the tuned layers carry over to the other")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--seed", type=int, default=0, help="seed of torch and Python's random (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs)")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[finetune_text {time.strftime('%H:%M:%S')}] {msg}", flush=True)


TEXT_CORPORA = ("goemotions", "meld")


def load_lines(data: Path, limit: int, tuned: tuple[str, ...] = TEXT_CORPORA):
    """{split: [(text, class index, corpus)]} of GoEmotions and MELD; the train split holds only the ``tuned``
    corpora, the others every corpus (scored, never trained on)."""
    idx = {e: i for i, e in enumerate(corpora.EMOTIONS7)}
    out: dict[str, list] = {s: [] for s in corpora.SPLITS}
    for name, items in zip(TEXT_CORPORA, (corpora.goemotions_items(data), corpora.meld_items(data))):
        for s in corpora.SPLITS:
            if s == "train" and name not in tuned:
                continue
            its = [it for it in items if it.split == s]
            if limit and s == "train":
                its = sorted(its, key=lambda it: corpora.stable_key(it.key))[:limit]
            elif limit:
                its = sorted(its, key=lambda it: corpora.stable_key(it.key))[: max(1, limit // 4)]
            out[s] += [(it.text, idx[it.emotion7], it.corpus) for it in its]
    return out


def macro_f1(y: np.ndarray, p: np.ndarray, n: int = 7) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y, p, labels=list(range(n)), average="macro", zero_division=0))


def main(argv=None) -> int:
    args = parse_args(argv)
    tuned = tuple(c.strip() for c in args.corpora.split(",") if c.strip())
    if not tuned or set(tuned) - set(TEXT_CORPORA):
        raise SystemExit(f"error: --corpora takes {', '.join(TEXT_CORPORA)} (comma-separated), got {args.corpora!r}")
    for d in ("goemotions_ekman", "meld"):
        if not (args.data / "text" / d).is_dir():
            raise SystemExit(f"error: {args.data / 'text' / d} not found (--data is the shared data folder)")
    import torch
    from tqdm.auto import tqdm

    from dmd_model.text_encoder import (MINILM, layer_state, lower_states, resolve_text_encoder_path, run_layers,
                                        save_overlay, top_layers, word_token_batch)

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    base_dir = resolve_text_encoder_path(MINILM)
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(base_dir), local_files_only=True).eval()
    n_layers = model.config.num_hidden_layers
    if not 1 <= args.layers <= n_layers:
        raise SystemExit(f"--layers must be 1..{n_layers}, got {args.layers}")
    first = n_layers - args.layers
    lines = load_lines(args.data, args.limit, tuned)
    log("lines: " + ", ".join(f"{s} {len(v)}" for s, v in lines.items()) + f"; tuning layers {first}..{n_layers - 1}")

    # the frozen lower layers run once per line
    cache = {}
    for s, rows in lines.items():
        cache[s] = lower_states(model, tok, [r[0] for r in rows], first, args.max_tokens, batch_size=64,
                                progress=not args.no_progress, desc=f"lower layers {s}")
    layers = top_layers(model, first)

    def top(h, mask):
        return run_layers(layers, h, mask)

    head = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Linear(model.config.hidden_size, 7))
    y_train = np.array([r[1] for r in lines["train"]])
    freq = np.bincount(y_train, minlength=7).astype(np.float64)
    w = (freq.sum() / np.maximum(freq, 1)) ** 0.5
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(w / w.mean(), dtype=torch.float32))
    opt = torch.optim.AdamW([{"params": layers.parameters(), "lr": args.lr},
                             {"params": head.parameters(), "lr": args.lr * 20}], weight_decay=0.01)
    order = list(range(len(lines["train"])))
    steps_per_epoch = math.ceil(len(order) / args.batch)
    total = steps_per_epoch * args.epochs
    warm = max(1, total // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / warm) * max(0.0, (total - k) / max(1, total - warm)))

    def batches(split, idxs):
        for s in range(0, len(idxs), args.batch):
            yield idxs[s : s + args.batch]

    def predict(split):
        layers.eval()
        head.eval()
        idxs = sorted(range(len(lines[split])), key=lambda i: len(cache[split][i][0]))
        pred = np.zeros(len(idxs), np.int64)
        with torch.inference_mode():
            for b in batches(split, idxs):
                h, mask, word = word_token_batch([cache[split][i] for i in b])
                pooled = pool(top(h, mask), word)
                pred[b] = head(pooled).argmax(-1).numpy()
        return pred

    def pool(h, word):
        wf = word.unsqueeze(-1).to(h.dtype)
        return (h * wf).sum(1) / wf.sum(1).clamp_min(1.0)

    def report(split):
        pred = predict(split)
        y = np.array([r[1] for r in lines[split]])
        corp = np.array([r[2] for r in lines[split]])
        return {c: macro_f1(y[corp == c], pred[corp == c]) for c in ("goemotions", "meld")}

    best, best_state, history = -1.0, None, []
    for epoch in range(1, args.epochs + 1):
        layers.train()
        head.train()
        # length buckets: sort by length within shuffled chunks, so padding stays small
        random.shuffle(order)
        chunk = args.batch * 50
        ordered = []
        for c in range(0, len(order), chunk):
            ordered += sorted(order[c : c + chunk], key=lambda i: len(cache["train"][i][0]))
        bl = list(batches("train", ordered))
        random.shuffle(bl)
        it = tqdm(bl, desc=f"epoch {epoch}", unit="step", disable=args.no_progress, dynamic_ncols=True)
        run_loss = 0.0
        for k, b in enumerate(it):
            h, mask, word = word_token_batch([cache["train"][i] for i in b])
            logits = head(pool(top(h, mask), word))
            loss = loss_fn(logits, torch.as_tensor(y_train[b]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(layers.parameters()) + list(head.parameters()), 1.0)
            opt.step()
            sched.step()
            run_loss += loss.item()
            if not args.no_progress:
                it.set_postfix(loss=f"{run_loss / (k + 1):.4f}")
        valid = report("valid")
        history.append({"epoch": epoch, "train_loss": run_loss / len(bl), "valid_macro_f1": valid})
        log(f"epoch {epoch}: train loss {run_loss / len(bl):.6f}, valid macro-F1 goemotions "
            f"{valid['goemotions']:.4f} meld {valid['meld']:.4f}")
        if valid[tuned[0]] > best:
            best = valid[tuned[0]]
            best_state = ({k: v.detach().clone() for k, v in layers.state_dict().items()},
                          {k: v.detach().clone() for k, v in head.state_dict().items()})
    layers.load_state_dict(best_state[0])
    head.load_state_dict(best_state[1])
    test = report("test")
    log(f"best valid {tuned[0]} macro-F1 {best:.4f}; test macro-F1 (report only) goemotions "
        f"{test['goemotions']:.4f} meld {test['meld']:.4f}")
    names = {"goemotions": "GoEmotions", "meld": "MELD"}
    meta = {"layers": list(range(first, n_layers)), "epochs_run": args.epochs, "max_tokens": args.max_tokens,
            "history": history, f"best_valid_{tuned[0]}_macro_f1": best, "test_macro_f1_report_only": test,
            "tuned_on": list(tuned),
            "objective": "7-class CE of the mean word-token state, " + "+".join(names[c] for c in tuned) + " train",
            "command": "python -m recipes.finetune_text " + " ".join(sys.argv[1:] if argv is None else argv)}
    save_overlay(args.out, layer_state(layers, first), base_dir, meta)
    log(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    (args.out.with_suffix(".json")).write_text(json.dumps(meta, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
