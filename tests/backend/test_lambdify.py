"""hd.lambdify: kernels agree with tapes and symbolic evaluation; shapes as DESIGN §2;
argument groups, reductions, threads, pickling and the compile cache."""

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ALL_OPS, VARIABLES, dags

import hybridad as hd
from hybridad.backend.llvm import engine

X1, X2 = hd.symbols("x1 x2")
F = hd.log(X1) + X1 * X2 - hd.sin(X2)
POINT = np.array([2.0, 5.0])


def test_seeds_example_value_and_gradient():
    value, grad = hd.lambdify([X1, X2], F, derivatives="gradient")(POINT)
    assert value == pytest.approx(11.652071455223084, rel=1e-15)
    np.testing.assert_allclose(grad, [5.5, 1.716337814536774], rtol=1e-15)
    assert np.shape(value) == () and grad.shape == (2,)


@pytest.mark.parametrize("backend", ["llvm", "tape", "numpy"])
def test_shapes_of_every_derivative_kind(backend):
    k = lambda *a, **kw: hd.lambdify([X1, X2], *a, backend=backend, **kw)  # noqa: E731
    batch = np.array([[2.0, 5.0], [1.0, 3.0], [0.5, 0.25]])
    assert np.shape(k(F)(POINT)) == () and k(F)(batch).shape == (3,)
    assert k([F, X1 * X2])(POINT).shape == (2,)
    v, g = k(F, derivatives="gradient")(batch)
    assert v.shape == (3,) and g.shape == (3, 2)
    vals, jac = k([F, X1 * X2, hd.exp(X2)], derivatives="jacobian")(POINT)
    assert vals.shape == (3,) and jac.shape == (3, 2)
    np.testing.assert_allclose(jac[1], [5.0, 2.0])
    v, g, h = k(F, derivatives="hessian")(POINT)
    assert h.shape == (2, 2)
    np.testing.assert_allclose(h, [[-0.25, 1.0], [1.0, np.sin(5.0)]], rtol=1e-15)
    vals, jv = k([F, X1 * X2], derivatives="jvp")(POINT, np.array([1.0, -1.0]))
    np.testing.assert_allclose(jv, [5.5 - 1.716337814536774, 3.0], rtol=1e-14)
    vals, wj = k([F, X1 * X2], derivatives="vjp")(POINT, np.array([2.0, 1.0]))
    np.testing.assert_allclose(wj, [2 * 5.5 + 5.0, 2 * 1.716337814536774 + 2.0], rtol=1e-14)


