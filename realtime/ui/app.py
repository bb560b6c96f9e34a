"""The Gradio page: Live (browser or local capture), Replay and Settings tabs over one set of views that make DMD's
behaviour visible (valence timeline per head, HomoGD/HeteroGD edge graphs, matrices, time-averaged edges, health).

Choices, and why (Gradio 6.31, checked with ``inspect.signature`` and in headless Chromium):

* **Browser capture with plain ``gr.Image(sources=["webcam"], streaming=True)`` and ``gr.Audio(sources=["microphone"],
  streaming=True, type="numpy")`` + ``.stream(stream_every=…, time_limit=…)``**, not fastrtc/WebRTC: it needs no
  STUN/TURN server (nothing outside this machine may be contacted) and works from any machine that opens the page.
  ``webcam_options=gr.WebcamOptions(constraints=…)`` asks for 640x480; without it Chromium delivers the camera's
  native size (1920x1440 from the fake camera), which costs the face stage for nothing. Frames every 0.1 s (10 fps,
  the face stage's rate); audio every 0.5 s (48 kHz int16, resampled to 16 kHz by `BrowserSource`).
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
  DMD model is shared (`session.ScorerPool`); everything else is per session.
* Safe defaults: 127.0.0.1 unless ``--host``, ``--port`` or the next free port, no share link unless ``--share``,
  uploads limited by ``--max-upload-mb`` (Gradio's ``max_file_size`` refuses larger ones before they are stored,
  and `session.check_upload` re-checks size and type with a readable message), ``GRADIO_ANALYTICS_ENABLED=False``.
"""

# no `from __future__ import annotations` here: Gradio finds `request: gr.Request` by evaluating the annotation

import base64
import html
import logging
import os
import socket
import threading
from pathlib import Path

from . import plots, readout_view
from .health import health_html
from .session import POOL, SAMPLE, Session, Settings, UploadError, check_upload, checkpoint_names
from .workspace import Workspace

log = logging.getLogger(__name__)

POLL_S = 0.2
FRAME_EVERY_S = 0.1
AUDIO_EVERY_S = 0.5
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


# -- rendering one tick ----------------------------------------------------------------------------------------------

def now_html(session: Session) -> str:
    """The smoothed readout, the raw window, the modality votes and the baseline (realtime.ui.readout_view)."""
    return readout_view.now_html(session.latest, session.count, session.state_text())


def transcript_html(session: Session, max_words: int = 120) -> str:
    words = session.transcript[-max_words:]
    text = " ".join(words) if words else ""
    more = "… " if len(session.transcript) > max_words else ""
    placeholder = "" if text else '<span style="color:#94a3b8">(no words yet)</span>'
    return f'<div id="dmd-transcript">{more}{html.escape(text)}{placeholder}</div>'


def camera_html(session: Session) -> str:
    rgb = session.frame_with_landmarks()
    if rgb is None:
        return '<div class="cam-empty" style="color:#94a3b8;padding:40px 0;text-align:center">no video</div>'
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])
    if not ok:
        return ""
    b64 = base64.b64encode(buf.tobytes()).decode("ascii")
    return f'<img alt="camera view with face landmarks" src="data:image/jpeg;base64,{b64}"/>'


def graph_html(session: Session, unit: str) -> str:
    r = session.latest
    W = None if r is None else (r.homo_edges if unit == "homo" else r.hetero_edges)
    if W is not None and not any(float(W[i][j]) > 0 for i in range(3) for j in range(3)):
        note = '<div class="caveat">fewer than two modalities present: no edges in this window</div>'
    else:
        note = ""
    title = "HomoGD (now)" if unit == "homo" else "HeteroGD (now)"
    prior = session.homo_prior if unit == "homo" else session.hetero_prior
    return (f'<div class="gd" id="dmd-{unit}">{plots.graph_svg(W, title, unit)}'
            f'{plots.matrix_html(W, unit, prior)}{note}</div>')


