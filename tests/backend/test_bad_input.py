"""Bad input to a kernel: a clear error before any pointer reaches native code, never a
crash. The cases that could crash a careless wrapper run in a subprocess, so a crash
fails the test instead of killing pytest."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hybridad as hd

X1, X2 = hd.symbols("x1 x2")
KERNEL = hd.lambdify([X1, X2], hd.log(X1) + X1 * X2 - hd.sin(X2), derivatives="gradient")


@pytest.mark.parametrize("value,error,match", [
    (np.ones(3), ValueError, r"argument 0 must have shape \(2,\) or \(batch, 2\), got \(3,\)"),
    (np.ones((4, 3)), ValueError, r"got \(4, 3\)"),
    (np.ones((2, 2, 2)), ValueError, r"got \(2, 2, 2\)"),
    ("2, 5", TypeError, "got a string"),
    (np.array(["a", "b"]), TypeError, "real numeric array, got dtype <U1"),
    (np.array([1.0, None], dtype=object), TypeError, "got dtype object"),
    (np.array([1 + 2j, 3j]), TypeError, "got dtype complex128"),
])
def test_rejected_before_native_code(value, error, match):
    with pytest.raises(error, match=match):
        KERNEL(value)


def test_wrong_argument_count_and_mismatched_batches():
    with pytest.raises(TypeError, match=r"takes 1 argument\(s\) \(\(2,\)\), got 2"):
        KERNEL(np.ones(2), np.ones(2))
    a, b = hd.symarray("a", 2), hd.symarray("b", 2)
    k = hd.lambdify([a, b], hd.dot(a, b))
    with pytest.raises(ValueError, match="different batch sizes 3 and 4"):
        k(np.ones((3, 2)), np.ones((4, 2)))


def test_converted_inputs_give_the_same_numbers():
    expected = KERNEL(np.array([2.0, 5.0]))
    for value in ([2, 5], np.array([2, 5], dtype=np.int32), np.array([2, 5], np.float32),
                  np.array([[2.0, 0.0], [5.0, 0.0]])[:, 0],          # non-contiguous
                  np.array([2.0, 5.0])[::-1][::-1]):
        got = KERNEL(value)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def test_empty_batch_and_nan():
    value, grad = KERNEL(np.zeros((0, 2)))
    assert value.shape == (0,) and grad.shape == (0, 2)
    value, grad = KERNEL(np.array([np.nan, 1.0]))
    assert np.isnan(value) and np.isnan(grad[0])


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="derivatives must be one of"):
        hd.lambdify([X1], X1, derivatives="laplacian")
    with pytest.raises(ValueError, match="backend must be one of"):
        hd.lambdify([X1], X1, backend="gpu")
    with pytest.raises(ValueError, match="threads must be a positive int"):
        hd.lambdify([X1], X1, threads=0)
    with pytest.raises(ValueError, match="not arguments: x2"):
        hd.lambdify([X1], X1 * X2)
    with pytest.raises(ValueError, match="needs a single expression"):
        hd.lambdify([X1, X2], [X1, X2], derivatives="gradient")


CRASH_PRONE = """
import numpy as np, hybridad as hd
x1, x2 = hd.symbols("x1 x2")
k = hd.lambdify([x1, x2], hd.log(x1) + x1 * x2 - hd.sin(x2), derivatives="gradient")
a, b = hd.symarray("a", 3), hd.symarray("b", 3)
g = hd.lambdify([a, b], hd.dot(a, b), derivatives="gradient", wrt=b, reduce="sum", threads=2)
bad = [np.ones(1), np.ones(0), np.ones((1, 1)), np.ones((10**6, 1)), np.empty((3, 0)),
       np.ones((2, 3))[:, :2], np.lib.stride_tricks.as_strided(np.ones(2), (2,), (0,)),
       np.ones(4)[1:3], np.frombuffer(b"\\0" * 17, dtype=np.float64, offset=1, count=2),
       np.ones(2, dtype=">f8"), memoryview(np.ones(2)), [[1.0, 2.0, 3.0]], None, object()]
for value in bad:
    try:
        k(value)
    except (TypeError, ValueError):
        pass
for pair in [(np.ones((5, 3)), np.ones((6, 3))), (np.ones(2), np.ones(3)),
             (np.ones((4, 3)), np.ones((4, 3, 1)))]:
    try:
        g(*pair)
    except (TypeError, ValueError):
        pass
X, W = hd.tensor("X", (4, 3)), hd.tensor("W", (3, 2))
t = hd.lambdify([X, W], hd.sum(hd.tanh(X @ W)), derivatives="gradient", scalarize=False)
for pair in [(np.ones((3, 4)), np.ones((3, 2))), (np.ones((4, 3)), np.ones(6)),
             (np.ones((2, 4, 3)), np.ones((3, 3, 2))), (np.ones((4, 3))[:, ::-1], None),
             (np.ones((4, 3), dtype=">f8"), np.ones((3, 2))), ([[1.0] * 3] * 4, object()),
             (np.ones((0, 4, 3)), np.ones((3, 2))), (np.empty((4, 0)), np.ones((3, 2)))]:
    try:
        t(*pair)
    except (TypeError, ValueError):
        pass
for out in [(np.empty(()), np.empty((3, 4))), (np.empty(()),), "out", (None, None),
            (np.empty(()), np.empty((4, 3))[:, ::2])]:
    try:
        t(np.ones((4, 3)), np.ones((3, 2)), out=out)
    except (TypeError, ValueError):
        pass
print("survived")
"""


def test_crash_prone_inputs_in_a_subprocess():
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH_PRONE)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "survived" in result.stdout
