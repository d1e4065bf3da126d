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
from .registry import PRIMITIVES, Flags, Infix, Primitive, register

Shape = tuple[int, ...]


def _no_sympy(ns: Any, *args: Any) -> Any:
    from ..errors import HybridadError

    raise HybridadError("tensor operations have no SymPy form; scalarize the expression "
                        "first (hd.scalarize)")


def _structural(name: str, arity: int, numpy: Any, shape: Any, linear: tuple,
                format: Any, simplify: Any = None, flags: Flags = Flags.LINEAR,
                names: Any = None, infix: Infix | None = None, batch: Any = None,
                llvm: Any = None) -> Primitive:
    return register(Primitive(name, arity, numpy, (None,) * max(arity, 0), _no_sympy,
                              simplify, (), flags, (), infix, llvm, (), shape, linear,
                              format, names, batch=batch))


# -- loop lowerings: written against the kernel backend's loop vocabulary ``k``
# (hybridad/backend/llvm/loops.py); a view returns the operand's access re-indexed, any
# other lowering writes the node's loops and returns None -------------------------------
def index_access(x: Any, index: tuple) -> Any:
    """The access of ``x[index]`` (a normalized basic index) as offset and strides."""
    offset, strides, shape, dim = x.offset, [], [], 0
    for item in index:
        if item is None:
            strides.append(0)
            shape.append(1)
        elif isinstance(item, tuple):
            start, stop, step = item[1:]
            offset += start * x.strides[dim]
            strides.append(step * x.strides[dim])
            shape.append(len(range(start, stop, step)))
            dim += 1
        else:
            offset += item * x.strides[dim]
            dim += 1
    return x.view(offset, strides, shape)


# -- batching rules: the operation with a leading batch axis on some values ------------------
def _shifted(axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a + 1 for a in axes)


def _matmul_batch(node: Expr, values: list, batched: list) -> Any:
    """A matrix times a batch of vectors is one product with the batch as rows (``V @
    A.T``, ``V @ B``); otherwise 1-D operands are promoted (a row before, a column after
    the batch axis), numpy's matmul broadcasts the batch, and the promoted axes are
    dropped. Written with operators, so it batches numpy values and expressions alike."""
    a, c = node.args
    left, right = values
    if c.ndim == 1 and batched[1] and not batched[0] and a.ndim == 2:
        return right @ left.T
    if a.ndim == 1 and batched[0] and not batched[1] and c.ndim == 2:
        return left @ right
    if a.ndim == 1:
        left = np.expand_dims(left, -2)
    if c.ndim == 1:
        right = np.expand_dims(right, -1)
    result = left @ right
    if c.ndim == 1:
        result = result[..., 0]
    if a.ndim == 1:
        result = result[..., 0, :] if c.ndim > 1 else result[..., 0]
    return result


def _on(name: str, value: Any, param: Any) -> Any:
    """A structural primitive on a numpy value or an expression, for a batching rule
    with no numpy function of its own (scatter, scatter_add)."""
    if isinstance(value, Expr):
        return b.apply(name, value, param=param)
    return PRIMITIVES[name].numpy(value, param)


def _is_identity(x: Expr) -> bool:
    """A constant square identity matrix."""
    if x.op != "array" or x.ndim != 2 or x.shape[0] != x.shape[1]:
        return False
    value = x.param
    return (np.count_nonzero(value) == x.shape[0]
            and bool(np.all(np.diagonal(value) == 1.0)))


def _simplify_matmul(a: Expr, c: Expr, param: None) -> Expr | None:
    """``I @ B`` and ``A @ I`` are ``B`` and ``A`` (a batched Jacobian's identity seed)."""
    if _is_identity(a):
        return c
    if _is_identity(c):
        return a
    return None


def _reduction_batch(function: Any) -> Any:
    return lambda node, values, batched: function(values[0], axis=_shifted(node.param))


def _broadcast_batch(node: Expr, values: list, batched: list) -> Any:
    x = node.args[0]
    value = values[0]
    aligned = value.reshape((value.shape[0],) + (1,) * (node.ndim - x.ndim) + x.shape)
    return np.broadcast_to(aligned, (value.shape[0],) + node.shape)


def _batch_size(values: list, batched: list) -> int:
    return next(v.shape[0] for v, flag in zip(values, batched) if flag)


