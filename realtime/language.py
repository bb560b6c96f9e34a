"""The language step, between the window and the scorer: a window's words become the model's language input
(MiniLM token states averaged down to the model's length, the same `fit_length` that packs training data), as
the window does for the face and voice rows. Push-style, no threads; the scorer then only runs the model.

Words change far less often than windows (a 4 s window slides by 250 ms, a word commits about twice a second), so
the states of the last `LanguageStep.cache_size` distinct word lists are kept and most windows reuse the previous
encoding.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

import numpy as np

from dmd_model.data import fit_length

from .window import WindowSnapshot


class LanguageStep:
    """Args:
    encoder: ``encode(words) -> states`` with ``states.x`` (T, dim) (`realtime.features.text.TextEncoder`,
        started).
    seq_len: the model's language length (`DMDConfig.seq_lens[0]`): longer token sequences are averaged down to it.
    dim: the model's language width (`DMDConfig.input_dims[0]`), for the empty input of a window without words.
    cache_size: distinct word lists whose states are kept (least recently used goes first).
    """

    def __init__(self, encoder, seq_len: int, dim: int, cache_size: int = 64):
        self.encoder = encoder
        self.seq_len, self.dim, self.cache_size = int(seq_len), int(dim), int(cache_size)
        self._cache: OrderedDict = OrderedDict()

    def _states(self, words) -> np.ndarray:
        if not words:
            return np.zeros((0, self.dim), np.float32)
        key = tuple((w.text, round(w.start, 3), round(w.end, 3)) for w in words)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        x = fit_length(self.encoder.encode(list(words)).x, self.seq_len)
        self._cache[key] = x
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return x

    def push(self, snaps: list[WindowSnapshot]) -> list[WindowSnapshot]:
        """The windows with their ``language`` input filled in."""
        return [replace(s, language=self._states(s.words)) for s in snaps]

    def reset(self) -> None:
        self._cache.clear()
