"""Textbook evaluation traces (primal, tangent, adjoint) rendered from a tape.

Numbering follows Griewank & Walther and Baydin et al.: inputs are v_{1-n} .. v_0,
operations v_1, v_2, ... in the tape's level order, outputs y_1 .. y_m. Numbers are
printed with ``digits`` decimals (3, as the lecture tables), trailing zeros dropped.
"""

from __future__ import annotations

import numpy as np

from ..core.expr import CONSTANT
from ..core.printing import ATOM, _format_node
from .linearize import Program

DOT, BAR = "\u0307", "\u0304"  # combining dot and bar: v̇, v̄


def _number(value: float, digits: int) -> str:
    text = f"{value:.{digits}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return "0" if text == "-0" else text


def _names(program: Program) -> list[str]:
    n = len(program.inputs)
    return [f"v_{k - n + 1}" for k in range(len(program.primal))]


def _values(program: Program, x: np.ndarray) -> tuple[list[float], list[list[float]]]:
    """Primal value of every numbered node and the partial of every edge."""
    from . import sweeps

    regs = sweeps._registers(program, x[None, :])
    node_values = list(x)
    partials: list[list[float]] = []
    steps_after = program.steps_after()
    by_node = {}
    with np.errstate(all="ignore"):
        for t, ins in enumerate(program.instructions):
            regs[ins.out] = ins.function(*[regs[a] for a in ins.args])
            by_node[ins.node] = float(np.asarray(regs[ins.out]).ravel()[0])
            for step in steps_after[t + 1]:
                partials.append([float(np.asarray(regs[r]).ravel()[0]) if r is not None
                                 else c for _, r, c in step.edges])
    node_values += [by_node[node] for node in program.primal[len(program.inputs):]]
    return node_values, partials


def _primal_lines(program: Program, values: list[float], names: list[str],
                  digits: int) -> list[str]:
    lines = ["Forward primal trace"]
    for i, s in enumerate(program.inputs):
        lines.append(f"  {names[i]} = {s.param} = {_number(values[i], digits)}")
    text = {node: (names[k], ATOM) for k, node in enumerate(program.primal)}
    for k in range(len(program.inputs), len(program.primal)):
        node = program.primal[k]
        for a in node.args:
            if a.op == CONSTANT or a not in text:
                text.setdefault(a, _format_node(a, text))
        formula = _format_node(node, text)[0]
        lines.append(f"  {names[k]} = {formula} = {_number(values[k], digits)}")
    return lines


def _output_lines(program: Program, names: list[str], values: dict[int, float],
                  digits: int, mark: str = "") -> list[str]:
    lines = []
    for j, (key, out) in enumerate(zip(program.output_keys, program.outputs, strict=True)):
        source = f"v{mark}{names[key][1:]}" if key is not None else str(out)
        value = values.get(key, 0.0) if key is not None else float(out.evaluate())
        lines.append(f"  y{mark}_{j + 1} = {source} = {_number(value, digits)}")
    return lines


def _marked(name: str, mark: str) -> str:
    """x1 -> ẋ1: the mark goes on the first letter, as in the textbook."""
    return name[0] + mark + name[1:]


def _term(coefficient: float, name: str, digits: int) -> str:
    if coefficient == 1.0:
        return name
    if coefficient == -1.0:
        return f"-{name}"
    return f"{_number(coefficient, digits)} * {name}"


def _tangent_lines(program: Program, partials: list[list[float]], names: list[str],
                   seed: int, digits: int) -> list[str]:
    n = len(program.inputs)
    dot = {k: float(k == seed) for k in range(n)}
    lines = [f"Forward tangent trace (seed {program.inputs[seed].param})"]
    for i, s in enumerate(program.inputs):
        lines.append(f"  v{DOT}{names[i][1:]} = {_marked(s.param, DOT)} = {_number(dot[i], digits)}")
    for step, ps in zip(program.steps, partials, strict=True):
        terms = [_term(p, f"v{DOT}{names[key][1:]}", digits)
                 for (key, _, _), p in zip(step.edges, ps, strict=True)]
        dot[step.key] = sum(p * dot[key] for (key, _, _), p in zip(step.edges, ps,
                                                                     strict=True))
        formula = " + ".join(terms).replace("+ -", "- ") or "0"
        lines.append(f"  v{DOT}{names[step.key][1:]} = {formula} = "
                     f"{_number(dot[step.key], digits)}")
    return lines + _output_lines(program, names, dot, digits, DOT)


def _adjoint_lines(program: Program, partials: list[list[float]], names: list[str],
                   seed: int, digits: int) -> list[str]:
    bar: dict[int, float] = {}
    key = program.output_keys[seed]
    lines = [f"Reverse adjoint trace (seed y_{seed + 1})"]
    if key is not None:
        bar[key] = 1.0
        lines.append(f"  v{BAR}{names[key][1:]} = y{BAR}_{seed + 1} = 1")
    for step, ps in zip(reversed(program.steps), reversed(partials), strict=True):
        if step.key not in bar:
            continue
        for (arg, _, _), p in zip(step.edges, ps, strict=True):
            target, source = f"v{BAR}{names[arg][1:]}", f"v{BAR}{names[step.key][1:]}"
            update = _term(p, source, digits) if p != 1.0 else source
            before = f"{target} + " if arg in bar else ""
            bar[arg] = bar.get(arg, 0.0) + p * bar[step.key]
            lines.append(f"  {target} = {before}{update} = {_number(bar[arg], digits)}")
    for i, s in enumerate(program.inputs):
        lines.append(f"  {_marked(s.param, BAR)} = v{BAR}{names[i][1:]} = "
                     f"{_number(bar.get(i, 0.0), digits)}")
    return lines


def trace_tables(program: Program, x: np.ndarray, mode: str = "forward", seed: int = 0,
                 digits: int = 3) -> str:
    """The primal trace followed by the tangent (forward) or adjoint (reverse) trace."""
    if mode not in ("forward", "reverse"):
        raise ValueError(f"trace: mode must be 'forward' or 'reverse', got {mode!r}")
    limit = len(program.inputs) if mode == "forward" else len(program.outputs)
    if not 0 <= seed < limit:
        what = "input" if mode == "forward" else "output"
        raise ValueError(f"trace: seed must be an {what} index in 0..{limit - 1}, got {seed}")
    values, partials = _values(program, x)
    names = _names(program)
    value_of = dict(enumerate(values))
    lines = _primal_lines(program, values, names, digits)
    lines += _output_lines(program, names, value_of, digits)
    lines.append("")
    if mode == "forward":
        lines += _tangent_lines(program, partials, names, seed, digits)
    else:
        lines += _adjoint_lines(program, partials, names, seed, digits)
    return "\n".join(lines)
