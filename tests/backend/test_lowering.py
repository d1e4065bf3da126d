"""Every primitive's LLVM lowering against its numpy evaluation, on its domain and at
the special values 0, ±0, ±inf and nan (same nan positions; values within a few ulps)."""

import numpy as np
import pytest

import hybridad as hd
from hybridad.core.build import apply
from hybridad.core.registry import PRIMITIVES, elementwise_names

SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 0.5, -2.5])


def _points(prim, rng):
    inside = [rng.uniform(lo, hi, 64) for lo, hi in prim.domain]
    grids = np.meshgrid(*[SPECIALS] * prim.arity, indexing="ij")
    special = [g.ravel() for g in grids]
    return np.stack([np.concatenate([a, b]) for a, b in zip(inside, special)], axis=1)


@pytest.mark.parametrize("name", elementwise_names())
def test_lowering_matches_numpy(name):
    prim = PRIMITIVES[name]
    symbols = hd.symbols(" ".join(f"a{i}" for i in range(prim.arity)))
    symbols = symbols if isinstance(symbols, tuple) else (symbols,)
    expr = apply(name, *symbols)
    kernel = hd.lambdify(list(symbols), expr)
    x = _points(prim, np.random.default_rng(7))
    got = kernel(x)
    with np.errstate(all="ignore"):
        expected = np.asarray(prim.numpy(*x.T), dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=4e-15, atol=0,
                               err_msg=name)


def test_maximum_and_minimum_propagate_nan_both_ways():
    a, b = hd.symbols("a b")
    k = hd.lambdify([a, b], [hd.maximum(a, b), hd.minimum(a, b)])
    for point in ([np.nan, 1.0], [1.0, np.nan]):
        assert np.isnan(k(np.array(point))).all()
