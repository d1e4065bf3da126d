"""The thread pool that splits large batches across cores (kernels release the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# A thread gets at least this many rows, and at least this much work (DAG nodes x rows,
# about a millisecond): handing a chunk to a pool thread costs tens of microseconds.
MIN_ROWS_PER_THREAD = 512
MIN_WORK_PER_THREAD = 1_000_000


def thread_pool(threads: int) -> ThreadPoolExecutor:
    """A shared pool (created on first use) for splitting batches across threads."""
    global _POOL  # noqa: PLW0603
    if _POOL is None or _POOL._max_workers < threads:  # noqa: SLF001
        _POOL = ThreadPoolExecutor(max_workers=max(threads, os.cpu_count() or 1))
    return _POOL


_POOL: ThreadPoolExecutor | None = None
