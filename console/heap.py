"""The console's memory policy, in one place: the only module that touches the cyclic GC.

Only the live session (console/live.py) applies it, for a process that is the console, and the
command line's one-shot commands switch the collector off while they run (`one_shot`): library and
plugin code never switch it, so a test or an embedding application keeps the GC it has.  `release_free_heap` is not about the GC: any code that just
dropped a big list may hand its pages back to the OS."""

from __future__ import annotations

import contextlib
import gc
import time
from typing import Callable, Iterator


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS after a big list was replaced.

    glibc keeps freed pages in each thread's arena otherwise (a 100k-contact dump is
    decoded, and its index built, in worker threads), so RSS would stay at the peak.
    """
    import ctypes  # here, not at import: a one-shot command never needs it

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to do
        pass


@contextlib.contextmanager
def one_shot() -> Iterator[None]:
    """A one-shot command (snapshot, diagnose, mi) lives under a second and its process exits right
    after: the cyclic GC would run ~100 collections over objects that are all freed at exit anyway
    (25-50 ms of a 10k-contact snapshot, #18).  Off while the command runs, as it was afterwards
    (tests and embedding applications call the CLI in their own process)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class HeapPolicy:
    """The cyclic GC schedule of a long-running console.

    CPython runs a full collection whenever a quarter more objects than at the last one have
    lived long enough; each one walks every live object.  A console polling 1 000 calls keeps
    ~150k objects alive and replaces thousands of them per poll (table cells, dialogs, media
    sessions), so full collections came 3 times a minute at ~100 ms each: a bigger share of
    its CPU than painting the screen.  Instead, what survives a poll is frozen (the GC leaves
    it alone; reference counting still frees it when it is replaced), and every few minutes
    one full collection over everything reclaims the cycles that died while frozen, so
    memory stays bounded.  (No size check per poll: counting the frozen objects walks all of
    them, which cost more than the collections saved.)
    """

    SWEEP_EVERY = 300.0  # seconds between full collections

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.swept_at = clock()
        self.sweeps = 0

    def after_poll(self) -> None:
        if self.clock() - self.swept_at >= self.SWEEP_EVERY:
            self.sweep()
        else:
            gc.freeze()

    def settle(self) -> None:
        """After a big list arrived (100k contacts: ~1M objects): collect the young objects, freeze
        the survivors and hand freed pages back, so no full collection walks that list on a key
        press.  Not a sweep: that unfreezes, and walking every object again stalled the loop ~90 ms."""
        gc.collect()
        gc.freeze()
        release_free_heap()

    def sweep(self) -> None:
        """A full collection over everything, frozen objects included; then freeze the survivors."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.swept_at = self.clock()
        self.sweeps += 1


FrozenHeap = HeapPolicy  # the name it had
