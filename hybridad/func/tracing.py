"""Tracing: run a Python function once on symbols to get its expression DAG.

Every trace runs the function on *fresh* symbols (never shared with another trace or
with the user's own symbols) and records them before the call, so a function that
writes into its argument array cannot change what the inputs were. While a trace runs,
:func:`inside_trace` is true: a transform called from the traced function then works
on expressions (its own fresh symbols, bound afterwards to the values it was called
with) instead of compiling a kernel, which keeps nested derivatives free of
perturbation confusion (Siskind & Pearlmutter, "Perturbation confusion and referential
transparency", 2005).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..core.build import as_expr, fresh_symarray, symarray
from ..core.expr import Expr
from ..core.trace_state import NeedsElements, inside_trace, tracing
from ..errors import TracingError

__all__ = ["NeedsElements", "call_on_symbols", "fresh_inputs", "inside_trace", "trace",
           "tracing"]


def call_on_symbols(fun: Callable[..., Any], symbols: list[Expr], kwargs: dict[str, Any]
                    ) -> Any:
    """``fun(*symbols)`` with each array argument one tensor symbol, so vectorised code
    builds a compact DAG; when ``fun`` needs the elements (``len(x)``, ``x[i] = v``), it
    runs again on object arrays of the elements ``x[i, j]`` (a fresh copy it may write
    into) and builds the element-level DAG of the same symbols."""
    from ..core.scalarize import elements

    with tracing():
        try:
            return fun(*symbols, **kwargs)
        except NeedsElements:
            pass
        return fun(*[elements(s) if s.shape else s for s in symbols], **kwargs)


def fresh_inputs(shapes: tuple[tuple[int, ...], ...], hint: str = "a"
                 ) -> tuple[list[Any], list[list[Expr]]]:
    """Fresh symbols for arguments of ``shapes``: (one symbol or symbol array per
    argument, the flat list of each argument's symbols recorded now)."""
    symbols = [fresh_symarray(f"{hint}{k}", shape) for k, shape in enumerate(shapes)]
    return symbols, [list(np.ravel(np.asarray(s, dtype=object))) for s in symbols]


def trace(fun: Callable[..., Any], shape: tuple[int, ...], prefix: str | None = None
          ) -> tuple[np.ndarray, Any]:
    """Call ``fun`` on an object array of Symbols of ``shape``; return (inputs, output).

    The symbols are fresh (``prefix=None``) or named ``prefix_i_j...``. The returned
    inputs are the symbols as they were before the call, even if ``fun`` assigned into
    its argument. The function must use hybridad functions or numpy ufuncs on the
    object array; Python ``if`` on a traced value raises :class:`TracingError` pointing
    to ``hd.where``. The output is an Expr or an object array of Exprs.
    """
    if prefix is None:
        inputs = fresh_symarray("x", tuple(shape))
    else:
        inputs = symarray(prefix, shape) if shape else symarray(prefix, (1,))[0]
    argument = inputs.copy() if isinstance(inputs, np.ndarray) else inputs
    with tracing():
        output = fun(argument)
    return inputs, _as_output(output)


def _as_output(value: Any) -> Any:
    if isinstance(value, Expr):
        return value
    try:
        array = np.asarray(value, dtype=object)
        return np.vectorize(as_expr, otypes=[object])(array) if array.ndim else as_expr(
            array[()])
    except TypeError as error:
        raise TracingError(f"a traced function must return expressions or numbers, got "
                           f"{type(value).__name__}: {error}") from None
