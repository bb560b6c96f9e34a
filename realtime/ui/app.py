"""The Gradio page: Live (browser or local capture), Replay and Settings tabs over one set of views that make DMD's
behaviour visible (valence timeline per head, HomoGD/HeteroGD edge graphs, matrices, time-averaged edges, health).

Choices, and why (Gradio 6.31, checked with ``inspect.signature`` and in headless Chromium):

* **Browser capture with plain ``gr.Image(sources=["webcam"], streaming=True)`` and ``gr.Audio(sources=["microphone"],
  streaming=True, type="numpy")`` + ``.stream(stream_every=…, time_limit=…)``**, not fastrtc/WebRTC: it needs no
  STUN/TURN server (nothing outside this machine may be contacted) and works from any machine that opens the page.
  ``webcam_options=gr.WebcamOptions(constraints=…)`` asks for `UIConfig.webcam_size` (320x240); without it Chromium delivers the camera's
  native size (1920x1440 from the fake camera), which costs the face stage for nothing. Frames every
  `UIConfig.frame_every_s` (0.1 s: 10 fps, the face stage's rate); audio every `UIConfig.audio_every_s` (0.5 s;
  48 kHz int16, resampled to 16 kHz by `BrowserSource`).
  The callbacks only push into the session's bounded `BrowserSource` (fastrtc's ``receive``), so they are cheap:
  ``concurrency_limit=None`` keeps one tab's endless stream from blocking another's, and ``time_limit`` caps a
  forgotten tab at 30 minutes.
* **Results reach the page by polling with ``gr.Timer(0.2)``** rather than a generator per stream: the pipeline
  already runs in its own threads, a poll never blocks a worker, and 0.2 s (5 Hz) is just above the 4 scores/s of a
  250 ms hop so every score gets drawn. A tick whose session has nothing new returns ``gr.skip()`` for each view,
  which costs almost nothing; ``show_progress="hidden"`` stops the views flashing.
* **Views are HTML/SVG strings from `realtime.ui.plots`** (see there): cheap enough to redraw 4-5 times a second on
  2 shared cores, and the edge labels are DOM text. The camera view is an inline JPEG data URI, so no image file is
  written to Gradio's cache per update.
* **One `Session` per tab in ``gr.State``**, closed by ``demo.unload`` and by the state's ``delete_callback``. The
  DMD model is shared (`realtime.batching.ScorerPool`); everything else is per session.
* Safe defaults: 127.0.0.1 unless ``--host``, ``--port`` or the next free port, no share link unless ``--share``,
  uploads limited by ``--max-upload-mb`` (Gradio's ``max_file_size`` refuses larger ones before they are stored,
  and `uploads.check_upload` re-checks size and type with a readable message), ``GRADIO_ANALYTICS_ENABLED=False`` (set by run_demo.py, which also points ``GRADIO_TEMP_DIR`` at
  this server's `Workspace` before gradio is imported).
"""

# no `from __future__ import annotations` here: Gradio finds `request: gr.Request` by evaluating the annotation

import html
import logging
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

from ..batching import POOL
from ..checks import window_and_hop
from ..config import StreamSettings, UIConfig
from . import plots
from .render import Views, render, start_message
from .session import SAMPLE, Session
from .uploads import UploadError, check_upload, checkpoint_names
from .workspace import Workspace

log = logging.getLogger(__name__)

POLL_S = 0.2
STREAM_TIME_LIMIT_S = 30 * 60
DEFAULT_SERIES = ["fused", "homo L", "homo V", "homo A"]

