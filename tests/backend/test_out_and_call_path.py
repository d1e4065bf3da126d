"""Element-level kernels: ``out=`` writes straight into the caller's arrays (no result
allocated, nothing copied), bad ``out=`` is refused with a clear error and never a
crash, the native entry takes ``out=`` itself, and batches split across threads give
results bit-identical to one thread."""

import itertools
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import hybridad as hd
import hybridad.backend.kernel as kernel_module
import hybridad.backend.threads as threads_module
from hybridad.backend.llvm import engine, pyentry

X1, X2 = hd.symbols("x1 x2")
F = hd.log(X1) + X1 * X2 - hd.sin(X2)
POINT = np.array([2.0, 5.0])
native_only = pytest.mark.skipif(pyentry.abi() is None,
                                 reason="object layout of this Python/NumPy not understood")


def _seeds_kernel(**options):
    return hd.lambdify([X1, X2], F, derivatives="gradient", **options)


def _peak_bytes(call) -> int:
    """Peak memory traced (Python objects and numpy data) while ``call`` runs."""
    call()                                         # warm: nothing first-time is counted
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


# -- written in place -------------------------------------------------------------------------
def test_single_point_out_is_the_callers_arrays_written_in_place():
    k = _seeds_kernel()
    value, grad = np.empty(()), np.empty(2)
    out = (value, grad)
    for point in (POINT, np.array([3.0, 1.0])):
        result = k(point, out=out)
        assert result is out and result[0] is value and result[1] is grad
        expected = k(point)
        assert value[()] == expected[0]
        np.testing.assert_array_equal(grad, expected[1])


@native_only
def test_the_native_entry_takes_out_itself(monkeypatch):
    """The Python path (its one conversion) is not run for out= with exact arrays."""
    k = _seeds_kernel()
    calls = []
    real = kernel_module.convert_arguments
    monkeypatch.setattr(kernel_module, "convert_arguments",
                        lambda *a: calls.append(1) or real(*a))
    k(POINT, out=(np.empty(()), np.empty(2)))
    assert calls == []
    k([2.0, 5.0], out=(np.empty(()), np.empty(2)))          # a list: the Python path
    assert calls == [1]


@native_only
def test_no_result_is_allocated_or_copied_for_one_point():
    """2,048 outputs (16 kB): a fresh call allocates them, out= allocates nothing."""
    k = hd.lambdify([X1, X2], [X1 * float(i) for i in range(2048)])
    out = np.empty(2048)
    assert _peak_bytes(lambda: k(POINT)) > 16_000
    assert _peak_bytes(lambda: k(POINT, out=out)) < 2_000
    np.testing.assert_array_equal(out, 2.0 * np.arange(2048.0))


@pytest.mark.parametrize("threads", [1, 2])
def test_no_result_is_allocated_or_copied_for_a_batch(threads):
    k = _seeds_kernel(threads=threads)
    x = np.random.default_rng(0).random((200_000, 2)) + 0.5
    values, grads = np.empty(200_000), np.empty((200_000, 2))
    result = k(x, out=(values, grads))
    assert result[0] is values and result[1] is grads
    expected = k(x)
    np.testing.assert_array_equal(values, expected[0])
    np.testing.assert_array_equal(grads, expected[1])
    assert _peak_bytes(lambda: k(x, out=(values, grads))) < 64_000    # results: 4.8 MB


def test_out_reference_counts():
    """out= returns the caller's tuple (one new reference) and leaks nothing."""
    k = _seeds_kernel()
    value, grad = np.empty(()), np.empty(2)
    out = (value, grad)
    result = k(POINT, out=out)
    before = [sys.getrefcount(o) for o in (out, value, grad, POINT)]
    for _ in range(1000):
        result = k(POINT, out=out)
    assert [sys.getrefcount(o) for o in (out, value, grad, POINT)] == before
    assert result is out


def _structures():
    a, b, s = hd.symarray("a", (2, 3)), hd.symarray("b", 3), hd.symbols("s")
    outs = [hd.sum(a @ b) * s, hd.tanh(s) + b[0]]
    args = (np.arange(6.0).reshape(2, 3) / 7, np.array([0.5, -1.0, 2.0]), np.array(0.3))
    return [
        (hd.lambdify([X1, X2], F), (POINT,)),
        (hd.lambdify([X1, X2], F, derivatives="hessian"), (POINT,)),
        (hd.lambdify([a, b, s], outs, derivatives="jacobian", wrt=[a, s]), args),
        (hd.lambdify([a, b, s], outs[0], derivatives="gradient", wrt=[b, s]), args),
        (hd.lambdify([a, b, s], outs, derivatives="jvp", wrt=b),
         args + (np.array([1.0, 0.0, -1.0]),)),
        (hd.lambdify([X1, X2], F, derivatives="gradient", backend="tape"), (POINT,)),
    ]


