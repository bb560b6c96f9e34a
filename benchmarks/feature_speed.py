"""Benchmark of the feature extractors on this machine's CPU (not a test: it prints figures).

    python -m benchmarks.feature_speed [--repeats N] [--clip PATH [PATH ...]]

Several clips are joined with 0.5 s of silence between them (a longer stream, so the ASR buffer
reaches its trim length).

Prints, as min and median over repeats (min is the least disturbed by other load; see the timeit docs):

* face: frames per second of `FaceProcessor` at 640x480 (astronaut face padded into a webcam-sized
  frame, shifted 2 px per frame), VIDEO mode, warm;
* acoustic: real-time factor (compute / audio duration) of `AcousticProcessor` fed 20 ms chunks, with eGeMAPS alone
  and with Whisper encoder states (the bundled checkpoint's stream), their repeats interleaved so that other load
  falls on both alike;
* ASR offline: real-time factor of one tiny.en int8 ``transcribe`` call on the whole clip;
* ASR streaming: compute / audio duration of `TranscriptProcessor` fed 20 ms chunks, and the word
  latency: for each committed word, (media time of the audio end when it was committed - word end) +
  the wall time of the call that committed it, i.e. its delay if audio arrived in real time;
* text: latency of `TextEncoder.encode` for one window of words (the clip's first 4 s of words).

Models are loaded and warmed before any timing starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "media" / "WDA_KatieHill_000.mp4"


def _stats(xs: list[float]) -> str:
    return f"min {min(xs):.4f}  median {statistics.median(xs):.4f}"


def bench_face(repeats: int, n_frames: int = 100) -> list[float]:
    from skimage import data

    from realtime.features.face import FaceConfig, FaceProcessor

    face = np.ascontiguousarray(data.astronaut())
    import cv2

    face = cv2.resize(face, (480, 480))
    frames = []
    for i in range(n_frames):
        f = np.zeros((480, 640, 3), np.uint8)
        dx = 80 + 2 * (i % 5) - 4
        f[:, dx : dx + 480] = face
        frames.append(f)
    fps = []
    with FaceProcessor(FaceConfig(sample_fps=0)) as proc:
        for i in range(10):
            proc.push(i / 30, frames[i])
        t_media = 10 / 30
        for _ in range(repeats):
            t0 = time.perf_counter()
            for f in frames:
                t_media += 1 / 30
                assert proc.push(t_media, f)[0].present
            fps.append(n_frames / (time.perf_counter() - t0))
    return fps


def bench_acoustic(audio: np.ndarray, repeats: int) -> dict[str, list[float]]:
    """{"egemaps": RTFs, "egemaps+whisper": RTFs}, one of each per repeat."""
    from realtime.features.acoustic import AcousticConfig, AcousticProcessor
    from realtime.features.whisper_states import WhisperStatesConfig

    procs = {"egemaps": AcousticProcessor().start(),
             "egemaps+whisper": AcousticProcessor(AcousticConfig(whisper=WhisperStatesConfig())).start()}
    for proc in procs.values():
        proc.process(audio[:32000])
    dur = len(audio) / 16000
    rtf = {k: [] for k in procs}
    for _ in range(repeats):
        for name, proc in procs.items():
            proc.reset()
            t0 = time.perf_counter()
            for i in range(0, len(audio), 320):
                proc.push(audio[i : i + 320])
            proc.flush()
            rtf[name].append((time.perf_counter() - t0) / dur)
    return rtf


def bench_asr(audio: np.ndarray, repeats: int):
    from realtime.features.transcript import TranscriptConfig, TranscriptProcessor, WhisperASR

    cfg = TranscriptConfig()
    asr = WhisperASR(cfg)
    asr.transcribe(audio[:16000])
    dur = len(audio) / 16000
    offline = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        words = asr.transcribe(audio)
        offline.append((time.perf_counter() - t0) / dur)
    stream_rtf, latencies, n_words = [], [], 0
    for _ in range(repeats):
        proc = TranscriptProcessor(cfg, asr=asr)
        busy, lat, committed = 0.0, [], 0
        for i in range(0, len(audio), 320):
            t0 = time.perf_counter()
            out = proc.push(audio[i : i + 320])
            dt = time.perf_counter() - t0
            busy += dt
            committed += len(out)
            lat.extend(proc.buffer_end - w.end + dt for w in out)
        t0 = time.perf_counter()
        tail = proc.flush()
        busy += time.perf_counter() - t0
        stream_rtf.append(busy / dur)
        latencies.append(lat)
        n_words = (committed + len(tail), len(tail))
    return offline, stream_rtf, latencies, n_words, words, cfg


def bench_text(words, repeats: int) -> list[float]:
    from realtime.features.text import TextEncoder

    enc = TextEncoder().start()
    window = [w for w in words if w.end <= 4.0] or words
    enc.encode(window)
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        enc.encode(window)
        ms.append((time.perf_counter() - t0) * 1000)
    return ms, len(window), len(enc.encode(window))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.feature_speed", description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (default %(default)s)")
    ap.add_argument("--clip", type=Path, nargs="+", default=[DEFAULT_CLIP],
                    help="speech clip(s) for acoustic/ASR/text; several are joined with 0.5 s of silence")
    args = ap.parse_args(argv)
    missing = [str(c) for c in args.clip if not c.is_file()]
    if missing:
        print(f"clip not found: {', '.join(missing)} (pass --clip)", file=sys.stderr)
        return 2
    import os

    from realtime.features.media import decode_audio

    gap = np.zeros(8000, np.float32)
    audio = np.concatenate([part for c in args.clip for part in (decode_audio(c), gap)][:-1])
    names = " + ".join(c.name for c in args.clip)
    print(f"clip: {names}, {len(audio) / 16000:.2f} s; cpus: {os.cpu_count()}; repeats: {args.repeats}")

    fps = bench_face(args.repeats)
    print(f"face 640x480 VIDEO mode   frames/s: best {max(fps):.1f}  median {statistics.median(fps):.1f}")
    for name, rtf in bench_acoustic(audio, args.repeats).items():
        print(f"acoustic {name} stream   RTF: {_stats(rtf)}")
    offline, stream_rtf, latencies, n_words, words, cfg = bench_asr(audio, args.repeats)
    print(f"ASR tiny.en int8 offline  RTF: {_stats(offline)}")
    print(f"ASR streaming (chunk {cfg.min_chunk_s} s) compute/audio: {_stats(stream_rtf)}")
    worst = [max(lat) for lat in latencies]
    med = [statistics.median(lat) for lat in latencies]
    print(
        f"ASR word latency (s): worst word per run {_stats(worst)}; median word per run {_stats(med)}; "
        f"{n_words[0]} words, {n_words[1]} of them committed only at flush"
    )
    ms, n_w, n_t = bench_text(words, args.repeats)
    print(f"text MiniLM per window ({n_w} words, {n_t} tokens) ms: {_stats(ms)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
