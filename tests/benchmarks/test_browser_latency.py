"""The browser benchmark reads the figures the page's health strip prints (its parser is tied to `health_html`)."""

import html
import re
import wave

import pytest

from benchmarks.browser_latency import parse_health, percentile, write_fake_devices
from realtime.ui.health import health_html


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def test_parse_health_reads_what_the_strip_prints():
    snap = {"mode": "browser", "running": True, "video_fps": 9.8, "audio_cps": 2.0, "score_rate": 4.1, "ui_rate": 3.9,
            "latency_ms": {"face": 14.2, "acoustic": 3.0, "transcript": 812.0, "language": 21.5, "scorer": 4.6,
                           "face_wait": 48.4, "language_deferred": 26.3, "capture_to_score": 131.0},
            "stages": {"face": {"compute_per_media_s": 0.31}}, "drops": {"video": 3}, "word_delay_ms": 2116.4}
    got = parse_health(_text(health_html(snap)))
    assert got == {"capture_to_score": 131.0, "face": 14.0, "acoustic": 3.0, "transcript": 812.0, "language": 22.0,
                   "scorer": 4.6, "face_wait": 48.0, "words_after": 26.0, "word_delay": 2116.0,
                   "video": 9.8, "audio": 2.0, "scores": 4.1}


def test_parse_health_before_any_score_has_no_latency():
    got = parse_health(_text(health_html({"mode": "browser", "running": True})))
    assert "capture_to_score" not in got and got["video"] == 0.0


def test_percentile_is_nearest_rank():
    xs = list(range(1, 11))
    assert (percentile(xs, 50), percentile(xs, 90), percentile(xs, 100), percentile([7.0], 90)) == (5, 9, 10, 7.0)


def test_fake_devices_from_the_bundled_clip(tmp_path):
    pytest.importorskip("av")
    from benchmarks.browser_latency import CLIP

    y4m, wav = write_fake_devices(CLIP, tmp_path)
    head = y4m.read_bytes()[:64].split(b"\n")[0].decode()
    assert head == "YUV4MPEG2 W512 H512 F25:1 Ip A1:1 C420jpeg"
    frame = 512 * 512 * 3 // 2 + len(b"FRAME\n")
    assert (y4m.stat().st_size - len(head) - 1) % frame == 0
    assert (y4m.stat().st_size - len(head) - 1) // frame == 200  # 8 s at 25 fps
    with wave.open(str(wav)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (48000, 1, 2)
        assert abs(w.getnframes() / 48000 - 8.0) < 0.05


def test_niced_chromium_is_a_wrapper_only_when_asked(tmp_path):
    import subprocess

    from benchmarks.browser_latency import niced

    assert niced("/usr/bin/chromium", 0, tmp_path) == "/usr/bin/chromium"
    wrapper = niced("/bin/sh", 7, tmp_path)
    out = subprocess.run([wrapper, "-c", "nice"], capture_output=True, text=True, check=True).stdout
    assert int(out) == 7 + int(subprocess.run(["nice"], capture_output=True, text=True).stdout)


def test_window_summary_reads_the_windows_with_the_voice_present():
    from benchmarks.browser_latency import format_window_summary, window_summary

    def row(voice, words, c2s, delay=None, drops=0):
        lat = {"scorer": 5.0, "capture_to_score": c2s, **({"word_delay": delay} if delay is not None else {})}
        return {"present": {"language": words, "visual": True, "acoustic": voice}, "latency_ms": lat,
                "drops": {"video": drops, "audio-acoustic": 0, "audio-transcript": 0}}

    rows = [row(False, False, 900.0, drops=1)]  # before the microphone: left out
    rows += [row(True, i >= 3, 10.0 * (i + 1), delay=1000.0 * i if i in (3, 7) else None, drops=2 + i)
             for i in range(10)]
    got = window_summary(rows)
    assert got == {"windows": 10, "c2s_n": 10, "c2s_p50": 50.0, "c2s_p90": 90.0, "word_delay_n": 2,
                   "word_delay_p50": 3000.0, "word_delay_p90": 7000.0, "with_words": 7,
                   "drops": {"video": 11, "audio-acoustic": 0, "audio-transcript": 0},
                   "tail_n": 2, "tail": {"scorer": (5.0, 5.0)}}  # 90 and 100 ms: at or above the nearest-rank p90
    assert format_window_summary(2, got).startswith(
        "repeat 2, per window with the microphone on (10 windows): capture-to-score p50 50.0 p90 90.0 ms (10 windows); "
        "speech to score p50 3000 p90 7000 ms (2 windows with a new word); windows holding words 7")
    assert window_summary(rows[:1]) == {"windows": 0}
    assert format_window_summary(1, {"windows": 0}) == "repeat 1, per window: no window with the microphone on"


def test_session_jsonls_are_the_result_files_oldest_first(tmp_path):
    import os

    from benchmarks.browser_latency import session_jsonls

    made = []
    for i, (ws, tab, name) in enumerate([("dmd-live-b", "dmd-ui-2", ".results-1.jsonl.x1.part"),
                                         ("dmd-live-a", "dmd-ui-1", ".results-1.jsonl"),
                                         ("dmd-live-a", "dmd-ui-1", ".results-1.csv.x2.part")]):
        d = tmp_path / ws / "gradio" / "sessions" / tab
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text("{}\n")
        os.utime(d / name, (1000 + i, 1000 + i))
        made.append(d / name)
    assert session_jsonls(tmp_path) == made[:2]  # by time, not by name; the CSV left out