CSS = """
.health .chips{display:flex;gap:6px;flex-wrap:wrap;align-items:center}
.chip{padding:2px 8px;border-radius:10px;font-size:12px;border:1px solid #cbd5e1}
.chip-on{background:#dcfce7;border-color:#16a34a}.chip-off{background:#fee2e2;border-color:#dc2626}
.health .rates,.health .lat{font-size:12px;color:#475569;margin-top:2px}
.health .state{font-size:12px;font-weight:600;margin-left:8px}
.msg{font-size:13px;padding:3px 8px;margin-top:4px;border-radius:4px}
.msg-error{background:#fee2e2;color:#991b1b}.msg-warn{background:#fef3c7;color:#92400e}
.now .val{font-size:28px;font-weight:700}.now .emo{font-size:20px}.now .meta{font-size:12px;color:#64748b}
.probs div{font-size:12px;white-space:nowrap}.probs .pname{display:inline-block;width:64px}
.probs .pbar,.gd-average .bar{display:inline-block;height:9px;background:#2563eb;vertical-align:middle}
.probs .top .pname{font-weight:700}
.now .emo.uncertain b,.now .emo.nosignal b{color:#64748b}
.votes{display:flex;gap:4px;flex-wrap:wrap;margin:3px 0}.vote{font-size:12px;padding:1px 6px;border-radius:8px;border:1px solid #cbd5e1}
.vote-agree{background:#dcfce7}.vote-partly{background:#fef9c3}.vote-disagree{background:#fee2e2}
#dmd-transcript{font-size:14px;min-height:48px;max-height:120px;overflow-y:auto;padding:4px;border:1px solid #e2e8f0;border-radius:4px}
.gd-matrix,.gd-average{border-collapse:collapse;font-size:12px;margin-top:4px}
.gd-matrix td,.gd-matrix th,.gd-average td,.gd-average th{border:1px solid #e2e8f0;padding:2px 6px;text-align:center}
.gd-matrix td.diag{color:#94a3b8}
#dmd-camera img{max-width:100%;border-radius:4px}
.caveat{font-size:12px;color:#475569}
"""


def free_port(host: str, start: int, tries: int = 100) -> int:
    """``start`` if it can be bound on ``host``, else the next free one."""
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {start}..{start + tries - 1} on {host}")


# -- the page's components ------------------------------------------------------------------------------------------

def _live_tab(gr, c, ui: UIConfig) -> None:
    with gr.Tab("Live", id="live"):
        c.capture = gr.Radio(["browser", "local devices"], value="browser", label="Capture from",
                             info="browser: the webcam and microphone of the machine that opens this page; "
                                  "local devices: the camera and microphone of the machine running the server")
        with gr.Row(visible=True) as c.browser_row:
            c.cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="webcam", height=240,
                             webcam_options=gr.WebcamOptions(constraints={"video": {"width": ui.webcam_size[0],
                                                                               "height": ui.webcam_size[1]}}))
            c.mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="microphone")
        with gr.Row(visible=False) as c.local_row:
            c.local_start = gr.Button("Start local webcam + microphone", variant="primary")
        c.live_stop = gr.Button("Stop capture")


def _replay_tab(gr, c, ui: UIConfig) -> None:
    with gr.Tab("Replay", id="replay"):
        with gr.Row():
            c.upload = gr.File(label=f"Upload a video or audio file (up to {ui.max_upload_mb:g} MB)",
                               file_types=["audio", "video"], type="filepath")
            with gr.Column():
                c.sample_btn = gr.Button(f"Play the bundled sample ({SAMPLE.name})", variant="primary")
                c.again_btn = gr.Button(f"Replay {Path(ui.replay).name} again") if ui.replay else None
                c.fast = gr.Checkbox(value=ui.fast, label="fast",
                                     info="off: real-time pace; on: as fast as the pipeline runs "
                                          "(deterministic scores)")
                c.pause_btn = gr.Button("Pause")
        c.replay_msg = gr.Markdown()
        c.downloads = gr.File(label="Results (JSONL, CSV) and summary plot (PNG), when the replay ends",
                              file_count="multiple", interactive=False)


def _settings_tab(gr, c, ui: UIConfig, offered: dict[str, str]) -> None:
    d = ui.stream
    with gr.Tab("Settings", id="settings"):
        gr.Markdown("Settings apply to the next stream you start (replay or capture).")
        with gr.Row():
            c.ckpt = gr.Dropdown(list(offered), value=next(iter(offered)), label="DMD checkpoint")
            c.ckpt_upload = gr.File(
                label="…or upload one (model.safetensors + config.json, + text_encoder.safetensors if it has one)",
                file_count="multiple", file_types=[".safetensors", ".json"])
        with gr.Row():
            c.window = gr.Slider(1.0, 10.0, value=d.window_s, step=0.5, label="window (s)")
            c.hop = gr.Slider(0.1, 2.0, value=d.hop_s, step=0.05, label="hop (s)")
            c.device = gr.Dropdown(["auto", "cpu", "cuda"], value=d.device, label="device", allow_custom_value=True)
            c.whisper = gr.Dropdown(["tiny.en", "base"], value=d.whisper_model, label="Whisper model",
                                    allow_custom_value=True)
        c.settings_msg = gr.Markdown()


