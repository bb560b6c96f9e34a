"""Draw matplotlib figures on one long-lived thread.

Why: matplotlib keeps each font file open per thread (``font_manager._get_font`` caches FT2Font objects keyed on the
thread id, up to 64). Each stream ends on a thread of its own, so drawing its summary there left more font files open
after every replay until that cache filled; drawn on one thread, the same fonts are reused and nothing accumulates.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def on_render_thread(fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` on the shared render thread and return its result (its exception is re-raised)."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        ex = _executor
    return ex.submit(fn, *args, **kwargs).result()
