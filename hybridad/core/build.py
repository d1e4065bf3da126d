"""Constructors: the only way nodes are made.

``apply(name, *args)`` is the single construction path: it converts operands, puts the
operands of commutative operations in canonical order, folds constants with the
registry's numpy evaluation, applies the primitive's construction-time simplifier and
finally interns the node. The public functions (``sin``, ``where``, ``sum``, ...) and
the Python operators on :class:`Expr` are thin wrappers; functions also map elementwise
over numpy (object) arrays and lists.
"""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import ShapeError
from .expr import (
    ARRAY, CONSTANT, SYMBOL, ArrayConstant, Constant, Expr, Operation, Symbol,
    array_constant, constant, intern_op, is_live_symbol, is_number, symbol,
)
from .registry import PRIMITIVES

ExprLike = Any  # Expr, a real number, or (for the elementwise functions) an array of them


def as_expr(value: Any) -> Expr:
    """``value`` as an Expr: Exprs pass through, real numbers become constants."""
    if isinstance(value, Expr):
        return value
    if is_number(value):
        return constant(float(value))
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return as_expr(value[()])
    raise TypeError(
        f"expected a hybridad expression or a real number, got {type(value).__name__} "
        f"{_short_repr(value)}"
    )


def as_operand(value: Any) -> Expr:
    """An operand of an operation: an Expr, a real number (a constant) or a numeric
    numpy array (an array constant)."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        if value.dtype == object:
            from .tensor_ops import stack       # element level -> one shaped expression

            return stack(value)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"an operand must be an expression, a number or a numeric "
                            f"array, got an array of dtype {value.dtype}")
        return array_constant(value)
    return as_expr(value)


_NODE_TYPES = (Operation, Symbol, Constant, ArrayConstant)
_CONSTANT_TYPES = (Constant, ArrayConstant)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _order_key(node: Expr) -> tuple[int, int]:
    # Constants, then operations, then symbols; ties by creation order. Deterministic
    # across runs (never id()), and a left-folded sum prints in the order it was written.
    rank = 0 if node.op in (CONSTANT, ARRAY) else (2 if node.op == SYMBOL else 1)
    return (rank, node.serial)


def apply(name: str, *operands: Any, param: Any = None) -> Expr:
    """Build ``name(*operands)`` through canonical ordering, shape checking, folding and
    simplification. ``param`` is a structural primitive's static parameter (hashable)."""
    prim = PRIMITIVES[name]
    args = operands if all(type(a) in _NODE_TYPES for a in operands) else tuple(
        as_operand(a) for a in operands)
    if len(args) != prim.arity and not (prim.arity < 0 and args):
        raise TypeError(f"{name}() takes {prim.arity} argument(s), got {len(args)}")
    shape = _result_shape(prim, args, param)
    if shape and not prim.structural:
        args = _unbroadcast_operands(prim.name, args, shape)
        if any(a.op == "broadcast_to" for a in args):
            return _broadcast_outside(name, args, shape)
    if prim.commutative and len(args) == 2 and _order_key(args[1]) < _order_key(args[0]):
        args = (args[1], args[0])
    if all(type(a) in _CONSTANT_TYPES for a in args):
        folded = _fold(prim, args, param, shape)
        if folded is not None:
            return folded
    if prim.simplify is not None:
        simpler = prim.simplify(*args, param) if prim.structural else prim.simplify(*args)
        if simpler is not None:
            return simpler if simpler.shape == shape else broadcast_to(simpler, shape)
    names = _result_names(prim, args, param, shape) if shape else None
    return intern_op(name, args, param, shape, names)


def _result_names(prim: Any, args: tuple[Expr, ...], param: Any, shape: tuple[int, ...]
                  ) -> tuple | None:
    """Dimension names of a result (None when nothing is named)."""
    if all(a.names is None for a in args):
        return None
    if prim.structural:
        return prim.names(args, param, shape) if prim.names is not None else None
    return align_names(prim.name, [a for a in args if a.shape], len(shape))


