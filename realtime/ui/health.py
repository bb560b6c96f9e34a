"""The modality-health strip: which modalities are present, per-stage latency, frame rates, drops, and a clear
message when the camera, the microphone or the model is missing. Pure functions of a snapshot dict (built by
`render.health_snapshot`), so they are unit-tested without a pipeline or Gradio."""

from __future__ import annotations

import html
import time
from collections import deque

MODALITIES = (("language", "L", "words"), ("visual", "V", "face"), ("acoustic", "A", "voice"))


class RateMeter:
    """Events per second over the last ``span_s`` seconds (monotonic clock)."""

    def __init__(self, span_s: float = 3.0, clock=time.monotonic):
        self.span_s = span_s
        self.clock = clock
        self.times: deque[float] = deque(maxlen=2048)

    def tick(self) -> None:
        self.times.append(self.clock())

    def rate(self) -> float:
        now = self.clock()
        while self.times and now - self.times[0] > self.span_s:
            self.times.popleft()
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / max(1e-6, self.times[-1] - self.times[0])


def messages(snap: dict) -> list[tuple[str, str]]:
    """(level, text) problems to show, most important first. level is "error" or "warn".

    snap keys (all optional): mode ("browser" | "local" | "replay" | None), running (bool), starting (bool),
    error (str), model_error (str), has_video, has_audio (what the source offers), video_fps, audio_cps (chunks/s
    arriving now), source_problems (list[str]), stages ({name: {status, ...}}), last_present ({modality: bool}),
    since_start_s (float), source_status (str).
    """
    out: list[tuple[str, str]] = []
    if snap.get("model_error"):
        out.append(("error", f"Model missing or unusable: {snap['model_error']}"))
    if snap.get("error") and snap.get("error") != snap.get("model_error"):
        out.append(("error", snap["error"]))
    mode = snap.get("mode")
    for p in snap.get("source_problems") or []:
        out.append(("error", p))
    running = snap.get("running")
    grace = (snap.get("since_start_s") or 0.0) > 3.0
    if mode == "browser" and running and grace:
        if not snap.get("video_fps"):
            out.append(("warn", "Camera missing: no webcam frames are arriving. Click the webcam's record button "
                                "and allow camera access (the visual modality is masked meanwhile)."))
        if not snap.get("audio_cps"):
            out.append(("warn", "Microphone missing: no audio is arriving. Click the microphone's record button "
                                "and allow microphone access (acoustic and language modalities are masked)."))
    if mode == "local" and running:
        if snap.get("has_video") is False:
            out.append(("warn", "Camera missing: no local camera could be opened; the visual modality is masked."))
        if snap.get("has_audio") is False:
            out.append(("warn", "Microphone missing: no local microphone could be opened; acoustic and language "
                                "modalities are masked."))
    if mode == "replay" and snap.get("has_video") is False:
        out.append(("warn", "This file has no video track: the visual modality is masked."))
    if mode == "replay" and snap.get("has_audio") is False:
        out.append(("warn", "This file has no audio track: acoustic and language modalities are masked."))
    for name, st in (snap.get("stages") or {}).items():
        status = str(st.get("status", ""))
        if status.startswith("failed") or status == "stalled":
            out.append(("error", f"Stage {name} {status}; its modality is masked."))
    return out


def _fmt_ms(v) -> str:
    return "–" if v is None else (f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms")


def health_html(snap: dict) -> str:
    """The strip: presence chips, rates, latencies, drops, then the messages."""
    present = snap.get("last_present") or {}
    chips = []
    for key, short, what in MODALITIES:
        on = present.get(key)
        state = "on" if on else ("off" if on is False else "unknown")
        chips.append(f'<span class="chip chip-{state}" data-modality="{short}" title="{key} ({what})">'
                      f'{short} {what}: {"present" if on else ("absent" if on is False else "–")}</span>')
    lat = snap.get("latency_ms") or {}
    stages = snap.get("stages") or {}
    lat_parts = []
    for name in ("face", "acoustic", "transcript", "language", "scorer"):
        if name in lat or name in stages:
            st = stages.get(name, {})
            load = st.get("compute_per_media_s")
            extra = f" (load {load:.2f})" if load else ""
            lat_parts.append(f"{name} {_fmt_ms(lat.get(name))}{extra}")
    if "language_deferred" in lat:  # live: MiniLM ran after the result went out, off capture-to-score
        lat_parts.append(f"words encoded after the score {_fmt_ms(lat['language_deferred'])}")
    if "face_wait" in lat:
        lat_parts.append(f"face wait {_fmt_ms(lat['face_wait'])}")
    if "capture_to_score" in lat:
        lat_parts.append(f"capture→score {_fmt_ms(lat['capture_to_score'])}")
    if snap.get("word_delay_ms") is not None:  # the newest word's: most windows bring none
        lat_parts.append(f"speech→words {_fmt_ms(snap['word_delay_ms'])}")
    drops = snap.get("drops") or {}
    drop_txt = ", ".join(f"{k} {v}" for k, v in drops.items()) or "none"
    rates = (f"video {snap.get('video_fps', 0.0):.1f} fps · audio {snap.get('audio_cps', 0.0):.1f} chunks/s · "
             f"scores {snap.get('score_rate', 0.0):.1f}/s · page updates {snap.get('ui_rate', 0.0):.1f}/s")
    state = snap.get("state_text") or ""
    msgs = "".join(f'<div class="msg msg-{lvl}">{html.escape(t)}</div>' for lvl, t in messages(snap))
    return (f'<div class="health"><div class="chips">{"".join(chips)} <span class="state">{html.escape(state)}'
            f'</span></div><div class="rates">{rates}</div>'
            f'<div class="lat">latency: {html.escape(" · ".join(lat_parts) or "–")} · drops: {html.escape(drop_txt)}'
            f'</div>{msgs}</div>')
