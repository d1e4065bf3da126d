"""Every structural (tensor) primitive of the registry, checked from its entry alone.

For each primitive, example nodes on random shapes: the shape rule equals numpy's result
shape, the evaluation equals numpy, the JVP equals central differences, and the
transpose (VJP) satisfies the dot-product identity <G, J V> = <J^T G, V>. A test fails
when a structural primitive is registered without examples here.
"""

import math

import numpy as np
import pytest

import hybridad as hd
from hybridad.core.registry import PRIMITIVES

RNG = np.random.default_rng(20261130)


def _sym(name, shape):
    return hd.tensor(f"tp_{name}", shape)


_CUSTOM_SIN = hd.custom_vjp(lambda x: hd.sin(x))
_CUSTOM_SIN.defvjp(lambda x: (hd.sin(x), hd.cos(x)), lambda cos_x, g: (cos_x * g,))
_CUSTOM_EXP = hd.custom_jvp(lambda x: hd.exp(x))
_CUSTOM_EXP.defjvp(lambda p, t: (hd.exp(p[0]), hd.exp(p[0]) * t[0]))

A = _sym("A", (3, 4))
B = _sym("B", (4, 2))
C = _sym("C", (2, 3, 4))
D = _sym("D", (2, 4, 5))
V = _sym("V", (4,))
U = _sym("U", (3,))
S = _sym("S", (1, 4))

# name -> list of (expression, numpy reference as a function of the values)
EXAMPLES = {
    "matmul": [(A @ B, lambda d: d["A"] @ d["B"]), (A @ V, lambda d: d["A"] @ d["V"]),
               (V @ B, lambda d: d["V"] @ d["B"]), (V @ V, lambda d: d["V"] @ d["V"]),
               (C @ D, lambda d: d["C"] @ d["D"]), (C @ V, lambda d: d["C"] @ d["V"])],
    "sum": [(hd.sum(A, axis=0), lambda d: d["A"].sum(0)),
            (hd.sum(C, axis=(0, 2)), lambda d: d["C"].sum((0, 2))),
            (hd.sum(C), lambda d: d["C"].sum()),
            (hd.sum(C, axis=1, keepdims=True), lambda d: d["C"].sum(1, keepdims=True))],
    "reshape": [(hd.reshape(C, (6, 4)), lambda d: d["C"].reshape(6, 4)),
                (hd.reshape(A, (-1,)), lambda d: d["A"].reshape(-1))],
    "transpose": [(A.T, lambda d: d["A"].T),
                  (hd.transpose(C, (1, 0, 2)), lambda d: d["C"].transpose(1, 0, 2))],
    "broadcast_to": [(hd.broadcast_to(V, (3, 4)), lambda d: np.broadcast_to(d["V"], (3, 4))),
                     (hd.broadcast_to(S, (2, 3, 4)),
                      lambda d: np.broadcast_to(d["S"], (2, 3, 4)))],
    "getitem": [(A[1:, ::2], lambda d: d["A"][1:, ::2]), (C[..., -1], lambda d: d["C"][..., -1]),
                (V[None, 1:3], lambda d: d["V"][None, 1:3]),
                (C[1, :, ::-1], lambda d: d["C"][1, :, ::-1])],
    "scatter": [(hd.vjp(A[1:, ::2], A, _sym("G1", (2, 2))),
                 lambda d: _scattered(d["G1"], (3, 4), (slice(1, None), slice(None, None, 2))))],
    "max": [(hd.max(A, axis=1), lambda d: d["A"].max(1)), (hd.max(C), lambda d: d["C"].max())],
    "min": [(hd.min(C, axis=(0, 1)), lambda d: d["C"].min((0, 1)))],
    "concatenate": [(hd.concatenate([A, A * 2.0], axis=0),
                     lambda d: np.concatenate([d["A"], 2 * d["A"]])),
                    (hd.stack([U, U * U], axis=1), lambda d: np.stack([d["U"], d["U"] ** 2], 1))],
    "einsum": [(hd.einsum("ij,jk->ik", A, B), lambda d: d["A"] @ d["B"]),
               (hd.einsum("bij,bjk->bik", C, D), lambda d: d["C"] @ d["D"]),
               (hd.einsum("ij->j", A), lambda d: d["A"].sum(0)),
               (hd.einsum("i,j->ij", U, V), lambda d: np.outer(d["U"], d["V"])),
               (hd.tensordot(C, B, 1), lambda d: np.tensordot(d["C"], d["B"], 1))],
    "take": [(V[[0, 3, 3, 1]], lambda d: d["V"][[0, 3, 3, 1]]),
             (A[:, [2, 0]], lambda d: d["A"][:, [2, 0]]),
             (hd.take(C, np.array([[1, 0], [1, 1]]), axis=2),
              lambda d: np.take(d["C"], [[1, 0], [1, 1]], axis=2))],
    "custom": [(_CUSTOM_SIN(V * 2.0), lambda d: np.sin(2 * d["V"])),
               (_CUSTOM_EXP(hd.sum(A, axis=0)), lambda d: np.exp(d["A"].sum(0)))],
    "scatter_add": [(hd.vjp(V[[0, 3, 3, 1]], V, _sym("G2", (4,))),
                     lambda d: np.bincount([0, 3, 3, 1], weights=d["G2"], minlength=4))],
}


