"""The power rule at a zero base (and a zero exponent), the same in every mode.

d/dy 0**y is 0 for y > 0 (0**y is 0 there), 0 at y = 0 (as JAX, autograd and PyTorch)
and 0 for y < 0 (0**y is inf for every y < 0: a constant; JAX gives nan, PyTorch -inf;
0 keeps a constant zero base, whose partial folds to 0, and a symbolic one that is 0
at run time in agreement). The product rule's x**y · log x used to give
0 · (-inf) = nan for y > 0. d/dx x**0 is 0 everywhere, x = 0 included.
"""

import numpy as np
import pytest

import hybridad as hd
from hybridad.func import grad

x, y = hd.symbols("x y")
F = x ** y
# (x, y) -> (d/dx, d/dy)
PINNED = {
    (0.0, 0.5): (np.inf, 0.0),
    (0.0, 0.0): (0.0, 0.0),
    (0.0, -0.5): (-np.inf, 0.0),
    (0.0, 2.0): (0.0, 0.0),
    (-0.0, 1.5): (0.0, 0.0),
    (2.0, 0.0): (0.0, np.log(2.0)),
    (2.0, 1.5): (1.5 * 2.0 ** 0.5, 2.0 ** 1.5 * np.log(2.0)),
}


def _modes():
    """Each mode as a function (x, y) -> gradient [d/dx, d/dy]."""
    symbolic = hd.gradient(F, [x, y])
    tape = hd.Tape([F], [x, y])
    kernel = hd.lambdify([x, y], F, derivatives="gradient")
    numpy_kernel = hd.lambdify([x, y], F, derivatives="gradient", backend="numpy")
    return {
        "symbolic": lambda a, b: [float(g.evaluate({x: a, y: b})) for g in symbolic],
        "forward tape": lambda a, b: [hd.Tape([F], [x, y]).jvp([a, b], [1.0, 0.0])[0],
                                      hd.Tape([a ** y], [y]).jvp([b], [1.0])[0]],
        "reverse tape": lambda a, b: tape.jacobian([a, b], mode="reverse")[0],
        "llvm kernel": lambda a, b: kernel([a, b])[1],
        "numpy kernel": lambda a, b: numpy_kernel([a, b])[1],
        "func.grad": lambda a, b: grad(lambda p: p[0] ** p[1])(np.array([a, b])),
        "func.grad tape": lambda a, b: grad(lambda p: p[0] ** p[1], backend="tape")(
            np.array([a, b])),
    }


@pytest.mark.parametrize("mode", list(_modes()))
def test_power_rule_pinned_values_in_every_mode(mode):
    gradient = _modes()[mode]
    with np.errstate(all="ignore"):
        for (a, b), expected in PINNED.items():
            np.testing.assert_allclose(gradient(a, b), expected, rtol=1e-15,
                                       err_msg=f"at x={a}, y={b}")


def test_dense_forward_jacobian_meets_inf_times_zero_as_jax_jacfwd_does():
    """At x = 0, y = 1/2 the x-partial is inf; a forward sweep seeded with (0, 1) carries a
    zero x-tangent that is a number, not a structural zero, so inf * 0 = nan reaches the
    y column (JAX's jacfwd does the same). Reverse sweeps and kernels, which take each
    partial on its own, give 0."""
    tape = hd.Tape([F], [x, y])
    with np.errstate(all="ignore"):
        forward = tape.jacobian([0.0, 0.5], mode="forward")[0]
        reverse = tape.jacobian([0.0, 0.5], mode="reverse")[0]
    np.testing.assert_array_equal(forward, [np.inf, np.nan])
    np.testing.assert_array_equal(reverse, [np.inf, 0.0])


def test_issue_reproduction_zero_base():
    assert grad(lambda t: 0.0 ** t)(0.5) == 0.0                     # was nan
    assert float(hd.diff(0.0 ** y, y).evaluate({y: 0.5})) == 0.0    # was nan
    for exponent in (0.5, 0.0, -0.5):                               # constant zero base
        assert grad(lambda t: 0.0 ** t)(exponent) == 0.0
        assert hd.diff(0.0 ** y, y) is hd.core.build.ZERO


def test_second_derivative_in_the_exponent_at_a_zero_base_is_finite():
    hessian = hd.hessian(F, [x, y])
    values = np.array(hd.evaluate(list(hessian.ravel()), {x: 0.0, y: 2.5}), dtype=float)
    assert values[3] == 0.0 and np.isfinite(values).all()


def test_constant_base_or_exponent_folds_to_the_plain_rule():
    assert hd.diff(2.0 ** y, y) is np.log(2.0) * 2.0 ** y
    assert hd.diff(x ** 3.0, x) is 3.0 * x ** 2.0