def render(session: Session | None, series: list[str], force: bool = False):
    """The tick: every view, or ``None`` for a view that has not changed since this session's last tick."""
    n_out = 9
    if session is None:
        return [None] * n_out
    import time as _time

    ui = session.__dict__.setdefault("_ui", {"key": None, "health_t": 0.0, "downloads": None})
    session.advance()
    key = (session.gen, session.count, tuple(series or ()), session.starting, session.finished)
    now = _time.monotonic()
    out = [None] * n_out
    if force or key != ui["key"]:
        if session.count and (ui["key"] is None or ui["key"][1] != session.count):
            session.ui_rate.tick()
        ui["key"] = key
        with session._lock:
            rows = list(session.rows)
        out[0] = camera_html(session)
        out[1] = now_html(session)
        out[2] = transcript_html(session)
        out[3] = plots.timeline_svg(rows, series or [], span_s=session.TIMELINE_S)
        out[4] = graph_html(session, "homo")
        out[5] = graph_html(session, "hetero")
        out[6] = ('<div id="dmd-average"><b>Time-averaged edges</b> (this stream)'
                  + plots.average_html(session.avg, session.homo_prior, session.hetero_prior) + "</div>")
    elif session.mode == "browser" and session.source is not None and now - ui["health_t"] > 0.2:
        out[0] = camera_html(session)  # the camera view moves even when no new score has come
    if force or out[1] is not None or now - ui["health_t"] > 1.0:
        ui["health_t"] = now
        out[7] = health_html(session.health_snapshot())
    if session.downloads != ui["downloads"] and not session.pending:
        ui["downloads"] = list(session.downloads)
        out[8] = list(session.downloads) or None
        if not session.downloads:
            out[8] = "__clear__"
    return out


# -- the app ---------------------------------------------------------------------------------------------------------

SESSIONS: dict[str, Session] = {}
_SESSIONS_LOCK = threading.Lock()


def _close_session(session) -> None:
    if isinstance(session, Session):
        threading.Thread(target=session.close, daemon=True).start()