def _empty_like(result):
    if isinstance(result, tuple):
        return tuple(_empty_like(r) for r in result)
    return np.full(np.shape(result), np.nan)


def _assert_same(got, expected):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            _assert_same(g, e)
    else:
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("case", range(6))
def test_out_for_every_result_structure_on_both_paths(case):
    k, args = _structures()[case]
    expected = k(*args)
    for call in (k, k._call_python):
        out = _empty_like(expected)
        assert call(*args, out=out) is out
        _assert_same(out, expected)
    batch = tuple(np.stack([a, a]) for a in args)
    expected = k(*batch)
    out = _empty_like(expected)
    k(*batch, out=out)
    _assert_same(out, expected)


def test_out_overlapping_an_argument_gives_the_values_as_if_computed_first():
    k = _seeds_kernel()
    x = POINT.copy()
    expected = k(POINT)
    value = np.empty(())
    k(x, out=(value, x))                          # the gradient overwrites the argument
    assert value[()] == expected[0]
    np.testing.assert_array_equal(x, expected[1])
    batch = np.stack([POINT, POINT * 1.5])
    expected = k(batch)
    grads = batch.copy()
    k(grads, out=(np.empty(2), grads))
    np.testing.assert_array_equal(grads, expected[1])


def test_reduce_mean_writes_into_out_and_threads_change_nothing():
    r, w = hd.symarray("r", 2), hd.symarray("w", 2)
    loss = hd.log1p(hd.exp(-hd.dot(r, w)))
    data = np.random.default_rng(3).normal(size=(100_000, 2))
    weights = np.array([0.3, -0.2])
    results = []
    for threads in (1, 2):
        k = hd.lambdify([r, w], loss, derivatives="gradient", wrt=w, reduce="mean",
                        threads=threads)
        value, grad = np.full((), 7.0), np.full(2, 7.0)        # not zero: must be reset
        assert k(data, weights, out=(value, grad))[1] is grad
        fresh = k(data, weights)
        assert value[()] == fresh[0]
        np.testing.assert_array_equal(grad, fresh[1])
        results.append((value[()], grad.copy()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


# -- threads ---------------------------------------------------------------------------------
def test_threads_are_bit_identical_and_really_share_the_batch(monkeypatch):
    xs = hd.symarray("x", 3)
    f = hd.sum(hd.sin(xs) * hd.cosh(xs)) + hd.log(hd.abs(xs[0]) + 1.0)
    x = np.random.default_rng(1).normal(size=(300_001, 3))
    one = hd.lambdify([xs], f, derivatives="gradient", threads=1)(x)
    submitted = []
    real = threads_module.thread_pool

    class Counting:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, *args):
            submitted.append(1)
            return self.pool.submit(*args)

    monkeypatch.setattr(threads_module, "thread_pool", lambda n: Counting(real(n)))
    k = hd.lambdify([xs], f, derivatives="gradient", threads=2)
    for _ in range(3):
        values, grads = np.empty(len(x)), np.empty((len(x), 3))
        k(x, out=(values, grads))
        np.testing.assert_array_equal(values, one[0])
        np.testing.assert_array_equal(grads, one[1])
        fresh = k(x)
        np.testing.assert_array_equal(fresh[0], one[0])
        np.testing.assert_array_equal(fresh[1], one[1])
    assert submitted                                  # a second thread took pieces


NESTED = """
import numpy as np, hybridad as hd
from hybridad.backend.threads import thread_pool
x1, x2 = hd.symbols("x1 x2")
k = hd.lambdify([x1, x2], hd.log(x1) + x1 * x2 - hd.sin(x2), derivatives="gradient",
                threads=2)
x = np.random.default_rng(0).random((400_000, 2)) + 0.5
expected = k(x)[1]
pool = thread_pool(2)                 # every worker busy with a call that splits again
results = list(pool.map(lambda _: k(x)[1], range(2 * pool._max_workers)))
assert all(np.array_equal(r, expected) for r in results)
print("done")
"""


def test_a_threaded_call_from_inside_the_busy_pool_does_not_wait_for_itself():
    result = subprocess.run([sys.executable, "-c", NESTED], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "done" in result.stdout


def test_pieces_cover_the_rows_once():
    from hybridad.backend.threads import run_pieces, split_rows

    pieces = split_rows(0, 1003, 16)
    assert pieces[0][0] == 0 and pieces[-1][1] == 1003
    assert all(a[1] == b[0] for a, b in itertools.pairwise(pieces))
    seen = np.zeros(1003, dtype=int)

    def work(rows):
        seen[rows[0]:rows[1]] += 1

    run_pieces(pieces, work, 2)
    assert (seen == 1).all()
    assert split_rows(0, 0, 4) == [(0, 0)]


# -- errors ----------------------------------------------------------------------------------
def test_bad_out_names_what_was_expected_and_given():
    k = _seeds_kernel()
    value, grad = np.empty(()), np.empty(2)
    cases = [
        ((value,), r"must nest like the result: 2 items here, got tuple of 1"),
        (value, r"must nest like the result: 2 items here, got ndarray"),
        ((value, np.empty(3)), r"shape \(2,\) here, got ndarray float64 \(3,\)"),
        ((value, np.empty(2, np.float32)), r"got ndarray float32 \(2,\)"),
        ((value, np.empty(4)[::2]), r"got ndarray float64 \(2,\) not C-contiguous"),
        ((np.empty(1), grad), r"shape \(\) here, got ndarray float64 \(1,\)"),
        ((value, [0.0, 0.0]), r"float64 C-contiguous array of shape \(2,\) here, got list"),
        ((value, np.empty((2, 2))), r"got ndarray float64 \(2, 2\)"),
    ]
    read_only = np.empty(2)
    read_only.flags.writeable = False
    cases.append(((value, read_only), r"got ndarray float64 \(2,\) read-only"))
    for out, match in cases:
        with pytest.raises(ValueError, match=match):
            k(POINT, out=out)
    with pytest.raises(ValueError, match=r"shape \(3,\) here, got ndarray float64 \(\)"):
        k(np.ones((3, 2)), out=(value, grad))                       # a batch needs (3,)
    with pytest.raises(TypeError, match="unexpected keyword argument 'oot'"):
        k(POINT, oot=(value, grad))


BAD_OUT = """
import numpy as np, hybridad as hd
x1, x2 = hd.symbols("x1 x2")
f = hd.log(x1) + x1 * x2 - hd.sin(x2)
k = hd.lambdify([x1, x2], f, derivatives="gradient")
several = hd.lambdify([[x1], [x2]], f, derivatives="gradient")
x = np.array([2.0, 5.0])
v, g = np.empty(()), np.empty(2)
unaligned = np.frombuffer(bytearray(8 * 3 + 1), dtype=np.float64, offset=1, count=2)
read_only = np.empty(2); read_only.flags.writeable = False
bad = [3, "out", (v,), (v, g, g), [v], (g, v), (v, None), (v, object()),
       (v, np.empty(0)), (v, np.empty(3)), (v, np.empty((1, 2))), (v, np.empty(2, "f4")),
       (v, np.empty(2, ">f8")), (v, np.empty(4)[::2]), (v, unaligned), (v, read_only),
       (v, np.empty(2, dtype=object)), (v, np.empty(2, dtype=np.int64)), ((v,), g),
       (np.empty(()), (g,)), (v, memoryview(np.empty(2))), (v, np.ma.masked_array(g)),
       (np.empty(10**6), np.empty((10**6, 2)))]
refused = 0
for out in bad:
    for call in (k, k._native or k):
        try:
            call(x, out=out)
        except (TypeError, ValueError) as error:
            assert "out=" in str(error), error
            refused += 1
for out in [(v, (g,)), (v, (g, g, g)), (v, g), (v, (np.empty(1), np.empty(2)))]:
    try:
        several(np.array([2.0]), np.array([5.0]), out=out)
    except ValueError:
        refused += 1
try:
    k(x, out=(v, g), other=1)
except TypeError:
    refused += 1
k(x, **{"".join(["o", "ut"]): (v, g)})        # a keyword that is not the interned "out"
assert g[0] == 5.5, g
print("survived", refused)
"""


def test_bad_out_is_refused_in_a_subprocess_without_a_crash():
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(BAD_OUT)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    survived, refused = result.stdout.split()
    assert survived == "survived"
    # every bad out= but the masked array (an ndarray subclass, written in place) refused
    assert int(refused) == 2 * 22 + 4 + 1


@native_only
def test_one_data_offset_probe():
    assert pyentry.abi().data == engine.numpy_data_offset()
