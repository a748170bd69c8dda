"""glibc malloc settings for yolo-detect's instances (Linux, glibc; elsewhere no-ops).

Why (measured with getrusage per request in a forked instance): the runtime calls the
handler in a new thread per request (its deadline), and glibc gives each new thread its
own malloc arena; what ONNX Runtime and its MLAS kernels allocate per thread (working
buffers, freed when the thread ends) was then mapped and faulted in again on every
request: 1 000 - 2 700 page faults (4 - 10 MB) per warm request.

- One malloc arena (``M_ARENA_MAX=1``): every thread allocates from the main heap, so pages
  faulted in once serve the handler thread of every later request (20 - 80 faults each).
- Blocks below 32 MB always come from the heap, and up to 64 MB of free heap is kept
  (``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD``: glibc's own dynamic maxima, fixed from the
  start): those buffers are reused instead of being mapped and unmapped per request; larger
  blocks (a huge image) are still mapped and given back when freed.
- ``trim()`` gives the heap's free pages back (``malloc_trim``): the template calls it after
  its warm-up, so it does not keep, and its forks do not share, what the warm-up freed.

Nothing here changes results. ``tune()`` must run before the process starts threads
(glibc fixes the arena limit at its first extra arena): the handler calls it at import,
which a template does in its only thread, before it forks.
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20  # glibc's own dynamic maximum (2 x 32 MB): no more kept than before
_CHUNK = 8 << 20  # prefault in blocks below the mmap threshold, so they come from the heap


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.restype = ctypes.c_void_p
    libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    return libc


LIBC = _libc()


def tune() -> bool:
    """Apply the settings above to this process (and what it forks); False if not glibc."""
    if LIBC is None:
        return False
    return all(LIBC.mallopt(k, v) == 1 for k, v in ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                                    (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))


def trim() -> None:
    """Give the heap's free pages back to the kernel (the template, after its warm-up)."""
    if LIBC is not None:
        LIBC.malloc_trim(0)
