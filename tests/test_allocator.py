"""keep_freed_memory(): glibc's mallopt at run time; the console script applies it."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


_CYCLE = """
import ctypes
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc.mallinfo2.restype = MallInfo2

def mmapped(size=64 << 20) -> int:
    # mmap-served chunks added by a live block of ``size``
    before = libc.mallinfo2().hblks
    p = libc.malloc(size)
    during = libc.mallinfo2().hblks
    libc.free(p)
    return during - before

def free_heap_mb() -> int:
    return libc.mallinfo2().fordblks >> 20
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_keeps_large_blocks_in_the_heap() -> None:
    """Before it, glibc serves a 64 MB block by mmap; after it, from the heap."""
    out = _run(
        _CYCLE
        + """
from textrestore.allocator import keep_freed_memory
print(mmapped())               # default glibc: a fresh mmap for 64 MB
print(keep_freed_memory())
print(mmapped())               # from the heap: no mmapped chunk
"""
    )
    default_new, applied, kept_new = out.splitlines()
    assert applied == "True"
    assert int(default_new) >= 1 and int(kept_new) == 0, out


def test_console_script_is_console_entry_and_main_leaves_allocator_alone() -> None:
    from importlib.metadata import entry_points

    scripts = {ep.name: ep.value for ep in entry_points(group="console_scripts")}
    assert scripts.get("textrestore") == "textrestore.cli:console"
    import textrestore.cli as cli

    assert "keep_freed_memory" not in cli.main.__code__.co_names


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_memory_kept_free_in_the_heap_is_not_counted_as_in_use() -> None:
    """After keep_freed_memory() a freed 256 MB block stays resident; enhance()'s budget
    counts only what is in use (resident minus glibc's free heap), as before the block."""
    out = _run(
        """
        import numpy as np
        from textrestore.allocator import free_heap_bytes, keep_freed_memory
        from textrestore.inference import _resident_bytes

        keep_freed_memory()
        base = _resident_bytes()
        block = np.ones(256 << 17)  # 256 MB of float64, written: resident
        during = _resident_bytes()
        del block
        print(base, during, _resident_bytes(), free_heap_bytes())
        """
    )
    base, during, after, free = (int(v) for v in out.split())
    mb = 1 << 20
    assert during - base > 250 * mb  # in use while alive
    assert free > 250 * mb and abs(after - base) < 16 * mb  # kept, but not counted




@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_memory_is_kept_only_within_the_scope_and_returned_after() -> None:
    """Inside (nested too) a 64 MB block comes from the heap; after the last scope it is
    mmapped again and the freed heap is trimmed; a process-wide setting is left as it is."""
    out = _run(
        _CYCLE
        + """
from textrestore.allocator import freed_memory_kept, keep_freed_memory
rows = [mmapped()]
with freed_memory_kept() as kept:
    with freed_memory_kept():
        p = libc.malloc(200 << 20)
        ctypes.memset(p, 1, 200 << 20)
        libc.free(p)
    rows += [kept, mmapped(), free_heap_mb()]  # inner exit: still kept
rows += [mmapped(), free_heap_mb()]
with freed_memory_kept(enabled=False) as kept_off:
    rows += [kept_off, mmapped()]
keep_freed_memory()
with freed_memory_kept():
    pass
rows.append(mmapped())  # the process-wide setting survives a scope
print(*rows)
"""
    )
    before, kept, inside, heap_inside, after, heap_after, off, off_new, kept_new = out.split()
    assert int(before) >= 1 and kept == "True"
    assert int(inside) == 0 and int(heap_inside) >= 150, out
    assert int(after) >= 1 and int(heap_after) < 50, out
    assert off == "False" and int(off_new) >= 1
    assert int(kept_new) == 0, out


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_a_lingering_scope_releases_later_unless_another_scope_opens() -> None:
    """With linger, the heap is kept after the block; a block opened within the linger
    reuses it and restarts the wait; once the wait passes, blocks are mmapped again and the
    freed heap is trimmed. The daemon timer does not hold up the interpreter's exit."""
    out = _run(
        _CYCLE
        + """
import time
from textrestore.allocator import freed_memory_kept

def fill(mb):
    p = libc.malloc(mb << 20)
    ctypes.memset(p, 1, mb << 20)
    libc.free(p)

rows = [mmapped()]
with freed_memory_kept(linger=0.6):
    fill(200)
rows += [mmapped(), free_heap_mb()]          # just after: still kept
time.sleep(0.4)
with freed_memory_kept(linger=0.6) as kept:  # within the linger: the heap is reused
    rows += [kept, mmapped(), free_heap_mb()]
time.sleep(0.4)                              # 0.8 s after the first block, 0.4 after this one
rows += [mmapped(), free_heap_mb()]
time.sleep(0.6)
rows += [mmapped(), free_heap_mb()]          # the wait has passed: released
with freed_memory_kept(linger=30.0):
    pass
import os
r, w = os.pipe()
if os.fork() == 0:  # a forked child has no timer thread: the lingering setting is released
    os.write(w, str(mmapped()).encode())
    os._exit(0)
os.wait()
rows.append(int(os.read(r, 16)))
print(*rows)
"""
    )
    (before, just_after, heap_after, kept, inside, heap_inside, still, heap_still, released,
     heap_released, forked) = out.split()  # fmt: skip
    assert int(before) >= 1
    assert int(just_after) == 0 and int(heap_after) >= 150, out
    assert kept == "True" and int(inside) == 0 and int(heap_inside) >= 150, out
    assert int(still) == 0 and int(heap_still) >= 150, out
    assert int(released) >= 1 and int(heap_released) < 50, out
    assert int(forked) >= 1, out
    with pytest.raises(ValueError, match="linger must be a finite number >= 0, got -1"):
        from textrestore.allocator import freed_memory_kept

        with freed_memory_kept(linger=-1):
            pass


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_enhance_leaves_the_allocator_as_it_found_it() -> None:
    out = _run(
        _CYCLE
        + """
import torch
from textrestore import create_model, enhance
from textrestore.text import TextEmbedding
m = create_model("nalsuper_t", text_dim=8)
m.prompt_bank.add("normal light image", TextEmbedding.from_tensor(torch.randn(1, 2, 8)))
import time
from textrestore.inference import HEAP_LINGER_S
rows = [mmapped()]
enhance(torch.rand(3, 256, 256), model=m, device="cpu")
rows.append(mmapped())  # lingering: a following call would reuse the heap
time.sleep(HEAP_LINGER_S + 0.5)
rows.append(mmapped())
print(*rows)
"""
    )
    before, lingering, after = out.split()
    assert int(before) >= 1 and int(lingering) == 0 and int(after) >= 1, out
