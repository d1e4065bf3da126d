"""TensorTape: whole-array instructions, sweeps from symbolic tensor derivatives,
liveness (slots and bytes), batches, traces and input checks."""

import sys
import weakref

import numpy as np
import pytest

import hybridad as hd
from hybridad.tape import TensorTape

# symbols are interned by name: every name here starts with "ttp_"
X = hd.tensor("ttp_X", (16, 8))
T = hd.tensor("ttp_T", (16, 4))
W1, B1 = hd.tensor("ttp_W1", (8, 12)), hd.tensor("ttp_b1", (12,))
W2, B2 = hd.tensor("ttp_W2", (12, 4)), hd.tensor("ttp_b2", (4,))
PARAMS = [W1, B1, W2, B2]
INPUTS = [X, T] + PARAMS
HIDDEN = hd.relu(X @ W1 + B1)
Y = HIDDEN @ W2 + B2
LOSS = hd.mean((Y - T) ** 2)


def mlp_values(seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s.shape) * 0.5 for s in INPUTS]


def env_of(symbols, values):
    return dict(zip(symbols, values))


def assert_all_close(got, want, rtol=1e-12, atol=1e-13):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


# -- the two-layer MLP -------------------------------------------------------------------
def test_mlp_evaluate_equals_hd_evaluate():
    tape = TensorTape([LOSS, Y, HIDDEN], INPUTS)
    values = mlp_values()
    got = tape.evaluate(*values)
    assert [v.shape for v in got] == [(), (16, 4), (16, 12)]
    assert all(isinstance(v, np.ndarray) for v in got)
    assert_all_close(got, hd.evaluate([LOSS, Y, HIDDEN], env_of(INPUTS, values)))
    assert (tape.n_inputs, tape.n_outputs) == (6, 3)
    assert tape.n_instructions == 9        # @ + relu @ + - **2 sum /


def test_mlp_value_and_gradient_equals_symbolic_gradient():
    tape = TensorTape(LOSS, INPUTS)
    values = mlp_values(1)
    value, grads = tape.value_and_gradient(*values)
    env = env_of(INPUTS, values)
    assert value.shape == () and float(value) == pytest.approx(float(hd.evaluate(LOSS, env)),
                                                               rel=1e-14)
    assert_all_close(grads, hd.evaluate(hd.gradient(LOSS, INPUTS), env))
    # one program for the value and the gradient: the forward part is not repeated
    program = tape.program("value_and_gradient")
    assert sum(i.node.op == "relu" for i in program.instructions) == 1
    assert program.n_instructions < 3 * tape.n_instructions
    assert tape.program("value_and_gradient") is program        # cached


def test_vjp_and_jvp_equal_the_symbolic_ones():
    tape = TensorTape([Y, LOSS], INPUTS)
    values = mlp_values(2)
    rng = np.random.default_rng(3)
    cot = [rng.normal(size=Y.shape), rng.normal()]
    G, g = hd.tensor("ttp_G", Y.shape), hd.tensor("ttp_g", ())
    symbolic = [a + b for a, b in zip(hd.vjp(Y, INPUTS, G), hd.vjp(LOSS, INPUTS, g))]
    env = {**env_of(INPUTS, values), G: cot[0], g: cot[1]}
    assert_all_close(tape.vjp(values, cot), hd.evaluate(symbolic, env))

    tangents = [rng.normal(size=s.shape) for s in INPUTS]
    seeds = {s: hd.tensor(f"ttp_dot_{s.param}", s.shape) for s in INPUTS}
    symbolic = hd.jvp([Y, LOSS], seeds)
    env = {**env_of(INPUTS, values), **env_of(seeds.values(), tangents)}
    assert_all_close(tape.jvp(values, tangents), hd.evaluate(symbolic, env))
    assert tape.program("vjp") is tape.program("vjp")