def align_names(name: str, args: Any, ndim: int) -> tuple | None:
    """Names of a broadcast result from the operands' (Exprs, or name tuples): aligned
    from the right, as numpy aligns shapes; two different names at one position raise
    :class:`~hybridad.HybridadError` naming both, as PyTorch's named tensors do."""
    from ..errors import HybridadError

    tuples = [a if isinstance(a, tuple) else (a.names or (None,) * a.ndim) for a in args]
    result: list[str | None] = [None] * ndim
    for names in tuples:
        for k, dim_name in enumerate(names):
            position = ndim - len(names) + k
            if dim_name is None:
                continue
            if result[position] not in (None, dim_name):
                listed = " and ".join(str(list(t)) for t in tuples)
                raise HybridadError(
                    f"{name}: error attempting to broadcast dims {listed}: dim "
                    f"{result[position]!r} and dim {dim_name!r} are at the same position "
                    f"from the right")
            result[position] = dim_name
    return tuple(result) if any(n is not None for n in result) else None


def _result_shape(prim: Any, args: tuple[Expr, ...], param: Any) -> tuple[int, ...]:
    if prim.structural:
        return prim.shape(tuple(a.shape for a in args), param)
    if all(not a.shape for a in args):
        return ()
    return broadcast_shapes(prim.name, *(a.shape for a in args))


def _broadcast_outside(name: str, args: tuple[Expr, ...], shape: tuple[int, ...]) -> Expr:
    """op(broadcast_to(a, s), b) as broadcast_to(op(a, b), s): the broadcast moves out,
    where the next elementwise operation absorbs it (``100 * broadcast_to(1, s) * g``
    becomes ``100 * g``)."""
    inner = apply(name, *(a.args[0] if a.op == "broadcast_to" else a for a in args))
    return broadcast_to(inner, shape)


def _unbroadcast_operands(name: str, args: tuple[Expr, ...], shape: tuple[int, ...]
                          ) -> tuple[Expr, ...]:
    """An elementwise operation broadcasts its operands itself: ``broadcast_to(y, s)``
    as an operand is replaced by y when the result keeps its shape (so the mean's
    gradient is ``c * G``, not a filled array times G)."""
    if not any(a.op == "broadcast_to" for a in args):
        return args
    narrowed = list(args)
    for i, a in enumerate(args):
        if a.op == "broadcast_to":
            trial = narrowed[:i] + [a.args[0]] + narrowed[i + 1:]
            if broadcast_shapes(name, *(t.shape for t in trial)) == shape:
                narrowed = trial
    return tuple(narrowed)


