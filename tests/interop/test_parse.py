"""Tests for hybridad.interop.parse: grammar, round trips through str(), hostile input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybridad as hd
from hybridad.core.build import apply
from hybridad.core.expr import constant, symbol
from hybridad.core.registry import ALIASES, PRIMITIVES, elementwise_names
from hybridad.errors import ParseError
from hybridad.interop.parse import MAX_NESTING, parse

x, y, z, a, b, c = hd.symbols("x y z a b c")
x1, x2 = hd.symbols("x1 x2")


def roundtrip(e: hd.Expr) -> None:
    text = str(e)
    back = parse(text)
    assert back is e, f"{text!r} parsed to {back!r}"


# -- grammar ---------------------------------------------------------------------------
def test_textbook_example_is_the_operator_built_node():
    f = parse("log(x1) + x1*x2 - sin(x2)")
    assert f is hd.log(x1) + x1 * x2 - hd.sin(x2)
    assert round(float(f.evaluate({x1: 2.0, x2: 5.0})), 3) == 11.652


@pytest.mark.parametrize("text, expected", [
    ("-x**2", lambda: -(x ** 2)),
    ("(-x)**2", lambda: (-x) ** 2),
    ("x**y**z", lambda: x ** (y ** z)),
    ("x^y^z", lambda: x ** (y ** z)),
    ("x^2", lambda: x ** 2),
    ("2**-x", lambda: 2 ** (-x)),
    ("x**-y**z", lambda: x ** (-(y ** z))),
    ("2**-x*y", lambda: (2 ** (-x)) * y),
    ("a - b - c", lambda: (a - b) - c),
    ("a - (b - c)", lambda: a - (b - c)),
    ("a/b/c", lambda: (a / b) / c),
    ("a/(b/c)", lambda: a / (b / c)),
    ("a + b*c", lambda: a + b * c),
    ("(a + b)*c", lambda: (a + b) * c),
    ("-a*b", lambda: (-a) * b),
    ("a*-b", lambda: a * (-b)),
    ("+x", lambda: x),
    ("+-+x", lambda: -x),
    ("--x", lambda: x),
    ("a + b < c*2", lambda: (a + b) < c * 2),
    # apply(), not "(-a) < b": Python would try the Symbol's reflected b.__gt__ first
    ("-a < b", lambda: apply("lt", -a, b)),
    ("(a < b) >= c", lambda: apply("ge", a < b, c)),
    ("a <= (b > c)", lambda: a <= (b > c)),
    ("where(x > 0, a, b)", lambda: hd.where(x > 0, a, b)),
    ("where(x - 1 <= y, a**2, -b)", lambda: hd.where(apply("le", x - 1, y), a ** 2, -b)),
    ("  x  +\ty  ", lambda: x + y),
])
def test_precedence_and_associativity(text, expected):
    assert parse(text) is expected()


@pytest.mark.parametrize("text, value", [
    ("2**3**2", 512.0), ("-2**2", -4.0), ("(-2)**2", 4.0), ("2**-1", 0.5),
    ("1", 1.0), ("2.5", 2.5), ("1e-3", 1e-3), (".5", 0.5), ("5.", 5.0),
    ("2.5e+20", 2.5e20), ("1E5", 1e5), ("1e400", math.inf), ("-1e400", -math.inf),
    ("inf", math.inf), ("-inf", -math.inf), ("7 - 2*3", 1.0), ("1/0", math.inf),
])
def test_numbers_and_constant_folding(text, value):
    node = parse(text)
    assert node.is_constant and node.value == value


def test_special_constants():
    assert parse("nan") is constant(math.nan)
    assert parse("-0.0") is constant(-0.0)
    assert math.copysign(1.0, parse("-0.0").value) < 0
    assert parse("0.0") is constant(0.0)


@pytest.mark.parametrize("text, expected", [
    ("atan2(y, x)", lambda: hd.arctan2(y, x)),
    ("arctan2(y, x)", lambda: hd.arctan2(y, x)),
    ("ln(x)", lambda: hd.log(x)),
    ("asin(x) + acos(x) + atan(x)", lambda: hd.arcsin(x) + hd.arccos(x) + hd.arctan(x)),
    ("pow(x, y)", lambda: x ** y),
    ("power(x, 2)", lambda: x ** 2),
    ("maximum(x, relu(y))", lambda: hd.maximum(x, hd.relu(y))),
    ("sigmoid(stop_gradient(abs(sign(x))))",
     lambda: hd.sigmoid(hd.stop_gradient(hd.abs(hd.sign(x))))),
])
def test_calls_by_name_and_alias(text, expected):
    assert parse(text) is expected()


def test_names_that_are_not_called_are_symbols():
    assert parse("sin") is symbol("sin")
    assert parse("sin + sin(sin)") is symbol("sin") + hd.sin(symbol("sin"))
    assert parse("_private_1") is symbol("_private_1")
    assert parse("lambda + import") is symbol("lambda") + symbol("import")


def test_flat_sum_of_100000_terms_is_not_nesting():
    e = parse(" + ".join(["x"] * 100_000))
    assert e.op == "add"
    assert float(e.evaluate({x: 1.0})) == 100_000.0


# -- let-bindings ----------------------------------------------------------------------
def test_let_bindings_and_shadowing():
    s = hd.sin(x)
    assert parse("v1 = sin(x)\nv2 = v1*v1 + x\nv2/v1") is (s * s + x) / s
    assert parse("u = x + 1; u*u") is (x + 1) * (x + 1)
    assert parse("\n  x = y + 1 \n\n x*2  \n\n") is (y + 1) * 2  # x shadows the symbol
    assert parse("a1 = x;\r\nb1 = a1 + a1\r\nb1;") is x + x
    assert parse(";; x ;;") is x  # empty statements are ignored


@pytest.mark.parametrize("text, line, position, message", [
    ("x = 1", 0, 5, "ends with a binding"),
    ("x = 1\n", 0, 5, "ends with a binding"),
    ("v = 1\nv = 2\nv", 1, 0, "cannot rebind 'v'"),
    ("sin = x\nsin", 0, 0, "cannot bind 'sin'"),
    ("ln = x; x", 0, 0, "cannot bind 'ln'"),
    ("inf = 1; x", 0, 0, "cannot bind 'inf'"),
    ("x; y", 0, 0, "expression before the last statement"),
    ("x = = 1; x", 0, 4, "expected an expression, found '='"),
    ("v = x\nv(2)", 1, 0, "not a function"),
    ("x + 1 = y\nx", 0, 6, "unexpected '='"),
])
def test_binding_errors(text, line, position, message):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert (info.value.line, info.value.position) == (line, position)
    assert message in str(info.value)


# -- round trips through str() ---------------------------------------------------------
@pytest.mark.parametrize("name", elementwise_names())
def test_roundtrip_every_primitive(name):
    e = apply(name, *[x, y, z][:PRIMITIVES[name].arity])
    roundtrip(e)
    roundtrip(apply(name, *[x + 1, y * z, -z][:PRIMITIVES[name].arity]))


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_every_alias_calls_its_primitive(alias):
    prim = PRIMITIVES[ALIASES[alias]]
    args = [x, y, z][:prim.arity]
    assert parse(f"{alias}({', '.join(map(str, args))})") is apply(prim.name, *args)


CONSTANTS = [-3.0, -2.5, 0.5, 2.0, 3.0, -0.0, 0.0, math.inf, -math.inf, math.nan, 1e-300,
             1e300, -1e300, 5e-324, 1e16, 123456789.125, 2.0 ** 60, -1.0, 1.0, 0.1]


@pytest.mark.parametrize("value", CONSTANTS, ids=repr)
def test_roundtrip_constants_inside_expressions(value):
    k = constant(value)
    for e in [k, x + k, k - x, x - k, k * x, x / k, k / x, x ** k, k ** x, (k * x) ** y,
              hd.where(x > k, k, y), k < x, x >= k, hd.maximum(x, k), -(k * x), hd.sin(k * x)]:
        roundtrip(e)


def test_roundtrip_comparisons_and_where():
    for e in [hd.where(x > 0, a, b), (x < y) < z, x <= (y > z), (x < y) + (y >= z),
              hd.where((x < y) > (a <= b), -(x < y), (a > b) ** 2), -(x > 1)]:
        roundtrip(e)


SYMBOLS = [x, y, z]
LEAVES = st.one_of(
    st.sampled_from(SYMBOLS),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, math.inf, math.nan]).map(constant),
    st.floats(allow_nan=True, allow_infinity=True).map(constant),
)


def _applications(children: st.SearchStrategy) -> st.SearchStrategy:
    def build(name: str) -> st.SearchStrategy:
        arity = PRIMITIVES[name].arity
        return st.tuples(*[children] * arity).map(lambda args: apply(name, *args))

    return st.sampled_from(elementwise_names()).flatmap(build)


EXPRESSIONS = st.recursive(LEAVES, _applications, max_leaves=60)


@settings(max_examples=100, deadline=None)
@given(EXPRESSIONS)
def test_roundtrip_random_expressions(e):
    roundtrip(e)


def test_large_shared_dag_prints_as_let_bindings_and_parses_back():
    logistic = x
    for _ in range(30):
        logistic = 4 * logistic * (1 - logistic)
    derivative = hd.diff(logistic, x)
    for e in (logistic, derivative):
        text = str(e)
        assert "\n" in text and " = " in text
        roundtrip(e)


def test_100000_deep_chain_roundtrips_without_recursion_error():
    e = x
    for _ in range(100_000):
        e = hd.sin(e) + x
    roundtrip(e)


def test_nesting_up_to_the_limit_is_accepted():
    depth = MAX_NESTING
    assert parse("(" * depth + "x" + ")" * depth) is x
    assert parse("-" * depth + "x") is x
    assert parse("sin(" * depth + "x" + ")" * depth).op == "sin"


# -- errors ----------------------------------------------------------------------------
HOSTILE = [
    "__import__('os')", "__import__(os)", "x.__class__", "lambda: 1", "lambda x: x",
    "().__class__", "[x]", "{x}", "x; import os", "import os", "os.system('ls')", '"x"',
    "'x'", "`x`", "x[0]", "x if y else z", "x == y", "x != y", "x % y", "x // y", "x @ y",
    "x & y", "not x", "x = 1", "x = 1;", "x:y", "a, b", "f(x)", "eval('1')",
    "exec('x')", "sin(x) $", "\\x", "x\\\ny", "1.2.3", "1e", "1e+", "2x", "0x10", "1_000",
    "x y", "sin x", "sin(x)(y)", "x(2)", "(x)(2)", "()", "sin()", "sin(x,)", "sin(,x)",
    "sin(x, y)", "where(x, y)", "(", ")", "(x", "x)", "((x)", "x +", "* x", "x * * y",
    "a < b < c", "a < b > c", "a <= b + 1 >= c", "", "   ", "\n\n", ";", ";;\n;",
    "(" * 100_000 + "x" + ")" * 100_000, "-" * 10_000 + "x", "+" * 10_000 + "x",
    "x" + "**x" * 10_000, "sin(" * 1_000 + "x" + ")" * 1_000, "\x00", "x\u00e9",
    "\u0661", "x\u00a0+ y", "add(x, y)", "neg(x)", "lt(x, y)",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: repr(t[:30]))
def test_hostile_inputs_raise_parse_error(text):
    with pytest.raises(ParseError):
        parse(text)


def test_deep_nesting_names_the_limit():
    for text in ["(" * 100_000 + "x" + ")" * 100_000, "-" * 10_000 + "x",
                 "x" + "**x" * 10_000]:
        with pytest.raises(ParseError, match=f"nesting deeper than {MAX_NESTING}"):
            parse(text)
    with pytest.raises(ParseError) as info:
        parse("(" * (MAX_NESTING + 1) + "x" + ")" * (MAX_NESTING + 1))
    assert info.value.position == MAX_NESTING


def test_parse_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse("x +")


def test_unknown_function_position_and_caret():
    with pytest.raises(ParseError) as info:
        parse("sinn(x)")
    error = info.value
    assert (error.line, error.position) == (0, 0)
    assert str(error).startswith("unknown function 'sinn' at column 0")
    assert "did you mean 'sin'?" in str(error)
    assert str(error).splitlines()[1:] == ["  sinn(x)", "  ^"]


def test_bad_character_position_and_caret():
    with pytest.raises(ParseError) as info:
        parse("x + $")
    error = info.value
    assert (error.line, error.position) == (0, 4)
    assert "unexpected character '$' at column 4" in str(error)
    assert str(error).splitlines()[1:] == ["  x + $", "      ^"]


def test_error_on_a_later_line_shows_that_line():
    with pytest.raises(ParseError) as info:
        parse("v1 = sin(x)\nv2 = v1 + cos(v1))\nv2")
    error = info.value
    assert (error.line, error.position) == (1, 17)
    assert "of line 2" in str(error)
    assert str(error).splitlines()[1:] == ["  v2 = v1 + cos(v1))", " " * 19 + "^"]


@pytest.mark.parametrize("text, position, expected", [
    ("sin(x, y)", 0, "sin takes 1 argument, got 2"),
    ("x + sin()", 4, "sin takes 1 argument, got 0"),
    ("where(x > 0, y)", 0, "where takes 3 arguments, got 2"),
    ("atan2(x)", 0, "atan2 takes 2 arguments, got 1"),
    ("2*maximum(x, y, z)", 2, "maximum takes 2 arguments, got 3"),
])
def test_argument_count_errors(text, position, expected):
    with pytest.raises(ParseError, match="wrong number of arguments") as info:
        parse(text)
    assert info.value.position == position
    assert expected in str(info.value)


@pytest.mark.parametrize("text, position, expected", [
    ("x * qqq(y)", 4, "unknown function 'qqq' at column 4"),
    ("__import__(x)", 0, "unknown function '__import__' at column 0"),
    ("add(x, y)", 0, "add is written with the operator '+'"),
    ("neg(x)", 0, "neg is written with the operator '-'"),
    ("x + y + (x)(2)", 11, "only a function name can be called"),
    ("a < b < c", 6, "comparisons do not chain"),
    ("x y", 2, "unexpected 'y' after an expression"),
    ("(x + y", 0, "unbalanced '('"),
    ("x + y)", 5, "unbalanced ')'"),
    ("x +", 3, "expected an expression, found the end"),
    ("f(x, y", 0, "unknown function 'f'"),
    ("sin(x, y", 0, "unbalanced '('"),
    ("a, b", 1, "',' outside a function call"),
    ("x.y", 1, "unexpected character '.'"),
    ("1.2.3", 0, "malformed number '1.2.3'"),
    ("", 0, "empty input"),
])
def test_error_messages_and_positions(text, position, expected):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert info.value.position == position
    assert expected in str(info.value)


def test_non_string_input_is_a_type_error():
    with pytest.raises(TypeError):
        parse(b"x")  # type: ignore[arg-type]
