"""Safe text parser: ``parse(text)`` reads the text ``str(expr)`` prints back to ``expr``.

The input is data, never code: a hand-written tokenizer (one ASCII regular expression)
and an operator-precedence parser build nodes only through the registry constructors
(``apply``, ``symbol``, ``constant``) and the tensor functions of
:data:`hybridad.core.tensor_syntax.BUILDERS`. Nothing here calls ``eval``, ``exec``,
``compile`` or Python's tokenizer, so text such as ``__import__('os')`` is just a
syntax error.

Grammar (lowest precedence first)::

    text       := statement ((NEWLINE | ';') statement)*    -- blank statements ignored
    statement  := NAME '=' expression                       -- a let-binding, not last
                | expression                                -- the result, last
    expression := sum (('<' | '<=' | '>' | '>=') sum)?      -- comparisons never chain
    sum        := product (('+' | '-') product)*            -- left-associative
    product    := unary (('*' | '/' | '@') unary)*          -- left-associative; @ matmul
    unary      := ('-' | '+') unary | power                 -- so -x**2 is -(x**2)
    power      := postfix (('**' | '^') unary)?             -- right-associative
    postfix    := atom ('.T' | '[' index (',' index)* ']')* -- X.T, v[1:], X[:, 0]
    atom       := NUMBER | NAME | '(' expression ')'
                | NAME '(' (argument (',' argument)*)? ')'
    index      := INT | INT? ':' INT? (':' INT?)? | 'None' | '...'
    argument   := expression                                -- every call
                | NAME '=' value | value                    -- tensor-function calls
    value      := expression | tuple | list | STRING | 'None' | 'True' | 'False'
    tuple      := '(' ')' | '(' value ',' ')' | '(' value (',' value)+ ','? ')'
    list       := '[' (value (',' value)*)? ']'

INT is an expression that folds to an integer-valued constant (``2``, ``-1``); a slice
bound may also be ``None``. STRING is ``'...'`` or ``"..."`` without escapes (an
``einsum`` specification).

A NAME not followed by ``(`` is a let-bound name, the constant ``inf`` or ``nan``, a
symbol passed in ``symbols``, an existing symbol of that name (with its shape), or else
a new scalar Symbol. A call takes a registry function by name or alias (``sin``,
``atan2``, ``ln``, ``where``...), or ``pow``/``power``; the operator primitives
(``add``, ``neg``, ``lt``...) are written with their operators. Otherwise a call name is
a tensor function of :data:`~hybridad.core.tensor_syntax.BUILDERS` (``sum``, ``reshape``,
``constant``...), called with Python values: expressions, ints (integer-valued
constants), tuples, lists (numbers become a numpy array: int64 when every one is an
integer, else float64), strings, ``None``, ``True``, ``False`` and keyword arguments.
Tuples, lists, strings and the three words are only arguments of those calls.

The parser keeps its own operand and operator stacks instead of recursing, so no input
can raise ``RecursionError`` and a flat sum of 100,000 terms costs no depth. Nesting
(open parentheses, brackets and calls, pending unary signs and ``**``) is limited to
:data:`MAX_NESTING` as a policy against hostile input. An operation that cannot be
built (shapes that do not fit, an index out of range, an unknown keyword) is a
:class:`ParseError` at its operator, call or bracket.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from ..core import tensor_ops, tensor_syntax
from ..core.build import apply
from ..core.expr import Constant, Expr, Symbol, constant, is_number, symbol
from ..core.printing import COMPARISON, UNARY
from ..core.registry import ALIASES, PRIMITIVES, Primitive
from ..errors import ParseError

__all__ = ["MAX_NESTING", "parse"]

#: deepest nesting of parentheses, brackets, calls, unary signs and powers that
#: ``parse`` accepts
MAX_NESTING = 500

def _binary_operators() -> dict[str, tuple[str, int]]:
    """Binary operator text -> (primitive name, precedence), from the registry entries'
    infix forms (the printer's precedences), plus ``^`` for the power operator."""
    table = {prim.infix.symbol: (prim.name, prim.infix.precedence)
             for prim in PRIMITIVES.values() if prim.infix is not None}
    table["^"] = table["**"]
    return table


#: binary operator text -> (primitive name, precedence)
_BINARY: dict[str, tuple[str, int]] = _binary_operators()

#: call names for the power operator (it has an infix form, but the call is natural too)
_POWER_NAMES = ("pow", "power")

#: the bracket an open entry of each kind was opened with, and the one that closes it
_OPENER = {"group": "(", "call": "(", "list": "[", "subscript": "["}
_CLOSER = {"(": ")", "[": "]"}

#: names that are Python values where a tensor-function argument or an index is read
_WORDS: dict[str, Any] = {"None": None, "True": True, "False": False}

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t]+)
    | (?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<str>'[^'\\]*'|"[^"\\]*")
    | (?P<op>\*\*|<=|>=|\.\.\.|\.T(?![A-Za-z0-9_])|[-+*/^<>(),;=@\[\]:])
    """,
    re.VERBOSE | re.ASCII,
)
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]+", re.ASCII)


class Token(NamedTuple):
    """One lexeme: ``kind`` is "num", "name", "str", "op" or "end" (end of a statement)."""

    kind: str
    text: str
    line: int
    column: int


# --------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------
def parse(text: str, symbols: Sequence[Symbol] | None = None) -> Expr:
    """The expression written in ``text``, as the identical interned node.

    ``parse(str(e)) is e`` for every expression ``e``, including the let-binding form
    that large shared DAGs print as and the tensor notation (``X @ W + b``, ``W.T``,
    ``v[1:]``, ``sum(X, axis=0)``). ``symbols`` names the symbols (scalar or tensor)
    the text may use; a name not among them is an existing symbol of that name, or else
    a new scalar symbol. Raises :class:`~hybridad.errors.ParseError` (a ``ValueError``)
    with the line and column of the first problem.

    >>> import hybridad as hd
    >>> from hybridad.interop.parse import parse
    >>> f = parse("log(x1) + x1*x2 - sin(x2)")
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> f is hd.log(x1) + x1 * x2 - hd.sin(x2)
    True
    >>> round(float(f.evaluate({x1: 2.0, x2: 5.0})), 3)
    11.652
    >>> parse("v1 = sin(x1)\\nv1*v1 + v1") is hd.sin(x1) * hd.sin(x1) + hd.sin(x1)
    True
    >>> X, W = hd.tensor("X", (4, 3)), hd.tensor("W", (3, 2))
    >>> parse("sum(X @ W, axis=0)", symbols=[X, W]) is hd.sum(X @ W, axis=0)
    True
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() expects a str, got {type(text).__name__}")
    return _Program(text, _symbol_table(symbols)).run()


