"""Symbolic calculus: the seeds' numbers, swell, structure and conventions."""

import math

import numpy as np
import pytest

import hybridad as hd
from hybridad.core.build import ZERO

x, y = hd.symbols("x y")
x1, x2 = hd.symbols("x1 x2")
POINT = {x1: 2.0, x2: 5.0}


def textbook():
    return hd.log(x1) + x1 * x2 - hd.sin(x2)


def logistic(n):
    value = x
    for _ in range(n - 1):
        value = 4 * value * (1 - value)
    return value


def values(exprs, env):
    return np.array([float(e.evaluate(env)) for e in np.ravel(exprs)]).reshape(np.shape(exprs))


# -- the seeds' example (002: forward and reverse traces) -------------------------------
def test_textbook_gradient():
    grad = values(hd.gradient(textbook(), [x1, x2]), POINT)
    np.testing.assert_allclose(grad, [5.5, 1.716], atol=5e-4)
    np.testing.assert_allclose(grad, [0.5 + 5.0, 2.0 - math.cos(5.0)], rtol=1e-15)


def test_textbook_diff_matches_gradient():
    assert float(hd.diff(textbook(), x1).evaluate(POINT)) == 5.5
    assert float(hd.diff(textbook(), x2).evaluate(POINT)) == pytest.approx(1.716, abs=5e-4)


# -- the seeds' logistic-map table (002: expression swell) ------------------------------
SEED_TABLE = {
    1: lambda t: np.ones_like(t),
    2: lambda t: 4 - 8 * t,
    3: lambda t: 16 * (1 - 10 * t + 24 * t ** 2 - 16 * t ** 3),
    4: lambda t: 64 * (1 - 42 * t + 504 * t ** 2 - 2640 * t ** 3 + 7040 * t ** 4
                       - 9984 * t ** 5 + 7168 * t ** 6 - 2048 * t ** 7),
}


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_logistic_derivative_equals_seed_simplified_form(n):
    points = np.linspace(-1.0, 1.5, 11)
    derivative = hd.diff(logistic(n), x)
    got = np.broadcast_to(derivative.evaluate({x: points}), points.shape)
    np.testing.assert_allclose(got, SEED_TABLE[n](points), rtol=1e-12, atol=1e-9)


def test_logistic_derivative_dag_grows_linearly():
    sizes = [hd.count_ops(hd.diff(logistic(n), x)) for n in range(2, 61)]
    steps = set(np.diff(sizes))
    assert steps == {7}  # the same handful of nodes per iteration, up to n = 60
    assert sizes[-1] == 7 * 60 - 10


def test_logistic_derivative_tree_grows_exponentially():
    trees = [hd.count_ops(hd.diff(logistic(n), x), tree=True) for n in range(10, 61)]
    ratios = np.array(trees[1:], dtype=float) / np.array(trees[:-1], dtype=float)
    assert np.all(ratios > 2.0)
    assert trees[-1] > 10 ** 18  # Python ints: counted over the DAG, never expanded


# -- structure ------------------------------------------------------------------------
def test_gradient_dag_is_linear_in_size_of_f_not_n_copies():
    xs = hd.symarray("x", 200)
    f = hd.sum(hd.sin(xs[:-1] * xs[1:]) + xs[1:] ** 2)
    grad = hd.gradient(f, xs)
    assert hd.count_ops(grad) <= 4 * hd.count_ops(f)


def test_structural_zeros_are_never_built():
    assert hd.diff(hd.sin(y), x) is ZERO
    grad = hd.gradient(x * x, [x, y])
    assert grad[1] is ZERO
    assert hd.diff(hd.sign(x) * y, x) is ZERO
    assert hd.diff(hd.stop_gradient(x) * y, x) is ZERO
    assert hd.diff(x + 2 * y, x).value == 1.0


def test_higher_order_and_mixed_derivatives():
    f = x ** 3 * y ** 2
    env = {x: 1.5, y: -0.5}
    assert float(hd.diff(f, x, 2).evaluate(env)) == pytest.approx(6 * 1.5 * 0.25)
    assert float(hd.diff(f, x, 3).evaluate(env)) == pytest.approx(6 * 0.25)
    assert float(hd.diff(f, x, y).evaluate(env)) == pytest.approx(3 * 2.25 * 2 * -0.5)
    assert hd.diff(f, x, 0) is hd.diff(f, x, 0) and hd.diff(x, x) is hd.diff(y, y)


def test_jacobian_shape_and_values():
    jac = hd.jacobian([x1 * x2, hd.sin(x1), x2 ** 2], [x1, x2])
    assert jac.shape == (3, 2)
    np.testing.assert_allclose(values(jac, POINT),
                               [[5.0, 2.0], [math.cos(2.0), 0.0], [0.0, 10.0]], rtol=1e-15)
    wide = hd.jacobian([x1 * x2], [x1, x2])
    np.testing.assert_allclose(values(wide, POINT), [[5.0, 2.0]])


def test_hessian_is_symmetric_and_correct():
    f = hd.exp(x * y) + x ** 3 * hd.sin(y)
    hess = hd.hessian(f, [x, y])
    assert hess[0, 1] is hess[1, 0]
    a, b = 0.7, -1.3
    e = math.exp(a * b)
    expected = [[b * b * e + 6 * a * math.sin(b), e + a * b * e + 3 * a * a * math.cos(b)],
                [e + a * b * e + 3 * a * a * math.cos(b), a * a * e - a ** 3 * math.sin(b)]]
    np.testing.assert_allclose(values(hess, {x: a, y: b}), expected, rtol=1e-13)