def test_dot_product_identity_between_jvp_and_vjp():
    tape = TensorTape([Y, HIDDEN], INPUTS)
    values = mlp_values(4)
    rng = np.random.default_rng(5)
    for _ in range(3):
        u = [rng.normal(size=s.shape) for s in INPUTS]
        w = [rng.normal(size=o.shape) for o in tape.outputs]
        forward = sum(np.vdot(a, b) for a, b in zip(w, tape.jvp(values, u)))
        reverse = sum(np.vdot(a, b) for a, b in zip(tape.vjp(values, w), u))
        assert forward == pytest.approx(reverse, rel=1e-11)


def test_sweeps_of_an_output_that_is_an_input_or_constant():
    x = hd.tensor("ttp_id_x", (3,))
    tape = TensorTape([x, hd.constant(np.arange(3.0)), 2.0 * x], [x])
    value = np.array([1.0, 2.0, 3.0])
    out = tape.evaluate(value)
    assert_all_close(out, [value, np.arange(3.0), 2 * value])
    assert out[0] is not value                       # never the caller's own array
    out[0][0] = 99.0
    assert value[0] == 1.0
    (grad,) = tape.vjp([value], [np.ones(3), np.ones(3), np.ones(3)])
    np.testing.assert_array_equal(grad, [3.0, 3.0, 3.0])
    assert_all_close(tape.jvp([value], [np.ones(3)]), [np.ones(3), np.zeros(3), 2 * np.ones(3)])
    single = TensorTape(hd.sum(x * x), x)             # one input need not be in a list
    assert single.n_inputs == 1 and single.n_outputs == 1
    np.testing.assert_array_equal(single.value_and_gradient(value)[1][0], 2 * value)


# -- batches -----------------------------------------------------------------------------
def test_batched_inputs_equal_a_loop_over_rows():
    tape = TensorTape([LOSS, Y, hd.sum(W1)], INPUTS)   # the last needs no batched input
    values = mlp_values(6)
    rng = np.random.default_rng(7)
    batch = 5
    xs = rng.normal(size=(batch,) + X.shape)           # X batched, everything else shared
    w2s = rng.normal(size=(batch,) + W2.shape)         # and W2 too
    got = tape.evaluate(xs, values[1], values[2], values[3], w2s, values[5])
    rows = [tape.evaluate(xs[i], values[1], values[2], values[3], w2s[i], values[5])
            for i in range(batch)]
    assert [v.shape for v in got] == [(batch,), (batch, 16, 4), (batch,)]
    assert_all_close(got, [np.stack([r[k] for r in rows]) for k in range(3)])
    # hd.evaluate batches the same way (row by row)
    env = {**env_of(INPUTS, values), X: xs, W2: w2s}
    assert_all_close(got, hd.evaluate([LOSS, Y, hd.sum(W1)], env))


def test_batched_sweeps_equal_a_loop_over_rows():
    tape = TensorTape(LOSS, INPUTS)
    values = mlp_values(8)
    rng = np.random.default_rng(9)
    batch = 4
    ts = rng.normal(size=(batch,) + T.shape)
    batched = [values[0], ts] + values[2:]
    value, grads = tape.value_and_gradient(*batched)
    assert value.shape == (batch,) and [g.shape[0] for g in grads] == [batch] * 6
    for i in range(batch):
        v, g = tape.value_and_gradient(values[0], ts[i], *values[2:])
        np.testing.assert_allclose(value[i], v, rtol=1e-13)
        assert_all_close([a[i] for a in grads], g)
    # a batched cotangent alone batches the result; unbatched values are shared
    cots = rng.normal(size=(batch,))
    got = tape.vjp(values, [cots])
    for i in range(batch):
        assert_all_close([a[i] for a in got], tape.vjp(values, [cots[i]]))
    tangents = [rng.normal(size=(batch,) + s.shape) for s in INPUTS]
    (got,) = tape.jvp(values, tangents)
    assert got.shape == (batch,)
    for i in range(batch):
        np.testing.assert_allclose(got[i], tape.jvp(values, [t[i] for t in tangents])[0],
                                   rtol=1e-12)


