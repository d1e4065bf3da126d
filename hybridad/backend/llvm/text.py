"""LLVM IR for segment functions written as text.

llvmlite's IR builder costs ~30 µs of Python per instruction (object construction and
name uniquing), which made IR construction a third of a large kernel's compile time.
Segment bodies are straight-line code over doubles, so they are written here as
formatted lines instead: ``TextEmitter`` offers the same vocabulary as
:class:`~.emitter.Emitter` (the registry's lowerings run on either), and
``segment_text`` writes one ``seg_k`` function in the form llvmlite's builder would.
"""

from __future__ import annotations

import struct
from typing import Callable

from ...core.expr import CONSTANT, SYMBOL, Expr
from ...core.registry import PRIMITIVES
from .emitter import INTRINSICS, LIBM, PREDICATES

_ARITY = {"pow": 2}
_FCMP = {("<", True): "olt", ("<=", True): "ole", (">", True): "ogt", (">=", True): "oge",
         ("==", True): "oeq", ("!=", False): "une", ("uno", False): "uno"}


def double(value: float) -> str:
    """An exact double constant (LLVM's hexadecimal form: the IEEE bits)."""
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(value)))[0]


class TextEmitter:
    """Float64 instructions as IR lines; values are ``%tN`` names or constants."""

    def __init__(self, fastmath: bool):
        self.lines: list[str] = []
        self.declarations: dict[str, str] = {}   # symbol -> declare line
        self.flags = "fast " if fastmath else ""
        self._count = 0

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
        symbol = self.function(name, len(args))
        operands = ", ".join(f"double {a}" for a in args)
        return self.emit(f"call {self.flags}double @{symbol}({operands})")

    def function(self, name: str, arity: int) -> str:
        """The quoted symbol of a math function, declared once per module."""
        if name in INTRINSICS:
            if _ARITY.get(name, 1) != arity:
                raise ValueError(f"the LLVM backend knows no math function {name}/{arity}")
            symbol = f'"{INTRINSICS[name]}.f64"'
        elif LIBM.get(name) == arity:
            symbol = f'"{name}"'
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


def segment_text(name: str, nodes: list[Expr], leaf_stores: list[tuple[Expr, int, int]],
                 position: dict[Expr, tuple[int, int]],
                 outputs: dict[Expr, list[tuple[int, int]]], slot: dict[Expr, int],
                 accumulate: tuple[bool, ...], e: TextEmitter) -> str:
    """``void name(double** in_rows, double** out_rows, double* scratch)``: compute
    ``nodes`` for one row, store outputs as they appear, spill what later segments read
    (``slot``), do ``leaf_stores``. Declarations collect in ``e.declarations``."""
    e.lines = []
    value: dict[Expr, str] = {}
    rows: dict[tuple[str, int], str] = {}

    def row_pointer(array: str, k: int) -> str:
        if (array, k) not in rows:
            address = e.emit(f"getelementptr double*, double** {array}, i64 {k}")
            rows[(array, k)] = e.emit(f"load double*, double** {address}")
        return rows[(array, k)]

    def element(base: str, k: int) -> str:
        return e.emit(f"getelementptr double, double* {base}, i64 {k}")

    def get(node: Expr) -> str:
        if node in value:
            return value[node]
        if node.op == CONSTANT:
            return double(node.param)
        if node.op == SYMBOL:
            if node not in position:
                raise ValueError(f"the kernel's outputs use {node.param}, which is not an "
                                 "input")
            g, j = position[node]
            loaded = e.emit(f"load double, double* {element(row_pointer('%in', g), j)}")
        else:
            loaded = e.emit(f"load double, double* {element('%scratch', slot[node])}")
        value[node] = loaded
        return loaded

    def store(o: int, i: int, v: str) -> None:
        address = element(row_pointer("%out", o), i)
        if accumulate[o]:
            v = e.add(e.emit(f"load double, double* {address}"), v)
        e.lines.append(f"  store double {v}, double* {address}")

    for node, o, i in leaf_stores:
        store(o, i, get(node))
    for node in nodes:
        lower: Callable[..., str] = PRIMITIVES[node.op].llvm
        v = lower(e, *[get(a) for a in node.args])
        value[node] = v
        for o, i in outputs.get(node, ()):
            store(o, i, v)
        if node in slot:
            e.lines.append(f"  store double {v}, double* {element('%scratch', slot[node])}")
    body = "\n".join(e.lines)
    return (f'define internal void @"{name}"(double** %in, double** %out, double* %scratch)'
            f" noinline nounwind\n{{\nentry:\n{body}\n  ret void\n}}\n")
