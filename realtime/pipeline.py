"""Wires a source, the extraction stages, the sliding window and the scorer; fans results out to sinks.

    source thread --VideoFrame--> [video queue] --> face stage thread ------\
                  --AudioChunk--> [audio queue] --> acoustic stage thread ---+--> [event queue] --> scorer thread
                  --AudioChunk--> [audio queue] --> transcript stage thread /      (window + DMD) --> sinks

Queue policies: replay blocks (nothing lost, the source slows down); live video keeps only the latest frame and
live audio drops the oldest chunk, both counted. Every thread stops on one event; `stop()` is idempotent, wakes
every blocked queue, joins each thread with a timeout and names any thread that did not end.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Callable

from .agreement import modality_votes, votes_json
from .baseline import BaselineConfig, SessionBaseline
from .clock import monotonic
from .packets import AudioChunk, EndOfStream, VideoFrame, Watermark
from .queues import BoundedQueue, Closed, Empty, Policy
from .readout import Readout, ReadoutConfig
from .scorer import Scorer, ScorerConfig, ScoreResult
from .stages import AcousticStage, FaceStage, StageThread, TranscriptStage
from .window import SlidingWindow, WindowConfig

log = logging.getLogger(__name__)


def _default_face():
    from .features.face import FaceConfig

    return FaceConfig()


def _default_acoustic():
    from .features.acoustic import AcousticConfig

    return AcousticConfig()


def _default_transcript():
    from .features.transcript import TranscriptConfig

    return TranscriptConfig()


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline needs; built once by run_demo.py (or a test) and passed in.

    Attributes:
        window: `WindowConfig` (window and hop lengths, emission policy).
        scorer: `ScorerConfig` (checkpoint, device).
        face, acoustic, transcript: the extractors' configs (realtime.features).
        live: live overflow policies (latest frame, drop oldest audio) instead of replay's blocking queues.
        video_queue: frames buffered before the face stage (replay; live keeps one, the latest).
        audio_queue: audio chunks buffered per audio stage (0.1 s chunks: 300 = 30 s, far more than any stage lags).
        event_queue: stage outputs buffered before the scorer.
        stall_timeout_s: in replay, a stage whose watermark has not moved for this long (wall s) while the source
            has moved on is declared stalled: its modality is masked and its queue starts dropping, so the rest
            finishes instead of hanging.
        join_timeout_s: how long `stop()` waits for each thread (s).
        history: results kept in memory for the UI (the last 60 s at a 250 ms hop is 240).
        baseline: `BaselineConfig`, the per-session baseline applied to each window before scoring
            (`realtime.baseline`); `calibrate` starts its calibration.
        readout: `ReadoutConfig`, the smoothed readout added to each result (`realtime.readout`).
    """

    window: WindowConfig = WindowConfig()
    scorer: ScorerConfig = ScorerConfig()
    face: object = field(default_factory=_default_face)
    acoustic: object = field(default_factory=_default_acoustic)
    transcript: object = field(default_factory=_default_transcript)
    live: bool = False
    video_queue: int = 8
    audio_queue: int = 300
    event_queue: int = 2000
    stall_timeout_s: float = 15.0
    join_timeout_s: float = 1.0
    history: int = 240
    baseline: BaselineConfig = BaselineConfig()
    readout: ReadoutConfig = ReadoutConfig()


def _weak_method(method):
    """``method`` called through a weak reference to its object. The stages hold their emit callback for as long as
    the pipeline holds them, so a bound method there made a cycle (pipeline -> stages -> pipeline) that kept every
    finished pipeline, and the models its stages had loaded, alive until a full garbage collection (issue 17: about
    52 MB per replay in the page server). Once the pipeline is gone there is nobody to emit to."""
    ref = weakref.WeakMethod(method)

    def call(*args):
        m = ref()
        if m is not None:
            m(*args)

    return call


