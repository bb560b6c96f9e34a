"""Capture-to-score latency of the live page in a real browser: headless Chromium with fake devices fed from a clip.

    python -m benchmarks.browser_latency [--clip assets/WDA_KatieHill_000.mp4] [--seconds 60] [--repeats 1]
                                         [--checkpoint DIR] [--chromium /usr/bin/chromium] [--per-window]

What it does, end to end, with nothing mocked on the server side:

1. decodes the clip (PyAV) into a temp dir as the raw files Chromium's fake devices read: a Y4M video (the clip's
   own size and rate) and a 48 kHz mono WAV; Chromium loops both;
2. starts the real page server, ``run_demo.py --port <free>``, and waits for its port;
3. opens the page in headless Chromium through Playwright (Debian's ``/usr/bin/chromium``; ``playwright install``
   is never run) with ``--use-fake-device-for-media-stream --use-fake-ui-for-media-stream
   --use-file-for-fake-video-capture=<y4m> --use-file-for-fake-audio-capture=<wav>``;
4. starts the webcam and the microphone streams by clicking their record buttons (what a user does), waits until the
   page's health strip shows a capture-to-score figure with video and audio arriving, then samples the strip once a second for ``--seconds``:
   capture-to-score and the per-stage latencies (face, acoustic, transcript, scorer) as the page prints them, and the
   rates it reports (video fps, audio chunks/s, scores/s). The page's own update rate is counted in the browser:
   every change of the shown window time (a 20 ms in-page poll, as tests/ui/test_browser.py does), and the
   browser's own timing of each webcam-frame and microphone-chunk upload (size, request start to response end).

With ``--per-window`` the server keeps its session files (``--keep-session-files``, inside this run's temp dir)
and, once it has stopped, the page's own JSONL of each repeat is read per scored window, over the windows with the
microphone on (voice present): capture-to-score p50/p90 of every window (not one sample a second), speech to
score (``word_delay``: from a new word's end to the first window holding it) p50/p90, the windows holding words, and
the drop counters at the end, and the median of each stage's latency over all those windows against over the
slowest tenth (capture-to-score at or above p90): which stage the slow windows waited for.

Prints, per repeat, p50/p90 of capture-to-score and the medians of the stage latencies and rates; with several
repeats (each a fresh page and stream on the same server), the min and median of those over repeats. On a shared
machine compare runs made one after the other, not with figures from another day.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "assets" / "WDA_KatieHill_000.mp4"
CHROMIUM = "/usr/bin/chromium"
STAGES = ("face", "acoustic", "transcript", "language", "scorer")
FIGURES = STAGES + ("face_wait", "words_after", "word_delay")
"""The per-window figures read off the strip: the stages' latencies, the face stage's wait (capture to start) and,
live, MiniLM run after the score (`PipelineConfig.defer_words`), and the newest word's speech-to-score delay."""
RATES = (("video", r"video ([\d.]+) fps"), ("audio", r"audio ([\d.]+) chunks/s"), ("scores", r"scores ([\d.]+)/s"))

# every change of the shown window time, stamped with the browser's clock (as tests/ui/test_browser.py records it)
RECORDER = """
() => {
  window.__dmd = {t: []};
  setInterval(() => {
    const t = document.querySelector('#dmd-result-t');
    if (t && t.textContent !== window.__dmd.last) { window.__dmd.last = t.textContent; window.__dmd.t.push(performance.now()); }
  }, 20);
}
"""


