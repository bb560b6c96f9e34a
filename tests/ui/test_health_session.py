"""Health messages, upload checks, CSV export, and per-session isolation (fake pipelines: no models)."""

import json
import threading
import time

import numpy as np
import pytest

from realtime.ui import health, session
from realtime.ui.frames import overlay_landmarks
from realtime.ui.render import health_snapshot
from realtime.ui.session import Session, Settings
from realtime.ui.stream_view import StreamView
from realtime.ui.uploads import UploadError, check_upload


# -- health --------------------------------------------------------------------------------------------------------

def _texts(snap):
    return [t for _, t in health.messages(snap)]


def test_browser_without_camera_or_mic_says_so():
    snap = {"mode": "browser", "running": True, "since_start_s": 5.0, "video_fps": 0.0, "audio_cps": 2.0}
    t = _texts(snap)
    assert len(t) == 1 and t[0].startswith("Camera missing")
    snap.update(video_fps=10.0, audio_cps=0.0)
    assert _texts(snap)[0].startswith("Microphone missing")
    snap.update(since_start_s=1.0, video_fps=0.0)  # just started: no alarm yet
    assert _texts(snap) == []


def test_model_missing_and_failed_stage():
    t = _texts({"model_error": "checkpoint /x not found", "stages": {"face": {"status": "failed: boom"},
                                                                      "acoustic": {"status": "running"}}})
    assert t == ["Model missing or unusable: checkpoint /x not found", "Stage face failed: boom; its modality is masked."]


def test_local_devices_and_audio_only_replay():
    t = _texts({"mode": "local", "running": True, "has_video": False, "has_audio": True,
                "source_problems": ["no camera could be opened at index 0"]})
    assert t[0] == "no camera could be opened at index 0" and t[1].startswith("Camera missing")
    assert _texts({"mode": "replay", "has_video": False, "has_audio": True})[0].startswith("This file has no video")


def test_health_html_chips_and_rates():
    h = health.health_html({"last_present": {"language": True, "visual": False, "acoustic": True},
                            "latency_ms": {"face": 8.04, "scorer": 12.6, "capture_to_score": 250.0},
                            "stages": {"face": {"compute_per_media_s": 0.08}}, "drops": {"video": 3},
                            "video_fps": 10.0, "audio_cps": 10.0, "score_rate": 4.0, "ui_rate": 3.9})
    assert 'chip-on" data-modality="L"' in h and 'chip-off" data-modality="V"' in h
    assert "face 8.0 ms (load 0.08)" in h and "scorer 13 ms" in h and "capture→score 250 ms" in h
    assert "video 3" in h and "video 10.0 fps" in h and "page updates 3.9/s" in h
    assert "speech→words" not in h  # no word has reached a window yet
    h = health.health_html({"latency_ms": {"capture_to_score": 60.0}, "word_delay_ms": 2116.4})
    assert "capture→score 60 ms · speech→words 2116 ms" in h


def test_the_view_keeps_the_newest_word_delay_across_windows_without_new_words():
    from realtime.ui.stream_view import StreamView

    view = StreamView()
    rs = [_Result(0.25 * (k + 1), 0.1) for k in range(3)]
    rs[0].latency_ms = {"scorer": 5.0, "word_delay": 1800.0}
    for r in rs:
        view.add(r)
    view.advance(now=1e9, fast=True)
    assert view.latest is rs[2] and view.word_delay_ms == 1800.0


def test_rate_meter():
    now = [0.0]
    m = health.RateMeter(span_s=3.0, clock=lambda: now[0])
    for i in range(9):
        now[0] = i * 0.25
        m.tick()
    assert m.rate() == pytest.approx(4.0)
    now[0] = 10.0
    assert m.rate() == 0.0


# -- uploads -------------------------------------------------------------------------------------------------------

def test_check_upload(tmp_path):
    ok = tmp_path / "clip.MP4"
    ok.write_bytes(b"\0" * 1000)
    assert check_upload(ok, 1.0) == ok
    with pytest.raises(UploadError, match="limit is 0.0005 MB"):
        check_upload(ok, 0.0005)
    bad = tmp_path / "notes.pdf"
    bad.write_bytes(b"%PDF")
    with pytest.raises(UploadError, match="only audio or video"):
        check_upload(bad, 10)
    empty = tmp_path / "a.wav"
    empty.write_bytes(b"")
    with pytest.raises(UploadError, match="empty"):
        check_upload(empty, 10)


# -- sessions with a fake pipeline ---------------------------------------------------------------------------------

