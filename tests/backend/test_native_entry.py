"""The compiled single-point entry (a METH_FASTCALL builtin): same results and result
structure as the Python path for every derivative kind, everything else handed to the
Python path, and correct reference counts (nothing leaked, nothing freed early)."""

import gc
import sys
import weakref

import numpy as np
import pytest

import hybridad as hd
from hybridad.backend.llvm import pyentry

pytestmark = pytest.mark.skipif(pyentry.abi() is None,
                                reason="object layout of this Python/NumPy not understood")

X1, X2 = hd.symbols("x1 x2")
F = hd.log(X1) + X1 * X2 - hd.sin(X2)
POINT = np.array([2.0, 5.0])


def _same(a, b):
    """Equal values and the same nesting, types and shapes."""
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert np.shape(a) == np.shape(b)
        np.testing.assert_array_equal(a, b)


def _both(kernel, *args):
    assert kernel._native is not None
    return kernel(*args), kernel._call_python(*args)


@pytest.mark.parametrize("derivatives", [None, "gradient", "jacobian", "hessian"])
def test_every_kind_matches_the_python_path(derivatives):
    exprs = F if derivatives in (None, "gradient", "hessian") else [F, X1 * X2, hd.exp(X2)]
    native, python = _both(hd.lambdify([X1, X2], exprs, derivatives=derivatives), POINT)
    _same(native, python)


def test_jvp_vjp_groups_scalars_and_several_wrt():
    a, b, s = hd.symarray("a", (2, 3)), hd.symarray("b", 3), hd.symbols("s")
    out = [hd.sum(a @ b) * s, hd.tanh(s) + b[0]]
    args = (np.arange(6.0).reshape(2, 3) / 7, np.array([0.5, -1.0, 2.0]), np.array(0.3))
    for kernel in (hd.lambdify([a, b, s], out, derivatives="jacobian", wrt=[a, s]),
                   hd.lambdify([a, b, s], out),
                   hd.lambdify([a, b, s], out[0], derivatives="gradient", wrt=[b, s])):
        _same(*_both(kernel, *args))
    jvp = hd.lambdify([a, b, s], out, derivatives="jvp", wrt=b)
    _same(*_both(jvp, *args, np.array([1.0, 0.0, -1.0])))
    vjp = hd.lambdify([a, b, s], out, derivatives="vjp", wrt=a)
    _same(*_both(vjp, *args, np.array([1.0, 2.0])))


@pytest.mark.parametrize("value", [
    [2.0, 5.0], np.array([2, 5]), np.array([[2.0, 5.0], [1.0, 3.0]]),
    np.array([2.0, 9.0, 5.0])[::2], np.array([2.0, 5.0], dtype=">f8"),
    np.array([2.0, 5.0], dtype=np.float32), np.ma.masked_array([2.0, 5.0]),
])
def test_other_inputs_take_the_python_path_with_the_same_result(value):
    kernel = hd.lambdify([X1, X2], F, derivatives="gradient")
    _same(*_both(kernel, value))


def test_errors_come_from_the_python_path():
    kernel = hd.lambdify([X1, X2], F, derivatives="gradient")
    with pytest.raises(TypeError, match="got a string"):
        kernel("2, 5")
    with pytest.raises(TypeError, match=r"takes 1 argument\(s\)"):
        kernel(POINT, POINT)
    with pytest.raises(ValueError, match=r"got \(3,\)"):
        kernel(np.ones(3))
    with pytest.raises(TypeError):
        kernel()


def test_reference_counts():
    kernel = hd.lambdify([X1, X2], F, derivatives="gradient")
    result = kernel(POINT)                  # one result alive before and after the loop
    before = sys.getrefcount(POINT), sys.getrefcount(np.dtype(np.float64))
    for _ in range(1000):
        result = kernel(POINT)
    assert (sys.getrefcount(POINT), sys.getrefcount(np.dtype(np.float64))) == before
    counts = sys.getrefcount(result), sys.getrefcount(result[1])  # outside assert rewriting
    assert counts == (2, 2)
    probe = weakref.ref(result[1])
    del result
    assert probe() is None


def test_the_builtin_keeps_its_code_alive_and_is_collected_with_the_kernel():
    from hybridad.backend.kernel import Kernel

    kernel = Kernel([X1, X2], F * 3.0, derivatives="gradient")   # not kept by lambdify's cache
    builtin = kernel._native
    dead = weakref.ref(kernel)
    del kernel
    gc.collect()
    assert dead() is not None        # the builtin's fallback still refers to the kernel
    value, grad = builtin(POINT)
    assert value == pytest.approx(3 * 11.652071455223084, rel=1e-15)
    del builtin
    gc.collect()
    assert dead() is None