def _symbol_table(symbols: Sequence[Symbol] | None) -> dict[str, Symbol]:
    """``symbols`` by name (a TypeError for anything that is not a Symbol)."""
    table: dict[str, Symbol] = {}
    for s in symbols if symbols is not None else ():
        if not isinstance(s, Symbol):
            raise TypeError(f"parse(): symbols must be Symbols, got {type(s).__name__}")
        table[s.name] = s
    return table


# --------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------
def _tokenize_line(text: str, source: str, line: int) -> list[Token]:
    """Tokens of one line (``source``), ending with an "end" token at the line's end.

    ``;`` becomes an "end" token too, so statements are runs of tokens between ends.
    """
    tokens: list[Token] = []
    column = 0
    while column < len(source):
        match = _TOKEN.match(source, column)
        if match is None:
            raise _error(f"unexpected character {source[column]!r}", text, line, column)
        kind = match.lastgroup
        if kind == "num":
            _check_number_end(text, source, line, match)
        if kind == "op" and match.group() == ";":
            tokens.append(Token("end", ";", line, column))
        elif kind != "space":
            tokens.append(Token(kind, match.group(), line, column))  # type: ignore[arg-type]
        column = match.end()
    tokens.append(Token("end", "", line, len(source)))
    return tokens


def _check_number_end(text: str, source: str, line: int, match: re.Match[str]) -> None:
    """Reject a number run into letters, digits or a dot (``1.2.3``, ``2x``, ``1e``)."""
    tail = _NUMBER_TAIL.match(source, match.end())
    if tail is not None:
        bad = match.group() + tail.group()
        raise _error(f"malformed number {bad!r}", text, line, match.start())


