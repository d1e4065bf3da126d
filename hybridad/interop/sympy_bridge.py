"""Conversion between hybridad expressions and SymPy.

``to_sympy(expr)`` builds the SymPy form of a DAG, ``from_sympy(sympy_expr)`` builds the
hybridad DAG of a SymPy expression. Both walk their input iteratively with a memo, so a
shared subexpression is converted once and neither direction recurses in Python.

Export (:func:`to_sympy`)
    Each node goes through its registry entry's ``sympy(ns, *args)`` with the namespace
    :data:`SYMPY_NAMESPACE`: SymPy's own names, ``log1p``/``expm1`` from
    ``sympy.codegen.cfunctions`` and this module's SymPy functions :class:`sigmoid`,
    :class:`relu` and :class:`stop_gradient`. Symbols become ``Symbol(name, real=True)``
    (hybridad variables are real, which gives the right derivatives of ``Abs``, ``sign``
    and ``sqrt``); ``real=False`` gives plain symbols. Constants: integral floats become
    ``Integer``, others ``Float`` with the exact binary value (53 bits); ``inf``, ``-inf``
    and ``nan`` become ``oo``, ``-oo`` and ``nan`` (``-0.0`` becomes ``0``). Comparisons
    become relationals (``x < y``); a comparison used as a number is wrapped as
    ``Piecewise((1, x < y), (0, True))`` and ``where(c, a, b)`` becomes
    ``Piecewise((a, c), (b, True))``, with ``Ne(c, 0)`` when ``c`` is not a comparison.

Import (:func:`from_sympy`)
    Symbols by name; every number (``Integer``, ``Rational``, ``Float``, ``pi``, ``E``,
    ``oo``, ``nan``; ``zoo`` as ``nan``) as a float constant; ``true``/``false`` as 1/0.
    ``Add``: positive terms added, terms with a negative coefficient subtracted (a sum
    of negative terms only starts with ``neg``). ``Mul``: coefficient ``-1`` gives
    ``neg``, a rational ``p/q`` puts ``p`` in the numerator and ``q`` in the denominator,
    factors with a negative numeric exponent go to the denominator of one ``div``.
    ``Pow``: exponent ``1/2`` is ``sqrt``, ``-1`` is ``1/b``, ``-1/2`` is ``1/sqrt(b)``,
    base ``E`` is ``exp``, otherwise ``pow``. Functions by class name through the
    registry's ``sympy_names`` (``Max``/``Min`` with several arguments are folded);
    ``log(x, b)`` is ``log(x)/log(b)``; ``Piecewise`` is nested ``where`` (``nan`` when
    no condition holds); relationals are ``lt``/``le``/``gt``/``ge``; ``Eq``/``Ne``,
    ``And``/``Or``/``Not``/``Xor``/``Implies``/``ITE`` become 0/1 arithmetic on comparisons; ``Heaviside(x, h0)`` is
    ``where(x > 0, 1, where(x < 0, 0, h0))``. Anything else raises
    :class:`SympyBridgeError` naming the SymPy type.

Round trips
    ``from_sympy(to_sympy(e)) is e`` for every primitive applied to symbols. In general
    the round trip is equal in value, not in structure: SymPy merges ``x*x`` into
    ``x**2``, sorts terms and simplifies with real assumptions (``sqrt(x**2)`` is
    ``Abs(x)``, ``log(exp(x))`` is ``x``). A known ambiguity: ``x**-1.0`` exports as
    SymPy's ``1/x`` and comes back as ``1/x`` (a ``div``), ``x**0.5`` with an exact
    exponent ``1/2`` would come back as ``sqrt`` (hybridad's ``0.5`` exports as a
    ``Float`` and stays a ``pow``).

Limits
    SymPy's own algorithms (printing, ``diff``, ``subs``, ``evalf``) recurse, so
    :func:`to_sympy` refuses expressions deeper than :data:`MAX_SYMPY_DEPTH` operations
    with a :class:`SympyBridgeError` instead of letting SymPy hit a ``RecursionError``.
    Keep deep computations in hybridad (``hd.diff``, ``hd.evaluate``).

>>> import hybridad as hd
>>> from hybridad.interop.sympy_bridge import from_sympy, to_sympy
>>> x1, x2 = hd.symbols("x1 x2")
>>> to_sympy(hd.log(x1) + x1*x2 - hd.sin(x2))
x1*x2 + log(x1) - sin(x2)
>>> f = hd.log(x1) + x1*x2 - hd.sin(x2)
>>> from_sympy(to_sympy(f)) is f
True
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import sympy
from sympy.codegen.cfunctions import expm1 as _sympy_expm1
from sympy.codegen.cfunctions import log1p as _sympy_log1p
from sympy.core.basic import Basic
from sympy.core.cache import cacheit
from sympy.core.containers import Tuple
from sympy.core.function import ArgumentIndexError
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import Boolean

from ..core.build import apply, as_expr
from ..core.expr import CONSTANT, SYMBOL, Expr, constant, is_number, symbol
from ..core.registry import PRIMITIVES
from ..core.traverse import depths, topo_order
from ..errors import HybridadError

__all__ = [
    "MAX_SYMPY_DEPTH", "SYMPY_NAMESPACE", "SYMPY_NUMPY_FUNCTIONS", "SympyBridgeError",
    "from_sympy", "relu", "sigmoid", "stop_gradient", "to_sympy",
]

#: Deepest hybridad expression :func:`to_sympy` converts. Measured (CPython 3.11, SymPy
#: 1.14, default recursion limit 1000) on a chain of sin: ``str`` fails from about 200
#: levels and ``sympy.diff`` from about 150 (SymPy spends several Python frames per level);
#: 100 keeps ``str``, ``srepr``, ``diff``, ``subs`` and ``evalf`` working with room for
#: the caller's own stack (a test runner alone takes ~100 frames).
MAX_SYMPY_DEPTH = 100


class SympyBridgeError(HybridadError, ValueError):
    """An expression that cannot be converted to or from SymPy."""


# --------------------------------------------------------------------------------------
# hybridad's own SymPy functions
# --------------------------------------------------------------------------------------
def _numeric_arg(function: sympy.Function, prec: int) -> sympy.Expr | None:
    """The argument evaluated to ``prec`` bits when it is a number, else None."""
    value = function.args[0]._evalf(prec)
    return value if value.is_number else None


class _Printable:
    """Code printing of hybridad's SymPy functions through a plain SymPy form, so that
    ``sympy.lambdify`` (numpy, scipy, math, mpmath, sympy modules), ``sympy.ccode`` and
    friends work on what :func:`to_sympy` exports. String printing keeps the name.
    Each function class defines ``plain()``: itself written with SymPy's operations."""

    def _print_plain(self, printer: Any) -> str:
        return printer._print(self.plain())

    # each code printer asks for its own method name (Printer.printmethod)
    _pythoncode = _mpmathcode = _lambdacode = _ccode = _print_plain

    def _numpycode(self, printer: Any) -> str:     # numpy, scipy, jax, cupy
        return self._print_plain(printer)

    _scipycode = _cupycode = _jaxcode = _numpycode


