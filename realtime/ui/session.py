"""One browser session = one `Session` = at most one running `Pipeline` (no Gradio imports here).

The page keeps a `Session` in a ``gr.State`` (Gradio keeps state per browser tab, so two tabs never share one), and
the app's unload handler and the state's delete callback both call `Session.close`. Everything a session shows
(results, transcript, frames, averages, downloads) lives on its own object and in its own temporary folder.

What *is* shared between sessions: the loaded DMD model (`ScorerPool`), because loading it per tab would cost
seconds and memory. `Scorer.score` refills preallocated buffers, so it is not safe to call from two pipelines'
scorer threads at once; `LockedScorer` serialises it (a forward pass takes a few ms, so the lock costs little).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import logging
import math
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..clock import monotonic
from ..memory import release_freed_memory
from ..packets import AudioChunk, VideoFrame
from . import plots
from .health import RateMeter
from .render_thread import on_render_thread
from .workspace import Workspace, delete_upload, public_message

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
SAMPLE = ASSETS / "WDA_KatieHill_000.mp4"

VIDEO_EXT = {".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".ogv", ".3gp", ".flv", ".wmv"}
AUDIO_EXT = {".wav", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aif", ".aiff"}


class UploadError(ValueError):
    """An upload the page refuses (too big, wrong type, unreadable); the message is shown to the user."""


def check_upload(path: str | Path, max_mb: float) -> Path:
    """Accept only audio or video files up to ``max_mb`` MB; raise `UploadError` with a clear message otherwise."""
    p = Path(path)
    if not p.is_file():
        raise UploadError(f"{p.name}: the upload did not arrive")
    size_mb = p.stat().st_size / 1e6
    if size_mb > max_mb:
        raise UploadError(f"{p.name} is {size_mb:.1f} MB; the limit is {max_mb:g} MB (--max-upload-mb)")
    ext = p.suffix.lower()
    if ext not in VIDEO_EXT | AUDIO_EXT:
        raise UploadError(f"{p.name}: only audio or video files can be replayed (got '{ext or 'no extension'}')")
    if p.stat().st_size == 0:
        raise UploadError(f"{p.name}: the file is empty")
    return p


def find_checkpoints(extra: list[str] = ()) -> list[str]:
    """Checkpoint directories under assets/ (a folder with config.json and model.safetensors), plus ``extra``."""
    found = []
    for c in list(extra):
        if c and c not in found:
            found.append(c)
    if ASSETS.is_dir():
        for d in sorted(ASSETS.iterdir()):
            if d.is_dir() and (d / "config.json").is_file() and (d / "model.safetensors").is_file():
                if str(d) not in found:
                    found.append(str(d))
    return found


def checkpoint_names(cli_checkpoint: str | None) -> dict[str, str]:
    """The checkpoints the Settings tab offers, by the name it shows -> folder: those under assets/ and the one
    ``--checkpoint`` named (uploads are added per session). The page only ever sees the names, so it neither shows
    where the server keeps them nor lets a visitor type a path to probe the disk."""
    out: dict[str, str] = {}
    if cli_checkpoint:
        c = Path(cli_checkpoint).resolve()
        try:
            name = str(c.relative_to(ROOT))
        except ValueError:
            name = f"--checkpoint ({c.name})"
        out[name] = str(c)
    for d in find_checkpoints():
        name = str(Path(d).resolve().relative_to(ROOT))
        out.setdefault(name, str(Path(d).resolve()))
    return out


# -- the shared model ----------------------------------------------------------------------------------------------

class LockedScorer:
    """A started `Scorer` whose `score` is serialised, so several sessions' pipelines can share it."""

    def __init__(self, scorer):
        self._scorer = scorer
        self._lock = threading.Lock()

    def score(self, snaps):
        with self._lock:
            return self._scorer.score(snaps)

    def __getattr__(self, name):  # model, last_ms, cfg, emotions, doc ...
        return getattr(self._scorer, name)


