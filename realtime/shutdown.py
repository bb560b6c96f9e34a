"""One clean stop for Ctrl-C and SIGTERM, in every phase of a run, within a deadline.

`Stopper.install()` is the first thing run_demo.py does, so a signal never meets Python's default handler (which
printed a raw ``KeyboardInterrupt`` traceback in the first 0.3 s, and for SIGTERM killed the page server without
removing its session folders). What a signal does depends on the phase:

* **starting** (imports, model loading): nothing has been produced yet, so the cleanups run (a half-written
  results file is discarded, temporary folders removed) and the process exits with 130 at once. Waiting for a model
  to finish loading took 2.2 to 6.5 s.
* **running**: the stop event is set and the caller's loop stops the pipeline and keeps its results; a watchdog
  runs the cleanups and exits anyway once ``deadline_s`` has passed, so a thread stuck in native code cannot hold
  the process. A second signal exits at once (after the cleanups).

The exit status is 130 for both signals (the shell's value for Ctrl-C), so callers see one "interrupted" status.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Callable

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130


class Stopper:
    def __init__(self, deadline_s: float = 1.8, exit_fn: Callable[[int], None] = os._exit):
        self.deadline_s = deadline_s
        self.requested = threading.Event()
        self.running = False
        self._cleanups: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        self._exit = exit_fn
        self._exiting = False
        self._old: dict = {}

    def install(self) -> "Stopper":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def uninstall(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def on_exit(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Run ``fn`` if the process is ended by a signal (cleanups run in reverse order of registration)."""
        with self._lock:
            self._cleanups.append(fn)
        return fn

    def forget(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if fn in self._cleanups:
                self._cleanups.remove(fn)

    def set_running(self, running: bool = True) -> None:
        """From now on a signal asks the run loop to stop (True) instead of exiting at once."""
        self.running = running

    def _on_signal(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.requested.is_set() or not self.running:
            self.exit_now(f"{name}: stopping")
            return
        self.requested.set()
        print(f"{name}: stopping (a second one exits at once)", file=sys.stderr, flush=True)
        t = threading.Timer(self.deadline_s, self.exit_now, args=(f"still stopping after {self.deadline_s:g} s: "
                                                                  "exiting",))
        t.daemon = True
        t.start()

    def run_cleanups(self) -> None:
        with self._lock:
            fns, self._cleanups = list(reversed(self._cleanups)), []
        for fn in fns:
            try:
                fn()
            except Exception as e:  # a cleanup must not stop the others
                log.warning("cleanup failed: %s", e)

    def exit_now(self, why: str = "") -> None:
        """Run the cleanups and end the process with 130 (without waiting for other threads)."""
        with self._lock:
            if self._exiting:
                return
            self._exiting = True
        if why:
            print(why, file=sys.stderr, flush=True)
        self.run_cleanups()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        self._exit(EXIT_INTERRUPTED)
