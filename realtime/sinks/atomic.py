"""A text file written beside its target and moved into place when the run ends (the sinks' shared base).

Lines go to a temporary file next to the target (same directory, so the final move is an atomic rename on the same
file system), flushed after each line; `commit()` moves it into place. So an existing file at the target is never
truncated by a run that fails to start (`discard()` removes the temporary file instead), and the file at the target
is always complete: the old one, or every line of the new one.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from pathlib import Path


def clean_json(x):
    """JSON has no NaN/inf: they become None (null), in nested dicts and lists too."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: clean_json(v) for k, v in x.items()}
    if isinstance(x, list):
        return [clean_json(v) for v in x]
    return x


class AtomicLines:
    """Raises OSError (or IsADirectoryError) at construction when the target cannot be written."""

    def __init__(self, path: str | Path, newline: str | None = None):
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: is a directory")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        self.tmp_path = Path(tmp)
        self._f = os.fdopen(fd, "w", encoding="utf-8", newline=newline)
        self._lock = threading.Lock()
        self.written = 0
        self.committed = False

    def _write(self, text: str) -> None:
        """Append ``text`` (one record, its line end included) and flush; nothing after close."""
        with self._lock:
            if self._f.closed:
                return
            self._f.write(text)
            self._f.flush()
            self.written += 1

    def commit(self) -> Path:
        """Close and move the lines into place (idempotent; after `discard` it does nothing)."""
        with self._lock:
            if not self._f.closed:
                self._f.flush()
                os.fsync(self._f.fileno())
                self._f.close()
                os.replace(self.tmp_path, self.path)
                self.committed = True
        return self.path

    def discard(self) -> None:
        """Close and delete the temporary file; the target is left as it was (idempotent)."""
        with self._lock:
            if not self._f.closed:
                self._f.close()
                self.tmp_path.unlink(missing_ok=True)

    close = commit
    """A finished stream keeps what it wrote."""
