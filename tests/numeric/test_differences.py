"""Tests for hybridad.numeric: finite differences, complex step and Richardson extrapolation."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridad import numeric

EPS = np.finfo(float).eps

# Relative accuracy each method is expected to reach on smooth, well-scaled functions.
TOLERANCE = {"forward": 1e-6, "central": 1e-9, "complex": 1e-14, "richardson": 1e-11}


def textbook(x):
    """f(x1, x2) = log(x1) + x1*x2 - sin(x2); gradient at (2, 5) is (1/2 + 5, 2 - cos 5)."""
    return np.log(x[0]) + x[0] * x[1] - np.sin(x[1])


TEXTBOOK_GRADIENT = np.array([5.5, 2.0 - math.cos(5.0)])


def rel_err(approx, exact):
    approx, exact = np.asarray(approx), np.asarray(exact)
    return float(np.max(np.abs(approx - exact) / np.maximum(np.abs(exact), 1e-300)))


# ---------------------------------------------------------------------------------------------
# Accuracy
# ---------------------------------------------------------------------------------------------


def test_methods_constant():
    assert numeric.METHODS == ("forward", "central", "complex", "richardson")


@pytest.mark.parametrize("method", numeric.METHODS)
def test_textbook_gradient(method):
    g = numeric.gradient(textbook, [2.0, 5.0], method=method)
    assert g.shape == (2,)
    assert g.dtype == np.float64
    assert TEXTBOOK_GRADIENT[1] == pytest.approx(1.7163378145367738, rel=1e-15)
    assert rel_err(g, TEXTBOOK_GRADIENT) < TOLERANCE[method]


def test_textbook_gradient_accuracy_ordering():
    """The methods are ordered by accuracy: forward < central < richardson <= complex."""
    err = {m: rel_err(numeric.gradient(textbook, [2, 5], method=m), TEXTBOOK_GRADIENT)
           for m in numeric.METHODS}
    assert err["forward"] > 1e-10  # forward really is only ~sqrt(eps) accurate
    assert err["central"] < err["forward"]
    assert err["richardson"] < err["central"]
    assert err["complex"] <= 2 * EPS


POINTS = [-3.0, -1.2, -0.3, 0.0, 0.4, 1.0, 2.5, 3.0]


@pytest.mark.parametrize("method", numeric.METHODS)
@pytest.mark.parametrize("x", POINTS)
def test_derivative_of_sin_is_cos(method, x):
    d = numeric.derivative(np.sin, x, method=method)
    assert isinstance(d, float)
    # absolute error: cos has zeros, and the error of every method scales with |sin|, not |cos|
    assert abs(d - math.cos(x)) < TOLERANCE[method]


@pytest.mark.parametrize("method", numeric.METHODS)
@pytest.mark.parametrize("x", POINTS)
def test_derivative_of_exp_is_exp(method, x):
    d = numeric.derivative(np.exp, x, method=method)
    assert rel_err(d, math.exp(x)) < TOLERANCE[method]


def test_richardson_on_a_harder_function():
    def f(t):
        return np.exp(t) * np.sin(3 * t) / (1 + t**2)

    def df(t):
        return (np.exp(t) * (np.sin(3 * t) + 3 * np.cos(3 * t)) / (1 + t**2)
                - np.exp(t) * np.sin(3 * t) * 2 * t / (1 + t**2) ** 2)

    for x in (-1.5, 0.2, 0.7, 2.0):
        assert rel_err(numeric.derivative(f, x, method="richardson"), df(x)) < 1e-11
        # ... and it beats the plain central difference it extrapolates
        central_err = rel_err(numeric.derivative(f, x), df(x))
        assert rel_err(numeric.derivative(f, x, method="richardson"), df(x)) < central_err


@pytest.mark.parametrize(
    "fun, x, exact",
    [
        # cos'(pi) = -sin(pi) = -1.2246e-16 in floating point: a tiny derivative of an O(1) value
        (np.cos, math.pi, -math.sin(math.pi)),
        # t**3 at 1e-9: derivative 3e-18
        (lambda t: t**3, 1e-9, 3e-18),
        # derivative ~5e-131
        (np.exp, -300.0, math.exp(-300.0)),
    ],
)
def test_complex_step_exact_for_tiny_derivatives(fun, x, exact):
    d = numeric.derivative(fun, x, method="complex")
    assert rel_err(d, exact) < 2e-15
    # subtractive cancellation ruins the central difference on the first two cases
    if abs(fun(x)) > 1e-100 or abs(x) < 1:
        assert rel_err(numeric.derivative(fun, x, method="central"), exact) > 1e-3


@pytest.mark.parametrize("method", numeric.METHODS)
def test_jacobian_r3_to_r2(method):
    def f(x):
        return np.array([x[0] * x[1] * np.sin(x[2]), np.exp(x[0]) + x[1] ** 2 * x[2]])

    def jac(x):
        return np.array([
            [x[1] * np.sin(x[2]), x[0] * np.sin(x[2]), x[0] * x[1] * np.cos(x[2])],
            [np.exp(x[0]), 2 * x[1] * x[2], x[1] ** 2],
        ])

    x = np.array([0.7, -1.3, 2.1])
    J = numeric.jacobian(f, x, method=method)
    assert J.shape == (2, 3)
    exact = jac(x)
    assert np.max(np.abs(J - exact)) < TOLERANCE[method] * np.max(np.abs(exact))


def test_jacobian_of_scalar_function_is_one_row():
    J = numeric.jacobian(textbook, [2.0, 5.0])
    assert J.shape == (1, 2)
    assert rel_err(J[0], TEXTBOOK_GRADIENT) < 1e-9
    np.testing.assert_allclose(J[0], numeric.gradient(textbook, [2.0, 5.0]), rtol=0, atol=0)


@pytest.mark.parametrize("method", numeric.METHODS)
def test_derivative_of_vector_valued_function(method):
    d = numeric.derivative(lambda t: np.array([np.sin(t), t**2, np.exp(2 * t)]), 0.8,
                           method=method)
    assert isinstance(d, np.ndarray)
    assert d.shape == (3,)
    assert rel_err(d, [math.cos(0.8), 1.6, 2 * math.exp(1.6)]) < TOLERANCE[method]


@pytest.mark.parametrize("method", numeric.METHODS)
def test_steps_scale_per_component(method):
    """Steps scale with max(1, |x_i|), so components of very different size all work."""
    def f(x):
        return np.sqrt(x[0]) + np.log(x[1]) + np.sin(x[2] / 1e3) + x[3] ** 3

    x = np.array([1e6, 2.0, -2e3, 0.25])
    exact = np.array([0.5 / np.sqrt(1e6), 0.5, np.cos(-2.0) / 1e3, 3 * 0.25**2])
    assert rel_err(numeric.gradient(f, x, method=method), exact) < 10 * TOLERANCE[method]


# ---------------------------------------------------------------------------------------------
# Step size: the error model matters
# ---------------------------------------------------------------------------------------------


def test_default_step_beats_a_tiny_forward_step():
    default_err = abs(numeric.derivative(np.sin, 1.0, method="forward") - math.cos(1.0))
    tiny_err = abs(numeric.derivative(np.sin, 1.0, method="forward", step=1e-14) - math.cos(1.0))
    assert default_err < 1e-7
    assert tiny_err > 1e-4  # rounding error eps|f|/h ~ 1e-2 dominates
    assert tiny_err > 1000 * default_err


def test_default_step_beats_a_large_central_step():
    default_err = abs(numeric.derivative(np.exp, 1.0) - math.e)
    big_err = abs(numeric.derivative(np.exp, 1.0, step=1e-2) - math.e)
    assert big_err == pytest.approx(math.e * 1e-4 / 6, rel=1e-3)  # truncation h^2 f'''/6
    assert big_err > 1000 * default_err


@pytest.mark.parametrize("method", ["forward", "central"])
@pytest.mark.parametrize(
    "fun, dfun, x",
    [(np.exp, np.exp, 1.0), (np.sin, np.cos, 0.6), (np.log, lambda t: 1 / t, 3.0),
     (np.sqrt, lambda t: 0.5 / np.sqrt(t), 40.0)],
)
def test_default_step_is_a_minimum_of_the_error(method, fun, dfun, x):
    """1000x larger steps lose to truncation, 1000x smaller ones to rounding.

    Rounding errors are erratic (occasionally exactly zero), so errors are averaged over a few
    points near x.
    """
    points = x * (1 + 0.01 * np.arange(8))
    factor = {"forward": np.sqrt(EPS), "central": np.cbrt(3 * EPS)}[method]

    def mean_err(scale):
        errs = [abs(numeric.derivative(fun, t, method=method,
                                       step=None if scale is None else scale * factor * max(1, t))
                    - dfun(t)) for t in points]
        return float(np.mean(errs))

    assert mean_err(None) == mean_err(1.0)  # the documented default formula
    assert mean_err(1000.0) > 10 * mean_err(None)
    assert mean_err(1e-3) > 10 * mean_err(None)


def test_user_step_scalar_and_per_component():
    g1 = numeric.gradient(textbook, [2.0, 5.0], step=1e-5)
    g2 = numeric.gradient(textbook, [2.0, 5.0], step=[1e-5, 2e-5])
    assert rel_err(g1, TEXTBOOK_GRADIENT) < 1e-8
    assert rel_err(g2, TEXTBOOK_GRADIENT) < 1e-8
    assert g1[0] == g2[0]  # same step on component 0, same result
    assert g1[1] != g2[1]  # different step on component 1
    # a forward step of 1e-3 gives a truncation error h|f''|/2 that we can predict
    gf = numeric.gradient(textbook, [2.0, 5.0], method="forward", step=[1e-3, 1e-3])
    assert gf[0] - 5.5 == pytest.approx(-1e-3 / 8, rel=2e-3)  # f_11 = -1/x1^2 = -1/4


def test_richardson_and_complex_accept_steps():
    assert rel_err(numeric.derivative(np.exp, 0.5, method="richardson", step=0.5),
                   math.exp(0.5)) < 1e-11
    assert rel_err(numeric.derivative(np.exp, 0.5, method="complex", step=1e-3),
                   math.exp(0.5)) < 1e-6  # truncation h^2/6 ~ 1.7e-7 with this coarse step


def test_central_points_are_exactly_symmetric():
    """(x + h) - x == h is enforced, so the two central points are symmetric about x."""
    seen = []

    def f(v):
        seen.append(float(v[0]))
        return v[0] ** 2

    x = 0.1
    numeric.gradient(f, [x], step=1e-7)  # 0.1 + 1e-7 is not exactly representable
    plus, minus = seen
    assert plus - x == x - minus
    assert plus - x != 1e-7


# ---------------------------------------------------------------------------------------------
# How fun is called
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, calls", [("forward", 4), ("central", 6), ("complex", 3)])
def test_fun_called_one_point_at_a_time(method, calls):
    seen = []

    def f(v):
        seen.append((v.shape, v.dtype))
        return np.sum(v**2)

    x = np.array([1, 2, 3])  # ints are accepted
    g = numeric.gradient(f, x, method=method)
    assert rel_err(g, [2.0, 4.0, 6.0]) < TOLERANCE[method]
    assert len(seen) == calls
    expected_dtype = np.complex128 if method == "complex" else np.float64
    assert all(s == ((3,), expected_dtype) for s in seen)
    assert x.tolist() == [1, 2, 3]  # input untouched


def test_x_array_not_mutated_by_fun_that_mutates():
    x = np.array([2.0, 5.0])

    def f(v):
        result = textbook(v)
        v[:] = 0.0  # a badly behaved fun must not corrupt later evaluation points
        return result

    assert rel_err(numeric.gradient(f, x), TEXTBOOK_GRADIENT) < 1e-9
    assert x.tolist() == [2.0, 5.0]


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("func", [numeric.derivative, numeric.gradient, numeric.jacobian])
def test_unknown_method(func):
    x = 1.0 if func is numeric.derivative else [1.0]
    with pytest.raises(ValueError, match=r"unknown method 'backward'.*'forward', 'central', "
                                         r"'complex', 'richardson'"):
        func(np.sum, x, method="backward")


@pytest.mark.parametrize("step", [0.0, -1e-6, np.nan, np.inf, "big", [1e-6, -1e-6], 1j])
def test_bad_step(step):
    expected = "step must be positive and finite.*got " + re.escape(repr(step))
    with pytest.raises(ValueError, match=expected):
        numeric.gradient(textbook, [2.0, 5.0], step=step)


def test_bad_step_shape():
    msg = r"step must be a scalar or have shape \(2,\); got shape \(3,\)"
    with pytest.raises(ValueError, match=msg):
        numeric.gradient(textbook, [2.0, 5.0], step=[1e-6] * 3)
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        numeric.derivative(np.sin, 1.0, step=[1e-6, 1e-6])


def test_step_too_small_for_x():
    with pytest.raises(ValueError, match="too small to change x"):
        numeric.derivative(np.sin, 1e10, step=1e-10)


@pytest.mark.parametrize("func", [numeric.gradient, numeric.jacobian])
def test_x_must_be_1d(func):
    with pytest.raises(ValueError, match=r"1-D x of shape \(n,\); got x with shape \(2, 2\)"):
        func(np.sum, np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"got x with shape \(\)"):
        func(np.sum, 3.0)
    with pytest.raises(ValueError, match="empty"):
        func(np.sum, [])


def test_derivative_needs_scalar_x():
    with pytest.raises(ValueError, match=r"scalar x; got shape \(2,\); use gradient"):
        numeric.derivative(np.sin, [1.0, 2.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(bad):
    with pytest.raises(ValueError, match="finite x"):
        numeric.gradient(textbook, [2.0, bad])
    with pytest.raises(ValueError, match="finite x"):
        numeric.derivative(np.sin, bad)


def test_complex_or_non_numeric_x():
    with pytest.raises(ValueError, match="real x"):
        numeric.gradient(textbook, [2.0 + 1j, 5.0])
    with pytest.raises(ValueError, match="numeric x"):
        numeric.gradient(textbook, ["a", "b"])


def test_gradient_of_vector_function():
    with pytest.raises(ValueError, match=r"gradient\(\) needs a scalar-valued function; "
                                         r"got output shape \(3,\); use jacobian\(\)"):
        numeric.gradient(lambda v: np.array([v[0], v[1], v[0] * v[1]]), [1.0, 2.0])


def test_jacobian_of_matrix_function():
    with pytest.raises(ValueError, match=r"scalar or a 1-D array; got shape \(2, 2\)"):
        numeric.jacobian(lambda v: np.outer(v, v), [1.0, 2.0])


def test_inconsistent_output_shape():
    def f(v):
        return np.zeros(2) if v[0] > 1 else np.zeros(3)

    with pytest.raises(ValueError, match=r"returned shape \(3,\) after returning \(2,\)"):
        numeric.jacobian(f, [1.0])


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_complex_method_needs_complex_aware_fun():
    with pytest.raises(TypeError, match="complex"):
        numeric.derivative(math.sin, 1.0, method="complex")
    with pytest.raises(TypeError, match="imaginary part was dropped"):
        numeric.derivative(lambda t: float(np.real(t)) ** 2, 1.0, method="complex")
    # math functions are fine for the real methods
    assert abs(numeric.derivative(math.sin, 1.0) - math.cos(1.0)) < 1e-9


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

# Values are 0 or at least 1e-100 in size: with tinier ones the complex step's Im f(x+ih)
# ~ f'(x) * 1e-20 underflows into subnormal numbers (a documented limitation).
coefficient = st.floats(-10, 10, allow_nan=False).filter(lambda c: c == 0 or abs(c) > 1e-100)
point = coefficient


@settings(max_examples=50, deadline=None)
@given(c0=coefficient, c1=coefficient, c2=coefficient, x=point)
def test_quadratics_are_differentiated_exactly(c0, c1, c2, x):
    """Degree <= 2 polynomials have no central truncation error: only rounding remains."""
    def p(t):
        return c0 + c1 * t + c2 * t * t

    exact = c1 + 2 * c2 * x
    scale = max(1.0, abs(x))
    size = abs(c0) + abs(c1) * scale + abs(c2) * scale**2  # magnitude of the rounded terms
    # rounding error is ~ eps * size / h with h = 8.7e-6 * scale, i.e. ~2.5e-11 * size / scale
    assert abs(numeric.derivative(p, x) - exact) <= 1e-8 * (1 + size / scale)
    assert abs(numeric.derivative(p, x, method="richardson") - exact) <= 1e-8 * (1 + size / scale)
    # complex step: no cancellation at all, so exact to a few ulps of the derivative's terms
    d = numeric.derivative(p, x, method="complex")
    assert abs(d - exact) <= 4 * EPS * (abs(c1) + abs(2 * c2 * x))
    # forward difference of a quadratic is c1 + c2 (2x + h): its error is the truncation term
    h = np.sqrt(EPS) * scale
    forward_err = numeric.derivative(p, x, method="forward") - exact
    assert abs(forward_err - c2 * h) <= 1e-7 * (1 + size / scale)


@settings(max_examples=50, deadline=None)
@given(
    a=st.lists(coefficient, min_size=9, max_size=9),
    b=st.lists(coefficient, min_size=3, max_size=3),
    x=st.lists(point, min_size=3, max_size=3),
)
def test_quadratic_form_gradient_and_jacobian(a, b, x):
    """f(x) = x^T A x / 2 + b^T x has gradient (A + A^T) x / 2 + b and that Jacobian row."""
    A, b, x = np.reshape(a, (3, 3)), np.array(b), np.array(x)

    def f(v):
        return 0.5 * v @ A @ v + b @ v

    exact = 0.5 * (A + A.T) @ x + b
    tol = 1e-7 * (1 + np.abs(A).sum() * max(1.0, np.max(np.abs(x))) + np.abs(b).sum())
    assert np.max(np.abs(numeric.gradient(f, x) - exact)) <= tol
    assert np.max(np.abs(numeric.gradient(f, x, method="complex") - exact)) <= 1e-12 * tol / 1e-7
    assert np.max(np.abs(numeric.jacobian(f, x, method="richardson")[0] - exact)) <= tol


@settings(max_examples=50, deadline=None)
@given(x=st.floats(-20, 20, allow_nan=False), method=st.sampled_from(numeric.METHODS))
def test_sin_property(x, method):
    assert abs(numeric.derivative(np.sin, x, method=method) - math.cos(x)) < (
        TOLERANCE[method] * max(1.0, abs(x)) ** 2
    )