def _statements(text: str) -> list[list[Token]]:
    """The non-empty statements of ``text``, each a token list ending with an "end".

    Lines are ``text.splitlines()``, the same lines :class:`ParseError` shows.
    """
    statements: list[list[Token]] = []
    current: list[Token] = []
    for line, source in enumerate(text.splitlines()):
        for token in _tokenize_line(text, source, line):
            current.append(token)
            if token.kind == "end":
                if len(current) > 1:
                    statements.append(current)
                current = []
    return statements


# --------------------------------------------------------------------------------------
# statements and let-bindings
# --------------------------------------------------------------------------------------
class _Program:
    """Let-bindings followed by one result expression; bound names shadow symbols."""

    def __init__(self, text: str, symbols: dict[str, Symbol]) -> None:
        self.text = text
        self.symbols = symbols
        self.bindings: dict[str, Expr] = {}
        self.bound_on: dict[str, int] = {}

    def run(self) -> Expr:
        statements = _statements(self.text)
        if not statements:
            raise ParseError("empty input: expected an expression", self.text, 0, 0)
        for statement in statements[:-1]:
            self._bind(statement)
        last = statements[-1]
        if _is_binding(last):
            self._bind(last)  # its own errors come first
            raise self._error("the text ends with a binding", last[-1],
                              "expected a final expression after it")
        return _ExprParser(self, last).parse()

    def _bind(self, statement: list[Token]) -> None:
        """Evaluate ``name = expression`` and remember the name."""
        if not _is_binding(statement):
            _ExprParser(self, statement).parse()  # report a syntax error first
            raise self._error("expression before the last statement", statement[0],
                              "earlier statements must be bindings 'name = expression'")
        name = statement[0]
        self._check_bindable(name)
        value = _ExprParser(self, statement[2:]).parse()
        self.bindings[name.text] = value
        self.bound_on[name.text] = name.line

    def _check_bindable(self, name: Token) -> None:
        if _function(name.text) is not None:
            raise self._error(f"cannot bind {name.text!r}", name, "it is a function name")
        if name.text in ("inf", "nan"):
            raise self._error(f"cannot bind {name.text!r}", name, "it is a constant")
        if name.text in self.bindings:
            raise self._error(f"cannot rebind {name.text!r}", name,
                              f"it is already bound on line {self.bound_on[name.text] + 1}")

    def value_of(self, name: str) -> Expr:
        """A NAME used as a value: a binding, ``inf``/``nan``, a symbol of ``symbols``,
        an existing symbol (any shape), or else a new scalar Symbol."""
        bound = self.bindings.get(name)
        if bound is not None:
            return bound
        if name == "inf":
            return constant(math.inf)
        if name == "nan":
            return constant(math.nan)
        known = self.symbols.get(name)
        return known if known is not None else symbol(name)

    def _error(self, message: str, token: Token, detail: str = "") -> ParseError:
        return _error(message, self.text, token.line, token.column, detail)


def _is_binding(statement: list[Token]) -> bool:
    return (len(statement) > 2 and statement[0].kind == "name"
            and _is_op(statement[1], "="))


def _is_op(token: Token, text: str) -> bool:
    return token.kind == "op" and token.text == text


def _function(name: str) -> Primitive | None:
    """The primitive a call name denotes, or None (operator primitives are not calls)."""
    if name in _POWER_NAMES:
        return PRIMITIVES["pow"]
    prim = PRIMITIVES.get(ALIASES.get(name, name))
    if prim is None or prim.infix is not None or prim.name == "neg" or prim.structural:
        return None
    return prim


def _call_names() -> list[str]:
    names = [n for n in (*PRIMITIVES, *ALIASES) if _function(n) is not None]
    return sorted({*names, *_POWER_NAMES, *tensor_syntax.BUILDERS})


@functools.lru_cache(maxsize=None)
def _signature(builder: Callable[..., Any]) -> inspect.Signature | None:
    """The signature of a tensor function, or None when Python cannot tell it."""
    try:
        return inspect.signature(builder)
    except (TypeError, ValueError):
        return None


def _keyword_names(builder: Callable[..., Any]) -> list[str] | None:
    """The keywords ``builder`` takes, in order (None: any keyword, or unknown)."""
    signature = _signature(builder)
    if signature is None:
        return None
    parameters = signature.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                     p.KEYWORD_ONLY)]


