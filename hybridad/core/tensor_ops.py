"""Structural primitives: operations on whole shaped values (DESIGN.md §6).

Each entry holds its shape rule (errors name the shapes), numpy evaluation (which also
runs on object arrays of scalar expressions, so the same rule scalarizes a tensor
expression), a ``(jvp, vjp)`` pair per argument (the tangent map and its transpose, as
in JAX: reverse mode is linearize-then-transpose), a construction-time simplifier and
its printed form. Every one of them is linear in each argument (matmul is bilinear), so
the derivative rules are the operation itself applied to tangents, and its transpose
to cotangents:

=================  ===========================  ====================================
operation          jvp                          vjp (transpose)
=================  ===========================  ====================================
A @ B              dA @ B,  A @ dB              G @ B.T,  A.T @ G (summed over batch)
sum(x, axes)       sum(dx, axes)                broadcast of G back over ``axes``
reshape(x, s)      reshape(dx, s)               reshape(G, x.shape)
transpose(x, p)    transpose(dx, p)             transpose(G, inverse of p)
broadcast_to(x,s)  broadcast_to(dx, s)          G summed over the broadcast axes
x[index]           dx[index]                    G scattered into zeros of x.shape
scatter(g, ...)    scatter(dg, ...)             G[index]
=================  ===========================  ====================================
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ShapeError
from . import build as b
from .expr import Expr
from .registry import Flags, Primitive, register

Shape = tuple[int, ...]


def _no_sympy(ns: Any, *args: Any) -> Any:
    from ..errors import HybridadError

    raise HybridadError("tensor operations have no SymPy form; scalarize the expression "
                        "first (hd.scalarize)")


def _structural(name: str, arity: int, numpy: Any, shape: Any, linear: tuple,
                format: Any, simplify: Any = None) -> Primitive:
    return register(Primitive(name, arity, numpy, (None,) * arity, _no_sympy, simplify,
                              (), Flags.LINEAR, (), None, None, (), shape, linear, format))


def _tuple_text(values: tuple) -> str:
    return f"({values[0]},)" if len(values) == 1 else f"({', '.join(map(str, values))})"


def _postfix(text: tuple[str, int]) -> str:
    """An operand of a postfix form (``x.T``, ``x[1:]``): parenthesised unless atomic."""
    return text[0] if text[1] >= _ATOM else f"({text[0]})"


_ATOM, _PRODUCT = 6, 2


# -- axes and shapes -------------------------------------------------------------------------
def normalize_axes(axis: Any, ndim: int, name: str) -> tuple[int, ...]:
    """``axis`` (None, an int or a sequence) as sorted non-negative axes of ``ndim``."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normal = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ShapeError(f"{name}: axis {a} is out of bounds for a value of shape "
                             f"with {ndim} dimensions")
        normal.append(int(a) % ndim)
    if len(set(normal)) != len(normal):
        raise ShapeError(f"{name}: repeated axis in {axis}")
    return tuple(sorted(normal))


