"""Calling compiled kernels: output allocation, batch splitting across threads.

Arguments reach this module already validated (shape, dtype float64, C-contiguous), so
every pointer handed to native code covers exactly the rows and columns the kernel
reads or writes. The single-point entry ``one`` is called through a ``PYFUNCTYPE``
(no GIL release: the call is shorter than releasing it); the batch entry ``rows``
through a ``CFUNCTYPE``, which releases the GIL so threads run in parallel.
"""

from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np

from ..layout import F64, Block, Group
from ..threads import MIN_ROWS_PER_THREAD, MIN_WORK_PER_THREAD, thread_pool
from . import codegen, engine, pyentry
from .codegen import KernelSpec, kernel_ir

# Rows summed in one chain by reduce="sum"/"mean" (see LLVMRunner._reduce_rows).
REDUCE_ROWS = 8192

class LLVMRunner:
    """Native entry points of one kernel."""

    def __init__(self, groups: list[Group], blocks: list[Block], accumulate: bool,
                 fastmath: bool, opt_level: int, structure: pyentry.Structure | None = None):
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
        self.shapes = [g.shape for g in groups]
        self.sizes = [g.size for g in groups]
        self.widths = [len(b.exprs) for b in blocks]
        self.block_shapes = [b.shape for b in blocks]
        self.accumulate = accumulate
        self._one = ctypes.PYFUNCTYPE(None, *([ctypes.py_object] * (len(groups) + 1)))(
            self.compiled.one)
        # CFUNCTYPE releases the GIL during the call: batches run in parallel threads
        self._rows_objects = ctypes.CFUNCTYPE(
            None, *([ctypes.py_object] * (len(groups) + len(blocks))), ctypes.c_int64,
            ctypes.c_int64, ctypes.c_int64)(self.compiled.rows_objects)
        self._rows_objects_gil = ctypes.PYFUNCTYPE(
            None, *([ctypes.py_object] * (len(groups) + len(blocks))), ctypes.c_int64,
            ctypes.c_int64, ctypes.c_int64)(self.compiled.rows_objects)

    def native_entry(self, fallback: Any) -> Any:
        """The compiled single-point entry as a builtin function calling ``fallback``
        with the same arguments for anything it does not take; None if not compiled."""
        if not self.compiled.call:
            return None
        return pyentry.make_builtin(self.compiled.call, fallback, self.compiled)

    def _new_outputs(self, lead: tuple[int, ...]) -> list[np.ndarray]:
        make = np.zeros if self.accumulate else np.empty
        return [make(lead + shape) for shape in self.block_shapes]

    def single_flat(self) -> Any:
        """``run(args) -> flat outputs | None``: the single-point fast path. Every argument
        must already be a float64, C-contiguous, aligned array of exactly its group's
        shape (else None: the caller converts); the blocks come back to back in one
        fresh array."""
        one, shapes, total = self._one, self.shapes, sum(self.widths)
        make = np.zeros if self.accumulate else np.empty
        ndarray = np.ndarray
        if len(shapes) == 1:
            shape = shapes[0]

            def run_one(args: Sequence[Any]) -> np.ndarray | None:
                a = args[0]
                if type(a) is not ndarray or a.dtype is not F64 or a.shape != shape \
                        or not a.flags.carray:
                    return None
                out = make(total)
                one(a, out)
                return out

            return run_one

        def run(args: Sequence[Any]) -> np.ndarray | None:
            for a, shape in zip(args, shapes):
                if type(a) is not ndarray or a.dtype is not F64 or a.shape != shape \
                        or not a.flags.carray:
                    return None
            out = make(total)
            one(*args, out)
            return out

        return run

    def single(self, arrays: list[np.ndarray]) -> np.ndarray:
        out = (np.zeros if self.accumulate else np.empty)(sum(self.widths))
        self._one(*arrays, out)
        return out

    def rows(self, arrays: list[np.ndarray], batched: list[bool], batch: int,
             reduce: str | None, threads: int) -> list[np.ndarray]:
        """All rows; batched arguments advance one row per row, shared ones stay."""
        mask = 0
        for g, b in enumerate(batched):
            mask |= b << g
        chunks = _chunks(batch, threads, self.nodes)
        if reduce is None:
            outs = self._new_outputs((batch,))
            self._run_chunks(arrays, mask, [outs] * len(chunks), chunks, threads)
            return outs
        return self._reduce_rows(arrays, mask, batch, len(chunks))

    def _reduce_rows(self, arrays: list[np.ndarray], mask: int, batch: int, n_threads: int
                     ) -> list[np.ndarray]:
        """Sums over the batch: each piece of REDUCE_ROWS rows accumulates into its own
        partial (one rounding chain of at most REDUCE_ROWS additions, not batch), then
        the partials are added in piece order. Pieces depend on the batch alone, so the
        result is the same for any number of threads."""
        pieces = [(s, min(s + REDUCE_ROWS, batch)) for s in range(0, batch, REDUCE_ROWS)]
        partial = [self._new_outputs(()) for _ in pieces] or [self._new_outputs(())]
        if len(pieces) <= 1:
            self._run_chunks(arrays, mask, partial, pieces or [(0, 0)], 1)
            return partial[0]
        bounds = [len(pieces) * k // n_threads for k in range(n_threads + 1)]
        share = [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

        def run_share(first: int, last: int) -> None:
            for k in range(first, last):
                self._rows_objects(*arrays, *partial[k], mask, *pieces[k])

        if len(share) == 1:
            run_share(*share[0])
        else:
            others = [thread_pool(n_threads).submit(run_share, *job) for job in share[1:]]
            run_share(*share[0])
            for future in others:
                future.result()
        return [np.add.reduce(np.stack([p[o] for p in partial]), axis=0)
                for o in range(len(self.widths))]

    def _run_chunks(self, arrays: list[np.ndarray], mask: int,
                    outs_per_chunk: list[list[np.ndarray]], chunks: list[tuple[int, int]],
                    threads: int) -> None:
        if len(chunks) == 1:
            start, end = chunks[0]
            # short calls keep the GIL (releasing it costs about a microsecond)
            run = self._rows_objects if end - start >= MIN_ROWS_PER_THREAD else \
                self._rows_objects_gil
            run(*arrays, *outs_per_chunk[0], mask, start, end)
            return
        run = self._rows_objects
        jobs = list(zip(outs_per_chunk, chunks))
        pool = thread_pool(threads)
        others = [pool.submit(run, *arrays, *outs, mask, *rows) for outs, rows in jobs[1:]]
        outs, rows = jobs[0]
        run(*arrays, *outs, mask, *rows)          # the calling thread takes the first chunk
        for future in others:
            future.result()


def _chunks(batch: int, threads: int, nodes: int) -> list[tuple[int, int]]:
    """Contiguous row ranges, one per thread, none smaller than MIN_ROWS_PER_THREAD rows
    or MIN_WORK_PER_THREAD node evaluations (``nodes`` per row)."""
    n = max(1, min(threads, batch // MIN_ROWS_PER_THREAD,
                   batch * nodes // MIN_WORK_PER_THREAD))
    if n == 1:
        return [(0, batch)]
    bounds = [batch * k // n for k in range(n + 1)]
    return list(zip(bounds[:-1], bounds[1:]))
