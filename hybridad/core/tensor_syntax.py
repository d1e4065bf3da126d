"""How Python's and numpy's syntax reaches the tensor operations.

Operators and methods on :class:`~hybridad.core.expr.Expr` (``X @ W``, ``X.T``,
``x[1:]``, ``x[[0, 2]]``, ``.reshape``), what ``len`` and item assignment do (inside a
trace they ask for the element-level trace), numpy's ``__array_function__`` dispatch
(``np.sum(H, axis=0)``, ``np.concatenate``), and :data:`BUILDERS`, the tensor functions
by the name they print under, which the parser calls. The operations themselves are
the registry entries and builders of :mod:`hybridad.core.tensor_ops`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import build as b
from .expr import Expr
from .tensor_ops import (
    apply_index, broadcast_to, concatenate, dot, einsum, expand_dims, logsumexp, matmul,
    mean, reduce_max, reduce_min, reshape, softmax, squeeze, stack, take, tensordot,
    transpose,
)


def elements_needed(what: str) -> None:
    """Inside a trace, ask for the element-level trace (numpy's own code then runs on
    object arrays of the elements); outside, return and let the caller raise."""
    from .trace_state import NeedsElements, inside_trace

    if inside_trace():
        raise NeedsElements(f"{what} on a traced array")


def _len(self: Expr) -> int:
    from .trace_state import NeedsElements, inside_trace

    if inside_trace() and self.shape:
        raise NeedsElements("len() of a traced array")
    raise TypeError(f"len() of an expression is not defined (numpy would read the "
                    f"expression as a sequence); use .shape[0], here {self.shape}")


def _setitem(self: Expr, index: Any, value: Any) -> None:
    from .trace_state import NeedsElements, inside_trace

    if inside_trace() and self.shape:
        raise NeedsElements("assignment into a traced array")
    raise TypeError("expressions are immutable: build a new one (hd.where, "
                    "hd.concatenate) instead of assigning into an element")


def _getitem(self: Expr, index: Any) -> Expr:
    if not self.shape:
        raise TypeError(f"a scalar expression cannot be indexed: {self}[{index!r}]")
    gather = _gather_form(index, self.ndim)
    if gather is not None:
        return take(self, *gather)
    return apply_index(self, index)


def _gather_form(index: Any, ndim: int) -> tuple[Any, int] | None:
    """(indices, axis) when ``index`` is one integer array (or list) at some axis with
    full slices elsewhere, as ``x[[0, 2]]`` or ``x[:, idx]``; None for basic indexing."""
    items = index if isinstance(index, tuple) else (index,)
    arrays = [k for k, item in enumerate(items)
              if isinstance(item, (list, np.ndarray))]
    if not arrays:
        return None
    full = all(isinstance(item, slice) and item == slice(None)
               for k, item in enumerate(items) if k != arrays[0])
    if len(arrays) > 1 or not full or arrays[0] >= ndim:
        raise TypeError(f"indexing with an integer array is supported as one array at one "
                        f"axis with ':' elsewhere (x[idx], x[:, idx]), got {index!r}")
    return items[arrays[0]], arrays[0]


Expr.__matmul__ = lambda self, other: matmul(self, other)  # type: ignore[attr-defined]
Expr.__rmatmul__ = lambda self, other: matmul(other, self)  # type: ignore[attr-defined]
Expr.__getitem__ = _getitem  # type: ignore[attr-defined]
Expr.__setitem__ = _setitem  # type: ignore[attr-defined]
Expr.__len__ = _len  # type: ignore[attr-defined]
Expr.copy = lambda self: self  # type: ignore[attr-defined]  (immutable)
Expr.T = property(lambda self: transpose(self))  # type: ignore[attr-defined]
Expr.transpose = lambda self, *axes: transpose(  # type: ignore[attr-defined]
    self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else
    (axes or None))
Expr.reshape = lambda self, *shape: reshape(  # type: ignore[attr-defined]
    self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)


def _constant_builder(values: Any) -> Expr:
    return b.constant_node(values)


def _sum_builder(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return b.sum(x, axis, keepdims)


#: Public tensor functions by the name they print under (``sum(x, axis=0)``,
#: ``reshape(x, (2, 3))``): what a parser calls for ``name(args, keyword=value)``.
BUILDERS: dict[str, Any] = {
    "sum": _sum_builder, "mean": mean, "reshape": reshape, "transpose": transpose,
    "broadcast_to": broadcast_to, "expand_dims": expand_dims, "squeeze": squeeze,
    "matmul": matmul, "constant": _constant_builder, "max": reduce_max, "min": reduce_min,
    "logsumexp": logsumexp, "softmax": softmax, "concatenate": concatenate,
    "stack": stack, "einsum": einsum, "tensordot": tensordot, "dot": dot, "take": take,
}


def _ravel(x: Any, order: str = "C") -> Expr:
    return reshape(x, (-1,))


def _where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None or y is None:
        raise TypeError("np.where(condition) of an expression has no numeric answer; "
                        "use the three-argument form np.where(condition, x, y)")
    return b.where(condition, x, y)


#: numpy functions answered by hybridad when a shaped expression is among the arguments
NUMPY_FUNCTIONS: dict[Any, Any] = {
    np.sum: _sum_builder, np.mean: mean, np.max: reduce_max, np.amax: reduce_max,
    np.min: reduce_min, np.amin: reduce_min, np.reshape: reshape, np.transpose: transpose,
    np.concatenate: concatenate, np.stack: stack, np.einsum: einsum,
    np.tensordot: tensordot, np.dot: dot, np.where: _where, np.expand_dims: expand_dims,
    np.squeeze: squeeze, np.broadcast_to: broadcast_to, np.take: take, np.ravel: _ravel,
    np.shape: lambda x: x.shape, np.ndim: lambda x: x.ndim, np.size: lambda x: x.size,
}


def _holds_tensor(values: Any) -> bool:
    """Whether a shaped expression is among ``values`` (looking one level into lists)."""
    for value in values:
        if isinstance(value, Expr) and value.shape:
            return True
        if isinstance(value, (list, tuple)) and any(
                isinstance(v, Expr) and v.shape for v in value):
            return True
    return False


def _array_function(self: Expr, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
    """numpy functions on shaped expressions build nodes (``np.sum(H, axis=0)``,
    ``np.concatenate``, ``np.einsum``, ``np.where``); with scalar expressions only,
    numpy's own implementation runs, as for any object."""
    if _holds_tensor(args) or _holds_tensor(kwargs.values()):
        function = NUMPY_FUNCTIONS.get(func)
        if function is None:
            elements_needed(f"numpy.{func.__name__}")
            raise TypeError(f"numpy.{func.__name__} is not defined on hybridad tensor "
                            f"expressions; the supported numpy functions are "
                            f"{', '.join(sorted(f.__name__ for f in NUMPY_FUNCTIONS))}")
        return function(*args, **kwargs)
    return func._implementation(*args, **kwargs)


Expr.__array_function__ = _array_function  # type: ignore[attr-defined]
