"""Up-front checks of the numbers a user can set (command line, Settings tab), each refused with its reason.

Called where configs are built (run_demo.py, `realtime.config.stream_config`), so a bad value never reaches a thread:
NaN compares false with everything, so without these checks ``--hop nan`` silently scored nothing and
``--window nan`` scored windows in which nothing was ever present.
"""

from __future__ import annotations

import math

WINDOW_MIN_S = 0.5
"""Shorter windows hold fewer than 5 face frames (10 fps) and 50 acoustic frames: too little to score."""
WINDOW_MAX_S = 60.0
"""The window keeps ``window_s + 2`` s of every stream in memory; a minute is far beyond any phrase."""
HOP_MIN_S = 0.05
"""20 windows per second of media. Measured on the 2-core dev machine with other work running (load average 6.6),
``python -m benchmarks.hop_limit``: real-time replay of the 8 s sample kept up at 0.05 s (largest lag 0.77 s) and
fell behind at 0.02 s (4.01 s) and 0.005 s (6.83 s, 14.67 s of wall time for 8 s of media). The page shows at most
about 5 updates per second anyway."""
HOP_REALTIME_WARN_S = 0.1
"""Below this, real time is only kept on an idle machine: run_demo warns (the page's slider starts here)."""


class SettingError(ValueError):
    """A setting is not a finite number in its range; the message names it and says why."""


def number(name: str, value, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           why: str = "") -> float:
    """``value`` as a finite float within [lo, hi] (``lo_open``: strictly above lo), else `SettingError`."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{name} {value!r}: not a number") from None
    reason = f" ({why})" if why else ""
    if not math.isfinite(x):
        raise SettingError(f"{name} {x}: must be a finite number{reason}")
    if lo is not None and (x <= lo if lo_open else x < lo):
        raise SettingError(f"{name} {x:g}: must be {'above' if lo_open else 'at least'} {lo:g}{reason}")
    if hi is not None and x > hi:
        raise SettingError(f"{name} {x:g}: must be at most {hi:g}{reason}")
    return x


def window_and_hop(window_s, hop_s, names: tuple[str, str] = ("--window", "--hop")) -> tuple[float, float]:
    """Check a window length and hop (s) together; returns them as floats."""
    w = number(names[0], window_s, WINDOW_MIN_S, WINDOW_MAX_S,
               why=f"seconds; below {WINDOW_MIN_S:g} s a window holds too few frames to score")
    h = number(names[1], hop_s, HOP_MIN_S, why=f"seconds; below {HOP_MIN_S:g} s the scorer cannot keep up "
                                               f"(more than {1 / HOP_MIN_S:g} windows per second)")
    if h > w:
        raise SettingError(f"{names[1]} {h:g} is longer than {names[0]} {w:g}: parts of the stream would never "
                           "be scored")
    return w, h


def start_at(value, duration_s: float | None = None, name: str = "--start-at") -> float:
    """A replay start time (s): finite, >= 0 and, when the duration is known, before the end of the file."""
    s = number(name, value, 0.0, why="seconds from the start of the file")
    if duration_s is not None and duration_s > 0 and s >= duration_s:
        raise SettingError(f"{name} {s:g}: the file is only {duration_s:.2f} s long")
    return s
