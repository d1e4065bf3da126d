"""Safe text parser: ``parse(text)`` reads the text ``str(expr)`` prints back to ``expr``.

The input is data, never code: a hand-written tokenizer (one ASCII regular expression)
and an operator-precedence parser build nodes only through the registry constructors
(``apply``, ``symbol``, ``constant``). Nothing here calls ``eval``, ``exec``,
``compile`` or Python's tokenizer, so text such as ``__import__('os')`` is just a
syntax error.

Grammar (lowest precedence first)::

    text       := statement ((NEWLINE | ';') statement)*    -- blank statements ignored
    statement  := NAME '=' expression                       -- a let-binding, not last
                | expression                                -- the result, last
    expression := sum (('<' | '<=' | '>' | '>=') sum)?      -- comparisons never chain
    sum        := product (('+' | '-') product)*            -- left-associative
    product    := unary (('*' | '/') unary)*                -- left-associative
    unary      := ('-' | '+') unary | power                 -- so -x**2 is -(x**2)
    power      := atom (('**' | '^') unary)?                -- right-associative
    atom       := NUMBER | NAME | NAME '(' expression (',' expression)* ')'
                | '(' expression ')'

A NAME not followed by ``(`` is a let-bound name, the constant ``inf`` or ``nan``, or
else a Symbol. A call takes a registry function by name or alias (``sin``, ``atan2``,
``ln``, ``where``...), or ``pow``/``power``; the operator primitives (``add``, ``neg``,
``lt``...) are written with their operators.

The parser keeps its own operand and operator stacks instead of recursing, so no input
can raise ``RecursionError`` and a flat sum of 100,000 terms costs no depth. Nesting
(open parentheses and calls, pending unary signs and ``**``) is limited to
:data:`MAX_NESTING` as a policy against hostile input.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from ..core.build import apply
from ..core.expr import Expr, constant, symbol
from ..core.printing import COMPARISON, POWER, PRODUCT, SUM, UNARY
from ..core.registry import ALIASES, PRIMITIVES, Primitive
from ..errors import ParseError

__all__ = ["MAX_NESTING", "parse"]

#: deepest nesting of parentheses, calls, unary signs and powers that ``parse`` accepts
MAX_NESTING = 500

#: binary operator text -> (primitive name, precedence), precedences as in the printer
_BINARY: dict[str, tuple[str, int]] = {
    "+": ("add", SUM), "-": ("sub", SUM), "*": ("mul", PRODUCT), "/": ("div", PRODUCT),
    "**": ("pow", POWER), "^": ("pow", POWER),
    "<": ("lt", COMPARISON), "<=": ("le", COMPARISON),
    ">": ("gt", COMPARISON), ">=": ("ge", COMPARISON),
}

#: call names for the power operator (it has an infix form, but the call is natural too)
_POWER_NAMES = ("pow", "power")

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t]+)
    | (?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\*\*|<=|>=|[-+*/^<>(),;=])
    """,
    re.VERBOSE | re.ASCII,
)
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]+", re.ASCII)


class Token(NamedTuple):
    """One lexeme: ``kind`` is "num", "name", "op" or "end" (end of a statement)."""

    kind: str
    text: str
    line: int
    column: int


# --------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------
def parse(text: str) -> Expr:
    """The expression written in ``text``, as the identical interned node.

    ``parse(str(e)) is e`` for every expression ``e``, including the let-binding form
    that large shared DAGs print as. Raises :class:`~hybridad.errors.ParseError` (a
    ``ValueError``) with the line and column of the first problem.

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
    """
    if not isinstance(text, str):
        raise TypeError(f"parse() expects a str, got {type(text).__name__}")
    return _Program(text).run()


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

    def __init__(self, text: str) -> None:
        self.text = text
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
        """A NAME used as a value: a binding, ``inf``/``nan``, or else a Symbol."""
        bound = self.bindings.get(name)
        if bound is not None:
            return bound
        if name == "inf":
            return constant(math.inf)
        if name == "nan":
            return constant(math.nan)
        return symbol(name)

    def _error(self, message: str, token: Token, detail: str = "") -> ParseError:
        return _error(message, self.text, token.line, token.column, detail)


def _is_binding(statement: list[Token]) -> bool:
    return (len(statement) > 2 and statement[0].kind == "name"
            and statement[1].kind == "op" and statement[1].text == "=")


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
    return sorted({*names, *_POWER_NAMES})


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
# expression parser (operator precedence with explicit stacks)
# --------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Pending:
    """An entry of the operator stack.

    ``kind`` is "binary", "unary", "group" (an open parenthesis) or "call" (an open
    function call, with ``prim`` and the number of arguments completed so far).
    """

    kind: str
    op: str
    precedence: int
    token: Token
    prim: Primitive | None = None
    arguments: int = 0

    @property
    def nests(self) -> bool:
        """Counts towards the nesting limit (left-associative chains do not)."""
        return self.kind != "binary" or self.op == "pow"


