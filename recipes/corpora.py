"""The shared corpora (``../shared/data``, see its SOURCES.md): items, labels, valence and speaker-disjoint splits.

Every list here is deterministic: items are ordered by a SHA-256 of their name, never by a random generator, so a
subsample of N per class is a prefix of the subsample of N+1 (re-runs and larger runs reuse cached features).

Splits (train / valid / test), always disjoint by speaker, subject or source split:

============ ====================================================== ==========================================
corpus       train                         valid                    test
============ ====================================================== ==========================================
RAVDESS      actors 1-16                   actors 17-18             actors 19-24 (the speaker-independent anchor)
TESS         speaker OAF                   (none)                   speaker YAF
EmoDB        speakers 03 08 09 10 11 12 13 speaker 14               speakers 15 16
EMOVO        actors f1 f2 m1 m2            actor m3                 actor f3
CK+48        ~70% of subjects (hash)       ~15% of subjects         ~15% of subjects
FER2013      Training images, hash % 10 != 0  Training, hash % 10 == 0  PublicTest + PrivateTest (all)
GoEmotions   train.tsv (single-label rows) valid.tsv                test.tsv
MELD         train_sent_emo.csv            dev_sent_emo.csv         test_sent_emo.csv
EmoBank      split == train                split == dev             (not used)
============ ====================================================== ==========================================
"""

from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dmd_model.config import EMOTIONS7, VALENCE7

SPLITS = ("train", "valid", "test")

GOEMO_LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # labels.txt ids 0-6
MELD_MAP = {"anger": "angry", "disgust": "disgust", "fear": "fear", "joy": "happy", "neutral": "neutral",
            "sadness": "sad", "surprise": "surprise"}

RAVDESS_VALID = {17, 18}
RAVDESS_TEST = set(range(19, 25))
TESS_SPLIT = {"OAF": "train", "YAF": "test"}
EMODB_SPLIT = {"14": "valid", "15": "test", "16": "test"}  # every other speaker trains
EMOVO_SPLIT = {"m3": "valid", "f3": "test"}  # 6 actors (f1-f3, m1-m3); every other actor trains


