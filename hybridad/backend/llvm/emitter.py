"""The emitter the registry's LLVM lowerings are written against.

A lowering is ``Primitive.llvm(e, *args)``; ``e`` offers float64 arithmetic, ``call`` of
a math function by its C name (an LLVM intrinsic where one exists, else libm),
comparisons and select. Keeping this vocabulary small keeps llvmlite out of the core
and every operation's math in its one registry entry.

Instructions are written as IR text lines: straight-line code over doubles needs no IR
builder, and llvmlite's costs ~30 µs of Python per instruction (a third of a large
kernel's compile time when it was used here).
"""

from __future__ import annotations

import struct

import llvmlite.ir as ir

from . import vecmath

DOUBLE = ir.DoubleType()

# C math functions with an LLVM intrinsic (constant folding and vectorization see them);
# the rest are declared as libm functions.
INTRINSICS = {"sin": "llvm.sin", "cos": "llvm.cos", "exp": "llvm.exp", "log": "llvm.log",
              "sqrt": "llvm.sqrt", "fabs": "llvm.fabs", "pow": "llvm.pow"}
LIBM = {"tan": 1, "asin": 1, "acos": 1, "atan": 1, "atan2": 2, "sinh": 1, "cosh": 1,
        "tanh": 1, "log1p": 1, "expm1": 1}

# predicate -> (ordered?, llvmlite operator). Ordered comparisons are false on nan, as
# numpy's; "!=" is unordered (nan != 0 is true, as np.where's test); "isnan" is "uno".
PREDICATES = {"<": (True, "<"), "<=": (True, "<="), ">": (True, ">"), ">=": (True, ">="),
               "==": (True, "=="), "!=": (False, "!="), "isnan": (False, "uno")}


_ARITY = {"pow": 2}
_FCMP = {("<", True): "olt", ("<=", True): "ole", (">", True): "ogt", (">=", True): "oge",
         ("==", True): "oeq", ("!=", False): "une", ("uno", False): "uno"}


def _in_process(name: str) -> bool:
    """Whether the C function ``name`` resolves in this process (libm is loaded), so a
    lowering may call any math function without a table entry here."""
    import ctypes

    return name.isidentifier() and hasattr(ctypes.CDLL(None), name)


def double(value: float) -> str:
    """An exact double constant (LLVM's hexadecimal form: the IEEE bits)."""
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


class Emitter:
    """Float64 instructions as IR lines; values are ``%tN`` names or constants."""

    def __init__(self, fastmath: bool, vector_math: bool = False):
        self.lines: list[str] = []
        self.declarations: dict[str, str] = {}   # symbol -> declare line
        self.flags = "fast " if fastmath else ""
        self._count = 0
        # loop kernels: math functions with vector variants (vecmath.py) are called
        # through their aliases, so the loop vectorizer calls the variants
        self.vector_math = vector_math
        self._vector_symbols: list[str] = []

    def fresh(self) -> str:
        self._count += 1
        return f"%t{self._count}"

    def emit(self, right: str) -> str:
        name = self.fresh()
        self.lines.append(f"  {name} = {right}")
        return name

    def const(self, value: float) -> str:
        return double(value)

    def add(self, x: str, y: str) -> str:
        return self.emit(f"fadd {self.flags}double {x}, {y}")

    def sub(self, x: str, y: str) -> str:
        return self.emit(f"fsub {self.flags}double {x}, {y}")

    def mul(self, x: str, y: str) -> str:
        return self.emit(f"fmul {self.flags}double {x}, {y}")

    def div(self, x: str, y: str) -> str:
        return self.emit(f"fdiv {self.flags}double {x}, {y}")

    def neg(self, x: str) -> str:
        return self.emit(f"fneg {self.flags}double {x}")

    def call(self, name: str, *args: str) -> str:
        operands = ", ".join(f"double {a}" for a in args)
        # a constant exponent stays an intrinsic: LLVM turns pow(x, 2.0) into x * x
        constant_exponent = name == "pow" and not args[1].startswith("%")
        if self.vector_math and vecmath.variants(name, len(args)) and not constant_exponent:
            symbol = self._vector_function(name, len(args))
            attribute = vecmath.abi_attribute(name, len(args))
            return self.emit(f"call {self.flags}double @{symbol}({operands}) {attribute}")
        symbol = self.function(name, len(args))
        return self.emit(f"call {self.flags}double @{symbol}({operands})")

    def _vector_function(self, name: str, arity: int) -> str:
        """Declare ``name``'s alias and its vector variants once per module. The
        variants are kept in ``llvm.compiler.used``: nothing calls them before the loop
        vectorizer runs, and unused declarations would be dropped before it."""
        symbol = f'"{vecmath.alias(name)}"'
        if symbol in self.declarations:
            return symbol
        pure = "nounwind willreturn memory(none)"
        self.declarations[symbol] = (
            f"declare double @{symbol}({', '.join(['double'] * arity)}) {pure}")
        for lanes, vector in vecmath.variants(name, arity):
            kind = f"<{lanes} x double>"
            self.declarations[vector] = (
                f"declare {kind} @{vector}({', '.join([kind] * arity)}) {pure}")
            self._vector_symbols.append(vector)
        used = ", ".join(f"ptr @{v}" for v in self._vector_symbols)
        self.declarations["llvm.compiler.used"] = (
            f"@llvm.compiler.used = appending global [{len(self._vector_symbols)} x ptr] "
            f'[{used}], section "llvm.metadata"')
        return symbol

    def function(self, name: str, arity: int) -> str:
        """The quoted symbol of a math function, declared once per module."""
        if name in INTRINSICS:
            if _ARITY.get(name, 1) != arity:
                raise ValueError(f"the LLVM backend knows no math function {name}/{arity}")
            symbol = f'"{INTRINSICS[name]}.f64"'
        elif LIBM.get(name) == arity or (name not in LIBM and _in_process(name)):
            symbol = f'"{name}"'             # any C math function the process can resolve
        else:
            raise ValueError(f"the LLVM backend knows no math function {name}/{arity}")
        params = ", ".join(["double"] * arity)
        self.declarations.setdefault(symbol, f"declare double @{symbol}({params})")
        return symbol

    def cmp(self, predicate: str, x: str, y: str) -> str:
        ordered, op = PREDICATES[predicate]
        return self.emit(f"fcmp {_FCMP[(op, ordered)]} double {x}, {y}")

    def select(self, condition: str, x: str, y: str) -> str:
        return self.emit(f"select i1 {condition}, double {x}, double {y}")

    def flag(self, condition: str) -> str:
        return self.emit(f"uitofp i1 {condition} to double")
