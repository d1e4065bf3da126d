"""Compiled tensor kernels: a tensor DAG as one native function of loop nests.

``TensorKernel(outputs, inputs)`` lowers shaped expressions through each registry
entry's lowering (backend/llvm/loops.py) into ``void run(double** buffers)``, compiles
it once (cached by IR text) and calls it on numpy arrays: every argument is checked
against its symbol's shape (naming the expected and given shapes) and converted to
contiguous float64 before any pointer reaches native code. Compile time follows the
number of tensor operations, not their sizes.

``threads=N`` splits one big call: the program is a sequence of stages (loops.Stage),
and the fixed chunks of its parallel stages are shared by the calling thread and N - 1
helper threads (tasks of the shared pool, in native code without the GIL); stage after
stage, in order. A chunk is always computed by the same code over the same elements,
so results are bit-identical to one thread's.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.build import as_operand
from ..core.expr import Expr
from ..errors import ShapeError
from . import dask_arrays
from .llvm.blas import Blas
from .llvm.engine import compile_function, numpy_data_offset
from .llvm.loops import LoopProgram, NotLowerable

_RUN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# a stage is spread over threads when it has at least this many elements of work (and
# two chunks); a serial stage this big runs with the other threads released, not
# waiting for it
PARALLEL_WORK = 1 << 16
_FLOAT64 = np.dtype(np.float64)

__all__ = ["NotLowerable", "TensorKernel", "lowerable"]


def lowerable(outputs: Sequence[Expr], inputs: Sequence[Expr]) -> bool:
    """Whether every node of ``outputs`` has a loop lowering."""
    try:
        LoopProgram([as_operand(o) for o in outputs], list(inputs), Blas.load)
    except NotLowerable:
        return False
    return True


class TensorKernel:
    """Outputs (shaped expressions) of inputs (tensor symbols), compiled to loops.

    ``k(*arrays, out=None)`` returns one float64 array per output, in the output's shape
    (written into ``out`` when given: arrays of those shapes, as numpy's ``out=``).
    ``threads`` > 1 cuts the program's parallel stages into chunks and spreads them
    over that many threads (``k(..., threads=N)`` changes N for one call; every N gives
    the same bits); ``parallel_stages`` counts the stages that are spread (0: every call
    runs in the calling thread, as for a kernel built with ``threads=1``, which has no
    chunked stages and compiles faster).
    Raises :class:`NotLowerable` at construction when an operation has no loop lowering.
    """

    def __init__(self, outputs: Sequence[Expr], inputs: Sequence[Expr], opt_level: int = 3,
                 blas: bool = True, threads: int = 1):
        if not (isinstance(threads, int) and threads >= 1):
            raise ValueError(f"TensorKernel: threads must be a positive int, got {threads!r}")
        self.threads = threads
        self.outputs = [as_operand(o) for o in outputs]
        self.inputs = list(inputs)
        unique = list(dict.fromkeys(self.outputs))
        self._slot_of = [unique.index(o) for o in self.outputs]
        program = LoopProgram(unique, self.inputs, Blas.load if blas else None,
                              threaded=threads > 1)
        self.ir = program.ir(numpy_data_offset())
        # the engine owns the machine code: kept as long as this kernel
        self._engine, address, self.compile_seconds, self.cache_hit = compile_function(
            self.ir, opt_level, "run")
        self._run = _RUN(address)
        # (parallel, chunks, elements of work) per stage
        self.stages = [(s.parallel, s.chunks, s.work) for s in program.stages]
        self._schedule = _schedule(self.stages)
        self.parallel_stages = sum(1 for parallel, chunks, work in self.stages
                                   if _spread(parallel, chunks, work))
        # (stage function, chunks) per stage, for the threads' work (llvm/team.py)
        self._plan_table = np.array(
            [(self._engine.get_function_address(f"stage{k}"), chunks)
             for k, (_, chunks, _) in enumerate(self.stages)] if self.parallel_stages
            else [], dtype=np.int64)
        self._unique = unique
        self._unique_shapes = [o.shape for o in unique]
        self._plan = program.buffers
        # constant arrays (float64) and index arrays (int64), kept alive with the kernel
        self._constants = [np.ascontiguousarray(b.value, dtype=np.float64)
                           if b.kind == "constant" else np.ascontiguousarray(b.value)
                           if b.kind == "index" else None for b in program.buffers]
        self._scratch = sum(b.index for b in program.buffers if b.kind == "scratch")
        self.shapes = [s.shape for s in self.inputs]
        self._spares: list[np.ndarray] = []
        self._kinds = [(b.kind, b.index) for b in self._plan]
        self._table = ctypes.c_void_p * len(self._plan)

    def __repr__(self) -> str:
        return (f"TensorKernel({len(self.outputs)} outputs, {len(self.inputs)} inputs, "
                f"{len(self._plan)} buffers)")

    def _arguments(self, values: Sequence[Any]) -> list[np.ndarray]:
        if len(values) != len(self.inputs):
            raise TypeError(f"TensorKernel: expected {len(self.inputs)} arguments "
                            f"({', '.join(str(s.param) for s in self.inputs)}), got "
                            f"{len(values)}")
        arrays = []
        for symbol, value in zip(self.inputs, values):
            if type(value) is np.ndarray and value.dtype is _FLOAT64 and \
                    value.shape == symbol.shape and value.flags.c_contiguous:
                arrays.append(value)            # already what the kernel reads
                continue
            array = np.asarray(value, dtype=np.float64)
            if array.shape != symbol.shape:
                raise ShapeError(f"TensorKernel: {symbol.param} must have shape "
                                 f"{symbol.shape}, got {array.shape}")
            arrays.append(np.ascontiguousarray(array))
        return arrays

    def _results(self, out: Any) -> list[np.ndarray]:
        if out is None:
            return [np.empty(shape) for shape in self._unique_shapes]
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        if len(outs) != len(self.outputs):
            raise TypeError(f"TensorKernel: out= needs {len(self.outputs)} arrays, got "
                            f"{len(outs)}")
        for array, expr in zip(outs, self.outputs):
            if not (isinstance(array, np.ndarray) and array.dtype == np.float64 and
                    array.shape == expr.shape and array.flags.c_contiguous and
                    array.flags.writeable):
                given = (f"{type(array).__name__} {getattr(array, 'dtype', '')} "
                         f"{getattr(array, 'shape', '')}")
                raise ShapeError(f"TensorKernel: out= must hold writable C-contiguous "
                                 f"float64 arrays of shape {expr.shape}, got {given}")
        return [outs[self._slot_of.index(k)] for k in range(len(self._unique))]

    def __call__(self, *values: Any, out: Any = None, threads: int | None = None
                 ) -> list[np.ndarray]:
        arrays = self._arguments(values)
        results = self._results(out)
        # a scratch array a previous call left (list.pop is atomic: concurrent calls on
        # threads never share one), or a new one
        try:
            scratch = self._spares.pop()
        except IndexError:
            scratch = np.empty(max(self._scratch, 1))
        # object addresses only: the kernel reads each array's data pointer itself, and
        # every array here is a validated, contiguous float64 ndarray kept alive
        sources = {"input": arrays, "output": results}
        objects = self._table(*[id(sources[kind][k]) if kind in sources else
                                id(self._constants[j]) if kind in ("constant", "index")
                                else id(scratch)
                                for j, (kind, k) in enumerate(self._kinds)])
        if self.parallel_stages and (self.threads if threads is None else threads) > 1:
            self._run_stages(ctypes.addressof(objects),
                             self.threads if threads is None else threads)
        else:
            self._run(ctypes.addressof(objects))
        self._spares.append(scratch)
        if out is not None:
            for k, slot in enumerate(self._slot_of):
                target = out[k] if isinstance(out, (list, tuple)) else out
                if target is not results[slot]:
                    target[...] = results[slot]
            return list(out) if isinstance(out, (list, tuple)) else [out]
        return [results[slot] for slot in self._slot_of]

    def _run_stages(self, address: int, threads: int) -> None:
        """One call on ``threads`` threads: each segment of stages with chunks to share
        is posted to up to ``threads - 1`` helpers (see _Team) and run by this thread
        too (native ``work``: chunks claimed one by one, so nobody waits for a helper
        that is late or busy elsewhere); the other segments run here alone."""
        sync = np.zeros(3 * len(self.stages), dtype=np.int64)   # llvm/team.py
        pointer, plan = sync.ctypes.data, self._plan_table.ctypes.data
        team = _team()
        work = team.work
        slots = team.acquire(threads - 1)
        posted: list[int] = []
        try:
            for first, end, shared in self._schedule:
                if shared and slots:
                    for slot in slots:
                        posted.append(slot)
                        team.post(slot, plan, address, pointer, first, end)
                work(plan, address, pointer, first, end, 0)
                # a helper has finished its share (or never took the job) before the
                # next segment, and before sync and the arrays may go
                while posted:
                    team.retract(posted.pop())
        finally:
            while posted:
                team.retract(posted.pop())
            team.release(slots)


class _Team:
    """Helper threads for threaded tensor-kernel calls, run as tasks of the shared pool.

    A helper serves one slot (a mailbox in native memory): it runs the jobs posted
    there, then keeps polling (yielding its core to anything else runnable) for about
    SPIN_SECONDS before its task ends. Calls in a loop thus find their helpers awake:
    waking a sleeping thread costs tens of microseconds here, and a core that slept
    runs slower for a while. A call owns its slots (a lock each) while it runs, so
    concurrent calls never share a helper; a call that finds none free runs alone."""

    SPIN_SECONDS = 5e-4

    def __init__(self) -> None:
        from .llvm.team import team_ir

        # the helpers run this module's code: it lives as long as the process
        self._engine, serve, _, _ = compile_function(team_ir(), 2, "serve")
        self._serve = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64)(serve)
        # work(plan, objects, sync, first_stage, end_stage, from_back)
        self.work = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p,
                                     ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_int64)(self._engine.get_function_address("work"))
        self._post = ctypes.CFUNCTYPE(None, ctypes.c_void_p, *[ctypes.c_int64] * 5)(
            self._engine.get_function_address("post"))
        self._retract = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(
            self._engine.get_function_address("retract"))
        self._lock = threading.Lock()
        self._slots: list[np.ndarray] = []            # six int64 each, never freed
        self._locks: list[threading.Lock] = []
        self._servers: list[Any] = []                 # each slot's pool task, or None
        self._polls = self._calibrate()

    def _calibrate(self) -> int:
        """Polls of an idle helper that take about SPIN_SECONDS."""
        import time

        slot, polls = np.zeros(6, dtype=np.int64), 2000
        start = time.perf_counter()
        self._serve(slot.ctypes.data, polls)
        per_poll = max((time.perf_counter() - start) / polls, 1e-8)
        return max(100, min(1_000_000, int(self.SPIN_SECONDS / per_poll)))

    def acquire(self, count: int) -> list[int]:
        """Up to ``count`` free slots, now owned by the caller."""
        with self._lock:
            while len(self._slots) < count:
                self._slots.append(np.zeros(6, dtype=np.int64))
                self._locks.append(threading.Lock())
                self._servers.append(None)
        taken = []
        for k, lock in enumerate(self._locks):
            if len(taken) == count:
                break
            if lock.acquire(blocking=False):
                taken.append(k)
        return taken

    def release(self, slots: list[int]) -> None:
        for k in slots:
            self._locks[k].release()

    def post(self, k: int, plan: int, objects: int, sync: int, first: int, end: int
             ) -> None:
        """Post a job to slot ``k`` (owned), starting its helper if it has none."""
        self._post(self._slots[k].ctypes.data, plan, objects, sync, first, end)
        server = self._servers[k]
        if server is None or server.done():
            from .threads import thread_pool

            try:
                self._servers[k] = thread_pool(len(self._slots) + 1).submit(
                    self._serve, self._slots[k].ctypes.data, self._polls)
            except RuntimeError:         # the pool is shut down: the caller works alone
                self._servers[k] = None

    def retract(self, k: int) -> None:
        self._retract(self._slots[k].ctypes.data)


_TEAM: _Team | None = None
_TEAM_LOCK = threading.Lock()


def _team() -> _Team:
    global _TEAM
    with _TEAM_LOCK:
        if _TEAM is None:
            _TEAM = _Team()
        return _TEAM


def _spread(parallel: bool, chunks: int, work: int) -> bool:
    """Whether a stage's chunks are worth sharing between threads."""
    return parallel and chunks >= 2 and work >= PARALLEL_WORK


def _schedule(stages: list[tuple[bool, int, int]]) -> list[tuple[int, int, bool]]:
    """A threaded call's segments (first stage, end stage, shared): runs of stages with
    chunks to share (and cheap serial stages between them, which one thread runs while
    the others wait a moment) are shared; large serial stages (a BLAS call, a column
    sum, ...) and cheap stages alone run in the calling thread only."""
    segments: list[list[Any]] = []
    for k, (parallel, chunks, work) in enumerate(stages):
        spread = _spread(parallel, chunks, work)
        joins = spread or work < PARALLEL_WORK        # may run inside a shared segment
        if segments and segments[-1][3] == joins:
            segments[-1][1] = k + 1
            segments[-1][2] = segments[-1][2] or spread
        else:
            segments.append([k, k + 1, spread, joins])
    merged: list[tuple[int, int, bool]] = []
    for first, end, shared, _ in segments:
        if merged and not shared and not merged[-1][2]:
            merged[-1] = (merged[-1][0], end, False)
        else:
            merged.append((first, end, shared))
    return merged


# -- hd.lambdify over tensor symbols ----------------------------------------------------------
# up to this many scalar nodes (core.scalarize.element_cost of the outputs) a tensor
# program is scalarized and unrolled (the element-level kernel: about 1 µs calls, compile
# time growing with the nodes: 0.3 s at 2,000, 2.3 s at 20,000); above, it is compiled to
# loops (0.03-0.15 s whatever the sizes, 10-16 µs calls). Measured by
# python -m benchmarks.scalarize_threshold.
SCALARIZE_LIMIT = 2_000
# rows of a batch per piece: the unit of work a thread takes, and of a reduce's partials
REDUCE_PIECE = 64


def choose_scalarize(exprs: Any, scalarize: bool | None) -> bool:
    """The hybrid choice of ``lambdify(..., scalarize=None)``: unrolled when small."""
    from ..core.scalarize import can_scalarize, element_cost

    if scalarize is not None:
        return bool(scalarize)
    roots = [exprs] if isinstance(exprs, Expr) else [e for e in exprs]
    roots = [as_operand(r) for r in roots]
    return element_cost(roots) <= SCALARIZE_LIMIT and can_scalarize(roots)


class TensorLambdified:
    """``hd.lambdify`` of tensor symbols compiled to loops (``scalarize=False``, or a
    large program with ``scalarize=None``). Each symbol is one argument of its shape, or
    with one leading batch dimension (rows run one by one through the compiled kernel;
    unbatched arguments are shared); results come in the outputs' shapes, gradients in
    their arguments' shapes. ``out=`` takes arrays of the result shapes (single point).
    ``threads`` splits a batch's rows, or, for a single call (or a batch of one piece),
    the kernel's parallel stages."""

    def __init__(self, args: Sequence[Expr], exprs: Any, derivatives: str | None = None,
                 wrt: Any = None, reduce: str | None = None, threads: int = 1):
        from ..calculus.jacobian import gradient, hessian, jacobian

        self._init = (list(args), exprs, derivatives, wrt, reduce, threads)
        self.args = [as_operand(a) for a in args]
        if not all(a.is_symbol for a in self.args):
            raise TypeError("lambdify: tensor arguments must be symbols")
        self.single = isinstance(exprs, Expr)
        values = [as_operand(e) for e in ([exprs] if self.single else exprs)]
        picked = self.args if wrt is None else [as_operand(w) for w in (
            [wrt] if isinstance(wrt, Expr) else wrt)]
        for w in picked:
            if w not in self.args:
                raise ValueError(f"lambdify: wrt item {w} is not one of the arguments")
        self.several = derivatives in ("gradient", "jacobian") and (
            wrt is None and len(self.args) > 1 or wrt is not None and not isinstance(wrt, Expr)
            and len(picked) > 1)
        self.derivatives, self.reduce, self.threads = derivatives, reduce, threads
        blocks: list[list[Expr]] = [values]
        if derivatives is not None:
            if derivatives in ("gradient", "hessian") and (len(values) != 1 or
                                                           values[0].shape):
                raise ValueError(f"lambdify: derivatives={derivatives!r} needs one scalar "
                                 f"expression")
            if derivatives == "gradient":
                blocks.append(list(gradient(values[0], picked)))
            elif derivatives == "jacobian":
                blocks.append([jacobian(v, w) for v in values for w in picked])
            elif derivatives == "hessian":
                if len(picked) != 1:
                    raise ValueError("lambdify: derivatives='hessian' over tensor symbols "
                                     "needs one wrt symbol")
                blocks.append([gradient(values[0], picked[0])])
                blocks.append([hessian(values[0], picked[0])])
            else:
                raise ValueError(f"lambdify: derivatives={derivatives!r} is not available "
                                 f"for loop kernels over tensor symbols (use None, "
                                 f"'gradient', 'jacobian' or 'hessian', or scalarize=True)")
        self.blocks = blocks
        self.kernel = TensorKernel([e for b in blocks for e in b], self.args,
                                   threads=threads)
        self._shapes = [a.shape for a in self.args]
        self.compile_seconds = self.kernel.compile_seconds

    def __reduce__(self) -> tuple:
        """Pickles as its expressions and options (never machine code): the kernel is
        compiled again where it is loaded."""
        return (_rebuild, self._init)

    def to_c(self, name: str = "f") -> tuple[str, str]:
        """``(source, header)``: this kernel as self-contained C99 (libm only; loop
        nests, contractions as plain loops), the function ``void name(long n_rows,
        const double *arg0, long stride0, ..., double *out0, ...)`` documented in the
        header (see hybridad/backend/c)."""
        from .c import tensor_to_c

        return tensor_to_c(self, name)

    def __repr__(self) -> str:
        return (f"TensorLambdified({len(self.args)} tensor arguments, derivatives="
                f"{self.derivatives!r}, {self.kernel!r})")

    def _structure(self, flat: list[np.ndarray], scalars: bool = True) -> Any:
        if scalars:                       # 0-d results as numpy scalars, as Kernel's
            flat = [f[()] if f.ndim == 0 else f for f in flat]
        parts, start = [], 0
        for block in self.blocks:
            parts.append(flat[start:start + len(block)])
            start += len(block)
        values = parts[0][0] if self.single else tuple(parts[0])
        if self.derivatives is None:
            return values
        if self.derivatives == "hessian":
            return values, parts[1][0], parts[2][0]
        derivative = tuple(parts[1]) if self.several else parts[1][0]
        if self.derivatives == "jacobian" and not self.single and not self.several:
            derivative = tuple(parts[1])
        return values, derivative

    def __call__(self, *values: Any, out: Any = None) -> Any:
        if dask_arrays.has_dask(values):        # lazy: one kernel call per dask chunk
            return dask_arrays.call_kernel(self, values, out)
        if out is None and len(values) == len(self._shapes) and all(
                type(v) is np.ndarray and v.shape == s for v, s in zip(values, self._shapes)):
            return self._structure(self.kernel(*values))     # one point: straight through
        arrays = [np.asarray(v, dtype=np.float64) for v in values]
        if len(arrays) != len(self.args):
            raise TypeError(f"kernel takes {len(self.args)} argument(s) "
                            f"({', '.join(str(a.param) for a in self.args)}), got "
                            f"{len(arrays)}")
        batch = None
        for array, symbol in zip(arrays, self.args):
            if array.shape == symbol.shape:
                continue
            if array.shape[1:] != symbol.shape:
                raise ShapeError(f"kernel: {symbol.param} must have shape {symbol.shape} "
                                 f"(or a leading batch dimension), got {array.shape}")
            if batch is not None and array.shape[0] != batch:
                raise ShapeError(f"kernel: batched arguments disagree on the batch size: "
                                 f"{batch} and {array.shape[0]}")
            batch = array.shape[0]
        if batch is None:
            if self.reduce is not None:
                raise ValueError("kernel: reduce= needs a batch (a leading dimension)")
            flat = self.kernel(*arrays, out=None if out is None else _flatten_out(out))
            return self._structure(flat, scalars=out is None)
        return self._structure(self._rows(arrays, batch))

    def _rows(self, arrays: list[np.ndarray], batch: int) -> list[np.ndarray]:
        """A batch, row by row through the compiled kernel (the rows split across
        ``threads``: the kernel releases the GIL). With ``reduce``, rows are summed in
        fixed pieces of REDUCE_PIECE rows whose partials are added in order, so the
        result does not depend on the number of threads."""
        outputs = [e for b in self.blocks for e in b]
        shared = [a.shape == s.shape for a, s in zip(arrays, self.args)]
        # threads split the pieces of rows when there are several, else each row's call
        # (never both: that would ask for threads * threads)
        inner = self.threads if batch <= REDUCE_PIECE else 1

        def row(r: int) -> list[np.ndarray]:
            return [a if flag else a[r] for a, flag in zip(arrays, shared)]

        if self.reduce is None:
            results = [np.empty((batch,) + o.shape) for o in outputs]

            def run(rows: range) -> None:
                for r in rows:
                    self.kernel(*row(r), out=[res[r, ...] for res in results],
                                threads=inner)

            self._spread([range(s, min(s + REDUCE_PIECE, batch)) for s in
                          range(0, batch, REDUCE_PIECE)], run)
            return results
        pieces = [range(s, min(s + REDUCE_PIECE, batch)) for s in
                  range(0, batch, REDUCE_PIECE)]
        partials: list[Any] = [None] * len(pieces)

        def run_piece(rows: range) -> None:
            total = [np.zeros(o.shape) for o in outputs]
            for r in rows:
                for acc, value in zip(total, self.kernel(*row(r), threads=inner)):
                    acc += value
            partials[rows.start // REDUCE_PIECE] = total

        self._spread(pieces, run_piece)
        flat = [np.zeros(o.shape) for o in outputs]
        for part in partials:
            for acc, value in zip(flat, part):
                acc += value
        if self.reduce == "mean":        # the mean of no rows is nan, as Kernel's and C's
            flat = [f / batch if batch else np.full(f.shape, np.nan) for f in flat]
        return flat

    def _spread(self, pieces: list[range], run: Any) -> None:
        """``run(piece)`` for every piece, on ``threads`` threads when there are several
        pieces."""
        from .threads import run_pieces

        run_pieces(pieces, run, self.threads)


def _flatten_out(out: Any) -> list[np.ndarray]:
    """``out=`` in the result's nesting, as a flat list of arrays."""
    flat, stack = [], [out]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(reversed(item))
        else:
            flat.append(item)
    return flat


def _rebuild(args: Any, exprs: Any, derivatives: Any, wrt: Any, reduce: Any,
             threads: int) -> Any:
    from .kernel import _tensor_arguments, lambdify

    if _tensor_arguments(args):   # through lambdify's cache: built once per process
        return lambdify(args, exprs, derivatives, wrt=wrt, reduce=reduce, threads=threads,
                        scalarize=False)
    return TensorLambdified(args, exprs, derivatives, wrt=wrt, reduce=reduce, threads=threads)
