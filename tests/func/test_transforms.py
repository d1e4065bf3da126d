"""Function transforms: values against closed forms, argnums, caching, errors."""

import numpy as np
import pytest

import hybridad as hd
from hybridad.func import (
    grad, hessian, jacfwd, jacobian, jacrev, jit, jvp, value_and_grad, vjp, vmap,
)


def textbook(x):
    return hd.log(x[0]) + x[0] * x[1] - hd.sin(x[1])


POINT = np.array([2.0, 5.0])


def test_grad_of_textbook_example():
    np.testing.assert_allclose(grad(textbook)(POINT), [5.5, 2 - np.cos(5.0)], rtol=1e-15)
    value, g = value_and_grad(textbook)(POINT)
    assert value == pytest.approx(11.652, abs=5e-4) and g.shape == (2,)


def test_seed_jacobian_of_cube_and_hessian_of_sum_of_cubes():
    for transform in (jacfwd, jacrev, jacobian):
        np.testing.assert_array_equal(transform(lambda x: x ** 3)(np.ones(3)), 3 * np.eye(3))
    np.testing.assert_array_equal(hessian(lambda x: hd.sum(x ** 3))(np.ones(3)), 6 * np.eye(3))


def test_seed_norm_example_gradient_for_x_and_t():
    y = np.array([1.0, -1.0])
    f = lambda x, t: hd.sum((x * t - y) ** 2) ** 0.5  # noqa: E731
    x, t = np.array([0.5, 1.5]), np.array([2.0, 3.0])
    gx, gt = grad(f, argnums=(0, 1))(x, t)
    r = x * t - y
    np.testing.assert_allclose(gx, t * r / np.linalg.norm(r), rtol=1e-14)
    np.testing.assert_allclose(gt, x * r / np.linalg.norm(r), rtol=1e-14)


def test_jacobian_shape_is_out_shape_plus_in_shape():
    w = np.arange(6.0).reshape(2, 3)
    jac = jacrev(lambda m: np.tanh(m @ np.ones(3)))(w)
    assert jac.shape == (2, 2, 3)
    np.testing.assert_allclose(jac, jacfwd(lambda m: np.tanh(m @ np.ones(3)))(w), rtol=1e-13)


def test_jvp_and_vjp_agree_by_projection():
    f = lambda x: np.sin(x) * x[0]  # noqa: E731
    x, v, w = np.array([0.3, 1.2, -0.4]), np.array([1.0, 2.0, 3.0]), np.array([0.5, -1, 2])
    out, dot = jvp(f, (x,), (v,))
    out2, pullback = vjp(f, x)
    np.testing.assert_array_equal(out, out2)
    assert w @ dot == pytest.approx(pullback(w)[0] @ v, rel=1e-13)


def test_vmap_of_dot_and_of_grad():
    np.testing.assert_array_equal(vmap(hd.dot)(np.ones((3, 5)), np.ones((3, 5))), [5.0] * 3)
    points = np.array([[2.0, 5.0], [3.0, 5.0]])
    batched = vmap(grad(textbook))(points)
    np.testing.assert_allclose(batched[1], grad(textbook)(points[1]), rtol=1e-15)
    theta = np.array([0.5, -0.25])
    shared = vmap(lambda row, th: hd.dot(row, th), in_axes=(0, None))(points, theta)
    np.testing.assert_allclose(shared, points @ theta, rtol=1e-15)


def test_traced_once_per_shape_signature():
    g = grad(textbook)
    g(POINT)
    g(POINT + 1.0)
    assert g.cache.trace_count == 1
    g(np.array([2.0, 5.0, 1.0]))
    assert g.cache.trace_count == 2
    f = jit(textbook)
    assert f(POINT) == pytest.approx(11.652, abs=5e-4)


def test_python_control_flow_raises_tracing_error_with_hint():
    with pytest.raises(hd.TracingError, match=r"hd\.where"):
        grad(lambda x: x[0] if x[0] > 0 else -x[0])(POINT)
    g = grad(lambda x: hd.where(x[0] > 0, x[0], -x[0]))
    np.testing.assert_array_equal(g(np.array([-2.0, 1.0])), [-1.0, 0.0])


def test_grad_needs_scalar_output():
    with pytest.raises(TypeError, match="scalar output"):
        grad(lambda x: x * 2)(POINT)


def test_non_numeric_arguments_are_rejected():
    with pytest.raises(TypeError, match="numeric"):
        grad(textbook)(np.array(["a", "b"]))


# -- transforms inside transforms ---------------------------------------------------------
def test_nested_vmap_maps_both_axes():
    vvd = vmap(vmap(hd.dot))
    x = np.arange(30.0).reshape(3, 2, 5)
    np.testing.assert_allclose(vvd(x, 2 * x), np.einsum("ndc,ndc->nd", x, 2 * x))


def test_jvp_and_vjp_inside_vmap_and_grad():
    from hybridad.func import jvp, vjp

    f = lambda x: hd.sin(x) * x  # noqa: E731
    X = np.linspace(0.1, 1.2, 12).reshape(4, 3)
    tangent = np.array([1.0, -2.0, 0.5])
    expected = (np.cos(X) * X + np.sin(X)) * tangent
    jvps = vmap(lambda x: jvp(f, (x,), (tangent,))[1])(X)
    np.testing.assert_allclose(jvps, expected, rtol=1e-13)
    vjps = vmap(lambda x: vjp(f, x)[1](tangent)[0])(X)
    np.testing.assert_allclose(vjps, expected, rtol=1e-13)
    g = grad(lambda x: hd.sum(vmap(hd.sin)(x)))(np.array([0.3, 0.7]))
    np.testing.assert_allclose(g, np.cos([0.3, 0.7]), rtol=1e-14)


@pytest.mark.parametrize("backend", ["llvm", "tape"])
def test_vmap_unmapped_arguments_are_kernel_groups_read_once(backend):
    """in_axes=None arguments reach the kernel with their own shape (a shared argument
    group), mapped ones with the batch axis; results equal the row-by-row loop."""
    rng = np.random.default_rng(5)
    rows, weights, bias = rng.normal(size=(300, 4)), rng.normal(size=(4, 3)), 0.25

    def layer(row, w, b):
        return hd.tanh(row @ w + b), hd.sum(row * row)

    mapped = vmap(layer, in_axes=(0, None, None), backend=backend)
    out, norms = mapped(rows, weights, bias)
    expected = [layer(r, weights, bias) for r in rows]
    assert out.shape == (300, 3) and norms.shape == (300,)
    np.testing.assert_allclose(out, [np.asarray(e[0], dtype=float) for e in expected],
                               rtol=1e-13, atol=1e-15)     # numpy's matmul sums in its order
    np.testing.assert_allclose(norms, (rows ** 2).sum(axis=1), rtol=1e-14)
    traced = next(iter(mapped.cache.traces.values()))
    if backend == "llvm":
        kernel = traced.grouped_kernel()
        assert [g.shape for g in kernel.groups] == [(4,), (4, 3), ()]
    with pytest.raises(ValueError, match="in_axes entries must be 0 or None, got 1"):
        vmap(layer, in_axes=(0, 1, None), backend=backend)(rows, weights, bias)