def write_fake_devices(clip: Path, out_dir: Path) -> tuple[Path, Path]:
    """The clip as Chromium's fake-device files: Y4M (4:2:0, the clip's size and frame rate) and 48 kHz mono WAV."""
    import av
    import numpy as np

    y4m, wav = out_dir / "camera.y4m", out_dir / "microphone.wav"
    with av.open(str(clip)) as c:
        vs = c.streams.video[0]
        rate = vs.average_rate
        w, h = vs.codec_context.width // 2 * 2, vs.codec_context.height // 2 * 2
        with open(y4m, "wb") as f:
            f.write(f"YUV4MPEG2 W{w} H{h} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
            for frame in c.decode(video=0):
                planes = frame.reformat(width=w, height=h, format="yuv420p").to_ndarray()  # (1.5 h, w) Y, U, V
                f.write(b"FRAME\n")
                f.write(np.ascontiguousarray(planes).tobytes())
    with av.open(str(clip)) as c:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        chunks = []
        for frame in c.decode(audio=0):
            for r in resampler.resample(frame):
                chunks.append(r.to_ndarray().reshape(-1))
        for r in resampler.resample(None):
            chunks.append(r.to_ndarray().reshape(-1))
    with wave.open(str(wav), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(48000)
        f.writeframes(np.concatenate(chunks).astype(np.int16).tobytes())
    return y4m, wav


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, checkpoint: str | None, log_path: Path, extra: list[str] = (),
                 tmpdir: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    if tmpdir is not None:  # the server's workspace (session files) goes there
        tmpdir.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(tmpdir)
    cmd = [sys.executable, str(ROOT / "run_demo.py"), "--port", str(port), *extra]
    if checkpoint:
        cmd += ["--checkpoint", checkpoint]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"run_demo.py exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.25)
    proc.terminate()
    raise SystemExit(f"run_demo.py did not open port {port} within 180 s:\n{log_path.read_text()[-3000:]}")


LABELLED = (("capture_to_score", r"capture→score ([\d.]+) ms"), ("face_wait", r"face wait ([\d.]+) ms"),
            ("words_after", r"words encoded after the score ([\d.]+) ms"), ("word_delay", r"speech→words ([\d.]+) ms"))
"""The strip's figures that are not a stage's own latency, with the words the strip prints them under."""


def parse_health(text: str) -> dict:
    """The health strip's text -> {"capture_to_score": ms, "<stage>": ms, "video": fps, ...} (missing keys absent)."""
    out = {}
    stages = tuple((name, rf"\b{name} ([\d.]+) ms") for name in STAGES)
    for name, pat in LABELLED + stages + RATES:
        m = re.search(pat, text)
        if m:
            out[name] = float(m.group(1))
    return out


def percentile(xs: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(xs)
    return s[min(len(s), max(1, math.ceil(q / 100 * len(s)))) - 1]


def start_streams(page, transfers: "Transfers", tries: int = 3, wait_s: float = 20.0) -> None:
    """Start the webcam and microphone streams as a user does, with Gradio's own controls: open the webcam, press
    its record button, press the microphone's record button. On a loaded machine the microphone's first press now
    and then records without any chunk reaching the server; then it is stopped and pressed again (up to `tries`)."""
    page.get_by_role("tab", name="Live").click()
    page.get_by_text("Click to Access Webcam").click(timeout=30_000)
    page.locator('[data-testid="image"] button[aria-label="capture photo"]').click(timeout=30_000)
    mic = page.locator('[data-testid="waveform-microphone"]')
    for i in range(tries):
        if i:
            restart_microphone(page)
        else:
            mic.locator("button", has_text="Record").click(timeout=30_000)
        t0 = time.monotonic()
        while time.monotonic() - t0 < wait_s:
            if transfers.audio_seen:
                return
            page.wait_for_timeout(250)
    raise SystemExit(f"no microphone chunk reached the server after {tries} presses of its record button")


def restart_microphone(page) -> None:
    """Stop the microphone's recording (when it shows Stop) and press Record again."""
    mic = page.locator('[data-testid="waveform-microphone"]')
    stop = mic.locator("button", has_text="Stop")
    if stop.count():
        stop.first.click(timeout=30_000)
        page.wait_for_timeout(1000)
    mic.locator("button", has_text="Record").first.click(timeout=30_000)


class Transfers:
    """The browser's own timing of each finished upload: webcam frames (a JPEG data URI in the request body) and
    microphone chunks (WAV files to Gradio's upload route). ``ms`` is request start to response end, i.e. the
    transfer plus the server's handling of the request; the browser's JPEG encoding before it is not included."""

    def __init__(self):
        self.on = False
        self.audio_seen = 0
        self.frames: list[tuple[int, float]] = []
        self.audio: list[tuple[int, float]] = []

    def __call__(self, request) -> None:
        if request.method != "POST":
            return
        if "/gradio_api/upload" in request.url:
            self.audio_seen += 1
        if not self.on:
            return
        body = request.post_data_buffer or b""
        t = request.timing
        ms = t["responseEnd"] - t["requestStart"] if t["responseEnd"] > 0 and t["requestStart"] >= 0 else None
        if ms is None:
            return
        if b"data:image" in body[:200]:
            self.frames.append((len(body), ms))
        elif "/gradio_api/upload" in request.url:
            self.audio.append((0, ms))  # a multipart file upload: Playwright does not expose its body


def one_repeat(browser, url: str, seconds: int, warmup_s: float) -> dict:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1250})
    page = ctx.new_page()
    transfers = Transfers()
    page.on("requestfinished", transfers)
    page.goto(url)
    page.evaluate(RECORDER)
    start_streams(page, transfers)
    t0 = time.monotonic()
    seen, t_seen = transfers.audio_seen, t0
    while time.monotonic() - t0 < warmup_s:
        h = parse_health(page.inner_text("#dmd-health"))
        if "capture_to_score" in h and h.get("video") and h.get("audio"):  # both streams arriving and scored
            break
        page.wait_for_timeout(250)  # (not time.sleep: Playwright delivers the request events while it waits)
        if transfers.audio_seen != seen:
            seen, t_seen = transfers.audio_seen, time.monotonic()
        elif time.monotonic() - t_seen > 10.0:  # the microphone stream stopped after it started: press it again
            restart_microphone(page)
            t_seen = time.monotonic()
    else:
        text = page.inner_text("#dmd-health")
        ctx.close()
        raise SystemExit(f"after {warmup_s:.0f} s the health strip shows no capture→score with video and audio "
                         f"arriving: {text!r}")
    first = page.evaluate("() => window.__dmd.t.length")
    samples = []
    transfers.on = True
    t_start = time.monotonic()
    for i in range(seconds):
        page.wait_for_timeout(max(0.0, t_start + i + 1 - time.monotonic()) * 1e3)
        samples.append(parse_health(page.inner_text("#dmd-health")))
    transfers.on = False
    stamps = page.evaluate("() => window.__dmd.t")[first:]
    ctx.close()
    span = (stamps[-1] - stamps[0]) / 1e3 if len(stamps) > 1 else 0.0
    res = {"n": len(samples), "updates_per_s": (len(stamps) - 1) / span if span > 0 else 0.0}
    lat = [s["capture_to_score"] for s in samples if "capture_to_score" in s]
    if lat:
        res.update(p50=statistics.median(lat), p90=percentile(lat, 90), n_lat=len(lat))
    for name, xs in (("frame", transfers.frames), ("audio_chunk", transfers.audio)):
        if xs:
            res[f"{name}_kb"] = statistics.median(n for n, _ in xs) / 1e3  # base64 JSON body for frames
            res[f"{name}_ms"] = statistics.median(ms for _, ms in xs)
            res[f"{name}_n"] = len(xs)
    for key in FIGURES + tuple(n for n, _ in RATES):
        xs = [s[key] for s in samples if key in s]
        if xs:
            res[key] = statistics.median(xs)
    return res


def niced(chromium: str, nice: int, tmp: Path) -> str:
    """``chromium`` itself, or a wrapper that starts it (and so every process it spawns) at nice level ``nice``."""
    if not nice:
        return chromium
    wrapper = tmp / "chromium-niced"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(nice)} {chromium} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


