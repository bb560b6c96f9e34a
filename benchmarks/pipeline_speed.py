"""Pipeline benchmark.

    python -m benchmarks.pipeline_speed [--clip FILE] [--checkpoint DIR] [--streams 1,16,64,256] [--device cpu|cuda]
                                      [--engine traced|infer|forward] [--concurrent 64,200] [--workers N]

Prints:
  1. fast replay: wall time of a --fast replay of the clip (from the clock start, models already loaded) against the
     clip's length;
  2. real-time replay with live policies: capture-to-score latency (the newest frame or audio chunk in a window to
     the score that includes it) and the scorer's own latency, min / p50 / p99 over every window;
  3. batched scoring: windows per second when N streams' windows are scored together in one pass (the clip's
     windows replicated N times), min / median over repeats;
  4. concurrent streams: N threads, each submitting one window every hop (4 Hz) to one `BatchingScorer` for a few
     seconds: windows scored per second, submit-to-result latency p50/p99, the mean batch the scorer formed, and
     whether it kept up (scored every window the streams' schedules held before the stop, but the one each may have
     in flight, with p99 latency under the hop). ``--workers N`` puts N scorer threads, each with its own copy of
     the model and one torch thread, behind the one batching queue.

Memory: like `benchmarks.soak`, it first sets the allocator policy `run_demo.py --memory` sets (`realtime.memory`;
default "flat", the page's default), so its figures are the page server's; ``--memory default`` leaves glibc's own
policy. Under "flat" every tensor of 256 KB or more is mapped afresh and faults its pages in, so batches of many
streams score markedly slower (docs/speed.md 3d).
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT.parent / "shared" / "data" / "media" / "WDA_KatieHill_000.mp4"


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", default=str(DEFAULT_CLIP), help="video to replay (default: the shared sample clip)")
    p.add_argument("--checkpoint", default=str(ROOT / "assets" / "dmd_live"), help="DMD checkpoint directory")
    p.add_argument("--streams", default="1,16,64,256", help="concurrent stream counts for batched scoring")
    p.add_argument("--device", default="auto", help="scoring device (auto, cpu, cuda)")
    p.add_argument("--engine", default="traced", choices=("traced", "infer", "forward"),
                   help="scorer engine (ScorerConfig.engine; default traced; forward is the training forward)")
    p.add_argument("--repeats", type=int, default=5, help="repeats of the batched-scoring measurement")
    p.add_argument("--skip-realtime", action="store_true", help="skip the real-time latency run")
    p.add_argument("--concurrent", default="16,64,256", help="stream counts for the concurrent 4 Hz run")
    from realtime.scorer import ScorerConfig  # torch-free at import

    p.add_argument("--torch-threads", type=int, default=ScorerConfig.torch_threads,
                   help="torch threads of the scorer (ScorerConfig.torch_threads; default %(default)s, the live "
                        "page's, where extraction shares the cores; a scoring-only server can give it every core)")
    p.add_argument("--seconds", type=float, default=5.0, help="length of each concurrent run (s)")
    p.add_argument("--workers", type=int, default=1,
                   help="scorer workers behind the batching scorer in the concurrent run (each its own copy of the "
                        "model, one torch thread each; default 1)")
    p.add_argument("--memory", choices=("flat", "fast", "default"), default="flat",
                   help="allocator policy, as run_demo.py --memory (default flat, the page's default); 'default' "
                        "leaves glibc's own")
    args = p.parse_args(argv)
    from realtime.memory import benchmark_policy

    print(benchmark_policy(args.memory))

    import logging
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    from realtime.config import PipelineConfig, checkpoint_features
    from realtime.pipeline import Pipeline
    from realtime.scorer import Scorer, ScorerConfig
    from realtime.sources.file_replay import FileReplaySource, ReplayConfig
    from realtime.window import WindowConfig

    scfg = ScorerConfig(checkpoint=args.checkpoint, device=args.device, engine=args.engine,
                        torch_threads=args.torch_threads,
                        max_batch=max(int(s) for s in args.streams.split(",")))
    base = checkpoint_features(PipelineConfig(scorer=scfg))  # the acoustic stream the checkpoint was trained on
    scorer = Scorer(scfg, live_spec=base.feature_spec()).start()
    snaps = []
    plain_score = scorer.score

    def recording_score(batch):
        snaps.extend(batch)
        return plain_score(batch)

    # 1. fast replay (models loaded before the clock starts, as a user's second run would have them)
    src = FileReplaySource(ReplayConfig(path=args.clip, fast=True))
    pipe = Pipeline(base, src, scorer=scorer)
    scorer.score = recording_score
    pipe.start()
    t0 = time.perf_counter()
    pipe.wait()
    wall = time.perf_counter() - t0
    pipe.stop()
    scorer.score = plain_score
    print(f"device: {scorer.device}; engine {args.engine}; clip {Path(args.clip).name}: {src.duration:.2f} s, {pipe.count} windows")
    print(f"fast replay: {wall:.3f} s wall for {src.duration:.2f} s of media (ratio {wall / src.duration:.3f})")

    # 2. real-time replay with live policies
    if not args.skip_realtime:
        src = FileReplaySource(ReplayConfig(path=args.clip, fast=False))
        results = []
        cfg = replace(base, window=WindowConfig(wait_for_all=False), live=True)
        pipe = Pipeline(cfg, src, [results.append], scorer=scorer).start()
        pipe.wait()
        pipe.stop()
        cap = [r.latency_ms["capture_to_score"] for r in results if "capture_to_score" in r.latency_ms]
        sco = [r.latency_ms["scorer"] for r in results]
        drops = results[-1].drops if results else {}
        print(f"real-time replay ({len(results)} windows): capture-to-score ms min {min(cap):.3f}  "
              f"p50 {pct(cap, 50):.3f}  p99 {pct(cap, 99):.3f}")
        print(f"scorer latency per window ms: min {min(sco):.3f}  p50 {pct(sco, 50):.3f}  p99 {pct(sco, 99):.3f}; "
              f"drops {drops}")

    # 3. batched scoring of N concurrent streams
    per_stream = snaps[len(snaps) // 2 :] or snaps
    for n in (int(s) for s in args.streams.split(",")):
        batch = [per_stream[i % len(per_stream)] for i in range(n)]
        scorer.score(batch)  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            scorer.score(batch)
            times.append(time.perf_counter() - t)
        best, med = min(times), statistics.median(times)
        print(f"{n:5d} streams per batch: {med * 1e3:9.3f} ms median ({best * 1e3:.3f} min) -> "
              f"{n / med:10.1f} windows/s; {n / med / 4:9.1f} streams at 4 Hz")

    # 4. concurrent paced streams through one batching scorer
    import threading

    from realtime.batching import BatchingScorer

    extra = [Scorer(scorer.config, live_spec=None).start() for _ in range(max(0, args.workers - 1))]
    batching = BatchingScorer([scorer, *extra])
    if extra:
        print(f"concurrent runs: {len(extra) + 1} scorer workers")
    for n in (int(s) for s in args.concurrent.split(",")):
        lat: list[tuple[float, float]] = []  # (submitted at, seconds to its result)
        stop = threading.Event()
        lock = threading.Lock()

        starts: dict[int, float] = {}

        def stream(k: int) -> None:
            nxt = time.perf_counter() + (k % 25) * 0.01  # spread the streams' phases over the hop
            starts[k] = nxt
            i = 0
            while not stop.is_set():
                delay = nxt - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t = time.perf_counter()
                batching.score([per_stream[(k + i) % len(per_stream)]])
                with lock:
                    lat.append((t, time.perf_counter() - t))
                i += 1
                nxt += 0.25

        b0, w0 = batching.batches, batching.windows
        threads = [threading.Thread(target=stream, args=(k,), daemon=True) for k in range(n)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        t_stop = time.perf_counter()
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        done = batching.windows - w0
        mean_batch = done / max(1, batching.batches - b0)
        ms = [x * 1e3 for _, x in lat]
        # the windows the streams' schedules hold before the stop (phases included): a scorer that keeps up scores
        # all of them, less at most the one each stream has in flight at the stop
        scheduled = sum(int((t_stop - s0) // 0.25) + 1 for s0 in starts.values() if s0 <= t_stop)
        in_time = sum(t <= t_stop for t, _ in lat)  # not the ones a stream woke up for after the stop
        kept_up = in_time >= scheduled - n and pct(ms, 99) < 250.0
        print(f"{n:5d} concurrent streams at 4 Hz: {done / elapsed:9.1f} windows/s scored (needed {4 * n}); "
              f"latency ms p50 {pct(ms, 50):.3f} p99 {pct(ms, 99):.3f}; mean batch {mean_batch:.1f}; "
              f"{in_time} of the {scheduled} windows scheduled before the stop submitted: "
              f"{'kept up' if kept_up else 'fell behind'}")
    batching.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
