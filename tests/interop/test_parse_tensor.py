"""Tests for the tensor notation of hybridad.interop.parse: ``X @ W``, ``W.T``, ``v[1:]``,
tensor-function calls, round trips through str(), hand-written text and errors.

Symbols are interned by name across the whole test session, and other modules hold
scalar symbols (``x``, ``b``, ``v``...) while doctests make ``X`` with other shapes, so
the tensors here carry a ``t`` suffix (``Xt``, ``Wt``, ``bt``...).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybridad as hd
from hybridad.core import tensor_syntax
from hybridad.core.build import apply
from hybridad.core.expr import symbol
from hybridad.core.traverse import topo_order
from hybridad.errors import ParseError
from hybridad.interop.parse import MAX_NESTING, parse

Xt, Wt, bt, Gt = (hd.tensor("Xt", (4, 3)), hd.tensor("Wt", (3, 2)), hd.tensor("bt", (2,)),
                  hd.tensor("Gt", (4, 2)))
xt, Zt, Mt, ct = (hd.tensor("xt", (5,)), hd.tensor("Zt", (2, 3, 4)), hd.tensor("Mt", (3, 3)),
                  hd.tensor("ct", (3,)))
W1t, b1t, W2t, Tt = (hd.tensor("W1t", (3, 5)), hd.tensor("b1t", (5,)),
                     hd.tensor("W2t", (5, 2)), hd.tensor("Tt", (4, 2)))
At, Bt, Ct = hd.tensor("At", (2, 3)), hd.tensor("Bt", (2, 3)), hd.tensor("Ct", (1, 3))
st_ = hd.symbols("st")
SYMBOLS = [Xt, Wt, bt, Gt, xt, Zt, Mt, ct, W1t, b1t, W2t, Tt, At, Bt, Ct, st_]


def roundtrip(e: hd.Expr) -> None:
    text = str(e)
    assert parse(text) is e, f"{text!r} parsed to {parse(text)!r}"
    assert parse(text, symbols=SYMBOLS) is e


def mlp_loss() -> hd.Expr:
    return hd.mean((hd.relu(Xt @ W1t + b1t) @ W2t - Tt) ** 2)


# -- round trips through str() ---------------------------------------------------------
EXPRESSIONS = {
    "relu(X @ W + b)": lambda: hd.relu(Xt @ Wt + bt),
    "vjp G @ W.T": lambda: hd.vjp(Xt @ Wt, Xt, Gt),
    "(X @ W).T": lambda: (Xt @ Wt).T,
    "W.T @ X.T": lambda: Wt.T @ Xt.T,
    "Z.T": lambda: Zt.T,
    "-X.T": lambda: -Xt.T,
    "(-X).T": lambda: (-Xt).T,
    "X.T**2": lambda: Xt.T ** 2,
    "2**X.T": lambda: 2 ** Xt.T,
    "(X*2).T": lambda: (Xt * 2).T,
    "X[1:].T": lambda: Xt[1:].T,
    "X.T[1]": lambda: Xt.T[1],
    "sum(X, axis=0)": lambda: hd.sum(Xt, axis=0),
    "sum(X)": lambda: hd.sum(Xt),
    "sum(X, axis=(0, 1))": lambda: hd.sum(Xt, axis=(0, 1)),
    "sum(Z, axis=(0, 2))": lambda: hd.sum(Zt, axis=(0, 2)),
    "sum(Z, axis=-1)": lambda: hd.sum(Zt, axis=-1),
    "sum keepdims": lambda: hd.sum(Zt, axis=1, keepdims=True),
    "mean(X, axis=1, keepdims=True)": lambda: hd.mean(Xt, axis=1, keepdims=True),
    "mean(X)": lambda: hd.mean(Xt),
    "v[1:] - v[:-1]**2": lambda: xt[1:] - xt[:-1] ** 2,
    "v[::2]": lambda: xt[::2],
    "v[::-1]": lambda: xt[::-1],
    "v[3:0:-1]": lambda: xt[3:0:-1],
    "v[-2::-2]": lambda: xt[-2::-2],
    "v[2:2]": lambda: xt[2:2],
    "v[None, 1:3]": lambda: xt[None, 1:3],
    "v[1:3, None]": lambda: xt[1:3, None],
    "v[-1]": lambda: xt[-1],
    "X[:, 1]": lambda: Xt[:, 1],
    "X[1]": lambda: Xt[1],
    "X[1, -1]": lambda: Xt[1, -1],
    "X[-1, :2]": lambda: Xt[-1, :2],
    "Z[..., 1]": lambda: Zt[..., 1],
    "Z[0, None, :, 1:3]": lambda: Zt[0, None, :, 1:3],
    "X[1:][::2]": lambda: Xt[1:][::2],
    "(X @ W)[0]**2": lambda: (Xt @ Wt)[0] ** 2,
    "reshape(X, (2, 6))": lambda: hd.reshape(Xt, (2, 6)),
    "reshape(X, (12,))": lambda: hd.reshape(Xt, (12,)),
    "reshape to ()": lambda: hd.reshape(xt[1:2], ()),
    "transpose(Z, (1, 0, 2))": lambda: hd.transpose(Zt, (1, 0, 2)),
    "broadcast_to(b, (4, 2))": lambda: hd.broadcast_to(bt, (4, 2)),
    "broadcast_to(2, (4, 2))": lambda: hd.broadcast_to(2.0, (4, 2)) * Gt,
    "expand_dims": lambda: hd.expand_dims(Xt, 1),
    "squeeze": lambda: hd.squeeze(Ct),
    "X @ constant(diag)": lambda: Xt @ np.diag([1.0, 2, 3]),
    "constant specials": lambda: hd.constant(
        np.array([[0.1, -0.0, np.inf], [np.nan, -np.inf, 1e300]])) * At,
    "constant vector": lambda: Xt + np.array([1.5, -2.0, 3.0]),
    "matmul chain": lambda: Xt @ (Mt @ Mt) @ Wt,
    "matmul vector": lambda: Xt @ ct + ct @ Mt @ ct,
    "matmul mixed with *": lambda: (Xt * 2) @ Wt * Gt / (Xt @ Wt),
    "matmul(X, W)": lambda: hd.matmul(Xt, Wt),
    "where and comparisons": lambda: hd.where(Xt > 0, Xt, 0) + (Xt <= ct),
    "elementwise with scalars": lambda: hd.sin(Xt * st_) ** st_ - hd.maximum(Xt, st_),
    "mlp loss": mlp_loss,
    "mlp gradient": lambda: hd.gradient(mlp_loss(), W1t),
}


@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_roundtrip_tensor_expressions(name):
    roundtrip(EXPRESSIONS[name]())


def test_printed_forms_of_the_notation():
    assert str(hd.relu(Xt @ Wt + bt)) == "relu(Xt @ Wt + bt)"
    assert str((Xt @ Wt).T) == "(Xt @ Wt).T"
    assert str(hd.sum(Xt, axis=0)) == "sum(Xt, axis=0)"
    assert str(xt[None, 1:3]) == "xt[None, 1:-2]"
    assert str(Xt @ np.diag([1.0, 2, 3])) == "Xt @ constant([[1, 0, 0], [0, 2, 0], [0, 0, 3]])"
    assert (Xt @ np.eye(3)) is Xt                          # I @ B and A @ I simplify


#: one call of each tensor function (by its BUILDERS name), on arguments it accepts
BUILDER_EXAMPLES = {
    "sum": lambda f: f(Zt, axis=(0, 2), keepdims=True),
    "mean": lambda f: f(Zt, axis=1),
    "reshape": lambda f: f(Zt, (4, -1)),
    "transpose": lambda f: f(Zt, (2, 0, 1)),
    "broadcast_to": lambda f: f(ct, (2, 4, 3)),
    "expand_dims": lambda f: f(xt, 0),
    "squeeze": lambda f: f(Ct, 0),
    "matmul": lambda f: f(At, Wt),
    "constant": lambda f: f(np.array([[1.0, 0.5], [-2.0, 3.0]])) * Gt[:2],
    "max": lambda f: f(Zt, axis=1),
    "min": lambda f: f(Xt),
    "logsumexp": lambda f: f(Xt, axis=1),
    "softmax": lambda f: f(Xt),
    "concatenate": lambda f: f([At, Bt, Ct], axis=0),
    "stack": lambda f: f([At, Bt], 1),
    "einsum": lambda f: f("ij,kj->ik", At, Bt),
    "tensordot": lambda f: f(Zt, Mt, ([1], [0])),
    "dot": lambda f: f(Xt, Mt),
    "take": lambda f: f(Xt, [[0, 2], [1, 1]], axis=1),
}


@pytest.mark.parametrize("name", list(BUILDER_EXAMPLES))
def test_roundtrip_every_tensor_function(name):
    if name not in tensor_syntax.BUILDERS:
        pytest.skip(f"{name} is not a tensor function here")
    roundtrip(BUILDER_EXAMPLES[name](tensor_syntax.BUILDERS[name]))


@pytest.mark.parametrize("name", sorted(tensor_syntax.BUILDERS))
def test_every_tensor_function_name_is_callable(name):
    with pytest.raises(ParseError) as info:  # no arguments: the call itself is wrong
        parse(f"{name}()")
    assert "unknown function" not in str(info.value)


SHAPED = st.sampled_from([Xt, Xt * 2, hd.sin(Xt), hd.exp(Xt) @ Mt,
                          hd.constant(np.arange(12.0).reshape(4, 3) - 5.5)])


def _shape_preserving(children: st.SearchStrategy) -> st.SearchStrategy:
    """Operations from (4, 3) values to a (4, 3) value."""
    unary = [lambda e: e[::-1], lambda e: e[:, ::-1], lambda e: e @ Mt,
             lambda e: (Mt @ e.T).T, lambda e: hd.reshape(e.T, (4, 3)),
             lambda e: hd.reshape(hd.broadcast_to(hd.sum(e, axis=0), (2, 2, 3)), (4, 3)),
             lambda e: e - hd.mean(e, axis=1, keepdims=True), lambda e: e * ct,
             lambda e: -e, lambda e: hd.relu(e), lambda e: e ** 2,
             lambda e: hd.transpose(hd.reshape(e, (3, 4)), (1, 0)) + e[0]]
    binary = [lambda a, c: a + c, lambda a, c: a * c, lambda a, c: a / c,
              lambda a, c: a - c, lambda a, c: hd.maximum(a, c),
              lambda a, c: hd.where(a > c, a, c), lambda a, c: a @ c.T @ a]
    return st.one_of(
        st.tuples(st.sampled_from(unary), children).map(lambda p: p[0](p[1])),
        st.tuples(st.sampled_from(binary), children, children).map(
            lambda p: p[0](p[1], p[2])))


def _is_canonical(e: hd.Expr) -> bool:
    """Whether rebuilding every operation from its arguments gives the same node."""
    return all(apply(n.op, *n.args, param=n.param) is n for n in topo_order([e]) if n.args)


@settings(max_examples=100, deadline=None)
@given(st.recursive(SHAPED, _shape_preserving, max_leaves=30))
def test_roundtrip_random_tensor_expressions(e):
    assert _is_canonical(e)
    roundtrip(e)


def test_unbroadcast_operands_are_ordered_canonically():
    """apply() replaces a broadcast_to operand by its argument before it orders the
    operands of a commutative operation, so the printed text builds the same node."""
    e = hd.broadcast_to(ct, (4, 3)) + Xt       # prints "ct + Xt"; ct + Xt is Xt + ct
    assert parse(str(e)) is e
    e = Xt * 2 + Xt / Xt                        # prints "2*Xt + 1": 1 + 2*Xt is another node
    assert parse(str(e)) is e


# -- hand-written text -----------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("Xt @ Wt + bt", lambda: Xt @ Wt + bt),
    ("xt[1:] - xt[:-1]**2", lambda: xt[1:] - xt[:-1] ** 2),
    ("sum(relu(Xt @ W1t + b1t), axis=0)", lambda: hd.sum(hd.relu(Xt @ W1t + b1t), axis=0)),
    ("Wt.T @ Xt.T", lambda: Wt.T @ Xt.T),
    ("Xt.T @ Gt", lambda: Xt.T @ Gt),
    ("Xt @ Wt @ Wt.T", lambda: (Xt @ Wt) @ Wt.T),
    ("Xt @ (Wt @ Wt.T)", lambda: Xt @ (Wt @ Wt.T)),
    ("Xt * 2 @ Mt", lambda: (Xt * 2) @ Mt),
    ("Xt @ Mt * 2", lambda: (Xt @ Mt) * 2),
    ("Xt @ Mt / 2 + 1", lambda: (Xt @ Mt) / 2 + 1),
    ("-Xt @ Mt", lambda: (-Xt) @ Mt),
    ("-Xt.T", lambda: -(Xt.T)),
    ("Xt.T**2", lambda: (Xt.T) ** 2),
    ("Xt.T.T", lambda: Xt),
    ("Xt .T", lambda: Xt.T),
    ("xt[-1]", lambda: xt[-1]),
    ("xt[4]", lambda: xt[-1]),
    ("xt[-0]", lambda: xt[0]),
    ("Xt[1, -1]", lambda: Xt[1, -1]),
    ("Xt[1][2]", lambda: Xt[1][2]),
    ("xt[1:3]", lambda: xt[1:3]),
    ("xt[1:None]", lambda: xt[1:]),
    ("xt[None:None:-1]", lambda: xt[::-1]),
    ("xt[::]", lambda: xt),
    ("xt[:]", lambda: xt),
    ("xt[...]", lambda: xt),
    ("xt[0:5:1]", lambda: xt),
    ("xt[1:-1:2]", lambda: xt[1:-1:2]),
    ("xt[2-1:]", lambda: xt[1:]),
    ("Zt[..., 1]", lambda: Zt[..., 1]),
    ("Zt[1, ...]", lambda: Zt[1, ...]),
    ("Zt[None, ..., None]", lambda: Zt[None, ..., None]),
    ("Xt[:, 1]**2", lambda: Xt[:, 1] ** 2),
    ("(Xt @ Wt)[0, 1]", lambda: (Xt @ Wt)[0, 1]),
    ("sum(Xt, axis=(0, 1))", lambda: hd.sum(Xt)),
    ("sum(Xt, axis=-1, keepdims=True)", lambda: hd.sum(Xt, axis=-1, keepdims=True)),
    ("sum(Xt, 1, False)", lambda: hd.sum(Xt, axis=1)),
    ("sum(Xt, axis=None)", lambda: hd.sum(Xt)),
    ("sum(x=Xt)", lambda: hd.sum(Xt)),
    ("mean(Xt, keepdims=True, axis=0)", lambda: hd.mean(Xt, axis=0, keepdims=True)),
    ("reshape(Xt, (2, -1))", lambda: hd.reshape(Xt, (2, 6))),
    ("reshape(Xt, (12,)) + 1", lambda: hd.reshape(Xt, (12,)) + 1),
    ("reshape(xt[1:2], ())", lambda: hd.reshape(xt[1:2], ())),
    ("transpose(Zt, (1, 0, 2))", lambda: hd.transpose(Zt, (1, 0, 2))),
    ("transpose(Zt)", lambda: Zt.T),
    ("transpose(Zt, axes=(0, 2, 1,))", lambda: hd.transpose(Zt, (0, 2, 1))),
    ("broadcast_to(bt, (4, 2)) + Gt", lambda: hd.broadcast_to(bt, (4, 2)) + Gt),
    ("expand_dims(xt, 0)", lambda: hd.expand_dims(xt, 0)),
    ("expand_dims(xt, axis=-1)", lambda: hd.reshape(xt, (5, 1))),
    ("squeeze(Ct)", lambda: hd.reshape(Ct, (3,))),
    ("matmul(Xt, Wt)", lambda: Xt @ Wt),
    ("constant([[1, 0], [0, 1]]) @ Gt.T", lambda: hd.constant(np.eye(2)) @ Gt.T),
    ("constant([1.5, -2, 1e3]) * Xt", lambda: hd.constant([1.5, -2.0, 1000.0]) * Xt),
    ("constant([-inf, nan, -0.0]) + Xt",
     lambda: hd.constant([-np.inf, np.nan, -0.0]) + Xt),
    ("constant([[[1], [2]]]) * Xt[None, :2, :1]",
     lambda: hd.constant([[[1.0], [2.0]]]) * Xt[None, :2, :1]),
    ("constant([]) @ constant([])", lambda: hd.constant(0.0)),
    ("relu(Xt @ Wt + bt)", lambda: hd.relu(Xt @ Wt + bt)),
    ("where(Xt > 0, Xt, 0) + maximum(Xt, ct)",
     lambda: hd.where(Xt > 0, Xt, 0) + hd.maximum(Xt, ct)),
    ("sin(xt[0]) * st + st", lambda: hd.sin(xt[0]) * st_ + st_),
    ("  Xt  @\tWt  ", lambda: Xt @ Wt),
])
def test_hand_written_text_is_the_built_node(text, expected):
    assert parse(text) is expected()
    assert parse(text, symbols=SYMBOLS) is expected()


def test_let_bindings_with_tensors():
    h = hd.relu(Xt @ W1t + b1t)
    assert parse("h = relu(Xt @ W1t + b1t)\nsum(h, axis=0) + sum(h*h, axis=0)") is (
        hd.sum(h, axis=0) + hd.sum(h * h, axis=0))
    assert parse("y = Xt @ Wt; z = y.T; z[1] @ y") is (Xt @ Wt).T[1] @ (Xt @ Wt)
    assert parse("Xt = Gt.T; Xt @ Gt") is Gt.T @ Gt  # a binding shadows the symbol


def test_large_tensor_gradient_prints_as_let_bindings_and_parses_back():
    roundtrip(hd.gradient(mlp_loss(), W1t))
    W3t = hd.tensor("W3t", (2, 2))
    loss = hd.mean((hd.tanh(hd.relu(Xt @ W1t + b1t) @ W2t) @ W3t - Tt) ** 2) + hd.sum(
        hd.sigmoid(Xt @ W1t) ** 2)
    for e in (hd.gradient(loss, W1t), hd.gradient(loss, b1t), loss):
        text = str(e)
        assert parse(text) is e
    text = str(hd.gradient(loss, W1t))
    assert "\n" in text and " = " in text


def test_flat_tensor_sum_of_100000_terms_parses():
    e = parse(" + ".join(["Xt"] * 100_000))
    assert e.shape == (4, 3) and e.op == "add"


# -- names ------------------------------------------------------------------------------
def test_symbols_argument_resolves_names():
    assert parse("Xt @ Wt", symbols=[Xt, Wt]) is Xt @ Wt
    assert parse("Xt @ Wt", symbols=()) is Xt @ Wt  # interned tensors are found anyway
    fresh = parse("fresh_scalar_name_q", symbols=[Xt])
    assert fresh is symbol("fresh_scalar_name_q") and fresh.shape == ()
    assert parse("Xt = Wt; Xt", symbols=[Xt]) is Wt  # bindings come first
    assert parse("inf", symbols=[Xt]).value == math.inf
    with pytest.raises(TypeError, match="symbols must be Symbols"):
        parse("Xt", symbols=[Xt + 1])
    with pytest.raises(TypeError, match="symbols must be Symbols"):
        parse("Xt", symbols="Xt")  # type: ignore[arg-type]


def test_words_are_literals_only_where_arguments_and_indices_are_read():
    assert parse("None") is symbol("None")
    assert parse("sin(None) + True") is hd.sin(symbol("None")) + symbol("True")
    assert parse("xt[None]") is xt[None]
    assert parse("sum(Xt, axis=None, keepdims=False)") is hd.sum(Xt)
    assert parse("sum = st; sum*2") is st_ * 2  # a tensor-function name can be bound


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, position, message", [
    ("Xt @ Xt", 3, "cannot apply '@'"),
    ("Xt @ Xt", 3, "not aligned"),
    ("Xt + Wt", 3, "do not broadcast together"),
    ("relu(Xt + Wt)", 8, "cannot apply '+'"),
    ("Xt*2 - sum(Xt, axis=(0, 0))", 7, "cannot call 'sum'"),
    ("sum(Xt, axis=2)", 0, "out of bounds"),
    ("reshape(Xt, (5, 5))", 0, "cannot reshape"),
    ("transpose(Xt, (0,))", 0, "not a permutation"),
    ("broadcast_to(Xt, (4,))", 0, "cannot be broadcast"),
    ("maximum(Xt, Wt)", 0, "cannot call 'maximum'"),
    ("sum(Xt, axes=0)", 8, "unknown keyword argument 'axes'"),
    ("sum(Xt, axis=0, axis=1)", 16, "repeated keyword argument 'axis'"),
    ("sin(Xt, axis=0)", 8, "sin takes no keyword arguments"),
    ("sum(axis=0, Xt)", 12, "positional argument after a keyword argument"),
    ("sum(Xt, axis=)", 13, "expected an expression, found ')'"),
    ("reshape(Xt)", 0, "missing a required argument: 'shape'"),
    ("matmul(Xt, Wt, Gt)", 0, "too many positional arguments"),
    ("(2, 6)", 0, "a tuple where an expression is required"),
    ("Xt + (1, 2)", 5, "a tuple where an expression is required"),
    ("()", 0, "a tuple where an expression is required"),
    ("sin((1,))", 4, "a tuple where an expression is required"),
    ("[1, 2] + Xt", 0, "a list where an expression is required"),
    ("'ij' + 1", 0, "a string where an expression is required"),
    ("st[0]", 2, "a scalar cannot be indexed"),
    ("sin(st)[0]", 7, "a scalar cannot be indexed"),
    ("xt[7]", 2, "out of bounds"),
    ("xt[1.5]", 3, "an index must be an integer"),
    ("xt[st]", 3, "an index must be an integer"),
    ("xt[(1, 2)]", 3, "an index must be an integer"),
    ("xt[st:]", 3, "a slice bound must be an integer"),
    ("xt[1:2:3:4]", 8, "a slice has at most three parts"),
    ("xt[::0]", 2, "slice step cannot be zero"),
    ("Xt[1, 2, 3]", 2, "too many indices"),
    ("Xt[..., ...]", 2, "a single ellipsis"),
    ("xt[]", 3, "expected an expression, found ']'"),
    ("xt[,1]", 3, "expected an expression, found ','"),
    ("... + 1", 0, "expected an expression, found '...'"),
    ("st:1", 2, "':' outside a subscript"),
    ("(Xt]", 3, "unbalanced ']'"),
    ("xt[1)", 4, "unbalanced ')'"),
    ("xt[1", 2, "unbalanced '['"),
    ("Xt]", 2, "unbalanced ']'"),
    ("Xt.TT", 2, "unexpected character '.'"),
    ("Xt.t", 2, "unexpected character '.'"),
    ("Xt @", 4, "expected an expression, found the end"),
    ("@ Xt", 0, "expected an expression, found '@'"),
    ("v1 = Xt @ Wt\nv1 + Xt", 3, "do not broadcast together"),
])
def test_error_messages_and_positions(text, position, message):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.position == position, str(info.value)
    assert message in str(info.value)


def test_error_on_a_later_line_has_its_line_and_caret():
    with pytest.raises(ParseError) as info:
        parse("v1 = Xt @ Wt\nv1 + Xt")
    assert (info.value.line, info.value.position) == (1, 3)
    assert str(info.value).splitlines()[1:] == ["  v1 + Xt", "     ^"]


HOSTILE = [
    "Xt[" * 10_000 + "0" + "]" * 10_000, "[" * 10_000, "(" * 10_000,
    "([" * 5_000, "constant(" + "[" * 10_000 + "1" + "]" * 10_000 + ")",
    "sum(" * 10_000 + "Xt" + ")" * 10_000, "(" * 10_000 + ")" * 10_000,
    "Xt[lambda: 0]", "Xt.__class__", "Xt[0].__class__", "einsum(__import__)",
    "reshape(Xt, (2, 6)) = 1", "sum(Xt, axis=0)(1)", "Xt[0](1)", "constant('a')",
    "constant([[1], [1, 2]])", "constant([Xt])", "take(Xt, 1.5)", "einsum(1, Xt)",
    "max(st, st)", "stack([])", "concatenate(())", "sum(Xt, axis=st)", "squeeze(Xt, 0)",
    "expand_dims(Xt, (0, 1))", "reshape(Xt, (2, st))", "Xt[None, None, 0, 0, 0]",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:30]))
def test_hostile_tensor_inputs_raise_parse_error(text):
    with pytest.raises(ParseError):
        parse(text)


def test_deep_brackets_name_the_limit_without_recursion_error():
    for text in ["(" * 10_000 + "Xt" + ")" * 10_000, "[" * 10_000 + "1" + "]" * 10_000,
                 "(" * 5_000 + "[" * 5_000, "xt[" * 10_000 + "0" + "]" * 10_000]:
        with pytest.raises(ParseError, match=f"nesting deeper than {MAX_NESTING}"):
            parse(text)


def test_long_postfix_chains_are_not_nesting():
    assert parse("Xt" + ".T" * 10_000) is Xt
    assert parse("xt" + "[1:]" * 4) is xt[1:][1:][1:][1:]
    e = parse("Xt" + " @ Mt" * 2_000)
    assert e.shape == (4, 3) and e.op == "matmul"
    assert parse("xt" + "[1:]" * 10_000).shape == (0,)


def test_nesting_up_to_the_limit_is_accepted():
    inner = "[" * (MAX_NESTING - 1) + "2" + "]" * (MAX_NESTING - 1)
    with pytest.raises(ParseError, match="cannot call 'constant'"):  # numpy's dims limit
        parse(f"constant({inner})")
    assert parse("sum(" * MAX_NESTING + "Xt" + ")" * MAX_NESTING) is hd.sum(Xt)
    depth = MAX_NESTING - 1
    assert parse("reshape(Xt, " + "(" * depth + "12" + ")" * depth + ")") is hd.reshape(
        Xt, (12,))
    assert parse("xt[" + "(" * depth + "1" + ")" * depth + "]") is xt[1]


def test_operators_still_apply_through_apply():
    # a scalar text keeps building scalar nodes; '@' on scalars is a shape error
    assert parse("st*2 + 1") is apply("add", apply("mul", st_, 2.0), 1.0)
    with pytest.raises(ParseError, match="cannot apply '@'"):
        parse("st @ st")