class sigmoid(_Printable, sympy.Function):  # noqa: N801  (SymPy functions are lower case)
    """Logistic sigmoid ``1/(1 + exp(-x))``; derivative ``sigmoid(x)*(1 - sigmoid(x))``."""

    def plain(self) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-self.args[0]))

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:  # noqa: SymPy hook, not eval()
        if x.is_zero:
            return sympy.S.Half
        if x is sympy.S.Infinity:
            return sympy.S.One
        if x is sympy.S.NegativeInfinity:
            return sympy.S.Zero
        if isinstance(x, sympy.Float):
            return 1 / (1 + sympy.exp(-x))
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return self * (1 - self)

    def _eval_rewrite_as_exp(self, x: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-x))

    def _eval_evalf(self, prec: int) -> sympy.Expr | None:
        x = _numeric_arg(self, prec)
        return None if x is None else (1 / (1 + sympy.exp(-x)))._evalf(prec)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _eval_is_finite(self) -> bool | None:
        return True if self.args[0].is_extended_real else None


class relu(_Printable, sympy.Function):  # noqa: N801
    """``Max(x, 0)``; derivative ``Heaviside(x, 0)`` (0 at the kink, as hybridad)."""

    def plain(self) -> sympy.Expr:
        return sympy.Max(self.args[0], sympy.S.Zero)

    def _numpycode(self, printer: Any) -> str:
        # numpy-like printers print Max as amax of a tuple, which fails for an array
        # beside a scalar; their elementwise maximum (nan-propagating, as hybridad's)
        return (f"{printer._module_format(printer._module + '.maximum')}"
                f"({printer._print(self.args[0])}, 0.0)")

    _scipycode = _cupycode = _jaxcode = _numpycode

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:  # noqa: SymPy hook, not eval()
        if x.is_Number:
            return sympy.Max(x, sympy.S.Zero)
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return sympy.Heaviside(self.args[0], 0)

    def _eval_rewrite_as_Max(self, x: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return sympy.Max(x, sympy.S.Zero)

    def _eval_rewrite_as_Piecewise(self, x: sympy.Expr, **kwargs: Any) -> sympy.Expr:
        return sympy.Piecewise((x, x > 0), (0, True))

    def _eval_evalf(self, prec: int) -> sympy.Expr | None:
        x = _numeric_arg(self, prec)
        return None if x is None else sympy.Max(x, sympy.S.Zero)._evalf(prec)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real

    def _eval_is_extended_nonnegative(self) -> bool | None:
        return True if self.args[0].is_extended_real else None

    def _eval_is_finite(self) -> bool | None:
        return self.args[0].is_finite


class stop_gradient(_Printable, sympy.Function):  # noqa: N801
    """Identity whose derivative is zero."""

    def plain(self) -> sympy.Expr:
        return self.args[0]

    nargs = 1

    @classmethod
    def eval(cls, x: sympy.Expr) -> sympy.Expr | None:  # noqa: SymPy hook, not eval()
        return x if x.is_Number else None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        if argindex != 1:
            raise ArgumentIndexError(self, argindex)
        return sympy.S.Zero

    def _eval_evalf(self, prec: int) -> sympy.Expr | None:
        return _numeric_arg(self, prec)

    def _eval_is_extended_real(self) -> bool | None:
        return self.args[0].is_extended_real


#: numpy implementations of the functions SymPy's numpy printer does not know, for
#: ``sympy.lambdify(args, expr, modules=[SYMPY_NUMPY_FUNCTIONS, "numpy"])``.
SYMPY_NUMPY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: PRIMITIVES[name].numpy
    for name in ("sigmoid", "relu", "stop_gradient", "log1p", "expm1")
}


