"""Where the page server keeps files, and how it forgets them (no Gradio import here).

One folder per server process holds everything a visitor leaves on this machine: Gradio's cache (uploads; the
``GRADIO_TEMP_DIR`` the app sets before importing gradio) and, inside it, one folder per tab with its results
(JSONL with transcripts, CSV, PNG) and uploaded checkpoints. Because the tab folders are inside Gradio's cache,
Gradio serves the downloads in place instead of copying them, so deleting a tab's folder deletes every copy.
A tab's folder and uploads are deleted when the tab closes, the whole folder when the server stops, unless
``keep`` (``--keep-session-files``).

`public_message` strips server paths from messages shown on the page (a visitor learns the file's name, not where
the server keeps it).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


class Workspace:
    def __init__(self, root: Path, keep: bool = False):
        self.root = Path(root)
        self.keep = keep
        self.cache = self.root / "gradio"
        self.sessions = self.cache / "sessions"
        self.sessions.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, keep: bool = False, parent: str | None = None) -> "Workspace":
        return cls(Path(tempfile.mkdtemp(prefix="dmd-live-", dir=parent)), keep=keep)

    def remove(self) -> None:
        """Delete everything (unless ``keep``; then say where it is)."""
        if self.keep:
            log.info("session files kept in %s (--keep-session-files)", self.root)
            return
        shutil.rmtree(self.root, ignore_errors=True)


def delete_upload(path: str | Path, cache: str | Path | None) -> None:
    """Delete a file Gradio stored for an upload, and its hash folder when that is left empty. Only files inside
    ``cache`` are touched (the path comes from the browser's request)."""
    if cache is None:
        return
    p, cache = Path(path).resolve(), Path(cache).resolve()
    if cache not in p.parents:
        return
    p.unlink(missing_ok=True)
    parent = p.parent
    if parent != cache:
        try:
            parent.rmdir()
        except OSError:
            pass  # not empty: another upload of the same content


_PATH = re.compile(r"(?<![\w.~])(?:~|\.{1,2})?/(?:[^\s/:'\"`,;()]+/)*([^\s/:'\"`,;()]+)/?")


def public_message(msg: str) -> str:
    """``msg`` with every absolute or relative path replaced by its last component."""
    return _PATH.sub(lambda m: m.group(1), str(msg))
