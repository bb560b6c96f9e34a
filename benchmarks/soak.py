"""Soak: many back-to-back replays through the page's session API, printing memory, threads and open files.

    python -m benchmarks.soak [--replays 50] [--clip assets/WDA_KatieHill_000.mp4] [--checkpoint assets/dmd_live]
    python -m benchmarks.soak --concurrent 4        # also: 4 sessions replaying at once, each with its own results
    python -m benchmarks.soak --replays 0 --live-minutes 30   # a live session fed in real time for 30 minutes

What a page server does for one tab that presses "Play" again and again: `ui.session.Session.start_replay` in fast
mode (the real pipeline, every extractor, the shared scorer), waiting for the end of the file each time. After each
replay it prints the process's resident memory (VmRSS), its threads (/proc/self/task) and open file descriptors
(/proc/self/fd); at the end the RSS growth from replay 5 to the last, and the figures after the tab closes. No
garbage collection is forced: what is measured is what a server would see.

``--live-minutes M`` feeds one session's live (browser) path for M minutes, as the page's webcam and microphone
callbacks do: the clip's frames (at ``--live-fps``) and 0.1 s microphone chunks are pushed in real time, looped, while
the page's 5 Hz poll is imitated with ``Session.advance``. Once a minute it prints RSS, threads, open files, the
windows scored and the session's held rows and transcript words, counting minutes from the first scored window
(the models load first); at the end the RSS growth after the first minute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def replay(session, clip: str, timeout: float = 300.0) -> tuple[float, int]:
    t0 = time.monotonic()
    session.start_replay(clip, fast=True)
    deadline = t0 + timeout
    while not session.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    if not session.finished:
        raise RuntimeError(f"replay did not finish in {timeout:g} s: {session.error or session.model_error}")
    if session.error or session.model_error:
        raise RuntimeError(session.error or session.model_error)
    session.advance()
    return time.monotonic() - t0, session.received


def feed_live(session, clip: str, minutes: float, fps: float) -> list[tuple]:
    """Push the clip (looped) into the session's browser path in real time, for ``minutes`` after the first scored
    window (the models load first); sample once a minute from that window on."""
    from realtime.features.media import SAMPLE_RATE, decode_audio, iter_video_frames

    frames, last = [], -1.0
    for t, rgb in iter_video_frames(clip):
        if t - last >= 1.0 / fps - 1e-6:
            frames.append(rgb[::2, ::2].copy())  # about the size a browser webcam stream sends (320 px wide)
            last = t
    audio = (np.clip(decode_audio(clip), -1, 1) * 32767).astype(np.int16)
    loop_s = len(audio) / SAMPLE_RATE
    chunk = SAMPLE_RATE // 10
    rows, t0 = [], time.monotonic()
    next_frame = next_chunk = next_poll = 0.0  # time (s since t0) of the next push of each kind
    first = None  # time of the first scored window
    while True:
        now = time.monotonic() - t0
        if first is None and session.mode == "browser" and session.received:  # counted from this stream on
            first = now
            print(f"first window scored after {first:.1f} s", flush=True)
        if first is not None and now >= first + 60.0 * (len(rows) + 1):
            rows.append((len(rows) + 1, rss_mb(), threads(), open_files(), session.received,
                         len(session.view.summary_rows), len(session.view.transcript)))
            r = rows[-1]
            print(f"minute {r[0]:3d}: rss {r[1]:.1f} MB, threads {r[2]}, open files {r[3]}, windows {r[4]}, "
                  f"summary rows held {r[5]}, transcript words held {r[6]}", flush=True)
        if first is not None and now >= first + minutes * 60.0:
            break
        if now >= next_frame:
            session.push_frame(frames[int(next_frame * fps) % len(frames)])
            next_frame += 1.0 / fps
        if now >= next_chunk:
            i = int(round((next_chunk % loop_s) * SAMPLE_RATE))
            part = audio[i:i + chunk]
            if len(part) < chunk:
                part = np.concatenate([part, audio[:chunk - len(part)]])
            session.push_audio((SAMPLE_RATE, part))
            next_chunk += 0.1
        if now >= next_poll:
            session.advance()
            next_poll += 0.2
        time.sleep(max(0.0, min(next_frame, next_chunk, next_poll) - (time.monotonic() - t0)))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replays", type=int, default=50,
                    help="back-to-back fast replays of --clip in one session (default 50; 0 skips them)")
    ap.add_argument("--clip", default=str(ROOT / "assets" / "WDA_KatieHill_000.mp4"),
                    help="the clip every replay and the live soak play (default the bundled sample)")
    ap.add_argument("--checkpoint", default=str(ROOT / "assets" / "dmd_live"),
                    help="DMD checkpoint directory (default assets/dmd_live)")
    ap.add_argument("--concurrent", type=int, default=0,
                    help="then run this many sessions replaying at once (default 0: none)")
    ap.add_argument("--live-minutes", type=float, default=0.0,
                    help="then feed one live (browser-path) session in real time for this many minutes (default 0)")
    ap.add_argument("--live-fps", type=float, default=15.0,
                    help="webcam frames per second pushed in the live soak (default 15)")
    ap.add_argument("--memory", choices=("flat", "fast"), default="flat",
                    help="allocator policy, as run_demo.py --memory (default flat, the page's default)")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from realtime.memory import benchmark_policy

    print(benchmark_policy(args.memory))  # as run_demo.py does first thing: measure what the page server does

    from realtime.config import PipelineConfig, StreamSettings
    from realtime.scorer import ScorerConfig
    from realtime.ui.session import Session

    base = PipelineConfig(scorer=ScorerConfig(checkpoint=args.checkpoint, device="cpu"))
    settings = StreamSettings(checkpoint=args.checkpoint, device="cpu")
    print(f"start: rss {rss_mb():.1f} MB, threads {threads()}, open files {open_files()}", flush=True)
    s = Session(base, settings, key="soak")
    rows = []
    if args.replays < 0 or args.live_minutes < 0:
        ap.error("--replays and --live-minutes must be at least 0")
    for i in range(1, args.replays + 1):
        wall, n = replay(s, args.clip)
        rows.append((i, rss_mb(), threads(), open_files()))
        print(f"replay {i:3d}: {n} windows in {wall:.2f} s; rss {rows[-1][1]:.1f} MB, threads {rows[-1][2]}, "
              f"open files {rows[-1][3]}", flush=True)
    if args.live_minutes:
        live = feed_live(s, args.clip, args.live_minutes, args.live_fps)
        if len(live) >= 2:
            a, b = live[0], live[-1]
            print(f"live rss growth minute {a[0]} -> {b[0]}: {a[1]:.1f} -> {b[1]:.1f} MB "
                  f"({100 * (b[1] - a[1]) / a[1]:+.2f} %); threads {a[2]} -> {b[2]}; open files {a[3]} -> {b[3]}",
                  flush=True)
    s.close()
    time.sleep(1.0)  # the closed session's threads end within their join timeouts
    print(f"after close: rss {rss_mb():.1f} MB, threads {threads()}, open files {open_files()}", flush=True)
    for first in (5, 10):
        if len(rows) >= first:
            a, b = rows[first - 1], rows[-1]
            print(f"rss growth replay {first} -> {b[0]}: {a[1]:.1f} -> {b[1]:.1f} MB ({100 * (b[1] - a[1]) / a[1]:+.2f} %); "
                  f"threads {a[2]} -> {b[2]}; open files {a[3]} -> {b[3]}", flush=True)

    if args.concurrent:
        sessions = [Session(base, settings, key=f"tab{k}") for k in range(args.concurrent)]
        out: dict = {}

        def go(k, sess):
            try:
                out[k] = replay(sess, args.clip)
            except Exception as e:  # reported below
                out[k] = e

        t0 = time.monotonic()
        ths = [threading.Thread(target=go, args=(k, sess)) for k, sess in enumerate(sessions)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        total = time.monotonic() - t0
        for k, sess in enumerate(sessions):
            res = out[k]
            if isinstance(res, Exception):
                print(f"tab {k}: failed: {res}")
                continue
            jsonl = next(p for p in sess.downloads if p.endswith(".jsonl"))
            lat = sorted(json.loads(line)["latency_ms"].get("capture_to_score", float("nan"))
                         for line in Path(jsonl).read_text().splitlines())
            print(f"tab {k}: {res[1]} windows in {res[0]:.2f} s, own results "
                  f"{sorted(Path(p).name for p in sess.downloads)}, capture-to-score ms p50 "
                  f"{statistics.median(lat):.1f} max {lat[-1]:.1f}", flush=True)
        print(f"{args.concurrent} concurrent replays: {total:.2f} s wall; rss {rss_mb():.1f} MB, threads {threads()}",
              flush=True)
        for sess in sessions:
            sess.close()


if __name__ == "__main__":
    main()
