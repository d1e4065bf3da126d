"""Numerical derivatives: finite differences, complex step and Richardson extrapolation.

Every method here estimates a derivative from values of ``fun`` at points a step ``h`` away
from ``x``, and so has two sources of error that pull the step in opposite directions:

* **truncation error** -- the Taylor terms the formula throws away. It shrinks like a power
  of ``h``: ``h |f''| / 2`` for the forward difference, ``h**2 |f'''| / 6`` for the central
  difference and for the complex step.
* **rounding error** -- ``f(x + h)`` and ``f(x)`` are each known only to about ``eps |f|``
  (``eps`` = 2.2e-16 in float64). Subtracting two nearly equal values and dividing by ``h``
  magnifies that to roughly ``eps |f| / h``, which *grows* as ``h`` shrinks.

Minimising the sum over ``h`` gives the optimal step. Assuming ``f`` and its derivatives are
of comparable size (so only the scale of ``x`` matters), the default steps are

==============  ==============================================  ==========================
method          error model (truncation + rounding)             default step ``h``
==============  ==============================================  ==========================
``forward``     ``h |f''| / 2  +  2 eps |f| / h``               ``sqrt(eps) * max(1, |x|)``
``central``     ``h**2 |f'''| / 6  +  eps |f| / h``             ``cbrt(3 eps) * max(1, |x|)``
``complex``     ``h**2 |f'''| / 6`` (no subtraction, so no      ``1e-20 * max(1, |x|)``
                rounding term)
``richardson``  extrapolation removes truncation terms, so      ``0.1 * max(1, |x|)``
                start large where rounding is negligible
==============  ==============================================  ==========================

The forward difference then reaches about ``sqrt(eps)`` ~ 1e-8 relative accuracy, the central
difference about ``eps**(2/3)`` ~ 1e-11 (in practice 1e-10 to 1e-9), the complex step full
machine precision and Richardson extrapolation about 1e-12 to 1e-13. (For the forward
difference the exact minimiser is ``2 sqrt(eps |f / f''|)``; the factor 2 is dropped.) For
gradients and Jacobians the step is chosen per component, scaled by ``max(1, |x_i|)``.

The scaling ``max(1, |x|)`` assumes ``f`` varies on the scale of ``max(1, |x|)``; for functions
with finer structure (say ``log(x)`` at ``x = 1e-4``) pass an explicit ``step``. Richardson's
large initial step must also stay inside the domain of ``fun``. The complex step needs ``fun``
to accept complex input, and loses accuracy only if ``|f'(x)| * h`` underflows, i.e. for
``|f'(x)|`` below about 1e-288.

``fun`` is always called with one point at a time: a 1-D array of shape ``(n,)`` for
:func:`gradient` and :func:`jacobian`, a scalar for :func:`derivative`. It never receives a
batch of points.

Example
-------
>>> import numpy as np
>>> def f(x):
...     return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])
>>> [round(float(g), 8) for g in gradient(f, [2.0, 5.0])]
[5.5, 1.71633781]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["METHODS", "derivative", "gradient", "jacobian"]

METHODS = ("forward", "central", "complex", "richardson")

_EPS = float(np.finfo(np.float64).eps)

# Relative step sizes (multiplied by max(1, |x_i|)); see the module docstring for the derivation.
_STEP_FACTORS = {
    "forward": float(np.sqrt(_EPS)),  # ~1.5e-8
    "central": float(np.cbrt(3.0 * _EPS)),  # ~8.7e-6
    # Any tiny step works because nothing is subtracted; 1e-20 makes the h**2 truncation term
    # ~1e-40 (far below eps) while staying well clear of float64 underflow.
    "complex": 1e-20,
    # Ridders' tableau shrinks the step by _RIDDERS_SHRINK per row, so it must start where
    # truncation error dominates and the rounding error eps|f|/h (~1e-15 here) is negligible;
    # extrapolation then removes the truncation terms. 0.1 is large enough for that and small
    # enough for the Taylor expansion of ordinary smooth functions to be accurate.
    "richardson": 0.1,
}

_RIDDERS_SHRINK = 1.4  # step ratio between consecutive rows of the tableau
_RIDDERS_MAX_ROWS = 10  # smallest step tried is h0 / 1.4**9 ~ h0 / 21
_RIDDERS_SAFE = 2.0  # stop once the newest diagonal moved by more than this times the best error

Function = Callable[[Any], ArrayLike]


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def derivative(
    fun: Function, x: float, method: str = "central", step: float | None = None
) -> float | NDArray[np.float64]:
    """Derivative of a function of one real variable.

    Parameters
    ----------
    fun : callable
        ``fun(t)`` for a scalar ``t``; returns a scalar or an array. For ``method="complex"``
        it must accept complex ``t`` (use ``numpy`` functions, not ``math``).
    x : float
        Point at which to differentiate. Must be a finite real scalar.
    method : {"forward", "central", "complex", "richardson"}
        Difference scheme; see the module docstring for accuracy.
    step : float, optional
        Positive, finite step. Default: the method's error-optimal step (module docstring).

    Returns
    -------
    float or ndarray
        ``f'(x)``; a float for scalar ``fun``, else an array with the shape of ``fun``'s output.

    Examples
    --------
    >>> import numpy as np
    >>> d = derivative(np.sin, 0.5, method="complex")
    >>> abs(d - float(np.cos(0.5))) <= 1e-16
    True
    >>> def f(t):  # the example function restricted to x2 = 5, x1 = t
    ...     return np.log(t) + t * 5.0 - np.sin(5.0)
    >>> round(derivative(f, 2.0), 8)
    5.5
    """
    _check_method(method)
    if np.ndim(x) != 0:
        raise ValueError(
            f"derivative() needs a scalar x; got shape {np.shape(x)}; use gradient() or jacobian()"
        )
    point = _to_real_array(x, "derivative").reshape(1)
    evaluate = _Evaluator(lambda v: fun(v[0]), "derivative", method == "complex")
    (slope,) = _partials(evaluate, point, method, step)
    return slope.item() if slope.ndim == 0 else slope


def gradient(
    fun: Function, x: ArrayLike, method: str = "central", step: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Gradient of a scalar function of ``n`` variables.

    Parameters
    ----------
    fun : callable
        ``fun(v)`` for a 1-D array ``v`` of shape ``(n,)``; must return a scalar.
    x : array_like, shape (n,)
        Finite real point (lists and integer arrays are converted to float64).
    method : {"forward", "central", "complex", "richardson"}
        Difference scheme; see the module docstring for accuracy.
    step : float or array_like of shape (n,), optional
        Positive, finite step(s), one per component if an array. Default: the method's
        error-optimal step, scaled per component by ``max(1, |x_i|)``.

    Returns
    -------
    ndarray, shape (n,)
        ``[df/dx_1, ..., df/dx_n]`` at ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> def f(x):
    ...     return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])
    >>> g = gradient(f, [2.0, 5.0])
    >>> [round(float(v), 8) for v in g]  # exactly (1/2 + 5, 2 - cos 5)
    [5.5, 1.71633781]
    >>> bool(np.allclose(gradient(f, [2, 5], method="complex"), [5.5, 2 - np.cos(5)], 0, 1e-15))
    True
    """
    _check_method(method)
    point = _to_vector(x, "gradient")
    evaluate = _Evaluator(fun, "gradient", method == "complex")
    return np.array(_partials(evaluate, point, method, step))


