"""Substitution: rebuild expressions with some nodes replaced by others.

Used to bind a nested trace's own symbols to the values its transform was called with
(numbers or expressions of an outer trace). The rebuild goes through the constructors,
so the results are interned, folded and simplified like any other expression.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .build import apply
from .expr import Expr
from .traverse import topo_order


def substitute(roots: Sequence[Expr], mapping: Mapping[Expr, Expr]) -> list[Expr]:
    """``roots`` with every occurrence of a key of ``mapping`` replaced by its value.

    One pass over the topological order (no recursion); nodes that reach no key are
    kept as they are, so shared structure stays shared.

    >>> import hybridad as hd
    >>> from hybridad.core.substitute import substitute
    >>> x, y = hd.symbols("x y")
    >>> substitute([hd.sin(x) * y], {x: hd.symbols("y") * 2.0})
    [sin(2*y)*y]
    """
    new: dict[Expr, Expr] = dict(mapping)
    for node in topo_order(roots):
        if node in new or not node.args:
            continue
        args = tuple(new.get(a, a) for a in node.args)
        if any(n is not a for n, a in zip(args, node.args)):
            new[node] = apply(node.op, *args, param=node.param)
    return [new.get(r, r) for r in roots]
