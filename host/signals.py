"""Signals as requests, so that a measurement ends the way it was made to end.

A terminal's Ctrl-C, `timeout`, systemd, `docker stop` and CI runners signal the whole
process group, and often twice. Python turns SIGINT into a KeyboardInterrupt wherever the main
thread happens to be: in the middle of a request to the unit, or of a file's write. So:

- Outside `deferred()`, the CLI's handlers (`install`) raise `Interrupted` at once: nothing
  has been measured yet (an ARP request, a build), and nothing is lost by stopping there.
- Inside `deferred()`, SIGINT and SIGTERM only note the request (`Deferred.signum`, the
  first one; later ones are counted, never raised). The code checks `requested` where stopping
  is safe (between chunks of records), stops the streams, completes the final reads and
  writes, and raises `Interrupted` itself when the block ends. A second signal therefore never
  makes things worse.

The virtual board's simulator runs in a session of its own (`sim.virtual`), so a group
signal reaches only this process, which stops the unit before the simulator ends.
"""
import signal
import threading
from contextlib import contextmanager

__all__ = ["Interrupted", "Deferred", "deferred", "install", "STOPS"]

STOPS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """The run was stopped by a signal (Ctrl-C, SIGTERM); `signum` says which."""
    def __init__(self, signum):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


class Deferred:
    """What `deferred()` noted: the first signal (`signum`, None while none came) and how many
    came in all."""
    def __init__(self):
        self.signum = None
        self.count = 0

    @property
    def requested(self):
        return self.signum is not None

    def note(self, signum, frame=None):
        self.count += 1
        if self.signum is None:
            self.signum = signum

    def raise_if_requested(self):
        if self.signum is not None:
            raise Interrupted(self.signum)


_active = None


@contextmanager
def deferred():
    """Within the block, SIGINT and SIGTERM are noted, not raised (see the module). Nested
    blocks share the outermost one's `Deferred`. In a thread other than the main one (where
    Python delivers no signals) the block just yields a `Deferred` that stays empty."""
    global _active
    if _active is not None:
        yield _active
        return
    state = Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = {stop: signal.signal(stop, state.note) for stop in STOPS}
    _active = state
    try:
        yield state
    finally:
        _active = None
        for stop, handler in previous.items():
            signal.signal(stop, handler)


def _raise(signum, frame):
    raise Interrupted(signum)


def install():
    """The CLI's handlers: SIGINT and SIGTERM raise `Interrupted` (outside `deferred()`).
    SIGINT too, even when a script started the command in the background, which leaves SIGINT
    ignored. Returns what to pass to `restore`; None outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {stop: signal.signal(stop, _raise) for stop in STOPS}


def restore(previous):
    for stop, handler in (previous or {}).items():
        signal.signal(stop, handler)
