"""LLVM IR text -> C99 functions, for the instruction subset hybridad writes.

Every kernel body is written once, as IR text: element-level segment functions by
``llvm/text.py`` and loop nests by ``llvm/loops.py``, both through each registry
entry's ``llvm=`` lowering. C export translates that text line by line instead of
lowering the DAG a second time, so no operation's math and no loop plan exists twice.

The subset: double and i64 arithmetic, ``fcmp``/``icmp``, ``select``, ``uitofp``,
``bitcast``, ``alloca``, ``load``, ``store``, ``getelementptr``, calls of math functions
and of void functions, ``br``, labels and ``ret void``. SSA values become C locals
declared at the top of their function (a loop's branch jumps back over their
definitions), an ``alloca`` a one-element array, branches ``goto``. Fast-math flags are
dropped (C has none). Anything else raises :class:`~hybridad.errors.HybridadError`
naming the line: a code generator that starts writing new instructions shows up here,
not as wrong C.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field

from ...errors import HybridadError
from ..llvm.emitter import INTRINSICS
from ..llvm.vecmath import ALIAS_PREFIX

_BASE = {"double": "double", "i64": "int64_t", "i32": "int32_t", "i8": "char", "i1": "int"}
_FLAGS = frozenset({"fast", "reassoc", "nnan", "ninf", "nsz", "arcp", "contract", "afn",
                    "nsw", "nuw", "exact", "inbounds", "noalias"})
_ARITHMETIC = {"fadd": "+", "fsub": "-", "fmul": "*", "fdiv": "/", "add": "+", "sub": "-",
               "mul": "*", "sdiv": "/"}
_FCMP = {"olt": "<", "ole": "<=", "ogt": ">", "oge": ">=", "oeq": "==", "une": "!="}
_ICMP = {"slt": "<", "sle": "<=", "sgt": ">", "sge": ">=", "eq": "==", "ne": "!="}
# LLVM intrinsics the emitter calls for C math functions, back to their C names
_MATH = {f"{intrinsic}.f64": name for name, intrinsic in INTRINSICS.items()}
# LLVM's NaN-propagating max / min (loops.py's vectorized reductions): C helpers,
# intrinsic -> (helper name, comparison)
HELPERS = {"llvm.maximum.f64": ("maximum", ">"), "llvm.minimum.f64": ("minimum", "<")}

_DEFINE = re.compile(r'define (?:\w+ )*void @"?([\w.]+)"?\((.*?)\)[^{]*(\{?)\s*$')
_LABEL = re.compile(r"([A-Za-z_][\w.]*):$")
_ASSIGN = re.compile(r"(%[\w.]+) = (.+)$")
_CALL = re.compile(r'call(?: \w+)* (?:void|double) @"?([\w.$]+)"?\((.*?)\)(?: .*)?$')
_HEX_DOUBLE = re.compile(r"0x[0-9A-Fa-f]{16}")
_INTEGER = re.compile(r"-?\d+")


@dataclass
class Translation:
    """The C text of an IR module's functions."""

    prototypes: list[str] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)    # keys of HELPERS called


def c_type(ir_type: str) -> str:
    """The C spelling of an IR type (``double**`` -> ``double **``)."""
    base = ir_type.rstrip("*")
    if base not in _BASE:
        raise HybridadError(f"C export: no C type for the IR type {ir_type!r}")
    stars = len(ir_type) - len(base)
    return _BASE[base] + (" " + "*" * stars if stars else "")