# --------------------------------------------------------------------------------------
# to_sympy
# --------------------------------------------------------------------------------------
def _is_boolean(value: Any) -> bool:
    """A truth value (relational, true/false, And...), not a number; a SymPy Symbol is
    both a Boolean and an Expr and counts as a number here."""
    return isinstance(value, bool) or (isinstance(value, Boolean)
                                       and not isinstance(value, sympy.Expr))


def _as_value(value: sympy.Basic) -> sympy.Basic:
    """A SymPy boolean used as a number becomes ``Piecewise((1, b), (0, True))``."""
    if _is_boolean(value):
        return sympy.Piecewise((sympy.S.One, value), (sympy.S.Zero, True))
    return value


def _as_condition(value: Any) -> Any:
    """A Piecewise condition: booleans as they are, the 0/1 wrapper of a boolean
    unwrapped, any other number ``c`` as ``Ne(c, 0)`` (hybridad's "nonzero is true")."""
    if _is_boolean(value):
        return value
    if isinstance(value, sympy.Piecewise) and _is_indicator(value):
        return value.args[0].cond
    return sympy.Ne(value, 0)


def _is_indicator(piecewise: sympy.Piecewise) -> bool:
    """True for ``Piecewise((1, b), (0, True))``."""
    args = piecewise.args
    return (len(args) == 2 and args[0].expr == 1 and args[1].expr == 0
            and args[1].cond is sympy.true)