def broadcast_shapes(name: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """numpy's broadcast of ``shapes``, or a :class:`ShapeError` naming them."""
    shaped = {s for s in shapes if s}
    if len(shaped) <= 1:                   # the common cases: equal shapes, or scalars
        return shaped.pop() if shaped else ()
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        listed = " and ".join(str(s) for s in shapes)
        raise ShapeError(f"{name}: shapes {listed} do not broadcast together") from None


def _fold(prim: Any, args: tuple[Expr, ...], param: Any, shape: tuple[int, ...]
          ) -> Expr | None:
    # Same function and same float64 arithmetic as evaluation, so folding never changes
    # a value; IEEE specials (log(-1) -> nan, 1/0 -> inf) raise nothing.
    if not shape and all(type(a) is Constant for a in args):
        with np.errstate(all="ignore"):
            value = prim.numpy(*(np.float64(a.param) for a in args))
        return constant(float(value))
    if prim.name == "broadcast_to":
        return None     # a constant filling a shape stays one small node
    values = [a.param if a.shape else np.float64(a.param) for a in args]
    with np.errstate(all="ignore"):
        value = prim.numpy(*values, param) if prim.structural else prim.numpy(*values)
    value = np.asarray(value, dtype=np.float64)
    return array_constant(value) if value.shape else constant(float(value))


def broadcast_to(value: Any, shape: tuple[int, ...]) -> Expr:
    """``value`` (an Expr or number) broadcast to ``shape``, as ``np.broadcast_to``."""
    node = as_operand(value)
    shape = tuple(int(n) for n in shape)
    return node if node.shape == shape else apply("broadcast_to", node, param=shape)


def is_const(node: Expr, value: float | None = None) -> bool:
    """True if ``node`` is a constant (equal to ``value`` when given)."""
    return node.op == CONSTANT and (value is None or node.param == value)


ZERO = constant(0.0)
ONE = constant(1.0)


# --------------------------------------------------------------------------------------
# elementwise public functions
# --------------------------------------------------------------------------------------
def _is_array_like(value: Any) -> bool:
    return isinstance(value, (np.ndarray, list, tuple))


def elementwise(name: str, *operands: Any) -> Any:
    """Apply primitive ``name``: one node when an operand is a shaped expression (numeric
    arrays become array constants; numpy broadcasting), else over numpy object arrays
    of scalar expressions elementwise."""
    if any(isinstance(op, Expr) and op.shape for op in operands) or not any(
            _is_array_like(op) for op in operands):
        return apply(name, *operands)
    # scalars go in as 0-d object arrays, so numpy never asks an Expr's __array_ufunc__
    arrays = [np.asarray(op, dtype=object) for op in operands]
    ufunc = np.frompyfunc(lambda *xs: apply(name, *xs), len(arrays), 1)
    result = ufunc(*arrays)
    return result.view(ExprArray) if isinstance(result, np.ndarray) else as_expr(result)


class ExprArray(np.ndarray):
    """A numpy object array of expressions whose ufuncs build nodes elementwise.

    Plain object arrays run numpy's comparison, ``maximum`` and ``sign`` loops, which
    ask each element for a bool; on this subclass they build ``lt``/``maximum``/``sign``
    nodes instead, so ``hd.where(v > 0, v, 0)`` works on a ``symarray``. Reductions
    (``np.sum``, ``np.prod``, ``np.max``, ``np.min`` with ``axis=``, ``keepdims=``,
    ``initial=``) build balanced trees, and ``out=`` (so ``W += 1.0``) writes the new
    expressions into the given array. Everything else (``@``, slicing) behaves as on
    any object array and stays an ExprArray.
    """

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return _dispatch_ufunc(ufunc, method, inputs, kwargs)


def _plain(value: Any) -> Any:
    """An ExprArray as a plain object array (numpy then never calls us back)."""
    return value.view(np.ndarray) if isinstance(value, ExprArray) else value


def _dispatch_ufunc(ufunc: Any, method: str, inputs: tuple, kwargs: dict) -> Any:
    """A numpy ufunc call on expressions (scalar Exprs count as 0-d arrays): elementwise
    calls build nodes, reductions build balanced trees, ``out=`` is written in place."""
    out = kwargs.pop("out", None)
    if out is Ellipsis:    # numpy's "always return an array, even 0-d"
        result = _dispatch_ufunc(ufunc, method, inputs, kwargs)
        return np.asarray(result, dtype=object).view(ExprArray)
    plain = [_plain(i) for i in inputs]
    if any(isinstance(p, Expr) and p.shape for p in plain):
        return _tensor_ufunc(ufunc, method, plain, kwargs, out)
    function = _UFUNCS.get(ufunc)
    if method == "__call__" and function is not None and not kwargs:
        result = function(*plain)
        if isinstance(result, Expr) and not result.shape and any(
                isinstance(p, np.ndarray) for p in plain):
            # a 0-d array took part: stay a 0-d array (numpy's ``out=...`` asks for one
            # and is not passed on to overrides; np.var relies on it)
            result = np.asarray(result, dtype=object)
    elif method == "reduce" and ufunc in _REDUCTIONS and _tree_reducible(kwargs):
        result = _reduce(_REDUCTIONS[ufunc], ufunc.__name__, plain[0], **kwargs)
    else:
        # numpy's own object loops, which apply Python operators to the elements
        arrays = [np.asarray(p, dtype=object) if isinstance(p, Expr) else p for p in plain]
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*arrays, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)
    if out is not None:
        if len(out) != 1:
            raise TypeError(f"{ufunc.__name__}: expected one output array, got {len(out)}")
        target = _plain(out[0])
        if isinstance(target, np.ndarray) and target.dtype != object:
            raise TypeError(f"{ufunc.__name__}: cannot convert the symbolic expression "
                            f"results to {target.dtype} to write them into out=; use an "
                            f"object array (hd.symarray) or evaluate the expressions")
        target[...] = result
        return out[0]
    return _wrap(result)


