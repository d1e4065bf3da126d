"""Common-subexpression elimination with ``sympy.cse``'s output contract.

The DAG is already hash-consed, so every repeated subexpression is one node; ``cse``
only has to name each operation node used more than once.
"""

from __future__ import annotations

from typing import Any

from ..core.build import apply
from ..core.expr import Expr, Symbol, is_live_symbol, symbol
from ..core.traverse import parent_counts, topo_order
from .jacobian import _outputs


def cse(exprs: Expr | Any, prefix: str = "x") -> tuple[list[tuple[Symbol, Expr]], list[Expr]]:
    """``(replacements, reduced)`` as ``sympy.cse``: every operation node used more than
    once becomes a new symbol ``x0, x1, ...`` (names already in use are skipped).

    ``replacements`` is in topological order: each right-hand side uses only the original
    symbols and earlier replacement symbols. ``reduced`` is always a list.

    >>> import hybridad as hd
    >>> a, b = hd.symbols("a b")
    >>> hd.cse([hd.sin(a + b) * (a + b)])
    ([(x0, a + b)], [sin(x0)*x0])
    """
    roots = _outputs(exprs)
    order = topo_order(roots)
    counts = parent_counts(roots, order)
    names = _fresh_names(order, prefix)
    replacements: list[tuple[Symbol, Expr]] = []
    new: dict[Expr, Expr] = {}
    for node in order:
        if not node.args:
            new[node] = node
            continue
        rebuilt = apply(node.op, *(new[a] for a in node.args), param=node.param)
        if counts[node] > 1:
            name = _named(names, rebuilt.shape)
            replacements.append((name, rebuilt))
            rebuilt = name
        new[node] = rebuilt
    return replacements, [new[r] for r in roots]


def _named(names: Any, shape: tuple[int, ...]) -> Symbol:
    """The next free name as a symbol of ``shape`` (a name held elsewhere by a symbol of
    another shape is skipped)."""
    while True:
        name = next(names)
        if not is_live_symbol(name) or symbol(name).shape == shape:
            return symbol(name, shape)


def _fresh_names(order: list[Expr], prefix: str):
    taken = {n.param for n in order if n.is_symbol}
    i = 0
    while True:
        name = f"{prefix}{i}"
        i += 1
        if name not in taken:
            yield name
