"""Numeric evaluation of expression DAGs with the registry's numpy functions."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import ShapeError
from .expr import ARRAY, CONSTANT, SYMBOL, Expr
from .registry import PRIMITIVES
from .traverse import topo_order


def evaluate(exprs: Expr | Iterable[Expr], env: Mapping | None = None,
             **values: Any) -> Any:
    """Evaluate one expression or several at once, each shared node computed once.

    ``env`` maps Symbols (or their names) to numbers or numpy arrays. For scalar
    expressions arrays broadcast, so a batch of points is one call, and every output is
    broadcast to the common shape of the inputs. For shaped (tensor) expressions each
    value has exactly its symbol's shape, or one extra leading batch dimension (values
    without it are shared by every row); outputs then have their own shapes, with the
    batch dimension in front when there is one. IEEE semantics: log(-1) is nan, 1/0 is
    inf, nothing raises.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> f = hd.log(x1) + x1 * x2 - hd.sin(x2)
    >>> [round(float(v), 3) for v in hd.evaluate([f, x1 * x2], {x1: 2.0, x2: 5.0})]
    [11.652, 10.0]
    """
    single = isinstance(exprs, Expr)
    roots = [exprs] if single else list(exprs)
    for root in roots:
        if not isinstance(root, Expr):
            raise TypeError(f"evaluate() expects expressions, got {type(root).__name__}")
    order = topo_order(roots)
    bound = _bind_symbols(order, {**(env or {}), **values})
    if any(node.shape for node in order):
        results = _run_shaped(order, roots, bound)
        return results[0] if single else results
    results = _run(order, roots, bound)
    shape = np.broadcast_shapes(*(np.shape(v) for v in bound.values())) if bound else ()
    results = [_broadcast(r, shape) for r in results]
    return results[0] if single else results


def _bind_symbols(order: list[Expr], env: Mapping) -> dict[Expr, Any]:
    by_name = {(k.param if isinstance(k, Expr) else k): v for k, v in env.items()}
    bound, missing = {}, []
    for node in order:
        if node.op == SYMBOL:
            if node.param in by_name:
                bound[node] = _as_numeric(node.param, by_name[node.param])
            else:
                missing.append(node.param)
    if missing:
        raise ValueError(f"evaluate(): no values for symbols {', '.join(sorted(missing))}")
    return bound


def _as_numeric(name: str, value: Any) -> Any:
    array = np.asarray(value)
    if array.dtype.kind in "biu":
        array = array.astype(np.float64)
    if array.dtype.kind not in "fc":
        raise TypeError(f"evaluate(): the value for {name} must be numeric, got "
                        f"{type(value).__name__} of dtype {array.dtype}")
    return array[()] if array.ndim == 0 else array


def _run(order: list[Expr], roots: list[Expr], bound: dict[Expr, Any]) -> list[Any]:
    values: dict[Expr, Any] = {}
    with np.errstate(all="ignore"):
        for node in order:
            if node.op == CONSTANT:
                values[node] = np.float64(node.param)
            elif node.op == ARRAY:
                values[node] = node.param
            elif node.op == SYMBOL:
                values[node] = bound[node]
            else:
                values[node] = apply_numpy(node, [values[a] for a in node.args])
    return [values[r] for r in roots]


def apply_numpy(node: Expr, values: list[Any]) -> Any:
    """The registry's numpy evaluation of ``node`` on its arguments' values."""
    prim = PRIMITIVES[node.op]
    return prim.numpy(*values, node.param) if prim.structural else prim.numpy(*values)


def _run_shaped(order: list[Expr], roots: list[Expr], bound: dict[Expr, Any]) -> list[Any]:
    """Evaluate a DAG with shaped nodes: each value its symbol's shape (shared) or with
    one leading batch dimension; a batch is evaluated row by row and stacked."""
    batch = _batch_size(bound)
    if batch is None:
        return [_shaped(v, r.shape) for v, r in zip(_run(order, roots, bound), roots)]
    rows = []
    for i in range(batch):
        row = {s: (v[i] if np.ndim(v) == s.ndim + 1 else v) for s, v in bound.items()}
        rows.append([_shaped(v, r.shape) for v, r in zip(_run(order, roots, row), roots)])
    return [np.stack([row[k] for row in rows]) if rows else np.zeros((0,) + r.shape)
            for k, r in enumerate(roots)]


def _batch_size(bound: dict[Expr, Any]) -> int | None:
    sizes = {}
    for symbol, value in bound.items():
        shape = np.shape(value)
        if shape == symbol.shape:
            continue
        if len(shape) != symbol.ndim + 1 or shape[1:] != symbol.shape:
            raise ShapeError(f"evaluate(): the value for {symbol.param} must have shape "
                             f"{symbol.shape} or (batch, *{symbol.shape}), got {shape}")
        sizes[symbol.param] = shape[0]
    if len(set(sizes.values())) > 1:
        raise ShapeError(f"evaluate(): batched values have different batch sizes {sizes}")
    return next(iter(sizes.values()), None)


def _shaped(value: Any, shape: tuple[int, ...]) -> Any:
    value = np.asarray(value, dtype=np.float64)
    return (value if value.shape == shape else np.broadcast_to(value, shape).copy())[()]


def _broadcast(value: Any, shape: tuple[int, ...]) -> Any:
    if np.shape(value) == shape:
        return value
    return np.broadcast_to(value, shape).copy()