class _Result:
    def __init__(self, t, tag):
        u = 1 / 6
        self.t, self.valence, self.emotion = t, tag, "happy"
        self.probs = {"happy": 0.6, "sad": 0.4}
        self.heads = {u_: {m: {"valence": tag, "emotion": "happy"} for m in "LVA"} for u_ in ("homo", "hetero")}
        self.homo_edges = self.hetero_edges = [[0, u, u], [u, 0, u], [u, u, 0]]
        self.present = {"language": True, "visual": True, "acoustic": True}
        self.words = [f"w{tag:g}", f"t{int(t * 4)}"]
        self.new_words = self.words[1:]  # one word committed per window
        self.face_fraction, self.voiced_fraction = 1.0, 0.5
        self.latency_ms, self.drops = {"scorer": 5.0}, {"video": 0}
        self.landmarks = np.full((478, 3), 0.5)

    def to_json_dict(self):
        return {k: getattr(self, k) for k in ("t", "valence", "emotion", "probs", "heads", "homo_edges",
                                              "hetero_edges", "present", "words", "face_fraction",
                                              "voiced_fraction", "latency_ms", "drops")}


class _FakePipeline:
    """Emits `n` results tagged with the session's valence, then ends (like a replay reaching its end)."""

    value = 0.0

    def __init__(self, config, source, sinks, scorer=None):
        self.config, self.source, self.sinks = config, source, sinks
        self.done, self.error, self.scorer = threading.Event(), None, scorer
        self.n = 12

    def start(self):
        def go():
            v = self.value
            for i in range(self.n):
                for s in self.sinks:
                    s(_Result(0.25 * (i + 1), v))
            self.done.set()

        threading.Thread(target=go, daemon=True).start()
        return self

    def wait(self, timeout=None):
        return self.done.wait(timeout)

    def stop(self):
        self.done.set()
        return []

    def metrics(self):
        return {"stages": {}}


class _Pool:
    """Hands out a stand-in for a started scorer: what a session reads of one (class names, model config)."""

    def get(self, scorer_config, live_spec):
        from types import SimpleNamespace

        from dmd_model.config import preset

        return SimpleNamespace(emotions=["happy", "sad"], cfg=preset("live"))


def _session(value):
    from realtime.pipeline import PipelineConfig

    class P(_FakePipeline):
        pass

    P.value = value
    return Session(PipelineConfig(), Settings(checkpoint="unused"), key=f"s{value}", pool=_Pool(),
                   pipeline_factory=P)


def _wait_finished(s, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not s.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert s.finished, s.error or s.model_error
    s.advance()  # fast replay: everything scored is shown at once


def test_two_sessions_never_see_each_others_data():
    a, b = _session(1.0), _session(-1.0)
    try:
        a.start_replay(session.SAMPLE, fast=True)
        b.start_replay(session.SAMPLE, fast=True)
        _wait_finished(a)
        _wait_finished(b)
        assert a.view.count == b.view.count == 12
        assert {v["fused"] for _, v in a.view.rows} == {1.0} and {v["fused"] for _, v in b.view.rows} == {-1.0}
        assert a.view.transcript == b.view.transcript == [f"t{k}" for k in range(1, 13)]
        assert a.dir != b.dir
        for s, v in ((a, 1.0), (b, -1.0)):
            names = sorted(p.rsplit("/", 1)[-1] for p in s.downloads)
            assert names == ["results-1.csv", "results-1.jsonl", "summary-1.png"]
            lines = [json.loads(x) for x in open(s.downloads[0] if s.downloads[0].endswith(".jsonl") else
                                                  [p for p in s.downloads if p.endswith(".jsonl")][0])]
            assert len(lines) == 12 and {d["valence"] for d in lines} == {v}
    finally:
        a.close()
        b.close()
    assert not a.dir.exists() and not b.dir.exists()


def test_csv_export_columns(tmp_path):
    s = _session(0.5)
    try:
        s.start_replay(session.SAMPLE, fast=True)
        _wait_finished(s)
        csv_path = [p for p in s.downloads if p.endswith(".csv")][0]
        lines = open(csv_path).read().splitlines()
        head = lines[0].split(",")
        assert head[:5] == ["t", "valence", "emotion", "p_happy", "p_sad"]
        assert "homo_L→V" in head and "hetero_V→A" in head and head[-1] == "words"
        assert len(lines) == 13
        row = dict(zip(head, lines[1].split(",")))
        assert row["t"] == "0.25" and row["homo_L→V"].startswith("0.1666") and row["words"] == "w0.5 t1"
    finally:
        s.close()


def test_missing_model_and_bad_file_are_reported():
    from realtime.pipeline import PipelineConfig

    class NoModel:
        def get(self, cfg, spec):
            raise FileNotFoundError("checkpoint /nope not found: pass --checkpoint DIR")

    s = Session(PipelineConfig(), Settings(checkpoint="/nope"), pool=NoModel(), pipeline_factory=_FakePipeline)
    try:
        s.start_replay(session.SAMPLE)
        deadline = time.monotonic() + 20
        while s.starting and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.model_error.startswith("checkpoint nope not found")  # the page shows no server paths
        assert health.messages(health_snapshot(s))[0] == ("error", "Model missing or unusable: " + s.model_error)
        s.start_replay("/no/such/file.mp4")
        deadline = time.monotonic() + 20
        while s.starting and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.error == "file.mp4: no such file" and s.model_error is None
    finally:
        s.close()


def test_overlay_landmarks_draws_dots():
    rgb = np.zeros((20, 40, 3), np.uint8)
    out = overlay_landmarks(rgb, np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]]))
    assert rgb.sum() == 0  # the input is not modified
    assert tuple(out[10, 20]) == (0, 255, 120) and tuple(out[11, 21]) == (0, 255, 120)
    assert tuple(out[0, 0]) == (0, 255, 120) and int((out.sum(axis=2) > 0).sum()) == 8