def jacobian(
    fun: Function, x: ArrayLike, method: str = "central", step: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Jacobian matrix of a function from R^n to R^m.

    Parameters
    ----------
    fun : callable
        ``fun(v)`` for a 1-D array ``v`` of shape ``(n,)``; returns a 1-D array of shape
        ``(m,)`` or a scalar (treated as ``m = 1``).
    x : array_like, shape (n,)
        Finite real point (lists and integer arrays are converted to float64).
    method : {"forward", "central", "complex", "richardson"}
        Difference scheme; see the module docstring for accuracy.
    step : float or array_like of shape (n,), optional
        Positive, finite step(s), one per component if an array. Default: the method's
        error-optimal step, scaled per component by ``max(1, |x_i|)``.

    Returns
    -------
    ndarray, shape (m, n)
        ``J[i, j] = dfun_i / dx_j``. A scalar-valued ``fun`` gives shape ``(1, n)`` (a single
        row), so the result is always 2-D; use :func:`gradient` for a flat ``(n,)`` array.

    Examples
    --------
    >>> import numpy as np
    >>> def f(x):
    ...     return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])
    >>> J = jacobian(f, [2.0, 5.0], method="richardson")
    >>> J.shape
    (1, 2)
    >>> [round(float(v), 10) for v in J[0]]
    [5.5, 1.7163378145]
    """
    _check_method(method)
    point = _to_vector(x, "jacobian")
    evaluate = _Evaluator(fun, "jacobian", method == "complex")
    columns = [np.reshape(p, -1) for p in _partials(evaluate, point, method, step)]
    return np.stack(columns, axis=1)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _check_method(method: object) -> None:
    if not isinstance(method, str) or method not in METHODS:
        valid = ", ".join(repr(m) for m in METHODS)
        raise ValueError(f"unknown method {method!r}; valid methods are {valid}")


def _to_real_array(x: ArrayLike, caller: str) -> NDArray[np.float64]:
    """Convert ``x`` to a finite float64 array, rejecting complex and non-numeric input."""
    arr = np.asarray(x)
    if np.iscomplexobj(arr):
        raise ValueError(f"{caller}() needs a real x; got complex value(s) {x!r}")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{caller}() needs a numeric x; got {x!r}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{caller}() needs a finite x; got {x!r}")
    return arr


def _to_vector(x: ArrayLike, caller: str) -> NDArray[np.float64]:
    arr = _to_real_array(x, caller)
    if arr.ndim != 1:
        raise ValueError(f"{caller}() needs a 1-D x of shape (n,); got x with shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{caller}() needs at least one variable; got an empty x")
    return arr


def _steps(x: NDArray[np.float64], method: str, step: ArrayLike | None) -> NDArray[np.float64]:
    """Per-component steps: the default error model, or the user's validated ``step``."""
    if step is None:
        return _STEP_FACTORS[method] * np.maximum(1.0, np.abs(x))
    bad = f"step must be positive and finite (a number or one per component); got {step!r}"
    try:
        h = np.asarray(step, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(bad) from exc
    if h.shape not in ((), x.shape):
        raise ValueError(f"step must be a scalar or have shape {x.shape}; got shape {h.shape}")
    if not np.all(np.isfinite(h) & (h > 0)):
        raise ValueError(bad)
    return np.broadcast_to(h, x.shape).copy()


class _Evaluator:
    """Call ``fun`` at one point and check that its output has a usable, consistent shape."""

    def __init__(self, fun: Function, caller: str, complex_step: bool) -> None:
        self.fun = fun
        self.caller = caller
        self.complex_step = complex_step
        self.shape: tuple[int, ...] | None = None

    def __call__(self, point: NDArray[Any]) -> NDArray[Any]:
        try:
            out = np.asarray(self.fun(point))
        except TypeError as exc:
            if not self.complex_step:
                raise
            raise TypeError(
                "method='complex' calls fun with complex input, which it rejected; "
                "write fun with numpy functions or use another method"
            ) from exc
        if self.shape is None:
            self._check_first(out)
        elif out.shape != self.shape:
            raise ValueError(f"fun returned shape {out.shape} after returning {self.shape}")
        return out

    def _check_first(self, out: NDArray[Any]) -> None:
        if self.caller == "gradient" and out.ndim != 0:
            raise ValueError(
                f"gradient() needs a scalar-valued function; got output shape {out.shape}; "
                "use jacobian()"
            )
        if self.caller == "jacobian" and out.ndim > 1:
            raise ValueError(
                f"jacobian() needs fun to return a scalar or a 1-D array; got shape {out.shape}"
            )
        if self.complex_step and not np.iscomplexobj(out):
            raise TypeError(
                "method='complex' needs fun to propagate complex input, but it returned a real "
                f"{out.dtype} value (the imaginary part was dropped); use another method"
            )
        self.shape = out.shape


# ---------------------------------------------------------------------------------------------
# Difference formulas (one partial derivative, along component i)
# ---------------------------------------------------------------------------------------------


def _partials(
    evaluate: _Evaluator, x: NDArray[np.float64], method: str, step: ArrayLike | None
) -> list[NDArray[Any]]:
    """Partial derivatives of ``fun`` at ``x``, one output-shaped array per component of x."""
    h = _steps(x, method, step)
    if method == "forward":
        f0 = evaluate(x)  # shared by every component
        return [_forward(evaluate, x, i, h[i], f0) for i in range(x.size)]
    if method == "central":
        return [_central(evaluate, x, i, h[i]) for i in range(x.size)]
    if method == "complex":
        z = x.astype(np.complex128)
        return [_complex_step(evaluate, z, i, h[i]) for i in range(x.size)]
    return [_richardson(evaluate, x, i, h[i]) for i in range(x.size)]


def _shifted(x: NDArray[Any], i: int, delta: complex) -> NDArray[Any]:
    """A fresh copy of ``x`` with ``delta`` added to component ``i``."""
    point = x.copy()
    point[i] += delta
    return point


def _representable(xi: float, h: float) -> float:
    """Adjust ``h`` so that ``xi + h`` is exactly a float64 and ``(xi + h) - xi == h``."""
    # xi + h is rounded to the float grid, so fun is actually evaluated a slightly different
    # distance away than h. Dividing by the nominal h would add a relative error of up to
    # ulp(xi)/h (~1e-8 for the forward step). Recomputing h as (xi + h) - xi makes the divisor
    # the true displacement. When h <= |xi| that subtraction is exact (Sterbenz) and h becomes a
    # multiple of ulp(xi), so the central difference's xi - h is exact too: the two evaluation
    # points are then exactly symmetric about xi.
    exact = (xi + h) - xi
    if exact == 0.0:
        raise ValueError(f"step {h!r} is too small to change x = {xi!r} in float64 arithmetic")
    return exact


def _forward(
    evaluate: _Evaluator, x: NDArray[np.float64], i: int, h: float, f0: NDArray[Any]
) -> NDArray[Any]:
    h = _representable(x[i], h)
    return (evaluate(_shifted(x, i, h)) - f0) / h


def _central(evaluate: _Evaluator, x: NDArray[np.float64], i: int, h: float) -> NDArray[Any]:
    h = _representable(x[i], h)
    return (evaluate(_shifted(x, i, h)) - evaluate(_shifted(x, i, -h))) / (2.0 * h)


def _complex_step(
    evaluate: _Evaluator, z: NDArray[np.complex128], i: int, h: float
) -> NDArray[Any]:
    # f(x + ih) = f(x) + ih f'(x) - h^2 f''(x)/2 - ih^3 f'''(x)/6 + ..., so Im f(x + ih) / h
    # is f'(x) up to h^2 f'''/6, with no subtraction of nearly equal numbers.
    return np.imag(evaluate(_shifted(z, i, 1j * h))) / h


def _richardson(evaluate: _Evaluator, x: NDArray[np.float64], i: int, h: float) -> NDArray[Any]:
    """Ridders' method: extrapolate central differences to h -> 0 in a Neville tableau.

    Row ``k`` holds the central difference with step ``h / 1.4**k`` followed by successively
    extrapolated values; level ``j`` cancels the ``h**(2j)`` error term by combining the entry
    to its left with the one above-left. Each new entry's error is estimated from how far it
    moved from those two neighbours, and the entry with the smallest estimate is returned. The
    loop stops early once the newest (highest order) value drifts by more than twice that best
    error: by then rounding noise, not truncation, dominates.
    """
    ratio = _RIDDERS_SHRINK**2  # central differences have an error expansion in h**2
    above = [_central(evaluate, x, i, h)]
    best, best_err = above[0], np.inf
    for _ in range(1, _RIDDERS_MAX_ROWS):
        h /= _RIDDERS_SHRINK
        row = [_central(evaluate, x, i, h)]
        factor = ratio
        for j in range(1, len(above) + 1):
            row.append((factor * row[j - 1] - above[j - 1]) / (factor - 1.0))
            factor *= ratio
            err = max(_magnitude(row[j] - row[j - 1]), _magnitude(row[j] - above[j - 1]))
            if err <= best_err:
                best, best_err = row[j], err
        if _magnitude(row[-1] - above[-1]) >= _RIDDERS_SAFE * best_err:
            break
        above = row
    return best


def _magnitude(v: NDArray[Any]) -> float:
    """Largest absolute entry (0 for an empty array); used as a scalar error estimate."""
    return float(np.max(np.abs(v), initial=0.0))