def c_double(value: float) -> str:
    """An exact C literal of ``value`` (the shortest decimal that reads back as the same
    double; math.h's NAN and HUGE_VAL for the special values)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "HUGE_VAL" if value > 0 else "(-HUGE_VAL)"
    text = repr(float(value))
    return f"({text})" if text.startswith("-") else text


def c_name(value: str) -> str:
    """The C local of an SSA value or label (``%i3.slot`` -> ``v_i3_slot``)."""
    return "v_" + value.lstrip("%").replace(".", "_").replace("$", "_")


def declaration(kind: str, name: str) -> str:
    """``double *name`` for kind ``double *``, ``int64_t name`` for ``int64_t``."""
    return f"{kind}{name}" if kind.endswith("*") else f"{kind} {name}"


def operand(token: str) -> str:
    """An IR operand as a C expression."""
    if token.startswith("%"):
        return c_name(token)
    if _HEX_DOUBLE.fullmatch(token):
        return c_double(struct.unpack("<d", struct.pack("<Q", int(token, 16)))[0])
    if token in ("true", "false"):
        return "1" if token == "true" else "0"
    if _INTEGER.fullmatch(token):
        return f"({token})" if token.startswith("-") else token
    raise HybridadError(f"C export: cannot read the IR operand {token!r}")


def translate(text: str, prefix: str) -> Translation:
    """Every function ``define``d in the IR module ``text`` as a ``static`` C function
    named ``prefix + name`` (declarations and globals are left out: the C source
    includes math.h). Helpers it calls are named ``prefix + helper``."""
    lines = [line.strip() for line in text.splitlines()]
    defined = {m.group(1) for m in map(_DEFINE.match, lines) if m}
    translator = _Translator(prefix, defined)
    result = Translation()
    k = 0
    while k < len(lines):
        match = _DEFINE.match(lines[k])
        k += 1
        if not match:
            continue
        name, params, brace = match.groups()
        k += 0 if brace else 1               # the brace on a line of its own
        end = lines.index("}", k)
        head = translator.head(name, params)
        result.prototypes.append(head + ";")
        result.definitions.append(translator.function(head, params, lines[k:end]))
        k = end + 1
    result.helpers = translator.helpers
    return result


class _Translator:
    """Translates the functions of one module (names: ``prefix + name``)."""

    def __init__(self, prefix: str, defined: set[str]):
        self.prefix, self.defined = prefix, defined
        self.helpers: set[str] = set()

    def head(self, name: str, params: str) -> str:
        typed = [declaration(kind, local) for kind, local in _params(params)]
        return f"static void {self.prefix}{name}({', '.join(typed) or 'void'})"

    def function(self, head: str, params: str, body: list[str]) -> str:
        """One C function: its locals declared first, then its statements."""
        targets = {t for line in body if line.startswith("br ")
                   for t in re.findall(r"label %([\w.]+)", line)}
        local: dict[str, str] = {}          # C local -> its C type ("T[1]": an alloca)
        statements = []
        for line in body:
            label = _LABEL.match(line)
            if not line or label and label.group(1) not in targets:
                continue
            if label:
                statements.append(f"{c_name(label.group(1))}: ;")
                continue
            assign = _ASSIGN.match(line)
            if assign is None:
                statements.append(self.statement(line))
                continue
            target = c_name(assign.group(1))
            local[target], expression = self.value(assign.group(2))
            if expression:
                statements.append(f"{target} = {expression};")
        text = "\n".join(statements)
        unused = [f"(void){name};" for _, name in _params(params)
                  if not re.search(rf"\b{name}\b", text)]
        inner = [f"    {s}" for s in _declarations(local) + unused] + [
            s if s.endswith(": ;") else f"    {s}" for s in statements]
        return head + "\n{\n" + "\n".join(inner) + "\n}\n"

    def value(self, rhs: str) -> tuple[str, str]:
        """(C type, C expression) of an instruction defining a value; an ``alloca`` is
        (``T[1]``, "")."""
        words = [w for w in rhs.replace(",", " ").split() if w not in _FLAGS]
        op = words[0]
        if op == "fneg":
            return c_type(words[1]), f"-{operand(words[2])}"
        if op in _ARITHMETIC:               # op T a, b
            return c_type(words[1]), (f"{operand(words[2])} {_ARITHMETIC[op]} "
                                      f"{operand(words[3])}")
        if op in ("fcmp", "icmp"):          # cmp predicate T a, b
            return "int", _comparison(op, words[1], operand(words[3]), operand(words[4]))
        if op == "select":                  # select i1 c, T a, T b
            return c_type(words[3]), (f"{operand(words[2])} ? {operand(words[4])} : "
                                      f"{operand(words[6])}")
        if op == "uitofp":                  # uitofp i1 c to double
            return "double", f"(double){operand(words[2])}"
        if op == "bitcast":                 # bitcast T x to U
            return c_type(words[4]), f"({c_type(words[4])}){operand(words[2])}"
        if op == "load":                    # load T, T* p
            return c_type(words[1]), f"*{operand(words[3])}"
        if op == "getelementptr":           # getelementptr T, T* p, i64 k
            return c_type(words[2]), f"{operand(words[3])} + {operand(words[5])}"
        if op == "alloca" and len(words) == 2:
            return c_type(words[1]) + "[1]", ""
        if op == "call":
            return "double", self.call(rhs)
        raise HybridadError(f"C export: cannot translate the IR instruction {rhs!r}")

    def statement(self, line: str) -> str:
        """A C statement for an IR instruction that defines no value."""
        words = line.replace(",", " ").split()
        if words[0] == "store":             # store T v, T* p
            return f"*{operand(words[4])} = {operand(words[2])};"
        if words[0] == "br" and words[1] == "label":
            return f"goto {c_name(words[2])};"
        if words[0] == "br":                # br i1 c, label %a, label %b
            return (f"if ({operand(words[2])}) goto {c_name(words[4])}; "
                    f"else goto {c_name(words[6])};")
        if line == "ret void":
            return "return;"
        if words[0] == "call":
            return self.call(line) + ";"
        raise HybridadError(f"C export: cannot translate the IR instruction {line!r}")

    def call(self, rhs: str) -> str:
        """A call as a C expression: math functions by their C names (LLVM intrinsics
        and vector-math aliases mapped back), the module's own functions renamed."""
        match = _CALL.match(rhs)
        if not match:
            raise HybridadError(f"C export: cannot translate the call {rhs!r}")
        symbol, args = match.groups()
        values = ", ".join(operand(a.split()[-1]) for a in args.split(",") if a.strip())
        if symbol in HELPERS:
            self.helpers.add(symbol)
            function = self.prefix + HELPERS[symbol][0]
        elif symbol in _MATH:
            function = _MATH[symbol]
        elif symbol in self.defined:
            function = self.prefix + symbol
        elif symbol.startswith("llvm."):
            raise HybridadError(f"C export: no C function for the LLVM intrinsic {symbol}")
        else:                               # a C math function (libm)
            function = symbol.removeprefix(ALIAS_PREFIX)
        return f"{function}({values})"