TAIL_STAGES = ("face", "face_wait", "scorer", "language_deferred", "transcript", "acoustic")
"""The per-window stage latencies compared between all windows and the capture-to-score tail (at or above p90):
which stage the slow windows wait for."""


def stage_median(rows: list[dict], stage: str) -> float | None:
    """The median of one per-window latency over the rows that carry it (None when none does)."""
    xs = [r["latency_ms"][stage] for r in rows if stage in r["latency_ms"]]
    return percentile(xs, 50) if xs else None


def window_summary(rows: list[dict]) -> dict:
    """Per-window figures of one page session's JSONL rows, over the windows with the voice present."""
    rows = [r for r in rows if r.get("present", {}).get("acoustic")]
    out: dict = {"windows": len(rows)}
    if not rows:
        return out
    c2s = [r["latency_ms"]["capture_to_score"] for r in rows if "capture_to_score" in r.get("latency_ms", {})]
    delay = [r["latency_ms"]["word_delay"] for r in rows if "word_delay" in r.get("latency_ms", {})]
    if c2s:
        out.update(c2s_n=len(c2s), c2s_p50=percentile(c2s, 50), c2s_p90=percentile(c2s, 90))
        tail = [r for r in rows if r["latency_ms"].get("capture_to_score", -1.0) >= out["c2s_p90"]]
        out["tail_n"] = len(tail)
        medians = {k: (stage_median(rows, k), stage_median(tail, k)) for k in TAIL_STAGES}
        out["tail"] = {k: ab for k, ab in medians.items() if None not in ab}
    if delay:
        out.update(word_delay_n=len(delay), word_delay_p50=percentile(delay, 50), word_delay_p90=percentile(delay, 90))
    out["with_words"] = sum(bool(r["present"].get("language")) for r in rows)
    out["drops"] = rows[-1].get("drops", {})
    return out


