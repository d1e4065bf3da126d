"""numpy calls on expressions: in-place operators (out=) and reductions.

An Expr is a 0-d array to numpy's reductions (np.sum(x) is x, as np.sum of a 0-d array
is its element); object arrays of expressions reduce to balanced trees; in-place
operators write the new expressions into the array, as numpy does.
"""

import numpy as np
import pytest

import hybridad as hd
from hybridad.func import grad

AxisError = getattr(np, "exceptions", np).AxisError


# -- bug 3: in-place operators ---------------------------------------------------------
def test_in_place_operators_on_symbol_arrays_write_new_expressions():
    W = hd.symarray("w", 3)
    same = W
    W += 1.0                                    # used to raise RecursionError
    assert W is same and isinstance(W, hd.core.build.ExprArray)
    assert list(W) == [w + 1.0 for w in hd.symarray("w", 3)]
    W *= W
    W -= np.arange(3.0)
    w0 = hd.symbols("w_0")
    assert W[0] is (w0 + 1.0) * (w0 + 1.0)
    np.multiply(W, 2.0, out=W)
    assert W[0] is 2.0 * ((w0 + 1.0) * (w0 + 1.0))


def test_in_place_update_inside_grad():
    def f(x):
        x += 1.0                                # rebinding, like autograd and JAX
        x *= x
        return np.sum(x)

    np.testing.assert_allclose(grad(f)(np.array([1.0, 2.0])), [4.0, 6.0], rtol=1e-15)
    assert grad(lambda t: np.sum(np.array([t]) * 3.0))(1.0) == 3.0


def test_writing_expressions_into_a_float_array_is_a_clear_error():
    W = hd.symarray("w", 2)
    with pytest.raises(TypeError, match="cannot convert the symbolic expression"):
        np.add(W, 1.0, out=np.zeros(2))


def test_statistics_of_expression_arrays():
    W = hd.symarray("w", 3)
    values = np.array([0.5, -1.0, 2.0])
    env = dict(zip(W, values))
    for reduction in (np.var, np.std, np.mean, np.ptp):
        assert float(hd.evaluate(reduction(W), env)) == pytest.approx(reduction(values),
                                                                      rel=1e-14)


# -- bug 4: numpy reductions on a traced scalar ----------------------------------------
REDUCTIONS = [np.sum, np.prod, np.max, np.min, np.amax, np.amin, np.mean, np.ptp, np.var,
              np.std, np.cumsum, np.cumprod]


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=lambda r: r.__name__)
def test_reductions_of_a_scalar_expression_match_numpy_on_0d(reduction):
    x = hd.symbols("x")
    result = reduction(x)
    expected = reduction(np.array(0.3))
    assert np.shape(result) == np.shape(expected)
    assert float(hd.evaluate(hd.sum(result), {x: 0.3})) == pytest.approx(
        float(np.sum(expected)), abs=1e-15)


@pytest.mark.parametrize("reduction,derivative", [
    (np.sum, np.cos), (np.prod, np.cos), (np.max, np.cos), (np.min, np.cos),
    (np.mean, np.cos), (np.var, lambda x: 0.0)])
def test_grad_through_reductions_of_a_traced_scalar(reduction, derivative):
    """grad(lambda x: np.sum(np.sin(x)))(0.3) used to raise TypeError."""
    assert grad(lambda x: reduction(np.sin(x)))(0.3) == pytest.approx(derivative(0.3),
                                                                      rel=1e-15)
    # the same code on a length-1 array
    one = grad(lambda x: reduction(np.sin(x)))(np.array([0.3]))
    assert one.shape == (1,) and one[0] == pytest.approx(derivative(0.3), rel=1e-15)


def test_reduction_arguments_follow_numpy_on_0d():
    x = hd.symbols("x")
    with pytest.raises(AxisError, match="axis 0 is out of bounds for array of dimension 0"):
        np.sum(x, axis=0)
    assert np.sum(x, keepdims=True) is x and np.shape(np.sum(np.array(1.0), keepdims=True)) == ()
    assert np.max(x, initial=2.0) is hd.maximum(2.0, x)
    assert np.sum(x, initial=1.0) is 1.0 + x


def test_reductions_of_arrays_are_balanced_trees_with_numpy_axes():
    M = hd.symarray("m", (2, 3))
    values = np.arange(6.0).reshape(2, 3) - 2.5
    env = dict(zip(M.ravel(), values.ravel()))
    for reduction in (np.sum, np.prod, np.max, np.min):
        for axis in (None, 0, 1, (0, 1), -1):
            for keepdims in (False, True):
                got = reduction(M, axis=axis, keepdims=keepdims)
                want = reduction(values, axis=axis, keepdims=keepdims)
                assert np.shape(got) == np.shape(want)
                np.testing.assert_allclose(
                    np.asarray(hd.evaluate(list(np.ravel(got)), env), dtype=float),
                    np.ravel(want), rtol=1e-15)
    assert hd.count_ops(np.max(hd.symarray("v", 8))) == 7
    with pytest.raises(ValueError, match="zero-size array to reduction operation maximum"):
        np.max(hd.symarray("e", (0,)))
    assert float(np.sum(hd.symarray("e", (0,)))) == 0.0
