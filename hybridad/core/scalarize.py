"""Scalarization: a shaped expression as an object array of scalar expressions.

The two levels are one IR. Each node is expanded by its own registry entry: an
elementwise primitive maps over object arrays (numpy broadcasting), and a structural
primitive runs its numpy rule on object arrays of expressions (reshape, transpose and
indexing move elements; sums, maxima and matrix products build scalar nodes). A tensor
symbol's elements are index nodes ``X[i, j]`` unless ``leaves`` says otherwise (the
backends pass fresh scalar symbols, one per element). ``hd.stack`` goes back.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import HybridadError
from .build import ExprArray, apply, elementwise
from .expr import ARRAY, CONSTANT, SYMBOL, Expr, constant
from .registry import PRIMITIVES
from .traverse import topo_order

#: the most scalar nodes a scalarization may make (an estimate: the sum of node sizes)
MAX_ELEMENTS = 2_000_000


def scalarize(exprs: Any, leaves: Mapping[Expr, Any] | None = None) -> Any:
    """Object array (the expression's shape) of scalar expressions; a list of them for a
    list of expressions. A scalar expression is returned as it is.

    >>> import hybridad as hd
    >>> v = hd.tensor("v", (3,))
    >>> hd.scalarize(v[1:] * 2.0)
    ExprArray([2*v[1], 2*v[2]], dtype=object)
    """
    many = isinstance(exprs, (list, tuple))
    roots = list(exprs) if many else [exprs]
    order = topo_order(roots)
    _check_size(order)
    values: dict[Expr, Any] = {}
    for node in order:
        values[node] = _expand(node, [values[a] for a in node.args], leaves or {})
    results = [_as_result(values[r], r) for r in roots]
    return results if many else results[0]


def elements(symbol: Expr) -> np.ndarray:
    """The index nodes ``X[i, j, ...]`` of a tensor symbol, as an object array."""
    out = np.empty(symbol.shape, dtype=object)
    for index in np.ndindex(*symbol.shape):
        out[index] = symbol[index] if index else symbol
    return out.view(ExprArray)


def _expand(node: Expr, args: Sequence[Any], leaves: Mapping[Expr, Any]) -> Any:
    if node.op == SYMBOL:
        if node in leaves:
            return np.asarray(leaves[node], dtype=object).view(ExprArray) \
                if node.shape else leaves[node]
        return elements(node) if node.shape else node
    if node.op == CONSTANT:
        return node
    if node.op == ARRAY:
        out = np.empty(node.size, dtype=object)
        out[:] = [constant(v) for v in node.param.ravel()]
        return out.reshape(node.shape).view(ExprArray)
    prim = PRIMITIVES[node.op]
    if not prim.structural:
        return elementwise(node.op, *(_operand(a) for a in args))
    if prim.opaque:
        return _opaque(node, args)
    arrays = [np.asarray(a, dtype=object).view(ExprArray) for a in args]
    result = prim.numpy(*arrays, node.param)
    return np.asarray(result, dtype=object).reshape(node.shape).view(ExprArray)


def _opaque(node: Expr, args: Sequence[Any]) -> Expr:
    """A node kept whole at element level (a custom rule): possible on scalars only."""
    if node.shape or any(a.shape for a in node.args):
        raise HybridadError(
            f"{node.op} on arrays has no element-level form; evaluate or differentiate it "
            f"at tensor level (hd.evaluate, hd.gradient, hd.vjp)")
    return apply(node.op, *(_operand(a) for a in args), param=node.param)


def element_cost(roots: Sequence[Expr]) -> int:
    """About how many scalar nodes ``scalarize`` would make: a node's size, times the
    summed length for contractions (a matrix product of (m, k) by (k, n) is m n k
    multiplies and as many adds)."""
    total = 0
    for node in topo_order(roots):
        if node.op == "matmul":
            total += 2 * node.size * node.args[0].shape[-1]
        elif node.op == "einsum":
            sizes = {c: n for part, a in zip(node.param.split("->")[0].split(","), node.args)
                     for c, n in zip(part, a.shape)}
            total += 2 * math.prod(sizes.values())
        elif node.args and PRIMITIVES[node.op].structural:
            total += max([node.size] + [a.size for a in node.args])
        else:
            total += node.size
    return total


def can_scalarize(roots: Sequence[Expr]) -> bool:
    """Whether ``scalarize`` can expand every node (no opaque node on arrays)."""
    return not any(PRIMITIVES[n.op].opaque and (n.shape or any(a.shape for a in n.args))
                   for n in topo_order(roots) if n.args)


def _operand(value: Any) -> Any:
    return value if isinstance(value, Expr) or value.ndim else value[()]


def _as_result(value: Any, root: Expr) -> Any:
    if not root.shape:
        return value if isinstance(value, Expr) else np.asarray(value, dtype=object)[()]
    return np.asarray(value, dtype=object).reshape(root.shape).view(ExprArray)


def _check_size(order: list[Expr]) -> None:
    total = sum(node.size for node in order)
    if total > MAX_ELEMENTS:
        raise HybridadError(
            f"scalarizing this expression would make about {total:,} scalar nodes (more "
            f"than {MAX_ELEMENTS:,}); element-level code is for small tensors; evaluate "
            f"or differentiate it at tensor level (hd.evaluate, hd.gradient, hd.vjp)")


def element_symbols(symbols: Any) -> dict[Expr, Any]:
    """Fresh scalar symbols (an object array of its shape) for each tensor symbol among
    ``symbols`` (a symbol, or a sequence of symbols and symbol arrays)."""
    from .build import fresh_symarray

    items = [symbols] if isinstance(symbols, Expr) else list(symbols) if isinstance(
        symbols, (list, tuple)) else []
    return {s: fresh_symarray(s.param, s.shape) for s in items
            if isinstance(s, Expr) and s.is_symbol and s.shape}


def at_element_level(exprs: Any, leaves: dict[Expr, Any]) -> Any:
    """``exprs`` (one expression, or a list of scalar ones) scalarized over ``leaves``;
    anything else is returned unchanged."""
    if isinstance(exprs, Expr):
        return scalarize(exprs, leaves)
    if isinstance(exprs, (list, tuple)) and all(isinstance(e, Expr) for e in exprs):
        shaped = [e for e in exprs if e.shape]
        if shaped:
            raise HybridadError(
                f"a list of outputs must be scalar expressions; got one of shape "
                f"{shaped[0].shape}: pass a tensor output on its own")
        return [scalarize(e, leaves) for e in exprs]
    return exprs


def replace_symbols(items: Any, leaves: dict[Expr, Any]) -> Any:
    """``items`` (a symbol or a sequence) with each tensor symbol replaced by its
    element symbols."""
    if isinstance(items, Expr):
        return leaves.get(items, items)
    if isinstance(items, (list, tuple)):
        return [leaves.get(a, a) if isinstance(a, Expr) else a for a in items]
    return items
