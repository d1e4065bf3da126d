"""Gradients, Jacobians and Hessians as object arrays of expression DAGs."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.build import as_expr
from ..core.expr import Expr, Symbol
from .diff import _check_variable, adjoints, forward_columns


def _variables(wrt: Any, caller: str) -> list[Symbol]:
    flat = np.asarray(wrt, dtype=object).ravel()
    return [_check_variable(v, caller) for v in flat]


def _outputs(exprs: Any) -> list[Expr]:
    return [as_expr(e) for e in np.asarray(exprs, dtype=object).ravel()]


def gradient(f: Expr, wrt: Sequence[Symbol]) -> np.ndarray:
    """∇f by reverse accumulation: one pass, a DAG of size O(size of f), not n copies.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> g = hd.gradient(hd.log(x1) + x1 * x2 - hd.sin(x2), [x1, x2])
    >>> [round(float(gi.evaluate({x1: 2.0, x2: 5.0})), 3) for gi in g]
    [5.5, 1.716]
    """
    variables = _variables(wrt, "gradient()")
    out = np.empty(len(variables), dtype=object)
    out[:] = adjoints(as_expr(f), variables)
    return out


def jacobian(exprs: Any, wrt: Sequence[Symbol], mode: str = "auto") -> np.ndarray:
    """Jacobian, shape (m, n): rows by reverse accumulation (``mode="reverse"``, the
    ``"auto"`` choice when m <= n) or columns by forward accumulation."""
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', got "
                         f"{mode!r}")
    outputs, variables = _outputs(exprs), _variables(wrt, "jacobian()")
    out = np.empty((len(outputs), len(variables)), dtype=object)
    if mode == "reverse" or mode == "auto" and len(outputs) <= len(variables):
        for i, f in enumerate(outputs):
            out[i, :] = adjoints(f, variables)
    else:
        for j, column in enumerate(forward_columns(outputs, variables)):
            out[:, j] = column
    return out


def hessian(f: Expr, wrt: Sequence[Symbol]) -> np.ndarray:
    """Hessian, shape (n, n), by forward-over-reverse; exactly symmetric (the lower
    triangle is mirrored, so H[i, j] is H[j, i])."""
    variables = _variables(wrt, "hessian()")
    grad = adjoints(as_expr(f), variables)
    n = len(variables)
    out = np.empty((n, n), dtype=object)
    for j, column in enumerate(forward_columns(grad, variables)):
        out[j:, j] = column[j:]
        out[j, j + 1:] = out[j + 1:, j]
    return out