def _error(message: str, text: str, line: int, column: int, detail: str = "") -> ParseError:
    """``ParseError("<message> at column C[ of line L][: <detail>]")`` at (line, column).

    The line number (1-based in the message, 0-based in ``.line``) is only spelled out
    for multi-line texts.
    """
    where = f" at column {column}"
    if len(text.splitlines()) > 1:
        where += f" of line {line + 1}"
    suffix = f": {detail}" if detail else ""
    return ParseError(f"{message}{where}{suffix}", text, column, line)


# --------------------------------------------------------------------------------------
# values that are not expressions
# --------------------------------------------------------------------------------------
class _Literal(NamedTuple):
    """A tensor-function argument that is not an expression: ``kind`` is "tuple",
    "list", "str", "None", "True", "False" or "..."; ``value`` the Python value (a tuple
    or list of argument values, or a numpy array for a list of numbers)."""

    kind: str
    value: Any


_LITERAL_NAMES = {"tuple": "a tuple", "list": "a list", "str": "a string",
                  "None": "None", "True": "True", "False": "False", "...": "'...'"}


class _Operand(NamedTuple):
    """An entry of the value stack: an Expr or a _Literal, and its first token."""

    value: Expr | _Literal
    token: Token


def _int_value(node: Any) -> int | None:
    """The int an integer-valued scalar constant holds, else None."""
    if type(node) is Constant and math.isfinite(node.param) and node.param.is_integer():
        return int(node.param)
    return None


def _argument_value(operand: _Operand) -> Any:
    """An operand as a tensor-function argument: a literal's Python value, an int for an
    integer-valued constant (not -0.0), else the Expr."""
    value = operand.value
    if isinstance(value, _Literal):
        return value.value
    number = _int_value(value)
    if number is None or (number == 0 and math.copysign(1.0, value.param) < 0):
        return value
    return number


def _number_array(items: list[_Operand]) -> np.ndarray | None:
    """The array a list literal of numbers (or of such lists, all of one shape)
    denotes: int64 when every number is an integer (not -0.0), else float64; None for
    a list of anything else."""
    values = [item.value for item in items]
    if all(type(v) is Constant for v in values):
        array = np.array([v.param for v in values], dtype=np.float64)
        integral = np.isfinite(array) & (array == np.round(array)) & (np.abs(array) < 2.0 ** 63)
        exact = integral & ~((array == 0) & np.signbit(array))
        return array.astype(np.int64) if exact.all() else array
    arrays = [v.value for v in values if isinstance(v, _Literal) and v.kind == "list"
              and isinstance(v.value, np.ndarray)]
    if values and len(arrays) == len(values) and len({a.shape for a in arrays}) == 1:
        try:
            return np.stack(arrays)
        except (ValueError, IndexError):  # more dimensions than numpy supports
            return None
    return None


# --------------------------------------------------------------------------------------
# expression parser (operator precedence with explicit stacks)
# --------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Pending:
    """An entry of the operator stack.

    ``kind`` is "binary", "unary", or an open bracket: "group" (a parenthesis, which a
    ',' makes a tuple), "call" (``callee`` a Primitive or a tensor function, with its
    keywords), "list" or "subscript" (``target`` the indexed value, ``items`` the
    finished index items, ``parts`` the slice bounds read so far of the current one).
    ``arguments`` counts the finished elements on the value stack.
    """

    kind: str
    op: str
    precedence: int
    token: Token
    callee: Any = None
    arguments: int = 0
    comma: bool = False
    keyword: Token | None = None
    keywords: dict[str, _Operand] = field(default_factory=dict)
    target: _Operand | None = None
    items: list[Any] = field(default_factory=list)
    parts: list[int | None] = field(default_factory=list)

    @property
    def nests(self) -> bool:
        """Counts towards the nesting limit (left-associative chains do not)."""
        return self.kind != "binary" or self.op == "pow"

    @property
    def is_builder_call(self) -> bool:
        """An open call of a tensor function (not of a registry primitive)."""
        return self.kind == "call" and not isinstance(self.callee, Primitive)


