"""Numeric evaluation of expression DAGs with the registry's numpy functions."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from .expr import CONSTANT, SYMBOL, Expr
from .registry import PRIMITIVES
from .traverse import topo_order


def evaluate(exprs: Expr | Iterable[Expr], env: Mapping | None = None,
             **values: Any) -> Any:
    """Evaluate one expression or several at once, each shared node computed once.

    ``env`` maps Symbols (or their names) to numbers or numpy arrays; arrays broadcast,
    so a batch of points is one call. Every output is broadcast to the common shape of
    the inputs. IEEE semantics: log(-1) is nan, 1/0 is inf, nothing raises.

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
            elif node.op == SYMBOL:
                values[node] = bound[node]
            else:
                values[node] = PRIMITIVES[node.op].numpy(*(values[a] for a in node.args))
    return [values[r] for r in roots]


def _broadcast(value: Any, shape: tuple[int, ...]) -> Any:
    if np.shape(value) == shape:
        return value
    return np.broadcast_to(value, shape).copy()