class ScorerPool:
    """Loads each (checkpoint, device) once and hands the same `LockedScorer` to every session."""

    def __init__(self):
        self._lock = threading.Lock()
        self._scorers: dict[tuple[str, str], LockedScorer] = {}

    def get(self, scorer_config, live_spec) -> LockedScorer:
        from ..scorer import Scorer

        key = (str(Path(scorer_config.checkpoint).resolve()), scorer_config.device)
        with self._lock:  # one load at a time; a second session asking for the same model waits for it
            if key not in self._scorers:
                self._scorers[key] = LockedScorer(Scorer(scorer_config, live_spec=live_spec).start())
            return self._scorers[key]


POOL = ScorerPool()


def priors(scorer) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The checkpoint's own edge priors π (homo, hetero), or the reference defaults if it does not say."""
    try:
        cfg = scorer.model.cfg
        return tuple(cfg.homo_gd.prior), tuple(cfg.hetero_gd.prior)
    except AttributeError:
        return plots.HOMO_PRIOR, plots.HETERO_PRIOR


# -- sources seen by the UI ----------------------------------------------------------------------------------------

class ObservedSource:
    """Wraps a source: keeps the latest frames for display, counts frame/audio rates, and (for replay) does the
    pacing itself so that the page can pause and switch between real-time and fast while it plays.

    With ``paced=True`` the inner source must run in fast mode; this wrapper then releases each packet at its media
    time (a frame at ``t``, an audio chunk when its last sample is due, as `FileReplaySource` does) unless
    ``fast`` is set, and holds it while ``paused``. The capture stamp ``t_mono`` is renewed at release, so latency
    still counts from the moment a live system would have had the packet.
    """

    def __init__(self, inner, paced: bool = False, fast: bool = False, keep_frames: int = 120, display_width: int = 320):
        self.inner = inner
        self.paced = paced
        self.fast = fast
        self.paused = threading.Event()
        self.frames: collections.deque = collections.deque(maxlen=keep_frames)
        self.display_width = display_width
        self.video_rate = RateMeter()
        self.audio_rate = RateMeter()
        self._anchor: tuple[float, float] | None = None
        self.media_t = 0.0
        self.name = getattr(inner, "name", "source")

    has_video = property(lambda self: self.inner.has_video)
    has_audio = property(lambda self: self.inner.has_audio)

    def prepare(self) -> None:
        if hasattr(self.inner, "prepare"):
            self.inner.prepare()

    def set_fast(self, fast: bool) -> None:
        self.fast = fast
        self._anchor = None  # re-anchor real-time pacing at the next packet

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.paused.set()
        else:
            self._anchor = None
            self.paused.clear()

    def _wait(self, t_release: float, stop: threading.Event) -> bool:
        while self.paused.is_set():
            if stop.wait(0.05):
                return False
        if self.fast:
            return not stop.is_set()
        now = monotonic()
        if self._anchor is None:
            self._anchor = (now, t_release)
        delay = self._anchor[0] + (t_release - self._anchor[1]) - now
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()

    def _keep_frame(self, p: VideoFrame) -> None:
        rgb = p.rgb
        if rgb.shape[1] > self.display_width:
            import cv2

            h = round(rgb.shape[0] * self.display_width / rgb.shape[1])
            rgb = cv2.resize(rgb, (self.display_width, h), interpolation=cv2.INTER_AREA)
        self.frames.append((p.t, rgb))

    def run(self, emit, stop: threading.Event) -> float:
        def wrapped(p):
            if self.paced:
                t_release = p.end if isinstance(p, AudioChunk) else p.t
                if not self._wait(t_release, stop):
                    return
                p = replace(p, t_mono=monotonic())
            if isinstance(p, VideoFrame):
                self.video_rate.tick()
                self._keep_frame(p)
            elif isinstance(p, AudioChunk):
                self.audio_rate.tick()
            self.media_t = max(self.media_t, getattr(p, "end", p.t))
            emit(p)

        return self.inner.run(wrapped, stop)

    def frame_at(self, t: float):
        """The newest kept frame at or before media time ``t`` (else the oldest kept), or None."""
        best = None
        for ft, rgb in list(self.frames):
            if ft <= t + 1e-6:
                best = rgb
            elif best is None:
                return rgb
        return best

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()


# -- settings and the session --------------------------------------------------------------------------------------

