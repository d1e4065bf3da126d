"""A flat, non-recursive encoding of DAGs (used by pickle)."""

from __future__ import annotations

from typing import Any

from .build import apply
from .expr import ARRAY, CONSTANT, SYMBOL, Expr, array_constant, constant, symbol
from .traverse import topo_order


def to_table(roots: list[Expr]) -> tuple[list[tuple], list[int]]:
    """``(rows, root indices)``: one ``(op, param, argument indices)`` row per node, and
    a symbol's shape as a fourth entry when it has one."""
    order = topo_order(roots)
    index = {node: i for i, node in enumerate(order)}
    rows = [(n.op, n.param, tuple(index[a] for a in n.args))
            + ((n.shape,) if n.op == SYMBOL and n.shape else ()) for n in order]
    return rows, [index[r] for r in roots]


def from_table(table: tuple[list, list[int]], single: bool = False) -> Any:
    """Rebuild the nodes of :func:`to_table` through the constructors (re-interning)."""
    rows, root_indices = table
    nodes: list[Expr] = []
    for op, param, arg_indices, *shape in rows:
        if op == SYMBOL:
            nodes.append(symbol(param, shape[0] if shape else ()))
        elif op == CONSTANT:
            nodes.append(constant(param))
        elif op == ARRAY:
            nodes.append(array_constant(param))
        else:
            nodes.append(apply(op, *(nodes[i] for i in arg_indices), param=param))
    roots = [nodes[i] for i in root_indices]
    return roots[0] if single else roots
