"""Wires a source, the extraction stages, the sliding window and the scorer; fans results out to sinks.

    source thread --VideoFrame--> [video queue] --> face stage thread ------\
                  --AudioChunk--> [audio queue] --> acoustic stage thread ---+--> [event queue] --> scorer thread
                  --AudioChunk--> [audio queue] --> transcript stage thread /      (window + DMD) --> sinks

Queue policies: replay blocks (nothing lost, the source slows down); live video keeps only the latest frame and
live audio drops the oldest chunk, both counted. Every thread stops on one event; `stop()` is idempotent, wakes
every blocked queue, joins each thread with a timeout and names any thread that did not end.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from dataclasses import replace
from typing import Callable

from .agreement import modality_votes, votes_json
from .baseline import SessionBaseline
from .clock import monotonic
from .config import PipelineConfig
from .language import LanguageStep
from .packets import AudioChunk, CalibrateRequest, ClockTick, EndOfStream, SourceEnd, VideoFrame, Watermark
from .queues import BoundedQueue, Policy, consume
from .readout import Readout
from .scorer import Scorer, ScoreResult, model_config
from .stages import AcousticStage, FaceStage, StageThread, TranscriptStage
from .window import SlidingWindow

__all__ = ["Pipeline", "PipelineConfig"]  # PipelineConfig lives in realtime.config; importable here as before

log = logging.getLogger(__name__)


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
        models: where the stages and the language step get the models that are safe and worth sharing between
            streams (openSMILE, MiniLM); the process-wide `realtime.models.SHARED` when None.
        text_encoder: the language step's encoder instead of the shared MiniLM (tests pass a stand-in).
    """

    def __init__(self, config: PipelineConfig, source, sinks: list[Callable[[ScoreResult], None]] = (),
                 scorer: Scorer | None = None, cores: dict | None = None, models=None, text_encoder=None):
        self.config = config
        self.models = models
        self._text_encoder = text_encoder
        self.source = source
        self.sinks = list(sinks)
        self.scorer = scorer
        self._cores = cores or {}
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.source_status = "idle"
        self.scorer_status = "idle"
        self.error: str | None = None
        self.count = 0
        self._last_capture: float | None = None
        self._stopped = False
        self._lock = threading.Lock()
        self.stages: dict[str, StageThread] = {}
        self.queues: dict[str, BoundedQueue] = {}
        self.events = BoundedQueue(config.event_queue, Policy.BLOCK, "events")
        self._threads: list[threading.Thread] = []
        self.window: SlidingWindow | None = None
        self.language: LanguageStep | None = None
        self.baseline: SessionBaseline | None = None
        self.readout = Readout(config.readout)
        self._calibrate_first = False

    # -- construction ------------------------------------------------------------------------------------------
    def _core(self, name: str):
        if name in self._cores:
            return self._cores[name]
        if name == "face":
            from .features.face import FaceProcessor

            return FaceStage(FaceProcessor(self.config.face))
        if name == "acoustic":
            from .features.acoustic import AcousticProcessor

            return AcousticStage(AcousticProcessor(self.config.acoustic, models=self._models()))
        from .features.transcript import TranscriptProcessor

        return TranscriptStage(TranscriptProcessor(self.config.transcript))  # its own Whisper: see realtime.models

    def _models(self):
        if self.models is not None:
            return self.models
        from .models import SHARED

        return SHARED

    def _build_stages(self) -> tuple[str, ...]:
        """The stages this source needs, each with its inbox (the mode's declared overflow policy)."""
        cfg, live = self.config, self.config.live
        names = []
        if self.source.has_video:
            names.append("face")
            self.queues["face"] = BoundedQueue(cfg.video_queue, Policy.LATEST if live else Policy.BLOCK, "video")
        if self.source.has_audio:
            names += ["acoustic", "transcript"]
            for n in ("acoustic", "transcript"):
                self.queues[n] = BoundedQueue(cfg.audio_queue, Policy.DROP_OLDEST if live else Policy.BLOCK, f"audio-{n}")
        emit = _weak_method(self._emit_event)
        for n in names:  # live: Whisper catches up on waiting audio in one call (StageThread._with_backlog)
            nice = cfg.audio_nice if live and n != "face" else 0  # live: the face stage paces the scores
            self.stages[n] = StageThread(self._core(n), self.queues[n], emit, self.stop_event,
                                         coalesce=live and n == "transcript", nice=nice)
        return tuple(names)

    def start(self, warmup_timeout_s: float = 60.0) -> "Pipeline":
        """Load the models, start every thread, then start the source clock once the stages are warm.

        The window and the language step need only the model's lengths and widths, read from the checkpoint's
        config (`scorer.model_config`, no torch) or from the scorer given, so they are built before the model loads."""
        cfg = self.config
        if hasattr(self.source, "prepare"):
            self.source.prepare()
        m = self.scorer.model.cfg if self.scorer is not None else model_config(cfg.scorer.checkpoint)
        names = self._build_stages()
        driver = "face" if "face" in names else "source"
        self.window = SlidingWindow(cfg.window, m.seq_lens, m.input_dims, names, driver=driver)
        encoder = self._text_encoder or self._models().text_encoder(cfg.text)
        self.language = LanguageStep(encoder, m.seq_lens[0], m.input_dims[0], cfg.text_cache, defer=cfg.defer_words,
                                     min_word_prob=cfg.min_word_prob)
        if self.scorer is None:
            self.scorer = Scorer(cfg.scorer, live_spec=cfg.feature_spec()).start()
        self.baseline = self._make_baseline()
        for st in self.stages.values():
            if not self._unless_stopped(st.start):  # stopped during start-up: start nothing more
                return self
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
        w = self.config.window
        b = SessionBaseline.from_model(self.config.baseline, model, w.window_s, w.face_span_s,
                                       getattr(self.scorer, "neutral_reference", None))
        if self._calibrate_first:
            b.calibrate()
        return b

    def calibrate(self) -> None:
        """Take the next few seconds of face and voice as this session's neutral (`SessionBaseline.calibrate`).
        The request travels through the event queue, so the scorer thread applies it in media-time order; before
        `start` it applies from the first window."""
        if self.window is None:
            self._calibrate_first = True
            return
        self._emit_event(CalibrateRequest())

    def _unless_stopped(self, begin) -> bool:
        """Call ``begin`` (start a stage or a thread) unless `stop` has begun, under the lock `stop` takes first: so
        whatever starts is something `stop` then joins. (A stop between a start-up check and a thread's start used
        to leave that thread running after `stop` returned.) False when stopped."""
        with self._lock:
            if self._stopped:
                return False
            begin()
            return True

    def _spawn(self, fn, name: str) -> None:
        t = threading.Thread(target=fn, name=f"pipeline-{name}", daemon=True)

        def begin() -> None:
            t.start()
            self._threads.append(t)  # only started threads are ever joined

        self._unless_stopped(begin)

    def _emit_event(self, item) -> None:
        self._put(self.events, item)

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
        elif isinstance(packet, ClockTick):
            # only into an empty face queue: a waiting frame moves the watermark itself, and in the live queue
            # (one slot, latest wins) a tick must never push a frame out
            q = self.queues.get("face")
            if q is not None and not len(q):
                self._put(q, packet)
            self._emit_event(Watermark("source", packet.t))

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
            end = self.window.newest_watermark()
        for q in self.queues.values():
            q.put_control(EndOfStream(end))
        self._emit_event(SourceEnd(end))

    def _scorer_loop(self) -> None:
        self.scorer_status = "running"
        stall = _StallClock(self.config.stall_timeout_s if self.config.window.wait_for_all else math.inf)
        source_end: SourceEnd | None = None
        try:
            for item in consume(self.events, self.stop_event, idle=True):
                if isinstance(item, CalibrateRequest):
                    if self.baseline is not None:
                        self.baseline.calibrate()
                elif isinstance(item, SourceEnd):
                    source_end = item
                    self._score(self.window.push(Watermark("source", item.t)))
                elif item is not None:
                    self._score(self.window.push(item))
                if stall.check(self.window.limit()):
                    self._declare_stalled()
                if source_end is not None and self.window.finished(self.stages):
                    self._score(self.window.push(Watermark("source", source_end.t)))
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
        for name in self.window.behind_source(self.stages):
            # behind the source with input waiting: stuck (an idle stage with an empty inbox is not stalled, e.g.
            # the face stage while a live user has the camera off)
            if len(self.queues[name]):
                self.stages[name].stats.status = "stalled"
                log.error("stage %s stalled at media time %.2f s; masking it", name, self.window.watermarks[name])
                self.queues[name].stop_blocking()
                self._score(self.window.push(Watermark(name, math.inf)))

    def _score(self, snaps) -> None:
        if not snaps:
            return
        t0 = monotonic()
        snaps = self.language.push(snaps)
        language_ms = (monotonic() - t0) * 1e3  # MiniLM runs here when a window's words changed (replay)
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
            r = self._complete(r, snap, status, now, drops, language_ms)
            self.count += 1
            for sink in self.sinks:
                sink(r)
        self.language.catch_up()  # deferred words (live): MiniLM runs now, after the results went out

    def _complete(self, r: ScoreResult, snap, status, now: float, drops: dict, language_ms: float) -> ScoreResult:
        """The scorer's result with what the pipeline knows added: readout, votes, baseline, latencies, drops."""
        shown = self.readout.push(r.t, r.probs, r.present)
        latency = {"scorer": round(self.scorer.last_ms, 3), "language": round(language_ms, 3)}
        if self.language.defer:  # the newest deferred encoding, done after an earlier window's result went out
            latency["language_deferred"] = round(self.language.last_catch_up_ms, 3)
        if snap.t_mono is not None:
            latency["capture_to_score"] = round((now - snap.t_mono) * 1e3, 3)
            self._last_capture = max(self._last_capture or -math.inf, snap.t_mono)
        for n, st in self.stages.items():
            latency[n] = round(st.stats.last_ms, 3)
        if snap.new_words:  # speech to score: from the newest new word's end (media time) to this window's end
            latency["word_delay"] = round((snap.t - max(w.end for w in snap.new_words)) * 1e3, 3)
        if "face" in self.stages:  # the driver's hand-offs: capture to the face stage starting on the frame
            latency["face_wait"] = round(self.stages["face"].stats.last_wait_ms, 3)
        return replace(r, readout=shown.to_json_dict(), baseline=status, latency_ms=latency, drops=dict(drops),
                       agreement=votes_json(modality_votes(r.heads, r.present, r.emotion)) if r.probs else {})

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
        for q in [*self.queues.values(), self.events]:
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


class _StallClock:
    """Replay's stall rule: True when the window's limit (the media time every stage has reached) has not moved
    for ``timeout_s`` of wall time (then the clock restarts); never with an infinite timeout (live)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.limit = -math.inf
        self.since = time.monotonic()

    def check(self, limit: float) -> bool:
        now = time.monotonic()
        if limit > self.limit:
            self.limit, self.since = limit, now
            return False
        if now - self.since > self.timeout_s:
            self.since = now
            return True
        return False