def _result_views(gr, c) -> None:
    c.health = gr.HTML(elem_id="dmd-health")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            c.camview = gr.HTML(elem_id="dmd-camera-box", label="camera with face landmarks")
        with gr.Column(scale=1, min_width=260):
            c.now = gr.HTML(elem_id="dmd-now-box")
            c.calib_btn = gr.Button("Calibrate: 3 s of neutral face and normal voice", size="sm",
                                    elem_id="dmd-calibrate")
            c.calib_msg = gr.Markdown()
            gr.HTML('<div class="caveat">Worth it for a voice or a camera the model never met: the voice heads read '
                    'speakers of an unseen corpus better once calibrated (model card, "Calibration"). Resets with '
                    'the session.</div>')
        with gr.Column(scale=2, min_width=320):
            c.transcript = gr.HTML(elem_id="dmd-transcript-box")
            c.series = gr.CheckboxGroup(list(plots.SERIES), value=DEFAULT_SERIES,
                                        label="valence over the last 60 s: fused and each modality's homogeneous "
                                              "(solid) / heterogeneous (dashed) head")
            c.timeline = gr.HTML(elem_id="dmd-timeline")
    with gr.Row():
        c.homo = gr.HTML(elem_id="dmd-homo-box")
        c.hetero = gr.HTML(elem_id="dmd-hetero-box")
        c.average = gr.HTML(elem_id="dmd-average-box")
    gr.HTML(f'<div class="caveat">Edges: an arrow i→j means teacher i distils into student j; widths and labels '
            f'are the current weights (the six sum to 1 per window; matrix rows = teacher, columns = student). '
            f'{html.escape(plots.PRIOR_CAVEAT)}</div>')
    # the order of `render.Views`' fields
    c.views = [c.camview, c.now, c.transcript, c.timeline, c.homo, c.hetero, c.average, c.health, c.downloads]


# -- what the page's events do --------------------------------------------------------------------------------------

class _Handlers:
    """The page's event handlers for one server: each takes the tab's `Session` (or None before the page loaded)."""

    def __init__(self, gr, ui: UIConfig, base, offered: dict[str, str]):
        self.gr, self.ui, self.base, self.offered = gr, ui, base, offered

    def updates(self, views: Views) -> list:
        gr = self.gr
        out = [gr.skip() if v is None else v for v in views.as_list()]
        if views.clear_downloads:
            out[-1] = None  # empties the download box
        return out

    def load(self, request):
        s = Session(self.base, self.ui.stream, key=request.session_hash or "", workspace=WORKSPACE)
        with _SESSIONS_LOCK:
            SESSIONS[s.key] = s
        if self.ui.replay:
            s.start_replay(self.ui.replay, fast=self.ui.fast, start_at=self.ui.start_at)
        return [s] + self.updates(render(s, DEFAULT_SERIES, force=True))

    def unload(self, request):
        with _SESSIONS_LOCK:
            s = SESSIONS.pop(request.session_hash or "", None)
        _close_session(s)

    def tick(self, s, sel):
        return self.updates(render(s, sel))

    def redraw(self, s, sel):
        return self.updates(render(s, sel, force=True))

    def play_sample(self, s, is_fast):
        if s is None:
            return "page not ready", self.gr.skip()
        s.start_replay(SAMPLE, fast=bool(is_fast))
        return start_message(s, SAMPLE.name), "Pause"

    def play_again(self, s, is_fast):
        if s is None:
            return "page not ready", self.gr.skip()
        s.start_replay(self.ui.replay, fast=bool(is_fast), start_at=self.ui.start_at)
        return start_message(s, Path(self.ui.replay).name), "Pause"

    def on_upload(self, s, f, is_fast):
        if s is None or f is None:
            return self.gr.skip(), self.gr.skip()
        s.own_upload(f)
        try:
            p = check_upload(f, self.ui.max_upload_mb)
        except UploadError as e:
            self.gr.Warning(str(e))
            return f"**Refused:** {e}", self.gr.skip()
        s.start_replay(p, fast=bool(is_fast))
        return start_message(s, p.name), "Pause"

    def calibrate(self, s):
        return "page not ready" if s is None else s.calibrate()

    def toggle_pause(self, s):
        if s is None or s.mode != "replay" or s.pacer is None:
            return "Pause"
        s.set_paused(not s.paused)
        return "Play" if s.paused else "Pause"

    def set_fast(self, s, is_fast):
        if s is not None:
            s.set_fast(bool(is_fast))

    def set_capture(self, choice):
        local = choice == "local devices"
        return self.gr.update(visible=not local), self.gr.update(visible=local)

    def on_frame(self, frame, s):
        if s is not None and frame is not None:
            s.push_frame(frame)

    def on_audio(self, chunk, s):
        if s is not None and chunk is not None:
            s.push_audio(chunk)

    def start_local(self, s):
        if s is not None:
            s.start_local()

    def stop_capture(self, s):
        if s is not None and s.mode in ("browser", "local"):
            s.stop()

    def on_settings(self, s, c, w, h, d, wm):
        if s is None:
            return ""
        try:
            w, h = window_and_hop(w, h, names=("window", "hop"))
        except ValueError as e:
            return f"**Not applied:** {e}"
        path = s.checkpoints.get(str(c)) or self.offered.get(str(c))
        if path is None:
            return f"**Not applied:** unknown checkpoint `{c}`"
        s.settings = StreamSettings(checkpoint=path, device=str(d), window_s=w, hop_s=h, whisper_model=str(wm))
        return f"next stream: checkpoint `{c}`, window {w:g} s, hop {h:g} s, device {d}, Whisper {wm}"

    def on_ckpt_upload(self, s, files):
        if s is None or not files:
            return self.gr.skip(), "no files"
        try:
            name = s.add_checkpoint(files, self.ui.max_upload_mb)
        except UploadError as e:
            return self.gr.skip(), f"**Refused:** {e}"
        return (self.gr.update(choices=list(self.offered) + list(s.checkpoints), value=name),
                f"uploaded checkpoint `{name}` selected for the next stream")


