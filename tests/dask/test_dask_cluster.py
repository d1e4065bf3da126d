"""Kernels on a real dask.distributed cluster: two worker processes (one thread each).

Results equal the serial kernel's, the chunk tasks ran in the workers' processes, a
``reduce=`` kernel's tree of chunk partials equals the in-process reduction at 10⁶ rows,
each worker compiles a kernel once however many computations use it, and a worker
killed in the middle of a computation loses nothing (dask runs its tasks again)."""

import collections
import os
import signal
import time

import numpy as np
import pytest

import hybridad as hd
from hybridad.backend import dask_arrays
from hybridad.func import value_and_grad, vmap

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

X_ROW, W, Y = hd.symarray("dc_x", 3), hd.symarray("dc_w", 3), hd.symbols("dc_y")
Z = hd.dot(X_ROW, W)
LOSS = hd.log1p(hd.exp(-Z)) + (1 - Y) * Z
WEIGHTS = np.array([0.5, -0.25, 1.0])


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()


def random_rows(rows: int, chunk: int, seed: int):
    """Rows made by the workers (the data never passes through the client)."""
    rng = da.random.default_rng(seed)
    X = rng.normal(size=(rows, 3), chunks=(chunk, 3))
    y = (rng.random(rows, chunks=chunk) < 0.5).astype(np.float64)
    return X, y


def worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def test_results_equal_the_serial_kernel_and_ran_in_worker_processes(client):
    X, y = random_rows(200_000, 20_000, seed=1)
    kernel = hd.lambdify([X_ROW, W, Y], LOSS, derivatives="gradient", wrt=W)
    with distributed.get_task_stream(client) as stream:
        values, grads = client.compute(kernel(X, WEIGHTS, y), sync=True)
    X_np, y_np = client.compute([X, y], sync=True)
    serial = kernel(X_np, WEIGHTS, y_np)
    np.testing.assert_array_equal(values, serial[0])
    np.testing.assert_array_equal(grads, serial[1])
    pids = worker_pids(client)
    ran = {pids[t["worker"]] for t in stream.data if "hybridad_kernel" in str(t["key"])}
    assert len(ran) == 2 and os.getpid() not in ran            # both workers, not here


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_reduce_at_a_million_rows_equals_the_in_process_reduction(client, reduce):
    X, y = random_rows(1_000_000, 62_500, seed=2)              # 16 chunks
    kernel = hd.lambdify([X_ROW, W, Y], LOSS, derivatives="gradient", wrt=W, reduce=reduce)
    value, grad = client.compute(kernel(X, WEIGHTS, y), sync=True)
    X_np, y_np = client.compute([X, y], sync=True)
    expected_value, expected_grad = kernel(X_np, WEIGHTS, y_np)
    assert value == pytest.approx(expected_value, rel=1e-13, abs=0)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-12, atol=0)


def test_vmap_and_value_and_grad_on_the_cluster(client):
    X, y = random_rows(100_000, 12_500, seed=3)
    per_row = vmap(value_and_grad(lambda w, x, t: hd.log1p(hd.exp(-hd.dot(x, w)))
                                  + (1 - t) * hd.dot(x, w)), in_axes=(None, 0, 0))
    values, grads = client.compute(per_row(WEIGHTS, X, y), sync=True)
    X_np, y_np = client.compute([X, y], sync=True)
    serial = per_row(WEIGHTS, X_np, y_np)
    np.testing.assert_array_equal(values, serial[0])
    np.testing.assert_array_equal(grads, serial[1])


def test_each_worker_compiles_a_kernel_once(client):
    kernel = hd.lambdify([X_ROW, W, Y], hd.sin(LOSS) * 0.5, derivatives="gradient", wrt=W,
                         reduce="mean")
    token = dask_arrays.portable_kernel(dask_arrays._kernel_layout(kernel)[3]()).token
    before = client.run(dask_arrays.process_stats)
    X, y = random_rows(400_000, 25_000, seed=4)
    for weights in (WEIGHTS, 2 * WEIGHTS):                     # two computations
        client.compute(kernel(X, weights, y), sync=True)
    after = client.run(dask_arrays.process_stats)
    for worker in after:
        assert after[worker]["builds"] - before[worker]["builds"] == 1, worker
        assert token in after[worker]["tokens"]
        assert after[worker]["pid"] != os.getpid()


def slow_copy(block: np.ndarray, seconds: float) -> np.ndarray:
    time.sleep(seconds)
    return block


def held_outputs(client, address: str) -> list[str]:
    """The kernel's output chunks that only ``address`` holds (nothing else needs them)."""
    return [str(key) for key in client.has_what().get(address, ())
            if "hybridad_kernel_" in str(key)]


def test_a_worker_killed_mid_computation_loses_no_results(client):
    X, y = random_rows(160_000, 10_000, seed=5)                 # 16 chunks, 0.3 s each
    slow = X.map_blocks(slow_copy, 0.3, dtype=np.float64, meta=np.empty((0, 0)))
    kernel = hd.lambdify([X_ROW, W, Y], LOSS, derivatives="gradient", wrt=W)
    victim_address, victim_pid = min(worker_pids(client).items())
    with distributed.get_task_stream(client) as stream:
        values, grads = client.persist(list(kernel(slow, WEIGHTS, y)))  # chunks kept
        chunks = distributed.futures_of([values, grads])
        lost, deadline = [], time.time() + 30
        while not lost and time.time() < deadline:
            time.sleep(0.02)
            lost = held_outputs(client, victim_address)
        assert lost and not all(f.done() for f in chunks)     # mid-computation
        os.kill(victim_pid, signal.SIGKILL)
        values, grads = client.compute([values, grads], sync=True)
    X_np, y_np = client.compute([X, y], sync=True)
    serial = kernel(X_np, WEIGHTS, y_np)
    np.testing.assert_array_equal(values, serial[0])
    np.testing.assert_array_equal(grads, serial[1])
    runs = collections.Counter(str(t["key"]) for t in stream.data)
    assert all(runs[key] >= 2 for key in lost)      # computed again on the other worker
    client.wait_for_workers(2, timeout=60)                     # the nanny restarted it
    assert victim_pid not in worker_pids(client).values()
