"""Process heap housekeeping shared by the data path and the UI."""

from __future__ import annotations

import ctypes


def release_free_heap() -> None:
    """Hand freed heap pages back to the OS after a big list was replaced.

    glibc keeps freed pages in each thread's arena otherwise (a 100k-contact dump is
    decoded, and its index built, in worker threads), so RSS would stay at the peak.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc: nothing to do
        pass