def _wire(demo, c, h: _Handlers) -> None:
    """Connect the components' events to the handlers (concurrency: see the module docstring)."""
    state, views, hidden = c.state, c.views, "hidden"
    demo.load(c.on_load, None, [state] + views, show_progress=hidden)
    demo.unload(c.on_unload)
    c.timer.tick(h.tick, [state, c.series], views, show_progress=hidden, concurrency_limit=None, trigger_mode="once")
    c.series.change(h.redraw, [state, c.series], views, show_progress=hidden, concurrency_limit=None)
    c.sample_btn.click(h.play_sample, [state, c.fast], [c.replay_msg, c.pause_btn], concurrency_limit=8)
    if c.again_btn is not None:
        c.again_btn.click(h.play_again, [state, c.fast], [c.replay_msg, c.pause_btn], concurrency_limit=8)
    c.upload.upload(h.on_upload, [state, c.upload, c.fast], [c.replay_msg, c.pause_btn], concurrency_limit=8)
    c.pause_btn.click(h.toggle_pause, [state], [c.pause_btn], concurrency_limit=None)
    c.calib_btn.click(h.calibrate, [state], [c.calib_msg], concurrency_limit=None)
    c.fast.change(h.set_fast, [state, c.fast], None, concurrency_limit=None)
    c.capture.change(h.set_capture, [c.capture], [c.browser_row, c.local_row])
    c.cam.stream(h.on_frame, [c.cam, state], None, stream_every=h.ui.frame_every_s, time_limit=STREAM_TIME_LIMIT_S,
                 concurrency_limit=None, show_progress=hidden)
    c.mic.stream(h.on_audio, [c.mic, state], None, stream_every=h.ui.audio_every_s, time_limit=STREAM_TIME_LIMIT_S,
                 concurrency_limit=None, show_progress=hidden)
    c.local_start.click(h.start_local, [state], None, concurrency_limit=8)
    c.live_stop.click(h.stop_capture, [state], None, concurrency_limit=8)
    settings = [state, c.ckpt, c.window, c.hop, c.device, c.whisper]
    for comp in (c.ckpt, c.window, c.hop, c.device, c.whisper):
        comp.change(h.on_settings, settings, [c.settings_msg])
    c.ckpt_upload.upload(h.on_ckpt_upload, [state, c.ckpt_upload], [c.ckpt, c.settings_msg])


# -- the app ---------------------------------------------------------------------------------------------------------