def _concatenate_batch(node: Expr, values: list, batched: list) -> Any:
    size = _batch_size(values, batched)
    full = [v if flag else np.broadcast_to(v, (size,) + np.shape(v))
            for v, flag in zip(values, batched)]
    return np.concatenate(full, axis=node.param + 1)


def _einsum_batch(node: Expr, values: list, batched: list) -> Any:
    """A letter no operand uses becomes the batch index of the batched operands and of
    the result."""
    inputs, output = parse_subscripts(node.param, len(values))
    used = set(node.param)
    letter = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA"
                  if c not in used)
    parts = [letter + part if flag else part for part, flag in zip(inputs, batched)]
    return np.einsum(",".join(parts) + "->" + letter + output, *values)


def _names_of(x: Expr) -> tuple:
    return x.names or (None,) * x.ndim


def _named(names: Any) -> tuple | None:
    names = tuple(names)
    return names if any(n is not None for n in names) else None


def _matmul_names(args: tuple, param: Any, shape: Shape) -> tuple | None:
    """Rows of the first operand, columns of the second, batch dims broadcast; the
    contracted dims are not compared (as PyTorch: ('batch', 'D') @ ('in', 'out') ->
    ('batch', 'out'))."""
    a, c = (_names_of(x) for x in args)
    if len(a) == 1 and len(c) == 1:
        return None
    if len(c) == 1:
        return _named(a[:-1])
    if len(a) == 1:
        return _named(c[:-2] + c[-1:])
    batch = b.align_names("matmul", [a[:-2], c[:-2]], len(shape) - 2) or (None,) * (
        len(shape) - 2)
    return _named(batch + (a[-2], c[-1]))


def _reduced_names(args: tuple, axes: tuple, shape: Shape) -> tuple | None:
    return _named(n for i, n in enumerate(_names_of(args[0])) if i not in axes)


def _index_names(args: tuple, index: tuple, shape: Shape) -> tuple | None:
    names, out, dim = _names_of(args[0]), [], 0
    for item in index:
        if item is None:
            out.append(None)
            continue
        if isinstance(item, tuple):
            out.append(names[dim])
        dim += 1
    return _named(out)


def _einsum_names(args: tuple, spec: str, shape: Shape) -> tuple | None:
    inputs, output = parse_subscripts(spec, len(args))
    found: dict[str, str] = {}
    for part, x in zip(inputs, args):
        for letter, name in zip(part, _names_of(x)):
            if name is not None:
                found.setdefault(letter, name)
    return _named(found.get(letter) for letter in output)


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


def _matmul_vjp_left(g: Expr, node: Expr, i: int) -> Expr:
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


def _matmul_vjp_right(g: Expr, node: Expr, i: int) -> Expr:
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
    ((lambda t, node, i: matmul(t, node.args[1]), _matmul_vjp_left),
     (lambda t, node, i: matmul(node.args[0], t), _matmul_vjp_right)),
    _format_matmul, _simplify_matmul, names=_matmul_names, infix=Infix("@", _PRODUCT),
    batch=_matmul_batch,
    llvm=lambda k, node, a, c: k.matmul(node, a, c))


# -- reductions ------------------------------------------------------------------------------
def _sum_shape(shapes: tuple[Shape], axes: tuple[int, ...]) -> Shape:
    (shape,) = shapes
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _sum_vjp(g: Expr, node: Expr, i: int) -> Expr:
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
    ((lambda t, node, i: reduce_sum(t, node.param), _sum_vjp),), _format_sum,
    lambda x, axes: x if not axes else None, names=_reduced_names,
    batch=_reduction_batch(np.sum),
    llvm=lambda k, node, x: k.reduce(node, x, node.param, "add"))


# -- reshape, transpose, broadcast -----------------------------------------------------------
def _reshape_shape(shapes: tuple[Shape], shape: Shape) -> Shape:
    if math.prod(shapes[0]) != math.prod(shape):
        raise ShapeError(f"reshape: cannot reshape a value of shape {shapes[0]} "
                         f"({math.prod(shapes[0])} elements) to shape {shape}")
    return shape


def _collapsing(op: str, rebuild: Any) -> Any:
    """The simplifier of a shape-setting operation: to its own shape it is the value
    itself, and two in a row are one, on the inner value (reshape, broadcast_to)."""
    def simplify(x: Expr, shape: Shape) -> Expr | None:
        if x.shape == shape:
            return x
        return rebuild(x.args[0], shape) if x.op == op else None

    return simplify


