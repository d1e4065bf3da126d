"""Tensor Jacobians and Hessians at tensor level: symbolic batching of a JVP or VJP over
an identity seed, so closed forms stay closed (x @ A @ x has Hessian A.T + A for any n),
checked against the element-level Jacobian, finite differences and row-by-row batching."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tensor_diff import SHAPE, STRUCTURAL, UNARY, M, P

import hybridad as hd
from hybridad.core.batching import batch_expressions


@pytest.mark.parametrize("n", [3, 50, 500])
def test_hessian_of_quadratic_form_is_the_closed_form_for_any_n(n):
    x, A = hd.tensor(f"tj_x{n}", (n,)), hd.tensor(f"tj_A{n}", (n, n))
    hessian = hd.hessian(x @ A @ x, x)
    assert hessian.shape == (n, n)
    assert str(hessian) == f"tj_A{n}.T + tj_A{n}"
    assert hd.count_ops(hessian) == 2                      # transpose and add, whatever n
    a = np.random.default_rng(n).normal(size=(n, n))
    np.testing.assert_array_equal(hd.evaluate(hessian, {A: a}), a.T + a)


def test_jacobian_of_matrix_vector_product_is_the_matrix():
    x, A = hd.tensor("tj_mv_x", (4,)), hd.tensor("tj_mv_A", (3, 4))
    for mode in ("forward", "reverse", "auto"):
        assert hd.jacobian(A @ x, x, mode=mode) is A


def element_jacobian(y, x, env):
    """The reference: the scalar Jacobian of y written element by element over scalar
    symbols for x's elements, evaluated."""
    elements = hd.symarray("tj_el", x.shape)
    scalars = np.ravel(hd.scalarize(y, {x: elements}))
    jac = hd.jacobian(list(scalars), list(np.ravel(elements)))
    point = {**env, **dict(zip(np.ravel(elements), np.ravel(env[x])))}
    values = np.array([[float(hd.evaluate(e, point)) for e in row] for row in jac])
    return values.reshape(y.shape + x.shape)


@pytest.mark.parametrize("k", range(len(STRUCTURAL)))
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_tensor_jacobian_of_every_structural_operation(k, mode):
    rng = np.random.default_rng(k)
    y = hd.sin(STRUCTURAL[k](P))
    env = {P: rng.uniform(-1, 1, SHAPE), M: rng.uniform(-1, 1, (4, 3))}
    jac = hd.jacobian(y, P, mode=mode)
    assert jac.shape == y.shape + P.shape
    got = hd.evaluate(jac, env)
    np.testing.assert_allclose(got, element_jacobian(y, P, env), rtol=1e-12, atol=1e-13)


@st.composite
def batched_programs(draw):
    node = P
    for _ in range(draw(st.integers(1, 4))):
        builder = draw(st.sampled_from(UNARY + STRUCTURAL))
        node = builder(node)
    return node


@settings(max_examples=40, deadline=None)
@given(batched_programs(), st.integers(1, 3), st.integers(0, 2 ** 31 - 1))
def test_batching_equals_row_by_row_substitution(y, size, seed):
    rng = np.random.default_rng(seed)
    rows = hd.tensor(f"tj_rows{size}", (size,) + SHAPE)
    batched = batch_expressions([y], {P: rows}, size)[0]
    assert batched.shape == (size,) + y.shape
    values, m = rng.uniform(-1, 1, (size,) + SHAPE), rng.uniform(-1, 1, (4, 3))
    got = hd.evaluate(batched, {rows: values, M: m})
    expected = np.stack([hd.evaluate(y, {P: v, M: m}) for v in values])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)


def test_scatter_gather_and_reductions_batch_in_one_node():
    x = hd.tensor("tj_sg_x", (5,))
    y = hd.gradient(hd.sum(hd.take(x, [0, 0, 3]) ** 2) + hd.sum(x[1:4] ** 3), x)
    rows = hd.tensor("tj_sg_rows", (2, 5))
    batched = batch_expressions([y], {x: rows}, 2)[0]
    text = str(batched)
    assert "tj_sg_rows[" in text and "stack" not in text
    values = np.arange(10.0).reshape(2, 5)
    expected = np.stack([hd.evaluate(y, {x: v}) for v in values])
    np.testing.assert_array_equal(hd.evaluate(batched, {rows: values}), expected)


def test_empty_tensor_jacobian_is_zeros_of_its_shape():
    x = hd.tensor("tj_empty_x", (0,))
    jac = hd.jacobian(hd.sin(x), x)
    assert jac.shape == (0, 0)