class _ExprParser:
    """Parses one statement's tokens (ending with an "end" token) to an Expr.

    A two-state machine: expecting an operand (number, name, call, '(', '[' or a unary
    sign) or expecting an operator (binary operator, '.T', '[', ',', ':', ')', ']' or
    the end). Binary operators wait on a stack until an operator of lower precedence (or
    a closing token) arrives, which is what a recursive-descent parser would do with its
    call stack; postfix '.T' and '[' apply at once to the operand just read.
    """

    def __init__(self, program: _Program, tokens: list[Token]) -> None:
        self.program = program
        self.tokens = tokens
        self.values: list[_Operand] = []
        self.pending: list[_Pending] = []
        self.depth = 0

    def parse(self) -> Expr:
        index, expect_operand = 0, True
        while True:
            token = self.tokens[index]
            if expect_operand:
                index, expect_operand = self._operand(index)
            elif token.kind == "end":
                return self._finish()
            else:
                expect_operand = self._operator(token)
                index += 1

    # -- operands ----------------------------------------------------------------------
    def _operand(self, index: int) -> tuple[int, bool]:
        """Consume an operand-position token; return the next index and the new state."""
        token = self.tokens[index]
        if token.kind == "num":
            self.values.append(_Operand(constant(float(token.text)), token))
            return index + 1, False
        if token.kind == "name":
            return self._name(index)
        if token.kind == "str":
            self.values.append(_Operand(_Literal("str", token.text[1:-1]), token))
            return index + 1, False
        if token.text in ("-", "+"):
            self._push(_Pending("unary", token.text, UNARY, token))
            return index + 1, True
        if token.text in ("(", "["):
            self._push(_Pending("group" if token.text == "(" else "list", token.text, -1,
                                token))
            return index + 1, True
        if token.text == "..." and self._top_kind() == "subscript":
            self.values.append(_Operand(_Literal("...", Ellipsis), token))
            return index + 1, False
        return index + 1, self._missing_operand(token)

    def _name(self, index: int) -> tuple[int, bool]:
        """A name: a keyword argument when '=' follows in a call, a call when '('
        follows, else a value (or a literal word where an argument or index is read)."""
        token, after = self.tokens[index], self.tokens[index + 1]
        top = self.pending[-1] if self.pending else None
        if _is_op(after, "=") and top is not None and top.kind == "call" \
                and top.keyword is None:
            self._keyword(top, token)
            return index + 2, True
        if _is_op(after, "("):
            self._push(_Pending("call", token.text, -1, token, self._callee(token)))
            return index + 2, True
        word = self._word(token, after, top)
        value = word if word is not None else self.program.value_of(token.text)
        self.values.append(_Operand(value, token))
        return index + 1, False

    def _word(self, token: Token, after: Token, top: _Pending | None) -> _Literal | None:
        """``None`` as an index or slice bound, and ``None``/``True``/``False`` as a
        whole argument of a tensor function, as literals; else None (a name)."""
        if token.text not in _WORDS or top is None or after.kind != "op":
            return None
        if top.kind == "subscript" and token.text == "None" and after.text in (",", "]",
                                                                              ":"):
            return _Literal("None", None)
        if top.is_builder_call and after.text in (",", ")"):
            return _Literal(token.text, _WORDS[token.text])
        return None

    def _keyword(self, call: _Pending, token: Token) -> None:
        """``name=`` inside a call: the next argument is that keyword's value."""
        if not call.is_builder_call:
            raise self._error(f"{call.op} takes no keyword arguments", token)
        if token.text in call.keywords:
            raise self._error(f"repeated keyword argument {token.text!r}", token)
        names = _keyword_names(call.callee)
        if names is not None and token.text not in names:
            raise self._error(f"unknown keyword argument {token.text!r}", token,
                              f"{call.op} takes {', '.join(names) or 'no keywords'}")
        call.keyword = token

    def _callee(self, token: Token) -> Any:
        """What a call name denotes: a registry primitive, else a tensor function."""
        prim = _function(token.text)
        if prim is not None:
            return prim
        builder = tensor_syntax.BUILDERS.get(token.text)
        if builder is not None:
            return builder
        if token.text in self.program.bindings:
            raise self._error(f"{token.text!r} is a bound value, not a function", token)
        raise self._error(f"unknown function {token.text!r}", token, _hint(token.text))

    def _missing_operand(self, token: Token) -> bool:
        """A closing token where an operand was expected: ``f()``, ``()``, ``(3,)``,
        ``[]`` or an omitted slice bound (``1:``, ``::2``); else an error. Returns
        whether an operand comes next."""
        top = self.pending[-1] if self.pending else None
        if top is not None and top.kind == "subscript" and token.kind == "op":
            if token.text == ":":
                self._slice_part(top, None, token)
                return True
            if token.text in (",", "]") and top.parts:
                self._end_item(top, None)
                if token.text == ",":
                    return True
                self._finish_open()
                return False
        elif top is not None and _closes_empty(top, token):
            self._finish_open()
            return False
        raise self._error(f"expected an expression, found {_describe(token)}", token)

    # -- operators ---------------------------------------------------------------------
    def _operator(self, token: Token) -> bool:
        """Consume an operator-position token; return True if an operand comes next."""
        if token.kind != "op":
            raise self._error(f"unexpected {_describe(token)} after an expression", token)
        if token.text in _BINARY:
            self._binary(token)
            return True
        if token.text == ".T":
            self._transpose(token)
            return False
        if token.text == "[":
            self._subscript(token)
            return True
        if token.text in (")", "]"):
            self._close(token)
            return False
        if token.text in (",", ":"):
            self._separator(token)
            return True
        if token.text == "(":
            raise self._error("unexpected '(' after an expression", token,
                              "only a function name can be called")
        raise self._error(f"unexpected {_describe(token)} after an expression", token)

    def _binary(self, token: Token) -> None:
        op, precedence = _BINARY[token.text]
        right_assoc = op == "pow"
        while self.pending and self.pending[-1].kind in ("binary", "unary"):
            top = self.pending[-1]
            if top.precedence < precedence or (top.precedence == precedence
                                               and right_assoc):
                break
            if precedence == COMPARISON and top.precedence == COMPARISON:
                raise self._error("chained comparison", token,
                                  "comparisons do not chain; parenthesise one of them")
            self._reduce()
        self._push(_Pending("binary", op, precedence, token))

    def _transpose(self, token: Token) -> None:
        """Postfix ``.T`` on the operand just read."""
        operand = self.values.pop()
        value = self._build(token, tensor_ops.transpose, self._expr(operand))
        self.values.append(_Operand(value, operand.token))

    def _subscript(self, token: Token) -> None:
        """A '[' after an operand opens a subscript of it."""
        operand = self.values.pop()
        target = self._expr(operand)
        if not target.shape:
            raise self._error("a scalar cannot be indexed", token,
                              "only tensor expressions take subscripts")
        self._push(_Pending("subscript", "[", -1, token, target=operand))

    def _close(self, token: Token) -> None:
        """A ')' or ']' ends the innermost bracket, which it must match."""
        self._reduce_operators()
        opener = "(" if token.text == ")" else "["
        if not self.pending:
            raise self._error(f"unbalanced {token.text!r}", token, f"no {opener!r} is open")
        top = self.pending[-1]
        if _OPENER[top.kind] != opener:
            raise self._error(f"unbalanced {token.text!r}", token,
                              f"expected {_CLOSER[_OPENER[top.kind]]!r} to close "
                              f"{_describe(top.token)} at column {top.token.column}")
        self._end_element(top)
        self._finish_open()

    def _separator(self, token: Token) -> None:
        """A ',' ends one element of the innermost bracket; a ':' one slice bound."""
        self._reduce_operators()
        top = self.pending[-1] if self.pending else None
        if token.text == ":":
            if top is None or top.kind != "subscript":
                raise self._error("':' outside a subscript", token)
            self._slice_part(top, self.values.pop(), token)
            return
        if top is None:
            raise self._error("',' outside a function call or brackets", token)
        self._end_element(top)
        top.comma = True

    def _end_element(self, entry: _Pending) -> None:
        """The operand on top of the value stack completes an element of ``entry``."""
        if entry.kind == "subscript":
            self._end_item(entry, self.values.pop())
        elif entry.keyword is not None:
            entry.keywords[entry.keyword.text] = self.values.pop()
            entry.keyword = None
        elif entry.keywords:
            raise self._error("positional argument after a keyword argument",
                              self.values[-1].token)
        else:
            entry.arguments += 1

    def _finish(self) -> Expr:
        self._reduce_operators()
        if self.pending:
            opened = self.pending[-1]
            raise self._error(f"unbalanced {_OPENER[opened.kind]!r}", opened.token,
                              f"{_describe(opened.token)} is never closed")
        return self._expr(self.values.pop())

    # -- subscripts --------------------------------------------------------------------
    def _slice_part(self, entry: _Pending, operand: _Operand | None, token: Token) -> None:
        """A slice bound (None when omitted) followed by ``token``, a ':'."""
        if len(entry.parts) == 2:
            raise self._error("a slice has at most three parts", token)
        entry.parts.append(None if operand is None else self._bound(operand))

    def _end_item(self, entry: _Pending, operand: _Operand | None) -> None:
        """The last part of an index item: the item itself, or a slice's last bound."""
        if entry.parts:
            last = None if operand is None else self._bound(operand)
            entry.items.append(slice(*entry.parts, last))
            entry.parts = []
        else:
            assert operand is not None
            entry.items.append(self._index_item(operand))

    def _index_item(self, operand: _Operand) -> Any:
        """A whole index item: an int, None or Ellipsis."""
        value = operand.value
        if isinstance(value, _Literal) and value.kind in ("None", "..."):
            return value.value
        number = _int_value(value)
        if number is None:
            raise self._error("an index must be an integer", operand.token,
                              "an index item is an integer, a slice, None or '...'")
        return number

    def _bound(self, operand: _Operand) -> int | None:
        """A slice bound: an int or None."""
        value = operand.value
        if isinstance(value, _Literal) and value.kind == "None":
            return None
        number = _int_value(value)
        if number is None:
            raise self._error("a slice bound must be an integer", operand.token)
        return number

    # -- building ----------------------------------------------------------------------
    def _push(self, entry: _Pending) -> None:
        if entry.nests:
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self._error(f"nesting deeper than {MAX_NESTING} levels", entry.token)
        self.pending.append(entry)

    def _top_kind(self) -> str | None:
        """The kind of the innermost pending entry (None when there is none)."""
        return self.pending[-1].kind if self.pending else None

    def _finish_open(self) -> None:
        """Pop the bracket on top of the operator stack and push the value it made."""
        self.depth -= 1
        entry = self.pending.pop()
        if entry.kind == "call":
            self._finish_call(entry)
        elif entry.kind == "subscript":
            self._finish_subscript(entry)
        elif entry.kind == "list":
            self._finish_list(entry)
        elif entry.comma or not entry.arguments:
            items = tuple(_argument_value(item) for item in self._take(entry.arguments))
            self.values.append(_Operand(_Literal("tuple", items), entry.token))

    def _take(self, count: int) -> list[_Operand]:
        """Pop the top ``count`` operands, in order."""
        taken = self.values[len(self.values) - count:]
        del self.values[len(self.values) - count:]
        return taken

    def _expr(self, operand: _Operand) -> Expr:
        """The operand as an expression, or an error at it."""
        if isinstance(operand.value, Expr):
            return operand.value
        kind = operand.value.kind
        detail = "a list of numbers is written constant([...])" if kind == "list" else ""
        raise self._error(f"{_LITERAL_NAMES[kind]} where an expression is required",
                          operand.token, detail)

    def _build(self, token: Token, function: Callable[..., Any], *args: Any,
               **kwargs: Any) -> Any:
        """``function(*args, **kwargs)``; what it raises becomes an error at ``token``
        (the operator, call name or bracket that failed)."""
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # shapes, indices, argument types: whatever it raises
            raise self._error(_failure(token), token, str(exc)) from exc

    def _reduce_operators(self) -> None:
        while self.pending and self.pending[-1].kind in ("binary", "unary"):
            self._reduce()

    def _reduce(self) -> None:
        """Apply the operator on top of the stack to the values on top of the stack."""
        entry = self.pending.pop()
        if entry.nests:
            self.depth -= 1
        if entry.kind == "unary":
            value = self._expr(self.values.pop())
            value = apply("neg", value) if entry.op == "-" else value
            self.values.append(_Operand(value, entry.token))
            return
        right_operand = self.values.pop()
        left_operand = self.values.pop()
        left, right = self._expr(left_operand), self._expr(right_operand)
        value = self._build(entry.token, _combine, entry.op, left, right)
        self.values.append(_Operand(value, left_operand.token))

    def _finish_subscript(self, entry: _Pending) -> None:
        """``target[items]``: one item is the index itself, as in Python."""
        assert entry.target is not None
        index = entry.items[0] if len(entry.items) == 1 else tuple(entry.items)
        value = self._build(entry.token, tensor_ops.apply_index, entry.target.value, index)
        self.values.append(_Operand(value, entry.target.token))

    def _finish_list(self, entry: _Pending) -> None:
        """A list literal: a numpy array of numbers, or a list of argument values."""
        items = self._take(entry.arguments)
        array = _number_array(items)
        value = array if array is not None else [_argument_value(i) for i in items]
        self.values.append(_Operand(_Literal("list", value), entry.token))

    def _finish_call(self, call: _Pending) -> None:
        """Call a registry function or a tensor function with the arguments read."""
        arguments = self._take(call.arguments)
        if call.is_builder_call:
            value = self._call_builder(call, arguments)
        else:
            value = self._call_primitive(call, arguments)
        self.values.append(_Operand(value, call.token))

    def _call_primitive(self, call: _Pending, arguments: list[_Operand]) -> Expr:
        """Apply a registry function to expression arguments."""
        prim = call.callee
        if len(arguments) != prim.arity:
            plural = "" if prim.arity == 1 else "s"
            raise self._error("wrong number of arguments", call.token,
                              f"{call.op} takes {prim.arity} argument{plural}, "
                              f"got {len(arguments)}")
        values = [self._expr(a) for a in arguments]
        return self._build(call.token, apply, prim.name, *values)

    def _call_builder(self, call: _Pending, arguments: list[_Operand]) -> Expr:
        """Call a tensor function with the arguments as Python values."""
        args = [_argument_value(a) for a in arguments]
        kwargs = {name: _argument_value(a) for name, a in call.keywords.items()}
        signature = _signature(call.callee)
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise self._error("wrong arguments", call.token, f"{call.op}: {exc}") from exc
        value = self._build(call.token, call.callee, *args, **kwargs)
        if is_number(value):
            return constant(float(value))
        if not isinstance(value, Expr):
            raise self._error(f"{call.op} did not give an expression", call.token,
                              f"got {type(value).__name__}")
        return value

    def _error(self, message: str, token: Token, detail: str = "") -> ParseError:
        return _error(message, self.program.text, token.line, token.column, detail)


