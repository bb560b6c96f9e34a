"""Bootstrap the bundled checkpoint from the shared unimodal emotion corpora.

    python -m recipes.bootstrap --data ../shared/data --out DIR [--seed S] [--limit-per-class N]
                                          [--epochs E] [--device cpu|cuda]

Steps (each cached under DIR, so a re-run reuses what exists):

1. text: MiniLM token states of the text corpora's lines (GoEmotions Ekman single-label rows, MELD, EmoBank), the
   live extractor's code path (`dmd_model.text_encoder.TokenStateEncoder`), cached in ``DIR/text/``;
2. extract: face images and speech clips through the project's own extractor, ``python -m realtime.extract`` run as a
   subprocess in large batches (``--asr-mode none`` for speech: its fixed sentences carry no emotion), one
   ``DIR/features/<corpus>/<file>.feat.npz`` per item;
3. pack: the label-matched, synthetic composite (`pairing`) as ``DIR/composite.npz`` plus unimodal anchor test sets
   ``DIR/anchor_{fer,ravdess,goemotions}.npz`` (packed datasets, `dmd_model.data.save_packed`);
4. train: the ``live`` preset with the full DMD objective (`dmd_model.train`), checkpoint in ``DIR/checkpoint``,
   with the training speakers' neutral voice levels beside it (`recipes.neutral_reference`, the calibration's
   target);
5. evaluate: composite test (fused, per head, valence, modality ablations), the anchors, ``DIR/edges.png``;
   everything also in ``DIR/checkpoint/bootstrap_eval.json``.

Nothing is tuned on a test split: early stopping and the choice of the best epoch read the validation split only
(the live preset's cosine schedule reads nothing; the paper's plateau schedule reads the validation split).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from dmd_model.config import EMOTIONS7, preset
from . import corpora
from .corpora import Item, feature_path

CORPUS_MODALITY = {"ravdess": "voice", "tess": "voice", "emodb": "voice", "emovo": "voice", "ck48": "face",
                   "fer2013": "face"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m recipes.bootstrap",
        description=__doc__.split("\n\n", 1)[0] + " Builds a synthetic, label-matched face+voice+text composite "
        "from unimodal corpora, trains the live preset and evaluates it (see docs/bootstrap.md).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", required=True, type=Path, help="the shared data folder (with manifest.csv)")
    p.add_argument("--out", required=True, type=Path, help="work directory: caches, composite, checkpoint")
    p.add_argument("--seed", type=int, default=0, help="seed of the pairing and of training")
    p.add_argument("--limit-per-class", type=int, default=700,
                   help="face/voice items per (corpus, split, class) in train/valid pools (0: all)")
    p.add_argument("--test-limit-per-class", type=int, default=0,
                   help="items per (corpus, class) in test splits and anchors (0: all test items)")
    p.add_argument("--text-limit-per-class", type=int, default=1200,
                   help="text lines per (corpus, split, class) in train/valid pools (0: all)")
    p.add_argument("--corpora", default="ravdess,tess,emodb,ck48,fer2013",
                   help="comma-separated media corpora to use")
    p.add_argument("--text-corpora", default="goemotions,meld",
                   help="comma-separated text corpora to use (pools, text-only extras and anchors); leaving one "
                        "out makes it a held-out corpus for `recipes.crosscorpus --trained-on`")
    p.add_argument("--train-per-class", type=int, default=1000, help="composite training triples per class")
    p.add_argument("--eval-cap-per-class", type=int, default=400, help="most composite test triples per class")
    p.add_argument("--valid-cap-per-class", type=int, default=200, help="most composite valid triples per class")
    p.add_argument("--cross-frac", type=float, default=0.15, help="fraction of training triples with one cross-class item")
    p.add_argument("--text-only", type=int, default=2000,
                   help="extra text-only training samples in the text corpora's natural class distribution")
    p.add_argument("--emobank", type=int, default=1000, help="extra EmoBank text-only (valence-only) training samples")
    p.add_argument("--unimodal-media", type=float, default=1.0,
                   help="face-only and voice-only training samples, as a fraction of each training pool (every train "
                        "face and voice item once more, alone, at 1.0): the heads learn each modality alone, "
                        "as the unimodal anchors and a live session with one modality missing need")
    p.add_argument("--no-unimodal-valid", dest="unimodal_valid", action="store_false",
                   help="validate on the composite triples only (default: also on each modality alone, up to "
                        "--valid-cap-per-class items per class and modality)")
    p.add_argument("--face-noise", type=float, default=0.2,
                   help="per-frame noise (std) on the log-odds of training faces' blendshape scores")
    p.add_argument("--face-scale", type=float, default=0.0,
                   help="per-sample intensity jitter of training faces' blendshape scores: one factor from "
                        "[1 - x, 1 + x] (0: off, as the bundled checkpoints were trained)")
    p.add_argument("--voice-offset", type=float, default=0.0,
                   help="per-sample offset of training voices' eGeMAPS levels, constant over the clip: one normal draw "
                        "per level with this many training-population std (0: off, as the bundled checkpoints were "
                        "trained; tried on the transfer folds and not adopted, docs/bootstrap.md)")
    p.add_argument("--voice-balance", choices=("clips", "speakers"), default="clips",
                   help="how training voices are drawn: every clip equally often (as the bundled checkpoints were "
                        "trained), or every training speaker equally often, its clips cycled (TESS's one training "
                        "speaker is 490 of the 1,739 training clips otherwise; docs/bootstrap.md)")
    p.add_argument("--epochs", type=int, default=30, help="maximum training epochs (early stopping on valid)")
    p.add_argument("--modality-dropout", type=float, default=0.2, help="per-modality absent-mask probability in training")
    p.add_argument("--lr-schedule", choices=("plateau", "cosine"), default=None,
                   help="learning-rate schedule for training (None: the live preset's, cosine)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="decoupled (AdamW) weight decay for training (None: the live preset's, 0)")
    p.add_argument("--average-from", type=int, default=0, metavar="EPOCH",
                   help="keep the average of the end weights of every epoch from EPOCH on instead of the best "
                        "validation epoch (stochastic weight averaging; 0: off, as the bundled checkpoints were trained)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=0,
                   help="torch intra-op threads for training and evaluation (0: torch's default; 1 avoids "
                        "oversubscription on a shared 2-core machine)")
    p.add_argument("--extract-batch", type=int, default=3000, help="files per realtime.extract call")
    p.add_argument("--acoustic", choices=("egemaps+whisper", "egemaps"), default="egemaps+whisper",
                   help="acoustic stream: eGeMAPS LLDs + Whisper tiny.en encoder states (default; the cross-corpus "
                        "probes' best voice features) or the 25 LLDs alone (checkpoints before issue 14)")
    p.add_argument("--preset", choices=("live", "live-prior-free"), default="live",
                   help="model preset: live (hand-set GD edge prior + regulariser) or live-prior-free (edges learnt "
                        "from the data alone)")
    p.add_argument("--text-overlay", type=Path, default=None, metavar="FILE",
                   help="MiniLM's fine-tuned top layers (python -m recipes.finetune_text): the text states are "
                        "computed with them and the file is copied into the checkpoint, whose spec names it "
                        "(default: MiniLM as shipped)")
    p.add_argument("--no-extract", action="store_true", help="use only features already in the cache")
    p.add_argument("--stop-after", choices=("text", "extract", "pack", "train"), default=None, help="stop after this step")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def log(msg: str) -> None:
    print(f"[bootstrap {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- selection ---------------------------------------------------------------------------------------------------
def select_items(args) -> tuple[list[Item], list[Item], list[Item], list[Item]]:
    """(media items, text items for pools and anchors, text-only extras, EmoBank extras)."""
    use = {c.strip() for c in args.corpora.split(",") if c.strip()}
    unknown = use - set(CORPUS_MODALITY)
    if unknown:
        raise SystemExit(f"error: unknown media corpora {sorted(unknown)}; choose from {sorted(CORPUS_MODALITY)}")
    media = [it for it in corpora.media_items(args.data) if it.corpus in use]
    media = corpora.limit_per_class(media, args.limit_per_class, args.test_limit_per_class)
    text_use = [c.strip() for c in args.text_corpora.split(",") if c.strip()]
    readers = {"goemotions": corpora.goemotions_items, "meld": corpora.meld_items}
    if not text_use or set(text_use) - set(readers):
        raise SystemExit(f"error: --text-corpora {args.text_corpora!r}: choose one or more of {sorted(readers)}")
    text_all = [it for c in sorted(set(text_use)) for it in readers[c](args.data)]
    text = corpora.limit_per_class(text_all, args.text_limit_per_class, args.test_limit_per_class)
    train_text = sorted((it for it in text_all if it.split == "train"), key=lambda it: corpora.stable_key("x" + it.key))
    extras = train_text[: args.text_only]
    emob = sorted((it for it in corpora.emobank_items(args.data) if it.split == "train"),
                  key=lambda it: corpora.stable_key(it.key))[: args.emobank]
    return media, text, extras, emob


# -- step 1: text ------------------------------------------------------------------------------------------------
def text_states(out: Path, items: list[Item], seq_len: int, progress: bool,
                overlay: Path | None = None) -> dict[str, np.ndarray]:
    """key -> (<= seq_len, 384) states (already fitted with `fit_length`, as packing would), cached per corpus
    (and per ``overlay``, MiniLM's fine-tuned layers: the cache name carries its sha256 prefix)."""
    from dmd_model.data import fit_length
    from realtime.features.specs import sha256_prefix

    tag = f"_ov{sha256_prefix(overlay)}" if overlay is not None else ""

    cache_dir = out / "text"
    cache_dir.mkdir(parents=True, exist_ok=True)
    by_corpus: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_corpus[it.corpus].append(it)
    states: dict[str, np.ndarray] = {}
    encoder = None
    for corpus, its in sorted(by_corpus.items()):
        path = cache_dir / f"{corpus}_L{seq_len}{tag}.npz"
        cached: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                keys, lens, flat = [str(k) for k in z["keys"]], z["lengths"], z["states"]
            offs = np.concatenate([[0], np.cumsum(lens)])
            cached = {k: flat[offs[i] : offs[i + 1]] for i, k in enumerate(keys)}
        missing = sorted({it.key: it for it in its if it.key not in cached}.values(), key=lambda it: it.key)
        if missing:
            if encoder is None:
                from dmd_model.text_encoder import TokenStateEncoder

                encoder = TokenStateEncoder(threads=1, overlay=overlay)  # the live TextConfig.torch_threads
            log(f"text: encoding {len(missing)} {corpus} lines with MiniLM ({len(cached)} cached)")
            xs = encoder.encode_lines([it.text for it in missing], progress=progress, desc=f"MiniLM {corpus}")
            for it, x in zip(missing, xs):
                cached[it.key] = fit_length(x.states, seq_len)
            keys = sorted(cached)
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez(tmp, keys=np.array(keys), lengths=np.array([len(cached[k]) for k in keys], np.int64),
                     states=np.concatenate([cached[k] for k in keys]).astype(np.float32))
            tmp.replace(path)
        for it in its:
            states[it.key] = cached[it.key]
    return states


# -- step 2: media extraction -----------------------------------------------------------------------------------
def extract_media(args, items: list[Item]) -> None:
    """Run ``python -m realtime.extract`` on every item without a cached feature file, in large batches."""
    todo: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        if not feature_path(args.out, it).exists():
            todo[it.corpus].append(it)
    total = sum(len(v) for v in todo.values())
    log(f"extract: {len(items) - total} of {len(items)} media items cached, {total} to extract")
    if not total or args.no_extract:
        return
    from tqdm.auto import tqdm

    env = dict(os.environ, HF_HUB_OFFLINE="1")
    root = Path(__file__).resolve().parents[1]  # the checkout: recipes/ sits next to realtime/ and dmd_model/
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=total, desc="extract", unit="file", disable=args.no_progress, dynamic_ncols=True)
    for corpus, its in sorted(todo.items()):
        odir = args.out / "features" / corpus
        odir.mkdir(parents=True, exist_ok=True)
        for s in range(0, len(its), args.extract_batch):
            batch = its[s : s + args.extract_batch]
            cmd = [sys.executable, "-m", "realtime.extract", *(str(args.data / it.key) for it in batch), "--out", str(odir)]
            if CORPUS_MODALITY[corpus] == "voice":
                # the speech corpora's fixed sentences carry no emotion: no speech recognition at all
                cmd += ["--asr-mode", "none"]
            if args.acoustic == "egemaps+whisper":  # faces too: every file carries the same feature spec
                cmd.append("--whisper-states")
            before = sum(1 for it in batch if feature_path(args.out, it).exists())
            with open(logs / f"extract_{corpus}.log", "a") as lf:
                proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=lf, stderr=subprocess.STDOUT)
                done = before
                while proc.poll() is None:
                    time.sleep(2)
                    now = sum(1 for it in batch if feature_path(args.out, it).exists())
                    bar.update(now - done)
                    done = now
            now = sum(1 for it in batch if feature_path(args.out, it).exists())
            bar.update(now - done)
            if proc.returncode not in (0, 1):
                raise RuntimeError(f"realtime.extract failed with status {proc.returncode}; see {logs}/extract_{corpus}.log")
    bar.close()


