"""One stream's result files in its tab's folder: the JSONL and the CSV, written as the results are scored
(`realtime.sinks`), and at the end the summary PNG; moved into place when the stream ends, or discarded when it
scored nothing. No Gradio here."""

from __future__ import annotations

import logging
from pathlib import Path

from . import plots
from .render_thread import on_render_thread

log = logging.getLogger(__name__)


class StreamFiles:
    """Args:
    folder: the tab's folder.
    gen: the stream's number in its tab (names the files: ``results-<gen>.jsonl``).
    emotions: the checkpoint's class names (the CSV's probability columns).
    """

    def __init__(self, folder: Path, gen: int, emotions):
        from ..sinks.csv import CsvSink
        from ..sinks.jsonl import JsonlSink

        self.jsonl = JsonlSink(folder / f"results-{gen}.jsonl")
        self.csv = CsvSink(folder / f"results-{gen}.csv", emotions)
        self.png = folder / f"summary-{gen}.png"

    @property
    def sinks(self) -> list:
        return [self.jsonl, self.csv]

    def finish(self, view, label: str) -> tuple[list[str], str | None]:
        """Move the files into place and draw the summary of ``view`` (a `StreamView`); returns the files for the
        page's downloads and the problem to show, if the summary failed. Raises FileNotFoundError when the tab's
        folder is gone (it closed meanwhile)."""
        keep = self.jsonl.written > 0  # a stream that scored nothing leaves no files
        for sink in self.sinks:
            sink.commit() if keep else sink.discard()
        if not keep:
            return [], None
        files = [str(self.jsonl.path), str(self.csv.path)]
        rows, avg = view.summary()
        if rows:
            try:
                files.append(on_render_thread(plots.summary_png, rows, avg, self.png,
                                              title=f"{label}: {view.received} windows"))
            except Exception as e:  # a summary must never take the page down
                log.exception("summary failed")
                return files, f"could not write the summary: {e}"
        return files, None
