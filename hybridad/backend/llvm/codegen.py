"""Expression DAG -> LLVM IR text for one kernel.

A kernel has input *groups* (each a flat vector of symbols) and output *blocks* (each a
flat vector of expressions). Two entry points share one body generator:

``rows(double** ins, i64* in_strides, double** outs, i64* out_strides, i64 start, i64 end)``
    the batch loop: row r of group g starts at ``ins[g] + r * in_strides[g]`` (stride 0
    broadcasts a shared group); block o is stored at ``outs[o] + r * out_strides[o]``,
    or added there when the block accumulates (``reduce``: stride 0, one sum per call).
``one(PyObject* in_0, ..., PyObject* out)``
    a single row into one flat output array (the blocks back to back), reading each
    numpy array's data pointer from the object itself, so the Python wrapper hands over
    objects it has validated without building pointer arrays.

Every DAG node is emitted once (topological order, iteratively), so the DAG's sharing
is the kernel's common-subexpression elimination.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import llvmlite.ir as ir

from ...core.expr import CONSTANT, SYMBOL, Expr
from ...core.registry import PRIMITIVES
from ...core.traverse import topo_order
from .emitter import DOUBLE, Emitter

I64 = ir.IntType(64)
I8P = ir.IntType(8).as_pointer()
DOUBLE_P = DOUBLE.as_pointer()


@dataclass(frozen=True)
class KernelSpec:
    """What a kernel computes: symbol groups in, expression blocks out."""

    groups: tuple[tuple[Expr, ...], ...]
    blocks: tuple[tuple[Expr, ...], ...]
    accumulate: tuple[bool, ...]  # per block: add into the output instead of storing


def _index(value: int) -> ir.Constant:
    return ir.Constant(I64, value)


def _emit_body(e: Emitter, spec: KernelSpec, load: Callable[[int, int], ir.Value],
               store: Callable[[int, int, ir.Value], None]) -> None:
    """Compute every block's expressions for one row and hand them to ``store``."""
    position = {s: (g, j) for g, group in enumerate(spec.groups) for j, s in enumerate(group)}
    value: dict[Expr, ir.Value] = {}
    roots = [x for block in spec.blocks for x in block]
    for node in topo_order(roots):
        if node.op == SYMBOL:
            if node not in position:
                raise ValueError(f"the kernel's outputs use {node.param}, which is not an "
                                 "input")
            value[node] = load(*position[node])
        elif node.op == CONSTANT:
            value[node] = e.const(node.param)
        else:
            value[node] = PRIMITIVES[node.op].llvm(e, *[value[a] for a in node.args])
    for o, block in enumerate(spec.blocks):
        for i, x in enumerate(block):
            store(o, i, value[x])


def _rows_function(module: ir.Module, spec: KernelSpec, fastmath: bool) -> None:
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [
        DOUBLE_P.as_pointer(), I64.as_pointer(), DOUBLE_P.as_pointer(), I64.as_pointer(),
        I64, I64]), "rows")
    ins, in_strides, outs, out_strides, start, end = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    in_ptr = [b.load(b.gep(ins, [_index(g)])) for g in range(len(spec.groups))]
    in_step = [b.load(b.gep(in_strides, [_index(g)])) for g in range(len(spec.groups))]
    out_ptr = [b.load(b.gep(outs, [_index(o)])) for o in range(len(spec.blocks))]
    out_step = [b.load(b.gep(out_strides, [_index(o)])) for o in range(len(spec.blocks))]
    b.cbranch(b.icmp_signed("<", start, end), loop, done)

    b.position_at_end(loop)
    row = b.phi(I64, "row")
    row.add_incoming(start, entry)
    in_base = [b.gep(p, [b.mul(row, s)]) for p, s in zip(in_ptr, in_step)]
    out_base = [b.gep(p, [b.mul(row, s)]) for p, s in zip(out_ptr, out_step)]

    def load(g: int, j: int) -> ir.Value:
        return b.load(b.gep(in_base[g], [_index(j)]))

    def store(o: int, i: int, v: ir.Value) -> None:
        slot = b.gep(out_base[o], [_index(i)])
        b.store(e.add(b.load(slot), v) if spec.accumulate[o] else v, slot)

    e = Emitter(b, fastmath)
    _emit_body(e, spec, load, store)
    following = b.add(row, _index(1))
    row.add_incoming(following, b.block)
    b.cbranch(b.icmp_signed("<", following, end), loop, done)
    b.position_at_end(done)
    b.ret_void()


def _one_function(module: ir.Module, spec: KernelSpec, data_offset: int) -> None:
    """One row through ``rows`` (not a second copy of the body, which would double the
    compile time). Arguments: one numpy array object per group, then ONE output array
    holding every block back to back (one allocation per call)."""
    n_in, n_out = len(spec.groups), len(spec.blocks)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I8P] * (n_in + 1)), "one")
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def data(obj: ir.Value) -> ir.Value:
        field = b.bitcast(b.gep(obj, [_index(data_offset)]), DOUBLE_P.as_pointer())
        return b.load(field)

    ins = b.alloca(DOUBLE_P, max(n_in, 1))
    for k, obj in enumerate(fn.args[:n_in]):
        b.store(data(obj), b.gep(ins, [_index(k)]))
    outs = b.alloca(DOUBLE_P, max(n_out, 1))
    flat, offset = data(fn.args[n_in]), 0
    for o, block in enumerate(spec.blocks):
        b.store(b.gep(flat, [_index(offset)]), b.gep(outs, [_index(o)]))
        offset += len(block)
    zeros = b.alloca(I64, max(n_in, n_out, 1))
    for k in range(max(n_in, n_out, 1)):
        b.store(_index(0), b.gep(zeros, [_index(k)]))
    b.call(module.get_global("rows"), [ins, zeros, outs, zeros, _index(0), _index(1)])
    b.ret_void()


def kernel_ir(spec: KernelSpec, fastmath: bool, data_offset: int, triple: str) -> str:
    """LLVM IR text of the kernel's two entry points (equal specs give equal text, which
    is what the compile cache keys on)."""
    module = ir.Module("hybridad_kernel")
    module.triple = triple
    _rows_function(module, spec, fastmath)
    _one_function(module, spec, data_offset)
    return str(module)


def total_nodes(blocks: Sequence[Sequence[Expr]]) -> int:
    """Distinct DAG nodes of all blocks (what a kernel computes once per row)."""
    return len(topo_order([x for block in blocks for x in block]))
