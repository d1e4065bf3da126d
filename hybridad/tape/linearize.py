"""Linearize a DAG into a tape: a flat instruction list over numbered registers.

The tape holds two interleaved programs built from the same registry entries:

* **instructions** compute the primal nodes *and* their partial derivatives. Partials are
  expressions (the registry's rules), so they are interned with the primal nodes: a
  partial that equals a primal value (``exp -> out``, ``mul -> the other factor``) costs
  nothing, and shared work is computed once (CSE for free).
* **steps**, one per primal operation, list its edges ``(argument, partial)``. A forward
  sweep runs step *j* right after the last instruction it needs (tangent of *j* = Σ
  partial·tangent of argument); a reverse sweep runs the steps backwards.

Registers: ``0 .. n_inputs-1`` hold the inputs, then one per distinct constant, then the
work registers. Work registers are reused by liveness analysis (a register is freed
after its last reader), so evaluation and forward sweeps need ``peak_slots`` registers
rather than one per node. The reverse sweep additionally keeps one value per edge.

Primal operations run in depth-first order (few live registers); for the textbook traces
they can be numbered in level order instead (depth, then first-visit order): for
log(x1) + x1*x2 - sin(x2) that is log, *, sin, +, -.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..core.build import is_const
from ..core.expr import CONSTANT, SYMBOL, Expr
from ..calculus.rules import partial
from ..core.registry import PRIMITIVES
from ..core.traverse import dependents, depths, topo_order


@dataclass
class Instruction:
    """``registers[out] = function(*registers[args])``."""

    node: Expr
    function: Callable[..., Any]
    out: int
    args: tuple[int, ...]


@dataclass
class Step:
    """Chain rule for one primal operation: tangent(node) = Σ partial · tangent(arg).

    ``edges`` holds ``(argument key, partial register or None, constant partial)``; the
    key of an argument is its index in ``Program.primal`` (inputs first). ``after`` is
    the number of instructions that must have run before this step.
    """

    key: int
    node: Expr
    edges: list[tuple[int, int | None, float]]
    after: int


@dataclass
class Program:
    inputs: list[Expr]
    outputs: list[Expr]
    primal: list[Expr]  # inputs, then the primal operations in level order
    constants: list[float]
    instructions: list[Instruction] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    output_registers: list[int] = field(default_factory=list)
    output_keys: list[int | None] = field(default_factory=list)  # None: no dependence
    n_registers: int = 0
    peak_slots: int = 0
    _steps_after: list[list[Step]] | None = field(default=None, repr=False)

    def steps_after(self) -> list[list[Step]]:
        """Steps grouped by the instruction they follow: entry t runs after t
        instructions (computed once, sweeps run often)."""
        if self._steps_after is None:
            grouped: list[list[Step]] = [[] for _ in range(len(self.instructions) + 1)]
            for step in self.steps:
                grouped[step.after].append(step)
            self._steps_after = grouped
        return self._steps_after


def level_order(roots: Sequence[Expr]) -> list[Expr]:
    """Operation nodes by (depth, depth-first position): a topological order."""
    order = topo_order(roots)
    depth = depths(order)
    position = {node: i for i, node in enumerate(order)}
    ops = [n for n in order if n.args]
    return sorted(ops, key=lambda n: (depth[n], position[n]))


def _check_inputs(inputs: Sequence[Expr], outputs: Sequence[Expr]) -> None:
    for s in inputs:
        if not (isinstance(s, Expr) and s.op == SYMBOL):
            raise TypeError(f"Tape inputs must be Symbols, got {s!r}")
    if len(set(inputs)) != len(inputs):
        raise ValueError("Tape inputs must be distinct symbols")
    free = {n for n in topo_order(outputs) if n.op == SYMBOL} - set(inputs)
    if free:
        names = ", ".join(sorted(s.param for s in free))
        raise ValueError(f"Tape: the outputs use symbols that are not inputs: {names}")


class _Builder:
    """Emits instructions (keyed by node) and chain-rule steps, in execution order."""

    def __init__(self, inputs: list[Expr], outputs: list[Expr]):
        self.program = Program(inputs, outputs, list(inputs), [])
        self.done: set[Expr] = set(inputs)
        self.constant_index: dict[Expr, int] = {}
        self.key: dict[Expr, int] = {s: i for i, s in enumerate(inputs)}
        self.active = dependents(topo_order(outputs), inputs)
        self.pending: list[tuple[Expr, tuple[Expr, ...]]] = []  # (node, argument nodes)
        self.step_partials: list[list[tuple[int, Expr | None, float]]] = []

    def emit(self, root: Expr) -> None:
        """Instructions for ``root`` and whatever it needs that is not yet computed."""
        if root in self.done:
            return
        for node in _new_nodes(root, self.done):
            self.done.add(node)
            if node.op == CONSTANT:
                self.constant_index[node] = len(self.program.constants)
                self.program.constants.append(node.param)
            else:
                self.pending.append((node, node.args))

    def add_step(self, node: Expr) -> None:
        self.emit(node)
        self.key[node] = len(self.program.primal)
        self.program.primal.append(node)
        edges: list[tuple[int, Expr | None, float]] = []
        for i, a in enumerate(node.args):
            if a not in self.active:
                continue
            p = partial(node, i)
            if p is None:
                continue
            if is_const(p):
                if p.param != 0.0:
                    edges.append((self.key[a], None, p.param))
            else:
                self.emit(p)
                edges.append((self.key[a], p, 1.0))
        self.step_partials.append(edges)
        self.program.steps.append(Step(self.key[node], node, [], len(self.pending)))


def _new_nodes(root: Expr, done: set[Expr]) -> list[Expr]:
    """Nodes reachable from ``root`` without passing through ``done``, children first
    (an explicit stack, as topo_order, but pruned so emitting stays linear overall)."""
    order: list[Expr] = []
    seen: set[Expr] = set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
        elif node not in seen and node not in done:
            seen.add(node)
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args)
                         if a not in seen and a not in done)
    return order


def linearize(outputs: Sequence[Expr], inputs: Sequence[Expr], order: str = "depth-first"
              ) -> Program:
    """Build the tape program of ``outputs`` as functions of ``inputs``.

    ``order="depth-first"`` finishes each subexpression before starting the next, which
    keeps few values alive (small ``peak_slots``); ``order="level"`` numbers operations as
    the textbook traces do, at the price of more live registers on wide DAGs.
    """
    outputs, inputs = list(outputs), list(inputs)
    _check_inputs(inputs, outputs)
    builder = _Builder(inputs, outputs)
    if order not in ("depth-first", "level"):
        raise ValueError(f"linearize: order must be 'depth-first' or 'level', got {order!r}")
    nodes = level_order(outputs) if order == "level" else [
        n for n in topo_order(outputs) if n.args]
    for node in nodes:
        if node in builder.active:
            builder.add_step(node)
    for out in outputs:
        builder.emit(out)
    program = builder.program
    program.output_keys = [builder.key.get(o) for o in outputs]
    _allocate_registers(program, builder)
    return program


def _last_reads(builder: _Builder) -> dict[Expr, float]:
    """When each node is last read: instruction t reads at time t; a step that runs
    after instruction a-1 reads at a - 0.5; outputs are read at the end."""
    last: dict[Expr, float] = {}
    for t, (_, args) in enumerate(builder.pending):
        for a in args:
            last[a] = t
    for step, edges in zip(builder.program.steps, builder.step_partials, strict=True):
        for _, value, _ in edges:
            if value is not None:
                last[value] = max(last.get(value, -1.0), step.after - 0.5)
    for out in builder.program.outputs:
        last[out] = math.inf
    return last


def _allocate_registers(program: Program, builder: _Builder) -> None:
    """Inputs, then constants, then work registers reused once their value is dead.

    A register whose last reader is instruction t may take instruction t's own output
    (numpy computes the result before it is stored); one last read by a step before
    instruction a is free from instruction a on.
    """
    n_fixed = len(program.inputs) + len(program.constants)
    register: dict[Expr, int] = {s: i for i, s in enumerate(program.inputs)}
    for node, i in builder.constant_index.items():
        register[node] = len(program.inputs) + i
    last = _last_reads(builder)
    released: dict[int, list[Expr]] = {}
    for node, when in last.items():
        if when != math.inf:
            released.setdefault(math.ceil(when), []).append(node)
    free: list[int] = []
    n_work = 0
    for t, (node, args) in enumerate(builder.pending):
        free.extend(register[n] for n in released.get(t, ()) if register.get(n, 0) >= n_fixed)
        if free:
            out = free.pop()
        else:
            out, n_work = n_fixed + n_work, n_work + 1
        register[node] = out
        program.instructions.append(Instruction(
            node, PRIMITIVES[node.op].numpy, out, tuple(register[a] for a in args)))
    for step, edges in zip(program.steps, builder.step_partials, strict=True):
        step.edges = [(k, None if p is None else register[p], c) for k, p, c in edges]
    program.output_registers = [register[o] for o in program.outputs]
    program.n_registers = n_fixed + n_work
    program.peak_slots = n_work