def _piecewise(*pairs: tuple[Any, Any]) -> sympy.Expr:
    """Piecewise with hybridad conditions; a Piecewise in the final "otherwise" clause is
    merged in, so nested ``where`` becomes one flat Piecewise as SymPy writes it."""
    clauses = [(value, _as_condition(cond)) for value, cond in pairs]
    last_value, last_cond = clauses[-1]
    if (last_cond is True or last_cond is sympy.true) and isinstance(
            last_value, sympy.Piecewise):
        clauses[-1:] = [tuple(pair) for pair in last_value.args]
    if _contains_piecewise([cond for _, cond in clauses]):
        return _unfolded_piecewise(*(sympy.sympify(part) for pair in clauses
                                     for part in pair))
    return sympy.Piecewise(*clauses)


def _contains_piecewise(roots: list[Any]) -> bool:
    """Whether a Piecewise occurs in ``roots`` (iterative, each shared node once)."""
    seen: set[int] = set()
    stack = [r for r in roots if isinstance(r, sympy.Basic)]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, sympy.Piecewise):
            return True
        stack.extend(e.args)
    return False


@cacheit
def _unfolded_piecewise(*flat: sympy.Basic) -> sympy.Expr:
    """``Piecewise((flat[0], flat[1]), (flat[2], flat[3]), ...)`` whose conditions contain
    a Piecewise, built as it is.

    SymPy's constructor would fold such a condition into ``ITE`` form, which doubles the
    expression per level of nesting (a chain of ``where`` on earlier ``where`` results
    would take minutes); here false clauses are dropped and clauses after a true one
    cut off, as SymPy does, and nothing else is rewritten. Cached like SymPy's own
    constructors, so equal arguments give the identical object (comparing distinct
    equal copies of a shared DAG would walk it as a tree).
    """
    kept: list[ExprCondPair] = []
    for value, cond in zip(flat[0::2], flat[1::2]):
        if cond is sympy.false:
            continue
        kept.append(Tuple.__new__(ExprCondPair, value, cond))
        if cond is sympy.true:
            break
    if not kept:
        return sympy.nan
    if kept[0].cond is sympy.true:
        return kept[0].expr
    return Basic.__new__(sympy.Piecewise, *kept)


class _Namespace:
    """SymPy's names plus hybridad's: what the registry's ``sympy(ns, *args)`` sees."""

    log1p = _sympy_log1p
    expm1 = _sympy_expm1
    sigmoid = sigmoid
    relu = relu
    stop_gradient = stop_gradient
    Piecewise = staticmethod(_piecewise)

    def __getattr__(self, name: str) -> Any:
        return getattr(sympy, name)


#: The namespace passed to every registry entry's ``sympy(ns, *args)``.
SYMPY_NAMESPACE = _Namespace()


def _sympy_number(value: float) -> sympy.Expr:
    if math.isnan(value):
        return sympy.nan
    if math.isinf(value):
        return sympy.oo if value > 0 else sympy.S.NegativeInfinity
    if value.is_integer():
        return sympy.Integer(int(value))
    return sympy.Float(value, precision=53)


def _check_depth(order: list[Expr]) -> None:
    deepest = max(depths(order).values(), default=0)
    if deepest > MAX_SYMPY_DEPTH:
        raise SympyBridgeError(
            f"to_sympy: the expression is {deepest} operations deep; SymPy handles at "
            f"most {MAX_SYMPY_DEPTH} (its algorithms recurse and would exceed Python's "
            "recursion limit). Keep deep expressions in hybridad (hd.diff, hd.evaluate) "
            "or convert smaller pieces."
        )


