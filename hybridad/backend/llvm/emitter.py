"""The emitter the registry's LLVM lowerings are written against.

A lowering is ``Primitive.llvm(e, *args)``; ``e`` offers float64 arithmetic, ``call`` of
a math function by its C name (an LLVM intrinsic where one exists, else libm),
comparisons and select. Keeping this vocabulary small keeps llvmlite out of the core
and every operation's math in its one registry entry.
"""

from __future__ import annotations

from typing import Any

import llvmlite.ir as ir

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


class Emitter:
    """Builds float64 instructions into one IRBuilder."""

    def __init__(self, builder: ir.IRBuilder, fastmath: bool):
        self.b = builder
        self.module = builder.module
        self.flags = ("fast",) if fastmath else ()

    def const(self, value: float) -> ir.Constant:
        return ir.Constant(DOUBLE, float(value))

    def add(self, x: Any, y: Any) -> Any:
        return self.b.fadd(x, y, flags=self.flags)

    def sub(self, x: Any, y: Any) -> Any:
        return self.b.fsub(x, y, flags=self.flags)

    def mul(self, x: Any, y: Any) -> Any:
        return self.b.fmul(x, y, flags=self.flags)

    def div(self, x: Any, y: Any) -> Any:
        return self.b.fdiv(x, y, flags=self.flags)

    def neg(self, x: Any) -> Any:
        return self.b.fneg(x, flags=self.flags)

    def call(self, name: str, *args: Any) -> Any:
        return self.b.call(self.function(name, len(args)), list(args),
                           fastmath=self.flags)

    def function(self, name: str, arity: int) -> ir.Function:
        if name in INTRINSICS:
            return self.module.declare_intrinsic(INTRINSICS[name], [DOUBLE])
        if LIBM.get(name) != arity:
            raise ValueError(f"the LLVM backend knows no math function {name}/{arity}")
        existing = self.module.globals.get(name)
        if existing is not None:
            return existing
        return ir.Function(self.module, ir.FunctionType(DOUBLE, [DOUBLE] * arity), name)

    def cmp(self, predicate: str, x: Any, y: Any) -> Any:
        ordered, op = PREDICATES[predicate]
        if ordered:
            return self.b.fcmp_ordered(op, x, y)
        return self.b.fcmp_unordered(op, x, y)

    def select(self, condition: Any, x: Any, y: Any) -> Any:
        return self.b.select(condition, x, y)

    def flag(self, condition: Any) -> Any:
        """A comparison as 1.0 / 0.0."""
        return self.b.uitofp(condition, DOUBLE)