def test_stream_config_applies_settings():
    from realtime.config import PipelineConfig, StreamSettings, stream_config

    cfg = stream_config(PipelineConfig(), StreamSettings(checkpoint="/c", device="cpu", window_s=3.0, hop_s=0.5,
                                                         whisper_model="base"), live=True)
    assert cfg.live and cfg.defer_words and not cfg.window.wait_for_all and cfg.window.window_s == 3.0
    assert cfg.window.hop_s == 0.5
    assert cfg.scorer.checkpoint == "/c" and cfg.scorer.device == "cpu"
    assert cfg.transcript.model == "base" and cfg.transcript.language is None and cfg.transcript.cpu_threads == 1
    assert cfg.window.history_s == 12.0
    rep = stream_config(PipelineConfig(), StreamSettings(checkpoint="/c", window_s=30.0), live=False)
    assert not rep.live and not rep.defer_words and rep.window.wait_for_all and rep.transcript.language == "en"
    assert rep.transcript.cpu_threads == 2
    assert rep.window.history_s == 32.0  # the window plus 2 s


def test_the_cli_and_the_page_derive_the_same_stream_config():
    """run_demo.py's headless config is `stream_config` of its base and flags, as every page stream's is."""
    import run_demo
    from realtime.config import stream_config

    args = run_demo.build_parser().parse_args(["--replay", "x.mp4", "--window", "5", "--hop", "0.5",
                                               "--whisper-model", "base", "--no-baseline", "--device", "cpu"])
    cli = run_demo.build_config(args)
    ui = run_demo.ui_config(args)
    page = stream_config(run_demo.base_config(args), ui.stream, live=False)
    assert cli == page and not cli.live and not cli.baseline.enabled and cli.transcript.language is None
    assert (ui.replay, ui.stream.window_s, ui.stream.hop_s, ui.stream.device) == ("x.mp4", 5.0, 0.5, "cpu")


def test_face_window_and_webcam_size_flags_reach_the_configs():
    import run_demo

    args = run_demo.build_parser().parse_args(["--face-window", "0.5", "--webcam-size", "640x480"])
    assert run_demo.check_args(args) is None
    assert run_demo.base_config(args).window.visual_window_s == 0.5
    assert run_demo.ui_config(args).webcam_size == (640, 480)
    default = run_demo.build_parser().parse_args([])
    assert run_demo.check_args(default) is None
    assert run_demo.ui_config(default).webcam_size == (320, 240)
    assert run_demo.base_config(default).window.face_span_s == 1.0
    for bad, why in (("640", "give it as WxH"), ("32x32", "at least 64")):
        a = run_demo.build_parser().parse_args(["--webcam-size", bad])
        assert why in run_demo.check_args(a)
    a = run_demo.build_parser().parse_args(["--face-window", "0"])
    assert "must be above 0" in run_demo.check_args(a)


def test_playout_buffer_spreads_bursts_at_media_pace():
    """Scores that arrive in bursts of four once a second are shown one by one, 0.25 s apart."""
    v = StreamView()
    shown_at = []
    t_wall = 100.0
    for burst in range(3):
        for k in range(4):
            v.add(_Result(1.0 + burst + 0.25 * k, 0.0))
        for step in range(10):  # a 10 Hz poll for one second
            now = t_wall + burst + step * 0.1
            if v.advance(now):
                shown_at.append((round(now - t_wall, 2), v.latest.t))
    assert shown_at == [(0.0, 1.0), (0.3, 1.25), (0.5, 1.5), (0.8, 1.75),
                        (1.0, 2.0), (1.3, 2.25), (1.5, 2.5), (1.8, 2.75),
                        (2.0, 3.0), (2.3, 3.25), (2.5, 3.5), (2.8, 3.75)]
    assert v.count == v.received == 12
    # a backlog longer than MAX_PLAYOUT_S is skipped ahead, never shown late forever
    for k in range(40):
        v.add(_Result(10.0 + 0.25 * k, 0.0))
    v.advance(200.0)
    assert v.latest.t == pytest.approx(19.75 - v.MAX_PLAYOUT_S)


def test_transcript_appends_each_windows_new_words_even_when_they_repeat():
    """"no, no, no" across windows: each window's newly committed words are appended as they are (the old
    overlap matching of word lists dropped the repeats)."""
    v = StreamView()
    for k, new in enumerate([["no"], ["no"], [], ["no", "way"]]):
        r = _Result(0.25 * (k + 1), 0.0)
        r.new_words = new
        v.add(r)
    v.advance(fast=True)
    assert v.transcript == ["no", "no", "no", "way"]
