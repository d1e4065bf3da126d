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
from . import engine
from . import codegen, pyentry
from .codegen import KernelSpec, kernel_ir

_ROWS = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)


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
        self.segments = max(1, text.count("define internal void @\"seg_"),
                            text.count("define internal void @seg_"))
        self.shapes = [g.shape for g in groups]
        self.sizes = [g.size for g in groups]
        self.widths = [len(b.exprs) for b in blocks]
        self.accumulate = accumulate
        self._one = ctypes.PYFUNCTYPE(None, *([ctypes.py_object] * (len(groups) + 1)))(
            self.compiled.one)
        self._rows = _ROWS(self.compiled.rows)

    def native_entry(self, fallback: Any) -> Any:
        """The compiled single-point entry as a builtin function calling ``fallback``
        with the same arguments for anything it does not take; None if not compiled."""
        if not self.compiled.call:
            return None
        return pyentry.make_builtin(self.compiled.call, fallback, self.compiled)

    def _new_outputs(self, lead: tuple[int, ...]) -> list[np.ndarray]:
        make = np.zeros if self.accumulate else np.empty
        return [make(lead + (w,)) for w in self.widths]

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
        strides = [size if b else 0 for size, b in zip(self.sizes, batched, strict=True)]
        chunks = _chunks(batch, threads)
        if reduce is None:
            outs = self._new_outputs((batch,))
            self._run_chunks(arrays, strides, [outs] * len(chunks), self.widths, chunks,
                             threads)
            return outs
        partial = [self._new_outputs(()) for _ in chunks]
        self._run_chunks(arrays, strides, partial, [0] * len(self.widths), chunks, threads)
        return [np.sum([p[o] for p in partial], axis=0) for o in range(len(self.widths))]

    def _run_chunks(self, arrays: list[np.ndarray], strides: list[int],
                    outs_per_chunk: list[list[np.ndarray]], out_strides: list[int],
                    chunks: list[tuple[int, int]], threads: int) -> None:
        ins = _pointer_array(arrays)
        in_strides = (ctypes.c_int64 * max(len(strides), 1))(*strides)
        out_step = (ctypes.c_int64 * max(len(out_strides), 1))(*out_strides)
        calls = []
        for (start, end), outs in zip(chunks, outs_per_chunk, strict=True):
            out_ptrs = _pointer_array(outs)
            calls.append((out_ptrs, start, end))

        def run(call: tuple) -> None:
            out_ptrs, start, end = call
            self._rows(ctypes.addressof(ins), ctypes.addressof(in_strides),
                       ctypes.addressof(out_ptrs), ctypes.addressof(out_step), start, end)

        if len(calls) == 1:
            run(calls[0])
            return
        from ..kernel import thread_pool

        list(thread_pool(threads).map(run, calls))


def _pointer_array(arrays: list[np.ndarray]) -> ctypes.Array:
    return (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])


def _chunks(batch: int, threads: int) -> list[tuple[int, int]]:
    """Contiguous row ranges, one per thread, none smaller than MIN_ROWS_PER_THREAD."""
    from ..kernel import MIN_ROWS_PER_THREAD

    n = max(1, min(threads, batch // MIN_ROWS_PER_THREAD))
    bounds = np.linspace(0, batch, n + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