def build_app(args, config):
    import gradio as gr

    max_mb = float(getattr(args, "max_upload_mb", 200.0))
    default_ckpt = str(getattr(args, "checkpoint", config.scorer.checkpoint))
    offered = checkpoint_names(default_ckpt)  # name shown on the page -> folder (paths never reach the page)
    default_name = next(iter(offered))
    replay_path = getattr(args, "replay", None)

    def default_settings() -> Settings:
        return Settings(checkpoint=default_ckpt, device=args.device, window_s=args.window, hop_s=args.hop,
                        whisper_model=args.whisper_model)

    with gr.Blocks(title="DMD live: multimodal emotion recognition") as demo:
        state = gr.State(None, delete_callback=_close_session)
        gr.Markdown("## DMD live: emotion from face, voice and words, with DMD's distillation graphs as they move\n"
                    "Decoupled Multimodal Distilling (CVPR 2023). Models run on this machine; nothing is uploaded "
                    "anywhere.")
        with gr.Tabs(selected="replay" if replay_path else "live"):
            with gr.Tab("Live", id="live"):
                capture = gr.Radio(["browser", "local devices"], value="browser", label="Capture from",
                                   info="browser: the webcam and microphone of the machine that opens this page; "
                                        "local devices: the camera and microphone of the machine running the server")
                with gr.Row(visible=True) as browser_row:
                    cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="webcam", height=240,
                                   webcam_options=gr.WebcamOptions(constraints={"video": {"width": 640, "height": 480}}))
                    mic = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="microphone")
                with gr.Row(visible=False) as local_row:
                    local_start = gr.Button("Start local webcam + microphone", variant="primary")
                live_stop = gr.Button("Stop capture")
            with gr.Tab("Replay", id="replay"):
                with gr.Row():
                    upload = gr.File(label=f"Upload a video or audio file (up to {max_mb:g} MB)",
                                     file_types=["audio", "video"], type="filepath")
                    with gr.Column():
                        sample_btn = gr.Button(f"Play the bundled sample ({SAMPLE.name})", variant="primary")
                        if replay_path:
                            again_btn = gr.Button(f"Replay {Path(replay_path).name} again")
                        fast = gr.Checkbox(value=bool(getattr(args, "fast", False)), label="fast",
                                           info="off: real-time pace; on: as fast as the pipeline runs "
                                                "(deterministic scores)")
                        pause_btn = gr.Button("Pause")
                replay_msg = gr.Markdown()
                downloads = gr.File(label="Results (JSONL, CSV) and summary plot (PNG), when the replay ends",
                                    file_count="multiple", interactive=False)
            with gr.Tab("Settings", id="settings"):
                gr.Markdown("Settings apply to the next stream you start (replay or capture).")
                with gr.Row():
                    ckpt = gr.Dropdown(list(offered), value=default_name, label="DMD checkpoint")
                    ckpt_upload = gr.File(label="…or upload one (model.safetensors + config.json)",
                                          file_count="multiple", file_types=[".safetensors", ".json"])
                with gr.Row():
                    window = gr.Slider(1.0, 10.0, value=args.window, step=0.5, label="window (s)")
                    hop = gr.Slider(0.1, 2.0, value=args.hop, step=0.05, label="hop (s)")
                    device = gr.Dropdown(["auto", "cpu", "cuda"], value=args.device, label="device",
                                         allow_custom_value=True)
                    whisper = gr.Dropdown(["tiny.en", "base"], value=args.whisper_model, label="Whisper model",
                                          allow_custom_value=True)
                settings_msg = gr.Markdown()

        health = gr.HTML(elem_id="dmd-health")
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                camview = gr.HTML(elem_id="dmd-camera-box", label="camera with face landmarks")
            with gr.Column(scale=1, min_width=260):
                now = gr.HTML(elem_id="dmd-now-box")
                calib_btn = gr.Button("Calibrate: 3 s of neutral face and normal voice", size="sm",
                                      elem_id="dmd-calibrate")
                calib_msg = gr.Markdown()
            with gr.Column(scale=2, min_width=320):
                transcript = gr.HTML(elem_id="dmd-transcript-box")
                series = gr.CheckboxGroup(list(plots.SERIES), value=DEFAULT_SERIES,
                                          label="valence over the last 60 s: fused and each modality's homogeneous "
                                                "(solid) / heterogeneous (dashed) head")
                timeline = gr.HTML(elem_id="dmd-timeline")
        with gr.Row():
            homo = gr.HTML(elem_id="dmd-homo-box")
            hetero = gr.HTML(elem_id="dmd-hetero-box")
            average = gr.HTML(elem_id="dmd-average-box")
        gr.HTML(f'<div class="caveat">Edges: an arrow i→j means teacher i distils into student j; widths and labels '
                f'are the current weights (the six sum to 1 per window; matrix rows = teacher, columns = student). '
                f'{html.escape(plots.PRIOR_CAVEAT)}</div>')
        timer = gr.Timer(POLL_S)

        views = [camview, now, transcript, timeline, homo, hetero, average, health, downloads]

        def to_updates(out):
            res = []
            for v in out:
                if v is None:
                    res.append(gr.skip())
                elif v == "__clear__":
                    res.append(None)
                else:
                    res.append(v)
            return res

        def on_load(request: gr.Request):
            s = Session(config, default_settings(), key=request.session_hash or "", workspace=WORKSPACE)
            with _SESSIONS_LOCK:
                SESSIONS[s.key] = s
            if replay_path:
                s.start_replay(replay_path, fast=bool(args.fast), start_at=float(args.start_at or 0.0))
            return [s] + to_updates(render(s, DEFAULT_SERIES, force=True))

        def on_unload(request: gr.Request):
            with _SESSIONS_LOCK:
                s = SESSIONS.pop(request.session_hash or "", None)
            _close_session(s)

        def tick(s, sel):
            return to_updates(render(s, sel))

        def redraw(s, sel):
            return to_updates(render(s, sel, force=True))

        def play_sample(s, is_fast):
            if s is None:
                return "page not ready", gr.skip()
            s.start_replay(SAMPLE, fast=bool(is_fast))
            return s.start_message(SAMPLE.name), "Pause"

        def play_again(s, is_fast):
            if s is None:
                return "page not ready", gr.skip()
            s.start_replay(replay_path, fast=bool(is_fast), start_at=float(args.start_at or 0.0))
            return s.start_message(Path(replay_path).name), "Pause"

        def on_upload(s, f, is_fast):
            if s is None or f is None:
                return gr.skip(), gr.skip()
            s.own_upload(f)
            try:
                p = check_upload(f, max_mb)
            except UploadError as e:
                gr.Warning(str(e))
                return f"**Refused:** {e}", gr.skip()
            s.start_replay(p, fast=bool(is_fast))
            return s.start_message(p.name), "Pause"

        def calibrate(s):
            return "page not ready" if s is None else s.calibrate()

        def toggle_pause(s):
            if s is None or s.mode != "replay" or s.source is None:
                return "Pause"
            s.set_paused(not s.paused)
            return "Play" if s.paused else "Pause"

        def set_fast(s, is_fast):
            if s is not None:
                s.set_fast(bool(is_fast))

        def set_capture(choice):
            local = choice == "local devices"
            return gr.update(visible=not local), gr.update(visible=local)

        def on_frame(frame, s):
            if s is not None and frame is not None:
                s.push_frame(frame)

        def on_audio(chunk, s):
            if s is not None and chunk is not None:
                s.push_audio(chunk)

        def start_local(s):
            if s is not None:
                s.start_local()

        def stop_capture(s):
            if s is not None and s.mode in ("browser", "local"):
                s.stop()

        def on_settings(s, c, w, h, d, wm):
            if s is None:
                return ""
            from ..checks import window_and_hop

            try:
                w, h = window_and_hop(w, h, names=("window", "hop"))
            except ValueError as e:
                return f"**Not applied:** {e}"
            path = s.checkpoints.get(str(c)) or offered.get(str(c))
            if path is None:
                return f"**Not applied:** unknown checkpoint `{c}`"
            s.settings = Settings(checkpoint=path, device=str(d), window_s=w, hop_s=h, whisper_model=str(wm))
            return f"next stream: checkpoint `{c}`, window {w:g} s, hop {h:g} s, device {d}, Whisper {wm}"

        def on_ckpt_upload(s, files):
            if s is None or not files:
                return gr.skip(), "no files"
            try:
                name = s.add_checkpoint(files, max_mb)
            except UploadError as e:
                return gr.skip(), f"**Refused:** {e}"
            return (gr.update(choices=list(offered) + list(s.checkpoints), value=name),
                    f"uploaded checkpoint `{name}` selected for the next stream")

        demo.load(on_load, None, [state] + views, show_progress="hidden")
        demo.unload(on_unload)
        timer.tick(tick, [state, series], views, show_progress="hidden", concurrency_limit=None,
                   trigger_mode="once")
        series.change(redraw, [state, series], views, show_progress="hidden", concurrency_limit=None)
        sample_btn.click(play_sample, [state, fast], [replay_msg, pause_btn], concurrency_limit=8)
        if replay_path:
            again_btn.click(play_again, [state, fast], [replay_msg, pause_btn], concurrency_limit=8)
        upload.upload(on_upload, [state, upload, fast], [replay_msg, pause_btn], concurrency_limit=8)
        pause_btn.click(toggle_pause, [state], [pause_btn], concurrency_limit=None)
        calib_btn.click(calibrate, [state], [calib_msg], concurrency_limit=None)
        fast.change(set_fast, [state, fast], None, concurrency_limit=None)
        capture.change(set_capture, [capture], [browser_row, local_row])
        cam.stream(on_frame, [cam, state], None, stream_every=FRAME_EVERY_S, time_limit=STREAM_TIME_LIMIT_S,
                   concurrency_limit=None, show_progress="hidden")
        mic.stream(on_audio, [mic, state], None, stream_every=AUDIO_EVERY_S, time_limit=STREAM_TIME_LIMIT_S,
                   concurrency_limit=None, show_progress="hidden")
        local_start.click(start_local, [state], None, concurrency_limit=8)
        live_stop.click(stop_capture, [state], None, concurrency_limit=8)
        for comp in (ckpt, window, hop, device, whisper):
            comp.change(on_settings, [state, ckpt, window, hop, device, whisper], [settings_msg])
        ckpt_upload.upload(on_ckpt_upload, [state, ckpt_upload], [ckpt, settings_msg])
    return demo