def _convert_to_sympy(roots: list[Expr], real: bool) -> list[Any]:
    order = topo_order(roots)
    _check_depth(order)
    assumptions = {"real": True} if real else {}
    memo: dict[Expr, Any] = {}
    for node in order:
        if node.op == SYMBOL:
            memo[node] = sympy.Symbol(node.param, **assumptions)
        elif node.op == CONSTANT:
            memo[node] = _sympy_number(node.param)
        else:
            args = [_as_value(memo[a]) for a in node.args]
            memo[node] = PRIMITIVES[node.op].sympy(SYMPY_NAMESPACE, *args)
    return [memo[r] for r in roots]


def _as_expr_checked(value: Any, caller: str) -> Expr:
    try:
        return as_expr(value)
    except TypeError as error:
        raise TypeError(f"{caller}: {error}") from None


def to_sympy(expr: Any, real: bool = True) -> Any:
    """The SymPy form of a hybridad expression.

    ``expr`` is an Expr (or a number), a list or tuple of them (a list comes back) or a
    numpy object array (an object array of the same shape comes back). Several
    expressions are converted together, each shared node once. Symbols are real unless
    ``real=False``. Raises :class:`SympyBridgeError` for expressions deeper than
    :data:`MAX_SYMPY_DEPTH`.

    >>> import hybridad as hd
    >>> x, y = hd.symbols("x y")
    >>> to_sympy([hd.sqrt(x) / y, hd.where(x < y, x, 0.5)])
    [sqrt(x)/y, Piecewise((x, x < y), (0.5, True))]
    """
    if isinstance(expr, np.ndarray):
        flat = [_as_expr_checked(e, "to_sympy") for e in expr.ravel()]
        out = np.empty(len(flat), dtype=object)
        out[:] = _convert_to_sympy(flat, real) if flat else []
        return out.reshape(expr.shape)
    if isinstance(expr, (list, tuple)):
        return _convert_to_sympy([_as_expr_checked(e, "to_sympy") for e in expr], real)
    return _convert_to_sympy([_as_expr_checked(expr, "to_sympy")], real)[0]


# --------------------------------------------------------------------------------------
# from_sympy
# --------------------------------------------------------------------------------------
def _reverse_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for prim in PRIMITIVES.values():
        for sympy_name in prim.sympy_names:
            names[sympy_name] = prim.name
    return names


#: SymPy class name -> hybridad primitive, from the registry's ``sympy_names``.
_FUNCTIONS: dict[str, str] = _reverse_names()

_RELATIONALS = {"StrictLessThan": "lt", "LessThan": "le", "StrictGreaterThan": "gt",
                "GreaterThan": "ge"}

_LOGIC = (sympy.Eq, sympy.Ne, sympy.And, sympy.Or, sympy.Not, sympy.Xor, sympy.Implies,
          sympy.ITE, sympy.Heaviside)


def _supported(e: sympy.Basic) -> bool:
    """A function-like node converted argument by argument (see ``_build_function``)."""
    name = type(e).__name__
    return isinstance(e, _LOGIC) or name in _FUNCTIONS or name in _RELATIONALS


def _is_ratio(number: sympy.Basic, p: int, q: int) -> bool:
    """True when ``number`` is exactly the rational p/q (a Float never is)."""
    return bool(number.is_Rational and number.p == p and number.q == q)


def _float_of(number: sympy.Expr) -> float:
    """A SymPy number as the nearest float (zoo and complex infinity give nan)."""
    if number is sympy.S.ComplexInfinity or number is sympy.nan:
        return math.nan
    try:
        return float(number)
    except OverflowError:  # a huge Integer or Rational
        return math.inf if number > 0 else -math.inf


def _is_number_atom(e: sympy.Basic) -> bool:
    return bool(e.is_Number or e.is_NumberSymbol or e is sympy.S.ComplexInfinity)


def _negative_coefficient(term: sympy.Expr) -> bool:
    coefficient = term.as_coeff_Mul()[0]
    return bool(coefficient.is_Number and coefficient.is_extended_negative)