# -- step 3: pack ------------------------------------------------------------------------------------------------
def load_units(args, items: list[Item], seq_lens) -> tuple[dict[str, "object"], dict]:
    """key -> Unit for every media item whose modality was extracted; and per-corpus/split counts of missing ones."""
    from tqdm.auto import tqdm

    from dmd_model.data import fit_length
    from dmd_model.feature_file import FeatureFileError, ItemFeatures
    from .pairing import Unit

    units, missing = {}, defaultdict(int)
    spec = None
    for it in tqdm(items, desc="load features", unit="file", disable=args.no_progress, dynamic_ncols=True, leave=False):
        p = feature_path(args.out, it)
        try:
            f = ItemFeatures.load(p)
        except FeatureFileError:
            missing[f"{it.corpus}/{it.split}: not extracted"] += 1
            continue
        if spec is None:
            spec = f.spec
        else:  # one contract for the whole composite: a cache from an older extractor is an error, not a mix
            try:
                spec.check_compatible(f.spec)
            except ValueError as e:
                raise SystemExit(f"error: {p} was extracted with another feature spec ({e}); "
                                 f"delete {args.out / 'features'} and run again") from None
        if it.modality == "face":
            x = f.visual[f.face_present] if "visual" not in f.absent else f.visual[:0]
            x = fit_length(x, seq_lens[1])
        else:
            x = f.acoustic if "acoustic" not in f.absent else f.acoustic[:0]
            x = fit_length(x, seq_lens[2])
        if x.shape[0] == 0:
            missing[f"{it.corpus}/{it.split}: {it.modality} absent"] += 1
            continue
        units[it.key] = Unit(it.key, np.ascontiguousarray(x, np.float32), it.emotion7, it.valence, it.group)
    return units, dict(missing), spec


