"""Threads inside one call of a compiled tensor kernel: a parallel stage's fixed chunks
are shared between threads, so results are bit-identical to one thread's (np.array_equal,
not allclose) on every kind of stage: elementwise chains with transcendental functions
(sizes that are not multiples of the chunk alignment), long sums, reductions over kept
and over outer axes, BLAS calls, scatter_add, and a gradient through them."""

import threading

import numpy as np
import pytest

import hybridad as hd
from hybridad.backend import tensor_kernel
from hybridad.backend.tensor_kernel import PARALLEL_WORK, TensorKernel

N = 10**6 + 13          # not a multiple of 64, nor of the chunk size


def _identical(kernel, arrays, repeat=3):
    """threads=2 results equal threads=1 results bit for bit (over several calls, so a
    race would show)."""
    expected = kernel(*arrays, threads=1)
    for _ in range(repeat):
        got = kernel(*arrays, threads=2)
        for a, b in zip(got, expected):
            assert a.shape == b.shape
            assert np.array_equal(a, b, equal_nan=True)
    return expected


@pytest.fixture
def posts(monkeypatch):
    """Counts the jobs threaded calls post to their helper threads."""
    count = [0]
    real = tensor_kernel._Team.post

    def post(self, *args):
        count[0] += 1
        return real(self, *args)

    monkeypatch.setattr(tensor_kernel._Team, "post", post)
    return count


