"""Expression DAG -> LLVM IR text for one kernel.

A kernel has input *groups* (each a flat vector of symbols) and output *blocks* (each a
flat vector of expressions). The body is generated once, in ``rows``:

``rows(double** ins, i64* in_strides, double** outs, i64* out_strides, i64 start, i64 end)``
    the batch loop: row r of group g starts at ``ins[g] + r * in_strides[g]`` (stride 0
    broadcasts a shared group); block o is stored at ``outs[o] + r * out_strides[o]``,
    or added there when the block accumulates (``reduce``: stride 0, one sum per call).
``rows_objects(PyObject* in_0.., PyObject* out_0.., i64 mask, i64 start, i64 end)``
    ``rows`` on numpy arrays the caller validated, reading their data pointers itself
    (at the offset ``engine.numpy_data_offset()`` found), so callers hand over objects
    without building pointer arrays. It is the one way in: batches, one row (start 0,
    end 1) from Python, and the native Python entry ``call`` (pyentry.py).

The body for one row is written as segment functions (text.py): every DAG node once, in
topological order (iteratively), so the DAG's sharing is the kernel's common-
subexpression elimination. A body over SEGMENT_NODES nodes is cut into several
``noinline`` segments (LLVM's code generation is superlinear in one block's size); a
smaller one is a single ``alwaysinline`` segment that becomes the loop body.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llvmlite import ir

from ...core.expr import CONSTANT, SYMBOL, Expr
from ...core.traverse import topo_order
from .emitter import DOUBLE, Emitter
from .pyentry import Abi, EntrySpec, entry_function
from .text import segment_text

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


# Operation nodes per function. LLVM's instruction selection and register allocation
# grow faster than linearly with the size of one basic block (measured: 17k nodes took
# 3.8 s to codegen as one block), so a larger body is cut into segment functions of
# this many nodes, each compiled on its own; values that cross a cut travel through a
# scratch array on the stack. Kernels below the limit are one function, unchanged.
SEGMENT_NODES = 500


@dataclass
class _Plan:
    """How a body is cut: the nodes of each segment and a scratch slot per crossing value."""

    segments: list[list[Expr]]
    slot: dict[Expr, int]
    n_slots: int
    leaf_stores: list[list[tuple[Expr, int, int]]]  # per segment: (leaf, block, index)
    position: dict[Expr, tuple[int, int]]           # input symbol -> (group, index)
    outputs: dict[Expr, list[tuple[int, int]]]      # output node -> [(block, index)]


def _plan(spec: KernelSpec, segment_nodes: int) -> _Plan:
    """Cut the topological order into segments; give every value used by a later segment
    a scratch slot, reusing slots whose value is dead (last read in an earlier segment)."""
    roots = [x for block in spec.blocks for x in block]
    ops = [n for n in topo_order(roots) if n.op not in (SYMBOL, CONSTANT)]
    segments = [ops[i:i + segment_nodes] for i in range(0, len(ops), segment_nodes)] or [[]]
    home = {n: k for k, nodes in enumerate(segments) for n in nodes}
    last_use: dict[Expr, int] = {}
    for k, nodes in enumerate(segments):
        for n in nodes:
            for a in n.args:
                if a in home and home[a] < k:
                    last_use[a] = k
    dying: dict[int, list[Expr]] = {}
    for node, k in last_use.items():
        dying.setdefault(k, []).append(node)
    slot: dict[Expr, int] = {}
    free: list[int] = []
    n_slots = 0
    for k, nodes in enumerate(segments):
        free.extend(slot[n] for n in dying.get(k - 1, ()))  # read for the last time before k
        for n in nodes:
            if n in last_use:
                if free:
                    slot[n] = free.pop()
                else:
                    slot[n] = n_slots
                    n_slots += 1
    # outputs that are symbols or constants (a Jacobian may hold thousands) are stored
    # by segments of their own, so no function gets more than segment_nodes stores
    outputs = _output_positions(spec)
    stores = [(x, o, i) for x, where in outputs.items()
              if x.op in (SYMBOL, CONSTANT) for o, i in where]
    leaf_stores: list[list[tuple[Expr, int, int]]] = [[] for _ in segments]
    if stores:
        leaf_stores[0] = stores[:segment_nodes]
        for i in range(segment_nodes, len(stores), segment_nodes):
            segments.append([])
            leaf_stores.append(stores[i:i + segment_nodes])
    position = {s: (g, j) for g, group in enumerate(spec.groups) for j, s in enumerate(group)}
    return _Plan(segments, slot, n_slots, leaf_stores, position, outputs)


def _output_positions(spec: KernelSpec) -> dict[Expr, list[tuple[int, int]]]:
    positions: dict[Expr, list[tuple[int, int]]] = {}
    for o, block in enumerate(spec.blocks):
        for i, x in enumerate(block):
            positions.setdefault(x, []).append((o, i))
    return positions


def _row_pointers(b: ir.IRBuilder, arrays: ir.Value, steps: ir.Value, count: int,
                  row: ir.Value) -> list[ir.Value]:
    """``arrays[k] + row * steps[k]`` for every k (loaded once, before the loop)."""
    return [b.gep(b.load(b.gep(arrays, [_index(k)])),
                  [b.mul(row, b.load(b.gep(steps, [_index(k)])))]) for k in range(count)]


SEGMENT_TYPE = ir.FunctionType(ir.VoidType(), [DOUBLE_P.as_pointer(), DOUBLE_P.as_pointer(),
                                                 DOUBLE_P])


def _segment_texts(spec: KernelSpec, plan: _Plan, fastmath: bool) -> tuple[list[str], dict]:
    """``seg_k(double** in_rows, double** out_rows, double* scratch)`` for every segment,
    as IR text (see text.py), and the math functions they declare. They are defined
    ``noinline``, which keeps the optimiser from gluing the segments back together."""
    e = Emitter(fastmath)
    inline = len(plan.segments) == 1
    texts = [segment_text(f"seg_{k}", plan.segments[k], plan.leaf_stores[k], plan.position,
                          plan.outputs, plan.slot, spec.accumulate, e, inline)
             for k in range(len(plan.segments))]
    return texts, e.declarations


def _rows_function(module: ir.Module, spec: KernelSpec, fastmath: bool,
                   segment_nodes: int) -> tuple[list[str], dict]:
    """``rows``: the batch loop calling the segment functions for each row (their text
    and declarations are returned, to be added to the module's text)."""
    plan = _plan(spec, segment_nodes)
    texts, declarations = _segment_texts(spec, plan, fastmath)
    segments = [ir.Function(module, SEGMENT_TYPE, f"seg_{k}") for k in range(len(texts))]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [
        DOUBLE_P.as_pointer(), I64.as_pointer(), DOUBLE_P.as_pointer(), I64.as_pointer(),
        I64, I64]), "rows")
    ins, in_strides, outs, out_strides, start, end = fn.args
    entry = fn.append_basic_block("entry")
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b = ir.IRBuilder(entry)
    n_in, n_out = len(spec.groups), len(spec.blocks)
    in_rows = b.alloca(DOUBLE_P, max(n_in, 1))
    out_rows = b.alloca(DOUBLE_P, max(n_out, 1))
    scratch = b.alloca(DOUBLE, max(plan.n_slots, 1))
    b.cbranch(b.icmp_signed("<", start, end), loop, done)

    b.position_at_end(loop)
    row = b.phi(I64, "row")
    row.add_incoming(start, entry)
    in_base = _row_pointers(b, ins, in_strides, n_in, row)
    out_base = _row_pointers(b, outs, out_strides, n_out, row)
    for arrays, bases in ((in_rows, in_base), (out_rows, out_base)):
        for k, p in enumerate(bases):
            b.store(p, b.gep(arrays, [_index(k)]))
    for seg in segments:
        b.call(seg, [in_rows, out_rows, scratch])
    following = b.add(row, _index(1))
    row.add_incoming(following, b.block)
    b.cbranch(b.icmp_signed("<", following, end), loop, done)
    b.position_at_end(done)
    b.ret_void()
    return texts, declarations


