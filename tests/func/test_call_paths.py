"""The per-call paths of jvp, vjp and jacobian (float64 arrays of a traced signature go
straight to one compiled kernel) give what the general path gives, keep JAX's
semantics (the pullback holds the point, not the caller's array) and never re-trace."""

import numpy as np
import pytest

import hybridad as hd
from hybridad.func import jacfwd, jacobian, jacrev, jvp, vjp
from hybridad.func.transforms import _function_cache


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def two_outputs(x, y):
    return hd.sin(x) * y[0], np.sum(x * x) + y[1]


def rosen_der(x):
    d = np.zeros_like(x)
    d[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    d[:-1] += -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2.0 * (1.0 - x[:-1])
    return d


def test_jvp_fast_path_equals_the_general_path_and_traces_once():
    rng = np.random.default_rng(0)
    x, v = rng.normal(size=7), rng.normal(size=7)
    for _ in range(3):
        value, dot = jvp(rosenbrock, (x,), (v,))
        assert value == pytest.approx(rosenbrock(x), rel=1e-14)
        assert dot == pytest.approx(rosen_der(x) @ v, rel=1e-12)
    assert _function_cache(rosenbrock, "llvm").trace_count == 1
    # a list of tangents (not the fast path) gives the same numbers
    assert jvp(rosenbrock, [x], [list(v)])[1] == dot
    with pytest.raises(ValueError, match=r"tangent 0 must have shape \(7,\)"):
        jvp(rosenbrock, (x,), (np.ones(6),))


def test_vjp_pullback_keeps_the_point_it_was_made_at():
    x = np.linspace(-1.0, 1.0, 5)
    for _ in range(2):                              # the second call takes the fast path
        point = x.copy()
        value, pullback = vjp(rosenbrock, point)
        point[:] = 0.0                              # the caller reuses its buffer
        (cotangent,) = pullback(2.0)
        np.testing.assert_allclose(cotangent, 2.0 * rosen_der(x), rtol=1e-13)
        assert value == pytest.approx(rosenbrock(x), rel=1e-14)
    with pytest.raises(ValueError, match="cotangent must match the output structure"):
        pullback(np.ones(2))


def test_vjp_and_jvp_of_several_arguments_and_outputs():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=3), rng.normal(size=2)
    tx, ty = rng.normal(size=3), rng.normal(size=2)
    for _ in range(2):
        (a, _), (da, db) = jvp(two_outputs, (x, y), (tx, ty))
        np.testing.assert_allclose(a, np.sin(x) * y[0], rtol=1e-14)
        np.testing.assert_allclose(da, np.cos(x) * tx * y[0] + np.sin(x) * ty[0], rtol=1e-13)
        assert db == pytest.approx(2 * x @ tx + ty[1], rel=1e-13)
        _, pullback = vjp(two_outputs, x, y)
        gx, gy = pullback((np.ones(3), 1.0))
        np.testing.assert_allclose(gx, np.cos(x) * y[0] + 2 * x, rtol=1e-13)
        np.testing.assert_allclose(gy, [np.sin(x).sum(), 1.0], rtol=1e-13)


@pytest.mark.parametrize("transform", [jacfwd, jacrev, jacobian])
def test_jacobian_fast_path_equals_the_general_path(transform):
    jac = transform(two_outputs, argnums=(0, 1))
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=3), rng.normal(size=2)
    first = jac(x, y)
    second = jac(x, y)                              # from the cached per-call path
    listed = jac(list(x), list(y))                  # lists: the general path
    for got in (second, listed):
        for part, expected in zip(got, first):
            for block, ref in zip(part, expected):
                np.testing.assert_array_equal(block, ref)
    (jxa, jya), (jxb, jyb) = first
    np.testing.assert_allclose(jxa, np.diag(np.cos(x) * y[0]), rtol=1e-14)
    np.testing.assert_allclose(jya, np.stack([np.sin(x), np.zeros(3)], axis=1), atol=0)
    np.testing.assert_allclose(jxb, 2 * x, rtol=1e-14)
    np.testing.assert_allclose(jyb, [0.0, 1.0], atol=0)
    assert jac.cache.trace_count == 1


def test_jacobian_of_symbolic_arguments_nests_as_jax():
    x, y = hd.symarray("cp_x", (3,)), hd.symarray("cp_y", (2,))
    (jxa, jya), (jxb, jyb) = jacrev(two_outputs, argnums=(0, 1))(x, y)
    assert np.shape(jxa) == (3, 3) and np.shape(jya) == (3, 2)
    assert np.shape(jxb) == (3,) and np.shape(jyb) == (2,)
    assert float(jyb[1]) == 1.0                     # bound to a constant: a number