def test_elementwise_chain_with_math_functions(posts):
    x = hd.tensor("tt_chain_x", (N,))
    y = hd.exp(-x * x) * hd.log(1.0 + x * x) + hd.sin(3.0 * x) / (2.0 + hd.cos(x))
    kernel = TensorKernel([y, hd.sum(y), hd.max(y)], [x], threads=2)
    assert kernel.parallel_stages >= 2          # the loop and the long sum's blocks
    xv = np.random.default_rng(0).normal(size=N)
    values, total, largest = _identical(kernel, [xv])
    assert posts[0] > 0                         # threaded calls shared chunks
    reference = np.exp(-xv * xv) * np.log1p(xv * xv) + np.sin(3 * xv) / (2 + np.cos(xv))
    np.testing.assert_allclose(values, reference, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(total, reference.sum(), rtol=1e-11)
    assert largest == values.max()


def test_one_thread_posts_nothing_and_threads_per_call(posts):
    x = hd.tensor("tt_default_x", (N,))
    kernel = TensorKernel([hd.exp(x) + 1.0], [x], threads=2)
    assert kernel.threads == 2 and kernel.parallel_stages > 0
    xv = np.linspace(-1.0, 1.0, N)
    (one,) = kernel(xv, threads=1)
    assert posts[0] == 0
    (two,) = kernel(xv)
    assert posts[0] == 1 and np.array_equal(one, two)


def test_a_one_thread_kernel_has_no_chunked_stages(posts):
    # threads=1 compiles no chunk loops (faster to compile); a per-call threads=2 then
    # runs in the calling thread, with the same results as a threaded kernel
    x = hd.tensor("tt_default_x", (N,))
    single = TensorKernel([hd.exp(x) + 1.0], [x])
    assert single.threads == 1 and single.parallel_stages == 0
    xv = np.linspace(-1.0, 1.0, N)
    (two,) = single(xv, threads=2)
    assert posts[0] == 0
    (threaded,) = TensorKernel([hd.exp(x) + 1.0], [x], threads=2)(xv)
    assert np.array_equal(two, threaded)


def test_rosenbrock_gradient_through_lambdify_single_call(posts):
    x = hd.tensor("tt_rosen_x", (N,))
    f = hd.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    two = hd.lambdify([x], f, derivatives="gradient", threads=2)
    one = hd.lambdify([x], f, derivatives="gradient", threads=1)
    assert type(two).__name__ == "TensorLambdified" and two.kernel.threads == 2
    assert two.kernel.parallel_stages >= 3      # sum blocks, zeros, both scatters
    xv = np.random.default_rng(1).uniform(-2.0, 2.0, N)
    v1, g1 = one(xv)
    for _ in range(3):
        v2, g2 = two(xv)
        assert v1 == v2 and np.array_equal(g1, g2)
    assert posts[0] > 0
    lead, tail = xv[:-1], xv[1:]
    expected = np.zeros(N)
    expected[:-1] = -400.0 * lead * (tail - lead ** 2) - 2.0 * (1.0 - lead)
    expected[1:] += 200.0 * (tail - lead ** 2)
    np.testing.assert_allclose(g1, expected, rtol=1e-12, atol=1e-9)


def test_reduction_over_a_kept_axis_is_parallel_and_identical():
    X = hd.tensor("tt_rows_X", (3001, 333))
    exprs = [hd.sum(hd.exp(X) * X, axis=1), hd.max(hd.sin(X), axis=1),
             hd.logsumexp(X, axis=1)]
    kernel = TensorKernel(exprs, [X], threads=2)
    assert kernel.parallel_stages >= 3
    xv = np.random.default_rng(2).normal(size=(3001, 333))
    rows, largest, lse = _identical(kernel, [xv])
    np.testing.assert_allclose(rows, (np.exp(xv) * xv).sum(axis=1), rtol=1e-12)
    # vector math (libmvec) may differ from numpy's sin in the last bits
    np.testing.assert_allclose(largest, np.sin(xv).max(axis=1), rtol=1e-14)
    np.testing.assert_allclose(lse, np.log(np.exp(xv).sum(axis=1)), rtol=1e-13)


def test_column_sum_is_a_serial_stage():
    X = hd.tensor("tt_cols_X", (2000, 700))
    kernel = TensorKernel([hd.sum(X * X, axis=0)], [X], threads=2)
    big = [stage for stage in kernel.stages if stage[2] >= PARALLEL_WORK]
    assert big and not any(parallel for parallel, _, _ in big)   # the outer axis is summed
    assert kernel.parallel_stages == 0
    xv = np.random.default_rng(3).normal(size=(2000, 700))
    (columns,) = _identical(kernel, [xv], repeat=1)
    np.testing.assert_allclose(columns, (xv * xv).sum(axis=0), rtol=1e-12)


def test_column_sum_between_parallel_stages():
    X = hd.tensor("tt_mixed_X", (1500, 400))
    centered = X - hd.mean(X, axis=0)               # a serial stage, then parallel ones
    kernel = TensorKernel([hd.tanh(centered), hd.sum(centered ** 2, axis=1)], [X],
                          threads=2)
    assert kernel.parallel_stages >= 2
    assert any(not parallel and work >= PARALLEL_WORK for parallel, _, work in kernel.stages)
    xv = np.random.default_rng(4).normal(size=(1500, 400))
    squashed, spread = _identical(kernel, [xv])
    centered = xv - xv.mean(axis=0)
    np.testing.assert_allclose(squashed, np.tanh(centered), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(spread, (centered ** 2).sum(axis=1), rtol=1e-10)


def test_mlp_gradient_with_blas_calls():
    X, T = hd.tensor("tt_mlp_X", (512, 300)), hd.tensor("tt_mlp_T", (512, 10))
    W1, b1 = hd.tensor("tt_mlp_W1", (300, 256)), hd.tensor("tt_mlp_b1", (256,))
    W2 = hd.tensor("tt_mlp_W2", (256, 10))
    H = hd.relu(X @ W1 + b1)
    loss = hd.mean((H @ W2 - T) ** 2)
    args = [X, W1, b1, W2, T]
    two = hd.lambdify(args, loss, derivatives="gradient", wrt=[W1, b1, W2], threads=2,
                      scalarize=False)
    one = hd.lambdify(args, loss, derivatives="gradient", wrt=[W1, b1, W2], threads=1,
                      scalarize=False)
    assert two.kernel.parallel_stages >= 1
    rng = np.random.default_rng(5)
    values = [rng.normal(size=s.shape) * 0.1 for s in args]
    v1, grads1 = one(*values)
    for _ in range(3):
        v2, grads2 = two(*values)
        assert v1 == v2
        for a, b in zip(grads1, grads2):
            assert np.array_equal(a, b)
    x, w1, bias, w2, t = values
    h = np.maximum(x @ w1 + bias, 0.0)
    np.testing.assert_allclose(v1, np.mean((h @ w2 - t) ** 2), rtol=1e-12)
    np.testing.assert_allclose(grads1[2], h.T @ (2.0 * (h @ w2 - t) / t.size), rtol=1e-10,
                               atol=1e-14)


def test_scatter_add_along_and_across_the_indexed_axis():
    A = hd.tensor("tt_scatter_A", (600, 400))
    rows = np.random.default_rng(6).integers(0, 600, size=900)
    cols = np.random.default_rng(7).integers(0, 400, size=500)
    along = hd.gradient(hd.sum(hd.sin(hd.take(A, rows, axis=0)) ** 2), A)   # axis 0: serial
    across = hd.gradient(hd.sum(hd.take(A, cols, axis=1) ** 3), A)           # axis 1: rows
    kernel = TensorKernel([along, across], [A], threads=2)
    assert kernel.parallel_stages >= 1
    av = np.random.default_rng(8).normal(size=(600, 400))
    got_along, got_across = _identical(kernel, [av])
    expected = np.zeros((600, 400))
    np.add.at(expected, rows, np.sin(2.0 * av[rows]))
    np.testing.assert_allclose(got_along, expected, rtol=1e-12, atol=1e-12)
    expected = np.zeros((600, 400))
    np.add.at(expected, (slice(None), cols), 3.0 * av[:, cols] ** 2)
    np.testing.assert_allclose(got_across, expected, rtol=1e-12, atol=1e-12)


def test_small_batches_thread_each_call_and_large_batches_split_rows():
    x = hd.tensor("tt_batch_x", (200_000,))
    f = hd.sum(hd.exp(-x * x))
    two = hd.lambdify([x], f, derivatives="gradient", threads=2)
    one = hd.lambdify([x], f, derivatives="gradient", threads=1)
    xs = np.random.default_rng(9).normal(size=(3, 200_000))
    for a, b in zip(one(xs), two(xs)):
        assert np.array_equal(a, b)
    mean_one = hd.lambdify([x], f, derivatives="gradient", reduce="mean", threads=1)
    mean_two = hd.lambdify([x], f, derivatives="gradient", reduce="mean", threads=2)
    for a, b in zip(mean_one(xs), mean_two(xs)):
        assert np.array_equal(a, b)


def test_threads_must_be_a_positive_int():
    x = hd.tensor("tt_bad_x", (5,))
    with pytest.raises(ValueError, match="threads"):
        TensorKernel([x * 2.0], [x], threads=0)


def test_concurrent_threaded_calls_and_a_call_without_helpers(posts):
    x = hd.tensor("tt_concurrent_x", (300_000,))
    kernel = TensorKernel([hd.exp(hd.sin(x)) * x, hd.sum(hd.log1p(x * x))], [x], threads=2)
    xs = [np.random.default_rng(k).normal(size=300_000) for k in range(4)]
    expected = [kernel(v, threads=1) for v in xs]
    team = tensor_kernel._team()
    held = team.acquire(1)                 # every helper slot busy: the call runs alone
    try:
        alone = kernel(xs[0])
    finally:
        team.release(held)
    assert held and posts[0] == 0
    assert all(np.array_equal(a, b) for a, b in zip(alone, expected[0]))
    got: dict[int, list] = {}

    def calls(k: int) -> None:
        got[k] = [kernel(xs[k]) for _ in range(5)]

    workers = [threading.Thread(target=calls, args=(k,)) for k in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for k in range(4):
        for result in got[k]:
            assert all(np.array_equal(a, b) for a, b in zip(result, expected[k]))


def test_chunks_one_by_one_in_reverse_order_give_the_same_bits(monkeypatch):
    """Deterministically what a helper does: every chunk alone, last chunk first."""
    x = hd.tensor("tt_reverse_x", (N,))
    f = hd.sum(hd.tanh(x[1:]) * hd.exp(-x[:-1] ** 2))
    kernel = TensorKernel([f, hd.gradient(f, x)], [x], threads=2)
    xv = np.random.default_rng(10).normal(size=N)
    expected = kernel(xv, threads=1)

    def from_the_back(self, address, threads):
        sync = np.zeros(3 * len(self.stages), dtype=np.int64)
        tensor_kernel._team().work(self._plan_table.ctypes.data, address, sync.ctypes.data,
                                   0, len(self.stages), 1)

    monkeypatch.setattr(TensorKernel, "_run_stages", from_the_back)
    for a, b in zip(kernel(xv), expected):
        assert np.array_equal(a, b)