def _rows_objects_function(module: ir.Module, spec: KernelSpec, data_offset: int) -> None:
    """``rows_objects(PyObject* in_0.., PyObject* out_0.., i64 batched_mask, i64 start,
    i64 end)``: ``rows`` on numpy arrays the caller validated, reading their data
    pointers here (building pointer arrays in Python cost ~30 us per call). Bit g of
    ``batched_mask`` says group g has a batch dimension (stride = its size, else 0);
    output blocks advance one row per row unless they accumulate (stride 0)."""
    n_in, n_out = len(spec.groups), len(spec.blocks)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I8P] * (n_in + n_out)
                                             + [I64, I64, I64]), "rows_objects")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    mask, start, end = fn.args[n_in + n_out:]

    def data(obj: ir.Value) -> ir.Value:
        field = b.bitcast(b.gep(obj, [_index(data_offset)]), DOUBLE_P.as_pointer())
        return b.load(field)

    ins = b.alloca(DOUBLE_P, max(n_in, 1))
    in_steps = b.alloca(I64, max(n_in, 1))
    for g, obj in enumerate(fn.args[:n_in]):
        b.store(data(obj), b.gep(ins, [_index(g)]))
        bit = b.and_(b.lshr(mask, _index(g)), _index(1))
        b.store(b.mul(bit, _index(len(spec.groups[g]))), b.gep(in_steps, [_index(g)]))
    outs = b.alloca(DOUBLE_P, max(n_out, 1))
    out_steps = b.alloca(I64, max(n_out, 1))
    for o, obj in enumerate(fn.args[n_in:n_in + n_out]):
        b.store(data(obj), b.gep(outs, [_index(o)]))
        step = 0 if spec.accumulate[o] else len(spec.blocks[o])
        b.store(_index(step), b.gep(out_steps, [_index(o)]))
    b.call(module.get_global("rows"), [ins, in_steps, outs, out_steps, start, end])
    b.ret_void()


def kernel_ir(spec: KernelSpec, fastmath: bool, data_offset: int, triple: str,
              segment_nodes: int = SEGMENT_NODES, entry: EntrySpec | None = None,
              layout: Abi | None = None) -> str:
    """LLVM IR text of the kernel's entry points (equal specs give equal text, which is
    what the compile cache keys on); ``entry`` adds the native Python entry ``call``."""
    module = ir.Module("hybridad_kernel")
    module.triple = triple
    texts, declarations = _rows_function(module, spec, fastmath, segment_nodes)
    _rows_objects_function(module, spec, data_offset)
    if entry is not None and layout is not None:
        entry_function(module, entry, layout)
    return _with_segments(str(module), texts, declarations)


def _with_segments(text: str, segments: list[str], declarations: dict[str, str]) -> str:
    """The module text with the segment functions defined (llvmlite declared them so
    ``rows`` could call them) and the math functions they use declared once."""
    lines = [line for line in text.splitlines() if not line.startswith('declare void @"seg_')]
    declared = {line.split("@", 1)[1].split("(", 1)[0] for line in lines
                if line.startswith("declare ")}
    extra = [d for symbol, d in declarations.items() if symbol not in declared]
    return "\n".join(lines + [""] + extra + [""] + segments)


def total_nodes(blocks: Sequence[Sequence[Expr]]) -> int:
    """Distinct DAG nodes of all blocks (what a kernel computes once per row)."""
    return len(topo_order([x for block in blocks for x in block]))