def _scattered(g, shape, index):
    out = np.zeros(shape)
    out[index] = g
    return out


def _symbols(e):
    return sorted((n for n in _nodes(e) if n.is_symbol), key=lambda s: s.param)


def _nodes(e):
    from hybridad.core.traverse import topo_order

    return topo_order([e])


def _values(symbols):
    return {s: RNG.normal(size=s.shape) for s in symbols}


def _cases():
    return [(name, k) for name, examples in EXAMPLES.items() for k in range(len(examples))]


def test_every_structural_primitive_has_examples():
    structural = {n for n, p in PRIMITIVES.items() if p.structural and not p.user}
    assert structural == set(EXAMPLES)
    for name, examples in EXAMPLES.items():
        assert any(_uses(e, name) for e, _ in examples), name


def _uses(e, name):
    return any(n.op == name for n in _nodes(e))


@pytest.mark.parametrize("name,k", _cases())
def test_shape_rule_and_value_match_numpy(name, k):
    e, reference = EXAMPLES[name][k]
    symbols = _symbols(e)
    env = _values(symbols)
    expected = reference({s.param.removeprefix("tp_"): env[s] for s in symbols})
    assert e.shape == np.shape(expected)
    np.testing.assert_allclose(hd.evaluate(e, env), expected, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name,k", _cases())
def test_jvp_matches_central_differences(name, k):
    e, _ = EXAMPLES[name][k]
    symbols = _symbols(e)
    env = _values(symbols)
    tangents = {s: RNG.normal(size=s.shape) for s in symbols}
    exact = hd.evaluate(hd.jvp(e, tangents), env)
    h = 1e-6
    plus = hd.evaluate(e, {s: env[s] + h * tangents[s] for s in symbols})
    minus = hd.evaluate(e, {s: env[s] - h * tangents[s] for s in symbols})
    np.testing.assert_allclose(exact, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,k", _cases())
def test_transpose_satisfies_the_dot_product_identity(name, k):
    """<G, J V> == <J^T G, V> for random G and V, in every argument at once."""
    e, _ = EXAMPLES[name][k]
    symbols = _symbols(e)
    env = _values(symbols)
    tangents = {s: RNG.normal(size=s.shape) for s in symbols}
    g_symbol = hd.tensor(f"tp_cot_{name}_{k}", e.shape) if e.shape else hd.symbols(
        f"tp_cot_{name}_{k}")
    g = RNG.normal(size=e.shape)
    jv = hd.evaluate(hd.jvp(e, tangents), env)
    cotangents = hd.vjp(e, symbols, g_symbol)
    jtg = hd.evaluate(cotangents, {**env, g_symbol: g})
    left = float(np.sum(g * jv))
    right = sum(float(np.sum(c * tangents[s])) for c, s in zip(jtg, symbols))
    assert left == pytest.approx(right, rel=1e-12, abs=1e-12)


def test_shape_errors_at_construction_name_both_shapes():
    with pytest.raises(hd.ShapeError, match=r"\(3, 4\) and \(2,\)"):
        A + _sym("bad", (2,))
    with pytest.raises(hd.ShapeError, match=r"shapes \(3, 4\) and \(3, 4\) are not aligned"):
        A @ A
    with pytest.raises(hd.ShapeError, match=r"\(3, 4\).*\(5, 2\)"):
        hd.reshape(A, (5, 2))
    with pytest.raises(hd.ShapeError, match="axis 2 is out of bounds"):
        hd.sum(A, axis=2)
    with pytest.raises(hd.ShapeError, match="index 'j' is 4 in one operand and 3"):
        hd.einsum("ij,jk->ik", A, A)
    with pytest.raises(hd.ShapeError, match=r"\(3, 4\) and \(4, 2\) differ outside axis 0"):
        hd.concatenate([A, B])
    with pytest.raises(hd.HybridadError, match="already exists with shape"):
        hd.tensor("tp_A", (2, 2))
    with pytest.raises(IndexError, match="out of bounds"):
        V[7]


def test_construction_time_simplification_on_tensors():
    assert A.T.T is A and hd.transpose(hd.transpose(C, (1, 0, 2)), (1, 0, 2)) is C
    zero = A * 0.0
    assert zero.shape == A.shape and float(np.max(np.abs(hd.evaluate(zero, {})))) == 0.0
    assert (A - A).shape == A.shape
    assert hd.reshape(A, (3, 4)) is A and hd.broadcast_to(A, (3, 4)) is A
    assert hd.reshape(hd.reshape(A, (12,)), (4, 3)) is hd.reshape(A, (4, 3))
    assert A[:, :] is A and hd.sum(A, axis=()) is A
    assert A @ B is hd.matmul(A, B) and (A @ B).shape == (3, 2)


def test_constants_are_interned_by_shape_and_content():
    first, second = hd.constant(np.eye(3)), hd.constant(np.eye(3).copy())
    assert first is second and first.shape == (3, 3)
    assert hd.constant(np.eye(3)) is not hd.constant(np.eye(3).reshape(9))
    assert hd.constant(2.5) is hd.symbols("tp_x") * 0 + 2.5
    assert (A + np.ones(4)).args[0] is hd.constant(np.ones(4))
    assert math.isclose(float(hd.evaluate(hd.sum(hd.constant(np.arange(4.0))), {})), 6.0)


def test_numpy_functions_dispatch_to_tensor_operations():
    env = _values([A, B])
    a, b = env[A], env[B]
    cases = [(np.sum(A, axis=0), a.sum(0)), (np.mean(A), a.mean()), (np.max(A, axis=1),
             a.max(1)), (np.tanh(A @ B), np.tanh(a @ b)), (np.concatenate([A, A]),
             np.concatenate([a, a])), (np.einsum("ij,jk", A, B), a @ b),
             (np.where(A > 0, A, 0.0), np.where(a > 0, a, 0)), (np.reshape(A, (4, 3)),
             a.reshape(4, 3)), (np.transpose(A), a.T), (np.ones((2, 3)) @ A,
             np.ones((2, 3)) @ a), (np.stack([A, A], axis=2), np.stack([a, a], 2))]
    for built, expected in cases:
        assert isinstance(built, hd.Expr)
        np.testing.assert_allclose(hd.evaluate(built, env), expected, rtol=1e-13)
    assert np.shape(A) == (3, 4) and np.ndim(C) == 3
    with pytest.raises(TypeError, match="numpy.norm is not defined"):
        np.linalg.norm(A)


def test_symbols_are_scalars_and_a_tensors_name_is_an_error():
    b = hd.tensor("tp_named_b", (5,))                 # alive: symbols are interned weakly
    with pytest.raises(hd.HybridadError, match=r"already exists with shape \(5,\)"):
        hd.symbols("tp_named_b")
    assert hd.symbols("tp_named_c").shape == () and b.shape == (5,)