class Pipeline:
    """One stream's pipeline.

    Args:
        config: `PipelineConfig`.
        source: a source object (``run(emit, stop)``, ``has_video``, ``has_audio``, optional ``prepare()``).
        sinks: callables that receive every `ScoreResult`, in order, from the scorer thread.
        scorer: an already started `Scorer` to share (several pipelines can share one); built from the config
            when None.
        cores: stage cores to use instead of the real extractors, by name (tests inject failing or slow ones).
        models: where the stages get the models that are safe and worth sharing between streams (openSMILE);
            the process-wide `realtime.models.SHARED` when None.
    """

    def __init__(self, config: PipelineConfig, source, sinks: list[Callable[[ScoreResult], None]] = (),
                 scorer: Scorer | None = None, cores: dict | None = None, models=None):
        self.config = config
        self.models = models
        self.source = source
        self.sinks = list(sinks)
        self.scorer = scorer
        self._cores = cores or {}
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.results: collections.deque[ScoreResult] = collections.deque(maxlen=config.history)
        self.source_status = "idle"
        self.scorer_status = "idle"
        self.error: str | None = None
        self.count = 0
        self._last_capture: float | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self.stages: dict[str, StageThread] = {}
        self.queues: dict[str, BoundedQueue] = {}
        self._threads: list[threading.Thread] = []
        self.baseline: SessionBaseline | None = None
        self.readout = Readout(config.readout)
        self._calibrate_pending = False

    # -- construction ------------------------------------------------------------------------------------------
    def _core(self, name: str):
        if name in self._cores:
            return self._cores[name]
        if name == "face":
            from .features.face import FaceProcessor

            return FaceStage(FaceProcessor(self.config.face))
        models = self.models
        if models is None:
            from .models import SHARED as models
        if name == "acoustic":
            from .features.acoustic import AcousticProcessor

            return AcousticStage(AcousticProcessor(self.config.acoustic, models=models))
        from .features.transcript import TranscriptProcessor

        return TranscriptStage(TranscriptProcessor(self.config.transcript))  # its own Whisper: see realtime.models

    def _live_spec(self):
        from .features.specs import feature_spec

        return feature_spec(self.config.face.sample_fps)

    def start(self, warmup_timeout_s: float = 60.0) -> "Pipeline":
        """Load the models, start every thread, then start the source clock once the stages are warm."""
        cfg = self.config
        if hasattr(self.source, "prepare"):
            self.source.prepare()
        if self.scorer is None:
            self.scorer = Scorer(cfg.scorer, live_spec=self._live_spec()).start()
        live = cfg.live
        self.events = BoundedQueue(cfg.event_queue, Policy.BLOCK, "events")
        names = []
        if self.source.has_video:
            names.append("face")
            self.queues["face"] = BoundedQueue(cfg.video_queue, Policy.LATEST if live else Policy.BLOCK, "video")
        if self.source.has_audio:
            names += ["acoustic", "transcript"]
            for n in ("acoustic", "transcript"):
                self.queues[n] = BoundedQueue(cfg.audio_queue, Policy.DROP_OLDEST if live else Policy.BLOCK, f"audio-{n}")
        emit = _weak_method(self._emit_event)
        for n in names:
            self.stages[n] = StageThread(self._core(n), self.queues[n], emit, self.stop_event)
        m = self.scorer.model.cfg
        self.baseline = self._make_baseline()
        driver = "face" if "face" in names else "source"
        self.window = SlidingWindow(cfg.window, m.seq_lens, m.input_dims, tuple(names), driver=driver)
        for st in self.stages.values():
            if self.stop_event.is_set():  # stopped during start-up: start nothing more
                return self
            st.start()
        deadline = time.monotonic() + warmup_timeout_s
        while time.monotonic() < deadline and any(st.stats.status in ("idle", "starting") for st in self.stages.values()):
            if self.stop_event.wait(0.02):
                break
        if self.stop_event.is_set():
            return self
        self._spawn(self._scorer_loop, "scorer")
        self._spawn(self._source_loop, "source")
        return self

    def _make_baseline(self) -> SessionBaseline | None:
        model = self.scorer.model
        if not all(hasattr(model, f"input_mean_{n}") for n in self.config.baseline.modalities):
            return None  # a stand-in scorer without input statistics
        b = SessionBaseline.from_model(self.config.baseline, model, self.config.window.window_s)
        if self._calibrate_pending:
            b.calibrate()
        return b

    def calibrate(self) -> None:
        """Take the next few seconds of face and voice as this session's neutral (`SessionBaseline.calibrate`).
        The request travels through the event queue, so the scorer thread applies it in media-time order."""
        if not hasattr(self, "events"):
            self._calibrate_pending = True  # not started yet: calibrate from the first window
            return
        self._emit_event(("calibrate", None))

    def _spawn(self, fn, name: str) -> None:
        t = threading.Thread(target=fn, name=f"pipeline-{name}", daemon=True)
        t.start()
        self._threads.append(t)  # only started threads are ever joined

    def _emit_event(self, item) -> None:
        while not self.stop_event.is_set():
            if self.events.put(item, timeout=0.1) or self.events.closed:
                return

    # -- threads -----------------------------------------------------------------------------------------------
    def _put(self, q: BoundedQueue, packet) -> None:
        while not self.stop_event.is_set():
            if q.put(packet, timeout=0.1) or q.closed:
                return

    def _emit_packet(self, packet) -> None:
        if isinstance(packet, VideoFrame):
            if "face" in self.queues:
                self._put(self.queues["face"], packet)
            self._emit_event(Watermark("source", packet.t))
        elif isinstance(packet, AudioChunk):
            for n in ("acoustic", "transcript"):
                if n in self.queues:
                    self._put(self.queues[n], packet)
            self._emit_event(Watermark("source", packet.end))

    def _source_loop(self) -> None:
        self.source_status = "running"
        end = 0.0
        try:
            end = self.source.run(self._emit_packet, self.stop_event)
            self.source_status = "stopped" if self.stop_event.is_set() else "finished"
        except Exception as e:  # corrupt data part-way, a device that vanished
            self.source_status = f"failed: {type(e).__name__}: {e}"
            self.error = self.source_status
            log.error("source failed: %s", e)
            end = max((wm for wm in self.window.watermarks.values() if math.isfinite(wm)), default=0.0)
        for q in self.queues.values():
            q.put_control(EndOfStream(end))
        self._emit_event(("source_end", end))

    def _scorer_loop(self) -> None:
        self.scorer_status = "running"
        source_end = None
        last_progress = time.monotonic()
        last_limit = -math.inf
        try:
            while not self.stop_event.is_set():
                try:
                    item = self.events.get(timeout=0.1)
                except Empty:
                    item = None
                except Closed:
                    break
                snaps = []
                if isinstance(item, tuple) and item[0] == "calibrate":
                    if self.baseline is not None:
                        self.baseline.calibrate()
                elif isinstance(item, tuple) and item[0] == "source_end":
                    source_end = item[1]
                    snaps = self.window.push(Watermark("source", source_end))
                elif item is not None:
                    snaps = self.window.push(item)
                if snaps:
                    last_progress = time.monotonic()
                    self._score(snaps)
                limit = min(self.window.watermarks.values())
                if limit > last_limit:
                    last_limit, last_progress = limit, time.monotonic()
                elif self.config.window.wait_for_all and time.monotonic() - last_progress > self.config.stall_timeout_s:
                    self._declare_stalled()
                    last_progress = time.monotonic()
                if source_end is not None and all(self.window.watermarks[n] == math.inf for n in self.stages):
                    self._score(self.window.push(Watermark("source", source_end)))
                    break
            self.scorer_status = "stopped" if self.stop_event.is_set() else "finished"
        except Exception as e:
            self.scorer_status = f"failed: {type(e).__name__}: {e}"
            self.error = self.scorer_status
            log.exception("scorer failed")
        finally:
            self.done.set()

    def _declare_stalled(self) -> None:
        """Mask stages that stopped making progress, and let their queues drop so the source keeps going."""
        wm = self.window.watermarks
        ahead = wm["source"]
        for name, st in self.stages.items():
            # behind the source with input waiting: stuck (an idle stage with an empty inbox is not stalled, e.g.
            # the face stage while a live user has the camera off); -inf: stuck before its first output
            if wm.get(name, math.inf) != math.inf and wm[name] < ahead and len(self.queues[name]):
                st.stats.status = "stalled"
                log.error("stage %s stalled at media time %.2f s; masking it", name, wm[name])
                self.queues[name].policy = Policy.DROP_OLDEST
                self._score(self.window.push(Watermark(name, math.inf)))

    def _score(self, snaps) -> None:
        if not snaps:
            return
        statuses = [None] * len(snaps)
        if self.baseline is not None:
            shifted = []
            for i, s in enumerate(snaps):  # in media-time order: each window adds to the estimate, then is shifted
                shifted.append(self.baseline.push(s))
                statuses[i] = {m: st.to_json_dict() for m, st in self.baseline.status().items()}
            snaps = shifted
        results = self.scorer.score(snaps)
        now = monotonic()
        drops = {q.name: q.drops for q in self.queues.values()}
        for snap, r, status in zip(snaps, results, statuses):
            shown = self.readout.push(r.t, r.probs, any(r.present.values()))
            r.readout = shown.to_json_dict()
            r.agreement = votes_json(modality_votes(r.heads, r.present, r.emotion)) if r.probs else {}
            r.baseline = status
            r.latency_ms = {"scorer": round(self.scorer.last_ms, 3)}
            if snap.t_mono is not None:
                r.latency_ms["capture_to_score"] = round((now - snap.t_mono) * 1e3, 3)
                self._last_capture = max(self._last_capture or -math.inf, snap.t_mono)
            for n, st in self.stages.items():
                r.latency_ms[n] = round(st.stats.last_ms, 3)
            r.drops = dict(drops)
            self.results.append(r)
            self.count += 1
            for sink in self.sinks:
                sink(r)

    # -- control -----------------------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the stream has been scored to its end (True) or the timeout passes (False)."""
        return self.done.wait(timeout)

    def stop(self) -> list[str]:
        """Stop every thread (idempotent). Returns the names of threads still alive after their join timeout."""
        with self._lock:
            if self._stopped:
                return []
            self._stopped = True
        self.stop_event.set()
        for q in list(self.queues.values()) + ([self.events] if hasattr(self, "events") else []):
            q.close()
        alive = []
        for st in self.stages.values():
            if not st.join(self.config.join_timeout_s):
                alive.append(f"stage-{st.name}")
        for t in list(self._threads):
            t.join(self.config.join_timeout_s)
            if t.is_alive():
                alive.append(t.name)
        if alive:
            log.warning("threads still running after stop: %s", ", ".join(alive))
        self.done.set()
        return alive

    def lag_s(self) -> float | None:
        """How old (s, wall clock) the newest scored data is: about a hop plus the pipeline's latency when it keeps
        up, growing without bound when it does not (in real-time replay or live). None before the first score."""
        if self._last_capture is None:
            return None
        return monotonic() - self._last_capture

    def metrics(self) -> dict:
        """A snapshot for the UI: stage status and latency, queue sizes and drops, scorer latency."""
        return {
            "source": self.source_status,
            "scorer": {"status": self.scorer_status, "last_ms": round(self.scorer.last_ms, 3) if self.scorer else None},
            "stages": {n: st.stats.as_dict() for n, st in self.stages.items()},
            "queues": {q.name: q.stats() for q in self.queues.values()},
            "results": self.count,
            "error": self.error,
        }