def unbroadcast(g: Expr, shape: Shape) -> Expr:
    """``g`` summed over the axes along which a value of ``shape`` was broadcast to
    ``g.shape`` (the transpose of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and g.shape[lead + i] != 1)
    total = reduce_sum(g, axes)
    return total if total.shape == shape else reshape(total, shape)


# -- matmul ----------------------------------------------------------------------------------
def _matmul_shape(shapes: tuple[Shape, Shape], param: None) -> Shape:
    a, c = shapes
    if not a or not c:
        raise ShapeError(f"matmul: operands must have at least one dimension, got shapes "
                         f"{a} and {c} (use * to scale by a scalar)")
    a2 = (1,) + a if len(a) == 1 else a
    c2 = c + (1,) if len(c) == 1 else c
    if a2[-1] != c2[-2]:
        raise ShapeError(f"matmul: shapes {a} and {c} are not aligned: the first has "
                         f"{a2[-1]} columns, the second {c2[-2]} rows")
    batch = b.broadcast_shapes("matmul", a2[:-2], c2[:-2])
    return batch + a2[-2:-1] * (len(a) > 1) + c2[-1:] * (len(c) > 1)


def _mT(x: Expr) -> Expr:
    """Swap the last two axes (``x.T`` for a matrix)."""
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return transpose(x, perm)


def _matmul_vjp_left(g: Expr, node: Expr) -> Expr:
    a, c = node.args
    if a.ndim == 1 and c.ndim == 1:
        return b.multiply(g, c)
    if c.ndim == 1:                                   # (..., m, n) @ (n,): outer product
        return unbroadcast(b.multiply(expand_dims(g, -1), c), a.shape)
    if a.ndim == 1:                                   # (n,) @ (..., n, p)
        if c.ndim == 2:
            return matmul(c, g)
        return reshape(unbroadcast(matmul(c, expand_dims(g, -1)), a.shape + (1,)), a.shape)
    return unbroadcast(matmul(g, _mT(c)), a.shape)


def _matmul_vjp_right(g: Expr, node: Expr) -> Expr:
    a, c = node.args
    if a.ndim == 1 and c.ndim == 1:
        return b.multiply(g, a)
    if a.ndim == 1:                                   # (n,) @ (..., n, p): outer product
        return unbroadcast(b.multiply(expand_dims(a, -1), expand_dims(g, -2)), c.shape)
    if c.ndim == 1:                                   # (..., m, n) @ (n,)
        if a.ndim == 2:
            return matmul(_mT(a), g)
        return reshape(unbroadcast(matmul(_mT(a), expand_dims(g, -1)), c.shape + (1,)),
                       c.shape)
    return unbroadcast(matmul(_mT(a), g), c.shape)


def _format_matmul(node: Expr, texts: list[tuple[str, int]]) -> tuple[str, int]:
    left, right = texts
    a = left[0] if left[1] >= _PRODUCT else f"({left[0]})"
    c = right[0] if right[1] > _PRODUCT else f"({right[0]})"
    return f"{a} @ {c}", _PRODUCT


MATMUL = _structural(
    "matmul", 2, lambda a, c, param: np.matmul(a, c), _matmul_shape,
    ((lambda t, node: matmul(t, node.args[1]), _matmul_vjp_left),
     (lambda t, node: matmul(node.args[0], t), _matmul_vjp_right)),
    _format_matmul)


# -- reductions ------------------------------------------------------------------------------
def _sum_shape(shapes: tuple[Shape], axes: tuple[int, ...]) -> Shape:
    (shape,) = shapes
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _sum_vjp(g: Expr, node: Expr) -> Expr:
    x = node.args[0]
    if node.param == tuple(range(len(node.param))):   # leading axes: numpy broadcasting
        return broadcast_to(g, x.shape)
    kept = tuple(1 if i in node.param else n for i, n in enumerate(x.shape))
    return broadcast_to(reshape(g, kept), x.shape)


def _format_sum(node: Expr, texts: list[tuple[str, int]]) -> tuple[str, int]:
    x = node.args[0]
    if node.param == tuple(range(x.ndim)):
        return f"sum({texts[0][0]})", _ATOM
    axis = node.param[0] if len(node.param) == 1 else _tuple_text(node.param)
    return f"sum({texts[0][0]}, axis={axis})", _ATOM


SUM = _structural(
    "sum", 1, lambda x, axes: np.sum(x, axis=axes), _sum_shape,
    ((lambda t, node: reduce_sum(t, node.param), _sum_vjp),), _format_sum,
    lambda x, axes: x if not axes else None)


# -- reshape, transpose, broadcast -----------------------------------------------------------
def _reshape_shape(shapes: tuple[Shape], shape: Shape) -> Shape:
    if math.prod(shapes[0]) != math.prod(shape):
        raise ShapeError(f"reshape: cannot reshape a value of shape {shapes[0]} "
                         f"({math.prod(shapes[0])} elements) to shape {shape}")
    return shape


def _simplify_reshape(x: Expr, shape: Shape) -> Expr | None:
    if x.shape == shape:
        return x
    if x.op == "reshape":
        return reshape(x.args[0], shape)
    return None


RESHAPE = _structural(
    "reshape", 1, lambda x, shape: np.reshape(x, shape), _reshape_shape,
    ((lambda t, node: reshape(t, node.shape),
      lambda g, node: reshape(g, node.args[0].shape)),),
    lambda node, texts: (f"reshape({texts[0][0]}, {_tuple_text(node.shape)})", _ATOM),
    _simplify_reshape)


def _transpose_shape(shapes: tuple[Shape], perm: tuple[int, ...]) -> Shape:
    (shape,) = shapes
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"transpose: axes {perm} are not a permutation of the "
                         f"{len(shape)} axes of a value of shape {shape}")
    return tuple(shape[p] for p in perm)


def _simplify_transpose(x: Expr, perm: tuple[int, ...]) -> Expr | None:
    if perm == tuple(range(len(perm))):
        return x
    if x.op == "transpose":                           # X.T.T is X
        return transpose(x.args[0], tuple(x.param[p] for p in perm))
    return None


def _format_transpose(node: Expr, texts: list[tuple[str, int]]) -> tuple[str, int]:
    if node.param == tuple(reversed(range(len(node.param)))):
        return f"{_postfix(texts[0])}.T", _ATOM
    return f"transpose({texts[0][0]}, {_tuple_text(node.param)})", _ATOM


TRANSPOSE = _structural(
    "transpose", 1, lambda x, perm: np.transpose(x, perm), _transpose_shape,
    ((lambda t, node: transpose(t, node.param),
      lambda g, node: transpose(g, tuple(int(i) for i in np.argsort(node.param)))),),
    _format_transpose, _simplify_transpose)


def _broadcast_shape(shapes: tuple[Shape], shape: Shape) -> Shape:
    try:
        if tuple(np.broadcast_shapes(shapes[0], shape)) == shape:
            return shape
    except ValueError:
        pass
    raise ShapeError(f"broadcast_to: a value of shape {shapes[0]} cannot be broadcast to "
                     f"shape {shape}")


def _simplify_broadcast(x: Expr, shape: Shape) -> Expr | None:
    if x.shape == shape:
        return x
    if x.op == "broadcast_to":
        return broadcast_to(x.args[0], shape)
    return None


BROADCAST_TO = _structural(
    "broadcast_to", 1, lambda x, shape: np.broadcast_to(x, shape), _broadcast_shape,
    ((lambda t, node: broadcast_to(t, node.shape),
      lambda g, node: unbroadcast(g, node.args[0].shape)),),
    lambda node, texts: (f"broadcast_to({texts[0][0]}, {_tuple_text(node.shape)})", _ATOM),
    _simplify_broadcast)


# -- basic indexing and its transpose --------------------------------------------------------
def normalize_index(index: Any, shape: Shape) -> tuple:
    """A basic index (ints, slices, None, Ellipsis) as a hashable tuple of ints,
    ``("slice", start, stop, step)`` and ``None``, with Ellipsis expanded and every
    slice resolved against ``shape``."""
    items = index if isinstance(index, tuple) else (index,)
    if sum(item is Ellipsis for item in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    if used > len(shape):
        raise IndexError(f"too many indices for a value of shape {shape}: {used} given")
    if Ellipsis not in items:
        items = items + (Ellipsis,)
    out: list[Any] = []
    dim = 0
    for item in items:
        if item is Ellipsis:
            for _ in range(len(shape) - used):
                out.append(("slice", 0, shape[dim], 1))
                dim += 1
        elif item is None:
            out.append(None)
        elif isinstance(item, slice):
            out.append(("slice", *item.indices(shape[dim])))
            dim += 1
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not -shape[dim] <= item < shape[dim]:
                raise IndexError(f"index {item} is out of bounds for axis {dim} with "
                                 f"size {shape[dim]}")
            out.append(int(item) % shape[dim])
            dim += 1
        else:
            raise TypeError(f"only integers, slices, None and ... index an expression, got "
                            f"{type(item).__name__}")
    return tuple(out)


def numpy_index(index: tuple) -> tuple:
    return tuple(slice(*item[1:]) if isinstance(item, tuple) else item for item in index)


def _index_shape(shape: Shape, index: tuple) -> Shape:
    probe = np.lib.stride_tricks.as_strided(np.zeros(1), shape, (0,) * len(shape))
    return probe[numpy_index(index)].shape


def _getitem_numpy(x: Any, index: tuple) -> Any:
    return np.asarray(x)[numpy_index(index)]


def _scatter_numpy(g: Any, param: tuple) -> Any:
    index, shape = param
    g = np.asarray(g)
    out = np.zeros(shape, dtype=g.dtype)
    if g.dtype == object:
        out[...] = b.ZERO
    out[numpy_index(index)] = g
    return out


def _format_index(index: tuple, shape: Shape) -> str:
    parts, dim = [], 0
    for item in index:
        if item is None:
            parts.append("None")
            continue
        if isinstance(item, tuple):
            parts.append(_slice_text(*item[1:], shape[dim]))
        else:
            parts.append(str(item))
        dim += 1
    while parts and parts[-1] == ":":
        parts.pop()
    return ", ".join(parts) if parts else "..."


def _slice_text(start: int, stop: int, step: int, n: int) -> str:
    """Python's text for a resolved slice of an axis of length ``n`` (``1:``, ``:-1``,
    ``::2``, ``::-1``), reading back to the same elements."""
    if step > 0:
        first = "" if start == 0 else str(start)
        last = "" if stop >= n else (str(stop - n) if 0 < n - stop < stop else str(stop))
    else:
        first = "" if start == n - 1 else str(start)
        last = "" if stop < 0 else str(stop)
    return f"{first}:{last}" + ("" if step == 1 else f":{step}")


GETITEM = _structural(
    "getitem", 1, _getitem_numpy, lambda shapes, index: _index_shape(shapes[0], index),
    ((lambda t, node: apply_index(t, node.param),
      lambda g, node: b.apply("scatter", g, param=(node.param, node.args[0].shape))),),
    lambda node, texts: (f"{_postfix(texts[0])}[{_format_index(node.param, node.args[0].shape)}]",
                         _ATOM))


def _scatter_shape(shapes: tuple[Shape], param: tuple) -> Shape:
    index, shape = param
    if _index_shape(shape, index) != shapes[0]:
        raise ShapeError(f"scatter: a value of shape {shapes[0]} does not fit the index "
                         f"of a value of shape {shape}")
    return shape


SCATTER = _structural(
    "scatter", 1, _scatter_numpy, _scatter_shape,
    ((lambda t, node: b.apply("scatter", t, param=node.param),
      lambda g, node: apply_index(g, node.param[0])),),
    lambda node, texts: (f"scatter({texts[0][0]}, "
                         f"[{_format_index(*node.param)}], {_tuple_text(node.shape)})",
                         _ATOM))


# -- builders --------------------------------------------------------------------------------
def _node(value: Any) -> Expr:
    return b.as_operand(value)


def matmul(a: Any, c: Any) -> Expr:
    """Matrix product with numpy's rules (1-D operands promoted, batch dims broadcast)."""
    return b.apply("matmul", _node(a), _node(c))


