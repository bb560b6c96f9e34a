"""Compare two score JSONL files line by line, byte for byte, after dropping only the wall-clock fields.

    python scripts/compare_jsonl.py before.jsonl after.jsonl

A ``--fast`` replay is deterministic in media time (docs: README "Reproducible replay"), so two runs of the same
file give the same JSONL except for the fields that measure the wall clock. Dropped, and nothing else:

* ``latency_ms`` (the whole object: ``scorer``, ``capture_to_score`` and each stage's last compute time, ms of wall
  clock; two runs of the bundled sample differ in every one of them).

Every other field (scores, heads, edges, presence, words, drops, readout, agreement, baseline, key order, number
formatting) must match byte for byte. Exit status 0 when identical, 1 with the first differences otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

WALL_CLOCK_FIELDS = ("latency_ms",)


def canonical(line: str) -> str:
    """The line re-serialised exactly as the sink writes it, without the wall-clock fields (key order kept)."""
    d = json.loads(line)
    for k in WALL_CLOCK_FIELDS:
        d.pop(k, None)
    return json.dumps(d, separators=(",", ":"), allow_nan=False)


def differences(a_path: str, b_path: str, limit: int = 5) -> list[str]:
    a = [line for line in open(a_path, encoding="utf-8").read().splitlines() if line.strip()]
    b = [line for line in open(b_path, encoding="utf-8").read().splitlines() if line.strip()]
    out = []
    if len(a) != len(b):
        out.append(f"line counts differ: {len(a)} vs {len(b)}")
    for i, (x, y) in enumerate(zip(a, b), 1):
        cx, cy = canonical(x), canonical(y)
        if cx != cy:
            k = next((j for j, (p, q) in enumerate(zip(cx, cy)) if p != q), min(len(cx), len(cy)))
            out.append(f"line {i} differs at character {k}: {cx[max(0, k - 40):k + 40]!r} vs {cy[max(0, k - 40):k + 40]!r}")
            if len(out) >= limit:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/compare_jsonl.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="the first score JSONL (e.g. before a change)")
    p.add_argument("b", help="the second score JSONL (e.g. after it)")
    args = p.parse_args(argv)
    diffs = differences(args.a, args.b)
    n = sum(1 for line in open(args.a, encoding="utf-8") if line.strip())
    if diffs:
        print("\n".join(diffs))
        return 1
    print(f"identical: {n} lines (ignoring {', '.join(WALL_CLOCK_FIELDS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
