"""Symbolic differentiation on the DAG, returning DAGs.

Both accumulation orders walk the topological order once and apply each primitive's
partial rules (the registry's expressions), so the derivative of an expression of size
N has O(N) nodes: forward accumulation (tangents) for one variable, reverse accumulation
(adjoints) for a gradient, as in Griewank & Walther, *Evaluating Derivatives*, ch. 3.
Structural zeros are never built: a node that does not depend on the variable has no
tangent entry, a ``None`` partial contributes nothing, and a zero partial is skipped.
"""

from __future__ import annotations

from functools import reduce

from typing import Iterable, Sequence

import numpy as np

from ..core.build import ONE, ZERO, apply, broadcast_to
from ..core.expr import CONSTANT, Expr, Symbol
from ..core.traverse import dependents, topo_order
from ..errors import ShapeError
from .rules import cotangent_term, fit, tangent_term


def _accumulate(total: Expr | None, term: Expr) -> Expr:
    return term if total is None else apply("add", total, term)


def _check_variable(x: object, caller: str) -> Symbol:
    if not (isinstance(x, Expr) and x.is_symbol):
        raise TypeError(f"{caller}: can only differentiate with respect to a Symbol, "
                        f"got {x!r}")
    return x  # type: ignore[return-value]


def tangents(roots: Sequence[Expr], x: Symbol) -> list[Expr]:
    """Forward accumulation: d root / d x for every root, in one pass (x a scalar)."""
    if x.shape:
        raise ShapeError(f"cannot take d/d{x.param} of shape {x.shape} as one expression; "
                         f"use hd.gradient, hd.jvp or hd.vjp for a tensor symbol")
    return directional(roots, {x: ONE})


def directional(roots: Sequence[Expr], seeds: dict[Expr, Expr]) -> list[Expr]:
    """Forward accumulation with seed tangents: Σ_x (d root / d x) · seeds[x] for every
    root in one pass (a Jacobian-vector product whose vector may be symbolic)."""
    dot = _forward_pass(topo_order(roots), {x: fit(_expr(v), x.shape)
                                            for x, v in seeds.items()})
    return [dot[r] if r in dot else zeros(r.shape) for r in roots]


def forward_columns(roots: Sequence[Expr], wrt: Sequence[Symbol]) -> list[list[Expr]]:
    """d root / d x for every x in ``wrt`` (one list of roots' derivatives per x), each
    by forward accumulation over x's cone only: the nodes that depend on x. A pass over
    the whole DAG per variable made forward Jacobians cost n times the DAG (7 s for a
    512-input layer); the cones together are usually far smaller."""
    order = topo_order(roots)
    rank = {node: k for k, node in enumerate(order)}
    users: dict[Expr, list[Expr]] = {}
    for node in order:
        for a in set(node.args):
            users.setdefault(a, []).append(node)
    columns = []
    for x in wrt:
        cone = sorted(_cone(x, users), key=rank.__getitem__)
        dot = _forward_pass(cone, {x: ONE})
        columns.append([dot[r] if r in dot else zeros(r.shape) for r in roots])
    return columns