def _comparison(op: str, predicate: str, a: str, b: str) -> str:
    if predicate == "uno" and op == "fcmp":
        return f"({a} != {a} || {b} != {b})"
    table = _FCMP if op == "fcmp" else _ICMP
    if predicate not in table:
        raise HybridadError(f"C export: cannot translate the comparison {op} {predicate}")
    return f"{a} {table[predicate]} {b}"


def _params(params: str) -> list[tuple[str, str]]:
    """(C type, C name) of each parameter of a ``define``."""
    out = []
    for part in filter(None, (p.strip() for p in params.split(","))):
        words = part.split()
        out.append((c_type(words[0]), c_name(words[-1])))
    return out


def _declarations(local: dict[str, str]) -> list[str]:
    """Declarations of a function's locals by type, lines of at most 84 columns (an
    ``alloca``'s one-element array with the scalars of its type)."""
    by_type: dict[str, list[str]] = {}
    for name, kind in local.items():
        array = kind.endswith("[1]")
        kind = kind[:-3] if array else kind
        stars = len(kind) - len(kind.rstrip("*"))
        base = kind.rstrip("*").rstrip()
        by_type.setdefault(base, []).append("*" * stars + name + ("[1]" if array else ""))
    lines = []
    for base, names in by_type.items():
        line: list[str] = []
        for name in names:
            if line and len(base) + sum(len(n) + 2 for n in line) + len(name) > 84:
                lines.append(f"{base} {', '.join(line)};")
                line = []
            line.append(name)
        lines.append(f"{base} {', '.join(line)};")
    return lines


def helper_definitions(used: set[str], prefix: str) -> list[str]:
    """The C helpers a translation calls: NaN-propagating max / min, as LLVM's
    ``llvm.maximum`` / ``llvm.minimum`` (a NaN wins; -0 is below +0)."""
    out = []
    for symbol in sorted(used):
        name, order = HELPERS[symbol]
        tie = "b : a" if order == ">" else "a : b"
        out.append(f"static double {prefix}{name}(double a, double b)\n{{\n"
                   f"    if (a != a || b != b) return a + b;\n"
                   f"    if (a == b) return signbit(a) ? {tie};\n"
                   f"    return a {order} b ? a : b;\n}}\n")
    return out
