"""The time-aligned sliding window: stage outputs in, one `WindowSnapshot` per hop out. Push-style, no threads.

Alignment is by media time, never by arrival order. Each stage output carries ``t_avail``, the media time at which a
live system would have had it; the window ending at T uses only outputs with ``t_avail <= T``. A window is emitted
when it is *ready*:

* ``wait_for_all=True`` (replay): every running stage has consumed its input up to T (its watermark). The result
  depends only on the media, never on thread timing, so replaying a file twice gives identical scores.
* ``wait_for_all=False`` (live): as soon as the driver stream (the face stage, or the raw audio when there is no
  video) has reached the next hop; slower stages contribute what they have delivered so far. A live window ends at
  the newest media time the driver has reached (the frame it has just processed), not at the hop before it: a
  window on the hop grid holds a frame captured on average half a frame interval before its end and is scored only
  once the driver passes that end, so its newest frame was already that old when scoring began. One window per
  hop is emitted, the newest: after a hiccup live shows now instead of catching up on stale windows. Replay keeps
  the grid, so its results stay a function of the media alone.

A stage that fails or ends sends an infinite watermark, so the window never waits for it.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

import numpy as np

from dmd_model.data import fit_length
from dmd_model.feature_spec import Word

from .packets import FeatureEvent, Watermark

F0_COLUMN = 10
"""eGeMAPS ``F0semitoneFrom27.5Hz_sma3nz``: 0 in unvoiced frames, so it tells speech from silence."""


@dataclass(frozen=True)
class WindowConfig:
    """Sliding-window settings.

    Attributes:
        window_s: length of the scored window (s). 4 s holds a phrase of speech and several facial movements.
        hop_s: a window is scored every hop (s); 0.25 s = 4 scores per second, smooth enough for a live plot.
        visual_window_s: the face rows of a window are those of its last ``visual_window_s`` seconds (s; at most
            ``window_s``). 1.0 s: the length of every face sequence the model was trained on (a still image
            becomes ``FaceConfig.image_frames`` = 10 frames at ``sample_fps`` = 10 Hz), so the face head sees the
            kind of sequence it learned from, and a new expression fills it within a second instead of the four
            the whole window takes (benchmarks.readout_stability measures the lag).
        text_window_s: the words scored with a window are those of the last ``text_window_s`` seconds (s); longer
            than ``window_s`` because a sentence's emotion is carried by all of it, and words come sparsely.
        min_voiced_fraction: the acoustic modality counts as present when at least this fraction of the window's
            frames is voiced (F0 > 0); below it the window is treated as silence (a mask, not noise features).
        wait_for_all: see the module docstring (True for replay, False for live).
        history_s: how much past data is kept (s); everything older is dropped, so memory is bounded.
    """

    window_s: float = 4.0
    hop_s: float = 0.25
    visual_window_s: float = 1.0
    text_window_s: float = 10.0
    min_voiced_fraction: float = 0.1
    wait_for_all: bool = True
    history_s: float = 12.0

    def __post_init__(self) -> None:
        # `not x > 0` rather than `x <= 0`: NaN fails every comparison and would otherwise pass
        if not (math.isfinite(self.window_s) and math.isfinite(self.hop_s) and self.window_s > 0 and self.hop_s > 0):
            raise ValueError(f"window_s and hop_s must be finite and positive (got {self.window_s}, {self.hop_s})")
        if not (math.isfinite(self.visual_window_s) and self.visual_window_s > 0):
            raise ValueError(f"visual_window_s must be finite and positive (got {self.visual_window_s})")
        if self.history_s < max(self.window_s, self.text_window_s):
            raise ValueError("history_s must cover window_s and text_window_s")

    @property
    def face_span_s(self) -> float:
        """The media span of a window's face rows (s): ``visual_window_s``, never more than the window."""
        return min(self.visual_window_s, self.window_s)


