"""Calling compiled kernels: one row or a batch, split across threads.

Arguments and output arrays reach this module already validated (layout.py: shape,
dtype float64, C-contiguous, aligned, writable outputs), so every pointer handed to
native code covers exactly the rows and columns the kernel reads or writes. Everything
goes through ``rows_objects``, which reads the arrays' data pointers itself: called
through a ``PYFUNCTYPE`` for one row (keeping the GIL: the call is shorter than
releasing it), through a ``CFUNCTYPE`` for batches, which releases the GIL so threads
run in parallel.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from ..layout import Block, Group, Structure
from ..threads import (
    MIN_ROWS_PER_THREAD,
    MIN_WORK_PER_THREAD,
    PIECES_PER_THREAD,
    run_pieces,
    split_rows,
)
from . import codegen, engine, pyentry
from .codegen import KernelSpec, kernel_ir

# Rows summed in one chain by reduce="sum"/"mean" (see LLVMRunner._reduce_rows).
REDUCE_ROWS = 8192


class LLVMRunner:
    """Native entry points of one kernel."""

    def __init__(self, groups: list[Group], blocks: list[Block], accumulate: bool,
                 fastmath: bool, opt_level: int, structure: Structure | None = None):
        spec = KernelSpec(tuple(g.symbols for g in groups), tuple(b.exprs for b in blocks),
                          tuple(accumulate for _ in blocks))
        layout = pyentry.abi() if structure is not None and not accumulate else None
        entry = None if layout is None else pyentry.EntrySpec(
            tuple(g.shape for g in groups), tuple(b.shape for b in blocks), structure)
        text = kernel_ir(spec, fastmath, engine.numpy_data_offset(), engine.process_triple(),
                         codegen.SEGMENT_NODES, entry, layout)
        self.compiled, self.cache_hit = engine.compile_ir(text, opt_level)
        self.ir_chars = len(text)
        self.nodes = codegen.total_nodes(spec.blocks)
        self.segments = max(1, text.count("define internal void @\"seg_"),
                            text.count("define internal void @seg_"))
        self.accumulate = accumulate
        kind = [ctypes.py_object] * (len(groups) + len(blocks)) + [ctypes.c_int64] * 3
        # CFUNCTYPE releases the GIL during the call: batches run in parallel threads
        self._rows_objects = ctypes.CFUNCTYPE(None, *kind)(self.compiled.rows_objects)
        self._rows_objects_gil = ctypes.PYFUNCTYPE(None, *kind)(self.compiled.rows_objects)

    def native_entry(self, fallback: Any) -> Any:
        """The compiled single-point entry as a builtin function calling ``fallback``
        with the same arguments for anything it does not take; None if not compiled."""
        if not self.compiled.call:
            return None
        return pyentry.make_builtin(self.compiled.call, fallback, self.compiled)

    def run(self, arrays: list[np.ndarray], batched: list[bool], batch: int | None,
            outs: list[np.ndarray], reduce: str | None, threads: int) -> None:
        """Results into ``outs`` (one array per block, of the result's shapes): one row
        when ``batch`` is None, else every row (batched arguments advance one row per
        row, shared ones stay), summed over the batch for ``reduce``."""
        if self.accumulate:
            for out in outs:
                out.fill(0.0)
        if batch is None:
            self._rows_objects_gil(*arrays, *outs, 0, 0, 1)
            return
        mask = sum(1 << g for g, b in enumerate(batched) if b)
        if reduce is None:
            self._split_rows(arrays, mask, outs, batch, threads)
        else:
            self._reduce_rows(arrays, mask, outs, batch, threads)

    def _serial(self, rows: int) -> Any:
        """The entry for ``rows`` rows on this thread: short calls keep the GIL
        (releasing it costs about a microsecond), long ones release it."""
        return self._rows_objects if rows >= MIN_ROWS_PER_THREAD else self._rows_objects_gil

    def _split_rows(self, arrays: list[np.ndarray], mask: int, outs: list[np.ndarray],
                    batch: int, threads: int) -> None:
        """Every row into ``outs``; a large batch in pieces taken by ``threads`` threads."""
        workers = len(_chunks(batch, threads, self.nodes))
        if workers == 1:
            self._serial(batch)(*arrays, *outs, mask, 0, batch)
            return
        pieces = split_rows(0, batch, workers * PIECES_PER_THREAD)
        run_pieces(pieces, lambda rows: self._rows_objects(*arrays, *outs, mask, *rows),
                   workers)

    def _reduce_rows(self, arrays: list[np.ndarray], mask: int, outs: list[np.ndarray],
                     batch: int, threads: int) -> None:
        """Sums over the batch into ``outs`` (zeroed): each piece of REDUCE_ROWS rows
        accumulates into its own partial (one rounding chain of at most REDUCE_ROWS
        additions, not batch), then the partials are added in piece order. Pieces
        depend on the batch alone, so the result is the same for any number of
        threads."""
        pieces = [(s, min(s + REDUCE_ROWS, batch)) for s in range(0, batch, REDUCE_ROWS)]
        if len(pieces) <= 1:
            self._serial(batch)(*arrays, *outs, mask, 0, batch)
            return
        partial = [[np.zeros(o.shape) for o in outs] for _ in pieces]
        workers = len(_chunks(batch, threads, self.nodes))
        run_pieces(range(len(pieces)), lambda k: self._rows_objects(
            *arrays, *partial[k], mask, *pieces[k]), workers)
        for o, out in enumerate(outs):
            np.add.reduce(np.stack([p[o] for p in partial]), axis=0, out=out)


def _chunks(batch: int, threads: int, nodes: int) -> list[tuple[int, int]]:
    """Contiguous row ranges, one per thread, none smaller than MIN_ROWS_PER_THREAD rows
    or MIN_WORK_PER_THREAD node evaluations (``nodes`` per row)."""
    n = max(1, min(threads, batch // MIN_ROWS_PER_THREAD,
                   batch * nodes // MIN_WORK_PER_THREAD))
    return split_rows(0, batch, n)
