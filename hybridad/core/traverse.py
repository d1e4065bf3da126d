"""Iterative graph traversal: the one topological-order helper every pass uses.

No pass recurses into structure, so a 100,000-deep chain never meets Python's recursion
limit. A pass is a loop over ``topo_order`` (children before parents); reverse passes
loop over it reversed.
"""

from __future__ import annotations

from typing import Callable, Iterable

from .expr import Expr


def topo_order(roots: Iterable[Expr], follow: Callable[[Expr], bool] | None = None
               ) -> list[Expr]:
    """All nodes reachable from ``roots``, children before parents, each once; with
    ``follow``, only through arguments for which it is true (a sub-DAG, such as the nodes
    fused into one loop).

    Depth-first with an explicit stack of ``(node, expanded)`` pairs; the first argument
    is visited first, so the order is deterministic and reads like the source.
    """
    order: list[Expr] = []
    seen: set[Expr] = set()
    for root in roots:
        if root in seen:
            continue
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node in seen:
                continue
            seen.add(node)
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args)
                         if a not in seen and (follow is None or follow(a)))
    return order


def free_symbols(roots: Iterable[Expr]) -> list[Expr]:
    """The symbols reachable from ``roots``, sorted by name."""
    return sorted((n for n in topo_order(roots) if n.is_symbol), key=lambda s: s.param)


def dependents(order: list[Expr], sources: Iterable[Expr]) -> set[Expr]:
    """Nodes of ``order`` (a topological order) that depend on any of ``sources``."""
    active = set(sources)
    for node in order:
        if node.args and any(a in active for a in node.args):
            active.add(node)
    return active


def parent_counts(roots: list[Expr], order: list[Expr]) -> dict[Expr, int]:
    """How many times each node is used as an argument (plus once per root occurrence)."""
    counts: dict[Expr, int] = dict.fromkeys(order, 0)
    for node in order:
        for a in node.args:
            counts[a] += 1
    for root in roots:
        counts[root] += 1
    return counts


def depths(order: list[Expr]) -> dict[Expr, int]:
    """Longest path from a leaf: 0 for symbols and constants."""
    depth: dict[Expr, int] = {}
    for node in order:
        depth[node] = 1 + max(depth[a] for a in node.args) if node.args else 0
    return depth