RESHAPE = _structural(
    "reshape", 1, lambda x, shape: np.reshape(x, shape), _reshape_shape,
    ((lambda t, node, i: reshape(t, node.shape),
      lambda g, node, i: reshape(g, node.args[0].shape)),),
    lambda node, texts: (f"reshape({texts[0][0]}, {_tuple_text(node.shape)})", _ATOM),
    _collapsing("reshape", lambda x, shape: reshape(x, shape)),
    batch=lambda node, values, batched: values[0].reshape((-1,) + node.shape),
    llvm=lambda k, node, x: k.contiguous(x).reshaped(node.shape))


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
    ((lambda t, node, i: transpose(t, node.param),
      lambda g, node, i: transpose(g, tuple(int(i) for i in np.argsort(node.param)))),),
    _format_transpose, _simplify_transpose,
    names=lambda args, perm, shape: _named(_names_of(args[0])[p] for p in perm),
    batch=lambda node, values, batched: np.transpose(values[0], (0,) + _shifted(node.param)),
    llvm=lambda k, node, x: x.view(
        x.offset, [x.strides[p] for p in node.param], node.shape))


def _broadcast_shape(shapes: tuple[Shape], shape: Shape) -> Shape:
    try:
        if tuple(np.broadcast_shapes(shapes[0], shape)) == shape:
            return shape
    except ValueError:
        pass
    raise ShapeError(f"broadcast_to: a value of shape {shapes[0]} cannot be broadcast to "
                     f"shape {shape}")


BROADCAST_TO = _structural(
    "broadcast_to", 1, lambda x, shape: np.broadcast_to(x, shape), _broadcast_shape,
    ((lambda t, node, i: broadcast_to(t, node.shape),
      lambda g, node, i: unbroadcast(g, node.args[0].shape)),),
    lambda node, texts: (f"broadcast_to({texts[0][0]}, {_tuple_text(node.shape)})", _ATOM),
    _collapsing("broadcast_to", lambda x, shape: broadcast_to(x, shape)),
    names=lambda args, shape, out: b.align_names("broadcast_to", [args[0]], len(out)),
    batch=_broadcast_batch,
    llvm=lambda k, node, x: x.broadcast(node.shape))


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
    """A normalized index as numpy reads it."""
    return tuple(_as_slice(*item[1:]) if isinstance(item, tuple) else item for item in index)


def _as_slice(start: int, stop: int, step: int) -> slice:
    # slice.indices() marks "run past index 0" of a negative step by stop = -1, which a
    # slice would read as the last element
    if step < 0 and stop < 0:
        return slice(start, None, step) if start >= 0 else slice(0, 0, 1)
    return slice(start, stop, step)


def _index_shape(shape: Shape, index: tuple) -> Shape:
    """The shape ``x[index]`` has for a normalized basic index (range lengths: a
    resolved slice's stop of -1 is literal there, as in slice.indices())."""
    out = []
    for item in index:
        if item is None:
            out.append(1)
        elif isinstance(item, tuple):
            out.append(len(range(*item[1:])))
    return tuple(out)


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
    ((lambda t, node, i: _index_node(t, node.param),
      lambda g, node, i: b.apply("scatter", g, param=(node.param, node.args[0].shape))),),
    lambda node, texts: (f"{_postfix(texts[0])}[{_format_index(node.param, node.args[0].shape)}]",
                         _ATOM), names=_index_names,
    batch=lambda node, values, batched: values[0][(slice(None),) + numpy_index(node.param)],
    llvm=lambda k, node, x: index_access(x, node.param))


def _scatter_shape(shapes: tuple[Shape], param: tuple) -> Shape:
    index, shape = param
    if _index_shape(shape, index) != shapes[0]:
        raise ShapeError(f"scatter: a value of shape {shapes[0]} does not fit the index "
                         f"of a value of shape {shape}")
    return shape


SCATTER = _structural(
    "scatter", 1, _scatter_numpy, _scatter_shape,
    ((lambda t, node, i: b.apply("scatter", t, param=node.param),
      lambda g, node, i: _index_node(g, node.param[0])),),
    lambda node, texts: (f"scatter({texts[0][0]}, "
                         f"[{_format_index(*node.param)}], {_tuple_text(node.shape)})",
                         _ATOM),
    batch=lambda node, values, batched: _on(
        "scatter", values[0], ((("slice", 0, values[0].shape[0], 1),) + node.param[0],
                               (values[0].shape[0],) + node.param[1])),
    llvm=lambda k, node, g: k.scatter(
        node, g, lambda out: index_access(out, node.param[0])))