@dataclass
class Settings:
    """What the Settings tab edits; applied when the next stream starts."""

    checkpoint: str
    device: str = "auto"
    window_s: float = 4.0
    hop_s: float = 0.25
    whisper_model: str = "tiny.en"


def mode_config(base, settings: Settings, live: bool):
    """The pipeline config for one stream: run_demo's config with the session's settings and the mode's policies
    (replay: wait for every stage, deterministic; live: score as soon as the face stream reaches the hop).
    Raises `realtime.checks.SettingError` (a ValueError) for a window or hop that is not a finite number in range."""
    from ..checks import window_and_hop

    window_s, hop_s = window_and_hop(settings.window_s, settings.hop_s, names=("window", "hop"))
    win = replace(base.window, window_s=window_s, hop_s=hop_s, wait_for_all=not live,
                  history_s=max(12.0, window_s + 2.0, base.window.text_window_s))
    transcript = base.transcript
    if dataclasses.is_dataclass(transcript) and hasattr(transcript, "model"):
        transcript = replace(transcript, model=settings.whisper_model,
                             language="en" if settings.whisper_model == "tiny.en" else None)
    scorer = replace(base.scorer, checkpoint=str(settings.checkpoint), device=settings.device)
    history = max(base.history, int(math.ceil(60.0 / float(settings.hop_s))))
    return replace(base, window=win, transcript=transcript, scorer=scorer, live=live, history=history)