def transpose(x: Any, axes: Any = None) -> Expr:
    """Permute the axes (reversed when ``axes`` is None), as ``np.transpose``."""
    node = _node(x)
    perm = tuple(reversed(range(node.ndim))) if axes is None else tuple(
        int(a) % max(node.ndim, 1) for a in axes)
    return b.apply("transpose", node, param=perm)


def reshape(x: Any, shape: Any) -> Expr:
    """Same elements in a new shape (row-major, one -1 allowed), as ``np.reshape``."""
    node = _node(x)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(
        int(n) for n in shape)
    if shape.count(-1) == 1:
        known = math.prod(n for n in shape if n != -1)
        if known == 0 or node.size % known:
            raise ShapeError(f"reshape: cannot reshape a value of shape {node.shape} to "
                             f"shape {shape}")
        shape = tuple(node.size // known if n == -1 else n for n in shape)
    return b.apply("reshape", node, param=shape)


def broadcast_to(x: Any, shape: Any) -> Expr:
    """``x`` broadcast to ``shape``, as ``np.broadcast_to``."""
    return b.broadcast_to(x, shape)


def expand_dims(x: Any, axis: int) -> Expr:
    """A new axis of length 1 at ``axis``, as ``np.expand_dims``."""
    node = _node(x)
    position = axis % (node.ndim + 1)
    return reshape(node, node.shape[:position] + (1,) + node.shape[position:])


def squeeze(x: Any, axis: Any = None) -> Expr:
    """Drop axes of length 1 (all of them, or those in ``axis``), as ``np.squeeze``."""
    node = _node(x)
    axes = tuple(i for i, n in enumerate(node.shape) if n == 1) if axis is None else \
        normalize_axes(axis, node.ndim, "squeeze")
    for a in axes:
        if node.shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} of shape {node.shape} has length "
                             f"{node.shape[a]}, not 1")
    return reshape(node, tuple(n for i, n in enumerate(node.shape) if i not in axes))


