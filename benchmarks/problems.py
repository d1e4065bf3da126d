"""The benchmark problems, each written once.

A problem's ``function(x, xp, data)`` computes the output for ONE point with the array
namespace ``xp``: ``hybridad`` itself on a ``hd.symarray`` (which builds the expression
DAG every hybridad mode uses, and which SymPy, SymEngine and CasADi receive converted),
``jax.numpy`` or ``torch``. ``data`` holds the constant arrays (W, b, ...) converted to
that namespace's array type. Batches are the tools' business: the function never sees
the batch dimension.

Results have one canonical form per kind, tuples of float64 arrays:
    "gradient": (value, grad)  -> () and (n,), or (batch,) and (batch, n)
    "jacobian": (J,)           -> (m, n), or (batch, m, n)
    "hessian":  (H,)           -> (n, n)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

import hybridad as hd

KINDS = ("gradient", "jacobian", "hessian")
BATCH = 10_000                  # points of the Rosenbrock batch problems
QUICK_BATCH = 100


@dataclass
class Problem:
    """One benchmark: a function, the point(s) to differentiate it at, and what to compute."""

    name: str
    title: str
    kind: str                                   # one of KINDS
    function: Callable[[Any, Any, dict], Any]   # function(x, xp, data) for one point
    point: np.ndarray                           # (n,) or (batch, n), C-contiguous float64
    data: dict[str, np.ndarray] = field(default_factory=dict)
    c_reference: str | None = None              # C function in c_reference/, if any

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        self.point = np.ascontiguousarray(self.point, dtype=np.float64)

    @property
    def n_inputs(self) -> int:
        return self.point.shape[-1]

    @property
    def batch(self) -> int | None:
        """Number of points, or None for a single point."""
        return self.point.shape[0] if self.point.ndim == 2 else None

    @property
    def unit(self) -> str:
        return "µs per batch" if self.batch else "µs per call"

    def build(self) -> tuple[list[hd.Expr], list[hd.Expr]]:
        """(input Symbols, output expressions): ``function`` run on hybridad symbols."""
        x = hd.symarray("x", self.n_inputs)
        out = self.function(x, hd, self.data)
        return list(x), list(np.ravel(np.asarray(out, dtype=object)))

    @cached_property
    def expression(self) -> tuple[list[hd.Expr], list[hd.Expr]]:
        """:meth:`build`, once: what the symbolic peers convert (hybridad's own modes
        call ``build`` in their setup, so building the DAG counts as their setup)."""
        return self.build()

    @property
    def n_outputs(self) -> int:
        return len(self.expression[1])


# -- the functions, written once for every array namespace --------------------------------
def seeds_example(x: Any, xp: Any, data: dict) -> Any:
    """f(x1, x2) = ln(x1) + x1 x2 - sin(x2)."""
    return xp.log(x[0]) + x[0] * x[1] - xp.sin(x[1])


def rosenbrock(x: Any, xp: Any, data: dict) -> Any:
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2."""
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logistic_map(steps: int) -> Callable[[Any, Any, dict], Any]:
    """l_0 = x, l_{k+1} = 4 l_k (1 - l_k); returns l_steps."""
    def function(x: Any, xp: Any, data: dict) -> Any:
        level = x[0]
        for _ in range(steps):
            level = 4.0 * level * (1.0 - level)
        return level
    function.__doc__ = f"l_{steps} of the logistic map from l_0 = x"
    return function


def layer_of_inputs(x: Any, xp: Any, data: dict) -> Any:
    """tanh(W x + b) as a function of x."""
    return xp.tanh(data["W"] @ x + data["b"])


def layer_of_weights(w: Any, xp: Any, data: dict) -> Any:
    """tanh(W x + b) as a function of W (flattened row-major, shape (n_out, n_in))."""
    weights = w.reshape(data["b"].shape[0], data["x"].shape[0])
    return xp.tanh(weights @ data["x"] + data["b"])


# -- instances ----------------------------------------------------------------------------
def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _layer_data(n_in: int, n_out: int, seed: int) -> dict[str, np.ndarray]:
    rng = _rng(seed)
    return {"W": rng.standard_normal((n_out, n_in)) / np.sqrt(n_in),
            "b": rng.standard_normal(n_out), "x": rng.standard_normal(n_in)}


