"""Kernels and hybridad.func on dask arrays, in this process (dask's synchronous
scheduler): lazy results with the right chunks, shared arguments as one key, tree
reductions, errors, and what travels (payloads built once per process). The same calls
on a real cluster of worker processes are in test_dask_cluster.py."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

import hybridad as hd
from hybridad.backend import dask_arrays
from hybridad.func import grad, hessian, jacrev, jit, value_and_grad, vmap

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

X_ROW, W, Y = hd.symarray("dk_x", 3), hd.symarray("dk_w", 3), hd.symbols("dk_y")
Z = hd.dot(X_ROW, W)
LOSS = hd.log1p(hd.exp(-Z)) + (1 - Y) * Z              # logistic loss of one row
WEIGHTS = np.array([0.5, -0.25, 1.0])


def data(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, 3)), (rng.random(rows) < 0.5) * 1.0


def compute(tree):
    """A result tree with its dask arrays computed together (synchronously)."""
    leaves = dask_arrays._leaves(tree)
    return dask_arrays._refill(tree, dask.compute(*leaves, scheduler="sync"))


def assert_trees_close(got, expected, rtol=0.0):
    got_leaves, expected_leaves = dask_arrays._leaves(got), dask_arrays._leaves(expected)
    assert len(got_leaves) == len(expected_leaves)
    for g, e in zip(got_leaves, expected_leaves):
        assert np.shape(g) == np.shape(e)
        np.testing.assert_allclose(g, e, rtol=rtol, atol=0)


def test_hybridad_imports_and_runs_without_dask():
    code = ("import sys; sys.modules['dask'] = None\n"
            "import numpy as np, hybridad as hd\n"
            "from hybridad.backend import dask_arrays\n"
            "x = hd.symbols('x'); k = hd.lambdify([x], hd.sin(x))\n"
            "assert not dask_arrays.has_dask([np.ones(3)])\n"
            "print(round(float(k(np.array([0.5]))), 6), 'dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.split() == ["0.479426", "True"]     # True: the None placeholder above


def test_kernel_result_is_lazy_chunked_float64_and_equals_the_serial_call():
    X, y = data(10_000)
    kernel = hd.lambdify([X_ROW, W, Y], LOSS, derivatives="gradient", wrt=W)
    values, grads = kernel(da.from_array(X, chunks=(3_000, 3)), WEIGHTS,
                           da.from_array(y, chunks=3_000))
    assert isinstance(values, da.Array) and isinstance(grads, da.Array)
    assert values.chunks == ((3_000, 3_000, 3_000, 1_000),)
    assert grads.chunks == ((3_000, 3_000, 3_000, 1_000), (3,))
    assert values.dtype == grads.dtype == np.float64
    assert_trees_close(compute((values, grads)), kernel(X, WEIGHTS, y))


def test_dask_never_calls_the_kernel_to_guess_shapes_and_passes_blocks_uncopied(
        monkeypatch):
    calls = []
    real = dask_arrays._chunk_kernel
    X = da.from_array(data(1_000)[0], chunks=(400, 3))
    graph = X.__dask_graph__()
    stored = [getattr(graph[key], "value", graph[key]) for key in graph]  # X's chunks

    def counting(*args):
        block = dask_arrays._unwrap(args[2:])[0]
        calls.append((block.shape, any(np.shares_memory(block, c) for c in stored)))
        return real(*args)

    monkeypatch.setattr(dask_arrays, "_chunk_kernel", counting)
    kernel = hd.lambdify([X_ROW, W], Z, derivatives="gradient", wrt=W)
    lazy = kernel(X, WEIGHTS)
    assert calls == []                                   # building the graph ran nothing
    compute(lazy)
    # one call per chunk, of its real rows, reading the chunk's own memory (no copy)
    assert sorted(calls) == [((200, 3), True), ((400, 3), True), ((400, 3), True)]


def test_shared_arguments_are_one_key_read_by_every_chunk():
    X, _ = data(1_000)
    shared = da.from_array(WEIGHTS, chunks=3, name="dk-shared-weights")
    kernel = hd.lambdify([X_ROW, W], Z)
    lazy = kernel(da.from_array(X, chunks=(100, 3)), shared)
    graph = dict(lazy.__dask_graph__())
    assert [k for k in graph if k[0] == "dk-shared-weights"] == [("dk-shared-weights", 0)]
    chunk_tasks = [task for key, task in graph.items() if key[0].startswith("hybridad_kernel-")]
    assert len(chunk_tasks) == 10
    assert all(("dk-shared-weights", 0) in task.dependencies for task in chunk_tasks)
    np.testing.assert_array_equal(compute(lazy), kernel(X, WEIGHTS))


def test_a_scalar_group_and_a_numpy_batch_next_to_a_dask_batch():
    X, y = data(2_000)
    b = hd.symbols("dk_b")
    kernel = hd.lambdify([X_ROW, W, b, Y], LOSS + b, derivatives="gradient", wrt=(W, b))
    lazy = kernel(da.from_array(X, chunks=(512, 3)), WEIGHTS, 0.3, y)   # y: numpy
    assert lazy[0].chunks == ((512, 512, 512, 464),)
    assert lazy[1][1].chunks == lazy[0].chunks
    assert_trees_close(compute(lazy), kernel(X, WEIGHTS, 0.3, y))


def test_chunked_non_batch_dimensions_are_rechunked():
    X, _ = data(1_000)
    kernel = hd.lambdify([X_ROW, W], Z, derivatives="gradient", wrt=W)
    X_split = da.from_array(X, chunks=(250, 1))                # columns in 3 chunks
    values, grads = kernel(X_split, da.from_array(WEIGHTS, chunks=1))
    assert grads.chunks == ((250,) * 4, (3,))
    assert_trees_close(compute((values, grads)), kernel(X, WEIGHTS))


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_reduce_is_a_tree_of_chunk_partials(reduce):
    X, y = data(50_000, seed=1)
    kernel = hd.lambdify([X_ROW, W, Y], LOSS, derivatives="gradient", wrt=W, reduce=reduce)
    lazy = kernel(da.from_array(X, chunks=(2_000, 3)), WEIGHTS, da.from_array(y, 2_000))
    assert lazy[0].shape == () and lazy[1].shape == (3,) and lazy[1].chunks == ((3,),)
    layers = set(lazy[1].__dask_graph__().layers)
    assert any(name.startswith("hybridad_partials") for name in layers)
    assert any(name.startswith("hybridad_tree_sum-partial") for name in layers)  # a tree
    assert_trees_close(compute(lazy), kernel(X, WEIGHTS, y), rtol=1e-13)


def test_reduce_mean_of_no_rows_is_nan_as_in_process():
    kernel = hd.lambdify([X_ROW, W], Z, derivatives="gradient", wrt=W, reduce="mean")
    value, grads = compute(kernel(da.zeros((0, 3), chunks=(5, 3)), WEIGHTS))
    assert np.isnan(value) and np.isnan(grads).all()


def test_every_derivative_kind_and_several_groups():
    X, _ = data(600)
    Xd = da.from_array(X, chunks=(250, 3))
    for kind, extra in ((None, ()), ("jacobian", ()), ("hessian", ()),
                        ("jvp", (np.array([1.0, 0.0, 2.0]),)), ("vjp", (np.ones(2),))):
        exprs = [hd.sin(Z), Z * Z] if kind in (None, "jacobian", "vjp") else hd.sin(Z)
        kernel = hd.lambdify([X_ROW, W], exprs, derivatives=kind, wrt=W)
        assert_trees_close(compute(kernel(Xd, WEIGHTS, *extra)), kernel(X, WEIGHTS, *extra))
    both = hd.lambdify([X_ROW, W], Z * Z, derivatives="gradient")      # (value, (gx, gw))
    assert_trees_close(compute(both(Xd, WEIGHTS)), both(X, WEIGHTS))


def test_a_kernel_called_through_its_native_entry_stays_lazy():
    # the compiled builtin entry hands anything but an exact ndarray to the Python path
    # untouched, so a dask array is never converted (which would compute it)
    kernel = hd.lambdify([X_ROW, W], hd.sin(Z), derivatives="gradient", wrt=W)
    assert kernel._native is not None and type(kernel).__call__ is kernel._native
    point = np.array([1.0, 2.0, 3.0])
    lazy = kernel(da.from_array(point, chunks=1), WEIGHTS)
    assert all(isinstance(a, da.Array) and a.npartitions == 1 for a in lazy)
    assert_trees_close(compute(lazy), kernel(point, WEIGHTS))


def test_no_batch_is_one_task_and_reduce_keeps_the_point():
    kernel = hd.lambdify([X_ROW, W], Z, derivatives="gradient", wrt=W, reduce="sum")
    point = np.array([1.0, 2.0, 3.0])
    lazy = kernel(da.from_array(point, chunks=1), WEIGHTS)
    assert_trees_close(compute(lazy), kernel(point, WEIGHTS))


def test_clear_errors():
    kernel = hd.lambdify([X_ROW, W], Z)
    X = da.zeros((10, 3), chunks=5)
    with pytest.raises(ValueError, match=r"argument 0 must have shape \(3,\) or "
                                         r"\(batch, 3\), got \(10, 4\)"):
        kernel(da.zeros((10, 4), chunks=5), WEIGHTS)
    with pytest.raises(ValueError, match="different batch sizes 10 and 8"):
        hd.lambdify([X_ROW, W, Y], LOSS)(X, WEIGHTS, da.zeros(8, chunks=4))
    with pytest.raises(TypeError, match=r"takes 2 argument\(s\) \(\(3,\), \(3,\)\), got 1"):
        kernel(X)
    with pytest.raises(TypeError, match="out= cannot take results computed on dask"):
        kernel(X, WEIGHTS, out=np.empty(10))
    with pytest.raises(TypeError, match="must be a real numeric array, got dtype"):
        kernel(da.from_array(np.array([["a"] * 3] * 2)), WEIGHTS)


def test_tensor_loop_kernels_on_dask_arrays():
    A, v = hd.tensor("dk_A", (4, 3)), hd.tensor("dk_v", (3,))
    loss = hd.sum(hd.tanh(A @ v) ** 2)
    batch = np.random.default_rng(2).normal(size=(300, 4, 3))
    for reduce in (None, "mean"):
        kernel = hd.lambdify([A, v], loss, "gradient", wrt=[v], reduce=reduce,
                             scalarize=False)
        assert type(kernel).__name__ == "TensorLambdified"
        lazy = kernel(da.from_array(batch, chunks=(70, 2, 3)), WEIGHTS)
        if reduce is None:
            assert lazy[1].chunks == ((70, 70, 70, 70, 20), (3,))
        assert_trees_close(compute(lazy), kernel(batch, WEIGHTS), rtol=1e-13)
    with pytest.raises(ValueError, match="reduce= needs a batch"):
        kernel(da.from_array(batch[0]), WEIGHTS)


# -- hybridad.func ------------------------------------------------------------------------
def row_loss(w, x, y):
    z = hd.dot(x, w)
    return hd.log1p(hd.exp(-z)) + (1 - y) * z


def test_vmap_maps_chunks_of_rows():
    X, y = data(5_000)
    per_row = vmap(value_and_grad(row_loss), in_axes=(None, 0, 0))
    lazy = per_row(WEIGHTS, da.from_array(X, chunks=(1_200, 3)), da.from_array(y, 1_200))
    assert lazy[0].chunks == ((1_200,) * 4 + (200,),)
    assert lazy[1].chunks == ((1_200,) * 4 + (200,), (3,))
    assert_trees_close(compute(lazy), per_row(WEIGHTS, X, y))
    mean_grad = lazy[1].mean(axis=0)                       # dask's own tree reduction
    np.testing.assert_allclose(mean_grad.compute(scheduler="sync"),
                               per_row(WEIGHTS, X, y)[1].mean(axis=0), rtol=1e-12)


def test_vmap_with_tuple_outputs_and_mapped_keywords():
    X, y = data(1_000)

    def f(x, w, *, scale):
        return hd.tanh(x * w) * scale, hd.dot(x, w)

    mapped = vmap(f, in_axes=(0, None))
    lazy = mapped(da.from_array(X, chunks=(300, 3)), WEIGHTS,
                  scale=da.from_array(y, chunks=300))
    assert isinstance(lazy, tuple) and lazy[0].chunks == ((300, 300, 300, 100), (3,))
    assert_trees_close(compute(lazy), mapped(X, WEIGHTS, scale=y))


def test_whole_array_transforms_are_one_task():
    x = np.linspace(-1.0, 2.0, 12)
    xd = da.from_array(x, chunks=5)

    def f(v):
        return hd.sum(hd.sin(v) ** 3)

    for transformed in (jit(f), grad(f), value_and_grad(f), jacrev(lambda v: hd.sin(v) * v),
                        hessian(f), jit(lambda v: (v * 2, hd.sum(v)))):
        lazy = transformed(xd)
        leaves = dask_arrays._leaves(lazy)
        assert all(isinstance(a, da.Array) and a.npartitions == 1 for a in leaves)
        assert_trees_close(compute(lazy), transformed(x), rtol=1e-15)
    two = value_and_grad(lambda a, b: hd.sum(a * hd.exp(b)), argnums=(0, 1))
    assert_trees_close(compute(two(xd, x)), two(x, x))
    with pytest.raises(TypeError, match="grad requires a scalar output"):
        grad(lambda v: v * 2)(xd)


# -- what travels ---------------------------------------------------------------------------
def test_a_portable_builds_once_per_process_and_never_on_unpickling():
    kernel = hd.lambdify([X_ROW, W], hd.cos(Z))
    portable = dask_arrays.Portable("dk-test-token", pickle.dumps(kernel))
    before = dask_arrays.process_stats()["builds"]
    copy = pickle.loads(pickle.dumps(portable))          # as the scheduler receives it
    assert dask_arrays.process_stats()["builds"] == before
    first = copy.get()
    assert dask_arrays.process_stats()["builds"] == before + 1
    assert pickle.loads(pickle.dumps(portable)).get() is first
    assert dask_arrays.process_stats()["builds"] == before + 1
    assert "dk-test-token" in dask_arrays.process_stats()["tokens"]
    np.testing.assert_array_equal(first(np.ones((2, 3)), WEIGHTS),
                                  kernel(np.ones((2, 3)), WEIGHTS))


def test_portables_hold_expressions_not_machine_code():
    kernel = hd.lambdify([X_ROW, W, Y], LOSS, derivatives="gradient", wrt=W)
    portable = dask_arrays.portable_kernel(kernel)
    assert portable is dask_arrays.portable_kernel(kernel)            # made once
    assert len(portable.payload) < 5_000 and b"ELF" not in portable.payload
    assert b"dk_w_0" in portable.payload                              # symbol names
    # the in-process object stands for its own payload: no second build here
    assert portable.get() is kernel


def test_unpickling_a_kernel_again_finds_the_one_built():
    kernel = hd.lambdify([X_ROW, W, Y], LOSS, derivatives="gradient", wrt=W, reduce="sum")
    data_ = pickle.dumps(kernel)
    first, second = pickle.loads(data_), pickle.loads(data_)
    assert first is second                                  # lambdify's cache answered
    X, y = data(10)
    assert_trees_close(first(X, WEIGHTS, y), kernel(X, WEIGHTS, y))


def test_a_transform_travels_as_its_spec_and_is_rebuilt():
    # what a worker does with a hybridad.func function's payload: unpickle the factory
    # (the user's function and the transform's options) and call it once
    import pickle

    from hybridad.func import value_and_grad, vmap
    from hybridad.func.dask_calls import portable_transform

    f = vmap(value_and_grad(lambda x: hd.sum(hd.sin(x) * x)))
    rebuilt = dask_arrays._build(pickle.loads(portable_transform(f).payload))
    x = np.random.default_rng(3).uniform(size=(5, 3))
    (value, gradient), (value2, gradient2) = f(x), rebuilt(x)
    assert rebuilt is not f
    assert np.array_equal(value, value2) and np.array_equal(gradient, gradient2)
