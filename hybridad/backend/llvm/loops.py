"""Tensor DAG -> one LLVM function of loop nests (DESIGN §6, kernels).

``void run(i8** objects)``: ``objects`` holds, in the order of
:attr:`LoopProgram.buffers`, the numpy arrays of the inputs, array constants, outputs
and intermediate buffers (see :meth:`LoopProgram.ir`). Shapes are static, so every loop
bound and stride is a constant LLVM sees.

How the DAG becomes loops:

- **Fusion.** An elementwise node with one consumer that is an elementwise node of the
  same shape, or the reduction that reads it, is computed inside its consumer's loop:
  a chain ``100*(x[1:] - x[:-1]**2)**2 + ...`` summed is one loop with no temporaries.
  Every other node that is not a view is *materialized* into a buffer.
- **Views** (transpose, broadcast, basic slicing, reshape of a contiguous value) are
  index arithmetic: an :class:`Access` (buffer, offset, strides) over the view's own
  shape, composed by the entry's lowering (``Primitive.llvm(k, node, access)``).
- **Reductions** loop over the operand in memory order and add into the output; when
  the innermost axis is reduced it is summed in registers, in blocks of
  ``SUM_BLOCK`` (blocked summation: the error grows with n / SUM_BLOCK + SUM_BLOCK, not
  with n).
- **Contractions** call BLAS ``dgemm`` (scipy's, see blas.py), or, when small, a
  generated loop nest (a reduction of a product over (m, n, k)).

Loop counters and accumulators are stack slots; LLVM's SROA/mem2reg promotes them to
registers and the loop passes vectorize the inner loops.

**Stages and threads.** Every top-level loop nest or BLAS call is a :class:`Stage`,
compiled as its own function ``stage<k>(objects, first_chunk, end_chunk)``. A stage
whose outer iterations write disjoint elements (elementwise loops, copies, fills,
reductions over inner axes, matmul loop nests over rows, gathers, slice scatters, the
super-blocks of a long sum) is *parallel*: its outermost loop is cut into fixed chunks,
and ``stage<k>(objects, c, c + 1)`` runs chunk c alone, so several threads can share
one call (``work`` in team.py). ``run(objects)`` runs every stage over all its
chunks (the one-thread entry). Results do not depend on how chunks are spread over
threads: see :meth:`LoopProgram._staged`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...core.expr import ARRAY, CONSTANT, SYMBOL, Expr
from ...core.registry import PRIMITIVES
from ...core.traverse import topo_order
from ...errors import HybridadError
from .emitter import Emitter, double

SUM_BLOCK = 256
# a contraction with at most this many multiply-adds runs as a generated loop nest
SMALL_CONTRACTION = 4096
REDUCTIONS = {"sum": "add", "max": "maximum", "min": "minimum"}
# an elementwise value read by several loops is computed again in each when it takes at
# most this many cheap operations, instead of being written to memory and read back
RECOMPUTE_OPS = 8
CHEAP = frozenset({"add", "sub", "mul", "neg", "abs", "relu", "maximum", "minimum",
                   "where", "lt", "le", "gt", "ge", "sign", "stop_gradient"})
# a parallel stage's chunk holds at least this many elements of work (its outer
# iterations times the elements of each): handing a chunk to a thread costs microseconds
CHUNK_WORK = 1 << 15
# a one-dimensional loop's chunks start at multiples of this many elements (whole vector
# bodies, aligned loads)
CHUNK_ALIGN = 64


class NotLowerable(HybridadError):
    """A node the loop backend has no lowering for (the caller falls back to a tape)."""


def c_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major strides in elements."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


@dataclass(frozen=True)
class Access:
    """Where the elements of a value of ``shape`` live: element ``i`` is at
    ``buffers[buffer][offset + sum(i_d * strides[d])]``."""

    buffer: int
    offset: int
    strides: tuple[int, ...]
    shape: tuple[int, ...]

    def view(self, offset: int, strides: Sequence[int], shape: Sequence[int]) -> Access:
        return Access(self.buffer, offset, tuple(strides), tuple(shape))

    def reshaped(self, shape: Sequence[int]) -> Access:
        """A contiguous value read with another shape (row-major order kept)."""
        if not self.contiguous:
            raise ValueError("only a contiguous access can be reshaped")
        return Access(self.buffer, self.offset, c_strides(shape), tuple(shape))

    @property
    def contiguous(self) -> bool:
        return all(s == c or n == 1 for s, c, n in
                   zip(self.strides, c_strides(self.shape), self.shape))

    def broadcast(self, shape: Sequence[int]) -> Access:
        """This value read over a loop of ``shape`` (numpy broadcasting from the right:
        missing and size-1 dimensions get stride 0)."""
        lead = len(shape) - len(self.shape)
        strides = (0,) * lead + tuple(0 if n == 1 else s for s, n in
                                      zip(self.strides, self.shape))
        return Access(self.buffer, self.offset, strides, tuple(shape))


@dataclass
class Buffer:
    """One pointer of the table: an input, a constant array, an output or scratch."""

    kind: str          # "input" | "constant" | "index" (int64) | "output" | "scratch"
    index: int         # input / output number, or scratch size (elements)
    value: Any = None  # the constant's array


@dataclass
class Stage:
    """One top-level loop nest or call: the function ``stage<k>(objects, first, end)``.

    A parallel stage runs chunks [first, end) of its outermost loop (``chunk`` outer
    iterations each, the last one shorter); a serial stage is one chunk and ignores
    ``first`` and ``end``. ``work`` is the number of elements it computes."""

    parallel: bool
    chunks: int
    chunk: int
    work: int
    lines: tuple[int, int] = (0, 0)      # its lines in the emitter
    allocas: tuple[int, int] = (0, 0)    # its stack slots


class LoopProgram:
    """The plan and LLVM IR text of one tensor kernel."""

    def __init__(self, outputs: Sequence[Expr], inputs: Sequence[Expr],
                 blas: Callable[[], Any] | None = None, threaded: bool = False,
                 vector_math: bool = True):
        self.outputs, self.inputs = list(outputs), list(inputs)
        # threaded=False: no stage is cut into chunks (consecutive serial stages are one
        # function), so a kernel that never runs on several threads compiles as fast as
        # one plain loop nest program (chunked stages cost ~50% more LLVM time)
        self.threaded = threaded
        # a loader of blas.Blas (None: loops only), called only for a large contraction,
        # since importing scipy.linalg costs a fraction of a second
        self._blas_loader = blas
        self.blas: Any = None
        self.buffers: list[Buffer] = []
        self.access: dict[Expr, Access] = {}
        # vector_math=False: math functions by their plain C names (C export)
        self.e = Emitter(fastmath=False, vector_math=vector_math)
        self.body: list[str] = []              # lines after the entry block's allocas
        self.allocas: list[str] = []
        self._labels = 0
        self._open: list[tuple[int, str, str]] = []
        self._emitted: list[Stage] = []
        self._stage: Stage | None = None       # the stage being emitted
        self._plan()

    # -- planning ------------------------------------------------------------------------
    def _plan(self) -> None:
        order = topo_order(self.outputs)
        consumers: dict[Expr, list[Expr]] = {n: [] for n in order}
        for node in order:
            for a in node.args:
                consumers[a].append(node)
        roots = set(self.outputs)
        # scatters summed into a value of their shape are written into that sum's
        # buffer (a gradient's scatter(a) + scatter(b): one buffer, no zeros per term)
        self.deferred = {n for n in order if n.op == "scatter" and n not in roots and
                         len(consumers[n]) == 1 and consumers[n][0].op == "add" and
                         consumers[n][0].shape == n.shape}
        # sums that hold deferred scatters, directly or through single-use sums
        self.scattering: set[Expr] = set()
        for n in order:
            if n.op == "add" and any(
                    a in self.deferred or a in self.scattering and len(consumers[a]) == 1
                    and a.shape == n.shape and a not in roots for a in n.args):
                self.scattering.add(n)
        self.fused = set()
        self._cost: dict[Expr, int] = {}
        for n in order:                      # arguments first: a node's cost needs theirs
            if self._fusable(n, consumers[n], roots):
                self.fused.add(n)
        for k, symbol in enumerate(self.inputs):
            self.access[symbol] = self._new_buffer(Buffer("input", k), symbol.shape)
        for k, root in enumerate(self.outputs):
            if root not in self.access:          # an input returned as it is: copied
                self.access.setdefault(root, self._new_buffer(Buffer("output", k),
                                                              root.shape))
        for node in order:
            self._lower(node, roots)

    def _fusable(self, node: Expr, users: list[Expr], roots: set[Expr]) -> bool:
        """Whether ``node`` is computed inside its consumers' loops: it has one, or it is
        cheap enough to compute again in each (``x[1:] - x[:-1]**2``, read by a value
        and its gradient, costs less to recompute than to write and read back)."""
        if node in roots or not users or not self._elementwise(node):
            return False
        if self._holds_scatters(node):       # only a sum it is a term of can take it in
            return len(users) == 1 and users[0] in self.scattering
        if not all(self._takes_inline(node, user) for user in users):
            return False
        cost = self._recompute_cost(node)
        return len(users) == 1 or cost <= RECOMPUTE_OPS

    def _takes_inline(self, node: Expr, user: Expr) -> bool:
        """Whether ``user`` can compute ``node`` in its own loop."""
        if user in self.deferred or user.op in REDUCTIONS:
            return True
        return self._elementwise(user) and user.shape == node.shape

    def _recompute_cost(self, node: Expr) -> int:
        """Cheap operations in ``node``'s fused computation (a large number when it
        holds an expensive one: a transcendental function is not worth recomputing)."""
        cheap = node.op in CHEAP or node.op == "pow" and node.args[1].op == CONSTANT and \
            float(node.args[1].param).is_integer() and 0 < node.args[1].param <= 4
        own = 1 if cheap else RECOMPUTE_OPS + 1
        total = own + sum(self._cost.get(a, 0) for a in node.args if a in self.fused)
        self._cost[node] = total
        return total

    def _holds_scatters(self, node: Expr) -> bool:
        return node in self.scattering

    def _terms(self, node: Expr) -> list[Expr]:
        """The terms of a sum, through the fused sums it is made of (iteratively)."""
        terms, stack = [], [node]
        while stack:
            n = stack.pop()
            for a in reversed(n.args):
                if a in self.fused and a.op == "add":
                    stack.append(a)
                else:
                    terms.append(a)
        return terms

    @staticmethod
    def _elementwise(node: Expr) -> bool:
        return node.op not in (SYMBOL, CONSTANT, ARRAY) and not PRIMITIVES[node.op].structural

    def _new_buffer(self, buffer: Buffer, shape: tuple[int, ...]) -> Access:
        self.buffers.append(buffer)
        return Access(len(self.buffers) - 1, 0, c_strides(shape), tuple(shape))

    def _result(self, node: Expr, roots: set[Expr]) -> Access:
        """The buffer a materialized node is written to (its output's, for a root)."""
        if node in roots:
            k = self.outputs.index(node)
            existing = self.access.get(node)
            if existing is not None and self.buffers[existing.buffer].kind == "output":
                return existing
            return self._new_buffer(Buffer("output", k), node.shape)
        return self._new_buffer(Buffer("scratch", max(node.size, 1)), node.shape)

    def _lower(self, node: Expr, roots: set[Expr]) -> None:
        if node.op == SYMBOL:
            if node not in self.access:
                raise HybridadError(f"the kernel's outputs use {node.param}, which is not "
                                    f"an input")
            if node in roots:
                self._copy(self.access[node], self._result(node, roots))
            return
        if node.op == CONSTANT:
            if node in roots:
                self._fill(self._result(node, roots), double(node.param))
            return
        if node.op == ARRAY:
            self.access[node] = self._new_buffer(Buffer("constant", 0, node.param), node.shape)
            if node in roots:
                self._copy(self.access[node], self._result(node, roots))
            return
        if node in self.fused or node in self.deferred:
            return
        prim = PRIMITIVES[node.op]
        if not prim.structural:
            target = self._result(node, roots)
            if self._holds_scatters(node):
                self._sum_of_terms(node, target)
            else:
                self._elementwise_loop(node, target)
            self.access[node] = target
            return
        if prim.llvm is None:
            raise NotLowerable(f"the tensor operation {node.op!r} has no loop lowering")
        args = [self.operand(a) if a not in self.fused else a for a in node.args]
        view = prim.llvm(self, node, *args)
        if view is not None:                 # a view: index arithmetic, no loop
            self.access[node] = view
            if node in roots:
                self._copy(view, self._result(node, roots))
        elif node not in self.access:
            raise HybridadError(f"the lowering of {node.op!r} produced no value")

    def operand(self, node: Expr) -> Access:
        """A materialized or view node's access."""
        if node.op == CONSTANT:
            target = self._new_buffer(Buffer("scratch", 1), ())
            self._fill(target, double(node.param))
            self.access[node] = target
        return self.access[node]

    # -- the lowering vocabulary (used by the registry's structural entries) --------------
    def contiguous(self, access: Access) -> Access:
        """``access`` itself when row-major contiguous, else a contiguous copy."""
        if access.contiguous:
            return access
        copy = self._new_buffer(Buffer("scratch", max(math.prod(access.shape), 1)),
                                access.shape)
        self._copy(access, copy)
        return copy

    def materialize(self, node: Expr) -> Access:
        """The buffer ``node`` is computed into (its output's, for a root)."""
        target = self._result(node, set(self.outputs))
        self.access[node] = target
        return target

    def reduce(self, node: Expr, operand: Any, axes: tuple[int, ...], combine: str) -> None:
        """``node`` = the reduction ``combine`` ("add", "maximum", "minimum") of
        ``operand`` (an Access, or a fused elementwise node) over ``axes``."""
        target = self.materialize(node)
        shape = operand.shape
        kept = [d for d in range(len(shape)) if d not in axes]
        out_strides = [0] * len(shape)
        for d, s in zip(kept, target.strides):
            out_strides[d] = s
        out = target.view(target.offset, out_strides, shape)
        self._fill(target, _identity(combine))
        self._nest(shape, [out] + self._leaves(operand, shape),
                   lambda index: self._value_at(operand, index, shape), out, combine)

    def matmul(self, node: Expr, a: Access, b: Access) -> None:
        """``node = a @ b`` for operands of at most two dimensions: BLAS dgemm, or a
        generated loop nest when small (or when no BLAS is available)."""
        if len(a.shape) > 2 or len(b.shape) > 2:
            self._batched_matmul(node, a, b)
            return
        target = self.materialize(node)
        m = a.shape[0] if len(a.shape) == 2 else 1
        k = a.shape[-1]
        n = b.shape[1] if len(b.shape) == 2 else 1
        a2 = a.view(a.offset, a.strides if len(a.shape) == 2 else (0,) + a.strides, (m, k))
        b2 = b.view(b.offset, b.strides if len(b.shape) == 2 else b.strides + (0,), (k, n))
        c2 = target.view(target.offset, (n, 1), (m, n))
        if m * n * k > SMALL_CONTRACTION and self.blas is None and self._blas_loader:
            self.blas = self._blas_loader()
        if self.blas is None or m * n * k <= SMALL_CONTRACTION or 0 in (m, n, k):
            self._fill(target, double(0.0))
            # C[i, j] += A[i, p] * B[p, j] over the loop (i, j, p)
            left = a2.view(a2.offset, (a2.strides[0], 0, a2.strides[1]), (m, n, k))
            right = b2.view(b2.offset, (0, b2.strides[1], b2.strides[0]), (m, n, k))
            out = c2.view(c2.offset, (n, 1, 0), (m, n, k))

            def product(index: list[str]) -> str:
                return self.e.mul(self._load(left, index), self._load(right, index))

            self._nest((m, n, k), [out, left, right], product, out, "add")
            return
        if n == 1 or m == 1:                 # a matrix times a vector: dgemv
            self._dgemv(a2, b2, target, m, n, k)
            return
        left, right = self._blas_operand(a2), self._blas_operand(b2)
        with self._staged(1, m * n * k):     # one BLAS call: a serial stage
            self._dgemm(left, right, c2, m, n, k)

    def _batched_matmul(self, node: Expr, a: Access, b: Access) -> None:
        """Matmul with batch dimensions (broadcast as numpy's): one loop nest over
        batch + (m, n, k) adding A[..., i, p] * B[..., p, j] into C[..., i, j]."""
        a2 = a if len(a.shape) > 1 else a.view(a.offset, (0,) + a.strides, (1,) + a.shape)
        b2 = b if len(b.shape) > 1 else b.view(b.offset, b.strides + (0,), b.shape + (1,))
        m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]
        batch = tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
        target = self.materialize(node)
        full = batch + (m, n)
        c_full = target.view(target.offset, c_strides(full), full)
        loop = batch + (m, n, k)

        def over_loop(x: Access, inner: tuple[int, int, int]) -> Access:
            lead = Access(x.buffer, x.offset, x.strides[:-2], x.shape[:-2]).broadcast(batch)
            return x.view(x.offset, lead.strides + inner, loop)

        left = over_loop(a2, (a2.strides[-2], 0, a2.strides[-1]))
        right = over_loop(b2, (0, b2.strides[-1], b2.strides[-2]))
        out = c_full.view(c_full.offset, c_full.strides + (0,), loop)
        self._fill(target, double(0.0))
        self._nest(loop, [out, left, right],
                   lambda index: self.e.mul(self._load(left, index), self._load(right, index)),
                   out, "add")

    def einsum(self, node: Expr, operands: Sequence[Access], inputs: list[str],
               output: str) -> None:
        """One loop nest over the output's letters, then the contracted ones (innermost,
        so their sum stays in registers), adding the product of the operands' elements
        into the output: every letter is a loop, every operand an access over them."""
        sizes: dict[str, int] = {}
        for part, operand in zip(inputs, operands):
            sizes.update(zip(part, operand.shape))
        letters = list(output) + sorted(set("".join(inputs)) - set(output))
        loop = tuple(sizes[c] for c in letters)
        target = self.materialize(node)
        out = target.view(target.offset, [target.strides[output.index(c)] if c in output
                                          else 0 for c in letters], loop)
        reads = [operand.view(operand.offset, [operand.strides[part.index(c)] if c in part
                                               else 0 for c in letters], loop)
                 for part, operand in zip(inputs, operands)]

        def product(index: list[str]) -> str:
            value = self._load(reads[0], index)
            for read in reads[1:]:
                value = self.e.mul(value, self._load(read, index))
            return value

        self._fill(target, double(0.0))
        self._nest(loop, [out] + reads, product, out, "add")

    def take(self, node: Expr, x: Access, axis: int, indices: Sequence[int],
             index_shape: tuple[int, ...]) -> None:
        """``node[pre, j.., post] = x[pre, indices[j..], post]``: the index array is a
        buffer of int64 read in the loop (no merging of dimensions across it)."""
        target = self.materialize(node)
        table = self._index_buffer(indices, x.shape[axis])
        k = len(index_shape)
        inner = c_strides(index_shape)

        def value(index: list[str]) -> str:
            picked = self._index_at(table, index[axis:axis + k], inner)
            rest = index[:axis] + [picked] + index[axis + k:]
            return self._load(x, rest)

        self._loops(node.shape, value, lambda index, v: self._store(target, index, v))

    def scatter_add(self, node: Expr, g: Access, axis: int, indices: Sequence[int],
                    index_shape: tuple[int, ...]) -> None:
        """The transpose of :meth:`take`: zeros, then ``node[pre, indices[j..], post] +=
        g[pre, j.., post]`` (repeated indices add up)."""
        target = self.materialize(node)
        self._fill(target, double(0.0))
        table = self._index_buffer(indices, node.shape[axis])
        k = len(index_shape)
        inner = c_strides(index_shape)

        def store(index: list[str], v: str) -> None:
            picked = self._index_at(table, index[axis:axis + k], inner)
            address = self._address(target, index[:axis] + [picked] + index[axis + k:])
            old = self.e.emit(f"load double, double* {address}")
            self.e.lines.append(f"  store double {self.e.add(old, v)}, double* {address}")

        # rows of an outer axis (axis > 0) are disjoint; along the indexed axis, repeated
        # indices add into the same element
        self._loops(g.shape, lambda index: self._load(g, index), store, parallel=axis > 0)

    def _index_buffer(self, indices: Sequence[int], n: int) -> int:
        """A buffer holding ``indices`` (wrapped into [0, n)) as int64; its number."""
        values = np.asarray(indices, dtype=np.int64) % max(n, 1)
        self.buffers.append(Buffer("index", 0, values))
        return len(self.buffers) - 1

    def _index_at(self, buffer: int, index: list[str], strides: Sequence[int]) -> str:
        """The int64 in index buffer ``buffer`` at the row-major position of ``index``."""
        e = self.e
        position = "0"
        for i, stride in zip(index, strides):
            term = i if stride == 1 else e.emit(f"mul i64 {i}, {stride}")
            position = e.emit(f"add i64 {position}, {term}")
        base = e.emit(f"bitcast double* %b{buffer} to i64*")
        address = e.emit(f"getelementptr i64, i64* {base}, i64 {position}")
        return e.emit(f"load i64, i64* {address}")

    def _loops(self, shape: Sequence[int], value: Callable[[list[str]], str],
               store: Callable[[list[str], str], None], parallel: bool = True) -> None:
        """One loop per dimension (none merged), ``store(index, value(index))`` inside;
        ``parallel``: outer iterations store to disjoint elements."""
        if 0 in shape:
            return
        shape = tuple(shape)
        with self._staged(shape[0] if shape else 1, math.prod(shape[1:]),
                          parallel and bool(shape),
                          CHUNK_ALIGN if len(shape) == 1 else 1) as chunk:
            index = [self._open_chunks(n, chunk) if d == 0 and chunk else
                     self._open_loop(n) for d, n in enumerate(shape)]
            store(index, value(index))
            for _ in range(len(index) + (1 if chunk else 0)):
                self._close_loop()

    def _store(self, target: Access, index: list[str], v: str) -> None:
        self.e.lines.append(f"  store double {v}, double* {self._address(target, index)}")

    def concatenate(self, node: Expr, parts: Sequence[Access], axis: int) -> None:
        target = self.materialize(node)
        start = 0
        for part in parts:
            offset = target.offset + start * target.strides[axis]
            self._copy(part, target.view(offset, target.strides, part.shape))
            start += part.shape[axis]

    def scatter(self, node: Expr, value: Access, place: Callable[[Access], Access]) -> None:
        """``node`` = zeros with ``value`` written into the view ``place(result)``."""
        target = self.materialize(node)
        self._fill(target, double(0.0))
        self._copy(value, place(target))

    # -- loop nests ------------------------------------------------------------------------
    def _elementwise_loop(self, node: Expr, target: Access) -> None:
        self._nest(node.shape, [target] + self._leaves(node, node.shape),
                   lambda index: self._value_at(node, index, node.shape), target, None)

    def _sum_of_terms(self, node: Expr, target: Access) -> None:
        """A sum with scattered terms: zeros, then each term added in place (a scatter
        only over the elements it writes, its operand computed in that loop)."""
        from ...core.tensor_ops import index_access

        self._fill(target, double(0.0))
        for term in self._terms(node):
            if term in self.deferred:
                operand = term.args[0]
                source = operand if operand in self.fused else self.operand(operand)
                view = index_access(target, term.param[0])
                self._nest(view.shape, [view] + self._leaves(source, view.shape),
                           lambda index, s=source, v=view: self._value_at(s, index, v.shape),
                           view, "add")
            else:
                source = term if term in self.fused else self.operand(term)
                self._nest(node.shape, [target] + self._leaves(source, node.shape),
                           lambda index, s=source: self._value_at(s, index, node.shape),
                           target, "add")

    def _leaves(self, operand: Any, shape: tuple[int, ...]) -> list[Access]:
        """The accesses a fused computation of ``operand`` reads, over a loop of
        ``shape`` (so that loop dimensions merge only where every one of them allows)."""
        if isinstance(operand, Access):
            return [operand.broadcast(shape)]
        leaves = []
        for n in self._fused_order(operand):
            for a in n.args:
                if a not in self.fused and a.op != CONSTANT:
                    leaves.append(self.operand(a).broadcast(shape))
        return leaves

    def _copy(self, source: Access, target: Access) -> None:
        self._nest(target.shape, [target, source],
                   lambda index: self._load(source, index), target, None)

    def _fill(self, target: Access, value: str) -> None:
        self._nest(target.shape, [target], lambda index: value, target, None)

    def _value_at(self, operand: Any, index: list[str], shape: tuple[int, ...]) -> str:
        """The value of ``operand`` (an Access, or a fused node) at loop ``index``."""
        if isinstance(operand, Access):
            return self._load(operand.broadcast(shape), index)
        nodes = self._fused_order(operand)
        value: dict[Expr, str] = {}
        for n in nodes:
            args = []
            for a in n.args:
                if a in value:
                    args.append(value[a])
                elif a.op == CONSTANT:
                    args.append(double(a.param))
                else:
                    args.append(self._load(self.operand(a).broadcast(shape), index))
            lower = PRIMITIVES[n.op].llvm
            if lower is None:
                raise NotLowerable(f"the primitive {n.op!r} has no LLVM lowering")
            value[n] = lower(self.e, *args)
        return value[operand]

    def _fused_order(self, root: Expr) -> list[Expr]:
        """``root`` and the fused nodes it computes, children first (iteratively)."""
        return topo_order([root], follow=lambda a: a in self.fused)

    def _nest(self, shape: Sequence[int], accesses: list[Access],
              value: Callable[[list[str]], str], target: Access, combine: str | None) -> None:
        """Loops over ``shape`` (adjacent dimensions merged where every access allows)
        storing ``value(index)`` at ``target`` (or combining into it)."""
        shape = tuple(shape)
        if 0 in shape:
            return
        dims = _merged_dims(shape, [a.broadcast(shape) for a in accesses])
        shape = tuple(math.prod(shape[d] for d in group) for group in dims)

        def remap(index: list[str]) -> list[str]:
            return self._unmerge(index, dims)

        n_dims = len(shape)
        written = target.broadcast(tuple(target.shape)).strides
        reduce_inner = (combine is not None and n_dims > 0 and
                        written[dims[-1][-1]] == 0)
        loops = n_dims - (1 if reduce_inner else 0)
        if loops == 0 and reduce_inner and shape[0] > SUM_BLOCK ** 2 and \
                self._stage is None:
            self._split_reduction(shape[0], combine,
                                  lambda i: value(remap([i])), target, remap(["0"]))
            return
        e = self.e
        indices: list[str] = []
        # outer iterations write disjoint elements when the target moves along the outer
        # dimension (targets are views of fresh buffers, one element per index)
        with self._staged(shape[0] if loops else 1,
                          math.prod(shape[1:] if loops else shape),
                          loops > 0 and written[dims[0][-1]] != 0,
                          CHUNK_ALIGN if n_dims == 1 else 1) as chunk:
            for d in range(loops):
                indices.append(self._open_chunks(shape[0], chunk) if d == 0 and chunk
                               else self._open_loop(shape[d]))
            if reduce_inner:
                total = self._accumulate_inner(shape[-1], combine,
                                               lambda i: value(remap(indices + [i])))
                address = self._address(target, remap(indices + ["0"]))
                old = e.emit(f"load double, double* {address}")
                self.e.lines.append(f"  store double {self._combine(combine, old, total)}, "
                                    f"double* {address}")
            else:
                result = value(remap(indices))
                address = self._address(target, remap(indices))
                if combine is not None:
                    old = e.emit(f"load double, double* {address}")
                    result = self._combine(combine, old, result)
                self.e.lines.append(f"  store double {result}, double* {address}")
            for _ in range(len(indices) + (1 if chunk else 0)):
                self._close_loop()

    @contextmanager
    def _staged(self, outer: int = 1, inner: int = 1, parallel: bool = False,
                align: int = 1) -> Iterator[int]:
        """What is emitted inside is one stage of ``outer`` iterations of ``inner``
        elements each. Yields the outer iterations per chunk when the stage is parallel
        (``parallel``: outer iterations write disjoint elements, and at least two chunks
        of CHUNK_WORK elements), else 0: the outer loop stays whole. Inside a stage
        being emitted, nothing new starts (a nested nest is part of its stage); a serial
        stage right after a serial stage joins it.

        Why threads never change a result: the chunks are fixed here, at compile time,
        and each is computed by the same machine code (the stage's function, never
        inlined, its chunk loop restarting the inner loop at every chunk) over the same
        range of iterations, whichever thread calls it and with whatever neighbours; a
        chunk's writes are disjoint from the other chunks', and a stage starts after the
        previous one has finished. So the vectorized body / remainder split, and
        therefore every rounding, is the same as in ``run``."""
        if self._stage is not None:
            yield 0
            return
        chunk = -(-max(CHUNK_WORK, 1) // max(inner, 1))
        chunk = -(-chunk // align) * align
        chunks = -(-outer // chunk)
        if not (parallel and self.threaded) or chunks < 2 or outer * inner < 2 * CHUNK_WORK:
            chunk, chunks = 0, 1
        stage = Stage(chunk > 0, chunks, chunk, outer * inner)
        lines, allocas = len(self.e.lines), len(self.allocas)
        self._stage = stage
        try:
            yield chunk
        finally:
            self._stage = None
        end = (len(self.e.lines), len(self.allocas))
        if lines == end[0]:
            return
        last = self._emitted[-1] if self._emitted else None
        if last is not None and not last.parallel and not stage.parallel and \
                last.lines[1] == lines and last.allocas[1] == allocas:
            # consecutive serial stages are one function (fewer functions to compile)
            last.lines, last.allocas = (last.lines[0], end[0]), (last.allocas[0], end[1])
            last.work += stage.work
            return
        stage.lines, stage.allocas = (lines, end[0]), (allocas, end[1])
        self._emitted.append(stage)

    def _open_chunks(self, count: int, chunk: int) -> str:
        """A parallel stage's outer loop of ``count`` iterations: chunks [%first, %end)
        of ``chunk`` iterations each; returns the iteration index. Two loops to close."""
        e = self.e
        c = self._open_loop("%end", start="%first")
        low = e.emit(f"mul i64 {c}, {chunk}")
        high = self._bounded(e.emit(f"add i64 {low}, {chunk}"), count)
        return self._open_loop(high, start=low)

    def _split_reduction(self, n: int, combine: str, value: Callable[[str], str],
                         target: Access, index: list[str]) -> None:
        """A reduction of ``n`` elements into one: its super-blocks (the outer level of
        :meth:`_accumulate_inner`) as a parallel stage, each into its own slot of a
        scratch buffer, then a serial stage combining the slots in order (the same
        operations, in the same order, as one loop)."""
        blocks = -(-n // SUM_BLOCK ** 2)
        partials = self._new_buffer(Buffer("scratch", blocks), (blocks,))
        e = self.e
        with self._staged(blocks, SUM_BLOCK ** 2, True) as chunk:
            block = self._open_chunks(blocks, chunk) if chunk else self._open_loop(blocks)
            middle = self._super_block(block, n, combine, value)
            e.lines.append(f"  store double {e.emit(f'load double, double* {middle}')}, "
                           f"double* {self._address(partials, [block])}")
            for _ in range(2 if chunk else 1):
                self._close_loop()
        with self._staged():
            total = self._slot(_identity(combine))
            block = self._open_loop(blocks)
            old = e.emit(f"load double, double* {total}")
            new = self._load(partials, [block])
            e.lines.append(f"  store double {self._combine(combine, old, new)}, "
                           f"double* {total}")
            self._close_loop()
            address = self._address(target, index)
            old = e.emit(f"load double, double* {address}")
            new = e.emit(f"load double, double* {total}")
            e.lines.append(f"  store double {self._combine(combine, old, new)}, "
                           f"double* {address}")

    @staticmethod
    def _unmerge(index: list[str], dims: list[list[int]]) -> list[str]:
        """Loop indices over merged dimensions back to one index per original dimension
        (a merged group is addressed through its innermost dimension's stride, which the
        merge made valid for every access)."""
        out: list[str] = []
        for i, group in zip(index, dims):
            out.extend(["0"] * (len(group) - 1))
            out.append(i)
        return out

    def _combine(self, combine: str, old: str, new: str) -> str:
        if combine == "add":
            return self.e.add(old, new)
        return PRIMITIVES[combine].llvm(self.e, old, new)

    def _accumulate_inner(self, n: int, combine: str, value: Callable[[str], str]) -> str:
        """The innermost reduced loop in registers, blocked on two levels: blocks of
        SUM_BLOCK elements summed on their own, SUM_BLOCK blocks into a super-block sum,
        super-blocks into the total (error ~ (2 SUM_BLOCK + n / SUM_BLOCK**2) eps, close
        to numpy's pairwise summation, at the speed of a vectorized loop)."""
        e = self.e
        total = self._slot(_identity(combine))
        outer = self._open_loop(-(-n // SUM_BLOCK ** 2))
        middle = self._super_block(outer, n, combine, value)
        self._combine_into(combine, total, middle)
        self._close_loop()
        return e.emit(f"load double, double* {total}")

    def _super_block(self, outer: str, n: int, combine: str,
                     value: Callable[[str], str]) -> str:
        """The slot holding super-block ``outer``'s combination: elements
        [outer * SUM_BLOCK**2, ...) of ``n``, in blocks of SUM_BLOCK."""
        e = self.e
        middle = self._slot(_identity(combine))
        e.lines.append(f"  store double {_identity(combine)}, double* {middle}")
        outer_start = e.emit(f"mul i64 {outer}, {SUM_BLOCK ** 2}")
        blocks = self._bounded(e.emit(f"sub i64 {n + SUM_BLOCK - 1}, {outer_start}"),
                               SUM_BLOCK ** 2, divide=SUM_BLOCK)
        block = self._open_loop(blocks)
        partial = self._slot(None)
        e.lines.append(f"  store double {_identity(combine)}, double* {partial}")
        start = e.emit(f"add i64 {outer_start}, {e.emit(f'mul i64 {block}, {SUM_BLOCK}')}")
        length = self._bounded(e.emit(f"sub i64 {n}, {start}"), SUM_BLOCK)
        j = self._open_loop(length)
        i = e.emit(f"add i64 {start}, {j}")
        old = e.emit(f"load double, double* {partial}")
        new = value(i)
        if combine == "add":           # reassociation inside a block lets LLVM vectorize
            combined = e.emit(f"fadd reassoc double {old}, {new}")
        else:                          # nan-propagating max/min: vectorizable intrinsics
            symbol = f'"llvm.{combine}.f64"'
            e.declarations.setdefault(symbol, f"declare double @{symbol}(double, double)")
            combined = e.emit(f"call double @{symbol}(double {old}, double {new})")
        e.lines.append(f"  store double {combined}, double* {partial}")
        self._close_loop()
        self._combine_into(combine, middle, partial)
        self._close_loop()
        return middle

    def _bounded(self, rest: str, limit: int, divide: int = 1) -> str:
        """min(rest, limit) // divide, as i64."""
        e = self.e
        short = e.emit(f"icmp slt i64 {rest}, {limit}")
        bounded = e.emit(f"select i1 {short}, i64 {rest}, i64 {limit}")
        return bounded if divide == 1 else e.emit(f"sdiv i64 {bounded}, {divide}")

    def _combine_into(self, combine: str, target: str, source: str) -> None:
        old = self.e.emit(f"load double, double* {target}")
        new = self.e.emit(f"load double, double* {source}")
        self.e.lines.append(f"  store double {self._combine(combine, old, new)}, "
                            f"double* {target}")

    def _slot(self, initial: str | None) -> str:
        name = f"%slot{len(self.allocas)}"
        self.allocas.append(f"  {name} = alloca double")
        if initial is not None:
            self.e.lines.append(f"  store double {initial}, double* {name}")
        return name

    def _open_loop(self, count: Any, start: Any = 0) -> str:
        """Open ``for i in range(start, count)`` (ints or i64 values); returns i."""
        e = self.e
        k = self._labels
        self._labels += 1
        counter = f"%i{k}.slot"
        self.allocas.append(f"  {counter} = alloca i64")
        e.lines.append(f"  store i64 {start}, i64* {counter}")
        e.lines.append(f"  br label %L{k}.head")
        e.lines.append(f"L{k}.head:")
        i = e.emit(f"load i64, i64* {counter}")
        more = e.emit(f"icmp slt i64 {i}, {count}")
        e.lines.append(f"  br i1 {more}, label %L{k}.body, label %L{k}.exit")
        e.lines.append(f"L{k}.body:")
        self._open.append((k, counter, i))
        return i

    def _close_loop(self) -> None:
        e = self.e
        k, counter, i = self._open.pop()
        following = e.emit(f"add i64 {i}, 1")
        e.lines.append(f"  store i64 {following}, i64* {counter}")
        e.lines.append(f"  br label %L{k}.head")
        e.lines.append(f"L{k}.exit:")

    def _address(self, access: Access, index: list[str]) -> str:
        e = self.e
        position = str(access.offset)
        for i, stride in zip(index, access.strides):
            if stride == 0 or i == "0":
                continue
            term = i if stride == 1 else e.emit(f"mul i64 {i}, {stride}")
            position = e.emit(f"add i64 {position}, {term}")
        return e.emit(f"getelementptr double, double* %b{access.buffer}, i64 {position}")

    def _load(self, access: Access, index: list[str]) -> str:
        return self.e.emit(f"load double, double* {self._address(access, index)}")

    # -- BLAS --------------------------------------------------------------------------------
    def _blas_operand(self, a: Access) -> tuple[Access, str, int]:
        """(access, trans, leading dimension) of an (r, c) operand as column-major BLAS
        sees it: row-major storage is the transpose ('N' on the swapped product)."""
        rows, cols = a.shape
        if (a.strides[1] == 1 or cols == 1) and a.strides[0] >= max(cols, 1):
            return a, "N", max(a.strides[0], cols, 1)
        if (a.strides[0] == 1 or rows == 1) and a.strides[1] >= max(rows, 1):
            return a, "T", max(a.strides[1], rows, 1)
        copy = self.contiguous(a.view(a.offset, a.strides, a.shape))
        return copy, "N", max(cols, 1)

    def _dgemm(self, a: tuple, b: tuple, c: Access, m: int, n: int, k: int) -> None:
        """C (m, n), row-major, = A @ B: column-major dgemm computes C^T = B^T A^T."""
        (a_access, a_trans, lda), (b_access, b_trans, ldb) = a, b
        e = self.e
        symbol = self.blas.declare(e)
        ints = {}
        for name, v in (("m", n), ("n", m), ("k", k), ("lda", ldb), ("ldb", lda),
                        ("ldc", n)):
            slot = f"%blas{len(self.allocas)}"
            self.allocas.append(f"  {slot} = alloca i32")
            e.lines.append(f"  store i32 {v}, i32* {slot}")
            ints[name] = slot
        chars = {}
        for name, v in (("ta", b_trans), ("tb", a_trans)):
            slot = f"%blas{len(self.allocas)}"
            self.allocas.append(f"  {slot} = alloca i8")
            e.lines.append(f"  store i8 {ord(v)}, i8* {slot}")
            chars[name] = slot
        alpha, beta = self._slot(double(1.0)), self._slot(double(0.0))
        pa = self._address(b_access, ["0", "0"])
        pb = self._address(a_access, ["0", "0"])
        pc = self._address(c, ["0", "0"])
        e.lines.append(
            f"  call void @{symbol}(i8* {chars['ta']}, i8* {chars['tb']}, i32* {ints['m']}, "
            f"i32* {ints['n']}, i32* {ints['k']}, double* {alpha}, double* {pa}, "
            f"i32* {ints['lda']}, double* {pb}, i32* {ints['ldb']}, double* {beta}, "
            f"double* {pc}, i32* {ints['ldc']})")

    def _dgemv(self, a: Access, b: Access, c: Access, m: int, n: int, k: int) -> None:
        """C = A @ b (n == 1) or a @ B (m == 1) by dgemv, whose column-major matrix is
        our row-major one transposed: trans 'T' for row-major storage, 'N' for
        column-major (a transposed view)."""
        if n == 1:                        # y (m) = A (m, k) x (k)
            matrix, vector, rows, cols = a, b.view(b.offset, (b.strides[0],), (k,)), m, k
        else:                             # y (n) = B^T (n, k) x (k), B (k, n)
            matrix = b.view(b.offset, (b.strides[1], b.strides[0]), (n, k))
            vector, rows, cols = a.view(a.offset, (a.strides[1],), (k,)), n, k
        if vector.strides[0] <= 0:
            vector = self.contiguous(vector)
        if (matrix.strides[1] == 1 or cols == 1) and matrix.strides[0] >= max(cols, 1):
            trans, fm, fn, ld = "T", cols, rows, max(matrix.strides[0], cols, 1)
        elif (matrix.strides[0] == 1 or rows == 1) and matrix.strides[1] >= max(rows, 1):
            trans, fm, fn, ld = "N", rows, cols, max(matrix.strides[1], rows, 1)
        else:
            matrix = self.contiguous(matrix)
            trans, fm, fn, ld = "T", cols, rows, max(cols, 1)
        with self._staged(1, rows * cols):   # one BLAS call: a serial stage
            self._call_dgemv(matrix, vector, c, trans, (fm, fn, ld))

    def _call_dgemv(self, matrix: Access, vector: Access, c: Access, trans: str,
                    sizes: tuple[int, int, int]) -> None:
        fm, fn, ld = sizes
        e = self.e
        symbol = self.blas.declare(e, "dgemv")
        slots = {}
        for name, v in (("m", fm), ("n", fn), ("lda", ld), ("incx", vector.strides[0]),
                        ("incy", 1)):
            slots[name] = self._int_slot(v)
        flag = f"%blas{len(self.allocas)}"
        self.allocas.append(f"  {flag} = alloca i8")
        e.lines.append(f"  store i8 {ord(trans)}, i8* {flag}")
        alpha, beta = self._slot(double(1.0)), self._slot(double(0.0))
        pa = self._address(matrix, ["0", "0"])
        px = self._address(vector, ["0"])
        py = self._address(c, ["0"] * len(c.shape))
        e.lines.append(
            f"  call void @{symbol}(i8* {flag}, i32* {slots['m']}, i32* {slots['n']}, "
            f"double* {alpha}, double* {pa}, i32* {slots['lda']}, double* {px}, "
            f"i32* {slots['incx']}, double* {beta}, double* {py}, i32* {slots['incy']})")

    def _int_slot(self, value: int) -> str:
        slot = f"%blas{len(self.allocas)}"
        self.allocas.append(f"  {slot} = alloca i32")
        self.e.lines.append(f"  store i32 {value}, i32* {slot}")
        return slot

    # -- the module ------------------------------------------------------------------------
    def ir(self, data_offset: int | None) -> str:
        """The module. ``void run(i8** objects)``: ``objects[k]`` the numpy array of
        buffer k (every scratch buffer is a slice of one scratch array: its offset is
        added here); data pointers are read from the array objects at ``data_offset``
        (engine.numpy_data_offset), so the caller passes object addresses only; with
        ``data_offset=None`` ``objects[k]`` is buffer k's data pointer itself. ``run``
        calls every stage's function ``stage<k>(objects, first, end)`` over all its
        chunks; a threaded call runs them chunk by chunk through ``work`` (see
        team.py)."""
        offsets, scratch = [], 0
        for buffer in self.buffers:
            offsets.append(scratch if buffer.kind == "scratch" else 0)
            if buffer.kind == "scratch":
                scratch += buffer.index
        stages = self.stages
        staged = {k for stage in stages for k in range(*stage.allocas)}
        common = [a for k, a in enumerate(self.allocas) if k not in staged]
        functions = []
        for s, stage in enumerate(stages):
            body = "\n".join(self.e.lines[stage.lines[0]:stage.lines[1]])
            loads = []
            for k in sorted({int(k) for k in re.findall(r"%b(\d+)(?!\d)", body)}):
                loads.append(f"  %o{k}.p = getelementptr i8*, i8** %objects, i64 {k}")
                loads.append(f"  %o{k} = load i8*, i8** %o{k}.p")
                if data_offset is None:          # a plain table of data pointers
                    loads.append(f"  %d{k} = bitcast i8* %o{k} to double*")
                else:
                    loads.append(f"  %o{k}.d = getelementptr i8, i8* %o{k}, "
                                 f"i64 {data_offset}")
                    loads.append(f"  %o{k}.dp = bitcast i8* %o{k}.d to double**")
                    loads.append(f"  %d{k} = load double*, double** %o{k}.dp")
                loads.append(f"  %b{k} = getelementptr double, double* %d{k}, "
                             f"i64 {offsets[k]}")
            # never inlined (and not internal, so never specialized on run's constant
            # arguments): run and the threads' work execute the same code for a chunk
            functions.append(
                f"define void @stage{s}(i8** noalias %objects, i64 %first, i64 %end) "
                f"noinline nounwind {{\nentry:\n" +
                "\n".join(common + self.allocas[stage.allocas[0]:stage.allocas[1]] + loads) +
                f"\n{body}\n  ret void\n}}\n")
        calls = "".join(f"  call void @stage{s}(i8** %objects, i64 0, i64 {stage.chunks})\n"
                        for s, stage in enumerate(stages))
        functions.append(f"define void @run(i8** noalias %objects) nounwind {{\nentry:\n"
                         f"{calls}  ret void\n}}\n")
        declarations = "\n".join(self.e.declarations.values())
        return f"{declarations}\n\n" + "\n".join(functions)

    @property
    def stages(self) -> list[Stage]:
        """The stages in program order, with any lines emitted outside a stage (a
        lowering that writes lines itself) as serial stages of their own."""
        stages, done = [], 0
        for stage in self._emitted:
            if stage.lines[0] > done:
                stages.append(Stage(False, 1, 0, 1, (done, stage.lines[0])))
            stages.append(stage)
            done = stage.lines[1]
        if len(self.e.lines) > done:
            stages.append(Stage(False, 1, 0, 1, (done, len(self.e.lines))))
        return stages


def _identity(combine: str) -> str:
    """The starting value of a reduction."""
    return double({"add": 0.0, "maximum": -math.inf, "minimum": math.inf}[combine])


def _merged_dims(shape: tuple[int, ...], accesses: list[Access]) -> list[list[int]]:
    """Groups of adjacent dimensions that every access walks as one (row-major order):
    d and d+1 merge when each access has stride[d] == stride[d+1] * shape[d+1]."""
    groups: list[list[int]] = []
    for d in range(len(shape)):
        if groups and all(a.strides[groups[-1][-1]] == a.strides[d] * shape[d]
                          for a in accesses):
            groups[-1].append(d)
        else:
            groups.append([d])
    return groups