def reduce_sum(x: Any, axis: Any = None, keepdims: bool = False) -> Expr:
    """Sum over ``axis`` (all axes when None) of a shaped expression."""
    node = _node(x)
    axes = normalize_axes(axis, node.ndim, "sum")
    total = b.apply("sum", node, param=axes)
    return _keep(total, node, axes) if keepdims else total


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (all axes when None); object arrays of scalars as ``np.mean``."""
    if not (isinstance(x, Expr) and x.shape):
        return np.mean(np.asarray(x, dtype=object), axis=axis, keepdims=keepdims)
    axes = normalize_axes(axis, x.ndim, "mean")
    count = math.prod(x.shape[a] for a in axes)
    return reduce_sum(x, axes, keepdims) / float(count)


def _keep(total: Expr, x: Expr, axes: tuple[int, ...]) -> Expr:
    return reshape(total, tuple(1 if i in axes else n for i, n in enumerate(x.shape)))


def apply_index(x: Expr, index: Any) -> Expr:
    """``x[index]`` for a basic (normalized or raw) index."""
    if not (isinstance(index, tuple) and all(
            i is None or isinstance(i, int) or (isinstance(i, tuple) and i[0] == "slice")
            for i in index) and _covers(index, x.shape)):
        index = normalize_index(index, x.shape)
    if all(isinstance(i, tuple) and i[1:] == (0, n, 1)
           for i, n in zip(index, x.shape)) and len(index) == x.ndim:
        return x
    return b.apply("getitem", x, param=index)


def _covers(index: tuple, shape: Shape) -> bool:
    return sum(1 for i in index if i is not None) == len(shape)


def _getitem(self: Expr, index: Any) -> Expr:
    if not self.shape:
        raise TypeError(f"a scalar expression cannot be indexed: {self}[{index!r}]")
    return apply_index(self, index)


Expr.__matmul__ = lambda self, other: matmul(self, other)  # type: ignore[attr-defined]
Expr.__rmatmul__ = lambda self, other: matmul(other, self)  # type: ignore[attr-defined]
Expr.__getitem__ = _getitem  # type: ignore[attr-defined]
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
    "matmul": matmul, "constant": _constant_builder,
}