def test_batches_through_every_structural_primitive():
    a, m = hd.tensor("ttp_st_a", (3, 4)), hd.tensor("ttp_st_m", (4, 2))
    v = hd.tensor("ttp_st_v", (4,))
    outputs = [
        a @ m, hd.sum(a, axis=0) * v, hd.reshape(a, (2, 6)).T, hd.broadcast_to(v, (3, 4)),
        a[1:, ::-1], hd.max(a, axis=1), hd.min(a), hd.concatenate([a, a[:1]], axis=0),
        hd.einsum("ij,jk->ik", a, m), a[:, [0, 2, 2]], hd.vjp(a[0], a, v),
        hd.vjp(a[:, [0, 2, 2]], a, hd.constant(np.ones((3, 3)))), hd.softmax(a, axis=1),
        hd.where(a > 0, a, v * 2.0) + hd.sin(v),
    ]
    tape = TensorTape(outputs, [a, m, v])
    rng = np.random.default_rng(10)
    batch = 3
    av, mv, vv = (rng.normal(size=(batch,) + s.shape) for s in (a, m, v))
    for args in [(av, mv, vv), (av, mv[0], vv[0]), (av[0], mv[0], vv), (av[0], mv, vv[0])]:
        got = tape.evaluate(*args)
        rows = [tape.evaluate(*(x[i] if x.ndim > s.ndim else x for x, s in zip(args, [a, m, v])))
                for i in range(batch)]
        assert_all_close(got, [np.stack([r[k] for r in rows]) for k in range(len(outputs))])
        assert_all_close(got, hd.evaluate(outputs, env_of([a, m, v], args)))
    empty = tape.evaluate(av[:0], mv[0], vv[0])
    assert [e.shape for e in empty] == [(0,) + o.shape for o in outputs]


def test_elementwise_instructions_run_once_on_the_whole_batch(monkeypatch):
    x, w = hd.tensor("ttp_once_x", (3,)), hd.tensor("ttp_once_w", (3, 2))
    tape = TensorTape(hd.exp(x) @ w, [x, w])
    from hybridad.tape import tensor as module
    calls = []
    real = module.apply_numpy
    monkeypatch.setattr(module, "apply_numpy",
                        lambda node, values: calls.append(node.op) or real(node, values))
    tape.evaluate(np.ones((7, 3)), np.ones((3, 2)))
    assert calls.count("exp") == 1 and calls.count("matmul") == 0   # matmul's batch rule
    calls.clear()
    scattered = TensorTape(hd.vjp(x[1:] * 2.0, x, hd.tensor("ttp_once_g", (2,))),
                           [x, hd.tensor("ttp_once_g", (2,))])
    gs = np.arange(14.0).reshape(7, 2)
    got = scattered.evaluate(np.ones((7, 3)), gs)[0]
    assert calls.count("scatter") == 0                   # scatter's batch rule: one call
    np.testing.assert_array_equal(got, np.concatenate([np.zeros((7, 1)), 2 * gs], axis=1))


# -- liveness: slots and bytes --------------------------------------------------------------
def chain(x, n_steps):
    y = x
    for _ in range(n_steps):
        y = hd.sin(y) * 0.5 + x
    return y


def test_peak_slots_stay_small_on_a_long_chain():
    x = hd.tensor("ttp_chain_x", (3,))
    tape = TensorTape(chain(x, 200), [x])
    assert tape.n_instructions == 600
    assert tape.peak_slots == 2                # the running value and the next one
    assert tape.peak_bytes() == 2 * 3 * 8
    assert tape.peak_bytes(batch=10) == 10 * 2 * 3 * 8
    assert tape.program("jvp").peak_slots <= 4       # tangents travel with the values
    # the reverse sweep keeps one forward value per step until the adjoints reach it
    assert 200 <= tape.program("vjp").peak_slots <= 210


