"""Derivatives of shaped expressions: the linear-layer rules, an MLP against hand
backpropagation (seed 002), random tensor programs against finite differences and the
element-level (scalarized) gradient, and 100,000-node tensor chains."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybridad as hd


def test_linear_layer_rules_print_as_matrix_expressions():
    """Seed 002: for Y = X W, dL/dX = dL/dY W^T and dL/dW = X^T dL/dY."""
    X, W, G = hd.tensor("ll_X", (64, 784)), hd.tensor("ll_W", (784, 512)), hd.tensor(
        "ll_G", (64, 512))
    assert str(hd.vjp(X @ W, X, G)) == "ll_G @ ll_W.T"
    assert str(hd.vjp(X @ W, W, G)) == "ll_X.T @ ll_G"
    assert str(hd.jvp(X @ W, {W: X.T @ G})) == "ll_X @ (ll_X.T @ ll_G)"
    b = hd.tensor("ll_b", (512,))
    assert str(hd.vjp(X @ W + b, b, G)) == "sum(ll_G, axis=0)"


def mlp(sizes, batch, prefix):
    X = hd.tensor(f"{prefix}X", (batch, sizes[0]))
    T = hd.tensor(f"{prefix}T", (batch, sizes[-1]))
    params, h, hidden = [], X, []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = hd.tensor(f"{prefix}W{k}", (n_in, n_out))
        b = hd.tensor(f"{prefix}b{k}", (n_out,))
        params += [W, b]
        z = h @ W + b
        h = hd.relu(z) if k < len(sizes) - 2 else z
        hidden.append(h)
    loss = hd.mean((h - T) ** 2)
    return X, T, params, hidden, loss


def backprop(x, t, weights):
    """Hand-written backpropagation of the same MLP (the reference)."""
    acts, pre = [x], []
    for k in range(0, len(weights), 2):
        z = acts[-1] @ weights[k] + weights[k + 1]
        pre.append(z)
        acts.append(np.maximum(z, 0) if k < len(weights) - 2 else z)
    delta = 2 * (acts[-1] - t) / t.size
    grads = [None] * len(weights)
    for k in range(len(weights) - 2, -1, -2):
        grads[k], grads[k + 1] = acts[k // 2].T @ delta, delta.sum(0)
        if k:
            delta = (delta @ weights[k].T) * (pre[k // 2 - 1] > 0)
    return grads


def test_mlp_gradients_equal_hand_backpropagation():
    rng = np.random.default_rng(2)
    sizes = (12, 16, 16, 4)
    X, T, params, hidden, loss = mlp(sizes, 8, "mlp_")
    values = [rng.normal(size=p.shape) * 0.5 for p in params]
    x, t = rng.normal(size=X.shape), rng.normal(size=T.shape)
    env = {X: x, T: t, **dict(zip(params, values))}
    grads = hd.gradient(loss, params)
    assert all(g.shape == p.shape for g, p in zip(grads, params))
    for got, want in zip(hd.evaluate(grads, env), backprop(x, t, values)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert hd.count_ops(grads + [loss]) < 60            # a few dozen tensor nodes
    # the hidden activations' gradient (seed 002's retain_grad) is dL/dY W^T
    h1 = hidden[0]
    dh1, dh2 = hd.vjp(loss, hidden[:2], 1.0)
    assert dh1.shape == h1.shape
    # dL/dh1 = (dL/dz2) W1^T with dL/dz2 = dL/dh2 * relu'(z2)
    got1, got2 = hd.evaluate([dh1, dh2], env)
    pre2 = np.maximum(x @ values[0] + values[1], 0) @ values[2] + values[3]
    np.testing.assert_allclose(got1, (got2 * (pre2 > 0)) @ values[2].T, rtol=1e-12)


def test_seed_mlp_at_full_size_builds_and_differentiates_quickly():
    """Seed 002's 784 -> 512 -> 512 -> 10 MLP, batch 64: a compact DAG, evaluated with
    BLAS at tensor level (no element-level code)."""
    X, T, params, _, loss = mlp((784, 512, 512, 10), 64, "big_")
    grads = hd.gradient(loss, params)
    assert hd.count_ops(grads + [loss]) < 80
    rng = np.random.default_rng(0)
    env = {p: rng.normal(size=p.shape) * 0.05 for p in params}
    env.update({X: rng.normal(size=X.shape), T: rng.normal(size=T.shape)})
    values = hd.evaluate(grads, env)
    assert [v.shape for v in values] == [p.shape for p in params]
    reference = backprop(env[X], env[T], [env[p] for p in params])
    np.testing.assert_allclose(values[0], reference[0], rtol=1e-10, atol=1e-13)


# -- random tensor programs -------------------------------------------------------------
SHAPE = (3, 4)
P = hd.tensor("rt_P", SHAPE)
Q = hd.tensor("rt_Q", SHAPE)
M = hd.tensor("rt_M", (4, 3))

UNARY = [hd.sin, hd.tanh, lambda u: hd.exp(0.3 * u), lambda u: u * u, hd.sigmoid]
STRUCTURAL = [
    lambda u: (u @ M) @ u,                                  # (3, 4) @ (4, 3) @ (3, 4)
    lambda u: hd.broadcast_to(hd.sum(u, axis=0), SHAPE),
    lambda u: hd.broadcast_to(hd.max(u, axis=1, keepdims=True), SHAPE),
    lambda u: hd.reshape(hd.reshape(u, (12,))[::-1], SHAPE),
    lambda u: hd.concatenate([u[:, 2:], u[:, :2]], axis=1),
    lambda u: hd.softmax(u, axis=1),
    lambda u: hd.einsum("ij,kj->ik", u, u) @ u,
    lambda u: u[:, [3, 1, 1, 0]],
    lambda u: u.T.reshape(SHAPE),
    lambda u: hd.broadcast_to(hd.logsumexp(u, axis=0), SHAPE),
]


@st.composite
def tensor_programs(draw):
    nodes = [P, Q]
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["unary", "binary", "structural"]))
        a = draw(st.sampled_from(nodes))
        if kind == "unary":
            nodes.append(draw(st.sampled_from(UNARY))(a))
        elif kind == "binary":
            c = draw(st.sampled_from(nodes))
            operator = draw(st.sampled_from(["+", "*", "-"]))
            nodes.append(a + c if operator == "+" else a * c if operator == "*" else a - c)
        else:
            nodes.append(draw(st.sampled_from(STRUCTURAL))(a))
    weights = np.linspace(-1, 1, 12).reshape(SHAPE)
    return hd.sum(hd.tanh(nodes[-1]) * weights)


@settings(max_examples=40)
@given(tensor_programs(), st.integers(0, 2 ** 31 - 1))
def test_random_tensor_programs_symbolic_equals_differences_and_element_level(loss, seed):
    rng = np.random.default_rng(seed)
    env = {P: rng.uniform(-1, 1, SHAPE), Q: rng.uniform(-1, 1, SHAPE),
           M: rng.uniform(-1, 1, (4, 3))}
    grad_p, grad_q = hd.evaluate(hd.gradient(loss, [P, Q]), env)
    # central differences, entry by entry
    h = 1e-6
    for symbol, grad in ((P, grad_p), (Q, grad_q)):
        for index in [(0, 0), (1, 2), (2, 3)]:
            bump = np.zeros(SHAPE)
            bump[index] = h
            plus = hd.evaluate(loss, {**env, symbol: env[symbol] + bump})
            minus = hd.evaluate(loss, {**env, symbol: env[symbol] - bump})
            assert grad[index] == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-6)
    # the element-level (scalarized) gradient of the same expression
    kernel = hd.lambdify([P, Q, M], loss, derivatives="gradient", wrt=[P, Q],
                         backend="numpy")
    _, (kernel_p, kernel_q) = kernel(env[P], env[Q], env[M])
    np.testing.assert_allclose(kernel_p, grad_p, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(kernel_q, grad_q, rtol=1e-10, atol=1e-12)


# -- element level ----------------------------------------------------------------------
def test_scalarize_and_stack_are_one_ir():
    X, W = hd.tensor("sc_X", (2, 3)), hd.tensor("sc_W", (3, 2))
    Y = hd.relu(X @ W + 1.0)
    elements = hd.scalarize(Y)
    assert elements.shape == (2, 2) and str(elements[0, 0]).startswith("relu(1 + ")
    back = hd.stack(elements)
    rng = np.random.default_rng(1)
    env = {X: rng.normal(size=(2, 3)), W: rng.normal(size=(3, 2))}
    np.testing.assert_allclose(hd.evaluate(back, env), hd.evaluate(Y, env), rtol=1e-15)


@pytest.mark.parametrize("backend", ["llvm", "tape", "numpy"])
def test_lambdify_takes_tensor_symbols_as_argument_groups(backend):
    X, W, b = hd.tensor("lk_X", (4, 3)), hd.tensor("lk_W", (3, 2)), hd.tensor("lk_b", (2,))
    loss = hd.mean(hd.tanh(X @ W + b) ** 2)
    rng = np.random.default_rng(3)
    x, w, bb = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
    kernel = hd.lambdify([X, W, b], loss, derivatives="gradient", wrt=[W, b],
                         backend=backend)
    value, (gw, gb) = kernel(x, w, bb)
    expected = hd.evaluate([loss] + hd.gradient(loss, [W, b]), {X: x, W: w, b: bb})
    assert value == pytest.approx(expected[0], rel=1e-14)
    np.testing.assert_allclose(gw, expected[1], rtol=1e-12)
    np.testing.assert_allclose(gb, expected[2], rtol=1e-12)
    batch = rng.normal(size=(5, 4, 3))
    values, (gws, _) = kernel(batch, w, bb)
    assert values.shape == (5,) and gws.shape == (5, 3, 2)
    with pytest.raises(ValueError, match=r"shape \(4, 3\) or \(batch, 4, 3\), got \(3, 4\)"):
        kernel(np.ones((3, 4)), w, bb)


def test_batched_evaluation_of_tensor_expressions():
    X, W = hd.tensor("be_X", (4, 3)), hd.tensor("be_W", (3, 2))
    rng = np.random.default_rng(4)
    xs, w = rng.normal(size=(6, 4, 3)), rng.normal(size=(3, 2))
    out = hd.evaluate(hd.sum(X @ W, axis=0), {X: xs, W: w})
    np.testing.assert_allclose(out, (xs @ w).sum(axis=1), rtol=1e-14)
    with pytest.raises(hd.ShapeError, match=r"be_X must have shape \(4, 3\)"):
        hd.evaluate(X @ W, {X: np.ones((4, 4)), W: w})


def test_tensor_jacobian_and_hessian_have_jax_shapes():
    X, W, x = hd.tensor("jh_X", (2, 3)), hd.tensor("jh_W", (3, 2)), hd.tensor("jh_x", (3,))
    rng = np.random.default_rng(5)
    xv, wv = rng.normal(size=(2, 3)), rng.normal(size=(3, 2))
    jac = hd.jacobian(X @ W, W)
    assert jac.shape == (2, 2, 3, 2)
    np.testing.assert_allclose(hd.evaluate(jac, {X: xv, W: wv}),
                               np.einsum("ik,jl->ijkl", xv, np.eye(2)), rtol=1e-15)
    A = np.array([[1.0, 2, 0], [0, 3, 1], [4, 0, 1]])
    hess = hd.hessian(x @ A @ x, x)
    assert hess.is_constant or hess.op == "array"        # the closed form A + A.T, folded
    np.testing.assert_array_equal(hd.evaluate(hess, {}), A + A.T)


def test_100k_node_tensor_chain_builds_evaluates_and_differentiates():
    x = hd.tensor("chain_x", (3,))
    y = x
    for k in range(40_000):                        # 2.5 nodes a step: 100,000 nodes
        y = hd.sin(y) * 0.5 + x if k % 2 else y[::-1] + 0.25
    value = hd.evaluate(y, {x: np.array([0.1, 0.2, 0.3])})
    assert value.shape == (3,) and np.isfinite(value).all()
    grad = hd.gradient(hd.sum(y), x)
    assert grad.shape == (3,)
    assert np.isfinite(hd.evaluate(grad, {x: np.array([0.1, 0.2, 0.3])})).all()
    assert len(str(y)) > 0 and hd.count_ops(y) >= 100_000


def test_hessian_vector_product_and_pictures_of_tensor_expressions():
    x, v = hd.tensor("hvp_x", (3,)), hd.tensor("hvp_v", (3,))
    A = np.array([[1.0, 2, 0], [0, 3, 1], [4, 0, 1]])
    product = hd.hvp(x @ A @ x, x, v)
    assert product.shape == (3,)
    direction = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(hd.evaluate(product, {x: np.ones(3), v: direction}),
                               (A + A.T) @ direction, rtol=1e-15)
    picture = hd.to_dot(x @ A @ x)
    assert "@ (3,)" in picture and "array (3, 3)" in picture
    replacements, reduced = hd.cse([hd.sin(x @ A) * (x @ A)])
    assert replacements[0][0].shape == (3,) and reduced[0].shape == (3,)


def test_tensor_tape_agrees_with_symbolic_gradient_on_random_programs():
    from hybridad.tape import TensorTape

    rng = np.random.default_rng(9)
    env = {P: rng.uniform(-1, 1, SHAPE), Q: rng.uniform(-1, 1, SHAPE),
           M: rng.uniform(-1, 1, (4, 3))}
    for make in STRUCTURAL:
        loss = hd.sum(hd.tanh(make(P) * Q))
        tape = TensorTape(loss, [P, Q, M])
        value, grads = tape.value_and_gradient(env[P], env[Q], env[M])
        expected = hd.evaluate([loss] + hd.gradient(loss, [P, Q, M]), env)
        assert float(value) == pytest.approx(float(expected[0]), rel=1e-14)
        for got, want in zip(grads, expected[1:]):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
