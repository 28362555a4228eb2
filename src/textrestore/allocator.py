"""Keep freed memory in the process heap (glibc), so large forwards do not page-fault.

NaLSuper never downsamples: at 400×600 every block allocates and frees several
``C·H·W`` buffers (tens of MB). glibc serves allocations above its mmap threshold with
fresh ``mmap`` pages and returns them on ``free``, so every block pays the page faults
and the kernel's zeroing of its buffers again: about a fifth of the paper preset's
forward on a 2-core CPU (``benchmarks/results/compare_forward_after_glibc.json``:
7.20 s → 5.76 s at 400×600, 1.81 → 1.45 × the matmul roof).

:func:`keep_freed_memory` makes glibc keep such memory for reuse: it is the runtime form
of ``GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=<large>``. It
changes the whole process's allocator, so a library never calls it on its own: the
``textrestore`` command line does (its process only runs the model), and you may in
scripts that do the same. The cost: the process's RSS stays near its peak after a
forward instead of falling back, and the peak may grow by a few percent (heap
fragmentation).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

__all__ = ["keep_freed_memory", "free_heap_bytes"]

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


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
    libc = _glibc()
    if libc is None:
        return False
    if libc.mallopt(_M_MMAP_MAX, 0) != 1:
        return False
    return bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1)
