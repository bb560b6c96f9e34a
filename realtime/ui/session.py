"""One browser tab = one `Session` = at most one running `Pipeline` (no Gradio imports here).

The page keeps a `Session` in a ``gr.State`` (Gradio keeps state per browser tab, so two tabs never share one), and
the app's unload handler and the state's delete callback both call `Session.close`. Everything a session shows
lives in its stream's `StreamView`, its files in its own folder; what *is* shared between sessions is the loaded
DMD model (`realtime.batching.ScorerPool`: `Scorer.score` serialises its callers itself).

The session only controls streams: it builds each stream's config (`realtime.config.stream_config`), source, sinks
and pipeline, and tears the pipeline down in one place (`_tear_down`). What the page draws is `render`'s; what was
scored is the `StreamView`'s; pacing and pause are the replay source's `realtime.clock.Pacer`.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from pathlib import Path

from ..batching import POOL, ScorerPool, gd_priors
from ..config import PipelineConfig, StreamSettings, stream_config
from ..paths import SAMPLE_CLIP
from . import plots
from .frames import FrameTap
from .render import PageMemo
from .stream_view import StreamView
from .uploads import UploadError, install_checkpoint
from .workspace import Workspace, delete_upload, public_message

log = logging.getLogger(__name__)

SAMPLE = SAMPLE_CLIP
Settings = StreamSettings
"""What the Settings tab edits (`realtime.config.StreamSettings`); applied when the next stream starts."""


class Session:
    """One browser tab's stream: its pipeline, what it has scored, and its files.

    Args:
        base_config: the `PipelineConfig` every stream starts from (run_demo.py's).
        settings: the tab's `StreamSettings` (the Settings tab replaces them).
        key: Gradio's session hash (names the session's threads and logs).
        pool: where the shared scorers come from.
        pipeline_factory: builds a stream's pipeline (``Pipeline`` by default; tests pass fakes).
        workspace: the server's folder for this tab's files (a temporary folder when None).
    """

    def __init__(self, base_config: PipelineConfig, settings: StreamSettings, key: str = "",
                 pool: ScorerPool = POOL, pipeline_factory=None, workspace: Workspace | None = None):
        self.base, self.settings, self.key, self.pool = base_config, settings, key, pool
        self._pipeline_factory = pipeline_factory
        self.workspace = workspace
        self.dir = Path(tempfile.mkdtemp(prefix="dmd-ui-", dir=workspace.sessions if workspace else None))
        self.uploads: list[Path] = []
        """Files Gradio stored for this tab's uploads (in its cache): deleted with the session's folder."""
        self.checkpoints: dict[str, str] = {}
        """This tab's uploaded checkpoints: the name the page shows -> the folder (inside `dir`)."""
        self._lock = threading.RLock()
        self._start_lock = threading.Lock()
        self.gen = 0
        self.pipeline = self.source = self.browser = self.pacer = None
        self.mode: str | None = None
        self.label = ""
        self.starting = self.start_failed = self.finished = self.closed = False
        self.error: str | None = None
        self.model_error: str | None = None
        self.source_problems: list[str] = []
        self.started_at = 0.0
        self.view = StreamView()
        self.downloads: list[str] = []
        self._sinks: list = []
        self.page_memo = PageMemo()
        self.homo_prior, self.hetero_prior = plots.HOMO_PRIOR, plots.HETERO_PRIOR

    # -- what was scored ------------------------------------------------------------------------------------------
    @property
    def fast_replay(self) -> bool:
        return self.mode == "replay" and self.pacer is not None and self.pacer.fast

    def advance(self, now: float | None = None) -> int:
        """Move due results from the playout buffer to the display (`StreamView.advance`)."""
        return self.view.advance(now, fast=self.fast_replay)

    @property
    def received(self) -> int:
        """Results scored in the current stream."""
        return self.view.received

    # -- starting a stream ----------------------------------------------------------------------------------------
    def _new_stream(self, mode: str, label: str) -> int:
        self.stop()
        with self._lock:
            self.gen += 1
            self.view = StreamView()
            self.downloads, self._sinks = [], []
            self.mode, self.label = mode, label
            self.error = self.model_error = None
            self.source_problems = []
            self.start_failed = self.finished = False
            self.starting = True
            self.started_at = time.monotonic()
            return self.gen

    def _open_sinks(self, gen: int, scorer) -> list:
        """This stream's sinks: its view, and the JSONL and CSV files written as it is scored."""
        from ..sinks.csv import CsvSink
        from ..sinks.jsonl import JsonlSink

        jsonl = JsonlSink(self.dir / f"results-{gen}.jsonl")
        files = [jsonl, CsvSink(self.dir / f"results-{gen}.csv", scorer.emotions)]
        with self._lock:
            self._sinks = files
        return [self.view.add, *files]

    def _launch(self, gen: int, make_source, live: bool) -> None:
        """Build and start the pipeline in a thread (loading models takes seconds; the page stays responsive)."""
        threading.Thread(target=self._run_stream, args=(gen, make_source, live),
                         name=f"session-{self.key[:8]}-{gen}", daemon=True).start()

    def _run_stream(self, gen: int, make_source, live: bool) -> None:
        from ..features.specs import feature_spec
        from ..pipeline import Pipeline
        from ..sources import SourceError

        try:
            cfg = stream_config(self.base, self.settings, live)
            source = FrameTap(make_source())
        except (SourceError, OSError, ValueError) as e:
            self._fail(gen, str(e))
            return
        with self._lock:
            if gen != self.gen:
                return
            self.source = source
        try:
            scorer = self.pool.get(cfg.scorer, feature_spec(cfg.face.sample_fps))
        except (FileNotFoundError, ValueError, RuntimeError, OSError) as e:
            self._fail(gen, f"{e}", model=True)
            return
        self.homo_prior, self.hetero_prior = gd_priors(scorer.cfg)
        pipeline = (self._pipeline_factory or Pipeline)(cfg, source, self._open_sinks(gen, scorer), scorer=scorer)
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
                self.source_problems = [public_message(p) for p in source.problems]
        pipeline.wait()
        self._finish(gen)

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
        """The stream ended (end of file, or stopped): move the JSONL and CSV into place, draw the summary PNG."""
        with self._lock:
            if gen != self.gen or self.finished:
                return
            sinks, pipeline, view, label = self._sinks, self.pipeline, self.view, self.label
        if pipeline is not None and pipeline.error:
            with self._lock:
                self.error = self.error or public_message(pipeline.error)
        with self._lock:  # found while playing, e.g. the file ended before its declared duration
            found = [public_message(p) for p in (pipeline.source.problems if pipeline is not None else [])]
            self.source_problems += [p for p in found if p not in self.source_problems]
        keep = bool(sinks) and sinks[0].written > 0  # a stream that scored nothing leaves no files
        try:
            for sink in sinks:
                sink.commit() if keep else sink.discard()
        except FileNotFoundError:  # the tab closed meanwhile and its folder is gone
            return
        files = [str(sink.path) for sink in sinks] if keep else []
        rows, avg = view.summary()
        if files and rows:
            try:
                files.append(plots.summary_png(rows, avg, self.dir / f"summary-{gen}.png",
                                               title=f"{label}: {view.received} windows"))
            except Exception as e:  # a summary must never take the page down
                log.exception("summary failed")
                self.error = public_message(f"could not write the summary: {e}")
        with self._lock:
            if gen == self.gen:
                self.downloads = files
                self.finished = True
                self.starting = False

    def start_replay(self, path: str | Path, fast: bool = False, start_at: float = 0.0) -> None:
        from ..clock import Pacer
        from ..sources.file_replay import FileReplaySource, ReplayConfig

        gen = self._new_stream("replay", Path(path).name)
        pacer = Pacer(realtime=not fast)
        with self._lock:
            self.pacer = pacer
        config = ReplayConfig(path=str(path), fast=fast, start_at=float(start_at or 0.0))
        self._launch(gen, lambda: FileReplaySource(config, pacer=pacer), live=False)

    def start_browser(self) -> None:
        from ..sources.live import BrowserSource

        gen = self._new_stream("browser", "browser webcam + microphone")
        with self._lock:
            self.browser = browser = BrowserSource()
        self._launch(gen, lambda: browser, live=True)

    def start_local(self, camera_index: int = 0) -> None:
        from ..sources.live import LocalDevicesSource

        gen = self._new_stream("local", "local webcam + microphone")
        self._launch(gen, lambda: LocalDevicesSource(camera_index=camera_index), live=True)

    # -- while it plays -------------------------------------------------------------------------------------------
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
        if self.pacer is not None:
            self.pacer.set_paused(paused)

    def set_fast(self, fast: bool) -> None:
        if self.pacer is not None:
            self.pacer.set_fast(fast)

    @property
    def paused(self) -> bool:
        return bool(self.pacer is not None and self.pacer.paused.is_set())

    def calibrate(self) -> str:
        """Take the next few seconds of this stream's face and voice as the speaker's neutral (the pipeline's
        `SessionBaseline`); a new stream starts without one. Returns the message for the page."""
        pipeline = self.pipeline
        if pipeline is None or self.starting or self.finished:
            return "start a stream first (camera or replay), then calibrate"
        pipeline.calibrate()
        secs = pipeline.config.baseline.calibration_s
        return f"calibrating: keep a neutral face and speak normally for {secs:g} s"

    # -- ending it ------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the current stream (the pipeline's threads end; the session stays usable)."""
        with self._lock:
            pipeline, pacer, browser = self.pipeline, self.pacer, self.browser
            self.pipeline = self.source = self.browser = self.pacer = None
        self._tear_down(pipeline, pacer, browser)

    @staticmethod
    def _tear_down(pipeline, pacer, browser) -> None:
        """The one place a stream's pipeline is torn down: unpause its source (so its thread can see the stop),
        close the browser inbox, stop and join every thread. Nothing of the stream is referenced afterwards."""
        if pacer is not None:
            pacer.set_paused(False)
        if browser is not None:
            browser.close()
        if pipeline is not None:
            pipeline.stop()

    def add_checkpoint(self, files, max_mb: float) -> str:
        """An uploaded checkpoint, checked and copied into this session's folder (`uploads.install_checkpoint`).
        Returns the name the page shows; raises `UploadError`."""
        d = install_checkpoint([self.own_upload(f) for f in files], max_mb, self.dir)
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

