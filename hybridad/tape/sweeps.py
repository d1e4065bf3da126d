"""Sweeps over a linearized program, vectorized with numpy over a batch.

Shapes inside: register values are ``(batch,)``; tangents and adjoints are
``(k, batch)`` for k directions, so ``partial * tangent`` broadcasts with no reshaping.
The forward sweep interleaves each chain-rule step with the instructions, so it needs no
more registers than evaluation; the reverse sweep stores each edge's partial while
evaluating (the tape) and then accumulates adjoints from the outputs back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .linearize import Program


def _registers(program: Program, x: np.ndarray) -> list[Any]:
    """Register file: inputs as rows of x.T (contiguous), constants, empty work slots."""
    regs: list[Any] = list(np.ascontiguousarray(x.T))
    regs.extend(np.float64(c) for c in program.constants)
    regs.extend([None] * program.peak_slots)
    return regs


def _outputs(program: Program, regs: list[Any], batch: int) -> np.ndarray:
    out = np.empty((batch, len(program.outputs)))
    for j, r in enumerate(program.output_registers):
        out[:, j] = regs[r]
    return out


def evaluate(program: Program, x: np.ndarray) -> np.ndarray:
    """Outputs for x of shape (batch, n): (batch, m)."""
    regs = _registers(program, x)
    with np.errstate(all="ignore"):
        for ins in program.instructions:
            regs[ins.out] = ins.function(*[regs[a] for a in ins.args])
    return _outputs(program, regs, x.shape[0])


def jvp(program: Program, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward sweep with k directions at once.

    x (batch, n), v (batch, n, k) -> values (batch, m), tangents (batch, m, k).
    """
    batch, k = x.shape[0], v.shape[2]
    regs = _registers(program, x)
    tangent: list[Any] = [None] * len(program.primal)
    tangent[:len(program.inputs)] = list(np.transpose(v, (1, 2, 0)))  # (n, k, batch)
    steps_after = program.steps_after()
    with np.errstate(all="ignore"):
        for step in steps_after[0]:
            tangent[step.key] = _combine(step.edges, regs, tangent, k, batch)
        for ins, steps in zip(program.instructions, steps_after[1:]):
            regs[ins.out] = ins.function(*[regs[a] for a in ins.args])
            for step in steps:
                tangent[step.key] = _combine(step.edges, regs, tangent, k, batch)
    values = _outputs(program, regs, batch)
    tangents = np.zeros((batch, len(program.outputs), k))
    for j, key in enumerate(program.output_keys):
        if key is not None:
            tangents[:, j, :] = np.asarray(tangent[key]).T
    return values, tangents


def _scaled(value: Any, scale: float) -> Any:
    """value * scale, skipping the multiplication for the common ±1 (add, sub).
    Sweeps never write into arrays in place, so sharing ``value`` is safe."""
    if scale == 1.0:
        return value
    if scale == -1.0:
        return -value
    return value * scale


def _combine(edges: list, regs: list[Any], tangent: list[Any], k: int, batch: int) -> Any:
    """Σ partial · tangent(argument) over a step's edges."""
    total = None
    for key, reg, scale in edges:
        dot = tangent[key]
        if dot is None:
            continue
        term = dot * regs[reg] if reg is not None else _scaled(dot, scale)
        total = term if total is None else total + term
    return np.zeros((k, batch)) if total is None else total


def vjp(program: Program, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reverse sweep with k cotangents at once.

    x (batch, n), w (batch, m, k) -> values (batch, m), adjoints (batch, n, k).
    """
    batch, k = x.shape[0], w.shape[2]
    regs = _registers(program, x)
    partials: list[list[Any]] = []
    steps_after = program.steps_after()
    with np.errstate(all="ignore"):
        for step in steps_after[0]:
            partials.append([regs[r] if r is not None else c for _, r, c in step.edges])
        for ins, steps in zip(program.instructions, steps_after[1:]):
            regs[ins.out] = ins.function(*[regs[a] for a in ins.args])
            for step in steps:
                partials.append([regs[r] if r is not None else c for _, r, c in step.edges])
        values = _outputs(program, regs, batch)
        bar = _seed_adjoints(program, w)
        _accumulate_backwards(program, partials, bar)
    adjoints = np.zeros((batch, len(program.inputs), k))
    for i in range(len(program.inputs)):
        if bar[i] is not None:
            adjoints[:, i, :] = np.asarray(bar[i]).T
    return values, adjoints


def _seed_adjoints(program: Program, w: np.ndarray) -> list[Any]:
    bar: list[Any] = [None] * len(program.primal)
    seeds = np.transpose(w, (1, 2, 0))  # (m, k, batch)
    for j, key in enumerate(program.output_keys):
        if key is not None:
            bar[key] = seeds[j] if bar[key] is None else bar[key] + seeds[j]
    return bar


def _accumulate_backwards(program: Program, partials: list[list[Any]], bar: list[Any]) -> None:
    # Steps were recorded in execution order; a node's adjoint is complete when the
    # reversed loop reaches it because all of its consumers come later in that order.
    for step, values in zip(reversed(program.steps), reversed(partials), strict=True):
        node_bar = bar[step.key]
        if node_bar is None:
            continue
        for (key, reg, _), p in zip(step.edges, values, strict=True):
            term = node_bar * p if reg is not None else _scaled(node_bar, p)
            bar[key] = term if bar[key] is None else bar[key] + term