def _prewarm(config) -> None:
    """Load the default model while the first page is opening (errors are shown per session later)."""

    def go():
        try:
            from ..features.specs import feature_spec

            POOL.get(config.scorer, feature_spec(config.face.sample_fps))
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


def launch(args, config, stopper=None) -> int:
    """Build the page and serve it until Ctrl-C or SIGTERM (called by run_demo.py when not --headless).

    With a `realtime.shutdown.Stopper`, a signal at any moment (importing gradio, loading the model, serving)
    closes every session within about a second, deletes the server's files and exits with 130."""
    global WORKSPACE
    WORKSPACE = Workspace.create(keep=bool(getattr(args, "keep_session_files", False)))
    if stopper is not None:
        stopper.on_exit(close_all_sessions)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no outbound calls
    os.environ["GRADIO_TEMP_DIR"] = str(WORKSPACE.cache)  # uploads land in this server's folder, deleted with it
    import gradio as gr  # noqa: F401

    if getattr(args, "replay", None) and not Path(args.replay).is_file():
        print(f"error: {args.replay}: no such file")
        WORKSPACE.remove()
        return 2
    _prewarm(config)
    demo = build_app(args, config)
    port = free_port(args.host, int(args.port))
    if port != args.port:
        log.info("port %d is taken; using %d", args.port, port)
    demo.queue(default_concurrency_limit=4)
    print(f"DMD live: open http://{args.host}:{port}", flush=True)
    try:
        demo.launch(server_name=args.host, server_port=port, share=bool(args.share), inbrowser=False,
                    show_error=True, max_file_size=f"{float(args.max_upload_mb):g}mb", css=CSS, quiet=False,
                    footer_links=[], ssr_mode=False, pwa=False, mcp_server=False)
    except KeyboardInterrupt:
        pass
    finally:
        close_all_sessions()
    return 0