class _ExprParser:
    """Parses one statement's tokens (ending with an "end" token) to an Expr.

    A two-state machine: expecting an operand (number, name, call, '(' or a unary sign)
    or expecting an operator (binary operator, ',', ')' or the end). Binary operators
    wait on a stack until an operator of lower precedence (or a closing token) arrives,
    which is what a recursive-descent parser would do with its call stack.
    """

    def __init__(self, program: _Program, tokens: list[Token]) -> None:
        self.program = program
        self.tokens = tokens
        self.values: list[Expr] = []
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
            self.values.append(constant(float(token.text)))
            return index + 1, False
        if token.kind == "name":
            return self._name(index)
        if token.text in ("-", "+"):
            self._push(_Pending("unary", token.text, UNARY, token))
            return index + 1, True
        if token.text == "(":
            self._push(_Pending("group", "(", -1, token))
            return index + 1, True
        if token.text == ")" and self._top_is_empty_call():
            self._finish_call(self._pop_open(), 0)
            return index + 1, False
        raise self._error(f"expected an expression, found {_describe(token)}", token)

    def _name(self, index: int) -> tuple[int, bool]:
        """A name: a call when '(' follows, else a value."""
        token, after = self.tokens[index], self.tokens[index + 1]
        if after.text != "(" or after.kind != "op":
            self.values.append(self.program.value_of(token.text))
            return index + 1, False
        self._push(_Pending("call", token.text, -1, token, self._callee(token)))
        return index + 2, True

    def _callee(self, token: Token) -> Primitive:
        prim = _function(token.text)
        if prim is not None:
            return prim
        if token.text in self.program.bindings:
            raise self._error(f"{token.text!r} is a bound value, not a function", token)
        raise self._error(f"unknown function {token.text!r}", token, _hint(token.text))

    def _top_is_empty_call(self) -> bool:
        """In operand state, a call on top with no argument yet means ``name()``."""
        top = self.pending[-1] if self.pending else None
        return top is not None and top.kind == "call" and top.arguments == 0

    # -- operators ---------------------------------------------------------------------
    def _operator(self, token: Token) -> bool:
        """Consume an operator-position token; return True if an operand comes next."""
        if token.kind == "op" and token.text in _BINARY:
            self._binary(token)
            return True
        if token.text == ")":
            self._close(token)
            return False
        if token.text == ",":
            self._comma(token)
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

    def _close(self, token: Token) -> None:
        """A ')' ends the innermost group or call."""
        self._reduce_operators()
        if not self.pending:
            raise self._error("unbalanced ')'", token, "no '(' is open")
        opened = self._pop_open()
        if opened.kind == "call":
            self._finish_call(opened, opened.arguments + 1)

    def _comma(self, token: Token) -> None:
        """A ',' ends one argument of the innermost call."""
        self._reduce_operators()
        if not self.pending or self.pending[-1].kind != "call":
            raise self._error("',' outside a function call", token)
        self.pending[-1].arguments += 1

    def _finish(self) -> Expr:
        self._reduce_operators()
        if self.pending:
            opened = self.pending[-1]
            raise self._error("unbalanced '('", opened.token,
                              f"{_describe(opened.token)} is never closed")
        return self.values.pop()

    # -- building ----------------------------------------------------------------------
    def _push(self, entry: _Pending) -> None:
        if entry.nests:
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise self._error(f"nesting deeper than {MAX_NESTING} levels", entry.token)
        self.pending.append(entry)

    def _pop_open(self) -> _Pending:
        """Pop the group or call on top of the operator stack."""
        self.depth -= 1
        return self.pending.pop()

    def _reduce_operators(self) -> None:
        while self.pending and self.pending[-1].kind in ("binary", "unary"):
            self._reduce()

    def _reduce(self) -> None:
        """Apply the operator on top of the stack to the values on top of the stack."""
        entry = self.pending.pop()
        if entry.nests:
            self.depth -= 1
        if entry.kind == "unary":
            if entry.op == "-":
                self.values.append(apply("neg", self.values.pop()))
            return
        right = self.values.pop()
        self.values.append(apply(entry.op, self.values.pop(), right))

    def _finish_call(self, call: _Pending, count: int) -> None:
        prim = call.prim
        assert prim is not None
        if count != prim.arity:
            plural = "" if prim.arity == 1 else "s"
            raise self._error("wrong number of arguments", call.token,
                              f"{call.op} takes {prim.arity} argument{plural}, got {count}")
        arguments = self.values[len(self.values) - count:]
        del self.values[len(self.values) - count:]
        self.values.append(apply(prim.name, *arguments))

    def _error(self, message: str, token: Token, detail: str = "") -> ParseError:
        return _error(message, self.program.text, token.line, token.column, detail)


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