def _tensor_ufunc(ufunc: Any, method: str, inputs: list, kwargs: dict, out: Any) -> Any:
    """A ufunc with a shaped expression among its inputs: one node (elementwise
    primitives broadcast, ``np.matmul`` is the matmul primitive, ``reduce`` of add,
    multiply is not, maximum and minimum are the sum, max and min reductions)."""
    from . import tensor_ops
    from .tensor_syntax import elements_needed

    if out is not None:
        raise TypeError(f"{ufunc.__name__}: out= cannot hold a tensor expression; "
                        f"assign the result instead")
    if method == "__call__" and not kwargs:
        if ufunc is np.matmul:
            return tensor_ops.matmul(*inputs)
        function = _UFUNCS.get(ufunc)
        if function is not None:
            return function(*inputs)
    reductions = {np.add: tensor_ops.reduce_sum, np.maximum: tensor_ops.reduce_max,
                  np.minimum: tensor_ops.reduce_min}
    if method == "reduce" and ufunc in reductions and set(kwargs) <= {"axis", "keepdims"}:
        return reductions[ufunc](inputs[0], kwargs.get("axis", 0),
                                 kwargs.get("keepdims", False))
    elements_needed(f"numpy's {ufunc.__name__}.{method}")
    raise TypeError(f"numpy's {ufunc.__name__}.{method} with {sorted(kwargs)} is not "
                    f"defined on hybridad tensor expressions")


def _wrap(result: Any) -> Any:
    if isinstance(result, np.ndarray) and result.dtype == object:
        return result.view(ExprArray)
    return result


_REDUCTIONS = {np.add: "add", np.multiply: "mul", np.maximum: "maximum",
               np.minimum: "minimum"}
_IDENTITIES = {"add": 0.0, "mul": 1.0}
_NO_INITIAL = getattr(np, "_NoValue", None)
_AxisError = getattr(np, "exceptions", np).AxisError


def _tree_reducible(kwargs: dict) -> bool:
    dtype = kwargs.get("dtype")
    return (dtype is None or np.dtype(dtype) == object) and kwargs.get("where", True) is True


def _reduce(name: str, ufunc_name: str, values: Any, axis: Any = 0, dtype: Any = None,
            keepdims: bool = False, initial: Any = _NO_INITIAL, where: Any = True) -> Any:
    """``ufunc.reduce`` over object arrays as a balanced tree of ``name`` nodes, with
    numpy's semantics for axes (a 0-d array reduces over no axis), ``keepdims``,
    ``initial`` and empty reductions."""
    arr = np.asarray(values, dtype=object)
    axes = _normalize_axes(axis, arr.ndim)
    kept = [d for d in range(arr.ndim) if d not in axes]
    length = math.prod(arr.shape[d] for d in axes)
    moved = np.transpose(arr, kept + list(axes)).reshape(
        tuple(arr.shape[d] for d in kept) + (length,))
    out = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(*out.shape):
        terms = [as_expr(v) for v in moved[index]]
        if initial is not _NO_INITIAL and initial is not None:
            terms.insert(0, as_expr(initial))
        if not terms:
            if name not in _IDENTITIES:
                raise ValueError(f"zero-size array to reduction operation {ufunc_name} "
                                 "which has no identity")
            terms = [constant(_IDENTITIES[name])]
        out[index] = _pairwise(name, terms)
    if keepdims:
        out = out.reshape(tuple(1 if d in axes else n for d, n in enumerate(arr.shape)))
    return out if out.ndim else out[()]


