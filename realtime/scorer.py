"""Scores windows with a DMD checkpoint: batching into resident tensors, the model, and the result records. Model
only: the windows arrive with every input made (face and voice rows by the window, token states by the language
step, `realtime.language`).

The scorer checks the checkpoint's feature spec against the live extractors' at start, so a model trained on other
features is refused instead of scoring nonsense. On CUDA the model and preallocated input buffers stay on the GPU;
each call copies only the new windows in. Several streams' windows can be scored in one batch (`score`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dmd_model.feature_spec import MODALITIES, MODALITY_SHORT, FeatureSpec

from .baseline import load_neutral_reference
from .paths import DEFAULT_CHECKPOINT
from .window import WindowSnapshot

log = logging.getLogger(__name__)

NO_SIGNAL = "no signal"
"""The label of a window with no modality present: the model's output there is its prior, not evidence."""


@dataclass(frozen=True)
class ScorerConfig:
    """Scoring settings.

    Attributes:
        checkpoint: checkpoint directory (model.safetensors + config.json); the bundled one by default.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        torch_threads: torch CPU threads while scoring; 1 because on 2 cores torch's OpenMP pool fights the
            face, Whisper and openSMILE threads (see docs/features.md); None leaves torch alone.
        max_batch: the most windows scored in one forward pass (preallocated buffer size).
        check_spec: refuse a checkpoint whose feature spec differs from the live extractors'.
        engine: how a batch is scored: ``"traced"`` (default: `dmd_model.compiled.TracedScores`, the scoring path
            frozen with TorchScript, fastest at every batch size measured, docs/speed.md), ``"infer"`` (the eager
            scoring path `DMD.infer`), ``"forward"`` (the training forward, the reference), or on CUDA ``"graphed"``
            (`dmd_model.compiled.GraphedScores`: the frozen graph replayed as CUDA graphs, not yet measured on a GPU).
            All agree to 1e-5.
    """

    checkpoint: str = str(DEFAULT_CHECKPOINT)
    device: str = "auto"
    torch_threads: int | None = 1
    max_batch: int = 64
    check_spec: bool = True
    engine: str = "traced"


