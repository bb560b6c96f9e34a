"""Writes one JSON object per score result, one per line, flushed after each line so that an interrupted run
still leaves a file whose every line is complete JSON."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path


def _clean(x):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


class JsonlSink:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self.written = 0

    def __call__(self, result) -> None:
        line = json.dumps(_clean(result.to_json_dict()), separators=(",", ":"), allow_nan=False)
        with self._lock:
            if self._f.closed:
                return
            self._f.write(line + "\n")
            self._f.flush()
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if not self._f.closed:
                self._f.close()