def _normalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normal = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise _AxisError(int(a), ndim)
        normal.append(int(a) % ndim)
    if len(set(normal)) != len(normal):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(normal)


#: public functions generated from the registry entries (``hd.sin``, ``hd.where``, ...)
PUBLIC_FUNCTIONS: dict[str, Callable[..., Any]] = {}

_PARAMETERS = {1: ("x",), 2: ("a", "b"), 3: ("condition", "a", "b")}


def install_public_functions() -> None:
    """Make each registry entry's public function, its numpy ufunc dispatch and the
    method numpy's object loops call (``np.sin`` on an object array calls ``x.sin()``),
    all from the entries: an entry is the only place an operation is defined."""
    for prim in PRIMITIVES.values():
        if prim.public is None or prim.structural or prim.public in PUBLIC_FUNCTIONS:
            continue
        function = _public_function(prim)
        PUBLIC_FUNCTIONS[prim.public] = function
        globals()[prim.public] = function
        for ufunc in prim.ufuncs:
            _UFUNCS[ufunc] = function
            if prim.infix is None and prim.name != "neg":
                setattr(Expr, ufunc.__name__, _method(prim.name))


def _public_function(prim: Any) -> Callable[..., Any]:
    """``hd.<public>(*operands)``: the primitive elementwise over arrays (numpy
    broadcasting), one node for shaped expressions."""
    name, arity = prim.name, prim.arity

    def function(*operands: ExprLike) -> Any:
        if len(operands) != arity:
            raise TypeError(f"{prim.public}() takes {arity} argument(s), got {len(operands)}")
        return elementwise(name, *operands)

    parameters = _PARAMETERS.get(arity, tuple(f"x{k}" for k in range(arity)))
    function.__name__ = function.__qualname__ = prim.public
    function.__doc__ = prim.doc or f"The elementwise operation {name}."
    function.__annotations__ = {**{p: ExprLike for p in parameters}, "return": Any}
    function.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in parameters])
    return function


def _method(name: str) -> Callable[..., Any]:
    def method(self: Expr, *others: Any) -> Any:
        return apply(name, self, *others)

    return method


def symbols(names: str) -> Symbol | tuple[Symbol, ...]:
    """Symbols from space- or comma-separated names; one name gives one Symbol.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> hd.symbols("x1") is x1
    True
    """
    if not isinstance(names, str):
        raise TypeError(f"symbols() expects a string of names, got {type(names).__name__}")
    parts = [p for p in names.replace(",", " ").split() if p]
    if not parts:
        raise ValueError("symbols() needs at least one name, got an empty string")
    made = tuple(symbol(p, ()) for p in parts)      # scalars: a tensor's name is an error
    return made[0] if len(made) == 1 else made


