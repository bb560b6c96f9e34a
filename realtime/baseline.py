"""Per-session baselines: map the speaker's own levels onto the training population's. Push-style, thread-free.

Why: the bundled model judges a voice by absolute eGeMAPS levels (loudness, pitch, spectral slope) and a face by
absolute blendshape scores, learnt from acted corpora recorded with other microphones and cameras. A calm real voice
can sit far from the population's calm, and reads as disgust or anger. `SessionBaseline` keeps a running estimate of
this session's mean input per feature and shifts every window's input so that the estimate lands on the checkpoint's
own input mean (``input_mean_*`` / ``input_std_*``, the statistics the model standardises with).

Why not plain per-session standardisation: on a corpus whose speakers each speak in one emotion it fell to chance
(issue 14): a session that is all anger is normalised into neutral. So the running estimate is trusted only
partly:

* **shrinkage**: the shift is ``w * (session mean - population mean)`` with ``w = n / (n + prior_s)``, ``n`` the
  seconds of present media seen so far; the population mean acts as ``prior_s`` seconds of evidence;
* **a cap**: the shift never exceeds ``cap_std`` population standard deviations per feature, so a session far from
  the population (an angry speaker all along) keeps at least ``distance - cap_std`` of its distance.

An explicit **calibration** (a few seconds of neutral face and normal voice, asked for by the user) is trusted
fully: its mean is the speaker's neutral, so the shift is the whole distance (capped at ``calibration_cap_std``,
which only guards against a calibration taken with a hand over the camera). It replaces the running estimate until
`reset`. The distance is measured to the training speakers' *neutral* level when the checkpoint ships one
(``neutral_reference.json``, written by the bootstrap recipe; the eGeMAPS levels), else to the population mean:
a neutral voice then lands where the model saw neutral voices, not on the average of all emotions. On speech
corpora no training run saw, that lifted every voice head (model card, "Calibration").

Where the shift is applied: the 25 eGeMAPS LLDs as they are (the leading `BaselineConfig.level_dims` acoustic
columns; Whisper encoder states after them are left alone); the blendshape scores (the first
``score_dims`` visual columns) in log-odds, the space the model standardises them in, mapped back to 0-1 scores, so
the scorer is unchanged. The face geometry is left alone (it is already divided by the eye distance).

Evidence per window: consecutive windows overlap (4 s windows every 0.25 s), so a window contributes only its newest
rows, those covering the media time since the previous window, weighted by that time. ``n`` is thus in seconds of
media, not in windows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from dmd_model.data import log_odds  # the model's own clip-and-logit of 0-1 scores (torch-free)

from .checks import number
from .features.specs import EGEMAPS_LLD_NAMES


MODALITY_INDEX = {"visual": 1, "acoustic": 2}


@dataclass(frozen=True)
class BaselineConfig:
    """Per-session baseline settings. Units: media seconds; shifts in population standard deviations (std).

    Attributes:
        enabled: apply the running estimate. False leaves the inputs as they are (the calibration still works when
            asked for explicitly). On by default: with the shrinkage and the cap below it cannot erase a
            one-emotion session, and it fixes the level offsets of a new microphone or camera over time.
        modalities: which inputs get a baseline ("visual" = the blendshape scores, "acoustic" = eGeMAPS).
        prior_s: the population mean counts as this many seconds of evidence (s). 30 s: after half a minute of
            speech the session's own level gets half the weight; an 8 s clip moves only 21 % of the way.
        cap_std: the running estimate's shift is capped at this many population std per feature. 1.0: a typical
            speaker/microphone offset (about 1 std on loudness and spectral slope) is removed, while an emotion
            that moves a feature by 2 std still shows at least 1 std of it however long the session lasts.
        calibration_s: seconds of present media a calibration collects per modality (s). 3.0: a few seconds of
            neutral face and a sentence of normal voice.
        calibration_timeout_s: a calibration gives up on a modality that was not present for ``calibration_s``
            within this many media seconds after it was asked for (s); 15 s. That modality keeps the running
            estimate.
        calibration_cap_std: cap on a calibrated shift (std). 3.0: trusted fully within the range a real
            neutral face or voice can lie from the population; only a broken calibration (no face light, a cough)
            goes beyond it.
        score_dims: how many leading visual columns are 0-1 scores (the 52 blendshapes); taken from the checkpoint
            when the baseline is built from a scorer (`from_model`).
        level_dims: how many leading acoustic columns get a baseline: the 25 eGeMAPS LLDs, the levels a new voice or
            microphone offsets. The Whisper encoder states that follow them in the bundled checkpoint's stream are
            left as the encoder gives them: shifting them too by the session's mean turned the calm sample speaker
            "sad" (looped sample, running baseline: 38.59 displayed changes a minute, against 0.94 without a
            baseline; ``python -m benchmarks.readout_stability``).
    """

    enabled: bool = True
    modalities: tuple[str, ...] = ("visual", "acoustic")
    prior_s: float = 30.0
    cap_std: float = 1.0
    calibration_s: float = 3.0
    calibration_timeout_s: float = 15.0
    calibration_cap_std: float = 3.0
    score_dims: int = 52
    level_dims: int = len(EGEMAPS_LLD_NAMES)

    def __post_init__(self) -> None:
        for name in ("prior_s", "cap_std", "calibration_timeout_s", "calibration_cap_std"):
            number(f"BaselineConfig.{name}", getattr(self, name), lo=0)
        number("BaselineConfig.calibration_s", self.calibration_s, lo=0, lo_open=True)
        bad = set(self.modalities) - set(MODALITY_INDEX)
        if bad:
            raise ValueError(f"BaselineConfig.modalities: unknown {sorted(bad)}; use 'visual' and/or 'acoustic'")


NEUTRAL_FILE = "neutral_reference.json"
"""In a checkpoint folder: the training speakers' neutral mean of the eGeMAPS levels, the calibration's target."""


def write_neutral_reference(ckpt_dir, levels: np.ndarray, extractor: str, n_items: int, corpora: list[str]) -> Path:
    """Write the neutral target of the acoustic levels (``levels``: the mean over the training split's neutral voice
    items' rows, one value per eGeMAPS level) beside a checkpoint."""
    levels = np.asarray(levels, np.float64)
    if levels.shape != (len(EGEMAPS_LLD_NAMES),) or not np.isfinite(levels).all():
        raise ValueError(f"neutral levels must be {len(EGEMAPS_LLD_NAMES)} finite values, got shape {levels.shape}")
    path = Path(ckpt_dir) / NEUTRAL_FILE
    doc = {"what": "mean eGeMAPS levels of the training split's neutral voice items: the target of a calibration "
                   "(realtime.baseline)",
           "acoustic": {"levels": [float(v) for v in levels], "feature_names": list(EGEMAPS_LLD_NAMES),
                        "extractor": extractor, "n_items": int(n_items), "corpora": list(corpora), "split": "train"}}
    path.write_text(json.dumps(doc, indent=1))
    return path


def load_neutral_reference(ckpt_dir, extractor: str | None) -> dict[str, np.ndarray] | None:
    """{"acoustic": levels} from a checkpoint folder's `NEUTRAL_FILE`, None when it has none. ``extractor`` (the
    checkpoint spec's acoustic extractor, None if unknown) must be the one the levels were measured with."""
    path = Path(ckpt_dir) / NEUTRAL_FILE
    if not path.is_file():
        return None
    try:
        a = json.loads(path.read_text())["acoustic"]
        levels = np.asarray(a["levels"], np.float64)
        names = tuple(a["feature_names"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: unreadable neutral reference ({e!r})") from None
    if names != EGEMAPS_LLD_NAMES or levels.shape != (len(names),) or not np.isfinite(levels).all():
        raise ValueError(f"{path}: the levels must be the {len(EGEMAPS_LLD_NAMES)} eGeMAPS LLDs in their order")
    if extractor is not None and a.get("extractor") != extractor:
        raise ValueError(f"{path}: measured with acoustic extractor {a.get('extractor')!r}, the checkpoint reads "
                         f"{extractor!r}; write it again with python -m recipes.neutral_reference")
    return {"acoustic": levels}


def calibration_shift_std(neutral_mean: np.ndarray, pop_mean: np.ndarray, pop_std: np.ndarray,
                          cap_std: float) -> np.ndarray:
    """A calibration's shift per feature, in population std: how far the speaker's neutral mean lies from the
    population's, capped at ``cap_std`` (inputs are then lowered by ``shift * pop_std``)."""
    return np.clip((neutral_mean - pop_mean) / pop_std, -cap_std, cap_std)


def running_shift_std(session_mean: np.ndarray, seen_s: float, pop_mean: np.ndarray, pop_std: np.ndarray,
                      prior_s: float, cap_std: float) -> np.ndarray:
    """The running estimate's shift per feature, in population std: the session mean's distance from the
    population's, trusted by ``w = seen_s / (seen_s + prior_s)`` and capped at ``cap_std``."""
    w = seen_s / (seen_s + prior_s) if seen_s + prior_s > 0 else 0.0
    return np.clip(w * (session_mean - pop_mean) / pop_std, -cap_std, cap_std)


def lower_levels(x: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """A float32 copy of the rows ``x`` with their leading ``len(shift)`` columns lowered by ``shift`` (computed in
    float64), the rest as they are."""
    k = len(shift)
    y = np.array(x, dtype=np.float32, copy=True)
    y[..., :k] = (np.asarray(x, np.float64)[..., :k] - shift).astype(np.float32)
    return y


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class _Track:
    """One modality's running sums, calibration and current shift (all in model-input space)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, neutral: np.ndarray | None = None):
        self.pop_mean = mean
        self.pop_std = std
        self.cal_target = mean if neutral is None else neutral  # where a calibrated neutral lands
        self.reset()

    def reset(self) -> None:
        d = len(self.pop_mean)
        self.sum = np.zeros(d)
        self.n_s = 0.0
        self.cal_sum = np.zeros(d)
        self.cal_n = 0.0
        self.cal_since: float | None = None  # media time the calibration was asked at (None: not calibrating)
        self.calibrated: np.ndarray | None = None  # the calibrated shift, once done
        self.cal_failed = False

    def add(self, rows: np.ndarray, weight_s: float, calibrating: bool) -> None:
        mean = rows.mean(0)
        self.sum += weight_s * mean
        self.n_s += weight_s
        if calibrating:
            self.cal_sum += weight_s * mean
            self.cal_n += weight_s


@dataclass(frozen=True)
class BaselineStatus:
    """What the page and the JSONL say about one modality's baseline.

    Attributes:
        state: "off", "running" (the shrunk running estimate), "calibrating" or "calibrated".
        seen_s: seconds of present media in the running estimate.
        trust: the running estimate's weight ``n / (n + prior_s)`` (1.0 when calibrated).
        max_shift_std: the largest shift applied to any feature, in population std.
        calibration_failed: the last calibration gave up on this modality (not present long enough).
    """

    state: str
    seen_s: float
    trust: float
    max_shift_std: float
    calibration_failed: bool = False

    def to_json_dict(self) -> dict:
        return {"state": self.state, "seen_s": round(self.seen_s, 3), "trust": round(self.trust, 4),
                "max_shift_std": round(self.max_shift_std, 4), "calibration_failed": self.calibration_failed}


class SessionBaseline:
    """Push each window snapshot before it is scored; get the snapshot with shifted inputs.

    Args:
        config: `BaselineConfig`.
        stats: {modality: (mean, std)} of the model's input, in its own space (blendshapes as log-odds), for the
            modalities in ``config.modalities``; see `from_model`.
        window_s: the window length (s), to tell which rows of a window are new since the previous one.
        visual_window_s: the span of the window's face rows (s; `WindowConfig.face_span_s`), None: ``window_s``.
        neutral: {modality: the training speakers' neutral mean} (`load_neutral_reference`), the target of a
            calibration; a modality without one calibrates onto its population mean.
    """

    def __init__(self, config: BaselineConfig, stats: dict[str, tuple[np.ndarray, np.ndarray]], window_s: float,
                 visual_window_s: float | None = None, neutral: dict[str, np.ndarray] | None = None):
        self.config = config
        self.window_s = float(window_s)
        self.spans = {"acoustic": self.window_s,
                      "visual": self.window_s if visual_window_s is None else float(visual_window_s)}
        self.tracks: dict[str, _Track] = {}
        for m in config.modalities:
            mean, std = stats[m]
            mean = np.asarray(mean, np.float64)
            std = np.asarray(std, np.float64)
            if m == "visual":  # only the blendshape scores get a baseline
                mean, std = mean[: config.score_dims], std[: config.score_dims]
            else:  # only the eGeMAPS levels
                mean, std = mean[: config.level_dims], std[: config.level_dims]
            target = None if not neutral or m not in neutral else np.asarray(neutral[m], np.float64)
            if target is not None and target.shape != mean.shape:
                raise ValueError(f"neutral reference for {m}: {target.shape[0]} values, the baseline shifts "
                                 f"{mean.shape[0]}")
            self.tracks[m] = _Track(mean, np.where(std > 1e-6, std, 1.0), target)
        self._t: float | None = None
        self._cal_request = False

    @classmethod
    def from_model(cls, config: BaselineConfig, model, window_s: float, visual_window_s: float | None = None,
                   neutral: dict[str, np.ndarray] | None = None) -> "SessionBaseline":
        """Built from a loaded DMD: its ``input_mean_*`` / ``input_std_*`` buffers and ``cfg.score_dims``, and the
        checkpoint's neutral reference if it has one."""
        stats = {}
        for m in config.modalities:
            stats[m] = (getattr(model, f"input_mean_{m}").detach().cpu().numpy(),
                        getattr(model, f"input_std_{m}").detach().cpu().numpy())
        config = replace(config, score_dims=int(model.cfg.score_dims[MODALITY_INDEX["visual"]]))
        return cls(config, stats, window_s, visual_window_s, neutral)

    # -- control -----------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: the running estimate and any calibration (a new session)."""
        for tr in self.tracks.values():
            tr.reset()
        self._t = None
        self._cal_request = False

    def calibrate(self) -> None:
        """Start a calibration at the next window: the next ``calibration_s`` seconds of each modality are taken
        as the speaker's neutral. A calibration in progress restarts; a finished one is replaced when done."""
        self._cal_request = True

    @property
    def calibrating(self) -> bool:
        return any(tr.cal_since is not None for tr in self.tracks.values())

    # -- the work ----------------------------------------------------------------------------------------------------
    def _features(self, m: str, x: np.ndarray) -> np.ndarray:
        if m == "visual":
            return log_odds(x[:, : self.config.score_dims])
        return x[:, : self.config.level_dims].astype(np.float64)

    def _new_rows(self, x: np.ndarray, dt: float, span_s: float) -> np.ndarray:
        k = int(math.ceil(len(x) * min(1.0, dt / span_s) - 1e-9))
        return x[len(x) - max(1, k):]

    def shift_std(self, m: str) -> np.ndarray:
        """The shift now applied to modality ``m``, per feature, in population std (positive: the session's level
        is above the population's, so inputs are lowered)."""
        cfg, tr = self.config, self.tracks[m]
        if tr.calibrated is not None:
            return tr.calibrated
        if not cfg.enabled or tr.n_s <= 0:
            return np.zeros(len(tr.pop_mean))
        return running_shift_std(tr.sum / tr.n_s, tr.n_s, tr.pop_mean, tr.pop_std, cfg.prior_s, cfg.cap_std)

    def status(self) -> dict[str, BaselineStatus]:
        out = {}
        for m, tr in self.tracks.items():
            s = self.shift_std(m)
            if tr.cal_since is not None:
                state = "calibrating"
            elif tr.calibrated is not None:
                state = "calibrated"
            else:
                state = "running" if self.config.enabled else "off"
            trust = 1.0 if tr.calibrated is not None else (
                tr.n_s / (tr.n_s + self.config.prior_s) if self.config.enabled and tr.n_s > 0 else 0.0)
            out[m] = BaselineStatus(state, tr.n_s, trust, float(np.abs(s).max(initial=0.0)), tr.cal_failed)
        return out

    def push(self, snap):
        """Learn from ``snap`` (a `WindowSnapshot`), then return a copy with its inputs shifted (the same object
        when nothing is shifted)."""
        cfg = self.config
        t = float(snap.t)
        dt = min(t, self.window_s) if self._t is None else max(0.0, min(t - self._t, self.window_s))
        self._t = t
        if self._cal_request:
            self._cal_request = False
            for tr in self.tracks.values():
                tr.cal_since, tr.cal_sum[:], tr.cal_n, tr.cal_failed = t, 0.0, 0.0, False
        present = dict(zip(("language", "visual", "acoustic"), snap.present))
        arrays = {"visual": snap.visual, "acoustic": snap.acoustic}
        for m, tr in self.tracks.items():
            x = arrays[m]
            if present[m] and len(x) and dt > 0:
                tr.add(self._features(m, self._new_rows(x, dt, self.spans[m])), dt, tr.cal_since is not None)
            if tr.cal_since is not None:
                if tr.cal_n >= cfg.calibration_s - 1e-9:
                    tr.calibrated = calibration_shift_std(tr.cal_sum / tr.cal_n, tr.cal_target, tr.pop_std,
                                                          cfg.calibration_cap_std)
                    tr.cal_since = None
                elif t - tr.cal_since > cfg.calibration_timeout_s:
                    tr.cal_since, tr.cal_failed = None, True
        out = {}
        for m, tr in self.tracks.items():
            x = arrays[m]
            if not present[m] or not len(x):
                continue
            s = self.shift_std(m)
            if not s.any():
                continue
            shift = s * tr.pop_std
            if m == "visual":
                k = self.config.score_dims
                y = np.array(x, dtype=np.float32, copy=True)
                y[:, :k] = _sigmoid(log_odds(x[:, :k]) - shift).astype(np.float32)
            else:
                y = lower_levels(x, shift)
            out[m] = y
        return replace(snap, **out) if out else snap
