"""``check_grad``: automatic derivatives against finite differences."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import numeric
from ..calculus.jacobian import gradient
from ..core.evaluate import evaluate
from ..core.expr import Expr
from .tracing import trace


def check_grad(fun: Callable[[Any], Any], x: Any, *, method: str = "central",
               report: bool = False) -> float:
    """Largest relative error between hybridad's gradient of ``fun`` and finite differences.

    ``fun`` maps a 1-D array to a scalar and is written with hybridad functions or numpy
    ufuncs (it is traced once on symbols; the gradient is the reverse-accumulated DAG).
    The relative error of a component is ``|ad - fd| / max(1, |ad|)``. ``report=True``
    also prints a per-component table.

    >>> import numpy as np, hybridad as hd
    >>> f = lambda x: hd.log(x[0]) + x[0] * x[1] - hd.sin(x[1])
    >>> hd.check_grad(f, [2.0, 5.0]) < 1e-8
    True
    """
    point = np.asarray(x, dtype=np.float64)
    if point.ndim != 1:
        raise ValueError(f"check_grad: x must be a 1-D array, got shape {point.shape}")
    inputs, output = trace(fun, point.shape)
    if not isinstance(output, Expr):
        raise ValueError(f"check_grad: fun must return a scalar, got an array of shape "
                         f"{np.shape(output)}; check each output separately")
    env = dict(zip(inputs, point, strict=True))
    exact = np.array(evaluate(list(gradient(output, list(inputs))), env), dtype=np.float64)
    approx = numeric.gradient(lambda p: evaluate(output, dict(zip(inputs, p, strict=True))),
                              point, method=method)
    errors = np.abs(exact - approx) / np.maximum(1.0, np.abs(exact))
    if report:
        _print_report(exact, approx, errors, method)
    return float(errors.max()) if errors.size else 0.0


def _print_report(exact: np.ndarray, approx: np.ndarray, errors: np.ndarray,
                  method: str) -> None:
    print(f"{'i':>4} {'hybridad':>22} {'finite diff (' + method + ')':>24} {'rel error':>10}")
    for i, (a, f, e) in enumerate(zip(exact, approx, errors, strict=True)):
        print(f"{i:>4} {a:>22.15g} {f:>24.15g} {e:>10.2e}")