def _combine(op: str, left: Expr, right: Expr) -> Expr:
    """The binary operation ``op`` (a primitive name) of two expressions."""
    return tensor_ops.matmul(left, right) if op == "matmul" else apply(op, left, right)


def _failure(token: Token) -> str:
    """What failed to build at ``token``, for an error message."""
    if token.kind == "name":
        return f"cannot call {token.text!r}"
    if token.text == "[":
        return "invalid index"
    if token.text == ".T":
        return "cannot transpose"
    return f"cannot apply {token.text!r}"


def _closes_empty(entry: _Pending, token: Token) -> bool:
    """Whether ``token`` may close ``entry`` right after its opening bracket or a
    trailing comma: ``f()``, ``()``, ``(3,)`` and ``[]``."""
    if entry.kind not in _OPENER or not _is_op(token, _CLOSER[_OPENER[entry.kind]]):
        return False
    if entry.kind == "call":
        return not entry.arguments and not entry.keywords and entry.keyword is None
    if entry.kind == "group":
        return entry.comma or not entry.arguments
    return entry.kind == "list" and not entry.arguments


def _describe(token: Token) -> str:
    if token.kind == "end":
        return "the end of the statement" if token.text == "" else "';'"
    return repr(token.text)


def _hint(name: str) -> str:
    """What to write instead of an unknown function name."""
    prim = PRIMITIVES.get(name)
    if prim is not None and not prim.structural:
        symbol_text = "-" if prim.infix is None else prim.infix.symbol
        return f"{name} is written with the operator '{symbol_text}'"
    close = difflib.get_close_matches(name, _call_names(), n=1)
    if close:
        return f"did you mean {close[0]!r}?"
    return "known functions are " + ", ".join(_call_names())
