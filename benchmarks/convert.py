"""Rebuild a hybridad expression DAG in another symbolic tool (SymEngine, CasADi SX).

One iterative walk over ``topo_order``: every shared hybridad node becomes one node of the
target, so the peer receives the same graph hybridad differentiates, never a tree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hybridad.core.expr import Expr
from hybridad.core.traverse import topo_order

ARITHMETIC: dict[str, Callable[..., Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul,
    "div": operator.truediv, "pow": operator.pow, "neg": operator.neg,
}

# hybridad name -> (SymEngine name, CasADi name) of the elementary functions converted
FUNCTIONS: dict[str, tuple[str, str]] = {
    "sin": ("sin", "sin"), "cos": ("cos", "cos"), "tan": ("tan", "tan"),
    "arcsin": ("asin", "asin"), "arccos": ("acos", "acos"), "arctan": ("atan", "atan"),
    "sinh": ("sinh", "sinh"), "cosh": ("cosh", "cosh"), "tanh": ("tanh", "tanh"),
    "exp": ("exp", "exp"), "log": ("log", "log"), "sqrt": ("sqrt", "sqrt"),
}


class Unsupported(Exception):
    """The expression uses an operation this converter has no equivalent for."""


def function_table(module: Any, column: int) -> dict[str, Callable[..., Any]]:
    """Arithmetic plus the elementary functions of ``module`` (column 0: SymEngine,
    1: CasADi)."""
    table = dict(ARITHMETIC)
    table.update({name: getattr(module, names[column]) for name, names in FUNCTIONS.items()})
    return table


def convert(outputs: Sequence[Expr], leaves: Mapping[Expr, Any],
            table: Mapping[str, Callable[..., Any]], constant: Callable[[float], Any]
            ) -> list[Any]:
    """``outputs`` rebuilt with ``table``'s functions; ``leaves`` maps each input Symbol
    to the target's symbol, ``constant`` makes the target's number."""
    built: dict[Expr, Any] = {}
    for node in topo_order(outputs):
        if node.is_symbol:
            if node not in leaves:
                raise Unsupported(f"symbol {node.param} is not an input")
            built[node] = leaves[node]
        elif node.is_constant:
            built[node] = constant(float(node.param))
        elif node.op in table:
            built[node] = table[node.op](*(built[a] for a in node.args))
        else:
            raise Unsupported(f"no conversion for the operation {node.op!r}")
    return [built[o] for o in outputs]