def test_peak_bytes_by_hand():
    x = hd.tensor("ttp_bytes_x", (2, 3))
    e = hd.exp(x)                              # 6 floats: 48 bytes
    s = hd.sum(e)                              # 8 bytes, while e is alive
    tape = TensorTape(e / s, [x])              # 48 more, while e and s are alive
    assert [i.node.op for i in tape.program().instructions] == ["exp", "sum", "div"]
    assert tape.peak_slots == 3
    assert tape.peak_bytes() == 48 + 8 + 48
    assert tape.peak_bytes(batch=5) == 5 * 104
    # a value that needs no input is computed once, not per row; a broadcast is a view
    # of its operand's memory, so zeros of shape (4, 5) cost no bytes
    tape = TensorTape([hd.broadcast_to(hd.constant(0.0), (4, 5)), hd.sin(x)], [x])
    assert tape.peak_bytes() == 48 and tape.peak_bytes(batch=5) == 5 * 48
    zeros, sines = tape.evaluate(np.ones((5, 2, 3)))
    assert zeros.shape == (5, 4, 5) and not zeros.any() and sines.shape == (5, 2, 3)
    # views own no memory and keep their base alive; outputs=False leaves results out
    tape = TensorTape(hd.sum(x.T @ x), [x])
    assert [i.node.op for i in tape.program().instructions] == ["transpose", "matmul",
                                                                "sum"]
    assert tape.peak_bytes() == 9 * 8 + 8 and tape.peak_bytes(outputs=False) == 9 * 8
    # released values free their bytes: sin(x) dies when cos(sin(x)) is made
    tape = TensorTape(hd.sum(hd.cos(hd.sin(x))), [x])
    assert tape.peak_slots == 2 and tape.peak_bytes() == 96
    with pytest.raises(ValueError, match="batch"):
        tape.peak_bytes(batch=-1)
    with pytest.raises(ValueError, match="sweep"):
        tape.peak_bytes(sweep="sideways")


def test_dead_arrays_are_dropped_during_the_run():
    x = hd.tensor("ttp_free_x", (3,))
    tape = TensorTape(chain(x, 50), [x])
    program = tape.program()
    assert program.n_slots == program.n_fixed + program.peak_slots
    refs, alive = [], []

    def record(t, result):
        refs.append(weakref.ref(result))
        alive.append(sum(r() is not None for r in refs))

    program.run([np.ones(3)], [False], None, record)
    assert len(alive) == program.n_instructions
    assert max(alive) == program.peak_slots == 2
    released = [k for ins in program.instructions for k in ins.release]
    assert len(released) == program.n_instructions - 1   # all but the output's


def test_100k_instruction_chain_runs_without_recursion():
    x = hd.tensor("ttp_long_x", (3,))
    y = chain(x, 33_334)
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 150)         # nothing may recurse into the chain
    try:
        tape = TensorTape(y, [x])
        value = tape.evaluate(np.array([0.1, 0.2, 0.3]))[0]
        batched = tape.evaluate(np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]]))[0]
    finally:
        sys.setrecursionlimit(limit)
    assert tape.n_instructions >= 100_000 and tape.peak_slots == 2
    assert value.shape == (3,) and np.isfinite(value).all()
    np.testing.assert_allclose(batched[0], value, rtol=1e-15)
    # the fixed point of y = sin(y)/2 + x
    np.testing.assert_allclose(value, np.sin(value) * 0.5 + [0.1, 0.2, 0.3], rtol=1e-12)