# -- max / min reductions -------------------------------------------------------------------
def _extreme_weights(node: Expr) -> Expr:
    """Where the maxima (minima) of the reduced axes are, each weighted 1/(number of
    ties), so ties split the derivative evenly (as ``maximum``'s ½–½)."""
    x = node.args[0]
    kept = tuple(1 if i in node.param else n for i, n in enumerate(x.shape))
    compare = b.greater_equal if node.op == "max" else b.less_equal
    mask = compare(x, reshape(node, kept))
    return mask / reduce_sum(mask, node.param, keepdims=True)


def _format_reduction(node: Expr, texts: list[tuple[str, int]]) -> tuple[str, int]:
    x = node.args[0]
    if node.param == tuple(range(x.ndim)):
        return f"{node.op}({texts[0][0]})", _ATOM
    axis = node.param[0] if len(node.param) == 1 else _tuple_text(node.param)
    return f"{node.op}({texts[0][0]}, axis={axis})", _ATOM


def _extreme(name: str, function: Any) -> Primitive:
    return _structural(
        name, 1, lambda x, axes: function(x, axis=axes), _sum_shape,
        ((lambda t, node, i: reduce_sum(b.multiply(t, _extreme_weights(node)), node.param),
          lambda g, node, i: b.multiply(_sum_vjp(g, node, i), _extreme_weights(node))),),
        _format_reduction, lambda x, axes: x if not axes else None, Flags.NONE,
        _reduced_names, batch=_reduction_batch(function),
        llvm=lambda k, node, x: k.reduce(node, x, node.param, "maximum" if name == "max"
                                         else "minimum"))


MAX = _extreme("max", np.max)
MIN = _extreme("min", np.min)


# -- concatenate -----------------------------------------------------------------------------
def _concatenate_shape(shapes: tuple[Shape, ...], axis: int) -> Shape:
    first = shapes[0]
    if not first:
        raise ShapeError("concatenate: zero-dimensional values cannot be concatenated")
    for shape in shapes[1:]:
        if len(shape) != len(first) or any(
                n != m for k, (n, m) in enumerate(zip(shape, first)) if k != axis):
            raise ShapeError(f"concatenate: shapes {first} and {shape} differ outside "
                             f"axis {axis}")
    return first[:axis] + (sum(s[axis] for s in shapes),) + first[axis + 1:]


def _block_index(node: Expr, i: int) -> tuple:
    """The basic index of argument i's block inside a concatenation."""
    axis = node.param
    start = sum(a.shape[axis] for a in node.args[:i])
    stop = start + node.args[i].shape[axis]
    return tuple(("slice", start, stop, 1) if k == axis else ("slice", 0, n, 1)
                 for k, n in enumerate(node.shape))


CONCATENATE = _structural(
    "concatenate", -1, lambda *values: np.concatenate(values[:-1], axis=values[-1]),
    _concatenate_shape,
    ((lambda t, node, i: b.apply("scatter", t, param=(_block_index(node, i), node.shape)),
      lambda g, node, i: _index_node(g, _block_index(node, i))),),
    lambda node, texts: (f"concatenate([{', '.join(t[0] for t in texts)}], "
                         f"axis={node.param})", _ATOM),
    lambda *args: args[0] if len(args) == 2 else None,
    names=lambda args, axis, shape: b.align_names("concatenate", list(args), len(shape)),
    batch=_concatenate_batch,
    llvm=lambda k, node, *parts: k.concatenate(node, parts, node.param))