def _denominator_power(factor: sympy.Expr) -> bool:
    """True for ``b**e`` with a negative finite numeric exponent (a denominator factor)."""
    return bool(factor.is_Pow and factor.exp.is_Number and factor.exp.is_extended_negative
                and factor.exp.is_finite)


def _ne_zero_operand(cond: sympy.Basic) -> sympy.Expr | None:
    """``c`` for the condition ``Ne(c, 0)`` (or ``Ne(0, c)``), else None."""
    if isinstance(cond, sympy.Ne):
        lhs, rhs = cond.args
        if rhs == 0:
            return lhs
        if lhs == 0:
            return rhs
    return None


def _unsupported(e: Any) -> SympyBridgeError:
    kind = type(e).__name__
    try:
        text = str(e)
    except RecursionError:
        text = "..."
    text = text if len(text) <= 60 else text[:57] + "..."
    hint = ""
    if isinstance(e, (sympy.Integral, sympy.Derivative, sympy.Sum, sympy.Product)):
        hint = " Evaluate it first with .doit()."
    return SympyBridgeError(
        f"from_sympy: SymPy's {kind} ({text}) has no hybridad equivalent; rewrite it "
        f"with supported functions (elementary functions, Abs, sign, Max, Min, "
        f"Piecewise, Heaviside, comparisons), e.g. with .rewrite(...).{hint}"
    )


class _FromSympy:
    """Iterative post-order conversion with a memo keyed by SymPy subexpression."""

    def __init__(self) -> None:
        self.memo: dict[sympy.Basic, Expr] = {}
        self.children: dict[sympy.Basic, list[sympy.Basic]] = {}

    def convert(self, root: sympy.Basic) -> Expr:
        memo, stack = self.memo, [root]
        while stack:
            e = stack[-1]
            if e in memo:
                stack.pop()
                continue
            kids = self.children.get(e)
            if kids is None:
                kids = self.children[e] = self._children(e)
                missing = [k for k in kids if k not in memo]
                if missing:
                    stack.extend(reversed(missing))
                    continue
            stack.pop()
            memo[e] = self._build(e, [memo[k] for k in kids])
            del self.children[e]
        return memo[root]

    # -- which subexpressions a node needs -------------------------------------------
    def _children(self, e: sympy.Basic) -> list[sympy.Basic]:
        if e.is_Symbol or _is_number_atom(e) or e in (sympy.true, sympy.false):
            return []
        if e.is_Add:
            return [-t if _negative_coefficient(t) else t for t in e.args]
        if e.is_Mul:
            factors = e.as_coeff_mul()[1]
            return [f.base if _denominator_power(f) else f for f in factors]
        if e.is_Pow:
            if _is_ratio(e.exp, 1, 2) or _is_ratio(e.exp, -1, 1) or _is_ratio(e.exp, -1, 2):
                return [e.base]
            return [e.exp] if e.base is sympy.E else [e.base, e.exp]
        if isinstance(e, sympy.Piecewise):
            kids: list[sympy.Basic] = []
            for value, cond in e.args:
                operand = _ne_zero_operand(cond)
                kids += [value, cond if operand is None else operand]
            return kids
        if _supported(e):
            return list(e.args)
        raise _unsupported(e)

    # -- building the node from converted children -----------------------------------
    def _build(self, e: sympy.Basic, kids: list[Expr]) -> Expr:
        if e.is_Symbol:
            return _symbol(e)
        if _is_number_atom(e):
            return constant(_float_of(e))
        if e is sympy.true or e is sympy.false:
            return constant(1.0 if e is sympy.true else 0.0)
        if e.is_Add:
            return _build_add(e, kids)
        if e.is_Mul:
            return _build_mul(e, kids)
        if e.is_Pow:
            return _build_pow(e, kids)
        if isinstance(e, sympy.Piecewise):
            return _build_piecewise(e, kids)
        return _build_function(e, kids)


