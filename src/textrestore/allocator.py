"""Keep freed memory in the process heap (glibc), so large forwards do not page-fault.

NaLSuper never downsamples: at 400×600 every block allocates and frees several
``C·H·W`` buffers (tens of MB). glibc serves allocations above its mmap threshold with
fresh ``mmap`` pages and returns them on ``free``, so every block pays the page faults
and the kernel's zeroing of its buffers again: about a fifth of the paper preset's
forward on a 2-core CPU (``benchmarks/results/compare_forward_after_glibc.json``:
7.20 s → 5.76 s at 400×600, 1.81 → 1.45 × the matmul roof).

:func:`keep_freed_memory` makes glibc keep such memory for reuse: it is the runtime form
of ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=<large>``. It
changes the whole process's allocator for good, so a library never calls it on its own:
the ``textrestore`` command line does (its process only runs the model), and you may in
scripts that do the same. The cost: the process's RSS stays near its peak after a
forward instead of falling back, and the peak may grow by a few percent (heap
fragmentation).

:func:`freed_memory_kept` is the scoped form that :func:`textrestore.enhance` uses on the
CPU: the same settings for the duration of a call only, then glibc's steady-state
thresholds back and the free heap returned to the system (``malloc_trim``), so the
call runs without the page faults and the process's memory falls back afterwards.
With ``linger`` the release waits that many seconds after the last block closes and is
called off if another block opens meanwhile: back-to-back calls (a folder of photos, the
frames of a video) reuse the heap the previous call left instead of faulting it in again.
A process forked while a release is pending (data-loader workers) releases at once, since
the timer thread does not follow it into the child.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["keep_freed_memory", "freed_memory_kept", "free_heap_bytes"]

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1
# What a scope restores: glibc's steady state once large blocks have been freed (its
# dynamic threshold rises to at most 32 MiB, the trim threshold to twice that) and its
# default count of mmapped blocks.
_STEADY = ((_M_MMAP_MAX, 65536), (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 64 << 20))

_lock = threading.Lock()
_kept_for_good = False  # keep_freed_memory() was called: scopes change nothing
_scopes = 0  # freed_memory_kept() blocks open in any thread
_scope_applied = False  # the first open scope changed the settings
_release_timer: threading.Timer | None = None  # a lingering scope's pending release


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        version = libc.gnu_get_libc_version  # absent in musl
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost",
    )]  # fmt: skip


def free_heap_bytes() -> int:
    """Bytes that glibc holds free in the heap for reuse (``mallinfo2().fordblks``).

    With :func:`keep_freed_memory` a process's resident memory stays near its peak: these
    bytes are resident but free, so the next allocations reuse them instead of growing
    the process. 0 where there is no glibc 2.33+.

    Example:
        >>> free_heap_bytes() >= 0
        True
    """
    libc = _glibc()
    fn = getattr(libc, "mallinfo2", None) if libc is not None else None
    if fn is None:
        return 0
    fn.restype = _Mallinfo2
    return int(fn().fordblks)


def keep_freed_memory() -> bool:
    """Tell glibc to serve large allocations from the heap and not to trim it.

    Returns:
        ``True`` if glibc accepted both settings, ``False`` where there is no glibc
        (macOS, Windows, musl; nothing is changed) or it refused a setting.

    Example:
        >>> keep_freed_memory() in (True, False)
        True
    """
    global _kept_for_good
    with _lock:
        kept = _keep()
        _kept_for_good = _kept_for_good or kept
        return kept


def _keep() -> bool:
    libc = _glibc()
    if libc is None:
        return False
    if libc.mallopt(_M_MMAP_MAX, 0) != 1:
        return False
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1)


def _release() -> None:
    libc = _glibc()
    if libc is None:
        return
    for param, value in _STEADY:
        libc.mallopt(param, value)
    libc.malloc_trim(0)


@contextlib.contextmanager
def freed_memory_kept(enabled: bool = True, linger: float = 0.0) -> Iterator[bool]:
    """Within the block, glibc keeps freed memory (as :func:`keep_freed_memory`); after
    the last open block (of any thread) its thresholds return to their steady state and
    the free heap goes back to the system (``malloc_trim``).

    Nothing changes where :func:`keep_freed_memory` already holds for the process, where
    there is no glibc, or with ``enabled=False``.

    Args:
        enabled: False: a no-op block (yields False).
        linger: seconds to wait after the last block closes before releasing (0: at
            once). A block opened meanwhile calls the release off and finds the heap the
            previous one left. The wait runs on a daemon timer thread, so it never
            delays the interpreter's exit.

    Yields:
        Whether freed memory is kept within the block.

    Raises:
        ValueError: ``linger`` is negative or not finite.

    Example:
        >>> with freed_memory_kept() as kept:
        ...     kept in (True, False)
        True
    """
    global _scopes, _scope_applied, _release_timer
    if not (0.0 <= linger < float("inf")):
        raise ValueError(f"freed_memory_kept: linger must be a finite number >= 0, got {linger}")
    if not enabled:
        yield False
        return
    with _lock:
        if _release_timer is not None:  # a lingering release is called off
            _release_timer.cancel()
            _release_timer = None
        if _scopes == 0 and not _kept_for_good and not _scope_applied:
            _scope_applied = _keep()
        _scopes += 1
        kept = _kept_for_good or _scope_applied
    try:
        yield kept
    finally:
        with _lock:
            _scopes -= 1
            if _scopes == 0 and _scope_applied:
                if linger > 0:
                    _release_timer = threading.Timer(linger, _release_if_idle)
                    _release_timer.daemon = True
                    _release_timer.start()
                else:
                    _release_scope()


def _release_scope() -> None:
    """Undo what the scopes applied (caller holds ``_lock``)."""
    global _scope_applied
    _scope_applied = False
    if not _kept_for_good:
        _release()


def _after_fork_in_child() -> None:
    """A forked child has no timer thread: release a lingering setting at once."""
    global _release_timer, _lock
    _lock = threading.Lock()  # the parent's may have been held by another thread
    _release_timer = None
    if _scopes == 0 and _scope_applied:
        _release_scope()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _release_if_idle() -> None:
    global _release_timer
    with _lock:
        if threading.current_thread() is not _release_timer:
            return  # called off, or superseded by a later scope's timer
        _release_timer = None
        if _scopes == 0 and _scope_applied:
            _release_scope()