class Session:
    """One browser tab's stream: its pipeline, what it has scored, and its files."""

    TIMELINE_S = 60.0
    MAX_PLAYOUT_S = 3.0
    LATE_S = 0.3
    """A result this far behind its slot re-anchors the display clock (less than that is poll granularity)."""
    MAX_PENDING = 400

    def __init__(self, base_config, settings: Settings, key: str = "", pool: ScorerPool = POOL,
                 pipeline_factory=None, workspace: Workspace | None = None):
        self.base = base_config
        self.settings = settings
        self.key = key
        self.pool = pool
        self._pipeline_factory = pipeline_factory
        self.workspace = workspace
        self.dir = Path(tempfile.mkdtemp(prefix="dmd-ui-", dir=workspace.sessions if workspace else None))
        self.uploads: list[Path] = []
        """Files Gradio stored for this tab's uploads (in its cache): deleted with the session's folder."""
        self.checkpoints: dict[str, str] = {}
        """This tab's uploaded checkpoints: the name the page shows -> the folder (inside `dir`)."""
        self.start_failed = False
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self.gen = 0
        self.pipeline = None
        self.source: ObservedSource | None = None
        self.browser = None
        self.mode: str | None = None
        self.label = ""
        self.starting = False
        self.error: str | None = None
        self.model_error: str | None = None
        self.source_problems: list[str] = []
        self.started_at = 0.0
        self.closed = False
        self.score_rate = RateMeter()
        self.ui_rate = RateMeter()
        self.homo_prior, self.hetero_prior = plots.HOMO_PRIOR, plots.HETERO_PRIOR
        self._reset_results()

    # -- results --------------------------------------------------------------------------------------------------
    def _reset_results(self) -> None:
        self.rows: collections.deque = collections.deque()
        self.transcript: list[str] = []
        self.latest = None
        self.count = 0  # results displayed
        self.received = 0  # results scored
        self.pending: collections.deque = collections.deque()
        self._offset: float | None = None
        self.avg = plots.EdgeAverager()  # what the page shows
        self.avg_all = plots.EdgeAverager()  # every result (for the summary)
        self.downloads: list[str] = []
        self.finished = False
        self._jsonl = None
        self.jsonl_path = None
        self._all_rows: list = []

    def _sink(self, gen: int):
        def on_result(r) -> None:
            with self._lock:
                if gen != self.gen:
                    return  # a result from a stream this session has already left
                self.received += 1
                self.pending.append(r)
                if len(self.pending) > self.MAX_PENDING:  # nobody is polling (hidden tab): keep the state current
                    self._show(self.pending.popleft())
                self.score_rate.tick()
                if self._jsonl is not None:
                    self._jsonl(r)
                self._all_rows.append(plots.series_row(r))
                self.avg_all.add(r.homo_edges, r.hetero_edges)
        return on_result

    def _show(self, r) -> None:
        """Make ``r`` the displayed result (lock held)."""
        self.latest = r
        self.count += 1
        self.rows.append(plots.series_row(r))
        while self.rows and self.rows[-1][0] - self.rows[0][0] > self.TIMELINE_S + 1.0:
            self.rows.popleft()
        self.avg.add(r.homo_edges, r.hetero_edges)
        plots.merge_words(self.transcript, r.words)
        if len(self.transcript) > 5000:
            del self.transcript[:1000]

    def advance(self, now: float | None = None) -> int:
        """Move due results from the playout buffer to the display; returns how many were shown.

        Why a playout buffer: in real-time replay every window waits for all stages (deterministic scores), and the
        Whisper stage decodes about a second of audio at a time, so scores reach the UI in bursts of 3-4 once a
        second. Drawn as they arrive, a 5 Hz poll would show about one update a second. Instead the display clock
        ``D = now - offset`` releases each result at its own media time: a result that arrives after its slot
        (``t < D - LATE_S``) pulls the clock back to it, so a burst is played out at real-time pace and the delay settles
        at about one burst period. The delay is capped at MAX_PLAYOUT_S; fast replay shows results at once.
        """
        now = time.monotonic() if now is None else now
        shown = 0
        with self._lock:
            if not self.pending:
                return 0
            fast = self.mode == "replay" and self.source is not None and self.source.fast
            if fast:
                while self.pending:
                    self._show(self.pending.popleft())
                    shown += 1
                self._offset = None
                return shown
            first, last = self.pending[0].t, self.pending[-1].t
            if self._offset is None or first < now - self._offset - self.LATE_S:
                self._offset = now - first  # late (or the first result): show it now, pace the rest
            if last - (now - self._offset) > self.MAX_PLAYOUT_S:
                self._offset = now - (last - self.MAX_PLAYOUT_S)  # too far behind: skip ahead
            horizon = now - self._offset + 1e-6
            while self.pending and self.pending[0].t <= horizon:
                self._show(self.pending.popleft())
                shown += 1
        return shown

    # -- control --------------------------------------------------------------------------------------------------
    def _new_stream(self, mode: str, label: str) -> int:
        self.stop()
        from ..sinks.jsonl import JsonlSink

        with self._lock:
            self.gen += 1
            self._reset_results()
            self.mode, self.label = mode, label
            self.error = self.model_error = None
            self.source_problems = []
            self.start_failed = False
            self.starting = True
            self.started_at = time.monotonic()
            self.jsonl_path = self.dir / f"results-{self.gen}.jsonl"
            self._jsonl = JsonlSink(self.jsonl_path)
            return self.gen

    def _launch(self, gen: int, make_source, live: bool) -> None:
        """Build and start the pipeline in a thread (loading models takes seconds; the page stays responsive)."""

        def go():
            from ..pipeline import Pipeline
            from ..sources import SourceError

            try:
                cfg = mode_config(self.base, self.settings, live)
                source = make_source()
            except (SourceError, OSError, ValueError) as e:
                self._fail(gen, str(e))
                return
            with self._lock:
                if gen != self.gen:
                    return
                self.source = source
            try:
                from ..features.specs import feature_spec

                scorer = self.pool.get(cfg.scorer, feature_spec(cfg.face.sample_fps))
            except (FileNotFoundError, ValueError, RuntimeError, OSError) as e:
                self._fail(gen, f"{e}", model=True)
                return
            self.homo_prior, self.hetero_prior = priors(scorer)
            factory = self._pipeline_factory or Pipeline
            pipeline = factory(cfg, source, [self._sink(gen)], scorer=scorer)
            with self._lock:
                if gen != self.gen:
                    return
                self.pipeline = pipeline
            try:
                pipeline.start()
            except (SourceError, FileNotFoundError, ValueError, RuntimeError, OSError) as e:
                self._fail(gen, f"could not start: {e}")
                pipeline.stop()
                return
            with self._lock:
                if gen == self.gen:
                    self.starting = False
                    self.source_problems = [public_message(p) for p in getattr(source.inner, "problems", []) or []]
            pipeline.wait()
            self._finish(gen)

        threading.Thread(target=go, name=f"session-{self.key[:8]}-{gen}", daemon=True).start()

    def _fail(self, gen: int, msg: str, model: bool = False) -> None:
        msg = public_message(msg)  # shown on the page: no server paths
        with self._lock:
            if gen != self.gen:
                return
            self.starting = False
            self.start_failed = True
            if model:
                self.model_error = msg
            else:
                self.error = msg
        log.warning("session %s: %s", self.key[:8], msg)

    def _finish(self, gen: int) -> None:
        """The stream ended (end of file, or stopped): close the JSONL, write the CSV and the summary PNG."""
        with self._lock:
            if gen != self.gen or self.finished:
                return
            jsonl, path, pipeline = self._jsonl, self.jsonl_path, self.pipeline
            rows = list(self._all_rows)
            avg = self.avg_all
            label = self.label
        if pipeline is not None and pipeline.error:
            with self._lock:
                self.error = self.error or public_message(pipeline.error)
        inner = getattr(pipeline.source, "inner", None) if pipeline is not None else None
        with self._lock:  # found while playing, e.g. the file ended before its declared duration
            found = [public_message(p) for p in getattr(inner, "problems", None) or []]
            self.source_problems += [p for p in found if p not in self.source_problems]
        files = []
        if jsonl is not None:
            try:
                jsonl.close()
            except FileNotFoundError:  # the tab closed meanwhile and its folder is gone
                return
            if path.exists() and path.stat().st_size:
                files.append(str(path))
                try:
                    files.append(write_csv(path, path.with_suffix(".csv")))
                    if rows:
                        files.append(on_render_thread(plots.summary_png, rows, avg, self.dir / f"summary-{gen}.png",
                                                      title=f"{label}: {len(rows)} windows"))
                except Exception as e:  # a summary must never take the page down
                    log.exception("summary failed")
                    self.error = public_message(f"could not write the summary: {e}")
        with self._lock:
            if gen == self.gen:
                self.downloads = files
                self.finished = True
                self.starting = False

    def start_replay(self, path: str | Path, fast: bool = False, start_at: float = 0.0) -> None:
        from ..sources.file_replay import FileReplaySource, ReplayConfig

        gen = self._new_stream("replay", Path(path).name)

        def make():
            inner = FileReplaySource(ReplayConfig(path=str(path), fast=True, start_at=float(start_at or 0.0)))
            return ObservedSource(inner, paced=True, fast=fast)

        self._launch(gen, make, live=False)

    def start_browser(self) -> None:
        from ..sources.live import BrowserSource

        gen = self._new_stream("browser", "browser webcam + microphone")
        with self._lock:
            self.browser = BrowserSource()
            src = ObservedSource(self.browser)
        self._launch(gen, lambda: src, live=True)

    def start_local(self, camera_index: int = 0) -> None:
        from ..sources.live import LocalDevicesSource

        gen = self._new_stream("local", "local webcam + microphone")
        self._launch(gen, lambda: ObservedSource(LocalDevicesSource(camera_index=camera_index)), live=True)

    def push_frame(self, rgb) -> None:
        """A browser webcam frame (Gradio streaming callback); starts the browser stream on first use."""
        if rgb is None or self.closed:
            return
        self._ensure_browser().push_frame(rgb)

    def push_audio(self, chunk) -> None:
        """A browser microphone chunk ``(rate, int16 array)``; starts the browser stream on first use."""
        if chunk is None or self.closed:
            return
        rate, data = chunk
        if data is None or not len(data):
            return
        self._ensure_browser().push_audio(rate, data)

    def _ensure_browser(self):
        with self._start_lock:  # the webcam and microphone callbacks run concurrently: start the stream once
            browser = self.browser
            if self.mode != "browser" or browser is None or self.finished:
                self.start_browser()
                browser = self.browser
            return browser

    def set_paused(self, paused: bool) -> None:
        if self.source is not None:
            self.source.set_paused(paused)

    def set_fast(self, fast: bool) -> None:
        if self.source is not None:
            self.source.set_fast(fast)

    def calibrate(self) -> str:
        """Take the next few seconds of this stream's face and voice as the speaker's neutral (the pipeline's
        `SessionBaseline`); a new stream starts without one. Returns the message for the page."""
        pipeline = self.pipeline
        if pipeline is None or self.starting or self.finished:
            return "start a stream first (camera or replay), then calibrate"
        pipeline.calibrate()
        secs = pipeline.config.baseline.calibration_s
        return f"calibrating: keep a neutral face and speak normally for {secs:g} s"

    @property
    def paused(self) -> bool:
        return bool(self.source is not None and self.source.paused.is_set())

    def stop(self) -> None:
        """Stop the current stream (the pipeline's threads end; the session stays usable)."""
        with self._lock:
            pipeline, source, browser = self.pipeline, self.source, self.browser
            self.pipeline = self.source = self.browser = None
        if source is not None:
            source.set_paused(False)
        if browser is not None:
            browser.close()
        if pipeline is not None:
            pipeline.stop()
            del pipeline  # the last reference: the stream's stage objects and the models they loaded go now
            release_freed_memory()  # and the heap pages they held go back to the OS (realtime/memory.py)

    def add_checkpoint(self, files, max_mb: float) -> str:
        """An uploaded checkpoint (one .safetensors and one config .json): checked from its header and config
        before it can be chosen (`dmd_model.checkpoint.check_checkpoint`: sizes capped, every shape compared,
        nothing built), copied into this session's folder. Returns the name the page shows; raises `UploadError`."""
        from dmd_model.checkpoint import CheckpointError, check_checkpoint

        names = {Path(f).name: self.own_upload(f) for f in files}
        weights = [p for n, p in names.items() if n.endswith(".safetensors")]
        configs = [p for n, p in names.items() if n.endswith(".json")]
        if len(weights) != 1 or len(configs) != 1:
            raise UploadError("upload exactly one .safetensors and one config .json")
        if sum(p.stat().st_size for p in weights + configs) > max_mb * 1e6:
            raise UploadError(f"the checkpoint is larger than {max_mb:g} MB")
        d = self.dir / f"checkpoint-{len(list(self.dir.glob('checkpoint-*')))}"
        d.mkdir()
        shutil.copy(weights[0], d / "model.safetensors")
        shutil.copy(configs[0], d / "config.json")
        try:
            check_checkpoint(d, allow_text_encoder=False)
        except CheckpointError as e:
            shutil.rmtree(d, ignore_errors=True)
            raise UploadError(public_message(str(e))) from None
        name = f"upload {d.name}"
        with self._lock:
            self.checkpoints[name] = str(d)
        return name

    def own_upload(self, path: str | Path) -> Path:
        """Note a file Gradio stored for this tab (deleted when the tab closes); returns it as a Path."""
        p = Path(path)
        with self._lock:
            self.uploads.append(p)
        return p

    def start_message(self, name: str, timeout: float = 3.0) -> str:
        """What the page says after asking for a stream: waits until the stream has its source and model (or has
        failed), so that "playing" never stands beside a red error for the same file."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.start_failed:
                    return f"**Could not play** `{name}`: {self.error or self.model_error}"
                if self.pipeline is not None or self.finished:
                    return f"playing `{name}`"
            if time.monotonic() >= deadline:
                return f"starting `{name}` (loading models…)"
            time.sleep(0.02)

    def close(self) -> None:
        """The tab went away: stop everything and delete this session's files (its folder, and the copies Gradio
        keeps of its uploads) unless the workspace keeps them (``--keep-session-files``)."""
        if self.closed:
            return
        self.closed = True
        with self._lock:
            self.gen += 1
        try:
            self.stop()
        finally:
            self.delete_files()

    def delete_files(self) -> None:
        if self.workspace is not None and self.workspace.keep:
            return
        shutil.rmtree(self.dir, ignore_errors=True)
        for p in self.uploads:
            delete_upload(p, self.workspace.cache if self.workspace else None)

    # -- what the page shows --------------------------------------------------------------------------------------
    def state_text(self) -> str:
        if self.closed:
            return "closed"
        if self.mode is None:
            return "idle: start a replay or the camera"
        if self.start_failed or ((self.model_error or self.error) and self.pipeline is None):
            return f"{self.label}: could not start"
        if self.starting:
            return f"{self.label}: loading models…"
        if self.finished and not self.pending:
            return f"{self.label}: finished ({self.count} windows)"
        if self.paused:
            return f"{self.label}: paused"
        fast = self.source is not None and self.source.fast and self.mode == "replay"
        return f"{self.label}: {'fast' if fast else 'running'}"

    def health_snapshot(self) -> dict:
        p, s, r = self.pipeline, self.source, self.latest
        m = p.metrics() if p is not None and p.scorer is not None else {}
        return {
            "mode": self.mode,
            "running": p is not None and not self.starting and not self.finished and not self.start_failed,
            "starting": self.starting, "error": self.error, "model_error": self.model_error,
            "has_video": s.has_video if s is not None and not self.starting else None,
            "has_audio": s.has_audio if s is not None and not self.starting else None,
            "video_fps": s.video_rate.rate() if s else 0.0, "audio_cps": s.audio_rate.rate() if s else 0.0,
            "score_rate": self.score_rate.rate(), "ui_rate": self.ui_rate.rate(),
            "source_problems": self.source_problems, "stages": m.get("stages", {}),
            "last_present": r.present if r is not None else {}, "latency_ms": r.latency_ms if r is not None else {},
            "drops": r.drops if r is not None else {}, "since_start_s": time.monotonic() - self.started_at,
            "state_text": self.state_text(),
        }

    def frame_with_landmarks(self) -> np.ndarray | None:
        s, r = self.source, self.latest
        if s is None:
            return None
        rgb = s.frame_at(r.t if r is not None else s.media_t)
        if rgb is None:
            return None
        return overlay_landmarks(rgb, r.landmarks if r is not None else None)


def overlay_landmarks(rgb: np.ndarray, landmarks, colour=(0, 255, 120)) -> np.ndarray:
    """Draw normalised (x, y) landmarks as 2x2 dots on a copy of the frame."""
    out = np.array(rgb, copy=True)
    if landmarks is None:
        return out
    lm = np.asarray(landmarks)
    if lm.ndim != 2 or lm.shape[0] == 0:
        return out
    h, w = out.shape[:2]
    xs = np.clip((lm[:, 0] * w).astype(int), 0, w - 2)
    ys = np.clip((lm[:, 1] * h).astype(int), 0, h - 2)
    for dy in (0, 1):
        for dx in (0, 1):
            out[ys + dy, xs + dx] = colour
    return out


def write_csv(jsonl_path: str | Path, csv_path: str | Path) -> str:
    """Flatten the JSONL results into one CSV row per window (edges by name, heads by unit and modality)."""
    rows = [json.loads(line) for line in Path(jsonl_path).read_text().splitlines() if line.strip()]
    emotions = next((list(d["probs"]) for d in rows if d.get("probs")), [])  # a "no signal" row has none
    head = (["t", "valence", "emotion"] + [f"p_{e}" for e in emotions]
            + [f"{u}_{m}_valence" for u in ("homo", "hetero") for m in plots.MODS]
            + [f"{u}_{e}" for u in ("homo", "hetero") for e in plots.EDGE_NAMES]
            + ["present_L", "present_V", "present_A", "face_fraction", "voiced_fraction", "capture_to_score_ms",
               "shown_label", "shown_valence", "words"])
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(head)
        for d in rows:
            heads = d.get("heads") or {}
            row = [d["t"], d["valence"], d["emotion"]] + [d["probs"].get(e) for e in emotions]
            row += [((heads.get(u) or {}).get(m) or {}).get("valence") for u in ("homo", "hetero") for m in plots.MODS]
            for u in ("homo", "hetero"):
                ew = plots.edge_weights(d[f"{u}_edges"])
                row += [ew[e] for e in plots.EDGE_NAMES]
            pr = d.get("present") or {}
            row += [pr.get("language"), pr.get("visual"), pr.get("acoustic"), d.get("face_fraction"),
                    d.get("voiced_fraction"), (d.get("latency_ms") or {}).get("capture_to_score")]
            shown = d.get("readout") or {}  # what the page showed (smoothed), beside the raw scores
            row += [shown.get("label"), shown.get("valence"), " ".join(d.get("words") or [])]
            w.writerow(row)
    return str(csv_path)
