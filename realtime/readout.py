"""What the page shows: a steady, honest readout of the per-window scores. Push-style, thread-free.

The scorer's per-window probabilities move with every 250 ms hop (a 4 s window slides over a changing face and
voice), so the raw top class flips often even when the person's expression barely changes. `Readout` turns the raw
stream into what a person should read:

* **Smoothed probabilities**: an exponential moving average over a declared time constant in *media* seconds, so
  irregular hops (a live window that came late, a replay at any speed) weigh by the time they cover:
  ``s <- s + a (p - s)`` with ``a = 1 - exp(-dt / tau)``. The time constant follows the fastest input present:
  ``tau_s`` with a face (read over the window's last second), ``tau_voice_s`` with a voice and no face (read over
  the whole 4 s window), ``tau_words_s`` with words alone (the 10 s text window); each is half its input's span, so
  a steady voice is not shown flickering with every hop of the window sliding over it.
* **A label with hysteresis**: the shown class changes only when another class leads it by ``switch_margin`` in the
  smoothed probabilities, or has led it without a break for ``lead_hold_s`` (a weak but steady new reading, common
  on real faces, must not wait for a margin it never reaches), and never sooner than ``min_dwell_s`` after the last
  change.
* **"uncertain"** when no class leads: the top smoothed probability is below ``uncertain_prob``, or the top two are
  within ``uncertain_margin`` of each other (and the shown class has lost its lead).
* **"no signal"** when the window has no modality present: the model's output is then its prior, not evidence, so
  nothing is shown and the smoothing starts afresh when a modality returns.
* **A valence consistent with the label**: the expected class valence under the smoothed probabilities (the valence
  each class was given in training, ``dmd_model.config.VALENCE7``), so a "happy" readout never sits beside
  a negative valence. The model's own valence head stays in the JSONL and on the timeline.

The raw per-window scores are never changed; the readout is a separate record (``ScoreResult.readout``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .checks import number

NO_SIGNAL = "no signal"
UNCERTAIN = "uncertain"


def _default_class_valence() -> dict[str, float]:
    from dmd_model.config import VALENCE7

    return dict(VALENCE7)


@dataclass(frozen=True)
class ReadoutConfig:
    """How the page's readout is smoothed. Units are media seconds and probabilities in [0, 1].

    ``tau_s``, ``switch_margin`` and ``min_dwell_s`` were chosen together by ``python -m benchmarks.readout_tuning``
    on validation media only (the validation-split faces of CK+48 and FER2013 spliced into one clip, and the shared
    radio speech): of the settings that change the displayed label on the speech no more often than the previous
    defaults (1 s, 0.15, 1 s, no held-lead rule), the one that shows the new expression within 1.5 s after the most
    splices (42 of 49 against 32 of 49). The figures are in docs/ui.md.

    Round 8 re-ran the tuning on the new transcript's words (no prompt, no words of zero duration), reading every
    setting as the readout reads it and bounding the validation voices too; it chose tau_s 0.25 s, margin 0.2, dwell
    1 s (45 of 49 splices). Not adopted: on the test's steady clip (`benchmarks.readout_stability`, the sample looped
    8 times) it changes the shown label 6.59 times a minute, against 2.82 with these defaults and issue 14's bound of
    6; no validation clip shows a talking face, so the rule could not see that.

    Attributes:
        tau_s: time constant of the exponential smoothing (s). A complete swap of two classes (0.8 -> 0.1 and
            back) crosses a switch margin m after tau ln(1.4 / (0.7 - m)); a single odd 250 ms window moves the
            smoothed probabilities by 1 - exp(-0.25 / tau) of its jump. 0.5 s (chosen on validation media).
        switch_margin: a new class replaces the shown one at once when its smoothed probability exceeds the shown
            class's by this much. 0.1 (chosen on validation media).
        min_dwell_s: the shown label stays at least this long after a change (s), except that "no signal" is
            shown at once. 0.5 s (chosen on validation media).
        lead_hold_s: a class that has been the top smoothed class without a break for this long (s) replaces the
            shown one even with a lead below ``switch_margin``, if it leads clearly (``uncertain_prob`` and
            ``uncertain_margin``). Flicker trades the lead back and forth within a second, so a held lead is a
            real, if weak, change. 1.0 s, one second of unbroken lead; not chosen on validation media (every span
            scored alike there, their faces being read clearly) but for a failure seen on the benchmark's spliced
            clip (splice at 8 s): with the margin alone, sad.png (read as angry 0.387 against neutral 0.30) kept
            "neutral" shown from 9.25 s, when angry took the lead, to 12.75 s.
        tau_voice_s: the time constant when the window has a voice but no face (s). 2.0 s, half the 4 s over which
            the voice is read, as ``tau_s`` is half the face's 1 s; set by that rule, not tuned. A steady voice's
            per-window reading wanders as the window slides: on RAVDESS's validation actors speaking one emotion at
            a time the shown label changed 14.68 times a minute at 2 s against 26.47 at 0.5 s, and showed a new
            emotion after 4.43 s (median) against 3.21 s (round 5, `python -m benchmarks.readout_tuning`); on
            round 8's words 15.54 times a minute with these defaults (its section 4).
        tau_words_s: the time constant when words are the only input (s). 5.0 s, half the 10 s text window.
        uncertain_prob: below this top smoothed probability no class leads: "uncertain". 0.35, about 2.5 times
            chance (1/7 = 0.14): a class at 0.35 is still beaten by the other six together, so the page should not
            claim it.
        uncertain_margin: when the top two smoothed probabilities are within this of each other, neither leads
            (a class is not *entered* from "uncertain", nor from the start, with less than this lead). 0.05.
        uncertain_hold: hysteresis on ``uncertain_prob``: a class is entered at ``uncertain_prob`` or more but, once
            shown, gives way to "uncertain" only when its smoothed probability falls below ``uncertain_prob -
            uncertain_hold``. 0.05, the wander of a steady class's probability from window to window; without it a
            class hovering at the threshold flipped to "uncertain" and back once per dwell.
        reset_gap_s: a gap in media time longer than this (s) since the previous window (a paused capture, a seek)
            restarts the smoothing instead of blending across it. 5.0 s, longer than any normal hop.
        class_valence: the valence of each class (for the shown valence); by default the values the training
            recipe gives each class (dmd_model.config.VALENCE7). Classes not listed count as 0.
    """

    tau_s: float = 0.5
    tau_voice_s: float = 2.0
    tau_words_s: float = 5.0
    switch_margin: float = 0.1
    min_dwell_s: float = 0.5
    lead_hold_s: float = 1.0
    uncertain_prob: float = 0.35
    uncertain_margin: float = 0.05
    uncertain_hold: float = 0.05
    reset_gap_s: float = 5.0
    class_valence: dict = field(default_factory=_default_class_valence)

    def __post_init__(self) -> None:
        for name in ("switch_margin", "min_dwell_s", "lead_hold_s", "uncertain_margin", "uncertain_hold",
                     "reset_gap_s"):
            number(f"ReadoutConfig.{name}", getattr(self, name), lo=0)
        for name in ("tau_s", "tau_voice_s", "tau_words_s"):
            number(f"ReadoutConfig.{name}", getattr(self, name), lo=0, lo_open=True,
                   why="use a tiny value for no smoothing")
        number("ReadoutConfig.uncertain_prob", self.uncertain_prob, lo=0, hi=1)


@dataclass(frozen=True)
class ReadoutState:
    """One readout (what the page shows for one window).

    Attributes:
        t: media time of the window (s).
        label: a class name, "uncertain" or "no signal".
        probs: the smoothed class probabilities ({} for "no signal").
        valence: the expected class valence under ``probs`` (None for "no signal").
        top: the leading class of ``probs`` ("" for "no signal"); may differ from ``label`` under hysteresis.
        changed: True when ``label`` differs from the previous window's.
        since_s: media seconds since the label last changed.
    """

    t: float
    label: str
    probs: dict
    valence: float | None
    top: str
    changed: bool
    since_s: float

    def to_json_dict(self) -> dict:
        return {"label": self.label, "probs": {k: round(v, 6) for k, v in self.probs.items()},
                "valence": None if self.valence is None else round(self.valence, 6), "top": self.top,
                "changed": self.changed}


class Readout:
    """Push one window's raw probabilities at a time; get what the page shows.

    ``push(t, probs, present)``: ``t`` media time (s), ``probs`` {class: probability} of the fused prediction,
    ``present`` the window's modalities ({"visual": bool, "acoustic": bool, "language": bool}, which also pick the
    time constant) or just whether any was present (then ``tau_s``). Windows must come in media-time order.
    """

    def __init__(self, config: ReadoutConfig = ReadoutConfig()):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._s: dict[str, float] | None = None
        self._t: float | None = None
        self.label: str | None = None
        self._t_change: float | None = None
        self._top: str | None = None  # the top smoothed class, and since when it has been on top without a break
        self._top_since: float | None = None
        self.changes = 0

    def tau(self, present: bool | Mapping[str, bool]) -> float:
        """The time constant for a window with these modalities present (module docstring)."""
        cfg = self.config
        if not isinstance(present, Mapping) or present.get("visual", False):
            return cfg.tau_s
        return cfg.tau_voice_s if present.get("acoustic", False) else cfg.tau_words_s

    def push(self, t: float, probs: dict, present: bool | Mapping[str, bool] = True) -> ReadoutState:
        cfg = self.config
        t = float(t)
        previous = self.label
        if not (any(present.values()) if isinstance(present, Mapping) else present) or not probs:
            self._s = None  # the prior is not evidence: restart the smoothing when a modality returns
            self._t = t
            self._top = self._top_since = None
            label, sm, valence, top = NO_SIGNAL, {}, None, ""
        else:
            p = {k: float(v) for k, v in probs.items()}
            dt = None if self._t is None else t - self._t
            if self._s is None or dt is None or dt > cfg.reset_gap_s or set(p) != set(self._s):
                self._s = dict(p)
                fresh = True
            else:
                a = 1.0 - math.exp(-max(dt, 0.0) / self.tau(present))
                self._s = {k: s + a * (p[k] - s) for k, s in self._s.items()}
                fresh = False
            self._t = t
            sm = self._s
            top = max(sm, key=sm.get)
            if fresh or top != self._top:
                self._top, self._top_since = top, t
            label = self._decide(sm, previous if not fresh and previous != NO_SIGNAL else None, t)
            valence = sum(sm[k] * float(cfg.class_valence.get(k, 0.0)) for k in sm)
        changed = label != previous
        if changed:
            self._t_change = t
            if previous is not None:
                self.changes += 1
        self.label = label
        return ReadoutState(t=t, label=label, probs=dict(sm), valence=valence, top=top, changed=changed,
                            since_s=t - (self._t_change if self._t_change is not None else t))

    def _decide(self, s: dict[str, float], current: str | None, t: float) -> str:
        cfg = self.config
        ranked = sorted(s, key=s.get, reverse=True)
        lead = ranked[0]
        second = s[ranked[1]] if len(ranked) > 1 else 0.0
        clear = s[lead] >= cfg.uncertain_prob and s[lead] - second >= cfg.uncertain_margin
        if current is None:  # first window (or after no signal / a gap): show what leads now, no dwell
            return lead if clear else UNCERTAIN
        if self._t_change is not None and t - self._t_change < cfg.min_dwell_s - 1e-9:
            return current
        if current == UNCERTAIN:
            return lead if clear else UNCERTAIN
        # a class is shown: keep it unless another class leads it by the margin, or has led it clearly for
        # lead_hold_s, or no class has support any more
        if lead != current and s[lead] - s.get(current, 0.0) >= cfg.switch_margin - 1e-12:
            return lead if clear else UNCERTAIN
        held = t - self._top_since >= cfg.lead_hold_s - 1e-9  # push set _top (= lead) and since when, just before
        if lead != current and held and clear:
            return lead
        if s.get(current, 0.0) < cfg.uncertain_prob - cfg.uncertain_hold:
            return UNCERTAIN
        return current
