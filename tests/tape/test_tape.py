"""Tapes: sweeps, Jacobian strategies, Hessians, traces, shapes and slot reuse."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import dags

import hybridad as hd
from hybridad.tape import Tape

x1, x2 = hd.symbols("x1 x2")
F = hd.log(x1) + x1 * x2 - hd.sin(x2)
POINT = np.array([2.0, 5.0])


def vector_function(n_in=4, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    xs = hd.symarray("x", n_in)
    w = rng.normal(size=(n_out, n_in))
    outs = np.tanh(w @ xs) * hd.exp(xs[0] / 3) + hd.sin(xs[-1] * xs[0])
    return Tape(list(outs), list(xs)), outs, xs


# -- the textbook example --------------------------------------------------------------
def test_textbook_value_and_gradient():
    t = Tape(F, [x1, x2])
    assert t.evaluate(POINT)[0] == pytest.approx(11.652, abs=5e-4)
    np.testing.assert_allclose(t.gradient(POINT), [5.5, 2 - math.cos(5)], rtol=1e-15)


def test_textbook_forward_trace():
    text = Tape(F, [x1, x2]).trace(POINT, mode="forward", seed=0)
    for fragment in ["v_1 = log(v_-1) = 0.693", "v_2 = v_-1*v_0 = 10",
                     "v_3 = sin(v_0) = -0.959", "v_4 = v_1 + v_2 = 10.693",
                     "v_5 = v_4 - v_3 = 11.652", "y_1 = v_5 = 11.652"]:
        assert fragment in text
    tangents = [line.rsplit("= ", 1)[1] for line in text.split("tangent trace")[1]
                .splitlines()[1:]]
    assert tangents == ["1", "0", "0.5", "5", "0", "5.5", "5.5", "5.5"]


def test_textbook_reverse_trace():
    text = Tape(F, [x1, x2]).trace(POINT, mode="reverse", seed=0)
    adjoint = text.split("adjoint trace")[1]
    assert "x\u03041 = v\u0304_-1 = 5.5" in adjoint
    assert "x\u03042 = v\u0304_0 = 1.716" in adjoint
    assert "= -0.284" in adjoint and "v\u0304_3 = -v\u0304_5 = -1" in adjoint


def test_trace_rejects_bad_seed_and_mode():
    t = Tape(F, [x1, x2])
    with pytest.raises(ValueError, match="seed"):
        t.trace(POINT, seed=2)
    with pytest.raises(ValueError, match="mode"):
        t.trace(POINT, mode="sideways")


# -- sweeps and their agreement ----------------------------------------------------------
def test_adjoint_identity():
    t, _, _ = vector_function()
    rng = np.random.default_rng(1)
    x = rng.normal(size=4)
    for _ in range(5):
        v, w = rng.normal(size=4), rng.normal(size=3)
        assert w @ t.jvp(x, v) == pytest.approx(t.vjp(x, w) @ v, rel=1e-12)


def test_jacobian_modes_agree_with_symbolic():
    t, outs, xs = vector_function()
    x = np.array([0.3, -0.2, 0.5, 1.1])
    env = dict(zip(xs, x, strict=True))
    symbolic = np.array([[float(e.evaluate(env)) for e in row]
                         for row in hd.jacobian(list(outs), list(xs))])
    for mode in ("forward", "reverse", "auto"):
        np.testing.assert_allclose(t.jacobian(x, mode=mode), symbolic, rtol=1e-12, atol=1e-14)


def test_k_directions_in_one_pass():
    t, _, _ = vector_function()
    x = np.array([0.3, -0.2, 0.5, 1.1])
    v = np.random.default_rng(2).normal(size=(4, 5))
    np.testing.assert_allclose(t.jvp(x, v), t.jacobian(x) @ v, rtol=1e-12)
    w = np.random.default_rng(3).normal(size=(3, 2))
    np.testing.assert_allclose(t.vjp(x, w), t.jacobian(x).T @ w, rtol=1e-12)


def test_batches_equal_per_point_results():
    t, _, _ = vector_function()
    xs = np.random.default_rng(4).normal(size=(6, 4))
    v = np.random.default_rng(5).normal(size=(6, 4))
    batch_values, batch_jvp = t.evaluate(xs), t.jvp(xs, v)
    batch_jac = t.jacobian(xs, mode="reverse")
    assert batch_values.shape == (6, 3) and batch_jvp.shape == (6, 3)
    assert batch_jac.shape == (6, 3, 4)
    for i in range(6):
        np.testing.assert_array_equal(batch_values[i], t.evaluate(xs[i]))
        np.testing.assert_allclose(batch_jvp[i], t.jvp(xs[i], v[i]), rtol=1e-14)
        np.testing.assert_allclose(batch_jac[i], t.jacobian(xs[i], mode="forward"),
                                   rtol=1e-12)


def test_hessian_symmetric_and_equal_to_symbolic():
    xs = hd.symarray("x", 3)
    f = hd.exp(xs[0] * xs[1]) + xs[2] ** 3 * hd.sin(xs[0]) + hd.log(1 + xs[1] ** 2)
    t = Tape(f, list(xs))
    x = np.array([0.4, -0.7, 1.3])
    hess = t.hessian(x)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-13)
    env = dict(zip(xs, x, strict=True))
    symbolic = np.array([[float(e.evaluate(env)) for e in row]
                         for row in hd.hessian(f, list(xs))])
    np.testing.assert_allclose(hess, symbolic, rtol=1e-12)
    v = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(t.hvp(x, v), symbolic @ v, rtol=1e-12)


def test_cost_model_prefers_fewer_directions():
    a = hd.symarray("a", 2048)
    wide = Tape(hd.sum(hd.sin(a) * hd.cos(a)), list(a))
    assert wide.choose_mode() == "reverse"
    assert wide.sweep_cost("forward") > 1.5 * wide.sweep_cost("reverse")
    x, y = hd.symbols("x y")
    tall = Tape([hd.sin(k * x + y) for k in range(1, 2049)], [x, y])
    assert tall.choose_mode() == "forward"


def test_cost_model_counts_directions_times_batch():
    """A batch multiplies the elements each sweep carries: a tape whose fixed costs
    favour forward at one point (n = 64 directions are cheap) switches to reverse."""
    a = hd.symarray("a", 64)
    wide = Tape(hd.sum(hd.sin(a) * hd.cos(a)), list(a))
    assert wide.choose_mode(batch=1) == "forward"
    assert wide.choose_mode(batch=64) == "reverse"
    ops = wide.n_sweep_ops
    assert 0 < ops <= 2 * wide.n_edges
    with pytest.raises(ValueError, match="mode must be 'forward' or 'reverse'"):
        wide.sweep_cost("sideways")


# -- bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("call,match", [
    (lambda t: t.evaluate([1.0, 2.0, 3.0]), r"x must have shape \(2,\) or \(batch, 2\)"),
    (lambda t: t.jvp(POINT, [1.0, 2.0, 3.0]), r"v must have shape \(2,\) or \(2, k\).*"
                                                r"got \(3,\)"),
    (lambda t: t.vjp(POINT, [1.0, 2.0]), r"w must have shape \(1,\)"),
    (lambda t: t.evaluate(np.zeros((2, 2, 2))), r"got \(2, 2, 2\)"),
])
def test_bad_shapes_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(Tape(F, [x1, x2]))


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match="numeric"):
        Tape(F, [x1, x2]).evaluate(["a", "b"])


def test_outputs_must_only_use_inputs():
    with pytest.raises(ValueError, match="not inputs: x2"):
        Tape(F, [x1])


def test_inputs_are_not_modified():
    t, _, _ = vector_function()
    x = np.array([0.3, -0.2, 0.5, 1.1])
    before = x.copy()
    t.jacobian(x, mode="reverse")
    t.jvp(x, np.ones(4))
    np.testing.assert_array_equal(x, before)


def test_constant_and_input_outputs():
    t = Tape([hd.sin(x1) * 0 + 3.0, x1], [x1, x2])
    np.testing.assert_array_equal(t.evaluate(POINT), [3.0, 2.0])
    np.testing.assert_array_equal(t.jacobian(POINT), [[0.0, 0.0], [1.0, 0.0]])


# -- slot reuse on a long chain ---------------------------------------------------------
def test_long_chain_reuses_slots():
    x = hd.symbols("x")
    e = x
    for i in range(100_000):
        e = hd.sin(e) if i % 2 else e * 0.999 + x
    t = Tape(e, [x])
    assert t.n_instructions > 100_000
    assert t.peak_slots <= 4
    value = t.evaluate([0.3])[0]
    assert value == float(e.evaluate({x: 0.3}))
    assert t.gradient([0.3])[0] == pytest.approx(t.jvp([0.3], [1.0])[0], rel=1e-12)


# -- hypothesis: tape forward, tape reverse, symbolic and finite differences agree -------
@given(dags(), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_tape_modes_agree_with_symbolic(f, point):
    variables = list(hd.symbols("x y z"))
    t = Tape(f, variables)
    env = dict(zip(variables, point, strict=True))
    symbolic = np.array([float(g.evaluate(env)) for g in hd.gradient(f, variables)])
    assert t.evaluate(point)[0] == pytest.approx(float(f.evaluate(env)), rel=1e-12, abs=1e-300)
    scale = max(1.0, float(np.max(np.abs(symbolic))))
    np.testing.assert_allclose(t.gradient(point), symbolic, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(t.jacobian(point, mode="forward")[0], symbolic, rtol=1e-12,
                               atol=1e-12 * scale)


def test_wide_dag_keeps_few_registers_alive():
    xs = hd.symarray("x", 512)
    weights = np.random.default_rng(6).normal(size=(4, 512))
    t = Tape(list(np.tanh(weights @ xs)), list(xs))
    assert t.n_instructions > 4 * 512
    assert t.peak_slots <= 16