def _cone(x: Expr, users: dict[Expr, list[Expr]]) -> set[Expr]:
    """Every node reachable from ``x`` through its users (iteratively)."""
    seen: set[Expr] = set()
    stack = list(users.get(x, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(users.get(node, ()))
    return seen


def _forward_pass(nodes: Sequence[Expr], dot: dict[Expr, Expr]) -> dict[Expr, Expr]:
    """Tangents of ``nodes`` (in topological order) from the seeds already in ``dot``."""
    for node in nodes:
        if not node.args:
            continue
        total = None
        for i, a in enumerate(node.args):
            da = dot.get(a)
            if da is None:
                continue
            term = tangent_term(node, i, da)
            if term is not None:
                total = _accumulate(total, term)
        if total is not None:
            dot[node] = fit(total, node.shape)
    return dot


def adjoints(root: Expr, wrt: Sequence[Symbol]) -> list[Expr]:
    """Reverse accumulation: d root / d w for every w in ``wrt``, in one pass."""
    return weighted_adjoints([root], [ONE], wrt)


def weighted_adjoints(roots: Sequence[Expr], weights: Sequence[Expr], wrt: Sequence[Expr]
                      ) -> list[Expr]:
    """Reverse accumulation seeded with ``weights``: d (Σ_i weights[i] · roots[i]) / d w
    for every w in ``wrt`` in one pass (a vector-Jacobian product). A w may also be an
    intermediate node (its adjoint: the derivative through it, as PyTorch's
    ``retain_grad``).

    Invariant: a node's adjoint is complete when the reversed order reaches it, because
    every parent comes later in the topological order.
    """
    order = topo_order(roots)
    active = dependents(order, wrt)
    requested, kept = {w for w in wrt if w.args}, {}   # intermediate nodes asked for
    terms: dict[Expr, list[Expr]] = {}   # adjoint contributions, summed when complete
    for root, weight in zip(roots, weights, strict=True):
        terms.setdefault(root, []).append(fit(_expr(weight), root.shape))
    for node in reversed(order):
        if node not in terms or not node.args:
            continue
        node_bar = _signed_sum(terms.pop(node))
        if node in requested:
            kept[node] = node_bar
        for i, a in enumerate(node.args):
            if a not in active:
                continue
            term = cotangent_term(node, i, node_bar)
            if term is not None:
                terms.setdefault(a, []).append(term)
    return [kept[w] if w in kept else _signed_sum(terms[w]) if w in terms else zeros(w.shape)
            for w in wrt]


def zeros(shape: tuple[int, ...]) -> Expr:
    """The zero of ``shape`` (a structural zero made concrete, one node however large)."""
    return broadcast_to(ZERO, shape) if shape else ZERO


def _expr(value: object) -> Expr:
    from ..core.build import as_operand

    return as_operand(value)


def _signed_sum(contributions: list[Expr]) -> Expr:
    """The sum of adjoint contributions, positive ones first and negated ones subtracted
    after them (a - b - c rather than -b + a - c: no negation left when any term is
    positive). Same terms in the same order otherwise."""
    positive = [t for t in contributions if not _is_negated(t)]
    negative = [t for t in contributions if _is_negated(t)]
    if not positive:
        return reduce(lambda total, term: apply("add", total, term), contributions)
    total = reduce(lambda acc, term: apply("add", acc, term), positive)
    for term in negative:
        total = apply("add", total, term)      # add turns x + (-y) into x - y
    return total


def _is_negated(term: Expr) -> bool:
    return term.op == "neg" or (term.op == "mul" and term.args[0].op == CONSTANT
                                and term.args[0].param < 0)


def diff(f: Expr, *spec: Symbol | int) -> Expr:
    """Derivative of ``f``: ``diff(f, x)``, ``diff(f, x, 2)``, ``diff(f, x, y)``.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> f = hd.log(x1) + x1 * x2 - hd.sin(x2)
    >>> hd.diff(f, x1)
    1/x1 + x2
    >>> float(hd.diff(f, x2).evaluate({x1: 2.0, x2: 5.0}))
    1.7163378145367738
    """
    if not isinstance(f, Expr):
        raise TypeError(f"diff() expects an expression, got {type(f).__name__}")
    if not spec:
        raise TypeError("diff() needs at least one variable, as in diff(f, x)")
    for x in _expand_spec(spec):
        f = tangents([f], x)[0]
    return f


def _expand_spec(spec: Iterable[Symbol | int]) -> list[Symbol]:
    variables: list[Symbol] = []
    for item in spec:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not variables or item < 0:
                raise ValueError(f"diff(): an order must follow a variable and be >= 0, "
                                 f"got {item}")
            variables.extend([variables[-1]] * (int(item) - 1))
        else:
            variables.append(_check_variable(item, "diff()"))
    return variables