def unimodal_valid_samples(pools, cap: int | None) -> list:
    """Each modality of the validation pools alone (at most ``cap`` items per class and modality, in a fixed
    order): early stopping then also weighs how the model scores a face, a voice or a text by itself, which the
    unimodal anchors and a live session with a missing modality need, not only the synthetic triples."""
    from .pairing import unimodal_samples

    out = []
    for mod in ("face", "voice", "text"):
        for c, us in sorted(getattr(pools, mod).items()):
            us = sorted(us, key=lambda u: corpora.stable_key(u.key))
            out += unimodal_samples(us[:cap] if cap else us, mod)
    return out


def voice_offset_std(args, pools) -> np.ndarray | None:
    """``--voice-offset`` times the training voices' std of each eGeMAPS level (over all their rows), or None."""
    if args.voice_offset <= 0:
        return None
    from realtime.features.specs import EGEMAPS_LLD_NAMES
    from .neutral_reference import levels_std

    seqs = [u.x for us in pools.voice.values() for u in us if len(u.x)]
    if not seqs:
        return None
    log(f"pack: voice level offsets, {args.voice_offset:g} x the training std of each level")
    return args.voice_offset * levels_std(seqs, len(EGEMAPS_LLD_NAMES))


def pack(args, media, text, extras, emob, tstates, seq_lens):
    from dmd_model.data import Dataset, save_packed
    from .pairing import (SplitPools, Unit, balanced_draw, composite_samples, empty_split, pack_samples,
                          unimodal_samples)

    units, missing, spec = load_units(args, media, seq_lens)
    if spec is None:
        raise SystemExit("error: no media features found; run without --no-extract")
    if args.text_overlay is not None:  # the media files hold no text: the composite's states come from the overlay
        from dataclasses import replace

        from realtime.features.specs import language_spec

        spec = replace(spec, language=language_spec(None, args.text_overlay))
    dims = tuple(spec.dims()[m] for m in ("language", "visual", "acoustic"))
    for it in list(text) + list(extras) + list(emob):
        units.setdefault(it.key, Unit(it.key, tstates[it.key], it.emotion7, it.valence))
    pools = {s: SplitPools() for s in corpora.SPLITS}
    for it in list(media) + list(text):
        if it.key in units:
            getattr(pools[it.split], {"face": "face", "voice": "voice", "text": "text"}[it.modality]).setdefault(
                it.emotion7, []).append(units[it.key])
    rng = np.random.default_rng(args.seed)
    splits = {}
    for s in corpora.SPLITS:
        if s == "train":
            by_speaker = args.voice_balance == "speakers"
            samples = composite_samples(pools[s], args.train_per_class, rng, args.cross_frac, voice_groups=by_speaker)
            samples += unimodal_samples([units[it.key] for it in extras], "text")
            samples += unimodal_samples([units[it.key] for it in emob], "text")
            for mod in ("face", "voice"):
                pool = sorted((u for us in getattr(pools[s], mod).values() for u in us), key=lambda u: u.key)
                n = int(round(args.unimodal_media * len(pool)))
                if mod == "voice" and by_speaker:  # as many voices alone, each speaker equally often
                    alone = balanced_draw(pool, n, rng)
                else:
                    alone = [pool[i] for i in sorted(rng.permutation(len(pool))[:n])]
                samples += unimodal_samples(alone, mod)
            order = rng.permutation(len(samples))
            splits[s] = pack_samples([samples[i] for i in order], seq_lens, rng, args.face_noise, dims=dims,
                                     face_scale=args.face_scale, voice_offset=voice_offset_std(args, pools[s]))
        else:
            cap = args.eval_cap_per_class if s == "test" else args.valid_cap_per_class
            samples = composite_samples(pools[s], None, rng, 0.0, cap=cap)
            if s == "valid" and args.unimodal_valid:
                samples += unimodal_valid_samples(pools[s], cap)
            splits[s] = pack_samples(samples, seq_lens, dims=dims)
    stats = {"pools": {s: {mod: {c: len(v) for c, v in sorted(getattr(pools[s], mod).items())}
                           for mod in ("face", "voice", "text")} for s in corpora.SPLITS},
             "composite": {s: int(len(a)) for s, a in splits.items()},
             "cross_class_train": int(sum(1 for r in splits["train"].emotion if r.max() < 0.99 and r.sum() > 0)),
             "not_used": missing,
             "selected_items": corpora.counts(list(media) + list(text) + list(extras) + list(emob))}
    comp = args.out / "composite.npz"
    save_packed(Dataset(splits, spec, emotions=EMOTIONS7, source=str(comp)), comp)
    log(f"pack: wrote {comp} (train/valid/test {len(splits['train'])}/{len(splits['valid'])}/{len(splits['test'])})")

    # unimodal anchors: each corpus's own test split, only its own modality present
    anchors = {}
    for name, corpus, mod in (("fer", "fer2013", "face"), ("ravdess", "ravdess", "voice"), ("goemotions", "goemotions", "text")):
        its = [it for it in (media if mod != "text" else text) if it.corpus == corpus and it.split == "test"]
        found = [units[it.key] for it in its if it.key in units]
        path = args.out / f"anchor_{name}.npz"
        test = pack_samples(unimodal_samples(found, mod), seq_lens, dims=dims)
        empty = empty_split(seq_lens, dims=dims)
        save_packed(Dataset({"train": empty, "valid": empty, "test": test}, spec, emotions=EMOTIONS7, source=str(path)),
                    path)
        anchors[name] = {"path": str(path), "n_total": len(its), "n_scored": len(found),
                         "n_no_features": len(its) - len(found)}
        log(f"pack: wrote {path} ({len(found)} of {len(its)} items have {mod} features)")
    stats["anchors"] = anchors
    (args.out / "composite_stats.json").write_text(json.dumps(stats, indent=2))
    return comp, anchors