def stable_key(name: str) -> str:
    """Order items by the SHA-256 of their name (file name or text id)."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def _frac(name: str) -> float:
    return int(stable_key(name)[:8], 16) / 0xFFFFFFFF


@dataclass(frozen=True)
class Item:
    """One unimodal item.

    Attributes:
        corpus: ravdess, tess, emodb, emovo, ck48, fer2013, goemotions, meld, emobank.
        modality: ``face``, ``voice`` or ``text``.
        key: the path relative to the data folder (media) or ``corpus/split/row`` (text).
        split: train / valid / test.
        emotion7: class name, or "" (EmoBank: valence only).
        valence: target valence in [-1, 1].
        group: speaker or subject ("" where unknown).
        text: the sentence (text items).
    """

    corpus: str
    modality: str
    key: str
    split: str
    emotion7: str
    valence: float
    group: str = ""
    text: str = ""

    @property
    def name(self) -> str:
        return Path(self.key).name


def _media_split(row: dict) -> str | None:
    corpus, spk, name = row["corpus"], row["speaker_or_subject"], Path(row["path"]).name
    if corpus == "ravdess":
        actor = int(spk.split("_")[1])
        return "test" if actor in RAVDESS_TEST else ("valid" if actor in RAVDESS_VALID else "train")
    if corpus == "tess":
        return TESS_SPLIT[spk]
    if corpus == "emodb":
        return EMODB_SPLIT.get(spk, "train")
    if corpus == "emovo":
        return EMOVO_SPLIT.get(spk, "train")
    if corpus == "ck48":
        f = _frac("ck48:" + spk)
        return "train" if f < 0.70 else ("valid" if f < 0.85 else "test")
    if corpus == "fer2013":
        if row["split_hint"] == "test":
            return "test"
        return "valid" if int(stable_key(name)[:8], 16) % 10 == 0 else "train"
    return None


def media_items(data: Path) -> list[Item]:
    """Every speech clip and face image of ``manifest.csv`` with an emotion7 label."""
    out = []
    with open(Path(data) / "manifest.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            e = row["emotion7"]
            if not e:
                continue
            split = _media_split(row)
            if split is None:
                continue
            modality = "voice" if row["modality"] == "audio" else "face"
            out.append(Item(row["corpus"], modality, row["path"], split, e, VALENCE7[e], row["speaker_or_subject"]))
    return out


def goemotions_items(data: Path) -> list[Item]:
    """GoEmotions (Ekman) single-label rows; multi-label rows are dropped."""
    out = []
    base = Path(data) / "text" / "goemotions_ekman"
    for split in SPLITS:
        with open(base / f"{split}.tsv", newline="", encoding="utf-8") as f:
            for i, row in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
                lab = row["label"].strip()
                if "," in lab or not lab:
                    continue
                e = GOEMO_LABELS[int(lab)]
                text = row["text"].strip()
                if text.split():
                    out.append(Item("goemotions", "text", f"goemotions/{split}/{row['id']}", split, e, VALENCE7[e], text=text))
    return out


def meld_items(data: Path) -> list[Item]:
    out = []
    base = Path(data) / "text" / "meld"
    for split, fname in (("train", "train"), ("valid", "dev"), ("test", "test")):
        with open(base / f"{fname}_sent_emo.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                e = MELD_MAP.get(row["Emotion"].strip())
                text = row["Utterance"].replace("\u2019", "'").replace("\u0092", "'").strip()
                if e and text.split():
                    out.append(Item("meld", "text", f"meld/{split}/{row['Sr No.']}", split, e, VALENCE7[e], text=text))
    return out


def emobank_items(data: Path) -> list[Item]:
    """EmoBank sentences with their rated valence; no class label."""
    out = []
    with open(Path(data) / "text" / "emobank" / "emobank.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            split = {"train": "train", "dev": "valid"}.get(row["split"])
            text = (row["text"] or "").strip()
            if split and text.split():
                out.append(Item("emobank", "text", f"emobank/{split}/{row['id']}", split, "",
                                (float(row["V"]) - 3.0) / 2.0, text=text))
    return out


def limit_per_class(items: list[Item], n: int | None, test_n: int | None = None) -> list[Item]:
    """Keep at most ``n`` train/valid items and ``test_n`` test items per (corpus, pool, class), the first by
    `stable_key` (None or 0: keep all). FER2013's valid images are carved from its Training images, so its train and
    valid items form one pool (the limit is taken before the carve)."""
    groups: dict[tuple, list[Item]] = defaultdict(list)
    for it in items:
        pool = "trainvalid" if it.corpus == "fer2013" and it.split != "test" else it.split
        groups[(it.corpus, pool, it.emotion7)].append(it)
    out = []
    for k in sorted(groups):
        g = sorted(groups[k], key=lambda it: stable_key(it.name if it.modality != "text" else it.key))
        cap = test_n if k[1] == "test" else n
        out.extend(g[:cap] if cap else g)
    return out


def counts(items: list[Item]) -> dict:
    """{corpus: {split: {class: n}}} for the model card."""
    c: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for it in items:
        c[it.corpus][it.split][it.emotion7 or "valence-only"] += 1
    return {k: {s: dict(sorted(v2.items())) for s, v2 in sorted(v.items())} for k, v in sorted(c.items())}


__all__ = ["EMOTIONS7", "VALENCE7", "Item", "media_items", "goemotions_items", "meld_items", "emobank_items",
           "limit_per_class", "counts", "stable_key", "SPLITS"]


FEATURE_SUFFIX = ".feat.npz"


def feature_path(out: Path, it: Item) -> Path:
    """Where a recipe cache (``out``, the bootstrap layout) keeps an item's extracted features."""
    return out / "features" / it.corpus / (it.name + FEATURE_SUFFIX)
