"""A batch of zero rows returns empty results on every backend (a new user's (0, n)
input raised `cannot reshape array of size 0` on the tape and numpy backends)."""

import numpy as np
import pytest

import hybridad as hd

a1, a2, a3 = hd.symbols("zr_a1 zr_a2 zr_a3")
F = hd.log(a1) + a1 * a2 - hd.sin(a2) * a3


def _flat(result: object) -> list[np.ndarray]:
    if isinstance(result, tuple):
        return [leaf for part in result for leaf in _flat(part)]
    return [np.asarray(result)]


@pytest.mark.parametrize("backend", ["llvm", "tape", "numpy"])
@pytest.mark.parametrize("derivatives", [None, "gradient", "jacobian", "hessian"])
def test_zero_rows_give_empty_results_of_the_right_shapes(backend: str,
                                                          derivatives: str | None) -> None:
    exprs = [F, a1 * a3] if derivatives == "jacobian" else F
    wrt = [[a1, a2]] if derivatives == "hessian" else None
    kernel = hd.lambdify([[a1, a2], a3], exprs, derivatives=derivatives, wrt=wrt,
                         backend=backend)
    reference = hd.lambdify([[a1, a2], a3], exprs, derivatives=derivatives, wrt=wrt)
    got = kernel(np.zeros((0, 2)), 1.5)
    one_row = reference(np.ones((1, 2)), 1.5)
    for g, r in zip(_flat(got), _flat(one_row), strict=True):
        assert g.shape == (0, *r.shape[1:]) and g.dtype == np.float64


@pytest.mark.parametrize("backend", ["llvm", "tape", "numpy"])
def test_zero_rows_summed_are_zero(backend: str) -> None:
    kernel = hd.lambdify([[a1, a2], a3], F, derivatives="gradient", backend=backend,
                         reduce="sum")
    value, (g12, g3) = kernel(np.zeros((0, 2)), np.zeros((0,)))
    assert value == 0.0 and np.array_equal(g12, [0.0, 0.0]) and g3 == 0.0


def test_zero_rows_through_func_vmap_on_the_tape() -> None:
    from hybridad.func import grad, vmap

    def f(x):
        return hd.log(x[0]) + x[0] * x[1]

    for backend in ("llvm", "tape"):
        out = vmap(grad(f, backend=backend))(np.zeros((0, 2)))
        assert np.shape(out) == (0, 2)


def test_mean_of_zero_rows_is_nan_for_tensor_kernels_as_for_element_level() -> None:
    x = hd.tensor("zr_tensor", (3000,))
    for scalarize in (False, True):
        kernel = hd.lambdify([x], hd.sum(hd.exp(x)), derivatives="gradient",
                             reduce="mean", scalarize=scalarize)
        value, gradient = kernel(np.zeros((0, 3000)))
        assert np.isnan(value) and gradient.shape == (3000,) and np.isnan(gradient).all()
