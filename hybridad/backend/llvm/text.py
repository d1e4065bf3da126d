"""Segment functions as LLVM IR text: a kernel's body for one row, the DAG's nodes
lowered through the registry with :class:`~.emitter.Emitter` (llvmlite's IR builder
stays for the small entry points in codegen.py)."""

from __future__ import annotations

from typing import Callable

from ...core.expr import CONSTANT, SYMBOL, Expr
from ...core.registry import PRIMITIVES
from ...errors import HybridadError
from .emitter import Emitter, double


def segment_text(name: str, nodes: list[Expr], leaf_stores: list[tuple[Expr, int, int]],
                 position: dict[Expr, tuple[int, int]],
                 outputs: dict[Expr, list[tuple[int, int]]], slot: dict[Expr, int],
                 accumulate: tuple[bool, ...], e: Emitter, inline: bool = False) -> str:
    """``void name(double** in_rows, double** out_rows, double* scratch)``: compute
    ``nodes`` for one row, store outputs as they appear, spill what later segments read
    (``slot``), do ``leaf_stores``. Declarations collect in ``e.declarations``. A body
    cut in several segments keeps them ``noinline`` (so LLVM compiles each on its own);
    a whole body in one segment is ``alwaysinline``, becoming the loop body of ``rows``."""
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
        if lower is None:
            raise HybridadError(f"the primitive {node.op!r} has no LLVM lowering; register "
                                f"it with llvm=, or use backend='tape' or 'numpy'")
        v = lower(e, *[get(a) for a in node.args])
        value[node] = v
        for o, i in outputs.get(node, ()):
            store(o, i, v)
        if node in slot:
            e.lines.append(f"  store double {v}, double* {element('%scratch', slot[node])}")
    body = "\n".join(e.lines)
    attributes = "alwaysinline nounwind" if inline else "noinline nounwind"
    return (f'define internal void @"{name}"(double** %in, double** %out, double* %scratch)'
            f" {attributes}\n{{\nentry:\n{body}\n  ret void\n}}\n")
