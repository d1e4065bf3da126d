"""Large kernel bodies are cut into segment functions (linear compile time); cutting
must not change any result: every value, reduction and leaf output is the same as the
one-function kernel's, bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ALL_OPS, VARIABLES, dags

import hybridad as hd
from hybridad.backend.llvm import codegen, engine
from hybridad.core.build import as_expr


@pytest.fixture
def tiny_segments(monkeypatch):
    """Kernels compiled in this test are cut every few nodes."""
    def use(nodes: int) -> None:
        monkeypatch.setattr(codegen, "SEGMENT_NODES", nodes)
        hd.clear_kernel_cache()          # lambdify would hand back the uncut kernel
    return use


def _rosenbrock(n):
    xs = hd.symarray("x", n)
    return xs, sum(100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2
                   for i in range(n - 1))


@pytest.mark.parametrize("nodes", [1, 3, 7, 50])
def test_cut_gradient_and_hessian_equal_the_single_function(tiny_segments, nodes):
    xs, f = _rosenbrock(12)
    x = np.random.default_rng(0).normal(size=(20, 12))
    whole = hd.lambdify(list(xs), f, derivatives="hessian")(x)
    tiny_segments(nodes)
    cut = hd.lambdify(list(xs), f, derivatives="hessian")
    assert cut.info()["segments"] > 1
    for a, b in zip(whole, cut(x)):
        np.testing.assert_array_equal(a, b)


def test_cut_kernels_with_groups_reduce_and_leaf_outputs(tiny_segments):
    row, theta = hd.symarray("r", 3), hd.symarray("t", 3)
    outs = [hd.sigmoid(hd.dot(row, theta)) ** 2, row[0], as_expr(2.5),
            theta[1] * hd.exp(row[2])]
    data = np.random.default_rng(1).normal(size=(1000, 3))
    params = np.array([0.3, -0.2, 0.5])
    whole = hd.lambdify([row, theta], outs, derivatives="jacobian", wrt=theta,
                        reduce="mean")(data, params)
    tiny_segments(2)
    cut = hd.lambdify([row, theta], outs, derivatives="jacobian", wrt=theta, reduce="mean")
    for a, b in zip(whole, cut(data, params)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cut(data[0], params)[0][1:3], [data[0, 0], 2.5])


@settings(max_examples=20, deadline=None)
@given(dags(ops=tuple(ALL_OPS)), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3),
       st.integers(1, 4))
def test_random_dags_cut_anywhere(f, point, nodes):
    x = np.array(point)
    whole = hd.lambdify(list(VARIABLES), f, derivatives="gradient")(x)
    saved = codegen.SEGMENT_NODES
    codegen.SEGMENT_NODES = nodes
    try:
        cut = hd.lambdify(list(VARIABLES), f, derivatives="gradient")(x)
    finally:
        codegen.SEGMENT_NODES = saved
    np.testing.assert_array_equal(whole[0], cut[0])
    np.testing.assert_array_equal(whole[1], cut[1])


def test_scratch_slots_are_reused_when_values_die():
    """A long chain hands one value across each cut: many crossings, few slots."""
    x, y = hd.symbols("x y")
    v = x
    for k in range(3000):
        v = hd.sin(v) * y + k
    spec = codegen.KernelSpec(((x, y),), ((v,),), (False,))
    plan = codegen._plan(spec, 100)
    assert len(plan.segments) > 50 and len(plan.slot) >= len(plan.segments) - 1
    assert plan.n_slots <= 2
    kernel = hd.lambdify([x, y], v)                  # 9000 nodes: cut at SEGMENT_NODES
    assert kernel.info()["segments"] > 1
    point = {x: 0.3, y: 0.7}
    assert kernel([0.3, 0.7]) == pytest.approx(float(v.evaluate(point)), rel=1e-12)


def test_constant_and_symbol_outputs_are_spread_over_segments():
    """A linear map's Jacobian is all constants: its thousands of stores must not land in
    one function (that made LLVM's codegen superlinear: ~12 s for 16k stores)."""
    xs = hd.symarray("x", 40)
    W = np.arange(1.0, 40 * 30 + 1).reshape(30, 40)
    outs = list(W @ xs)
    jac = hd.jacobian(outs, list(xs))
    spec = codegen.KernelSpec((tuple(xs),), (tuple(outs), tuple(jac.ravel()), tuple(xs)),
                              (False, False, False))
    plan = codegen._plan(spec, 100)
    assert max(len(stores) for stores in plan.leaf_stores) <= 100
    assert sum(len(stores) for stores in plan.leaf_stores) == 30 * 40 + 40
    k = hd.lambdify(list(xs), outs, derivatives="jacobian")
    values, J = k(np.ones(40))
    np.testing.assert_array_equal(J, W)
    np.testing.assert_array_equal(values, W.sum(axis=1))


def test_cut_kernels_keep_every_constant_exact(tiny_segments):
    """Segment bodies are written as IR text: constants go through their IEEE bits."""
    x = hd.symbols("x")
    specials = [-0.0, np.inf, -np.inf, 5e-324, 0.1, 1 / 3, -2.5e300]
    outs = [x * c + c for c in specials] + [hd.where(x > 0, x, c) for c in specials] + \
        [as_expr(-0.0)]
    whole = hd.lambdify(x, outs)(np.array(0.7))
    tiny_segments(1)
    cut = hd.lambdify(x, outs)
    assert cut.info()["segments"] > 1
    np.testing.assert_array_equal(cut(np.array(0.7)), whole)
    expected = [0.7 * c + c for c in specials] + [0.7] * len(specials) + [-0.0]
    np.testing.assert_array_equal(whole, expected)
    assert np.signbit(cut(np.array(0.7))[-1])                       # -0.0 kept its sign
    np.testing.assert_array_equal(cut(np.array(-1.0))[len(specials):-1], specials)