# -- traces --------------------------------------------------------------------------------
def test_trace_shows_ops_shapes_and_norms():
    tape = TensorTape(LOSS, INPUTS)
    text = tape.trace()
    lines = text.splitlines()
    assert lines[0].startswith("TensorTape evaluate: 6 inputs, 1 output, 9 instructions")
    body = [line for line in lines if line.lstrip()[:1].isdigit()]
    assert len(body) == tape.n_instructions
    assert "matmul(s0 (16, 8), s2 (8, 12)) -> (16, 12)" in body[0]
    assert "ttp_X @ ttp_W1" in body[0]
    assert "relu(" in text and "-> ()" in text and "|v|" not in text
    values = mlp_values()
    traced = tape.trace(*values)
    assert traced.count("|v| = ") == tape.n_instructions
    first = np.linalg.norm(values[0] @ values[2])
    assert f"|v| = {first:.6g}" in traced
    assert all(len(line) < 200 for line in traced.splitlines())   # long texts are cut
    assert "..." in traced
    reverse = tape.trace(*values, sweep="value_and_gradient")
    assert "transpose(" in reverse and "(8, 16)" in reverse
    vjp = tape.trace(*values, 1.0, sweep="vjp")
    assert vjp.count("|v| = ") == tape.program("vjp").n_instructions
    batched = tape.trace(np.stack([values[0]] * 2), *values[1:])
    assert "(batch 2)" in batched


# -- checks ---------------------------------------------------------------------------------
def test_bad_values_are_rejected_before_any_computation():
    tape = TensorTape(LOSS, INPUTS)
    values = mlp_values()
    with pytest.raises(ValueError, match="expected 6 values"):
        tape.evaluate(*values[:5])
    bad = list(values)
    bad[2] = np.ones((12, 8))
    with pytest.raises(ValueError, match=r"input 2 \(ttp_W1\) must have shape \(8, 12\) "
                                         r"or \(batch, \*\(8, 12\)\), got \(12, 8\)"):
        tape.evaluate(*bad)
    bad[2] = np.array([["a"] * 12] * 8)
    with pytest.raises(TypeError, match="input 2 .* numeric"):
        tape.evaluate(*bad)
    bad[2] = values[2].astype(object)
    with pytest.raises(TypeError, match="dtype object"):
        tape.value_and_gradient(*bad)
    with pytest.raises(ValueError, match="different batch sizes"):
        tape.evaluate(np.stack([values[0]] * 2), np.stack([values[1]] * 3), *values[2:])
    with pytest.raises(ValueError, match="cotangents needs 1 arrays"):
        tape.vjp(values, [1.0, 2.0])
    with pytest.raises(TypeError, match="list or tuple"):
        tape.vjp(values, np.ones(1))
    with pytest.raises(ValueError, match="the cotangent of output 0 must have shape"):
        tape.vjp(values, [np.ones((2, 2))])
    with pytest.raises(ValueError, match=r"the tangent of input 1 \(ttp_T\)"):
        tape.jvp(values, values[:1] + [np.ones(3)] + values[2:])
    with pytest.raises(ValueError, match="single scalar-shaped output"):
        TensorTape([Y], INPUTS).value_and_gradient(*values)


def test_integer_values_are_converted_to_float64():
    x = hd.tensor("ttp_int_x", (2, 2))
    tape = TensorTape(x / 4, [x])
    (out,) = tape.evaluate(np.array([[1, 2], [3, 4]]))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[0.25, 0.5], [0.75, 1.0]])
    (out,) = tape.evaluate([[True, False], [False, True]])
    np.testing.assert_array_equal(out, [[0.25, 0.0], [0.0, 0.25]])


def test_bad_tapes_are_rejected():
    with pytest.raises(TypeError, match="symbols"):
        TensorTape(LOSS, [X, W1 + 1.0])
    with pytest.raises(ValueError, match="distinct"):
        TensorTape(LOSS, INPUTS + [X])
    with pytest.raises(ValueError, match="not inputs: ttp_T, ttp_X"):
        TensorTape(LOSS, PARAMS)
    assert "9 instructions" in repr(TensorTape(LOSS, INPUTS))
