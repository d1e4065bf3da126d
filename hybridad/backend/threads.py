"""Splitting large batches across threads (kernels release the GIL while they run).

A batch is cut into more pieces than threads, and every thread (the calling one
included) takes the next piece when it finishes one. A static split waits for its
slowest thread: on a machine where another process holds a core, one half of the batch
then takes twice as long and two threads are no faster than one. Pieces are taken in
any order but each covers fixed rows, so results do not depend on the schedule.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

# A thread gets at least this many rows, and at least this much work (DAG nodes x rows,
# about a millisecond): handing a chunk to a pool thread costs tens of microseconds.
MIN_ROWS_PER_THREAD = 512
MIN_WORK_PER_THREAD = 1_000_000
# Pieces per thread: enough to even out a busy core, few enough that taking one (a lock
# and the GIL, a few microseconds) stays negligible next to its rows.
PIECES_PER_THREAD = 8

Piece = TypeVar("Piece")


def thread_pool(threads: int) -> ThreadPoolExecutor:
    """A shared pool (created on first use) for splitting batches across threads."""
    global _POOL
    if _POOL is None or _POOL._max_workers < threads:
        _POOL = ThreadPoolExecutor(max_workers=max(threads, os.cpu_count() or 1))
    return _POOL


_POOL: ThreadPoolExecutor | None = None


def run_pieces(pieces: Sequence[Piece], work: Callable[[Piece], None], threads: int
               ) -> None:
    """``work(piece)`` for every piece, on up to ``threads`` threads (the calling thread
    is one), each taking the next piece when it is done with one. Returns when every
    piece is done; an exception in any piece is raised here."""
    workers = min(threads, len(pieces))
    if workers <= 1:
        for piece in pieces:
            work(piece)
        return
    lock, queue = threading.Lock(), iter(pieces)

    def drain() -> None:
        while True:
            with lock:
                piece = next(queue, _DONE)
            if piece is _DONE:
                return
            work(piece)  # type: ignore[arg-type]

    others = [thread_pool(workers).submit(drain) for _ in range(workers - 1)]
    try:
        drain()
    finally:
        # a helper that never started has nothing left to take: cancelled, not awaited
        # (so a call from inside a busy pool cannot wait for itself)
        for future in others:
            if not future.cancel():
                future.result()


_DONE = object()


def split_rows(start: int, end: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous, nearly equal row ranges covering [start, end)."""
    bounds = [start + (end - start) * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a] or [(start, end)]
