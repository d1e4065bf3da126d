"""Tracing: run a Python function once on symbols to get its expression DAG."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..core.build import as_expr, symarray
from ..core.expr import Expr
from ..errors import TracingError


def trace(fun: Callable[..., Any], shape: tuple[int, ...], prefix: str = "x"
          ) -> tuple[np.ndarray, Any]:
    """Call ``fun`` on an object array of Symbols of ``shape``; return (inputs, output).

    The function must use hybridad functions or numpy ufuncs on the object array;
    Python ``if`` on a traced value raises :class:`TracingError` pointing to
    ``hd.where``. The output is an Expr or an object array of Exprs.
    """
    inputs = symarray(prefix, shape) if shape else symarray(prefix, (1,))[0]
    output = fun(inputs)
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
