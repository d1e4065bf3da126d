"""The text ``python -m hybridad`` prints: the modes side by side, their agreement,
their cost, the DAG sizes and, when asked, the Hessian, the batch timings and the
textbook traces."""

from __future__ import annotations

from typing import Sequence

import numpy as np

import hybridad as hd

from .modes import EXACT_MODES, ModeResult, Problem, largest_disagreement

NAME_WIDTH = 14
COLUMN = 19


def header(p: Problem, point: dict[str, float]) -> list[str]:
    text = str(p.f)
    shown = text if len(text) <= 200 and "\n" not in text else \
        f"(an expression of {hd.count_ops(p.f)} operations)"
    at = ", ".join(f"{k} = {v:g}" for k, v in point.items())
    lines = [f"f = {shown}", f"at {at}"]
    if p.fixed:
        lines.append(f"differentiating with respect to {', '.join(v.name for v in p.variables)}"
                     f"; {', '.join(s.name for s in p.fixed)} held fixed")
    return lines


def sizes(p: Problem) -> list[str]:
    """DAG sizes of f and of its derivative, against the same expressions as trees."""
    both = [p.f, *p.gradient]
    return [f"DAG size: f {hd.count_ops(p.f)} ops; f with its gradient "
            f"{hd.count_ops(both)} ops (shared nodes counted once); as trees "
            f"{hd.count_ops(p.f, tree=True)} and {hd.count_ops(both, tree=True)}"]


def _cell(value: float) -> str:
    return f"{value:>{COLUMN}.15g}"


def point_table(p: Problem, results: Sequence[ModeResult]) -> list[str]:
    """Rows f, df/dx..., µs per call; one column per mode."""
    names = [v.name for v in p.variables]
    titles = [_title(r.name) for r in results]
    lines = [" " * NAME_WIDTH + "".join(f"{t[0]:>{COLUMN}}" for t in titles),
             " " * NAME_WIDTH + "".join(f"{t[1]:>{COLUMN}}" for t in titles)]
    lines.append(f"{'f':<{NAME_WIDTH}}" + "".join(_cell(float(r.value)) for r in results))
    for j, name in enumerate(names):
        lines.append(f"{'df/d' + name:<{NAME_WIDTH}}"
                     + "".join(_cell(float(r.gradient[j])) for r in results))
    lines.append(f"{'µs per call':<{NAME_WIDTH}}"
                 + "".join(f"{1e6 * r.seconds:>{COLUMN}.3g}" for r in results))
    return lines


def _title(name: str) -> tuple[str, str]:
    """Two header lines for a column (``finite diff (central)`` is long)."""
    if " (" in name:
        first, second = name.split(" (", 1)
        return first, "(" + second
    if " " in name:
        first, second = name.split(" ", 1)
        return first, second
    return name, ""


def agreement(p: Problem, results: Sequence[ModeResult], part: str = "gradient"
              ) -> list[str]:
    """The largest disagreement among the exact modes, and of finite differences."""
    names = [v.name for v in p.variables]
    exact = [r for r in results if r.name in EXACT_MODES]
    numeric = [results[0]] + [r for r in results if r.name not in EXACT_MODES]
    worst_exact = largest_disagreement(exact, names, part)
    worst_numeric = largest_disagreement(numeric, names, part)
    what = "Hessian" if part == "hessian" else "value and derivatives"
    lines = [f"largest disagreement ({what}, |a - b| / max(1, |b|) against symbolic):"]
    lines.append(f"  exact modes:        {worst_exact.size:.1e}"
                 + (f"  ({worst_exact.mode}, {worst_exact.what})" if worst_exact.size else
                    "  (identical)"))
    lines.append(f"  finite differences: {worst_numeric.size:.1e}"
                 + (f"  ({worst_numeric.what})" if worst_numeric.what else ""))
    return lines


def notes(results: Sequence[ModeResult]) -> list[str]:
    return [f"{r.name}: {r.note}" for r in results if r.note]


def hessian_section(p: Problem, results: Sequence[ModeResult]) -> list[str]:
    """The symbolic Hessian, then each mode's agreement with it."""
    names = [v.name for v in p.variables]
    H = results[0].hessian
    assert H is not None
    lines = ["Hessian d2f / dxi dxj (symbolic):",
             " " * NAME_WIDTH + "".join(f"{n:>{COLUMN}}" for n in names)]
    for i, name in enumerate(names):
        lines.append(f"{name:<{NAME_WIDTH}}"
                     + "".join(_cell(float(H[i, j])) for j in range(len(names))))
    return lines + agreement(p, results, "hessian")


def batch_table(p: Problem, results: Sequence[ModeResult]) -> list[str]:
    """Time per batch and per point of each mode, and the agreement over the batch."""
    batch = p.x.shape[0]
    lines = [f"batch of {batch} points (the given point perturbed by ~10%):",
             f"  {'mode':<24}{'ms per batch':>14}{'ns per point':>16}"]
    for r in results:
        lines.append(f"  {r.name:<24}{1e3 * r.seconds:>14.4g}"
                     f"{1e9 * r.seconds / batch:>16.4g}")
    lines += [f"  {r.name}: {r.note}" for r in results if r.note and r.name not in EXACT_MODES]
    return lines


def traces(p: Problem, modes: Sequence[str]) -> list[str]:
    """The textbook evaluation traces of the tape at the point."""
    tape = hd.Tape(p.f, [*p.variables, *p.fixed])
    x = np.concatenate([p.x, np.array(list(p.fixed.values()), dtype=np.float64)])
    out: list[str] = []
    for k, mode in enumerate(modes):
        text = tape.trace(x, mode=mode)
        if k > 0:                        # the primal trace is shown once
            text = text.split("\n\n", 1)[-1]
        out += ["", text]
    return out