@dataclass
class WindowSnapshot:
    """One window, ready to score.

    Attributes:
        t: media time of the window end (s).
        visual: (n, D_V) face rows of the window's last ``face_span_s`` seconds (frames without a face removed),
            fitted to the model's length.
        acoustic: (n, D_A) acoustic rows, fitted to the model's length.
        words: the words of the text window.
        present: (language, visual, acoustic) presence.
        face_fraction: share of those video frames with a face (None without video).
        voiced_fraction: share of voiced acoustic frames (None without audio).
        landmarks: the newest face landmarks (478, 3) for the overlay, or None.
        t_mono: capture time of the newest input in the window (for latency), or None.
        new_words: the words committed since the previous window (each committed word is in exactly one
            window's ``new_words``, so a transcript is these appended, never rebuilt by matching word lists).
        language: (n, D_L) the words' token states fitted to the model's length, filled in by the language step
            (`realtime.language.LanguageStep`); None until then.
    """

    t: float
    visual: np.ndarray
    acoustic: np.ndarray
    words: list[Word]
    present: tuple[bool, bool, bool]
    face_fraction: float | None = None
    voiced_fraction: float | None = None
    landmarks: np.ndarray | None = None
    t_mono: float | None = None
    new_words: list[Word] = field(default_factory=list)
    language: np.ndarray | None = None


def text_window_words(words, t_end: float, span_s: float) -> list[Word]:
    """The words a window ending at ``t_end`` reads: those ending within the last ``span_s`` seconds and begun by
    ``t_end``."""
    return [w for w in words if w.end > t_end - span_s and w.start <= t_end]


@dataclass
class _Stream:
    events: collections.deque = field(default_factory=collections.deque)