def test_diff_rejects_non_symbols():
    with pytest.raises(TypeError, match="Symbol"):
        hd.diff(x * y, x * y)
    with pytest.raises(TypeError, match="at least one variable"):
        hd.diff(x)


# -- conventions (DESIGN.md §3) --------------------------------------------------------
def test_abs_derivative_at_zero_is_zero():
    assert float(hd.diff(hd.abs(x), x).evaluate({x: 0.0})) == 0.0
    assert float(hd.diff(hd.abs(x), x).evaluate({x: -2.0})) == -1.0


def test_maximum_tie_splits_half():
    env = {x: 1.0, y: 1.0}
    assert float(hd.diff(hd.maximum(x, y), x).evaluate(env)) == 0.5
    assert float(hd.diff(hd.minimum(x, y), y).evaluate(env)) == 0.5
    assert float(hd.diff(hd.maximum(x, y), x).evaluate({x: 2.0, y: 1.0})) == 1.0
    assert float(hd.diff(hd.minimum(x, y), x).evaluate({x: 2.0, y: 1.0})) == 0.0


def test_where_passes_chosen_branch_only():
    f = hd.where(x > 0, x ** 2, 3 * x)
    assert float(hd.diff(f, x).evaluate({x: 2.0})) == 4.0
    assert float(hd.diff(f, x).evaluate({x: -2.0})) == 3.0


def test_relu_derivative_at_zero_is_zero():
    assert float(hd.diff(hd.relu(x), x).evaluate({x: 0.0})) == 0.0
    assert float(hd.diff(hd.relu(x), x).evaluate({x: 0.1})) == 1.0


# -- cse -------------------------------------------------------------------------------
def test_cse_contract():
    f = hd.sin(x + y) * (x + y) + hd.exp(hd.sin(x + y))
    replacements, reduced = hd.cse([f, hd.sin(x + y)])
    names = [s for s, _ in replacements]
    assert [s.name for s in names] == ["x0", "x1"]
    defined = {x, y}
    for symbol, rhs in replacements:  # topological: each uses only earlier names
        free = {n for n in _leaves(rhs) if n.is_symbol}
        assert free <= defined
        defined.add(symbol)
    env = {x: 0.3, y: 1.1}
    for s, rhs in replacements:
        env[s] = float(rhs.evaluate(env))
    assert float(reduced[0].evaluate(env)) == float(f.evaluate({x: 0.3, y: 1.1}))
    assert reduced[1] is names[1]


def test_cse_skips_names_in_use():
    a = hd.symbols("x0")
    replacements, _ = hd.cse(hd.sin(a) * hd.sin(a))
    assert replacements[0][0].name == "x1"


def _leaves(expr):
    from hybridad.core.traverse import topo_order

    return [n for n in topo_order([expr]) if not n.args]


def test_adjoint_contributions_subtract_negated_terms_instead_of_negating():
    """Reverse accumulation sums positive contributions first and subtracts negated
    ones: Rosenbrock's gradient negates only where every contribution is negated (x_0)."""
    xs = hd.symarray("x", 8)
    f = hd.sum(100.0 * (xs[1:] - xs[:-1] ** 2) ** 2 + (1.0 - xs[:-1]) ** 2)
    g = hd.gradient(f, list(xs))
    assert repr(g[5]) == "200*(x_5 - x_4**2) - 2*(1 - x_5) - 200*(x_6 - x_5**2)*(2*x_5)"
    from hybridad.core.traverse import topo_order
    negations = [n for n in topo_order(list(g)) if n.op == "neg"]
    assert negations == [g[0].args[0]] and repr(g[0].args[0]) == "-(2*(1 - x_0))"
    point = np.linspace(-1.2, 1.3, 8)
    expected = np.zeros(8)
    expected[:-1] += -400 * point[:-1] * (point[1:] - point[:-1] ** 2) - 2 * (1 - point[:-1])
    expected[1:] += 200 * (point[1:] - point[:-1] ** 2)
    env = dict(zip(xs, point))
    np.testing.assert_allclose([float(e.evaluate(env)) for e in g], expected, rtol=1e-13)
    x = hd.symbols("x")
    assert repr(hd.gradient(-hd.sin(x) - hd.exp(x), [x])[0]) in ("-exp(x) - cos(x)",
                                                                 "-cos(x) - exp(x)")


def test_forward_jacobian_visits_only_each_inputs_cone():
    """Forward columns differentiate over the nodes that depend on each input only;
    the result equals reverse mode entry by entry (the same DAG nodes)."""
    import importlib

    diff_module = importlib.import_module("hybridad.calculus.diff")

    rng = np.random.default_rng(0)
    x = hd.symarray("x", 40)
    outs = list(np.tanh(rng.normal(size=(3, 40)) @ x + 1.0)) + [hd.sin(x[0])]
    forward = hd.jacobian(outs, list(x), mode="forward")
    reverse = hd.jacobian(outs, list(x), mode="reverse")
    point = {s: v for s, v in zip(x, rng.normal(size=40))}
    values_f = np.array([[float(e.evaluate(point)) for e in row] for row in forward])
    values_r = np.array([[float(e.evaluate(point)) for e in row] for row in reverse])
    np.testing.assert_allclose(values_f, values_r, rtol=1e-13, atol=1e-15)
    assert all(forward[3, j].op == "const" for j in range(1, 40))   # d sin(x_0) / d x_j
    visited = []
    original = diff_module._forward_pass
    try:
        diff_module._forward_pass = lambda nodes, dot: visited.append(len(nodes)) or \
            original(nodes, dot)
        hd.jacobian(outs, list(x), mode="forward")
    finally:
        diff_module._forward_pass = original
    assert len(visited) == 40 and visited[1] < visited[0]     # x_0 also reaches sin(x_0)
