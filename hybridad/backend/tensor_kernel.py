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
from .llvm.engine import compile_function
from .llvm.loops import LoopProgram, NotLowerable

_RUN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

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
        self.ir = program.ir()
        address, self.compile_seconds, self.cache_hit = compile_function(
            self.ir, opt_level, "run")
        self._run = _RUN(address)
        self._unique = unique
        self._plan = program.buffers
        self._constants = [np.ascontiguousarray(b.value, dtype=np.float64)
                           if b.kind == "constant" else None for b in program.buffers]
        self._scratch = sum(b.index for b in program.buffers if b.kind == "scratch")
        self.shapes = [s.shape for s in self.inputs]
        self._spare: np.ndarray | None = None

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
            array = np.asarray(value, dtype=np.float64)
            if array.shape != symbol.shape:
                raise ShapeError(f"TensorKernel: {symbol.param} must have shape "
                                 f"{symbol.shape}, got {array.shape}")
            arrays.append(np.ascontiguousarray(array))
        return arrays

    def _results(self, out: Any) -> list[np.ndarray]:
        if out is None:
            return [np.empty(o.shape) for o in self._unique]
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
        # the scratch array of the previous call, unless another call holds it (threads)
        scratch, self._spare = self._spare, None
        if scratch is None:
            scratch = np.empty(max(self._scratch, 1))
        table = np.empty(len(self._plan), dtype=np.uintp)
        offset = 0
        for k, buffer in enumerate(self._plan):
            if buffer.kind == "input":
                table[k] = arrays[buffer.index].ctypes.data
            elif buffer.kind == "output":
                table[k] = results[buffer.index].ctypes.data
            elif buffer.kind == "constant":
                table[k] = self._constants[k].ctypes.data
            else:
                table[k] = scratch.ctypes.data + 8 * offset
                offset += buffer.index
        self._run(table.ctypes.data)
        self._spare = scratch
        if out is not None:
            for k, slot in enumerate(self._slot_of):
                target = out[k] if isinstance(out, (list, tuple)) else out
                if target is not results[slot]:
                    target[...] = results[slot]
            return list(out) if isinstance(out, (list, tuple)) else [out]
        return [results[slot] for slot in self._slot_of]