class SlidingWindow:
    """Collects `FeatureEvent`s and `Watermark`s; returns the windows that became ready.

    Args:
        config: `WindowConfig`.
        seq_lens: the model's (L, V, A) lengths; longer window contents are averaged down to them.
        dims: (D_L, D_V, D_A) feature sizes, for empty arrays.
        stages: names of the stages whose watermarks gate emission (``"source"`` is always one).
        driver: the stage that paces emission when ``wait_for_all`` is False.
    """

    def __init__(self, config: WindowConfig, seq_lens: tuple[int, int, int], dims: tuple[int, int, int],
                 stages: tuple[str, ...], driver: str = "source"):
        self.config = config
        self.seq_lens = seq_lens
        self.dims = dims
        self.stages = tuple(dict.fromkeys(("source", *stages)))
        self.driver = driver
        self.reset()

    def reset(self) -> None:
        self.watermarks = {s: -math.inf for s in self.stages}
        self.streams = {m: _Stream() for m in ("visual", "acoustic", "words")}
        self._unreported: collections.deque = collections.deque()  # word events no window has reported yet
        self.next_end = self.config.hop_s
        self.emitted = 0

    # ---------------------------------------------------------------------------------------------------------
    def push(self, item: FeatureEvent | Watermark) -> list[WindowSnapshot]:
        if isinstance(item, Watermark):
            if item.stage in self.watermarks:
                self.watermarks[item.stage] = max(self.watermarks[item.stage], item.t)
        else:
            self.streams[item.modality].events.append(item)
            if item.modality == "words":
                self._unreported.append(item)
        return self._ready()

    # -- what the pipeline asks ---------------------------------------------------------------------------------
    def limit(self) -> float:
        """The media time up to which windows can be emitted now (replay: every stage's; live: the driver's)."""
        source = self.watermarks["source"]
        if self.config.wait_for_all:
            return min(self.watermarks.values())
        return min(source, self.watermarks.get(self.driver, source))

    def finished(self, stages) -> bool:
        """Every one of ``stages`` has ended (its watermark is infinite: flushed, failed or masked)."""
        return all(self.watermarks[n] == math.inf for n in stages)

    def behind_source(self, stages) -> list[str]:
        """Those of ``stages`` still running behind the source (stuck before their first output included)."""
        ahead = self.watermarks["source"]
        return [n for n in stages if self.watermarks.get(n, math.inf) != math.inf and self.watermarks[n] < ahead]

    def newest_watermark(self) -> float:
        """The furthest media time any stream has reached (0 before any): where a failed source ended."""
        return max((wm for wm in self.watermarks.values() if math.isfinite(wm)), default=0.0)

    def _ready(self) -> list[WindowSnapshot]:
        out = []
        limit = self.limit()
        live = not self.config.wait_for_all and math.isfinite(limit)
        while self.next_end <= limit + 1e-9:
            t_end = limit if live else self.next_end  # live: end at the newest frame (module docstring)
            snap = self.snapshot(t_end)
            snap.new_words = self._report_words(t_end)
            out.append(snap)
            self.emitted += 1
            self.next_end = self.config.hop_s * (math.floor(t_end / self.config.hop_s + 1e-9) + 1)
        if out:
            self._prune(out[-1].t)
        return out

    def _report_words(self, t_end: float) -> list[Word]:
        """The words of the events available by ``t_end`` that no earlier window reported (an event that arrives
        after its window was emitted, live, goes with the next one)."""
        words, keep = [], collections.deque()
        while self._unreported:
            ev = self._unreported.popleft()
            if ev.t_avail <= t_end:
                words.extend(ev.words)
            else:
                keep.append(ev)
        self._unreported = keep
        return words

    def _prune(self, t_end: float) -> None:
        horizon = t_end - self.config.history_s
        for st in self.streams.values():
            while st.events and float(st.events[0].t.max(initial=-math.inf)) < horizon:
                st.events.popleft()

    # ---------------------------------------------------------------------------------------------------------
    def _rows(self, modality: str, lo: float, hi: float):
        ts, xs, ps, newest, landmarks = [], [], [], None, None
        for ev in self.streams[modality].events:
            if ev.t_avail > hi:
                continue
            sel = (ev.t > lo) & (ev.t <= hi)
            if not sel.any():
                continue
            ts.append(ev.t[sel])
            if ev.x is not None:
                xs.append(ev.x[sel])
            if ev.present is not None:
                ps.append(ev.present[sel])
            newest = ev.t_mono if newest is None else max(newest, ev.t_mono)
            if ev.landmarks is not None:
                landmarks = ev.landmarks
        t = np.concatenate(ts) if ts else np.zeros(0)
        order = np.argsort(t, kind="stable")  # rows in media-time order, whatever order they arrived in
        x = np.concatenate(xs)[order] if xs else None
        p = np.concatenate(ps)[order] if ps else None
        return t[order], x, p, newest, landmarks

    def snapshot(self, t_end: float) -> WindowSnapshot:
        cfg = self.config
        lo = t_end - cfg.window_s
        _, vx, vp, v_mono, landmarks = self._rows("visual", t_end - cfg.face_span_s, t_end)
        _, ax, _, a_mono, _ = self._rows("acoustic", lo, t_end)
        d_l, d_v, d_a = self.dims
        face_fraction = voiced = None
        visual = np.zeros((0, d_v), np.float32)
        if vx is not None:
            face_fraction = float(vp.mean())
            visual = fit_length(vx[vp], self.seq_lens[1])  # frames without a face carry no evidence (as in training)
        acoustic = np.zeros((0, d_a), np.float32)
        if ax is not None:
            voiced = float(np.mean(ax[:, F0_COLUMN] > 0))
            acoustic = fit_length(ax, self.seq_lens[2])
        words = []
        for ev in self.streams["words"].events:
            if ev.t_avail <= t_end:
                words.extend(text_window_words(ev.words, t_end, cfg.text_window_s))
        present = (
            bool(words),
            bool(len(visual)),
            bool(len(acoustic)) and voiced is not None and voiced >= cfg.min_voiced_fraction,
        )
        monos = [m for m in (v_mono, a_mono) if m is not None]
        return WindowSnapshot(
            t=round(t_end, 6), visual=visual, acoustic=acoustic, words=words, present=present,
            face_fraction=face_fraction, voiced_fraction=voiced, landmarks=landmarks,
            t_mono=max(monos) if monos else None,
        )
