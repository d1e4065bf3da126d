"""Keyword arguments of transformed functions: passed through, never differentiated.

As in JAX: ``grad(f)(x, c=3.0)`` differentiates with respect to x only; ``vmap`` maps
keyword arguments over their leading axis. Each distinct keyword value is its own
trace (arrays are told apart by content), so a value is never served a stale trace.
"""

import numpy as np
import pytest

from hybridad.func import (
    grad, hessian, jacfwd, jacobian, jacrev, jit, value_and_grad, vmap,
)


def scaled(x, c=1.0, power=2):
    return c * np.sum(x ** power)


def test_issue_reproduction_keyword_is_passed_and_not_differentiated():
    assert grad(lambda x, c: x * c)(2.0, c=3.0) == 3.0              # was a TypeError
    assert value_and_grad(lambda x, c: x * c)(2.0, c=3.0) == (6.0, 3.0)


@pytest.mark.parametrize("backend", ["llvm", "tape"])
def test_every_transform_passes_keywords(backend):
    x = np.array([0.5, -1.5])
    np.testing.assert_allclose(grad(scaled, backend=backend)(x, c=3.0), 6 * x, rtol=1e-15)
    np.testing.assert_allclose(grad(scaled, backend=backend)(x, c=3.0, power=3),
                               9 * x ** 2, rtol=1e-15)
    assert jit(scaled, backend=backend)(x, c=2.0) == pytest.approx(2 * np.sum(x ** 2))
    for transform in (jacfwd, jacrev, jacobian):
        np.testing.assert_allclose(
            transform(lambda v, c: c * v ** 2, backend=backend)(x, c=4.0),
            np.diag(8 * x), rtol=1e-15)
    np.testing.assert_allclose(hessian(scaled, backend=backend)(x, c=3.0), 6 * np.eye(2),
                               rtol=1e-15)


def test_each_keyword_value_is_its_own_trace_and_equal_values_share_one():
    g = grad(scaled)
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(g(x, c=2.0), 4 * x)
    np.testing.assert_array_equal(g(x, c=5.0), 10 * x)     # not the c=2 trace again
    np.testing.assert_array_equal(g(x, c=2.0), 4 * x)
    assert g.cache.trace_count == 2
    weights = np.array([1.0, 3.0])
    h = grad(lambda v, w: np.sum(w * v * v))
    np.testing.assert_array_equal(h(x, w=weights), 2 * weights * x)
    weights[1] = 10.0                                      # same array, new content
    np.testing.assert_array_equal(h(x, w=weights), 2 * weights * x)
    np.testing.assert_array_equal(h(x, w=weights.copy()), 2 * weights * x)
    assert h.cache.trace_count == 2
    # a value that cannot be hashed is traced each time, never cached
    k = grad(lambda v, coefficients: coefficients[0] * np.sum(v))
    assert np.sum(k(x, coefficients=[2.0])) == 4.0 and np.sum(k(x, coefficients=[3.0])) == 6.0


def test_keywords_inside_a_trace_may_be_expressions_of_the_outer_trace():
    inner = grad(lambda t, c: c * t ** 2)
    assert grad(lambda x: inner(3.0, c=x))(0.7) == 6.0      # d/dx (6 x)


def test_vmap_maps_keywords_over_their_leading_axis_as_jax():
    rows = np.arange(6.0).reshape(3, 2)
    scales = np.array([1.0, 2.0, 3.0])
    out = vmap(lambda r, s: s * np.sum(r))(rows, s=scales)
    np.testing.assert_array_equal(out, scales * rows.sum(axis=1))
    with pytest.raises(ValueError, match="one common leading size"):
        vmap(lambda r, s: s * np.sum(r))(rows, s=np.ones(2))


def test_unknown_keyword_is_the_functions_own_type_error():
    with pytest.raises(TypeError, match="unexpected keyword argument 'd'"):
        grad(scaled)(np.ones(2), d=1.0)


def test_jvp_and_vjp_reuse_the_trace_of_a_function():
    from hybridad.func import jvp, vjp
    from hybridad.func.transforms import _FUNCTION_CACHES, _function_cache

    def f(x):
        return np.sin(x) * 2.0

    for _ in range(3):
        jvp(f, (np.ones(2),), (np.ones(2),))
        vjp(f, np.ones(2))[1](np.ones(2))
    assert _function_cache(f, "llvm").trace_count == 1
    assert id(f) in _FUNCTION_CACHES
    key = id(f)
    del f                                            # the entry leaves with its function
    assert key not in _FUNCTION_CACHES
