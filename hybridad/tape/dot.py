"""Graphviz DOT picture of a tape: inputs, instructions, outputs and chain-rule edges.

Each instruction is one node ``vT = formula`` with the register it writes (registers are
reused, so the instruction number names the value). Edges run from the operands to the
instruction; on a primal operation each edge carries the local partial derivative as
text. The tape keeps partials as interned expressions computed by its own instructions,
so the registry's rule rebuilds the very same nodes here; instructions that only compute
partials are filled light orange, like derivative-only nodes in :func:`hybridad.to_dot`.
Partials are written in terms of inputs and primal values, with helper values inlined
while short, so labels stay small on deep tapes and the picture stays linear in size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..core.build import is_const
from ..core.dot import (
    DERIVATIVE_COLOUR, attributes, graph_header, ordered_operands, short_constant,
)
from ..core.expr import CONSTANT, Expr
from ..core.printing import ATOM, _format_node, format_constant
from ..calculus.rules import partial
from .linearize import Program

if TYPE_CHECKING:
    from .tape import Tape

#: partial-derivative labels longer than this name a helper value instead of inlining it
INLINE_CHARS = 32

Text = dict[Expr, tuple[str, int]]


def tape_to_dot(tape: Tape) -> str:
    """DOT text of ``tape``'s program (see :meth:`hybridad.Tape.to_dot`)."""
    program = tape.program
    ids, names, inline = _name_values(program)
    partials = _step_partials(program, inline)
    lines = graph_header(None, [
        (f"tape: inputs {len(program.inputs)}, instructions {len(program.instructions)}, "
         f"outputs {len(program.outputs)}; edge labels are local partial derivatives"),
        f"light orange ({DERIVATIVE_COLOUR}): instructions that only compute partials"])
    lines += _input_lines(program, ids)
    lines += _constant_lines(program, ids)
    primal = set(program.primal)
    for t, ins in enumerate(program.instructions):
        helper = ins.node not in primal
        lines.append(_instruction_line(ids[ins.node], t, ins.out, ins.node, names, helper))
        lines += _operand_edges(ins.node, ids, inline, partials.get(ins.node))
    lines += _output_lines(program, ids)
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- names ------------------------------------------------------------------------------
def _name_values(program: Program) -> tuple[dict[Expr, str], Text, Text]:
    """DOT ids, short names (for instruction formulas) and inline texts (for partials).

    Inputs are named by their symbols, constants by their values, instruction T's value
    ``vT``; an inline text expands a helper value (one only computing partials) while it
    stays short, and names primal values, so it never grows with the tape's depth.
    """
    ids: dict[Expr, str] = {s: f"in{i}" for i, s in enumerate(program.inputs)}
    names: Text = {s: (s.param, ATOM) for s in program.inputs}
    primal = set(program.primal)
    constants = [a for ins in program.instructions for a in ins.node.args] + program.outputs
    for a in dict.fromkeys(c for c in constants if c.op == CONSTANT):
        ids[a] = f"c{len(names) - len(program.inputs)}"
        names[a] = format_constant(a.param)
    for t, ins in enumerate(program.instructions):
        ids[ins.node] = f"i{t}"
        names[ins.node] = (f"v{t + 1}", ATOM)
    inline: Text = dict(names)
    for ins in program.instructions:
        if ins.node not in primal:
            text = _format_node(ins.node, inline)
            inline[ins.node] = text if len(text[0]) <= INLINE_CHARS else names[ins.node]
    return ids, names, inline


def _step_partials(program: Program, inline: Text) -> dict[Expr, list[Expr | None]]:
    """Per primal operation, the partial of each operand (None: structurally zero).

    Rebuilt from the registry as linearize does (interning gives the tape's own nodes);
    checked against the step's edges and the tape's values, and dropped (edges then
    show only operand positions) should they ever disagree.
    """
    key = {node: k for k, node in enumerate(program.primal)}
    result: dict[Expr, list[Expr | None]] = {}
    for step in program.steps:
        node = step.node
        partials: list[Expr | None] = []
        for i, a in enumerate(node.args):
            partials.append(partial(node, i) if a in key else None)
        kept = [(key[a], p) for a, p in zip(node.args, partials) if p is not None]
        if _matches(kept, step.edges, inline):
            result[node] = partials
    return result


def _matches(kept: list[tuple[int, Expr]], edges: list[tuple[int, int | None, float]],
             inline: Text) -> bool:
    """Same operands as the step's edges, constants where it keeps constants, and every
    other partial a value the tape computes."""
    return len(kept) == len(edges) and all(
        k == key and (is_const(p) if reg is None else p in inline)
        for (k, p), (key, reg, _) in zip(kept, edges))


# -- lines ------------------------------------------------------------------------------
def _input_lines(program: Program, ids: dict[Expr, str]) -> list[str]:
    return [f"  {ids[s]}{attributes(label=_with_register(s.param, i), shape='ellipse')};"
            for i, s in enumerate(program.inputs)]


def _with_register(text: str, register: int) -> str:
    """A two-line label: the value's text over the register that holds it."""
    return f"{text}\nr{register}"


def _constant_lines(program: Program, ids: dict[Expr, str]) -> list[str]:
    """Constants read by instructions, small and plain, with their registers."""
    n = len(program.inputs)
    register = {}
    for i, value in enumerate(program.constants):
        register.setdefault(_bits(value), n + i)
    lines = []
    for node, ident in ids.items():
        if node.op == CONSTANT:
            reg = register.get(_bits(node.param))
            text = short_constant(node.param)
            label = text if reg is None else _with_register(text, reg)
            lines.append(f"  {ident}{attributes(label=label, shape='plaintext', fontsize=10)};")
    return lines


def _bits(value: float) -> str:
    return "nan" if math.isnan(value) else float(value).hex()


def _instruction_line(ident: str, t: int, register: int, node: Expr, names: Text,
                      helper: bool) -> str:
    formula = _format_node(node, names)[0]
    label = _with_register(f"v{t + 1} = {formula}", register)
    fill = {"style": "filled", "fillcolor": DERIVATIVE_COLOUR} if helper else {}
    return f"  {ident}{attributes(label=label, shape='box', **fill)};"


def _operand_edges(node: Expr, ids: dict[Expr, str], inline: Text,
                   partials: list[Expr | None] | None) -> list[str]:
    """Operand -> instruction edges: the partial derivative on primal operations, and
    the operand position where order matters."""
    ordered = ordered_operands(node)
    lines = []
    for i, a in enumerate(node.args):
        parts = [str(i)] if ordered else []
        p = partials[i] if partials is not None else None
        if p is not None:
            parts.append(_partial_text(p, inline))
        label = ": ".join(parts) or None
        lines.append(f"  {ids[a]} -> {ids[node]}{attributes(label=label)};")
    return lines


def _partial_text(p: Expr, inline: Text) -> str:
    return format_constant(p.param)[0] if p.op == CONSTANT else inline[p][0]


def _output_lines(program: Program, ids: dict[Expr, str]) -> list[str]:
    lines = []
    for j, (out, reg) in enumerate(zip(program.outputs, program.output_registers)):
        ident = f"out{j}"
        label = _with_register(f"y{j + 1}", reg)
        lines.append(f"  {ident}{attributes(label=label, shape='box', peripheries=2)};")
        source = ids.get(out)
        if source is not None:
            lines.append(f"  {source} -> {ident};")
    return lines
