"""What ``python -m hybridad`` computes: one expression's value and derivatives by every
mode (symbolic, forward tape, reverse tape, LLVM kernel, finite differences), their
agreement and their cost, as text. Built only on the public API; ``__main__`` parses
the command line and prints what this module returns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

import hybridad as hd
from hybridad.core.traverse import free_symbols

EXACT_MODES = ("symbolic", "forward tape", "reverse tape", "LLVM kernel")


class UsageError(Exception):
    """Bad command-line input: reported in one paragraph with exit status 2."""


@dataclass
class ModeResult:
    """One mode's numbers at the point (or batch) and its time per call."""

    name: str
    value: np.ndarray            # () or (batch,)
    gradient: np.ndarray         # (n,) or (batch, n)
    seconds: float               # per call (one point, or the whole batch)
    hessian: np.ndarray | None = None
    note: str = ""


@dataclass
class Problem:
    """The parsed expression, its variables, the point(s) and the symbolic derivatives."""

    f: hd.Expr
    variables: list[hd.Symbol]
    fixed: dict[hd.Symbol, float]        # symbols with a value but not differentiated
    x: np.ndarray                        # (n,) or (batch, n)
    gradient: list[hd.Expr] = field(default_factory=list)

    @property
    def env(self) -> dict[hd.Symbol, Any]:
        columns = self.x.T if self.x.ndim == 2 else self.x
        return {**self.fixed, **dict(zip(self.variables, columns, strict=True))}


# -- setting up ----------------------------------------------------------------------------
def parse_point(items: Sequence[str]) -> dict[str, float]:
    """``["x1=2", "x2=5"]`` -> ``{"x1": 2.0, "x2": 5.0}``."""
    point: dict[str, float] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--at expects NAME=VALUE items, got {item!r}.")
        try:
            point[name.strip()] = float(text)
        except ValueError:
            raise UsageError(f"the value of {name.strip()} must be a number, got "
                             f"{text!r}.") from None
    return point


def make_problem(expression: str, point: dict[str, float], wrt: Sequence[str] | None,
                 batch: int | None = None, seed: int = 0) -> Problem:
    """Parse, check every symbol has a value, pick the variables, build the gradient.
    With ``batch``, the points are the given one perturbed by 10% (reproducibly)."""
    f = hd.parse(expression)
    names = sorted(s.name for s in free_symbols([f]))
    missing = [n for n in names if n not in point]
    if missing:
        raise UsageError(f"no value for {', '.join(missing)}: give it with --at, as in "
                         f"--at {missing[0]}=1.")
    chosen = names if wrt is None else list(wrt)
    unknown = [n for n in chosen if n not in point]
    if unknown:
        raise UsageError(f"--wrt names {', '.join(unknown)}, which has no value; give it "
                         f"with --at.")
    variables = [hd.symbols(n) for n in chosen]
    fixed = {hd.symbols(n): v for n, v in point.items() if n not in chosen}
    x = np.array([point[n] for n in chosen], dtype=np.float64)
    if batch is not None:
        if batch < 1:
            raise UsageError(f"--batch must be a positive number of points, got {batch}.")
        noise = np.random.default_rng(seed).normal(size=(batch, len(chosen)))
        x = x * (1 + 0.1 * noise) + 0.01 * noise
    return Problem(f, variables, fixed, x, list(hd.gradient(f, variables)))


# -- the modes ----------------------------------------------------------------------------
def seconds_per_call(call: Callable[[], Any], budget: float = 0.05) -> float:
    """Best of three timings, each repeating ``call`` for about ``budget / 3`` seconds."""
    start = time.perf_counter()
    call()
    once = max(time.perf_counter() - start, 1e-7)
    number = max(1, int(budget / 3 / once))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(number):
            call()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def symbolic_mode(p: Problem, hessian: bool) -> ModeResult:
    """Evaluate f and its symbolic gradient (one shared evaluation of the DAG)."""
    exprs = [p.f, *p.gradient]
    env = p.env

    def call() -> list[Any]:
        return hd.evaluate(exprs, env)

    values = [np.broadcast_to(np.asarray(v, dtype=float), p.x.shape[:-1]) for v in call()]
    h = None
    if hessian:
        H = hd.hessian(p.f, p.variables)
        h = _stack(hd.evaluate(list(H.ravel()), env), p.x, H.shape)
    return ModeResult("symbolic", values[0], _columns(values[1:], p.x), seconds_per_call(call),
                      h)


def tape_mode(p: Problem, mode: str, hessian: bool) -> ModeResult:
    """A tape of f over the variables and the fixed symbols (their columns dropped);
    the Jacobian by ``mode`` sweeps."""
    n = len(p.variables)
    tape = hd.Tape(p.f, [*p.variables, *p.fixed])
    fixed = np.array(list(p.fixed.values()), dtype=np.float64)
    x = np.concatenate([p.x, np.broadcast_to(fixed, p.x.shape[:-1] + fixed.shape)], axis=-1)

    def call() -> Any:
        return tape.jacobian(x, mode=mode)

    gradient = np.asarray(call())[..., 0, :n]
    value = np.asarray(tape.evaluate(x))[..., 0]
    h = np.asarray(tape.hessian(x))[..., :n, :n] if hessian else None
    return ModeResult(f"{mode} tape", value, gradient, seconds_per_call(call), h)