SESSIONS: dict[str, Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _close_session(session) -> None:
    if isinstance(session, Session):
        threading.Thread(target=session.close, daemon=True).start()


def build_app(ui: UIConfig, base):
    """The page for `UIConfig` ``ui``; every tab's streams start from the `PipelineConfig` ``base``."""
    import gradio as gr

    offered = checkpoint_names(ui.stream.checkpoint)  # name shown on the page -> folder (paths never reach the page)
    handlers = _Handlers(gr, ui, base, offered)
    c = SimpleNamespace()

    def on_load(request: gr.Request):  # gradio passes the request to a parameter annotated gr.Request
        return handlers.load(request)

    def on_unload(request: gr.Request):
        return handlers.unload(request)

    c.on_load, c.on_unload = on_load, on_unload
    with gr.Blocks(title="DMD live: multimodal emotion recognition") as demo:
        c.state = gr.State(None, delete_callback=_close_session)
        gr.Markdown("## DMD live: emotion from face, voice and words, with DMD's distillation graphs as they move\n"
                    "Decoupled Multimodal Distilling (CVPR 2023). Models run on this machine; nothing is uploaded "
                    "anywhere.")
        with gr.Tabs(selected="replay" if ui.replay else "live"):
            _live_tab(gr, c, ui)
            _replay_tab(gr, c, ui)
            _settings_tab(gr, c, ui, offered)
        _result_views(gr, c)
        c.timer = gr.Timer(POLL_S)
        _wire(demo, c, handlers)
    return demo


def _prewarm(config) -> None:
    """Load the default model and MiniLM while the first page is opening (errors are shown per session later)."""

    def go():
        try:
            from ..config import checkpoint_features
            from ..models import SHARED

            cfg = checkpoint_features(config)
            POOL.get(cfg.scorer, cfg.feature_spec())
            SHARED.text_encoder(cfg.text)  # the language step's MiniLM, shared by every stream
        except Exception as e:
            log.warning("default checkpoint not loaded: %s", e)

    threading.Thread(target=go, name="prewarm-scorer", daemon=True).start()


WORKSPACE: Workspace | None = None
"""This server's files (Gradio's cache and the tabs' folders); set by `launch`."""


def close_all_sessions(deadline_s: float = 1.2) -> None:
    """Stop every tab's stream at once (in parallel, within ``deadline_s``) and delete the server's files."""
    import time

    with _SESSIONS_LOCK:
        sessions = list(SESSIONS.values())
        SESSIONS.clear()
    threads = [threading.Thread(target=s.close, name="close-session", daemon=True) for s in sessions]
    for t in threads:
        t.start()
    end = time.monotonic() + deadline_s
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    for s in sessions:  # even one whose pipeline did not stop in time
        s.delete_files()
    if WORKSPACE is not None:
        WORKSPACE.remove()


def launch(ui: UIConfig, base, workspace: Workspace, stopper=None) -> int:
    """Build the page and serve it until Ctrl-C or SIGTERM (called by run_demo.py when not --headless, after it
    has pointed ``GRADIO_TEMP_DIR`` at ``workspace``).

    With a `realtime.shutdown.Stopper`, a signal at any moment (importing gradio, loading the model, serving)
    closes every session within about a second, deletes the server's files and exits with 130."""
    global WORKSPACE
    WORKSPACE = workspace
    if stopper is not None:
        stopper.on_exit(close_all_sessions)
    import gradio as gr  # noqa: F401

    if ui.replay and not Path(ui.replay).is_file():
        print(f"error: {ui.replay}: no such file")
        WORKSPACE.remove()
        return 2
    _prewarm(base)
    demo = build_app(ui, base)
    port = free_port(ui.host, ui.port)
    if port != ui.port:
        log.info("port %d is taken; using %d", ui.port, port)
    demo.queue(default_concurrency_limit=4)
    print(f"DMD live: open http://{ui.host}:{port}", flush=True)
    try:
        demo.launch(server_name=ui.host, server_port=port, share=ui.share, inbrowser=False,
                    show_error=True, max_file_size=f"{ui.max_upload_mb:g}mb", css=CSS, quiet=False,
                    footer_links=[], ssr_mode=False, pwa=False, mcp_server=False)
    except KeyboardInterrupt:
        pass
    finally:
        close_all_sessions()
    return 0
