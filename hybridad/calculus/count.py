"""Size measures of expressions: DAG size and written-out tree size."""

from __future__ import annotations

from typing import Any

from ..core.expr import Expr
from ..core.traverse import topo_order
from .jacobian import _outputs


def count_ops(exprs: Expr | Any, tree: bool = False) -> int:
    """Number of operation nodes (symbols and constants are not counted).

    ``tree=False`` counts distinct nodes of the DAG. ``tree=True`` counts the operations
    of the expression written out as a tree, computed over the DAG with Python integers
    (size(node) = 1 + sum of its children's sizes), so it works when the tree would have
    10**18 nodes.

    >>> import hybridad as hd
    >>> x = hd.symbols("x")
    >>> s = hd.sin(x)
    >>> hd.count_ops(s * s), hd.count_ops(s * s, tree=True)
    (2, 3)
    """
    roots = _outputs(exprs)
    order = topo_order(roots)
    if not tree:
        return sum(1 for node in order if node.args)
    size: dict[Expr, int] = {}
    for node in order:
        size[node] = 1 + sum(size[a] for a in node.args) if node.args else 0
    return sum(size[r] for r in roots)
