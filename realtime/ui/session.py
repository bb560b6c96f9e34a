"""One browser tab = one `Session` = at most one running `Pipeline` (no Gradio imports here).

The page keeps a `Session` in a ``gr.State`` (one per tab); the app's unload handler and the state's delete callback
both call `Session.close`. A session controls streams: each stream's config (`realtime.config.stream_config`),
source, sinks and pipeline, torn down in one place (`_tear_down`). What a stream scored is its `StreamView`'s, its
files its `StreamFiles`', the tab's folder its `TabFolder`'s; pacing and pause are the replay source's
`realtime.clock.Pacer`. Only the DMD model is shared between tabs (`realtime.batching.ScorerPool`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..batching import POOL, ScorerPool, gd_priors
from ..config import PipelineConfig, StreamSettings, stream_config
from ..memory import release_freed_memory
from ..paths import SAMPLE_CLIP
from . import plots
from .frames import FrameTap
from .render import PageMemo
from .stream_files import StreamFiles
from .stream_view import StreamView
from .uploads import TabFolder, UploadError  # noqa: F401  (UploadError: what add_checkpoint raises)
from .workspace import Workspace, public_message

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
        self.folder = TabFolder(workspace)
        self.dir, self.checkpoints = self.folder.dir, self.folder.checkpoints
        self.own_upload, self.add_checkpoint = self.folder.own_upload, self.folder.add_checkpoint
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
        self._files: StreamFiles | None = None
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
            self.downloads, self._files = [], None
            self.mode, self.label = mode, label
            self.error = self.model_error = None
            self.source_problems = []
            self.start_failed = self.finished = False
            self.starting = True
            self.started_at = time.monotonic()
            return self.gen

    def _launch(self, gen: int, make_source, live: bool) -> None:
        """Build and start the pipeline in a thread (loading models takes seconds; the page stays responsive)."""
        threading.Thread(target=self._run_stream, args=(gen, make_source, live),
                         name=f"session-{self.key[:8]}-{gen}", daemon=True).start()

    def _run_stream(self, gen: int, make_source, live: bool) -> None:
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
            scorer = self.pool.get(cfg.scorer, cfg.feature_spec())
        except (FileNotFoundError, ValueError, RuntimeError, OSError) as e:
            self._fail(gen, f"{e}", model=True)
            return
        self.homo_prior, self.hetero_prior = gd_priors(scorer.cfg)
        try:
            files = StreamFiles(self.dir, gen, scorer.emotions)
        except OSError as e:  # the tab's folder is gone (it closed meanwhile) or unwritable
            self._fail(gen, f"cannot write the results: {e}")
            return
        pipeline = (self._pipeline_factory or Pipeline)(cfg, source, [self.view.add, *files.sinks], scorer=scorer)
        with self._lock:
            if gen != self.gen:
                return
            self.pipeline, self._files = pipeline, files
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
            files, pipeline, view, label = self._files, self.pipeline, self.view, self.label
        if pipeline is not None and pipeline.error:
            with self._lock:
                self.error = self.error or public_message(pipeline.error)
        with self._lock:  # found while playing, e.g. the file ended before its declared duration
            found = [public_message(p) for p in (pipeline.source.problems if pipeline is not None else [])]
            self.source_problems += [p for p in found if p not in self.source_problems]
        try:
            downloads, problem = files.finish(view, label) if files is not None else ([], None)
        except FileNotFoundError:  # the tab closed meanwhile and its folder is gone
            return
        with self._lock:
            self.error = self.error or (public_message(problem) if problem else None)
        with self._lock:
            if gen == self.gen:
                self.downloads = downloads
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
        del pipeline, pacer, browser  # the last references: the stream's stages and the models they loaded go now
        release_freed_memory()  # and the heap pages they held go back to the OS (realtime/memory.py)

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
        self.folder.delete()