def _symbol(e: sympy.Symbol) -> Expr:
    try:
        return symbol(e.name)
    except ValueError:
        raise SympyBridgeError(f"from_sympy: the SymPy symbol name {e.name!r} is not an "
                               "identifier; rename it (e.g. with .subs)") from None


def _build_add(e: sympy.Add, kids: list[Expr]) -> Expr:
    positive = [k for t, k in zip(e.args, kids) if not _negative_coefficient(t)]
    negative = [k for t, k in zip(e.args, kids) if _negative_coefficient(t)]
    if positive:
        total = positive[0]
        for k in positive[1:]:
            total = apply("add", total, k)
    else:
        total, negative = apply("neg", negative[0]), negative[1:]
    for k in negative:
        total = apply("sub", total, k)
    return total


def _product(factors: list[Expr]) -> Expr | None:
    if not factors:
        return None
    total = factors[0]
    for f in factors[1:]:
        total = apply("mul", total, f)
    return total


def _build_mul(e: sympy.Mul, kids: list[Expr]) -> Expr:
    coefficient, factors = e.as_coeff_mul()
    negative = bool(coefficient.is_extended_negative)
    magnitude = -coefficient if negative else coefficient
    numerator: list[Expr] = []
    denominator: list[Expr] = []
    if magnitude.is_Rational:
        if magnitude.p != 1:
            numerator.append(constant(_float_of(sympy.Integer(magnitude.p))))
        if magnitude.q != 1:
            denominator.append(constant(_float_of(sympy.Integer(magnitude.q))))
    elif magnitude != 1:
        numerator.append(constant(_float_of(magnitude)))
    for factor, kid in zip(factors, kids):
        if _denominator_power(factor):
            denominator.append(_power(kid, -factor.exp))
        else:
            numerator.append(kid)
    top = _product(numerator)
    bottom = _product(denominator)
    if top is None:
        top = constant(1.0)
    result = top if bottom is None else apply("div", top, bottom)
    return apply("neg", result) if negative else result


def _power(base: Expr, exponent: sympy.Expr) -> Expr:
    """``base**exponent`` for a positive numeric exponent (1 and 1/2 special)."""
    if _is_ratio(exponent, 1, 1):
        return base
    if _is_ratio(exponent, 1, 2):
        return apply("sqrt", base)
    return apply("pow", base, constant(_float_of(exponent)))


def _build_pow(e: sympy.Pow, kids: list[Expr]) -> Expr:
    if _is_ratio(e.exp, 1, 2):
        return apply("sqrt", kids[0])
    if _is_ratio(e.exp, -1, 1):
        return apply("div", constant(1.0), kids[0])
    if _is_ratio(e.exp, -1, 2):
        return apply("div", constant(1.0), apply("sqrt", kids[0]))
    if e.base is sympy.E:
        return apply("exp", kids[0])
    return apply("pow", kids[0], kids[1])


def _build_piecewise(e: sympy.Piecewise, kids: list[Expr]) -> Expr:
    clauses = list(zip(kids[0::2], kids[1::2], e.args))
    if e.args[-1].cond is sympy.true:
        result = clauses.pop()[0]
    else:
        result = constant(math.nan)
    for value, cond, (_, sympy_cond) in reversed(clauses):
        if _is_01(sympy_cond) and value is _ONE and result is _ZERO:
            result = cond  # Piecewise((1, b), (0, True)) is b itself
        else:
            result = apply("where", cond, value, result)
    return result


_ONE, _ZERO = constant(1.0), constant(0.0)


def _is_01(cond: sympy.Basic) -> bool:
    """True when the condition converts to a 0/1 value (not the ``Ne(c, 0)`` shortcut)."""
    return _ne_zero_operand(cond) is None


def _heaviside(x: Expr, at_zero: Expr) -> Expr:
    inner = apply("where", apply("lt", x, _ZERO), _ZERO, at_zero)
    return apply("where", apply("gt", x, _ZERO), _ONE, inner)