def symarray(prefix: str, shape: int | tuple[int, ...]) -> np.ndarray:
    """Numpy object array (an :class:`ExprArray`) of Symbols named ``prefix_i_j...``.

    >>> import hybridad as hd
    >>> hd.symarray("w", (2, 2))[1, 0]
    w_1_0
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        out[index] = symbol("_".join([prefix, *map(str, index)]), ())
    return out.view(ExprArray)


_fresh_serials = itertools.count(1)


def fresh_symarray(hint: str, shape: tuple[int, ...]) -> Any:
    """Symbols of ``shape`` that no live expression uses yet (a 0-d shape gives one
    Symbol), named ``_t<n>_<hint>_i_j...``.

    Every trace of a Python function gets its own: symbols are interned by name, so two
    traces (a transform inside another's trace) or a trace and the user's own symbols
    that shared names would silently become the same variable.
    """
    while True:
        prefix = f"_t{next(_fresh_serials)}_{hint}"
        names = [prefix] if shape == () else [
            "_".join([prefix, *map(str, index)]) for index in np.ndindex(*shape)]
        if not any(is_live_symbol(name) for name in names):
            break
    if shape == ():
        return symbol(prefix)
    out = np.empty(len(names), dtype=object)
    out[:] = [symbol(name) for name in names]
    return out.reshape(shape).view(ExprArray)


def fresh_symbol(hint: str, shape: tuple[int, ...] = ()) -> Symbol:
    """One symbol of ``shape`` (a tensor symbol, or a scalar for ``()``) that no live
    expression uses yet, named ``_t<n>_<hint>``."""
    while True:
        name = f"_t{next(_fresh_serials)}_{hint}"
        if not is_live_symbol(name):
            return symbol(name, tuple(shape))


def _pairwise_sum(terms: list[Expr]) -> Expr:
    return _pairwise("add", terms) if terms else ZERO


def _pairwise(name: str, terms: list[Expr]) -> Expr:
    # Balanced reduction: depth log2(n) instead of n, and the pairwise rounding of numpy.
    while len(terms) > 1:
        paired = [apply(name, terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            paired.append(terms[-1])
        terms = paired
    return terms[0]


def sum(values: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (all axes when None), as numpy: of a shaped expression one node,
    of an array (or iterable) of scalar expressions balanced trees."""
    if isinstance(values, Expr) and values.shape:
        from .tensor_ops import reduce_sum

        return reduce_sum(values, axis, keepdims)
    arr = np.asarray(values if not isinstance(values, Iterable) or _is_array_like(values)
                     else list(values), dtype=object)
    if keepdims or not (axis is None or isinstance(axis, (int, np.integer))):
        return _reduce("add", "add", arr, axis=axis, keepdims=keepdims)
    if axis is None:
        return _pairwise_sum([as_expr(v) for v in arr.ravel()])
    moved = np.moveaxis(arr, axis, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = _pairwise_sum([as_expr(v) for v in moved[index]])
    return out if out.ndim else out[()]


def tensor(name: str, shape: Any, names: Any = None) -> Symbol:
    """A symbol with a shape (interned by name, like every symbol: the same name with
    another shape raises :class:`~hybridad.HybridadError`) and, optionally, dimension
    names that operations propagate and check (``e.names``).

    >>> import hybridad as hd
    >>> X = hd.tensor("X", (64, 784))
    >>> X.shape, X.ndim, X.size
    ((64, 784), 2, 50176)
    """
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in dims):
        raise ValueError(f"tensor(): a shape is a tuple of non-negative ints, got {shape!r}")
    if names is not None:
        names = tuple(names)
        if len(names) != len(dims) or not all(n is None or isinstance(n, str) for n in names):
            raise ValueError(f"tensor(): names must give a str or None for each of the "
                             f"{len(dims)} dimensions, got {names!r}")
        if all(n is None for n in names):
            names = None
    return symbol(name, tuple(int(n) for n in dims), names)


def constant_node(value: Any) -> Expr:
    """``hd.constant``: a constant node: a number gives a scalar constant, a numeric array an array
    constant (interned by shape and content, so the same values give the same node)."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"constant(): expected a real number or numeric array, got "
                        f"{type(value).__name__} of dtype {array.dtype}")
    return array_constant(array) if array.ndim else as_expr(float(array))


def dot(a: Any, b: Any) -> Any:
    """Dot product as numpy.dot: vector·vector is a scalar Expr, else an object array;
    with a shaped expression, one node (a matmul or a contraction)."""
    if any(isinstance(v, Expr) and v.shape for v in (a, b)):
        from .tensor_ops import dot as tensor_dot

        return tensor_dot(a, b)
    a_arr, b_arr = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    if a_arr.ndim == 1 and b_arr.ndim == 1:
        if a_arr.shape != b_arr.shape:
            raise ValueError(f"dot: vectors of different lengths {a_arr.shape} and "
                             f"{b_arr.shape}")
        return _pairwise_sum([apply("mul", x, y) for x, y in zip(a_arr, b_arr, strict=True)])
    if a_arr.ndim == 0 or b_arr.ndim == 0:
        return elementwise("mul", a_arr, b_arr)
    if a_arr.shape[-1] != b_arr.shape[-2 if b_arr.ndim > 1 else 0]:
        raise ValueError(f"dot: shapes {a_arr.shape} and {b_arr.shape} are not aligned")
    moved_b = np.moveaxis(b_arr, -2, -1) if b_arr.ndim > 1 else b_arr[None, :]
    out = np.empty(a_arr.shape[:-1] + moved_b.shape[:-1], dtype=object)
    for i in np.ndindex(*a_arr.shape[:-1]):
        for j in np.ndindex(*moved_b.shape[:-1]):
            out[i + j] = dot(a_arr[i], moved_b[j])
    if b_arr.ndim == 1:
        out = out.reshape(a_arr.shape[:-1])
    return out if out.ndim else out[()]


# --------------------------------------------------------------------------------------
# operators on Expr
# --------------------------------------------------------------------------------------
def _operand(value: Any) -> Expr | None:
    if isinstance(value, Expr):
        return value
    if is_number(value) or (isinstance(value, np.ndarray) and value.ndim == 0
                            and value.dtype.kind in "biuf"):
        return as_expr(value)
    return None


def _binary_operator(name: str, reflected: bool) -> Callable[[Expr, Any], Any]:
    def operator(self: Expr, other: Any) -> Any:
        other_expr = _operand(other)
        if other_expr is None and self.shape and isinstance(other, np.ndarray):
            other_expr = as_operand(other)         # a numeric array with a tensor
        if other_expr is None:
            return NotImplemented
        return apply(name, other_expr, self) if reflected else apply(name, self, other_expr)

    return operator


for _dunder, _name in [("add", "add"), ("sub", "sub"), ("mul", "mul"),
                       ("truediv", "div"), ("pow", "pow")]:
    setattr(Expr, f"__{_dunder}__", _binary_operator(_name, False))
    setattr(Expr, f"__r{_dunder}__", _binary_operator(_name, True))
for _dunder, _name in [("lt", "lt"), ("le", "le"), ("gt", "gt"), ("ge", "ge")]:
    setattr(Expr, f"__{_dunder}__", _binary_operator(_name, False))
Expr.__neg__ = lambda self: apply("neg", self)  # type: ignore[attr-defined]
Expr.__pos__ = lambda self: self  # type: ignore[attr-defined]
Expr.__abs__ = lambda self: apply("abs", self)  # type: ignore[attr-defined]

Expr.conjugate = lambda self: self  # type: ignore[attr-defined]

# numpy functions that are compositions, not primitives; every primitive's ufuncs are
# added by install_public_functions from its registry entry
_UFUNCS: dict[Any, Callable[..., Any]] = {
    np.positive: lambda x: x, np.square: lambda x: elementwise("pow", x, 2.0),
}


def _array_ufunc(self: Expr, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """numpy ufuncs on an Expr (``np.sin(x)``, ``np.float64(2) * x``) build nodes; an Expr
    is a 0-d array to reductions (``np.sum(x)``, ``np.max(x)`` give x) and ``out=``."""
    if method == "__call__" and (_UFUNCS.get(ufunc) is None or set(kwargs) - {"out"}) \
            and not (ufunc is np.matmul and self.shape):
        return NotImplemented
    return _dispatch_ufunc(ufunc, method, inputs, kwargs)


Expr.__array_ufunc__ = _array_ufunc  # type: ignore[attr-defined]
