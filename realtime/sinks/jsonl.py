"""Writes one JSON object per score result, one per line, into a file moved into place at the end
(`realtime.sinks.atomic`: the target is always complete, and a run that fails to start leaves it as it was)."""

from __future__ import annotations

import json

from .atomic import AtomicLines, clean_json


class JsonlSink(AtomicLines):
    """Raises OSError (or IsADirectoryError) at construction when the target cannot be written."""

    def __call__(self, result) -> None:
        self._write(json.dumps(clean_json(result.to_json_dict()), separators=(",", ":"), allow_nan=False) + "\n")
