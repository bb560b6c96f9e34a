"""The browser path's pipeline without a browser: where live capture-to-score goes when Chromium is not on the cores.

    python -m benchmarks.live_latency [--clip assets/WDA_KatieHill_000.mp4] [--seconds 45] [--checkpoint DIR]
                                      [--busy-loops N] [--words-first]

The page's `BrowserSource` is fed by two threads at the page's own rates (webcam frames every 0.1 s at 320x240, the
`UIConfig.webcam_size`; microphone chunks of 0.5 s, `UIConfig.audio_every_s`), both from the clip, looped; the real
stages (MediaPipe, openSMILE, Whisper), the language step and the scorer run with the live policies, as a page's
stream does. Prints, over the windows after the first 5 s: capture-to-score p50 / p90, the stage medians (face,
face_wait: capture to the face stage starting on the frame, language: MiniLM on the window's words, scorer) and how
many windows had to encode their words. Set beside `benchmarks.browser_latency` (the same path with Chromium and the
page server on the same cores), the difference is what the browser costs on this host.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clip_media(clip: Path, size: tuple[int, int]):
    """The clip's frames at about 10 fps (every n-th, resized) and its audio as 16 kHz int16."""
    import av
    import numpy as np

    from realtime.features.media import decode_audio

    with av.open(str(clip)) as c:
        rate = float(c.streams.video[0].average_rate or 25)
        step = max(1, round(rate / 10))
        frames = [np.asarray(f.to_image().resize(size)) for k, f in enumerate(c.decode(video=0)) if k % step == 0]
    audio = (np.clip(decode_audio(str(clip), 16000), -1, 32767 / 32768) * 32767).astype(np.int16)
    return frames, audio


def feed(src, frames, audio, chunk_s: float, stop: threading.Event) -> list[threading.Thread]:
    def video():
        k = 0
        while not stop.wait(0.1):
            src.push_frame(frames[k % len(frames)])
            k += 1

    def microphone():
        n, k = int(16000 * chunk_s), 0
        while not stop.wait(chunk_s):
            i = (k * n) % max(1, len(audio) - n)
            src.push_audio(16000, audio[i:i + n])
            k += 1

    threads = [threading.Thread(target=f, daemon=True) for f in (video, microphone)]
    for t in threads:
        t.start()
    return threads


def quantile(xs, q: float) -> float:
    """The q-quantile (0..1) of a non-empty collection, by the nearest index (the figures this prints)."""
    s = sorted(xs)
    return s[round(q * (len(s) - 1))]


def words_delay(rows) -> str:
    """p50 / p90 of `latency_ms.word_delay` over the windows that brought new words."""
    d = [r.latency_ms["word_delay"] for r in rows if "word_delay" in r.latency_ms]
    return f"p50 {statistics.median(d):.0f} ms, p90 {quantile(d, 0.9):.0f} ms over {len(d)} windows" if d else "no words"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.live_latency", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--clip", default=str(ROOT / "assets" / "WDA_KatieHill_000.mp4"), help="video with audio")
    p.add_argument("--seconds", type=float, default=45.0, help="how long the stream runs (s, default 45)")
    p.add_argument("--checkpoint", default=None, help="DMD checkpoint (default: the bundled one)")
    p.add_argument("--busy-loops", type=int, default=0,
                   help="run this many busy-loop processes beside the pipeline (default 0): the CPU a browser and "
                        "the page server take on the same cores, without their Python in this process")
    p.add_argument("--whisper-threads", type=int, default=None,
                   help="CTranslate2 threads of the transcript stage's Whisper (default: TranscriptConfig's)")
    p.add_argument("--words-first", action="store_true",
                   help="encode a window's new words before scoring it, as replay does (before round 6, live did "
                        "too); default: the live policy, words encoded after the score (PipelineConfig.defer_words)")
    args = p.parse_args(argv)
    if args.seconds <= 10:
        p.error("--seconds must be above 10 (the first 5 s are left out)")
    from realtime.config import PipelineConfig, StreamSettings, UIConfig, stream_config
    from realtime.paths import DEFAULT_CHECKPOINT
    from realtime.pipeline import Pipeline
    from realtime.sources.live import BrowserSource

    frames, audio = clip_media(Path(args.clip), tuple(UIConfig.webcam_size))
    cfg = stream_config(PipelineConfig(), StreamSettings(checkpoint=args.checkpoint or str(DEFAULT_CHECKPOINT)),
                        live=True)
    if args.words_first:
        cfg = replace(cfg, defer_words=False)
    if args.whisper_threads is not None:
        cfg = replace(cfg, transcript=replace(cfg.transcript, cpu_threads=args.whisper_threads))
    src, results, stop = BrowserSource(), [], threading.Event()
    pipe = Pipeline(cfg, src, [results.append]).start()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(max(0, args.busy_loops))]
    threads = []
    try:
        threads = feed(src, frames, audio, UIConfig.audio_every_s, stop)
        time.sleep(args.seconds)
    finally:
        for b in busy:
            b.kill()
        stop.set()
    for t in threads:
        t.join(2)
    pipe.stop()
    rows = [r for r in results if r.t > 5.0]
    cap = sorted(r.latency_ms["capture_to_score"] for r in rows if "capture_to_score" in r.latency_ms)
    if not cap:
        print("no window was scored with a capture time", file=sys.stderr)
        return 1

    def med(key: str) -> float:
        return statistics.median(r.latency_ms.get(key, 0.0) for r in rows)

    encoded = sum(r.latency_ms.get("language", 0.0) > 1.0 for r in rows)
    print(f"{len(rows)} windows after the first 5 s ({'words first' if args.words_first else 'words deferred'}"
          f"{f', {args.busy_loops} busy loops' if args.busy_loops > 0 else ''}, Whisper on "
          f"{cfg.transcript.cpu_threads} thread(s)): "
          f"capture-to-score p50 {statistics.median(cap):.1f} ms, "
          f"p90 {quantile(cap, 0.9):.1f} ms; medians: face {med('face'):.1f} ms, face_wait "
          f"{med('face_wait'):.1f} ms, language {med('language'):.1f} ms, scorer {med('scorer'):.1f} ms, "
          f"transcript p90 {quantile([r.latency_ms.get('transcript', 0.0) for r in rows], 0.9):.1f} ms; "
          f"word_delay (speech to score) {words_delay(rows)}; "
          f"{encoded} of {len(rows)} windows encoded their words before scoring (language > 1 ms)"
          + (f"; {pipe.language.behind} windows scored with the previous words while {pipe.language.caught_up} "
             f"word lists were encoded after a score (median {med('language_deferred'):.1f} ms)"
             if pipe.language.defer else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
