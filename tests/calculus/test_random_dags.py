"""Random DAGs (hypothesis): symbolic derivatives agree across accumulation orders, with
finite differences and with SymPy.

DAGs are built by drawing ops from the registry and operands from nodes already built,
so subexpressions are shared. Operands pass through domain-safe wrappers so every
expression is defined and smooth on the whole real line.
"""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from strategies import ALL_OPS, VARIABLES, dags

import hybridad as hd
from hybridad.numeric import gradient as fd_gradient

points = st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3)


def evaluate_all(exprs, point):
    env = dict(zip(VARIABLES, point, strict=True))
    return np.array([float(e.evaluate(env)) for e in exprs])


@given(dags(ops=tuple(ALL_OPS)), points)
def test_forward_and_reverse_symbolic_derivatives_agree(f, point):
    reverse = evaluate_all(hd.gradient(f, VARIABLES), point)
    forward = evaluate_all([hd.diff(f, v) for v in VARIABLES], point)
    np.testing.assert_allclose(forward, reverse, rtol=1e-12, atol=1e-12)


@given(dags(), points)
def test_symbolic_gradient_matches_finite_differences(f, point):
    exact = evaluate_all(hd.gradient(f, VARIABLES), point)
    approx = fd_gradient(lambda p: float(f.evaluate(dict(zip(VARIABLES, p)))),
                         np.array(point), method="central")
    scale = max(1.0, float(np.max(np.abs(exact))))
    np.testing.assert_allclose(exact, approx, rtol=1e-6, atol=1e-6 * scale)


@given(dags(max_steps=8), points)
def test_symbolic_gradient_matches_sympy(f, point):
    import sympy

    s = hd.to_sympy(f)
    symbols = [sympy.Symbol(v.name, real=True) for v in VARIABLES]
    subs = dict(zip(symbols, point, strict=True))
    expected = np.array([float(sympy.diff(s, v).evalf(subs=subs)) for v in symbols])
    exact = evaluate_all(hd.gradient(f, VARIABLES), point)
    scale = max(1.0, float(np.max(np.abs(exact))))
    np.testing.assert_allclose(exact, expected, rtol=1e-10, atol=1e-10 * scale)


@given(dags(), points)
def test_hessian_matches_finite_differences_of_gradient(f, point):
    hess = hd.hessian(f, VARIABLES)
    exact = np.array([evaluate_all(row, point) for row in hess])
    grad = hd.gradient(f, VARIABLES)
    approx = np.array([fd_gradient(lambda p, g=g: float(g.evaluate(dict(zip(VARIABLES, p)))),
                                   np.array(point)) for g in grad])
    scale = max(1.0, float(np.max(np.abs(exact))))
    np.testing.assert_allclose(exact, approx, rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_array_equal(exact, exact.T)
