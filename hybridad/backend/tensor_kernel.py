"""Compiled tensor kernels: a tensor DAG as one native function of loop nests.

``TensorKernel(outputs, inputs)`` lowers shaped expressions through each registry
entry's lowering (backend/llvm/loops.py) into ``void run(double** buffers)``, compiles
it once (cached by IR text) and calls it on numpy arrays: every argument is checked
against its symbol's shape (naming the expected and given shapes) and converted to
contiguous float64 before any pointer reaches native code. Compile time follows the
number of tensor operations, not their sizes.
"""

from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np

from ..core.build import as_operand
from ..core.expr import Expr
from ..errors import ShapeError
from .llvm.blas import Blas
from .llvm.engine import compile_function, numpy_data_offset
from .llvm.loops import LoopProgram, NotLowerable

_RUN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_FLOAT64 = np.dtype(np.float64)

__all__ = ["TensorKernel", "NotLowerable", "lowerable"]


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
    Raises :class:`NotLowerable` at construction when an operation has no loop lowering.
    """

    def __init__(self, outputs: Sequence[Expr], inputs: Sequence[Expr], opt_level: int = 3,
                 blas: bool = True):
        self.outputs = [as_operand(o) for o in outputs]
        self.inputs = list(inputs)
        unique = list(dict.fromkeys(self.outputs))
        self._slot_of = [unique.index(o) for o in self.outputs]
        program = LoopProgram(unique, self.inputs, Blas.load if blas else None)
        self.ir = program.ir(numpy_data_offset())
        # the engine owns the machine code: kept as long as this kernel
        self._engine, address, self.compile_seconds, self.cache_hit = compile_function(
            self.ir, opt_level, "run")
        self._run = _RUN(address)
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

    def __call__(self, *values: Any, out: Any = None) -> list[np.ndarray]:
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
        self._run(ctypes.addressof(objects))
        self._spares.append(scratch)
        if out is not None:
            for k, slot in enumerate(self._slot_of):
                target = out[k] if isinstance(out, (list, tuple)) else out
                if target is not results[slot]:
                    target[...] = results[slot]
            return list(out) if isinstance(out, (list, tuple)) else [out]
        return [results[slot] for slot in self._slot_of]


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
    their arguments' shapes. ``out=`` takes arrays of the result shapes (single point)."""

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
        self.kernel = TensorKernel([e for b in blocks for e in b], self.args)
        self._shapes = [a.shape for a in self.args]
        self.compile_seconds = self.kernel.compile_seconds

    def __reduce__(self) -> tuple:
        """Pickles as its expressions and options (never machine code): the kernel is
        compiled again where it is loaded."""
        return (_rebuild, self._init)

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

        def row(r: int) -> list[np.ndarray]:
            return [a if flag else a[r] for a, flag in zip(arrays, shared)]

        if self.reduce is None:
            results = [np.empty((batch,) + o.shape) for o in outputs]

            def run(rows: range) -> None:
                for r in rows:
                    self.kernel(*row(r), out=[res[r, ...] for res in results])

            self._spread([range(s, min(s + REDUCE_PIECE, batch)) for s in
                          range(0, batch, REDUCE_PIECE)], run)
            return results
        pieces = [range(s, min(s + REDUCE_PIECE, batch)) for s in
                  range(0, batch, REDUCE_PIECE)]
        partials: list[Any] = [None] * len(pieces)

        def run_piece(rows: range) -> None:
            total = [np.zeros(o.shape) for o in outputs]
            for r in rows:
                for acc, value in zip(total, self.kernel(*row(r))):
                    acc += value
            partials[rows.start // REDUCE_PIECE] = total

        self._spread(pieces, run_piece)
        flat = [np.zeros(o.shape) for o in outputs]
        for part in partials:
            for acc, value in zip(flat, part):
                acc += value
        if self.reduce == "mean" and batch:
            flat = [f / batch for f in flat]
        return flat

    def _spread(self, pieces: list[range], run: Any) -> None:
        """``run(piece)`` for every piece, on ``threads`` threads when there are several
        pieces."""
        if self.threads == 1 or len(pieces) < 2:
            for piece in pieces:
                run(piece)
            return
        from .threads import thread_pool

        list(thread_pool(self.threads).map(run, pieces))


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
             threads: int) -> TensorLambdified:
    return TensorLambdified(args, exprs, derivatives, wrt=wrt, reduce=reduce, threads=threads)
