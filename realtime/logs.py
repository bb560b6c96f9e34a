"""Structured logging: one JSON object per line (``--log-json``), with any ``extra={"data": {...}}`` merged in."""

from __future__ import annotations

import json
import logging
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data = getattr(record, "data", None)
        if isinstance(data, dict):
            doc.update(data)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure(level: str = "INFO", as_json: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one INFO line per Whisper call otherwise


class MetricsLogger:
    """Logs `Pipeline.metrics()` every `every_s` seconds (call `tick()` from a loop that already runs)."""

    def __init__(self, pipeline, every_s: float = 5.0, logger: str = "realtime.metrics"):
        self.pipeline, self.every_s = pipeline, every_s
        self.log = logging.getLogger(logger)
        self._next = time.monotonic() + every_s

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every_s
            self.emit()

    def emit(self) -> None:
        m = self.pipeline.metrics()
        stages = ", ".join(f"{n} {s['status']} {s['mean_ms']}ms" for n, s in m["stages"].items())
        drops = sum(q["drops"] for q in m["queues"].values())
        self.log.info("results %d; %s; drops %d", m["results"], stages, drops, extra={"data": {"metrics": m}})
