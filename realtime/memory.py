"""Hand freed heap memory back to the operating system (glibc), so a long-running page server stays flat.

Why: every replay or live stream starts its own stage threads, and glibc gives threads their own malloc arenas (up to
8 per core). The models a finished stream loaded are freed at once (reference counting), but the arenas keep the freed
pages, so RSS rose over the first replays of a soak and stayed up. Keeping frame-sized blocks mmapped (returned to
the OS when freed) and trimming the arenas when a stream ends returns those pages. Both calls are no-ops where the C
library is not glibc (macOS, musl, Windows).

That policy ("flat", the page's default) has a price: every block of 256 KB or more is mapped afresh and faults its
pages in, and a scorer batching many streams allocates such blocks on every pass (its batch-64 forward faulted
29,278 to 33,046 pages in three runs; docs/speed.md 3d). `keep_freed_blocks` ("fast") takes the other side: freed
blocks up to 16 MB stay in the heap for the next ones, at the cost of a higher resident plateau. `run_demo.py
--memory` chooses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
"""glibc's mallopt parameter number for the trim threshold (malloc.h)."""
M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter number for the mmap threshold (malloc.h)."""

MMAP_THRESHOLD_BYTES = 256 * 1024
"""Blocks this large or larger are mmapped and go back to the OS when freed. 256 KB: well below a replayed video
frame (640x360x3 is 691 KB) and a second of audio, far above Python's small objects (obmalloc pools those anyway).
glibc starts at 128 KB but raises the threshold with every freed mmapped block, up to 32 MB, after which frames and
audio buffers are carved from the arenas and their freed pages stay there."""


@functools.cache
def _glibc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # only glibc has it  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def return_big_blocks(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold (call it once, first thing in a process); True when it was set.

    Fixing it also turns off glibc's dynamic raising of the threshold, so a frame-sized buffer freed at the end of a
    stream is unmapped at once instead of staying in a thread's arena (measured: a soak of 16 back-to-back replays
    without it rose 1083 -> 1306 MB by replay 34 even with trimming; with it, +1.44 % from replay 5 to 16).
    """
    if threshold_bytes < 4096:
        raise ValueError(f"mmap threshold {threshold_bytes} bytes: must be at least one page (4096)")
    return _mallopt((M_MMAP_THRESHOLD, threshold_bytes))


KEEP_MMAP_THRESHOLD_BYTES = 16 << 20
"""The "fast" policy maps only blocks of 16 MB or more: above the largest tensor of a batch-64 forward of the live
preset (4 MB) and of MOSI's (9.4 MB)."""

KEEP_TRIM_THRESHOLD_BYTES = 64 << 20
"""... and keeps up to 64 MB free at the top of a heap before returning it, more than one batch-64 pass frees."""


def keep_freed_blocks(mmap_threshold_bytes: int = KEEP_MMAP_THRESHOLD_BYTES,
                      trim_threshold_bytes: int = KEEP_TRIM_THRESHOLD_BYTES) -> bool:
    """Keep freed blocks for reuse (call it once, first thing in a process); True when both settings took.

    Measured against "flat" (docs/speed.md 3d, `benchmarks.pipeline_speed --memory`, two alternating pairs): batches
    of 64 streams 844.1 and 832.6 windows/s against 500.1 and 491.8, a fast replay of the sample 2.996 and 2.927 s
    against 4.171 and 4.023 s. Over 50 back-to-back replays (`benchmarks.soak --memory fast`) RSS went 1234.0 ->
    1516.6 MB from replay 5 to 50 (+22.90 %; +7.86 % from replay 10), against +1.41 % under "flat" (the README's
    soak).
    """
    return _mallopt((M_MMAP_THRESHOLD, mmap_threshold_bytes), (M_TRIM_THRESHOLD, trim_threshold_bytes))


def _mallopt(*settings: tuple[int, int]) -> bool:
    """glibc's ``mallopt`` for each (parameter, value); True when every one took, False off glibc."""
    libc = _glibc()
    if libc is None:
        return False
    return all([bool(libc.mallopt(param, int(value))) for param, value in settings])  # a list: every one is set


POLICIES = {"flat": return_big_blocks, "fast": keep_freed_blocks}
"""``run_demo.py --memory``: "flat" RSS over many replays (the default), or "fast" batched scoring and replay."""


def apply_policy(name: str) -> bool:
    """Set the allocator policy `name` (a key of `POLICIES`); True when it took (False where the C library is not
    glibc)."""
    if name not in POLICIES:
        raise ValueError(f"memory policy {name!r}: expected one of {sorted(POLICIES)}")
    return POLICIES[name]()


def benchmark_policy(name: str) -> str:
    """For a benchmark: set policy `name` ('default' leaves the C library's own) and return the line that says which
    policy its figures ran under."""
    took = name == "default" or apply_policy(name)
    return f"allocator policy: {name}" + ("" if took else " (not set: the C library is not glibc)")


def release_freed_memory() -> bool:
    """Return freed heap pages of every arena to the OS (``malloc_trim(0)``); True when glibc released some."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
