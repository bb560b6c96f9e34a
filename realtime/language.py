"""The language step, between the window and the scorer: a window's words become the model's language input
(MiniLM token states averaged down to the model's length, the same `fit_length` that packs training data), as
the window does for the face and voice rows. Push-style, no threads; the scorer then only runs the model.

Words change far less often than windows (a 4 s window slides by 250 ms, a word commits about twice a second), so
the states of the last `LanguageStep.cache_size` distinct word lists are kept and most windows reuse the previous
encoding.

Live streams defer the encoding (``defer=True``): a window whose word list is not encoded yet is scored with the
newest list that is (its ``words`` and language presence say which), and `catch_up` encodes the new list after the
window's result has gone out. MiniLM then stays off the capture-to-score path (it was the largest pipeline cost
there, 28.8 ms median over all windows on 2 cores, docs/speed.md 5k); the new words reach the scores one window
later. Replay encodes first, so replayed scores are exact and reproducible.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from dmd_model.data import fit_length
from dmd_model.feature_spec import mean_word_prob

from .checks import number
from .window import WindowSnapshot


def _key(words) -> tuple:
    return tuple((w.text, round(w.start, 3), round(w.end, 3)) for w in words)


class LanguageStep:
    """Args:
    encoder: ``encode(words) -> states`` with ``states.x`` (T, dim) (`realtime.features.text.TextEncoder`,
        started).
    seq_len: the model's language length (`DMDConfig.seq_lens[0]`): longer token sequences are averaged down to it.
    dim: the model's language width (`DMDConfig.input_dims[0]`), for the empty input of a window without words.
    cache_size: distinct word lists whose states are kept (least recently used goes first).
    defer: score a window whose words are not encoded yet with the newest encoded words, and encode them in
        `catch_up` (live); False encodes before scoring (replay).
    min_word_prob: a window whose words' mean probability is below this is scored without language (its words
        stay in ``words``, what was heard; ``present`` says they were not read), and nothing is encoded for it.
        0 reads every word list (`PipelineConfig.min_word_prob` says why its default).
    """

    def __init__(self, encoder, seq_len: int, dim: int, cache_size: int = 64, defer: bool = False,
                 min_word_prob: float = 0.0):
        self.encoder = encoder
        self.seq_len, self.dim, self.cache_size, self.defer = int(seq_len), int(dim), int(cache_size), bool(defer)
        self.min_word_prob = number("min_word_prob", min_word_prob, lo=0, hi=1)
        self.unsure = 0  # windows whose words were not read (mean probability below min_word_prob)
        self._cache: OrderedDict = OrderedDict()
        self._newest: tuple[list, np.ndarray] = ([], self._empty())  # the newest encoded words and their states
        self._pending: list | None = None
        self.last_catch_up_ms = 0.0
        self.behind = 0  # windows scored with an earlier word list than their own (defer only)
        self.caught_up = 0  # word lists encoded by `catch_up`

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.dim), np.float32)

    def _cached(self, key: tuple) -> np.ndarray | None:
        if not key:
            return self._empty()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
        return hit

    def _encode(self, words, key: tuple) -> np.ndarray:
        x = fit_length(self.encoder.encode(list(words)).x, self.seq_len)
        self._cache[key] = x
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return x

    def _fill(self, s: WindowSnapshot) -> WindowSnapshot:
        if self.min_word_prob and s.words and mean_word_prob(s.words) < self.min_word_prob:
            self.unsure += 1  # words Whisper is unsure of (speech in another language): no language input
            return replace(s, language=self._empty(), present=(False, *s.present[1:]))
        key = _key(s.words)  # once per window: the cache lookup and, on a miss, the encoding share it
        x = self._cached(key)
        if x is None and not self.defer:
            x = self._encode(s.words, key)
        if x is not None:
            self._newest, self._pending = (list(s.words), x), None
            return replace(s, language=x)
        self._pending = list(s.words)  # the newest list wins: an older pending one is never encoded
        self.behind += 1
        words, x = self._newest
        return replace(s, language=x, words=list(words), present=(bool(words), *s.present[1:]))

    def push(self, snaps: list[WindowSnapshot]) -> list[WindowSnapshot]:
        """The windows with their ``language`` input filled in."""
        return [self._fill(s) for s in snaps]

    @property
    def pending(self) -> bool:
        """A window's words wait to be encoded (only with ``defer``)."""
        return self._pending is not None

    def catch_up(self) -> None:
        """Encode the newest deferred word list, so the next windows with those words use them
        (``last_catch_up_ms``: how long it took)."""
        if self._pending is None:
            return
        t0 = time.perf_counter()
        words, self._pending = self._pending, None
        self._newest = (words, self._encode(words, _key(words)))
        self.caught_up += 1
        self.last_catch_up_ms = (time.perf_counter() - t0) * 1e3

    def reset(self) -> None:
        self._cache.clear()
        self._newest, self._pending = ([], self._empty()), None
