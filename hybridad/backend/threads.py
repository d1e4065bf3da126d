"""The thread pool that splits large batches across cores (kernels release the GIL)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

# Below this many rows per thread, starting threads costs more than it saves.
MIN_ROWS_PER_THREAD = 512


def thread_pool(threads: int) -> ThreadPoolExecutor:
    """A shared pool (created on first use) for splitting batches across threads."""
    global _POOL  # noqa: PLW0603
    if _POOL is None or _POOL._max_workers < threads:  # noqa: SLF001
        _POOL = ThreadPoolExecutor(max_workers=max(threads, os.cpu_count() or 1))
    return _POOL


_POOL: ThreadPoolExecutor | None = None
