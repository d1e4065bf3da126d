"""Hypothesis strategies shared by the tests: random DAGs with shared subexpressions.

DAGs are built by drawing ops from the registry and operands from nodes already built,
so subexpressions are shared. Operands pass through domain-safe wrappers so every
expression is defined (and, with ``SMOOTH_OPS``, smooth) on the whole real line.
"""

from hypothesis import strategies as st

import hybridad as hd
from hybridad.core.build import apply
from hybridad.core.expr import constant
from hybridad.core.registry import PRIMITIVES, Flags, elementwise_names

VARIABLES = hd.symbols("x y z")


def _positive(u):
    return 1 + u * u


def _bounded(u, scale=1.0):
    return scale * hd.tanh(u)


# How each op is fed so that it stays on its smooth domain.
SAFE = {
    "log": lambda u: hd.log(_positive(u)), "sqrt": lambda u: hd.sqrt(_positive(u)),
    "log1p": lambda u: hd.log1p(u * u), "arcsin": lambda u: hd.arcsin(_bounded(u, 0.9)),
    "arccos": lambda u: hd.arccos(_bounded(u, 0.9)), "tan": lambda u: hd.tan(_bounded(u)),
    "exp": lambda u: hd.exp(_bounded(u, 2.0)), "expm1": lambda u: hd.expm1(_bounded(u, 2)),
    "sinh": lambda u: hd.sinh(_bounded(u, 2.0)), "cosh": lambda u: hd.cosh(_bounded(u, 2)),
    "div": lambda u, v: u / _positive(v), "pow": lambda u, v: _positive(u) ** _bounded(v),
    "arctan2": lambda u, v: hd.arctan2(u, _positive(v)),
}
SMOOTH_OPS = sorted(n for n, p in PRIMITIVES.items()
                    if p.flags & Flags.SMOOTH and n != "neg" and not p.structural) + ["neg"]
ALL_OPS = elementwise_names()


def build(op, operands):
    if op in SAFE:
        return SAFE[op](*operands)
    return apply(op, *operands)


@st.composite
def dags(draw, ops=tuple(SMOOTH_OPS), max_steps=14):
    pool = list(VARIABLES) + [constant(0.5)]
    for _ in range(draw(st.integers(2, max_steps))):
        op = draw(st.sampled_from(ops))
        picks = [pool[draw(st.integers(0, len(pool) - 1))]
                 for _ in range(PRIMITIVES[op].arity)]
        pool.append(build(op, picks))
    # sum a few late nodes so that several branches (and shared parts) reach the root
    tail = pool[len(VARIABLES) + 1:]
    return hd.sum(tail[-3:]) if tail else pool[0]