def test_every_mode_agrees_with_the_tape_on_a_batch():
    rng = np.random.default_rng(3)
    xs = hd.symarray("x", 4)
    f = hd.sum(hd.tanh(xs) * hd.exp(-xs ** 2)) + hd.log1p(xs[0] ** 2) * hd.arctan2(xs[1], xs[2])
    x = rng.normal(size=(50, 4))
    tape = hd.Tape(f, list(xs))
    value, grad, hess = hd.lambdify(list(xs), f, derivatives="hessian")(x)
    np.testing.assert_allclose(value, tape.evaluate(x)[:, 0], rtol=1e-14)
    np.testing.assert_allclose(grad, tape.gradient(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hess, tape.hessian(x), rtol=1e-12, atol=1e-14)


@settings(max_examples=25, deadline=None)
@given(dags(ops=tuple(ALL_OPS)), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_random_dags_kernel_equals_tape_and_symbolic(f, point):
    x = np.array(point)
    value, grad = hd.lambdify(list(VARIABLES), f, derivatives="gradient")(x)
    env = dict(zip(VARIABLES, point, strict=True))
    symbolic = float(f.evaluate(env))
    tape = hd.Tape(f, list(VARIABLES))
    np.testing.assert_allclose(value, symbolic, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(grad, tape.gradient(x), rtol=1e-12, atol=1e-12)


# -- groups and reductions -------------------------------------------------------------------
def test_groups_broadcast_shared_parameters():
    row, theta = hd.symarray("r", 3), hd.symarray("t", 3)
    loss = (hd.dot(row, theta) - 1.0) ** 2
    k = hd.lambdify([row, theta], loss, derivatives="gradient", wrt=theta)
    X, t = np.arange(12.0).reshape(4, 3), np.array([0.1, -0.2, 0.3])
    values, grads = k(X, t)
    residual = X @ t - 1.0
    np.testing.assert_allclose(values, residual ** 2, rtol=1e-14)
    np.testing.assert_allclose(grads, 2 * residual[:, None] * X, rtol=1e-14)
    total_value, total_grad = hd.lambdify([row, theta], loss, derivatives="gradient",
                                          wrt=theta, reduce="sum")(X, t)
    np.testing.assert_allclose(total_value, np.sum(residual ** 2), rtol=1e-14)
    np.testing.assert_allclose(total_grad, 2 * X.T @ residual, rtol=1e-14)


def test_logistic_regression_mean_gradient_is_the_closed_form():
    rng = np.random.default_rng(0)
    n_rows, n_features = 1_000_000, 5          # the issue: a million rows, no million-row DAG
    X = rng.normal(size=(n_rows, n_features))
    y = (rng.uniform(size=n_rows) < 0.5).astype(float)
    w = rng.normal(size=n_features)
    x_row, w_sym, y_row = hd.symarray("x", n_features), hd.symarray("w", n_features), \
        hd.symbols("y")
    z = hd.dot(x_row, w_sym)
    loss = hd.log1p(hd.exp(-z)) + (1 - y_row) * z   # -[y log σ(z) + (1-y) log(1-σ(z))]
    k = hd.lambdify([x_row, w_sym, y_row], loss, derivatives="gradient", wrt=w_sym,
                    reduce="mean", threads=2)
    value, grad = k(X, w, y)
    sigma = 1 / (1 + np.exp(-X @ w))
    np.testing.assert_allclose(grad, X.T @ (sigma - y) / n_rows, rtol=1e-10)
    expected = -np.mean(y * np.log(sigma) + (1 - y) * np.log1p(-sigma))
    assert value == pytest.approx(expected, rel=1e-10)


def test_threads_give_identical_results():
    from hybridad.backend.llvm.runner import _chunks

    xs = hd.symarray("x", 3)
    f = hd.sum(hd.sin(xs) * hd.cosh(xs))
    x = np.random.default_rng(1).normal(size=(200_000, 3))
    one = hd.lambdify(list(xs), f, derivatives="gradient")(x)
    split = hd.lambdify(list(xs), f, derivatives="gradient", threads=2)
    assert len(_chunks(len(x), 2, split._runner.nodes)) == 2      # really split
    for a, b in zip(one, split(x)):
        np.testing.assert_array_equal(a, b)
    assert _chunks(10_000, 2, 10) == [(0, 10_000)]                  # too little work
    assert _chunks(100, 8, 10 ** 6) == [(0, 100)]                   # too few rows


def test_several_wrt_groups_give_a_tuple_of_gradients():
    a, b = hd.symarray("a", 2), hd.symarray("b", 3)
    f = hd.sum(a) * hd.sum(b ** 2)
    value, (ga, gb) = hd.lambdify([a, b], f, derivatives="gradient")(np.ones(2), np.ones(3))
    np.testing.assert_allclose(ga, [3.0, 3.0])
    np.testing.assert_allclose(gb, [4.0, 4.0, 4.0])


# -- compile cache and pickling ---------------------------------------------------------------
def test_same_expressions_hit_the_compile_cache():
    from hybridad.backend.kernel import Kernel

    u = hd.symbols("cache_probe_u")
    first = hd.lambdify([u], hd.sin(u) * 3.25)
    # the same symbols, nodes, derivative kind and options: the same kernel, with no
    # derivative or IR rebuilt (the key is the interned nodes, not the IR text)
    assert hd.lambdify((u,), [hd.sin(u) * 3.25][0]) is not first      # a tuple: other key
    assert hd.lambdify([u], hd.sin(u) * 3.25) is first
    assert hd.lambdify([u], hd.sin(u) * 3.25, opt_level=3) is not first
    # a kernel built again from scratch finds its machine code by the IR text
    again = Kernel([u], hd.sin(u) * 3.25)
    assert not first.cache_hit and again.cache_hit
    assert engine.cache_size() >= 1
    assert hd.clear_kernel_cache() >= 1 and engine.cache_size() == 0
    third = hd.lambdify([u], hd.sin(u) * 3.25)
    assert third is not first
    assert not third.cache_hit and third([0.5]) == again([0.5]) == first([0.5])


def test_kernels_pickle_and_recompile():
    k = hd.lambdify([X1, X2], F, derivatives="gradient")
    clone = pickle.loads(pickle.dumps(k))
    for a, b in zip(k(POINT), clone(POINT)):
        np.testing.assert_array_equal(a, b)


def test_fastmath_and_opt_levels_compile():
    for opt_level in (0, 3):
        value = hd.lambdify([X1, X2], F, fastmath=True, opt_level=opt_level)(POINT)
        assert value == pytest.approx(11.652071455223084, rel=1e-12)


FREEING = """
import gc, numpy as np, hybridad as hd
from hybridad.backend.llvm import engine
x1, x2 = hd.symbols("x1 x2")
f = hd.log(x1) + x1 * x2 - hd.sin(x2)
for _ in range(3):
    kernels = [hd.lambdify([x1, x2], f), hd.lambdify([x1, x2], f, derivatives="gradient")]
    kernels[1](np.array([2.0, 5.0]))
    engine.clear_cache()
    del kernels
    gc.collect()
print("freed")
"""


def test_freeing_kernels_after_clearing_the_cache_does_not_crash():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", FREEING], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "freed" in result.stdout


def test_scalar_group_passed_as_a_python_number_with_a_batch():
    """A scalar argument group given as a float is shared, not a batch of one."""
    r, s = hd.symarray("r", 2), hd.symbols("s")
    k = hd.lambdify([r, s], hd.sum(r) * s)
    np.testing.assert_allclose(k(np.ones((3, 2)), 0.5), [1.0, 1.0, 1.0])
    assert k(np.ones(2), 2) == 4.0


def test_reductions_are_accurate_and_independent_of_threads():
    """reduce sums pieces of REDUCE_ROWS rows separately: a million equal terms average
    to their value within ~1e-13 (one chain of a million additions was off by 9e-12),
    and threads change nothing, bit for bit."""
    r, w = hd.symarray("r", 2), hd.symarray("w", 2)
    loss = hd.log1p(hd.exp(-hd.dot(r, w)))        # log 2 for every row at w = 0
    data = np.random.default_rng(2).normal(size=(1_000_000, 2))
    one = hd.lambdify([r, w], loss, derivatives="gradient", wrt=w, reduce="mean")
    value, grad = one(data, np.zeros(2))
    assert abs(value - np.log(2.0)) / np.log(2.0) < 3e-13
    np.testing.assert_allclose(grad, -0.5 * data.mean(axis=0), rtol=1e-12, atol=1e-16)
    two = hd.lambdify([r, w], loss, derivatives="gradient", wrt=w, reduce="mean", threads=2)
    for a, b in zip((value, grad), two(data, np.zeros(2))):
        np.testing.assert_array_equal(a, b)
    empty = one(np.zeros((0, 2)), np.zeros(2))
    assert np.isnan(empty[0]) and np.isnan(empty[1]).all()


def test_out_writes_results_into_the_callers_arrays():
    k = hd.lambdify([X1, X2], F, derivatives="hessian")
    value, grad, hess = np.empty(()), np.empty(2), np.empty((2, 2))
    result = k(POINT, out=(value, grad, hess))
    assert result[0] is value and result[1] is grad and result[2] is hess
    expected = k(POINT)
    assert value == expected[0]
    np.testing.assert_array_equal(grad, expected[1])
    np.testing.assert_array_equal(hess, expected[2])
    batch = np.stack([POINT, POINT * 1.5])
    values, grads, hessians = np.empty(2), np.empty((2, 2)), np.empty((2, 2, 2))
    k(batch, out=(values, grads, hessians))
    np.testing.assert_array_equal(grads, k(batch)[1])
    with pytest.raises(ValueError, match=r"shape \(2,\) here, got ndarray float64 \(3,\)"):
        k(POINT, out=(value, np.empty(3), hess))
    with pytest.raises(ValueError, match="must nest like the result"):
        k(POINT, out=value)
    with pytest.raises(ValueError, match="writable float64"):
        k(POINT, out=(value, np.empty(2, dtype=np.float32), hess))
