"""How short a hop real-time replay keeps up with: the figure behind `realtime.checks.HOP_MIN_S`.

    python -m benchmarks.hop_limit [--hops 0.25 0.1 0.05 0.025] [--clip assets/WDA_KatieHill_000.mp4]

For each hop, replays the clip at real-time pace through the full pipeline (bundled checkpoint, every extractor) and
prints the wall time from the first packet to the last score, how far the last score trailed real time, and the
largest lag seen (`Pipeline.lag_s`). A hop the machine keeps up with ends about when the media does.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.hop_limit", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hops", type=float, nargs="+", default=[0.25, 0.1, 0.05, 0.025],
                    help="hops to try, in seconds (default 0.25 0.1 0.05 0.025)")
    ap.add_argument("--clip", default=str(ROOT / "assets" / "WDA_KatieHill_000.mp4"),
                    help="the clip replayed at real-time pace (default the bundled sample)")
    ap.add_argument("--checkpoint", default=str(ROOT / "assets" / "dmd_live"),
                    help="DMD checkpoint directory (default assets/dmd_live)")
    args = ap.parse_args(argv)

    from realtime.config import checkpoint_features
    from realtime.pipeline import Pipeline, PipelineConfig
    from realtime.scorer import Scorer, ScorerConfig
    from realtime.sources.file_replay import FileReplaySource, ReplayConfig
    from realtime.window import WindowConfig

    base = checkpoint_features(PipelineConfig(scorer=ScorerConfig(checkpoint=args.checkpoint, device="cpu")))
    scorer = Scorer(base.scorer, live_spec=base.feature_spec()).start()
    for hop in args.hops:
        cfg = replace(base, window=WindowConfig(hop_s=hop))
        source = FileReplaySource(ReplayConfig(args.clip, fast=False))
        lags = []
        p = Pipeline(cfg, source, [], scorer=scorer)
        p.start()
        t0 = time.monotonic()
        while not p.wait(0.1):
            lag = p.lag_s()
            if lag is not None:
                lags.append(lag)
        wall = time.monotonic() - t0
        p.stop()
        print(f"hop {hop:g} s ({1 / hop:g} windows/s): {p.count} windows, wall {wall:.2f} s for "
              f"{source.duration:.2f} s of media, max lag {max(lags, default=0.0):.2f} s", flush=True)


if __name__ == "__main__":
    main()