def kernel_mode(p: Problem, hessian: bool) -> ModeResult:
    """The compiled value+gradient kernel (value+gradient+Hessian with ``hessian``)."""
    args = [p.variables, list(p.fixed)] if p.fixed else [p.variables]
    start = time.perf_counter()
    kernel = hd.lambdify(args, p.f, derivatives="hessian" if hessian else "gradient",
                         wrt=p.variables if p.fixed else None)
    compile_ms = 1e3 * (time.perf_counter() - start)
    inputs = (p.x, np.array(list(p.fixed.values()))) if p.fixed else (p.x,)
    out = kernel(*inputs)
    seconds = seconds_per_call(lambda: kernel(*inputs))
    return ModeResult("LLVM kernel", np.asarray(out[0]), np.asarray(out[1]), seconds,
                      np.asarray(out[2]) if hessian else None,
                      note=f"compiled in {compile_ms:.0f} ms")


FD_BATCH_POINTS = 100   # finite differences on a batch: timed on this many points, scaled


def finite_difference_mode(p: Problem, method: str, hessian: bool) -> ModeResult:
    """hd.numeric on the expression's numeric evaluation, point by point (on a batch,
    the first FD_BATCH_POINTS points, its time scaled to the whole batch)."""
    points = p.x if p.x.ndim == 2 else p.x[None, :]
    scale = 1.0
    note = ""
    if len(points) > FD_BATCH_POINTS:
        scale, points = len(points) / FD_BATCH_POINTS, points[:FD_BATCH_POINTS]
        note = f"timed and compared on the first {FD_BATCH_POINTS} points, time scaled"

    def f_at(x: np.ndarray) -> Any:
        return p.f.evaluate({**p.fixed, **dict(zip(p.variables, x, strict=True))})

    def grad_at(x: np.ndarray) -> np.ndarray:
        return hd.numeric.gradient(f_at, x, method=method) if p.variables else np.zeros(0)

    def call() -> np.ndarray:
        return np.array([grad_at(x) for x in points])

    gradient = call()
    values = np.array([float(f_at(x)) for x in points])
    h = None
    if hessian:
        exact = [_expr_function(g, p) for g in p.gradient]
        h = np.array([hd.numeric.jacobian(lambda x: np.array([g(x) for g in exact]), x,
                                          method=method) for x in points])
        note = "Hessian: differences of the exact gradient"
    squeeze = p.x.ndim == 1
    return ModeResult(f"finite diff ({method})", values[0] if squeeze else values,
                      gradient[0] if squeeze else gradient, scale * seconds_per_call(call),
                      None if h is None else (h[0] if squeeze else h), note=note)


def run_modes(p: Problem, method: str, hessian: bool) -> list[ModeResult]:
    return [symbolic_mode(p, hessian), tape_mode(p, "forward", hessian),
            tape_mode(p, "reverse", hessian), kernel_mode(p, hessian),
            finite_difference_mode(p, method, hessian)]


def _expr_function(g: hd.Expr, p: Problem) -> Callable[[np.ndarray], Any]:
    return lambda x: g.evaluate({**p.fixed, **dict(zip(p.variables, x, strict=True))})


def _columns(values: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Per-variable values -> (n,) or (batch, n)."""
    if not values:
        return np.zeros(x.shape[:-1] + (0,))
    return np.stack([np.broadcast_to(v, x.shape[:-1]) for v in values], axis=-1)


def _stack(values: list[Any], x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    flat = np.stack([np.broadcast_to(np.asarray(v, dtype=float), x.shape[:-1])
                     for v in values], axis=-1) if values else np.zeros(x.shape[:-1] + (0,))
    return flat.reshape(x.shape[:-1] + shape)


# -- agreement ----------------------------------------------------------------------------
@dataclass
class Disagreement:
    size: float
    mode: str
    other: str
    what: str


def largest_disagreement(results: Sequence[ModeResult], names: Sequence[str],
                         part: str = "gradient") -> Disagreement:
    """Largest relative difference |a - b| / max(1, |b|) between any mode and the
    symbolic one, over the value and every derivative (or the Hessian)."""
    reference = results[0]
    worst = Disagreement(0.0, reference.name, reference.name, "")
    for r in results[1:]:
        for label, a, b in _parts(r, reference, names, part):
            diff = relative_difference(a, b)
            if diff > worst.size:
                worst = Disagreement(diff, r.name, reference.name, label)
    return worst


def relative_difference(a: Any, b: Any) -> float:
    """max |a - b| / max(1, |b|) over the entries (over a's points when a covers fewer
    points of a batch); equal entries (inf == inf, nan and nan) count 0, a nan against a
    number counts inf."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim and b.ndim and a.shape[0] < b.shape[0]:
        b = b[:a.shape[0]]
    if a.size == 0:
        return 0.0
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if (np.isnan(a) ^ np.isnan(b)).any():
        return float("inf")
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b) / np.maximum(1.0, np.abs(b)))
    return float(np.max(diff))


def _parts(r: ModeResult, ref: ModeResult, names: Sequence[str], part: str
           ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if part == "hessian":
        return [("Hessian", r.hessian, ref.hessian)] if r.hessian is not None else []
    parts = [("f", np.asarray(r.value), np.asarray(ref.value))]
    for j, name in enumerate(names):
        parts.append((f"df/d{name}", r.gradient[..., j], ref.gradient[..., j]))
    return parts
