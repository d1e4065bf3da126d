"""hd.custom_vjp / hd.custom_jvp (JAX's API) and hd.primitive: a user's rule or operation
is honoured by every mode, because every mode reads it from one registry entry."""

import numpy as np
import pytest

import hybridad as hd
from hybridad.func import grad, jacfwd

x = hd.symbols("cr_x")


@hd.custom_vjp
def scaled_sin(t):
    return hd.sin(t)


# a deliberately "wrong" rule (10 cos), so a test can tell it was used
scaled_sin.defvjp(lambda t: (hd.sin(t), hd.cos(t)), lambda cos_t, g: (10.0 * cos_t * g,))


@pytest.mark.parametrize("mode", ["gradient", "diff", "tape reverse", "tape forward",
                                  "llvm", "func", "func tape", "jacfwd"])
def test_custom_vjp_rule_is_used_by_every_mode(mode):
    f = scaled_sin(x) * 2.0
    want = 20.0 * np.cos(0.3)
    got = {
        "gradient": lambda: float(hd.gradient(f, [x])[0].evaluate({x: 0.3})),
        "diff": lambda: float(hd.diff(f, x).evaluate({x: 0.3})),
        "tape reverse": lambda: hd.Tape([f], [x]).jacobian([0.3], mode="reverse")[0, 0],
        "tape forward": lambda: hd.Tape([f], [x]).jacobian([0.3], mode="forward")[0, 0],
        "llvm": lambda: hd.lambdify([x], f, derivatives="gradient")([0.3])[1][0],
        "func": lambda: grad(lambda t: scaled_sin(t) * 2.0)(0.3),
        "func tape": lambda: grad(lambda t: scaled_sin(t) * 2.0, backend="tape")(0.3),
        "jacfwd": lambda: jacfwd(lambda t: scaled_sin(t) * 2.0)(0.3),
    }[mode]()
    assert got == pytest.approx(want, rel=1e-14)
    assert float(f.evaluate({x: 0.3})) == pytest.approx(2 * np.sin(0.3), rel=1e-15)


def test_custom_vjp_on_arrays_at_tensor_level():
    v = hd.tensor("cr_v", (3,))
    point = np.array([0.1, 0.2, 0.3])
    grad_v = hd.evaluate(hd.gradient(hd.sum(scaled_sin(v)), v), {v: point})
    np.testing.assert_allclose(grad_v, 10 * np.cos(point), rtol=1e-15)
    np.testing.assert_allclose(grad(lambda a: hd.sum(scaled_sin(a)))(point), 10 * np.cos(point),
                               rtol=1e-15)
    assert float(scaled_sin(0.3)) == np.sin(0.3)      # numbers: the function itself


@hd.custom_jvp
def log1pexp(t):
    return hd.log(1.0 + hd.exp(t))


log1pexp.defjvp(lambda p, t: (log1pexp(p[0]), (1.0 - 1.0 / (1.0 + hd.exp(p[0]))) * t[0]))


def test_custom_jvp_gives_a_stable_derivative_in_both_modes():
    """JAX's example: the derivative of log(1 + exp(x)) at x = 1000 is nan by the chain
    rule (inf * 0) and 1 with the hand-written rule; reverse mode transposes it."""
    plain = hd.diff(hd.log(1.0 + hd.exp(x)), x)
    with np.errstate(all="ignore"):
        assert np.isnan(float(plain.evaluate({x: 1000.0})))
        assert float(hd.diff(log1pexp(x), x).evaluate({x: 1000.0})) == 1.0
        assert float(hd.gradient(log1pexp(x), [x])[0].evaluate({x: 1000.0})) == 1.0
        assert grad(log1pexp)(1000.0) == 1.0
    assert grad(log1pexp)(0.0) == pytest.approx(0.5, rel=1e-15)


def test_custom_rule_errors_are_clear():
    @hd.custom_vjp
    def pair(t):
        return t, t

    with pytest.raises(hd.HybridadError, match="returns one value"):
        pair(x)
    with pytest.raises(hd.HybridadError, match="no SymPy form"):
        hd.to_sympy(scaled_sin(x))


softplus = hd.primitive("cr_softplus", lambda t: np.logaddexp(0.0, t),
                        partials=(lambda t, out: hd.sigmoid(t),))
softplus_fast = hd.primitive(
    "cr_softplus_llvm", lambda t: np.logaddexp(0.0, t),
    partials=(lambda t, out: hd.sigmoid(t),),
    llvm=lambda e, t: e.call("log1p", e.call("exp", t)))


def test_user_primitive_in_every_mode():
    f = softplus(x) * x
    at = 0.7
    exact = np.logaddexp(0.0, at) + at / (1 + np.exp(-at))
    assert float(hd.diff(f, x).evaluate({x: at})) == pytest.approx(exact, rel=1e-14)
    assert hd.Tape([f], [x]).gradient([at])[0] == pytest.approx(exact, rel=1e-14)
    assert hd.lambdify([x], f, derivatives="gradient", backend="numpy")([at])[1][0] == \
        pytest.approx(exact, rel=1e-14)
    assert grad(lambda t: softplus(t) * t, backend="tape")(at) == pytest.approx(exact)
    numeric = hd.numeric.derivative(lambda t: np.logaddexp(0.0, t) * t, at)
    assert float(hd.diff(f, x).evaluate({x: at})) == pytest.approx(numeric, rel=1e-8)
    assert hd.parse(str(f)) is f and str(softplus(x)) == "cr_softplus(cr_x)"
    v = hd.tensor("cr_pv", (3,))
    assert softplus(v).shape == (3,)                    # elementwise, broadcasting


def test_user_primitive_without_lowering_is_a_clear_error_in_kernels():
    with pytest.raises(hd.HybridadError, match="'cr_softplus' has no LLVM lowering"):
        hd.lambdify([x], softplus(x))
    kernel = hd.lambdify([x], softplus_fast(x), derivatives="gradient")
    value, slope = kernel([0.7])
    assert value == pytest.approx(np.logaddexp(0.0, 0.7), rel=1e-14)
    assert slope[0] == pytest.approx(1 / (1 + np.exp(-0.7)), rel=1e-14)


cumsum = hd.primitive(
    "cr_cumsum", lambda t: np.cumsum(t, axis=-1), shape=lambda shapes: shapes[0],
    jvp=(lambda t, node: cumsum(t),),
    transpose=(lambda g, node: cumsum(g[::-1])[::-1],))


def test_user_structural_primitive_jvp_and_transpose():
    v = hd.tensor("cr_cv", (4,))
    point, tangent, cotangent = np.array([1.0, 2, 3, 4]), np.array([0.5, -1, 2, 1]), \
        np.array([1.0, 0, -2, 3])
    e = cumsum(v) ** 2
    jv = hd.evaluate(hd.jvp(e, {v: tangent}), {v: point})
    h = 1e-6
    fd = (np.cumsum(point + h * tangent) ** 2 - np.cumsum(point - h * tangent) ** 2) / (2 * h)
    np.testing.assert_allclose(jv, fd, rtol=1e-8)
    g = hd.tensor("cr_cg", (4,))
    jtg = hd.evaluate(hd.vjp(e, v, g), {v: point, g: cotangent})
    assert float(cotangent @ jv) == pytest.approx(float(jtg @ tangent), rel=1e-13)
    with pytest.raises(ValueError, match="already registered"):
        hd.primitive("cr_cumsum", np.cumsum, partials=(None,))