# -- step 5: evaluation ------------------------------------------------------------------------------------------
def plot_edges(homo: list[float], hetero: list[float], path: Path, title: str = "") -> Path:
    """The paper's figure: mean HomoGD and HeteroGD edge weights as source -> target matrices."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["L", "V", "A"]
    # edge order x = 0..5: V->L, A->L, L->V, A->V, L->A, V->A
    pairs = [(1, 0), (2, 0), (0, 1), (2, 1), (0, 2), (1, 2)]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.8))
    for ax, edges, name in zip(axes, (homo, hetero), ("HomoGD", "HeteroGD")):
        m = np.full((3, 3), np.nan)
        for (s, t), e in zip(pairs, edges):
            m[s, t] = e
        im = ax.imshow(m, cmap="Blues", vmin=0, vmax=max(0.5, np.nanmax(m)))
        for (s, t), e in zip(pairs, edges):
            ax.text(t, s, f"{e:.3f}", ha="center", va="center", color="black" if e < 0.3 else "white")
        ax.set_xticks(range(3), names)
        ax.set_yticks(range(3), names)
        ax.set_xlabel("target (student)")
        ax.set_ylabel("source (teacher)")
        ax.set_title(f"{name} mean edges")
        fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def evaluate_all(ckpt: Path, comp: Path, anchors: dict, device: str, out: Path) -> dict:
    from dmd_model.evaluate import evaluate, format_report

    r = evaluate(ckpt, comp, "test", device, ablate=True)
    print(format_report(r))
    (ckpt / "eval_test.json").write_text(json.dumps(r, indent=2))
    m = r["metrics"]
    plot_edges(m["mean_homo_edges"], m["mean_hetero_edges"], out / "edges.png",
               f"composite test set, n={m['n']} ({ckpt})")
    res = {"composite": r, "anchors": {}}
    head = {"fer": "visual", "ravdess": "acoustic", "goemotions": "language"}
    for name, a in anchors.items():
        if not a["n_scored"]:
            res["anchors"][name] = dict(a, note="no item of this test split has features; not scored")
            print(f"anchor {name}: no features, not scored")
            continue
        ra = evaluate(ckpt, a["path"], "test", device)
        ma = ra["metrics"]
        fused, homo, hetero = ma["fused_emotion"], ma["heads_emotion"][f"homo_{head[name]}"], ma["heads_emotion"][f"hetero_{head[name]}"]
        n_tot = a["n_total"]
        entry = dict(a, fused_scored=fused, homo_scored=homo, hetero_scored=hetero)
        # items without features (no face found) count as errors
        entry["fused_acc_all_items"] = round(fused["acc"] * fused["n"] / n_tot, 4) if n_tot else float("nan")
        entry["homo_acc_all_items"] = round(homo["acc"] * homo["n"] / n_tot, 4) if n_tot else float("nan")
        res["anchors"][name] = entry
        print(f"anchor {name:10s} ({head[name]} only) scored {fused['n']} of {n_tot}: fused acc {fused['acc']} "
              f"macro-F1 {fused['macro_f1']} (acc over all {n_tot}, missing = error: {entry['fused_acc_all_items']}); "
              f"homo_{head[name]} acc {homo['acc']} macro-F1 {homo['macro_f1']}; "
              f"hetero_{head[name]} acc {hetero['acc']} macro-F1 {hetero['macro_f1']}")
    (ckpt / "bootstrap_eval.json").write_text(json.dumps(res, indent=2))
    (out / "report.md").write_text(markdown_report(res))
    return res


def markdown_report(res: dict) -> str:
    """Tables of the printed figures (copied verbatim from the evaluation JSON, never re-rounded)."""
    m = res["composite"]["metrics"]
    lines = [f"Composite test set, n={m['n']}", "", "| output | 7-class acc | macro-F1 |", "|---|---|---|",
             f"| fused | {m['fused_emotion']['acc']} | {m['fused_emotion']['macro_f1']} |"]
    for head, hm in m["heads_emotion"].items():
        lines.append(f"| {head} | {hm['acc']} | {hm['macro_f1']} |")
    lines += ["", "| output | valence MAE | valence Corr |", "|---|---|---|",
              f"| fused | {m['fused']['MAE']} | {m['fused']['Corr']} |"]
    for head, hm in m.get("heads_valence", {}).items():
        lines.append(f"| {head} | {hm['MAE']} | {hm['Corr']} |")
    lines += ["", "| modalities present | 7-class acc | macro-F1 | valence MAE | valence Corr |", "|---|---|---|---|---|"]
    for name, a in res["composite"].get("ablation", {}).items():
        fe, fv = a.get("fused_emotion", {}), a.get("fused", {})
        lines.append(f"| {name} | {fe.get('acc')} | {fe.get('macro_f1')} | {fv.get('MAE')} | {fv.get('Corr')} |")
    lines += ["", "| anchor | items | scored | fused acc (scored) | fused macro-F1 | fused acc, all items | homo acc | homo macro-F1 | hetero acc | hetero macro-F1 |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, a in res["anchors"].items():
        if "fused_scored" not in a:
            lines.append(f"| {name} | {a['n_total']} | 0 | - | - | - | - | - | - | - |")
            continue
        f, h, x = a["fused_scored"], a["homo_scored"], a["hetero_scored"]
        lines.append(f"| {name} | {a['n_total']} | {a['n_scored']} | {f['acc']} | {f['macro_f1']} | "
                     f"{a['fused_acc_all_items']} | {h['acc']} | {h['macro_f1']} | {x['acc']} | {x['macro_f1']} |")
    lines += ["", f"mean HomoGD edges (V→L, A→L, L→V, A→V, L→A, V→A): {m['mean_homo_edges']}",
              f"mean HeteroGD edges: {m['mean_hetero_edges']}"]
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.voice_offset < 0 or args.face_scale < 0 or args.face_noise < 0:
        print("error: --voice-offset, --face-scale and --face-noise are spreads: 0 (off) or more", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if not (args.data / "manifest.csv").is_file():
        print(f"error: {args.data}/manifest.csv not found", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    seq_lens = preset("live").seq_lens
    (args.out / "bootstrap_args.json").write_text(json.dumps({k: str(v) for k, v in vars(args).items()}, indent=2))
    media, text, extras, emob = select_items(args)
    log(f"selected {len(media)} media items, {len(text)} text lines, {len(extras)} text-only, {len(emob)} EmoBank")
    if args.text_overlay is not None and not args.text_overlay.is_file():
        print(f"error: --text-overlay {args.text_overlay}: no such file", file=sys.stderr)
        return 2
    tstates = text_states(args.out, list(text) + list(extras) + list(emob), seq_lens[0], not args.no_progress,
                          args.text_overlay)
    if args.stop_after == "text":
        return 0
    extract_media(args, media)
    if args.stop_after == "extract":
        return 0
    comp, anchors = pack(args, media, text, extras, emob, tstates, seq_lens)
    del tstates
    if args.stop_after == "pack":
        return 0
    from dmd_model.train import main as train_main

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    ckpt = args.out / "checkpoint"
    targs = ["--data", str(comp), "--preset", args.preset, "--epochs", str(args.epochs), "--out", str(ckpt),
             "--seed", str(args.seed), "--device", args.device, "--modality-dropout", str(args.modality_dropout)]
    if args.lr_schedule is not None:
        targs += ["--lr-schedule", args.lr_schedule]
    if args.weight_decay is not None:
        targs += ["--weight-decay", str(args.weight_decay)]
    if args.average_from:
        targs += ["--average-from", str(args.average_from)]
    if args.no_progress:
        targs.append("--no-progress")
    log("train: python -m dmd_model.train " + " ".join(targs))
    rc = train_main(targs)
    if rc:
        return rc
    if any(it.modality == "voice" for it in media):  # the calibrate control's target: the training neutral levels
        from .neutral_reference import write_for_items

        try:
            log(f"wrote {write_for_items(ckpt, media, args.out)}")
        except ValueError as e:
            print(f"error: neutral reference: {e}", file=sys.stderr)
            return 2
    if args.text_overlay is not None:  # beside the weights, where the pipeline looks (its spec names the overlay)
        import shutil

        from realtime.features.specs import TEXT_OVERLAY_FILE

        shutil.copyfile(args.text_overlay, ckpt / TEXT_OVERLAY_FILE)
    if args.stop_after == "train":
        return 0
    evaluate_all(ckpt, comp, anchors, args.device, args.out)
    log(f"done in {time.perf_counter() - t0:.0f} s; checkpoint {ckpt}, figure {args.out / 'edges.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