@dataclass(frozen=True)
class ScoreResult:
    """One scored window (what the UI draws and the JSONL sink writes); frozen: built once by the scorer, then
    completed once by the pipeline (`dataclasses.replace`), never patched.

    ``emotion``/``valence``/``probs`` are the raw per-window scores ("no signal", NaN and {} when nothing is
    present). ``readout`` (what the page shows, smoothed: `realtime.readout`), ``agreement`` (per-modality votes:
    `realtime.agreement`) and ``baseline`` (the per-session baseline's state: `realtime.baseline`) are added by the
    pipeline and written to the JSONL as separate fields when set. ``words`` are the words of the text window;
    ``new_words`` those committed since the previous window (what the page appends to its transcript; not written
    to the JSONL, whose ``words`` already hold them).
    """

    t: float
    valence: float
    emotion: str
    probs: dict[str, float]
    heads: dict
    homo_edges: list[list[float]]
    hetero_edges: list[list[float]]
    present: dict[str, bool]
    words: list[str]
    face_fraction: float | None = None
    voiced_fraction: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    landmarks: np.ndarray | None = None
    readout: dict | None = None
    agreement: dict | None = None
    baseline: dict | None = None
    new_words: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict:
        d = {
            "t": self.t, "valence": self.valence, "emotion": self.emotion, "probs": self.probs, "heads": self.heads,
            "homo_edges": self.homo_edges, "hetero_edges": self.hetero_edges, "present": self.present,
            "words": self.words, "face_fraction": self.face_fraction, "voiced_fraction": self.voiced_fraction,
            "latency_ms": self.latency_ms, "drops": self.drops,
        }
        for k in ("readout", "agreement", "baseline"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


def checkpoint_dir(checkpoint: str) -> Path:
    """The checkpoint folder, or FileNotFoundError saying how to get one."""
    path = Path(checkpoint)
    if not path.is_dir():
        raise FileNotFoundError(
            f"checkpoint {path} not found: pass --checkpoint DIR (train one with python -m dmd_model.train)"
        )
    return path


def model_config(checkpoint: str):
    """The checkpoint's `DMDConfig` from its config.json, read and size-checked without torch and without building
    anything: the model's lengths and widths, known before the model loads."""
    from dmd_model.checkpoint_config import read_config

    return read_config(checkpoint_dir(checkpoint))[0]


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for, but CUDA is not available")
    return name


class Scorer:
    """Loads the model once; `score` turns window snapshots into `ScoreResult`s.

    Args:
        config: `ScorerConfig`.
        live_spec: the spec of the features the pipeline produces (checked against the checkpoint's).
    """

    def __init__(self, config: ScorerConfig, live_spec: FeatureSpec | None = None):
        self.config = config
        self.live_spec = live_spec
        self.model = None
        self.neutral_reference = None
        self._lock = threading.Lock()
        self.last_ms = 0.0

    def start(self) -> "Scorer":
        import torch

        from dmd_model.checkpoint import load_checkpoint

        if self.config.torch_threads:
            torch.set_num_threads(self.config.torch_threads)
        self.device = resolve_device(self.config.device)
        path = checkpoint_dir(self.config.checkpoint)
        self.model, spec, self.doc = load_checkpoint(path, self.device)
        if self.config.check_spec and spec is not None and self.live_spec is not None:
            spec.check_compatible(self.live_spec, what=f"live features vs checkpoint {path}")
        # the calibration's target, if the checkpoint ships one (checked against the checkpoint's extractor)
        self.neutral_reference = load_neutral_reference(path, None if spec is None else spec.acoustic.extractor)
        cfg = self.model.cfg
        if not cfg.use_masks:
            raise ValueError(f"checkpoint {path} uses preset without masks ({cfg.temporal_pooling}); live scoring "
                             "needs a length-agnostic preset such as 'live'")
        self.cfg = cfg
        self._run = self._engine(self.config.engine)
        self.emotions = list(cfg.emotions) or [f"class{i}" for i in range(cfg.num_classes)]
        b = self.config.max_batch
        # resident input buffers: refilled in place for every batch (no per-call allocation on the GPU)
        self._buf = [torch.zeros(b, cfg.seq_lens[m], cfg.input_dims[m], device=self.device) for m in range(3)]
        self._lengths = torch.zeros(b, 3, dtype=torch.long, device=self.device)
        self._present = torch.zeros(b, 3, dtype=torch.bool, device=self.device)
        self._torch = torch
        return self

    def _engine(self, name: str):
        """The batch scoring function for `ScorerConfig.engine` (each returns heads, prediction and edges)."""
        if name == "traced":
            from dmd_model.compiled import TracedScores

            return TracedScores(self.model)
        if name == "graphed":
            from dmd_model.compiled import GraphedScores

            return GraphedScores(self.model)  # CUDA only: says so on another device
        if name == "infer":
            return self.model.infer
        if name == "forward":
            return self.model
        raise ValueError(f"unknown scorer engine {name!r}; choose traced, graphed (CUDA), infer or forward")

    def score(self, snaps: list[WindowSnapshot]) -> list[ScoreResult]:
        """Score any number of windows (split into `max_batch` batches), each with its ``language`` input made.
        Thread-safe: the resident buffers are shared, so concurrent callers take turns (use `BatchingScorer` to
        merge them)."""
        out = []
        with self._lock:
            for i in range(0, len(snaps), self.config.max_batch):
                out.extend(self._score_batch(snaps[i : i + self.config.max_batch]))
        return out

    def _score_batch(self, snaps: list[WindowSnapshot]) -> list[ScoreResult]:
        torch = self._torch
        t0 = time.perf_counter()
        n = len(snaps)
        on_cpu = self._buf[0].device.type == "cpu"
        # on the CPU the resident buffers are filled in place through numpy views (no staging copy of ~12 MB per
        # batch of 64); on a GPU a host batch is built and copied over
        host = ([b[:n].numpy() for b in self._buf] if on_cpu else
                [np.empty((n, self.cfg.seq_lens[m], self.cfg.input_dims[m]), np.float32) for m in range(3)])
        lengths = np.ones((n, 3), np.int64)
        present = np.zeros((n, 3), bool)
        for i, s in enumerate(snaps):
            if s.language is None:
                raise ValueError(f"window at {s.t} s has no language input: run it through realtime.language first")
            rows = (s.language, s.visual, s.acoustic)
            for m, x in enumerate(rows):
                k = min(len(x), self.cfg.seq_lens[m])
                if k:
                    host[m][i, :k] = x[:k]
                    lengths[i, m] = k
                host[m][i, k:] = 0.0
            present[i] = s.present
        with torch.inference_mode():
            if not on_cpu:
                for m in range(3):
                    self._buf[m][:n].copy_(torch.from_numpy(host[m]), non_blocking=True)
            self._lengths[:n].copy_(torch.from_numpy(lengths))
            self._present[:n].copy_(torch.from_numpy(present))
            out = self._run(*(b[:n] for b in self._buf), lengths=self._lengths[:n], present=self._present[:n])
            pred = out.prediction.float().cpu().numpy()
            homo = out.homo_logits.float().cpu().numpy()
            het = out.hetero_logits.float().cpu().numpy()
            hm = out.homo_edge_matrix.float().cpu().numpy()
            xm = out.hetero_edge_matrix.float().cpu().numpy()
        self.last_ms = (time.perf_counter() - t0) * 1e3
        return self._results(snaps, pred, homo, het, hm, xm)

    def _split(self, logits: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(..., out) logits -> valences (...) or None, and class probabilities (..., C) or None: over the whole
        batch at once (a per-window loop cost about 0.1 ms a window, an eighth of a batch of 64)."""
        r = int(self.cfg.regression)
        valence = logits[..., 0] if r else None
        probs = None
        if self.cfg.num_classes:
            z = logits[..., r:] - logits[..., r:].max(-1, keepdims=True)
            e = np.exp(z)
            probs = e / e.sum(-1, keepdims=True)
        return valence, probs

    def _results(self, snaps, pred, homo, het, hm, xm) -> list[ScoreResult]:
        valence, probs = self._split(pred)
        heads_v, heads_c = {}, {}
        for name, block in (("homo", homo), ("hetero", het)):
            v, p = self._split(block)
            heads_v[name] = v.tolist() if v is not None else None
            heads_c[name] = p.argmax(-1).tolist() if p is not None else None
        valence = valence.tolist() if valence is not None else None
        probs = probs.tolist() if probs is not None else None
        hm, xm = hm.round(6).tolist(), xm.round(6).tolist()
        out = []
        for i, s in enumerate(snaps):
            heads: dict = {"homo": {}, "hetero": {}}
            for name in ("homo", "hetero"):
                for m, short in enumerate(MODALITY_SHORT):
                    heads[name][short] = {
                        "valence": heads_v[name][i][m] if heads_v[name] is not None else None,
                        "emotion": self.emotions[heads_c[name][i][m]] if heads_c[name] is not None else None}
            out.append(self._result(s, None if valence is None else valence[i], None if probs is None else probs[i],
                                    heads, hm[i], xm[i]))
        return out

    def _result(self, s: WindowSnapshot, valence, probs, heads, hm, xm) -> ScoreResult:
        pr = dict(zip(self.emotions, probs)) if probs is not None else {}
        emotion = max(pr, key=pr.get) if pr else ""
        if not any(s.present):  # nothing to judge: the output is the model's prior, so claim nothing
            pr, emotion, valence = {}, NO_SIGNAL, float("nan")
        return ScoreResult(
            t=s.t, valence=valence if valence is not None else 0.0,
            emotion=emotion, probs=pr, heads=heads,
            homo_edges=hm, hetero_edges=xm,
            present=dict(zip(MODALITIES, map(bool, s.present))),
            words=[w.text for w in s.words], face_fraction=s.face_fraction, voiced_fraction=s.voiced_fraction,
            landmarks=s.landmarks, new_words=[w.text for w in s.new_words],
        )
