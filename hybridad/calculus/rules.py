"""How a node passes tangents forward and cotangents back: the one place that applies
the registry's derivative rules, for every accumulation mode.

An elementwise primitive has scalar partial rules: a tangent is multiplied by the
partial (numpy broadcasting), and a cotangent is multiplied by it and then summed over
the axes along which the argument was broadcast. A structural primitive carries a
``(jvp, vjp)`` pair per argument (the linear map and its transpose). ``None`` means a
structural zero: nothing flows, and nothing is built.
"""

from __future__ import annotations

from ..core.build import ONE, apply, broadcast_to, is_const
from ..core.expr import Expr
from ..core.registry import PRIMITIVES
from ..core.tensor_ops import unbroadcast
from ..errors import HybridadError


def partial(node: Expr, i: int) -> Expr | None:
    """∂node/∂(argument i) of a scalar node as an Expr, or None when it is structurally
    zero: the registry's partial rule, or for a scalar node of a structural primitive
    (a custom rule, a user primitive) its VJP with cotangent 1. Element-level code (the
    tape, kernels) reads partials only through here."""
    prim = PRIMITIVES[node.op]
    if prim.structural:
        if node.shape or node.args[i].shape:
            raise HybridadError(f"element-level code needs scalar operations; {node.op} "
                                f"has shape {node.shape}: scalarize the expression first")
        p = prim.linear[i if prim.arity > 0 else 0][1](ONE, node, i)
        return None if p is None or is_const(p, 0.0) else p
    rule = prim.partials[i]
    if rule is None:
        return None
    p = rule(*node.args, node)
    return None if is_const(p, 0.0) else p


def tangent_term(node: Expr, i: int, t: Expr) -> Expr | None:
    """The part of ``node``'s tangent that comes from argument i's tangent ``t``."""
    prim = PRIMITIVES[node.op]
    if prim.structural:
        return prim.linear[i if prim.arity > 0 else 0][0](t, node, i)
    p = partial(node, i)
    if p is None:
        return None
    return t if p is ONE else apply("mul", p, t)     # same node, no lookup


def cotangent_term(node: Expr, i: int, g: Expr) -> Expr | None:
    """The part of argument i's cotangent that comes from ``node``'s cotangent ``g``."""
    prim = PRIMITIVES[node.op]
    if prim.structural:
        return prim.linear[i if prim.arity > 0 else 0][1](g, node, i)
    p = partial(node, i)
    if p is None:
        return None
    term = apply("mul", g, p)
    shape = node.args[i].shape
    return term if term.shape == shape else unbroadcast(term, shape)


def fit(value: Expr, shape: tuple[int, ...]) -> Expr:
    """``value`` broadcast to ``shape`` (a tangent summed from narrower terms)."""
    return value if value.shape == shape else broadcast_to(value, shape)
