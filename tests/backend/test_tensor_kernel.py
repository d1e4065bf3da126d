"""Compiled tensor kernels (loop nests, BLAS contractions) against numpy evaluation of
the same DAG: every lowering on random shapes (empty and size-1 dimensions, views,
special values), random programs with their gradients, BLAS == loops, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybridad as hd
from hybridad.backend.tensor_kernel import NotLowerable, TensorKernel, lowerable

A = hd.tensor("tk_A", (3, 4))
B = hd.tensor("tk_B", (4, 5))
v = hd.tensor("tk_v", (4,))
E = hd.tensor("tk_E", (0, 4))
ALL = [A, B, v, E]

CASES = {
    "elementwise chain": lambda: hd.sin(A) * 2.0 + hd.exp(-A * A) / (1.0 + A ** 2),
    "broadcast row": lambda: A * v + 1.0,
    "broadcast column": lambda: A - hd.sum(A, axis=1, keepdims=True),
    "transpose": lambda: A.T * 3.0,
    "transpose output": lambda: B.T,
    "slices with steps": lambda: A[::2, 1::2] - A[:, ::-1][1:, :2],
    "index and None": lambda: A[1, None, :] * A[None, 2],
    "reshape": lambda: hd.reshape(A, (2, 6)) * 2.0,
    "reshape of a view": lambda: hd.reshape(A.T, (12,)),
    "sum all": lambda: hd.sum(hd.tanh(A)),
    "sum axis 0": lambda: hd.sum(A * A, axis=0),
    "sum axis 1": lambda: hd.sum(A, axis=1),
    "mean": lambda: hd.mean(A),
    "max axis 1": lambda: hd.max(A, axis=1),
    "min all": lambda: hd.min(A),
    "logsumexp": lambda: hd.logsumexp(A, axis=1),
    "softmax": lambda: hd.softmax(A, axis=-1),
    "matmul": lambda: A @ B,
    "matmul transposed": lambda: B.T @ A.T,
    "matrix vector": lambda: A @ v,
    "vector matrix": lambda: v @ B,
    "dot": lambda: v @ v,
    "matmul of expressions": lambda: hd.relu(A @ B + 1.0) @ B.T,
    "concatenate": lambda: hd.concatenate([A, A[:, :2] * 2.0], axis=1),
    "take (gather)": lambda: hd.take(A, [2, 0, 0, 1], axis=0) * 2.0,
    "take along an inner axis": lambda: hd.take(A, [[3, 1], [1, 0]], axis=1),
    "integer-array indexing": lambda: v[[3, 3, 0]] + hd.sum(A[[1], :][:, [0, 2, 2]]),
    "scatter_add (gradient of a gather)": lambda: hd.gradient(
        hd.sum(hd.take(A, [[3, 1], [1, 1]], axis=1) ** 2), A),
    "einsum contraction": lambda: hd.einsum("ij,jk->ik", A, B),
    "einsum three operands": lambda: hd.einsum("ij,j,jk->ki", A, v, B),
    "einsum outer and sum": lambda: hd.einsum("ij,k->ikj", A, v) + hd.einsum("ij->", A),
    "einsum of views": lambda: hd.einsum("ji,jk->ik", A.T[:, ::-1], B[::-1]),
    "stack": lambda: hd.stack([v, v * 2.0]),
    "where": lambda: hd.where(A > 0, A, 0.1 * A),
    "scatter (gradient of a slice)": lambda: hd.gradient(hd.sum(A[1:, ::2] ** 2), A),
    "sum of scatters": lambda: hd.gradient(hd.sum(v[1:] ** 2) + hd.sum(hd.sin(v[:-2])), v),
    "sum of scatters, used": lambda: (hd.gradient(hd.sum(v[1:] ** 2), v)
                                      + hd.gradient(hd.sum(v[::2] ** 3), v) + v) * v,
    "empty": lambda: hd.exp(E) * 2.0,
    "sum of empty": lambda: hd.sum(E, axis=0),
    "input as output": lambda: A,
    "constant output": lambda: hd.constant(np.arange(3.0)),
}


def values(rng):
    return [rng.normal(size=s.shape) for s in ALL]


def reference(expr, arrays):
    return hd.evaluate(expr, dict(zip(ALL, arrays)))


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_lowering_matches_numpy(name):
    expr = CASES[name]()
    kernel = TensorKernel([expr], ALL)
    rng = np.random.default_rng(len(name))
    arrays = values(rng)
    (got,) = kernel(*arrays)
    assert got.shape == expr.shape
    np.testing.assert_allclose(got, reference(expr, arrays), rtol=1e-13, atol=1e-13)


def test_non_contiguous_and_negative_stride_inputs_are_converted():
    kernel = TensorKernel([A @ B, hd.sum(A, axis=0)], ALL)
    rng = np.random.default_rng(0)
    big = rng.normal(size=(6, 8))
    a = big[::2, ::-2]                        # negative strides, not contiguous
    b = np.asfortranarray(rng.normal(size=(4, 5)))
    got = kernel(a, b, np.ones(4), np.zeros((0, 4)))
    np.testing.assert_allclose(got[0], a @ b, rtol=1e-13)
    np.testing.assert_allclose(got[1], a.sum(axis=0), rtol=1e-13)


def test_special_values_propagate_as_numpy():
    expr = [hd.max(A, axis=1), hd.sum(A, axis=0), hd.relu(A), hd.exp(A)]
    kernel = TensorKernel(expr, ALL)
    a = np.array([[np.nan, 1.0, 2.0, 3.0], [np.inf, -np.inf, 0.0, 1.0],
                  [-0.0, 1e308, 1e308, -1.0]])
    arrays = [a, np.ones((4, 5)), np.ones(4), np.zeros((0, 4))]
    with np.errstate(all="ignore"):
        for got, e in zip(kernel(*arrays), expr):
            np.testing.assert_array_equal(got, reference(e, arrays))


def test_blas_and_loop_contractions_agree():
    X, W = hd.tensor("tk_bl_X", (40, 70)), hd.tensor("tk_bl_W", (70, 30))
    exprs = [X @ W, W.T @ X.T, (X @ W).T @ X, hd.sum(X @ W, axis=0),
             X @ W[:, 0], W[:, 3] @ X.T, X[:, ::2] @ W[::2, 1], X[0] @ W,   # dgemv
             W.T[::2] @ X[1], X @ W[::-1, 2], X[::-1] @ W[:, 4]]
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(40, 70)), rng.normal(size=(70, 30))
    with_blas = TensorKernel(exprs, [X, W])(x, w)
    loops = TensorKernel(exprs, [X, W], blas=False)(x, w)
    for a, b, e in zip(with_blas, loops, exprs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a, hd.evaluate(e, {X: x, W: w}), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 255, 257, 65537, 10**6])
def test_sums_are_as_accurate_as_numpys_pairwise_summation(n):
    x = hd.tensor(f"tk_big_x{n}", (n,))
    kernel = TensorKernel([hd.sum(x), hd.mean(x * x), hd.max(x)], [x])
    values = np.random.default_rng(n).uniform(0.0, 1.0, n) + 1e4
    total, mean_square, largest = kernel(values)
    exact = float(np.sum(values.astype(np.longdouble)))
    numpy_error = abs(float(np.sum(values)) - exact)
    assert abs(total - exact) <= 8 * max(numpy_error, np.finfo(float).eps * exact)
    np.testing.assert_allclose(mean_square, np.mean(values * values), rtol=1e-14)
    assert largest == values.max()


def test_out_writes_in_place_and_checks_shapes():
    kernel = TensorKernel([A @ B, hd.sum(A)], ALL)
    rng = np.random.default_rng(4)
    arrays = values(rng)
    product, total = np.empty((3, 5)), np.empty(())
    got = kernel(*arrays, out=(product, total))
    assert got[0] is product and got[1] is total
    np.testing.assert_allclose(product, arrays[0] @ arrays[1], rtol=1e-13)
    with pytest.raises(hd.ShapeError, match=r"shape \(3, 5\)"):
        kernel(*arrays, out=(np.empty((5, 3)), total))


def test_bad_arguments_name_expected_and_given_shapes():
    kernel = TensorKernel([A @ B], ALL)
    with pytest.raises(hd.ShapeError, match=r"tk_A must have shape \(3, 4\), got \(4, 3\)"):
        kernel(np.ones((4, 3)), np.ones((4, 5)), np.ones(4), np.zeros((0, 4)))
    with pytest.raises(TypeError, match="expected 4 arguments"):
        kernel(np.ones((3, 4)))


def test_operations_without_a_loop_lowering_are_reported():
    softplus = hd.primitive("tk_softplus", lambda x: np.logaddexp(0.0, x),
                            partials=(lambda x, out: hd.sigmoid(x),))
    assert not lowerable([softplus(A)], ALL)
    with pytest.raises(NotLowerable, match="tk_softplus"):
        TensorKernel([softplus(A)], ALL)


def test_custom_rules_lower_to_their_primal():
    @hd.custom_jvp
    def twice(x):
        return 2.0 * x

    twice.defjvp(lambda p, t: (twice(p[0]), 2.0 * t[0]))
    arrays = values(np.random.default_rng(2))
    (got,) = TensorKernel([twice(A) + 1.0], ALL)(*arrays)
    np.testing.assert_array_equal(got, 2.0 * arrays[0] + 1.0)


UNARY = [hd.sin, hd.tanh, lambda u: hd.exp(0.3 * u), lambda u: u * u, hd.sigmoid, hd.relu]
STRUCTURAL = [
    lambda u: u @ B[:, :4].T if u.shape == (3, 4) else u,
    lambda u: hd.broadcast_to(hd.sum(u, axis=0), u.shape),
    lambda u: hd.broadcast_to(hd.max(u, axis=1, keepdims=True), u.shape),
    lambda u: hd.reshape(hd.reshape(u, (12,))[::-1], u.shape),
    lambda u: hd.concatenate([u[:, 2:], u[:, :2]], axis=1),
    lambda u: hd.softmax(u, axis=1),
    lambda u: u.T.reshape(u.shape),
]


@st.composite
def programs(draw):
    nodes = [A, A * 0.5 + 0.25]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["unary", "binary", "structural"]))
        a = draw(st.sampled_from(nodes))
        if kind == "unary":
            nodes.append(draw(st.sampled_from(UNARY))(a))
        elif kind == "binary":
            c = draw(st.sampled_from(nodes))
            nodes.append(a + c if draw(st.booleans()) else a * c)
        else:
            nodes.append(draw(st.sampled_from(STRUCTURAL))(a))
    weights = np.linspace(-1, 1, 12).reshape(3, 4)
    return hd.sum(hd.tanh(nodes[-1]) * weights)


@settings(max_examples=25, deadline=None)
@given(programs(), st.integers(0, 2 ** 31 - 1))
def test_random_programs_kernel_equals_tape_and_evaluate(loss, seed):
    from hybridad.tape import TensorTape

    exprs = [loss, hd.gradient(loss, A)]
    rng = np.random.default_rng(seed)
    arrays = values(rng)
    got = TensorKernel(exprs, ALL)(*arrays)
    taped = TensorTape(exprs, ALL).evaluate(*arrays)
    for g, t, e in zip(got, taped, exprs):
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, reference(e, arrays), rtol=1e-12, atol=1e-12)


def test_func_runs_large_traces_on_a_compiled_tensor_kernel():
    from hybridad.func import grad, value_and_grad, vmap

    def rosenbrock(x):
        return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    x = np.linspace(-1.0, 1.0, 50_000)               # above the element-level limit
    compiled, taped = value_and_grad(rosenbrock), value_and_grad(rosenbrock, backend="tape")
    value, gradient = compiled(x)
    value_t, gradient_t = taped(x)
    assert value == pytest.approx(value_t, rel=1e-13)
    np.testing.assert_allclose(gradient, gradient_t, rtol=1e-13, atol=1e-9)
    traced = next(iter(compiled.cache.traces.values()))
    assert not traced.element_level
    runners = [r for key, r in traced._kernels.items() if key[0] == "tensor"]
    assert runners and all(isinstance(r.kernel, TensorKernel) for r in runners)
    # a batch (a leading axis) runs on the tensor tape, with the same numbers
    rows = np.stack([x, x[::-1]])
    np.testing.assert_allclose(vmap(grad(rosenbrock))(rows)[1], taped(x[::-1])[1],
                               rtol=1e-13, atol=1e-9)


# -- hd.lambdify over tensor symbols: loops (scalarize=False) against the unrolled kernel ---
X = hd.tensor("tl_X", (5, 4))
W = hd.tensor("tl_W", (4, 3))
c = hd.tensor("tl_c", (3,))
LOSS = hd.mean(hd.tanh(X @ W + c) ** 2)


def layer_values(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)


@pytest.mark.parametrize("derivatives, wrt", [(None, None), ("gradient", None),
                                              ("gradient", [W, c]), ("gradient", W),
                                              ("hessian", c), ("jacobian", W)])
def test_lambdify_loops_equal_the_unrolled_kernel(derivatives, wrt):
    exprs = hd.tanh(X @ W + c) if derivatives == "jacobian" else LOSS
    loops = hd.lambdify([X, W, c], exprs, derivatives, wrt=wrt, scalarize=False)
    unrolled = hd.lambdify([X, W, c], exprs, derivatives, wrt=wrt, scalarize=True)
    assert type(loops).__name__ == "TensorLambdified"
    got, expected = loops(*layer_values()), unrolled(*layer_values())
    assert type(got) is type(expected)
    flat_got, flat_expected = _leaves(got), _leaves(expected)
    assert len(flat_got) == len(flat_expected)
    for a, b in zip(flat_got, flat_expected):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _leaves(result):
    if isinstance(result, tuple):
        return [x for item in result for x in _leaves(item)]
    return [result]


def test_lambdify_loops_batches_reduce_and_out():
    kernel = hd.lambdify([X, W, c], LOSS, "gradient", wrt=[W, c], scalarize=False)
    x, w, b = layer_values()
    rows = np.stack([x, 2 * x, -x])
    values, (gw, gb) = kernel(rows, w, b)
    assert values.shape == (3,) and gw.shape == (3, 4, 3) and gb.shape == (3, 3)
    for r in range(3):
        v, (gw_r, gb_r) = kernel(rows[r], w, b)
        assert values[r] == v
        np.testing.assert_array_equal(gw[r], gw_r)
    mean = hd.lambdify([X, W, c], LOSS, "gradient", wrt=[W, c], reduce="mean",
                       scalarize=False)
    v_mean, (gw_mean, _) = mean(rows, w, b)
    assert v_mean == pytest.approx(values.mean(), rel=1e-14)
    np.testing.assert_allclose(gw_mean, gw.mean(axis=0), rtol=1e-13)
    value_out, gw_out, gb_out = np.empty(()), np.empty((4, 3)), np.empty(3)
    kernel(x, w, b, out=(value_out, (gw_out, gb_out)))
    np.testing.assert_array_equal(gw_out, kernel(x, w, b)[1][0])
    with pytest.raises(hd.ShapeError, match=r"tl_W must have shape \(4, 3\)"):
        kernel(x, np.ones((3, 4)), b)


def test_scalarize_none_picks_by_size():
    small = hd.tensor("tl_small", (10,))
    large = hd.tensor("tl_large", (100_000,))
    assert type(hd.lambdify([small], hd.sum(small ** 2), "gradient")).__name__ == "Kernel"
    kernel = hd.lambdify([large], hd.sum(large ** 2), "gradient")
    assert type(kernel).__name__ == "TensorLambdified"
    value, gradient = kernel(np.ones(100_000))
    assert value == 100_000.0 and (gradient == 2.0).all()


def test_clearing_the_cache_frees_no_code_in_use():
    import gc

    kernel = TensorKernel([hd.sum(A * A)], ALL)
    hd.clear_kernel_cache()
    gc.collect()
    arrays = values(np.random.default_rng(9))
    assert kernel(*arrays)[0] == pytest.approx(np.sum(arrays[0] ** 2), rel=1e-14)


@pytest.mark.parametrize("reduce", [None, "sum", "mean"])
def test_threads_give_bit_identical_batches(reduce):
    one = hd.lambdify([X, W, c], LOSS, "gradient", wrt=[W, c], reduce=reduce,
                      scalarize=False)
    two = hd.lambdify([X, W, c], LOSS, "gradient", wrt=[W, c], reduce=reduce,
                      scalarize=False, threads=2)
    rng = np.random.default_rng(11)
    rows = rng.normal(size=(300, 5, 4))
    _, w, b = layer_values()
    for a, b_ in zip(_leaves(one(rows, w, b)), _leaves(two(rows, w, b))):
        np.testing.assert_array_equal(a, b_)
    if reduce is None:
        value, _ = one(rows, w, b)
        assert value[7] == one(rows[7], w, b)[0]


@st.composite
def shaped_programs(draw):
    """A random shape (0- and 1-sized dimensions included), operands broadcast against
    it, and a chain of elementwise, reduction, view and contraction steps."""
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 2, 3, 5]), min_size=1, max_size=3)))
    cut = draw(st.integers(0, len(shape)))
    small = tuple(1 if draw(st.booleans()) else n for n in shape[cut:])
    name = "x".join(map(str, shape)) + "_" + "x".join(map(str, small))
    p = hd.tensor(f"tk_h_p_{name}", shape)
    q = hd.tensor(f"tk_h_q_{name}", small)
    node = hd.sin(p) * q + 0.5
    for _ in range(draw(st.integers(1, 3))):
        step = draw(st.sampled_from(["sum", "max", "transpose", "flip", "matmul",
                                     "square", "broadcast"]))
        if step == "sum" and node.ndim:
            node = hd.sum(node, axis=draw(st.integers(0, node.ndim - 1)))
        elif step == "max" and node.ndim and 0 not in node.shape:
            node = hd.max(node, axis=-1, keepdims=True)
        elif step == "transpose" and node.ndim:
            node = node.T * 1.5
        elif step == "flip" and node.ndim:
            node = node[::-1] - node
        elif step == "matmul" and node.ndim:
            m = node.shape[-1]
            node = node @ hd.constant(np.linspace(-1.0, 1.0, m * 2).reshape(m, 2))
        elif step == "square":
            node = node * node
        else:
            node = hd.broadcast_to(node, (2,) + node.shape) + 1.0
    return node, p, q


@settings(max_examples=60, deadline=None)
@given(shaped_programs(), st.integers(0, 2 ** 31 - 1))
def test_random_shapes_with_empty_and_unit_dimensions(program, seed):
    node, p, q = program
    rng = np.random.default_rng(seed)
    pv, qv = rng.normal(size=p.shape), rng.normal(size=q.shape)
    exprs = [node] + ([hd.gradient(hd.sum(node), p)] if node.size else [])
    got = TensorKernel(exprs, [p, q])(pv, qv)
    for g, e in zip(got, exprs):
        np.testing.assert_allclose(g, hd.evaluate(e, {p: pv, q: qv}), rtol=1e-12,
                                   atol=1e-12)


def test_loop_kernels_pickle_as_expressions_and_compile_again():
    import pickle

    kernel = hd.lambdify([X, W, c], LOSS, "gradient", wrt=[W, c], scalarize=False)
    clone = pickle.loads(pickle.dumps(kernel))
    assert type(clone).__name__ == "TensorLambdified" and "TensorKernel" in repr(clone)
    for a, b in zip(_leaves(kernel(*layer_values())), _leaves(clone(*layer_values()))):
        np.testing.assert_array_equal(a, b)