def format_window_summary(i: int, w: dict) -> str:
    if not w["windows"]:
        return f"repeat {i}, per window: no window with the microphone on"
    c2s = (f"capture-to-score p50 {w['c2s_p50']:.1f} p90 {w['c2s_p90']:.1f} ms ({w['c2s_n']} windows)"
           if "c2s_p50" in w else "no capture-to-score figure")
    delay = (f"speech to score p50 {w['word_delay_p50']:.0f} p90 {w['word_delay_p90']:.0f} ms "
             f"({w['word_delay_n']} windows with a new word)" if "word_delay_p50" in w else "no new word scored")
    tail = ""
    if w.get("tail"):
        tail = (f"; stage medians, all windows -> the {w['tail_n']} at or above p90: "
                + ", ".join(f"{k} {a:.1f} -> {b:.1f} ms" for k, (a, b) in w["tail"].items()))
    return (f"repeat {i}, per window with the microphone on ({w['windows']} windows): {c2s}; {delay}; "
            f"windows holding words {w['with_words']}; drops at the end {w['drops']}{tail}")


def session_jsonls(tmpdir: Path) -> list[Path]:
    """The page sessions' result JSONLs under a server's temp dir, oldest first (one per repeat's page)."""
    found = [p for p in tmpdir.glob("dmd-live-*/gradio/sessions/*/*") if ".results-" in p.name and ".jsonl" in p.name]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.browser_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", default=str(CLIP), help=f"video with audio fed to the fake devices (default {CLIP.name})")
    p.add_argument("--seconds", type=int, default=60, help="one-second samples of the health strip per repeat (default 60)")
    p.add_argument("--repeats", type=int, default=1, help="fresh page + stream per repeat, same server (default 1)")
    p.add_argument("--warmup", type=float, default=90.0,
                   help="seconds to wait for the first capture→score figure after the streams start (default 90)")
    p.add_argument("--checkpoint", default=None, help="DMD checkpoint for run_demo.py (default: its bundled one)")
    p.add_argument("--chromium", default=CHROMIUM, help=f"Chromium binary (default {CHROMIUM})")
    p.add_argument("--demo-arg", action="append", default=[], metavar="ARG",
                   help="pass ARG to run_demo.py (repeatable; e.g. --demo-arg=--audio-every=0.25)")
    p.add_argument("--per-window", action="store_true",
                   help="also read the page's own JSONL of each repeat per window (see above; keeps the session "
                        "files inside this run's temp dir)")
    p.add_argument("--keep-jsonl", type=Path, default=None, metavar="DIR",
                   help="with --per-window: copy each repeat's JSONL into DIR (repeat-<i>.jsonl) for a closer look")
    p.add_argument("--log", default=None, help="write the server's log here (default: a temp file, shown on failure)")
    p.add_argument("--browser-nice", type=int, default=0, metavar="N",
                   help="run Chromium (all its processes) at this nice level, 0 to 19 (default 0). On a real page the "
                        "browser runs on the user's machine; here it shares the server's cores, and a positive value "
                        "lets the page server and pipeline go first, as they would on their own machine")
    args = p.parse_args(argv)

    if not Path(args.chromium).exists():
        print(f"SKIPPED: {args.chromium} not found (apt-get install chromium)")
        return 0
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("SKIPPED: the playwright Python package is not installed")
        return 0
    clip = Path(args.clip)
    if not clip.is_file():
        raise SystemExit(f"clip {clip} not found")
    if not 0 <= args.browser_nice <= 19:
        p.error("--browser-nice must be 0 to 19")

    with tempfile.TemporaryDirectory(prefix="dmd-browser-") as tmp:
        tmp = Path(tmp)
        y4m, wav = write_fake_devices(clip, tmp)
        log_path = Path(args.log) if args.log else tmp / "server.log"
        port = free_port()
        t_srv = time.monotonic()
        demo_args = args.demo_arg + (["--keep-session-files"] if args.per_window else [])
        proc = start_server(port, args.checkpoint, log_path, demo_args, tmp / "server" if args.per_window else None)
        print(f"run_demo.py {' '.join(args.demo_arg)} on port {port} ({time.monotonic() - t_srv:.1f} s to open); "
              f"Chromium at nice {args.browser_nice}; "
              f"fake devices from {clip.name}; "
              f"{args.seconds} one-second samples per repeat; load average {os.getloadavg()[0]:.2f}")
        chrome_args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                       "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
                       "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={y4m}",
                       f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"]
        results = []
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=niced(args.chromium, args.browser_nice, tmp),
                                             args=chrome_args)
                for r in range(args.repeats):
                    res = one_repeat(browser, f"http://127.0.0.1:{port}", args.seconds, args.warmup)
                    results.append(res)
                    print(format_repeat(r + 1, res) + f"; load average {os.getloadavg()[0]:.2f}")
                browser.close()
        except BaseException:
            print(log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.per_window:  # the server has stopped: its session files are complete
            for i, path in enumerate(session_jsonls(tmp / "server"), 1):
                rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
                if args.keep_jsonl:
                    args.keep_jsonl.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, args.keep_jsonl / f"repeat-{i}.jsonl")
                print(format_window_summary(i, window_summary(rows)))
    if len(results) > 1:
        for key in ("p50", "p90", "updates_per_s") + FIGURES + ("frame_ms", "audio_chunk_ms"):
            xs = [r[key] for r in results if key in r]
            if xs:
                print(f"over {len(xs)} repeats: {key} min {min(xs):.1f} median {statistics.median(xs):.1f}")
    return 0


def format_repeat(i: int, r: dict) -> str:
    lat = (f"capture-to-score p50 {r['p50']:.0f} ms p90 {r['p90']:.0f} ms ({r['n_lat']} of {r['n']} samples)"
           if "p50" in r else f"no capture-to-score figure in {r['n']} samples")
    stages = ", ".join(f"{k} {r[k]:.1f} ms" for k in FIGURES if k in r)
    rates = ", ".join(f"{k} {r[k]:.1f}/s" for k, _ in RATES if k in r)
    up = []
    if "frame_n" in r:
        up.append(f"webcam frame uploads: {r['frame_n']}, median {r['frame_kb']:.0f} kB in {r['frame_ms']:.1f} ms")
    if "audio_chunk_n" in r:
        up.append(f"microphone chunk uploads: {r['audio_chunk_n']}, median {r['audio_chunk_ms']:.1f} ms")
    up = "; ".join(up)
    return (f"repeat {i}: {lat}; page updates {r['updates_per_s']:.2f}/s; stage medians: {stages or '-'}; "
            f"rates: {rates or '-'}; {up or 'no uploads timed'}")


if __name__ == "__main__":
    raise SystemExit(main())