def _equal(a: Expr, b: Expr) -> Expr:
    """1 where a == b else 0 (exact in IEEE arithmetic, nan included)."""
    return apply("mul", apply("le", a, b), apply("ge", a, b))


def _fold(name: str, kids: list[Expr]) -> Expr:
    total = kids[0]
    for k in kids[1:]:
        total = apply(name, total, k)
    return total


def _build_logic(e: sympy.Basic, kids: list[Expr]) -> Expr:
    """Boolean connectives on 0/1 values."""
    if isinstance(e, sympy.And):
        return _fold("mul", kids)
    if isinstance(e, sympy.Or):
        return _fold("maximum", kids)
    if isinstance(e, sympy.Xor):
        total = kids[0]
        for k in kids[1:]:
            total = apply("abs", apply("sub", total, k))
        return total
    if isinstance(e, sympy.Implies):
        return apply("maximum", apply("sub", _ONE, kids[0]), kids[1])
    if isinstance(e, sympy.ITE):
        return apply("where", *kids)
    return apply("sub", _ONE, kids[0])  # Not


def _build_function(e: sympy.Basic, kids: list[Expr]) -> Expr:
    name = type(e).__name__
    if isinstance(e, sympy.Eq):
        return _equal(*kids)
    if isinstance(e, sympy.Ne):
        return apply("sub", _ONE, _equal(*kids))
    if name in _RELATIONALS:
        return apply(_RELATIONALS[name], *kids)
    if isinstance(e, _LOGIC[2:-1]):
        return _build_logic(e, kids)
    if isinstance(e, sympy.Heaviside):
        return _heaviside(kids[0], kids[1] if len(kids) > 1 else constant(0.5))
    if isinstance(e, sympy.log) and len(kids) == 2:
        return apply("div", apply("log", kids[0]), apply("log", kids[1]))
    prim = PRIMITIVES[_FUNCTIONS[name]]
    if prim.arity == 2 and len(kids) > 2 and prim.commutative:
        return _fold(prim.name, kids)
    if len(kids) != prim.arity:
        raise SympyBridgeError(f"from_sympy: {name} with {len(kids)} arguments; hybridad's "
                               f"{prim.name} takes {prim.arity}")
    return apply(prim.name, *kids)


def _from_python(value: Any) -> sympy.Basic:
    if isinstance(value, sympy.Basic):
        return value
    if is_number(value):
        return sympy.Float(float(value), precision=53) if not float(value).is_integer() \
            else sympy.Integer(int(value))
    raise SympyBridgeError(f"from_sympy: expected a SymPy expression, got "
                           f"{type(value).__name__}")


def from_sympy(sympy_expr: Any) -> Any:
    """The hybridad expression of a SymPy expression.

    A list or tuple gives a list, a numpy array or SymPy matrix gives a numpy object array
    of the same shape; all items share one memo, so common subexpressions are built once
    and the work is linear in the number of distinct subexpressions, even when SymPy's
    tree (as opposed to its DAG) is exponentially large. Raises
    :class:`SympyBridgeError` for SymPy objects without a hybridad equivalent.

    >>> import sympy
    >>> x, y = sympy.symbols("x y")
    >>> from_sympy(sympy.sqrt(x) - 2*y/3)
    sqrt(x) - 2*y/3
    >>> from_sympy(sympy.Max(x, y, 0))
    maximum(maximum(0, x), y)
    """
    converter = _FromSympy()
    if isinstance(sympy_expr, (np.ndarray, sympy.MatrixBase)):
        array = np.asarray(sympy_expr.tolist() if isinstance(sympy_expr, sympy.MatrixBase)
                           else sympy_expr, dtype=object)
        out = np.empty(array.shape, dtype=object)
        for index in np.ndindex(*array.shape):
            out[index] = converter.convert(_from_python(array[index]))
        return out
    if isinstance(sympy_expr, (list, tuple)):
        return [converter.convert(_from_python(e)) for e in sympy_expr]
    return converter.convert(_from_python(sympy_expr))
