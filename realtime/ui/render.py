"""One poll of the page: every view of a `Session` as HTML (or None when it has not changed since that session's
last poll), plus the state line and the health snapshot. Pure reads of the session; no Gradio here.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, fields

from . import plots, readout_view
from .frames import overlay_landmarks
from .health import health_html


@dataclass
class Views:
    """What one poll sends the page, one field per view, in the order the page lists them (`app.VIEW_ORDER`).

    None means "unchanged": the page keeps what it shows. ``downloads`` is the list of result files when it
    changed; ``clear_downloads`` empties the download box (a new stream has no files yet).
    """

    camera: str | None = None
    now: str | None = None
    transcript: str | None = None
    timeline: str | None = None
    homo: str | None = None
    hetero: str | None = None
    average: str | None = None
    health: str | None = None
    downloads: list[str] | None = None
    clear_downloads: bool = False

    def as_list(self) -> list:
        """The views in page order (``clear_downloads`` folded into ``downloads``' slot by the app)."""
        return [getattr(self, f.name) for f in fields(self) if f.name != "clear_downloads"]


@dataclass
class PageMemo:
    """What a session's page last showed: the poll draws only what changed since."""

    key: tuple | None = None
    health_t: float = 0.0
    downloads: list[str] | None = None


def state_text(session) -> str:
    """The one-line state of the session's stream, shown beside the readout and in the health strip."""
    if session.closed:
        return "closed"
    if session.mode is None:
        return "idle: start a replay or the camera"
    if session.start_failed or ((session.model_error or session.error) and session.pipeline is None):
        return f"{session.label}: could not start"
    if session.starting:
        return f"{session.label}: loading models…"
    if session.finished and not session.view.pending:
        return f"{session.label}: finished ({session.view.count} windows)"
    if session.paused:
        return f"{session.label}: paused"
    return f"{session.label}: {'fast' if session.fast_replay else 'running'}"


def health_snapshot(session) -> dict:
    """The snapshot `realtime.ui.health` turns into the health strip and its messages."""
    p, s, view = session.pipeline, session.source, session.view
    r = view.latest
    m = p.metrics() if p is not None and p.scorer is not None else {}
    return {
        "mode": session.mode,
        "running": p is not None and not session.starting and not session.finished and not session.start_failed,
        "starting": session.starting, "error": session.error, "model_error": session.model_error,
        "has_video": s.has_video if s is not None and not session.starting else None,
        "has_audio": s.has_audio if s is not None and not session.starting else None,
        "video_fps": s.video_rate.rate() if s else 0.0, "audio_cps": s.audio_rate.rate() if s else 0.0,
        "score_rate": view.score_rate.rate(), "ui_rate": view.ui_rate.rate(),
        "source_problems": session.source_problems, "stages": m.get("stages", {}),
        "last_present": r.present if r is not None else {}, "latency_ms": r.latency_ms if r is not None else {},
        "drops": r.drops if r is not None else {}, "since_start_s": time.monotonic() - session.started_at,
        "word_delay_ms": view.word_delay_ms,
        "state_text": state_text(session),
    }


def start_message(session, name: str, timeout: float = 3.0) -> str:
    """What the page says after asking for a stream: waits until the stream has its source and model (or has
    failed), so that "playing" never stands beside a red error for the same file."""
    deadline = time.monotonic() + timeout
    while True:
        if session.start_failed:
            return f"**Could not play** `{name}`: {session.error or session.model_error}"
        if session.pipeline is not None or session.finished:
            return f"playing `{name}`"
        if time.monotonic() >= deadline:
            return f"starting `{name}` (loading models…)"
        time.sleep(0.02)


def now_html(session) -> str:
    """The smoothed readout, the raw window, the modality votes and the baseline (realtime.ui.readout_view)."""
    return readout_view.now_html(session.view.latest, session.view.count, state_text(session))


def transcript_html(session, max_words: int = 120) -> str:
    transcript = session.view.transcript
    words = transcript[-max_words:]
    text = " ".join(words) if words else ""
    more = "… " if len(transcript) > max_words else ""
    placeholder = "" if text else '<span style="color:#94a3b8">(no words yet)</span>'
    r = session.view.latest
    unsure = ""
    if r is not None and r.words and not r.present.get("language"):  # heard, not read (PipelineConfig.min_word_prob)
        unsure = ('<div class="caveat" id="dmd-words-unsure">The recogniser is unsure of the current words (another '
                  'language? a phrase cut off?): the model does not read them.</div>')
    return f'<div id="dmd-transcript">{more}{html.escape(text)}{placeholder}</div>{unsure}'


def camera_html(session) -> str:
    s, r = session.source, session.view.latest
    rgb = None if s is None else s.frame_at(r.t if r is not None else s.media_t)
    if rgb is None:
        return '<div class="cam-empty" style="color:#94a3b8;padding:40px 0;text-align:center">no video</div>'
    rgb = overlay_landmarks(rgb, r.landmarks if r is not None else None)
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])
    if not ok:
        return ""
    b64 = base64.b64encode(buf.tobytes()).decode("ascii")
    return f'<img alt="camera view with face landmarks" src="data:image/jpeg;base64,{b64}"/>'


def graph_html(session, unit: str) -> str:
    r = session.view.latest
    W = None if r is None else (r.homo_edges if unit == "homo" else r.hetero_edges)
    if W is not None and not any(float(W[i][j]) > 0 for i in range(3) for j in range(3)):
        note = '<div class="caveat">fewer than two modalities present: no edges in this window</div>'
    else:
        note = ""
    title = "HomoGD (now)" if unit == "homo" else "HeteroGD (now)"
    prior = session.homo_prior if unit == "homo" else session.hetero_prior
    return (f'<div class="gd" id="dmd-{unit}">{plots.graph_svg(W, title, unit)}'
            f'{plots.matrix_html(W, unit, prior)}{note}</div>')


def average_html(session) -> str:
    return ('<div id="dmd-average"><b>Time-averaged edges</b> (this stream)'
            + plots.average_html(session.view.avg, session.homo_prior, session.hetero_prior) + "</div>")


def _draw_results(session, series: list[str], views: Views) -> None:
    views.camera = camera_html(session)
    views.now = now_html(session)
    views.transcript = transcript_html(session)
    views.timeline = plots.timeline_svg(session.view.timeline_rows(), series or [], span_s=session.view.TIMELINE_S)
    views.homo = graph_html(session, "homo")
    views.hetero = graph_html(session, "hetero")
    views.average = average_html(session)


def render(session, series: list[str], force: bool = False) -> Views:
    """The poll: every view that changed since this session's last poll (all of them with ``force``)."""
    views = Views()
    if session is None:
        return views
    memo: PageMemo = session.page_memo
    session.advance()
    view = session.view
    key = (session.gen, view.count, tuple(series or ()), session.starting, session.finished)
    now = time.monotonic()
    if force or key != memo.key:
        if view.count and (memo.key is None or memo.key[1] != view.count):
            view.ui_rate.tick()
        memo.key = key
        _draw_results(session, series, views)
    elif session.mode == "browser" and session.source is not None and now - memo.health_t > 0.2:
        views.camera = camera_html(session)  # the camera view moves even when no new score has come
    if force or views.now is not None or now - memo.health_t > 1.0:
        memo.health_t = now
        views.health = health_html(health_snapshot(session))
    if session.downloads != memo.downloads and not view.pending:
        memo.downloads = list(session.downloads)
        views.downloads = list(session.downloads) or None
        views.clear_downloads = not session.downloads
    return views