def rosenbrock_problems(n: int, batch: int) -> list[Problem]:
    """The gradient at one point and over ``batch`` points."""
    point = _rng(n).uniform(-1.5, 1.5, n)
    points = _rng(n + 1).uniform(-1.5, 1.5, (batch, n))
    return [
        Problem(f"rosenbrock-{n}", f"Rosenbrock n = {n}: value and gradient, one point",
                "gradient", rosenbrock, point, c_reference="rosenbrock"),
        Problem(f"rosenbrock-{n}-batch",
                f"Rosenbrock n = {n}: value and gradient, {batch:,} points", "gradient",
                rosenbrock, points, c_reference="rosenbrock"),
    ]


def jacobian_problems(inputs: Sequence[tuple[int, int]], weights: tuple[int, int],
                      batch: tuple[int, int, int]) -> list[Problem]:
    """The seeds' tanh(W x + b) cases: for the inputs, for the weights, over a batch."""
    problems = []
    for n_in, n_out in inputs:
        data = _layer_data(n_in, n_out, seed=n_in * n_out)
        problems.append(Problem(
            f"jacobian-inputs-{n_in}x{n_out}",
            f"Jacobian of tanh(W x + b) for x, (n_in, n_out) = ({n_in}, {n_out})",
            "jacobian", layer_of_inputs, data.pop("x"), data))
    n_in, n_out = weights
    data = _layer_data(n_in, n_out, seed=7)
    problems.append(Problem(
        f"jacobian-weights-{n_in}x{n_out}",
        f"Jacobian of tanh(W x + b) for W, (n_in, n_out) = ({n_in}, {n_out})",
        "jacobian", layer_of_weights, data.pop("W").ravel(), data))
    points, n_in, n_out = batch
    data = _layer_data(n_in, n_out, seed=8)
    data.pop("x")
    problems.append(Problem(
        f"jacobian-batch-{points}x{n_in}x{n_out}",
        f"Jacobian of tanh(W x + b) for x over {points} points (vmap of jacrev), "
        f"(n_in, n_out) = ({n_in}, {n_out})",
        "jacobian", layer_of_inputs, _rng(9).standard_normal((points, n_in)), data))
    return problems


def all_problems(quick: bool = False) -> list[Problem]:
    """Every problem, at full size or (``quick``) at tiny sizes for smoke tests."""
    sizes = (3, 10) if quick else (10, 100, 1000)
    batch = QUICK_BATCH if quick else BATCH
    problems = [Problem("seeds", "Seeds' example ln(x1) + x1 x2 - sin(x2) at (2, 5): value "
                        "and gradient", "gradient", seeds_example, np.array([2.0, 5.0]))]
    for n in sizes:
        problems += rosenbrock_problems(n, batch)
    problems.append(Problem("logistic-20", "Logistic map: l_20 and d l_20/dx at x = 0.3",
                            "gradient", logistic_map(20), np.array([0.3])))
    if quick:
        problems += jacobian_problems([(16, 4), (4, 16)], (8, 4), (4, 8, 4))
    else:
        problems += jacobian_problems([(1024, 16), (16, 1024)], (64, 16), (8, 64, 16))
    n = 5 if quick else 100
    problems.append(Problem(f"hessian-rosenbrock-{n}", f"Hessian of Rosenbrock n = {n}",
                            "hessian", rosenbrock, _rng(n + 2).uniform(-1.5, 1.5, n)))
    return problems


def select(problems: list[Problem], only: Sequence[str] | None) -> list[Problem]:
    """Problems named by ``only`` (all when empty): a name, or a prefix ending at a dash,
    so that "rosenbrock" picks every Rosenbrock problem and "rosenbrock-10" picks
    rosenbrock-10 and rosenbrock-10-batch but not rosenbrock-100."""
    if not only:
        return problems

    def named(problem: Problem, item: str) -> bool:
        return problem.name == item or problem.name.startswith(item.rstrip("-") + "-")

    unknown = [o for o in only if not any(named(p, o) for p in problems)]
    if unknown:
        names = ", ".join(p.name for p in problems)
        raise ValueError(f"unknown problem(s) {', '.join(unknown)}; the problems are {names}")
    return [p for p in problems if any(named(p, o) for o in only)]


def split_flat(problem: Problem, flat: np.ndarray) -> tuple[np.ndarray, ...]:
    """Canonical result from flat outputs (..., K): [value, grad...] for a gradient, the
    Jacobian or Hessian row-major otherwise."""
    flat = np.asarray(flat, dtype=np.float64)
    lead = flat.shape[:-1]
    n, m = problem.n_inputs, problem.n_outputs
    if problem.kind == "gradient":
        return flat[..., 0], flat[..., 1:]
    if problem.kind == "jacobian":
        return (flat.reshape(lead + (m, n)),)
    return (flat.reshape(lead + (n, n)),)
