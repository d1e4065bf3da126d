"""The registry entries: one :class:`Primitive` per operation.

Partial rules follow DESIGN.md §3: d|x|/dx = sign(x) (0 at 0); maximum/minimum split
ties 1/2 - 1/2 (written as (1 ± sign(a - b)) / 2); where passes the chosen branch only;
comparisons, sign and stop_gradient have no partial (structural zero). Rules reuse the
node's output where that is cheaper (exp -> out, tanh -> 1 - out², sigmoid -> out(1-out)).

Construction-time simplifications use *symbolic* semantics, as SymPy does: ``x*0 -> 0``,
``0/x -> 0``, ``x - x -> 0`` and ``x/x -> 1`` hold even though numerically x could be inf
or nan (where IEEE gives nan), and ``x + 0 -> x`` even for x = -0.0. This is the one
place a value may differ from plain numpy; every mode shares the simplified DAG, so the
modes still agree with each other. All other rewrites are exact in IEEE arithmetic.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from . import build as b
from .build import ONE, ZERO, is_const
from .expr import Expr
from .registry import Flags, Infix, Primitive, register

F = Flags
WIDE = (-4.0, 4.0)
POSITIVE = (0.2, 5.0)
UNIT = (-0.9, 0.9)


def _is_op(node: Expr, name: str) -> bool:
    return node.op == name


# -- simplifiers (each lists its rules; operands already canonical, not all constant) --
def _negation(node: Expr) -> Expr | None:
    """-node when that is no bigger than node (exact in IEEE): -(-u) = u, -(c) = |c| and
    -(c*u) = |c|*u for a negative constant c; otherwise None."""
    if _is_op(node, "neg"):
        return node.args[0]
    if is_const(node) and node.param < 0:
        return b.constant(-node.param)
    if _is_op(node, "mul") and is_const(node.args[0]) and node.args[0].param < 0:
        return b.apply("mul", -node.args[0].param, node.args[1])
    return None


def _simplify_add(x: Expr, y: Expr) -> Expr | None:
    """0 + y -> y; x + (-y) -> x - y and (-x) + y -> y - x, where -y is a negation, a
    negative constant or a product with a negative constant (x + -2*y -> x - 2*y)."""
    if is_const(x, 0.0):
        return y
    negated_y = _negation(y)
    if negated_y is not None:
        return b.apply("sub", x, negated_y)
    negated_x = _negation(x)
    if negated_x is not None:
        return b.apply("sub", y, negated_x)
    return None


def _simplify_sub(x: Expr, y: Expr) -> Expr | None:
    """x - x -> 0 (symbolic); x - 0 -> x; 0 - y -> -y; x - (-y) -> x + y (with -y as in
    add: x - -2*y -> x + 2*y)."""
    if x is y:
        return ZERO
    if is_const(y, 0.0):
        return x
    if is_const(x, 0.0):
        return b.apply("neg", y)
    negated_y = _negation(y)
    if negated_y is not None:
        return b.apply("add", x, negated_y)
    return None


def _simplify_mul(x: Expr, y: Expr) -> Expr | None:
    """0 * y -> 0 (symbolic); 1 * y -> y; -1 * y -> -y; (-x) * y -> -(x * y) (either
    side, so signs gather at the top where add/sub absorb them); c1 * (c2 * z) ->
    (c1 c2) * z when that product of constants is exact (derivative rules make many
    such chains, e.g. 100 * (2 * t) from d/dt 100 t**2)."""
    if is_const(x, 0.0):
        return ZERO
    if is_const(x, 1.0):
        return y
    if is_const(x, -1.0):
        return b.apply("neg", y)
    if is_const(x) and _is_op(y, "mul") and is_const(y.args[0]):
        merged = _exact_product(x.param, y.args[0].param)
        if merged is not None:
            return b.apply("mul", merged, y.args[1])
    return _pull_negation("mul", x, y)


def _exact_product(c1: float, c2: float) -> float | None:
    """c1 * c2 when one is a power of two and the product is a normal number: then
    c1 * (c2 * z) == (c1 * c2) * z for every z whose product does not overflow or
    underflow (where the merged form is the more accurate one)."""
    if not (math.isfinite(c1) and math.isfinite(c2)):
        return None
    if abs(math.frexp(c1)[0]) != 0.5 and abs(math.frexp(c2)[0]) != 0.5:
        return None
    product = c1 * c2
    return product if product != 0.0 and abs(product) >= sys.float_info.min and \
        math.isfinite(product) else None


def _pull_negation(name: str, x: Expr, y: Expr) -> Expr | None:
    """(-x) op y -> -(x op y) and x op (-y) -> -(x op y), exact for * and /."""
    if _is_op(x, "neg") and _is_op(y, "neg"):
        return b.apply(name, x.args[0], y.args[0])
    if _is_op(x, "neg"):
        return b.apply("neg", b.apply(name, x.args[0], y))
    if _is_op(y, "neg"):
        return b.apply("neg", b.apply(name, x, y.args[0]))
    return None


def _simplify_div(x: Expr, y: Expr) -> Expr | None:
    """x / x -> 1 and 0 / y -> 0 (symbolic); x / 1 -> x; x / -1 -> -x; negations pulled
    out as for mul."""
    if x is y:
        return ONE
    if is_const(x, 0.0):
        return ZERO
    if is_const(y, 1.0):
        return x
    if is_const(y, -1.0):
        return b.apply("neg", x)
    return _pull_negation("div", x, y)


def _simplify_neg(x: Expr) -> Expr | None:
    """-(-x) -> x."""
    return x.args[0] if _is_op(x, "neg") else None


def _simplify_pow(x: Expr, y: Expr) -> Expr | None:
    """x ** 1 -> x; x ** 0 -> 1; 1 ** y -> 1 (all exact: pow(nan, 0) = pow(1, nan) = 1)."""
    if is_const(y, 1.0):
        return x
    if is_const(y, 0.0) or is_const(x, 1.0):
        return ONE
    return None


def _simplify_idempotent(x: Expr, y: Expr) -> Expr | None:
    """max(x, x) -> x; min(x, x) -> x."""
    return x if x is y else None


def _simplify_abs(x: Expr) -> Expr | None:
    """|(|x|)| -> |x|; |-x| -> |x|."""
    if _is_op(x, "abs"):
        return x
    if _is_op(x, "neg"):
        return b.apply("abs", x.args[0])
    return None


def _simplify_stop_gradient(x: Expr) -> Expr | None:
    """stop_gradient(stop_gradient(x)) -> stop_gradient(x)."""
    return x if _is_op(x, "stop_gradient") else None


def _simplify_where(c: Expr, x: Expr, y: Expr) -> Expr | None:
    """where(c, x, x) -> x; where(constant c, x, y) -> x if c != 0 else y; where(c, 1, 0)
    -> c for a comparison c (which is already 1.0 or 0.0: relu's derivative is x > 0)."""
    if x is y:
        return x
    if is_const(c):
        return x if c.param != 0 else y
    if is_const(x, 1.0) and is_const(y, 0.0) and c.op in _COMPARISONS:
        return c
    return None


_COMPARISONS = ("lt", "le", "gt", "ge")


_WHERE_DOC = """``a`` where ``condition`` is nonzero (true), else ``b``; elementwise over arrays.

The derivative flows through the chosen branch only. In reverse mode an inf or nan
partial inside the branch *not* taken can still turn into nan (0 * inf); guard such a
branch with a second where on its input ("double where"), e.g.
``where(x > 0, sqrt(where(x > 0, x, 1)), 0)``.
"""


# -- numpy evaluations not provided by numpy under the right name --------------------
def _where(c, x, y):
    return np.where(c != 0, x, y)[()]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _relu(x):
    return np.maximum(x, 0.0)


def _identity(x):
    return x


def _comparison(function):
    return lambda x, y: function(x, y) * 1.0


def _tie_split(x: Expr, y: Expr) -> Expr:
    """d max(x, y)/dx: 1 if x > y, 0 if x < y, 1/2 on a tie (nan if either is nan)."""
    return b.multiply(0.5, b.add(ONE, b.sign(b.subtract(x, y))))


# -- LLVM lowerings (``e`` is the backend's emitter: arithmetic, ``call`` of a libm
# function or intrinsic by its C name, ordered comparisons, select; see
# hybridad/backend/llvm/emitter.py). Same formulas and NaN behaviour as the numpy column.
def _lower_sigmoid(e, x):
    return e.div(e.const(1.0), e.add(e.const(1.0), e.call("exp", e.neg(x))))


def _lower_sign(e, x):
    """1, -1, or x + 0 for ±0 and nan (np.sign gives +0 and keeps nan)."""
    zero_or_nan = e.select(e.cmp("<", x, e.const(0.0)), e.const(-1.0), e.add(x, e.const(0.0)))
    return e.select(e.cmp(">", x, e.const(0.0)), e.const(1.0), zero_or_nan)


def _lower_maximum(e, x, y):
    """NaN-propagating like np.maximum (never maxnum): x if x is nan or x > y, else y
    (so a nan y, and y on ties, as numpy)."""
    return e.select(e.cmp("isnan", x, x), x, e.select(e.cmp(">", x, y), x, y))


def _lower_minimum(e, x, y):
    return e.select(e.cmp("isnan", x, x), x, e.select(e.cmp("<", x, y), x, y))


def _binary_op(name, numpy, partials, symbol, precedence, simplify, sympy, flags,
               domain=(WIDE, WIDE), right_assoc=False, llvm=None, public=None, ufuncs=(),
               doc=""):
    return register(Primitive(name, 2, numpy, partials, sympy, simplify, (), flags,
                              domain, Infix(symbol, precedence, right_assoc), llvm,
                              public=public, ufuncs=ufuncs, doc=doc))


def _function(name, arity, numpy, partials, sympy, sympy_names, flags, domain,
              simplify=None, aliases=(), llvm=None, public=None, ufuncs=(), doc=""):
    return register(Primitive(name, arity, numpy, partials, sympy, simplify, sympy_names,
                              flags, domain, None, llvm, aliases, public=public or name,
                              ufuncs=ufuncs, doc=doc))


SMOOTH0 = F.SMOOTH | F.ZERO_AT_ZERO

# arithmetic --------------------------------------------------------------------------
ADD = _binary_op("add", np.add, (lambda x, y, out: ONE, lambda x, y, out: ONE), "+", 1,
                 _simplify_add, lambda s, x, y: x + y,
                 F.COMMUTATIVE | F.LINEAR | SMOOTH0,
    llvm=lambda e, x, y: e.add(x, y), public="add", ufuncs=(np.add,), doc="a + b")
SUB = _binary_op("sub", np.subtract, (lambda x, y, out: ONE, lambda x, y, out: b.constant(-1.0)),
                 "-", 1, _simplify_sub, lambda s, x, y: x - y, F.LINEAR | SMOOTH0,
    llvm=lambda e, x, y: e.sub(x, y), public="subtract", ufuncs=(np.subtract,), doc="a - b")
MUL = _binary_op("mul", np.multiply, (lambda x, y, out: y, lambda x, y, out: x), "*", 2,
                 _simplify_mul, lambda s, x, y: x * y, F.COMMUTATIVE | SMOOTH0,
    llvm=lambda e, x, y: e.mul(x, y), public="multiply", ufuncs=(np.multiply,), doc="a * b")
DIV = _binary_op("div", np.true_divide,
                 (lambda x, y, out: b.divide(ONE, y), lambda x, y, out: b.negative(out / y)),
                 "/", 2, _simplify_div, lambda s, x, y: x / y, F.SMOOTH,
                 (WIDE, POSITIVE),
    llvm=lambda e, x, y: e.div(x, y), public="divide", ufuncs=(np.true_divide,), doc="a / b")
def _pow_base_partial(x: Expr, y: Expr, out: Expr) -> Expr:
    """d x**y / dx = y x**(y-1), and 0 where y == 0 (x**0 is 1 for every x, but the
    product is 0 * inf = nan at x = 0). Folds to y x**(y-1) for a constant y != 0."""
    return b.where(_is_zero(y), ZERO, y * b.power(x, y - ONE))


def _pow_exponent_partial(x: Expr, y: Expr, out: Expr) -> Expr:
    """d x**y / dy = x**y log x, and 0 where x == 0: 0**y is 0 for every y > 0, so 0 is
    the derivative there (x**y log x is 0 * -inf = nan), and 0 at y = 0 as in JAX,
    autograd and PyTorch. For y < 0 we also give 0 (0**y is inf for every y < 0; JAX
    gives nan, PyTorch -inf): then a constant zero base, whose partial folds to 0 at
    construction, and a symbolic base that is zero at run time agree. The log's
    argument is guarded too ("double where"), so no nan leaks into second derivatives
    for y > 0. Folds to out * log(x) for a constant x != 0."""
    zero = _is_zero(x)
    return b.where(zero, ZERO, out * b.log(b.where(zero, ONE, x)))


def _is_zero(x: Expr) -> Expr:
    """1.0 where x == 0 (either sign), else 0.0; nan compares false."""
    return b.less_equal(b.abs(x), ZERO)


POW = _binary_op("pow", np.power, (_pow_base_partial, _pow_exponent_partial),
                 "**", 4, _simplify_pow, lambda s, x, y: s.Pow(x, y), F.SMOOTH,
                 (POSITIVE, (-2.5, 2.5)), right_assoc=True,
    llvm=lambda e, x, y: e.call("pow", x, y),
    public="power", ufuncs=(np.power,),
    doc="a ** b (real power; nan for a negative base and fractional b)")
NEG = _function("neg", 1, np.negative, (lambda x, out: b.constant(-1.0),),
                lambda s, x: -x, (), F.LINEAR | SMOOTH0, (WIDE,), _simplify_neg,
    llvm=lambda e, x: e.neg(x), public="negative", ufuncs=(np.negative,), doc="-x")

# elementary functions ----------------------------------------------------------------
SIN = _function("sin", 1, np.sin, (lambda x, out: b.cos(x),), lambda s, x: s.sin(x),
                ("sin",), SMOOTH0, (WIDE,),
    llvm=lambda e, x: e.call("sin", x), public="sin", ufuncs=(np.sin,), doc="Sine.")
COS = _function("cos", 1, np.cos, (lambda x, out: -b.sin(x),), lambda s, x: s.cos(x),
                ("cos",), F.SMOOTH, (WIDE,),
    llvm=lambda e, x: e.call("cos", x), public="cos", ufuncs=(np.cos,), doc="Cosine.")
TAN = _function("tan", 1, np.tan, (lambda x, out: ONE + out * out,), lambda s, x: s.tan(x),
                ("tan",), SMOOTH0, ((-1.4, 1.4),),
    llvm=lambda e, x: e.call("tan", x), public="tan", ufuncs=(np.tan,), doc="Tangent.")
ARCSIN = _function("arcsin", 1, np.arcsin,
                   (lambda x, out: ONE / b.sqrt(ONE - x * x),), lambda s, x: s.asin(x),
                   ("asin",), SMOOTH0, (UNIT,), aliases=("asin",),
    llvm=lambda e, x: e.call("asin", x),
    public="arcsin", ufuncs=(np.arcsin,), doc="Inverse sine (nan outside [-1, 1]).")
ARCCOS = _function("arccos", 1, np.arccos,
                   (lambda x, out: -(ONE / b.sqrt(ONE - x * x)),), lambda s, x: s.acos(x),
                   ("acos",), F.SMOOTH, (UNIT,), aliases=("acos",),
    llvm=lambda e, x: e.call("acos", x),
    public="arccos", ufuncs=(np.arccos,), doc="Inverse cosine (nan outside [-1, 1]).")
ARCTAN = _function("arctan", 1, np.arctan, (lambda x, out: ONE / (ONE + x * x),),
                   lambda s, x: s.atan(x), ("atan",), SMOOTH0, (WIDE,), aliases=("atan",),
    llvm=lambda e, x: e.call("atan", x),
    public="arctan", ufuncs=(np.arctan,), doc="Inverse tangent.")
ARCTAN2 = _function("arctan2", 2, np.arctan2,
                    (lambda y, x, out: x / (x * x + y * y),
                     lambda y, x, out: -y / (x * x + y * y)),
                    lambda s, y, x: s.atan2(y, x), ("atan2",), F.SMOOTH,
                    (WIDE, POSITIVE), aliases=("atan2",),
    llvm=lambda e, y, x: e.call("atan2", y, x),
    public="arctan2", ufuncs=(np.arctan2,),
    doc="arctan2(y, x): the angle of the point (x, y), as numpy.")
SINH = _function("sinh", 1, np.sinh, (lambda x, out: b.cosh(x),), lambda s, x: s.sinh(x),
                 ("sinh",), SMOOTH0, (WIDE,),
    llvm=lambda e, x: e.call("sinh", x), public="sinh", ufuncs=(np.sinh,), doc="Hyperbolic sine.")
COSH = _function("cosh", 1, np.cosh, (lambda x, out: b.sinh(x),), lambda s, x: s.cosh(x),
                 ("cosh",), F.SMOOTH, (WIDE,),
    llvm=lambda e, x: e.call("cosh", x), public="cosh", ufuncs=(np.cosh,), doc="Hyperbolic cosine.")
TANH = _function("tanh", 1, np.tanh, (lambda x, out: ONE - out * out,),
                 lambda s, x: s.tanh(x), ("tanh",), SMOOTH0, (WIDE,),
    llvm=lambda e, x: e.call("tanh", x),
    public="tanh", ufuncs=(np.tanh,), doc="Hyperbolic tangent.")
EXP = _function("exp", 1, np.exp, (lambda x, out: out,), lambda s, x: s.exp(x), ("exp",),
                F.SMOOTH, (WIDE,),
    llvm=lambda e, x: e.call("exp", x), public="exp", ufuncs=(np.exp,), doc="Exponential.")
LOG = _function("log", 1, np.log, (lambda x, out: ONE / x,), lambda s, x: s.log(x),
                ("log",), F.SMOOTH, (POSITIVE,), aliases=("ln",),
    llvm=lambda e, x: e.call("log", x),
    public="log", ufuncs=(np.log,), doc="Natural logarithm (nan for negative input, -inf at 0).")
LOG1P = _function("log1p", 1, np.log1p, (lambda x, out: ONE / (ONE + x),),
                  lambda s, x: s.log1p(x), ("log1p",), SMOOTH0, ((-0.8, 4.0),),
    llvm=lambda e, x: e.call("log1p", x),
    public="log1p", ufuncs=(np.log1p,), doc="log(1 + x), accurate for small x.")
EXPM1 = _function("expm1", 1, np.expm1, (lambda x, out: out + ONE,),
                  lambda s, x: s.expm1(x), ("expm1",), SMOOTH0, (WIDE,),
    llvm=lambda e, x: e.call("expm1", x),
    public="expm1", ufuncs=(np.expm1,), doc="exp(x) - 1, accurate for small x.")
SQRT = _function("sqrt", 1, np.sqrt, (lambda x, out: 0.5 / out,), lambda s, x: s.sqrt(x),
                 (), F.SMOOTH, (POSITIVE,),
    llvm=lambda e, x: e.call("sqrt", x),
    public="sqrt", ufuncs=(np.sqrt,), doc="Square root (nan for negative input).")
SIGMOID = _function("sigmoid", 1, _sigmoid, (lambda x, out: out * (ONE - out),),
                    lambda s, x: s.sigmoid(x), ("sigmoid",), F.SMOOTH, (WIDE,),
    llvm=_lower_sigmoid, public="sigmoid", doc="Logistic sigmoid 1 / (1 + exp(-x)).")

# piecewise ---------------------------------------------------------------------------
ABS = _function("abs", 1, np.abs, (lambda x, out: b.sign(x),), lambda s, x: s.Abs(x),
                ("Abs",), F.ZERO_AT_ZERO, (WIDE,), _simplify_abs,
    llvm=lambda e, x: e.call("fabs", x),
    public="abs", ufuncs=(np.absolute,), doc="Absolute value; its derivative is sign(x), 0 at 0.")
SIGN = _function("sign", 1, np.sign, (None,), lambda s, x: s.sign(x), ("sign",),
                 F.NONDIFF | F.ZERO_AT_ZERO, (WIDE,),
    llvm=_lower_sign,
    public="sign", ufuncs=(np.sign,), doc="Sign: -1, 0 or 1 (nan for nan); derivative 0.")
RELU = _function("relu", 1, _relu, (lambda x, out: b.where(b.greater(out, ZERO), ONE, ZERO),),
                 lambda s, x: s.relu(x), ("relu",), F.ZERO_AT_ZERO, (WIDE,),
    llvm=lambda e, x: _lower_maximum(e, x, e.const(0.0)),
    public="relu", doc="max(x, 0); derivative 1 for x > 0, else 0 (as JAX and PyTorch).")
MAXIMUM = _function("maximum", 2, np.maximum,
                    (lambda x, y, out: _tie_split(x, y), lambda x, y, out: _tie_split(y, x)),
                    lambda s, x, y: s.Max(x, y), ("Max",), F.COMMUTATIVE | F.ZERO_AT_ZERO,
                    (WIDE, WIDE), _simplify_idempotent,
    llvm=_lower_maximum,
    public="maximum", ufuncs=(np.maximum,),
    doc="Elementwise maximum; propagates nan; ties split 1/2 - 1/2.")
MINIMUM = _function("minimum", 2, np.minimum,
                    (lambda x, y, out: _tie_split(y, x), lambda x, y, out: _tie_split(x, y)),
                    lambda s, x, y: s.Min(x, y), ("Min",), F.COMMUTATIVE | F.ZERO_AT_ZERO,
                    (WIDE, WIDE), _simplify_idempotent,
    llvm=_lower_minimum,
    public="minimum", ufuncs=(np.minimum,),
    doc="Elementwise minimum; propagates nan; ties split 1/2 - 1/2.")
WHERE = _function("where", 3, _where,
                  (None,
                   lambda c, x, y, out: b.where(c, ONE, ZERO),
                   lambda c, x, y, out: b.where(c, ZERO, ONE)),
                  lambda s, c, x, y: s.Piecewise((x, c), (y, True)), ("Piecewise",),
                  F.NONE, (WIDE, WIDE, WIDE), _simplify_where,
    llvm=lambda e, c, x, y: e.select(e.cmp("!=", c, e.const(0.0)), x, y),
    public="where", doc=_WHERE_DOC)
STOP_GRADIENT = _function("stop_gradient", 1, _identity, (None,),
                          lambda s, x: s.stop_gradient(x), ("stop_gradient",), F.NONDIFF,
                          (WIDE,), _simplify_stop_gradient,
    llvm=lambda e, x: x, public="stop_gradient", doc="Identity whose derivative is zero.")

# comparisons (1.0 / 0.0, for where) --------------------------------------------------
_CMP = F.NONDIFF | F.COMPARISON
LT = _binary_op("lt", _comparison(np.less), (None, None), "<", 0, None,
                lambda s, x, y: s.StrictLessThan(x, y), _CMP,
    llvm=lambda e, x, y: e.flag(e.cmp("<", x, y)),
    public="less", ufuncs=(np.less,), doc="a < b as 1.0 / 0.0 (for where).")
LE = _binary_op("le", _comparison(np.less_equal), (None, None), "<=", 0, None,
                lambda s, x, y: s.LessThan(x, y), _CMP,
    llvm=lambda e, x, y: e.flag(e.cmp("<=", x, y)),
    public="less_equal", ufuncs=(np.less_equal,), doc="a <= b as 1.0 / 0.0 (for where).")
GT = _binary_op("gt", _comparison(np.greater), (None, None), ">", 0, None,
                lambda s, x, y: s.StrictGreaterThan(x, y), _CMP,
    llvm=lambda e, x, y: e.flag(e.cmp(">", x, y)),
    public="greater", ufuncs=(np.greater,), doc="a > b as 1.0 / 0.0 (for where).")
GE = _binary_op("ge", _comparison(np.greater_equal), (None, None), ">=", 0, None,
                lambda s, x, y: s.GreaterThan(x, y), _CMP,
    llvm=lambda e, x, y: e.flag(e.cmp(">=", x, y)),
    public="greater_equal", ufuncs=(np.greater_equal,), doc="a >= b as 1.0 / 0.0 (for where).")
