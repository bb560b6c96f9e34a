"""Hand freed heap memory back to the operating system (glibc), so a long-running page server stays flat.

Why: every replay or live stream starts its own stage threads, and glibc gives threads their own malloc arenas (up to
8 per core). The models a finished stream loaded are freed at once (reference counting), but the arenas keep the freed
pages, so RSS rose over the first replays of a soak and stayed up. Capping the arenas and trimming them when a stream
ends returns those pages. Both calls are no-ops where the C library is not glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8
"""glibc's mallopt parameter number for the arena cap (malloc.h)."""


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


def limit_arenas(n: int) -> bool:
    """Cap glibc's malloc arenas at ``n`` (call it before threads start); True when the cap was set."""
    if n < 1:
        raise ValueError(f"malloc arenas {n}: must be at least 1")
    libc = _glibc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(M_ARENA_MAX, int(n)))
    if not ok:
        log.debug("mallopt(M_ARENA_MAX, %d) refused", n)
    return ok


def release_freed_memory() -> bool:
    """Return freed heap pages of every arena to the OS (``malloc_trim(0)``); True when glibc released some."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.malloc_trim(0))
