"""What to_sympy exports works in SymPy's own tools: sympy.lambdify with every module
(a new user's `NameError: name 'sigmoid' is not defined`), sympy.diff and simplify."""

import math

import numpy as np
import pytest
import sympy

import hybridad as hd

x, y = hd.symbols("sl_x sl_y")
EXPRESSIONS = {
    "sigmoid": hd.sigmoid(x) * y,
    "relu": hd.relu(y - 1) + x,
    "stop_gradient": hd.stop_gradient(x * y) + hd.sin(x),
    "all three": hd.sigmoid(x) * hd.relu(y - 1) + hd.stop_gradient(x * y),
}
POINTS = [(0.3, 2.5), (-1.2, 0.5), (4.0, 1.0), (-40.0, -3.0)]
MODULES = [None, "numpy", "math", "mpmath", "sympy", "scipy"]


def _value(expr: hd.Expr, a: float, b: float) -> float:
    return float(hd.lambdify([x, y], expr)(np.array([a, b])))


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
@pytest.mark.parametrize("module", MODULES)
def test_sympy_lambdify_prints_hybridad_functions(name: str, module: str | None) -> None:
    if module == "scipy":
        pytest.importorskip("scipy")
    expr = EXPRESSIONS[name]
    exported = hd.to_sympy(expr)
    symbols = sorted(exported.free_symbols, key=str)
    f = sympy.lambdify(symbols, exported, modules=module) if module else \
        sympy.lambdify(symbols, exported)
    for a, b in POINTS:
        assert math.isclose(float(f(a, b)), _value(expr, a, b), rel_tol=1e-13, abs_tol=1e-300)


def test_numpy_lambdify_broadcasts_over_arrays() -> None:
    exported = hd.to_sympy(EXPRESSIONS["all three"])
    f = sympy.lambdify(sorted(exported.free_symbols, key=str), exported, "numpy")
    a, b = np.array([p[0] for p in POINTS]), np.array([p[1] for p in POINTS])
    want = [_value(EXPRESSIONS["all three"], p, q) for p, q in POINTS]
    assert np.allclose(f(a, b), want, rtol=1e-13)


def test_relu_keeps_nan_in_numpy_as_hybridad_does() -> None:
    exported = hd.to_sympy(hd.relu(x))
    f = sympy.lambdify(list(exported.free_symbols), exported, "numpy")
    assert np.isnan(f(np.array([np.nan, 1.0]))[0])


def test_sympy_diff_and_simplify_keep_working() -> None:
    exported = hd.to_sympy(EXPRESSIONS["all three"])
    symbols = sorted(exported.free_symbols, key=str)
    derivative = sympy.diff(exported, symbols[0])
    assert "stop_gradient" not in str(derivative)        # its derivative is zero
    g = sympy.lambdify(symbols, derivative, "numpy")
    grad = hd.lambdify([x, y], EXPRESSIONS["all three"], derivatives="gradient")
    for a, b in POINTS:
        assert math.isclose(float(g(a, b)), float(grad(np.array([a, b]))[1][0]),
                            rel_tol=1e-12, abs_tol=1e-300)
    assert sympy.simplify(exported - exported) == 0
    assert "fmax" in sympy.ccode(exported) and "exp" in sympy.ccode(exported)