# -- einsum ----------------------------------------------------------------------------------
def parse_subscripts(subscripts: str, n_operands: int) -> tuple[list[str], str]:
    """Input and output index strings of an einsum specification (letters only; the
    output, when implicit, is numpy's: the indices used once, in alphabetical order)."""
    text = subscripts.replace(" ", "")
    inputs_text, arrow, output = text.partition("->")
    inputs = inputs_text.split(",")
    if "." in text or not all(part.isalpha() or part == "" for part in inputs + [output]):
        raise ValueError(f"einsum: subscripts are letters, ',' and '->' (no '...'), got "
                         f"{subscripts!r}")
    if len(inputs) != n_operands:
        raise ValueError(f"einsum: {subscripts!r} names {len(inputs)} operands, "
                         f"{n_operands} given")
    for part in inputs + [output]:
        if len(set(part)) != len(part):
            raise ValueError(f"einsum: repeated index within one operand in "
                             f"{subscripts!r} (diagonals are not supported)")
    if not arrow:
        letters = "".join(inputs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    if set(output) - set("".join(inputs)):
        raise ValueError(f"einsum: output indices of {subscripts!r} appear in no input")
    return inputs, output


def _einsum_shape(shapes: tuple[Shape, ...], spec: str) -> Shape:
    inputs, output = parse_subscripts(spec, len(shapes))
    sizes: dict[str, int] = {}
    for part, shape in zip(inputs, shapes):
        if len(part) != len(shape):
            raise ShapeError(f"einsum: operand {part!r} has {len(part)} indices but shape "
                             f"{shape}")
        for c, n in zip(part, shape):
            if sizes.setdefault(c, n) != n:
                raise ShapeError(f"einsum: index {c!r} is {sizes[c]} in one operand and "
                                 f"{n} in another ({spec}, shapes {list(shapes)})")
    return tuple(sizes[c] for c in output)


def _einsum_jvp(t: Expr, node: Expr, i: int) -> Expr:
    operands = list(node.args)
    operands[i] = t
    return b.apply("einsum", *operands, param=node.param)


def _einsum_vjp(g: Expr, node: Expr, i: int) -> Expr:
    """Transpose in operand i: contract the cotangent with the other operands onto
    operand i's indices; indices that only operand i has are broadcast back."""
    inputs, output = parse_subscripts(node.param, len(node.args))
    others = [p for k, p in enumerate(inputs) if k != i] + [output]
    present = set("".join(others))
    target = "".join(c for c in inputs[i] if c in present)
    operands = [a for k, a in enumerate(node.args) if k != i] + [g]
    result = b.apply("einsum", *operands, param=",".join(others) + "->" + target)
    x = node.args[i]
    if target == inputs[i]:
        return result
    kept = tuple(n if c in present else 1 for c, n in zip(inputs[i], x.shape))
    return broadcast_to(reshape(result, kept), x.shape)


EINSUM = _structural(
    "einsum", -1, lambda *values: np.einsum(values[-1], *values[:-1]), _einsum_shape,
    ((_einsum_jvp, _einsum_vjp),),
    lambda node, texts: (f"einsum({node.param!r}, {', '.join(t[0] for t in texts)})",
                         _ATOM),
    flags=Flags.NONE, names=_einsum_names, batch=_einsum_batch,
    llvm=lambda k, node, *operands: k.einsum(node, operands,
                                            *parse_subscripts(node.param, len(operands))))


# -- gather (integer-array indexing) and its transpose ---------------------------------------
def _take_shape(shapes: tuple[Shape], param: tuple) -> Shape:
    axis, indices, index_shape = param
    shape = shapes[0]
    if not shape:
        raise ShapeError("take: a scalar cannot be indexed")
    n = shape[axis]
    if any(not -n <= k < n for k in indices):
        raise IndexError(f"take: an index in {list(indices)[:8]} is out of bounds for axis "
                         f"{axis} with size {n}")
    return shape[:axis] + index_shape + shape[axis + 1:]


def _take_numpy(x: Any, param: tuple) -> Any:
    axis, indices, index_shape = param
    return np.take(np.asarray(x), np.array(indices, dtype=np.intp).reshape(index_shape),
                   axis=axis)


def _scatter_add_numpy(g: Any, param: tuple) -> Any:
    axis, indices, index_shape, shape = param
    g = np.asarray(g)
    out = np.zeros(shape, dtype=g.dtype)
    if g.dtype == object:
        out[...] = b.ZERO
    where = (slice(None),) * axis + (np.array(indices, dtype=np.intp).reshape(index_shape),)
    np.add.at(out, where, g)
    return out


def _index_text(param: tuple) -> str:
    axis, indices, index_shape = param[:3]
    listed = np.array(indices, dtype=np.intp).reshape(index_shape).tolist()
    return f"{listed}, axis={axis}"


TAKE = _structural(
    "take", 1, _take_numpy, _take_shape,
    ((lambda t, node, i: b.apply("take", t, param=node.param),
      lambda g, node, i: b.apply("scatter_add", g,
                                 param=node.param + (node.args[0].shape,))),),
    lambda node, texts: (f"take({texts[0][0]}, {_index_text(node.param)})", _ATOM),
    names=lambda args, param, shape: _named(
        _names_of(args[0])[:param[0]] + (None,) * len(param[2])
        + _names_of(args[0])[param[0] + 1:]),
    batch=lambda node, values, batched: np.take(
        values[0], np.array(node.param[1], dtype=np.intp).reshape(node.param[2]),
        axis=node.param[0] + 1),
    llvm=lambda k, node, x: k.take(node, x, *node.param[:3]))


def _scatter_add_shape(shapes: tuple[Shape], param: tuple) -> Shape:
    if _take_shape((param[3],), param[:3]) != shapes[0]:
        raise ShapeError(f"scatter_add: a value of shape {shapes[0]} does not fit the "
                         f"index of a value of shape {param[3]}")
    return param[3]


SCATTER_ADD = _structural(
    "scatter_add", 1, _scatter_add_numpy, _scatter_add_shape,
    ((lambda t, node, i: b.apply("scatter_add", t, param=node.param),
      lambda g, node, i: b.apply("take", g, param=node.param[:3])),),
    lambda node, texts: (f"scatter_add({texts[0][0]}, {_index_text(node.param)}, "
                         f"{_tuple_text(node.shape)})", _ATOM),
    batch=lambda node, values, batched: _on(
        "scatter_add", values[0], (node.param[0] + 1,) + node.param[1:3]
        + ((values[0].shape[0],) + node.param[3],)),
    llvm=lambda k, node, g: k.scatter_add(node, g, *node.param[:3]))


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


def reduce_max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Largest element over ``axis`` (all axes when None); ties share the derivative."""
    return _extreme_reduction("max", x, axis, keepdims)


def reduce_min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Smallest element over ``axis`` (all axes when None); ties share the derivative."""
    return _extreme_reduction("min", x, axis, keepdims)


def _extreme_reduction(name: str, x: Any, axis: Any, keepdims: bool) -> Any:
    if not (isinstance(x, Expr) and x.shape):
        function = np.max if name == "max" else np.min
        return function(np.asarray(x, dtype=object).view(b.ExprArray), axis=axis,
                        keepdims=keepdims)
    axes = normalize_axes(axis, x.ndim, name)
    if any(x.shape[a] == 0 for a in axes):
        raise ShapeError(f"{name}: zero-size reduction over axis {axis} of shape {x.shape} "
                         f"has no identity")
    result = b.apply(name, x, param=axes)
    return _keep(result, x, axes) if keepdims else result


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Expr:
    """log(sum(exp(x))) over ``axis``, computed as m + log(sum(exp(x - m))) with m the
    maximum held constant (its derivative cancels), so large inputs do not overflow;
    the derivative is the softmax."""
    node = _node(x)
    axes = normalize_axes(axis, node.ndim, "logsumexp")
    shift = b.stop_gradient(reduce_max(node, axes, keepdims=True))
    total = b.log(reduce_sum(b.exp(node - shift), axes, keepdims=True)) + shift
    return total if keepdims else reshape(total, _sum_shape((node.shape,), axes))


def softmax(x: Any, axis: Any = -1) -> Expr:
    """exp(x) / sum(exp(x)) over ``axis``, shifted by the (constant) maximum so large
    inputs do not overflow."""
    node = _node(x)
    axes = normalize_axes(axis, node.ndim, "softmax")
    e = b.exp(node - b.stop_gradient(reduce_max(node, axes, keepdims=True)))
    return e / reduce_sum(e, axes, keepdims=True)


def concatenate(values: Any, axis: int = 0) -> Expr:
    """Join shaped values along an existing ``axis``, as ``np.concatenate``."""
    nodes = [_node(v) for v in values]
    if not nodes:
        raise ValueError("concatenate: needs at least one value")
    return b.apply("concatenate", *nodes,
                   param=normalize_axes(axis, max(nodes[0].ndim, 1), "concatenate")[0])


def stack(values: Any, axis: int = 0) -> Any:
    """Join values along a new ``axis``, as ``np.stack``; an object array of scalar
    expressions (``hd.scalarize``'s result) becomes one shaped expression."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return _stack_elements(values)
    nodes = [_node(v) for v in values]
    if not nodes:
        raise ValueError("stack: needs at least one value")
    position = axis % (nodes[0].ndim + 1)
    return concatenate([expand_dims(n, position) for n in nodes], position)


def _stack_elements(array: np.ndarray) -> Expr:
    """An object array of expressions (scalars, or tensors of one common shape) as one
    shaped expression of shape ``array.shape + element shape``."""
    if not array.size:
        return b.constant_node(np.zeros(array.shape))
    items = [b.as_operand(e) for e in array.ravel()]
    inner = items[0].shape
    if any(e.shape != inner for e in items):
        raise ShapeError(f"stack: the elements of an object array have different shapes "
                         f"{sorted({e.shape for e in items})}")
    if all(e.op == "getitem" for e in items):
        whole = _whole_of(items, array.shape)
        if whole is not None:
            return whole
    flat = concatenate([reshape(e, (1,) + inner) for e in items])
    return reshape(flat, array.shape + inner)


def _whole_of(items: list[Expr], shape: Shape) -> Expr | None:
    """x itself when ``items`` are exactly the elements x[i, j, ...] of x in order (so
    scalarize-then-stack of a symbol is the symbol)."""
    source = items[0].args[0]
    if source.shape != shape:
        return None
    for item, index in zip(items, np.ndindex(*shape)):
        if item.args[0] is not source or item.param != index:
            return None
    return source


def einsum(subscripts: str, *operands: Any) -> Expr:
    """Einstein summation as ``np.einsum`` (letters, explicit or implicit output; no
    ``...`` or repeated indices within one operand). Linear in each operand."""
    nodes = [_node(o) for o in operands]
    inputs, output = parse_subscripts(subscripts, len(nodes))
    return b.apply("einsum", *nodes, param=",".join(inputs) + "->" + output)


def tensordot(a: Any, c: Any, axes: Any = 2) -> Expr:
    """Sum products over the last ``axes`` axes of a and the first of c (or the listed
    axes), as ``np.tensordot``; written as an einsum."""
    left, right = _node(a), _node(c)
    if isinstance(axes, (int, np.integer)):
        pairs = (list(range(left.ndim - axes, left.ndim)), list(range(int(axes))))
    else:
        first, second = axes
        pairs = ([first] if isinstance(first, (int, np.integer)) else list(first),
                 [second] if isinstance(second, (int, np.integer)) else list(second))
    pairs = ([k % left.ndim for k in pairs[0]], [k % right.ndim for k in pairs[1]])
    letters = iter("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    left_idx = [next(letters) for _ in range(left.ndim)]
    right_idx = [next(letters) for _ in range(right.ndim)]
    for i, j in zip(*pairs):
        right_idx[j] = left_idx[i]
    output = [c for k, c in enumerate(left_idx) if k not in pairs[0]] + [
        c for k, c in enumerate(right_idx) if k not in pairs[1]]
    spec = f"{''.join(left_idx)},{''.join(right_idx)}->{''.join(output)}"
    return b.apply("einsum", left, right, param=spec)


def dot(a: Any, c: Any) -> Any:
    """``np.dot``: products of scalars, matmul for vectors and matrices, and for N-d
    values the sum over the last axis of a and the second-to-last of c."""
    left, right = _node(a), _node(c)
    if not left.shape or not right.shape:
        return b.multiply(left, right)
    if left.ndim <= 2 and right.ndim <= 2:
        return matmul(left, right)
    return tensordot(left, right, ([-1], [-2 if right.ndim > 1 else -1]))


def take(x: Any, indices: Any, axis: int = 0) -> Expr:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (a gather; its transpose
    adds cotangents back at those indices, repeats included), as ``np.take``."""
    node = _node(x)
    index = np.asarray(indices)
    if index.dtype.kind not in "iu":
        raise TypeError(f"take: indices must be integers, got dtype {index.dtype}")
    axis = normalize_axes(axis, node.ndim, "take")[0]
    n = node.shape[axis]
    flat = tuple(int(k) % n if -n <= k < n else int(k) for k in index.ravel())
    return b.apply("take", node, param=(axis, flat, index.shape))


def apply_index(x: Expr, index: Any) -> Expr:
    """``x[index]`` for a basic index (ints, slices, None, ...), as Python writes it."""
    return _index_node(x, normalize_index(index, x.shape))


def _index_node(x: Expr, index: tuple) -> Expr:
    """``x[index]`` for a normalized index; the whole of x is x itself."""
    if len(index) == x.ndim and all(isinstance(i, tuple) and i[1:] == (0, n, 1)
                                    for i, n in zip(index, x.shape)):
        return x
    return b.apply("getitem", x, param=index)
