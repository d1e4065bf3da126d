"""Robertson's stiff chemical kinetics with ``solve_ivp``, the Jacobian from hybridad.

    y1' = -k1 y1 + k3 y2 y3
    y2' =  k1 y1 - k2 y2^2 - k3 y2 y3        k1 = 0.04, k2 = 3e7, k3 = 1e4
    y3' =  k2 y2^2                           y(0) = (1, 0, 0)

The rate constants span eleven orders of magnitude, so explicit methods crawl; implicit
ones ("BDF", "Radau") need the Jacobian of the right-hand side for their Newton
iterations. The example compiles that Jacobian as one kernel with two argument groups
[y, k] (``derivatives="jacobian", wrt=y``: the rates k are an argument, not baked-in
constants), checks it against the hand-derived Jacobian at a point (rtol 1e-14), and
solves the system twice to ``--t-end`` (default 1e5):

* with ``jac=`` the hybridad kernel;
* without ``jac`` (SciPy approximates it by finite differences of the right-hand side).

It reports SciPy's counters (nfev, njev, nlu), the right-hand-side calls actually made
(finite-difference columns included), the wall time, how far the two solutions are
apart and how well each conserves y1 + y2 + y3 = 1. The columns of the exact Jacobian
sum to zero, so the Newton updates keep the sum to rounding.

    python examples/stiff_ode.py
    python examples/stiff_ode.py --method Radau --t-end 4e10
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

import hybridad as hd

RATES = np.array([0.04, 3e7, 1e4])          # k1, k2, k3
Y0 = np.array([1.0, 0.0, 0.0])
RTOL, ATOL = 1e-8, np.array([1e-10, 1e-14, 1e-10])   # y2 stays below ~4e-5


@dataclass
class Solve:
    """One ``solve_ivp`` run and its costs."""

    name: str
    nfev: int
    njev: int
    nlu: int
    rhs_calls: int              # right-hand-side calls, finite-difference ones included
    seconds: float              # best of the repeats
    success: bool
    t: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)   # (3, len(t))

    @property
    def conservation_error(self) -> float:
        """max over the output times of |y1 + y2 + y3 - 1|."""
        return float(np.max(np.abs(self.y.sum(axis=0) - 1.0)))


def rhs_expressions(y: np.ndarray, k: np.ndarray) -> list[Any]:
    """Robertson's right-hand side; works on symbols and on numbers alike."""
    return [-k[0] * y[0] + k[2] * y[1] * y[2],
            k[0] * y[0] - k[1] * y[1] ** 2 - k[2] * y[1] * y[2],
            k[1] * y[1] ** 2]


def analytic_jacobian(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """d rhs / d y by hand."""
    return np.array([[-k[0], k[2] * y[2], k[2] * y[1]],
                     [k[0], -2 * k[1] * y[1] - k[2] * y[2], -k[2] * y[1]],
                     [0.0, 2 * k[1] * y[1], 0.0]])


def jacobian_kernel() -> hd.Kernel:
    """Right-hand side and its Jacobian for y in one kernel; groups [y (3,), k (3,)]."""
    y, k = hd.symarray("y", 3), hd.symarray("k", 3)
    return hd.lambdify([y, k], rhs_expressions(y, k), derivatives="jacobian", wrt=y)


def check_jacobian(kernel: hd.Kernel, y: np.ndarray) -> float:
    """Largest relative difference between the kernel's and the hand-derived Jacobian."""
    values, jac = kernel(y, RATES)
    exact = analytic_jacobian(y, RATES)
    assert np.allclose(values, rhs_expressions(y, RATES), rtol=1e-14, atol=0)
    nonzero = exact != 0
    assert np.all(jac[~nonzero] == 0), "the kernel's structural zeros differ"
    return float(np.max(np.abs(jac[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])))


class CountedRhs:
    """f(t, y) for solve_ivp, counting its calls (SciPy's nfev leaves out the calls of
    its finite-difference Jacobian)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        self.calls += 1
        return np.array(rhs_expressions(y, RATES))


def solve(name: str, method: str, t_end: float, t_eval: np.ndarray,
          jac: Callable[[float, np.ndarray], np.ndarray] | None, repeat: int) -> Solve:
    """Solve from Y0 to t_end ``repeat`` times (the runs are deterministic); the time is
    the best one, the counters those of one run."""
    seconds = []
    for _ in range(repeat):
        rhs = CountedRhs()
        start = time.perf_counter()
        sol = solve_ivp(rhs, (0.0, t_end), Y0, method=method, t_eval=t_eval, rtol=RTOL,
                        atol=ATOL, jac=jac)
        seconds.append(time.perf_counter() - start)
    return Solve(name, sol.nfev, sol.njev, sol.nlu, rhs.calls, min(seconds),
                 bool(sol.success), sol.t, sol.y)


def disagreement(a: Solve, b: Solve) -> float:
    """Largest difference of the two solutions, each component relative to its own
    peak size (y2 is ~1e4 times smaller than y1 and y3)."""
    scale = np.maximum(np.abs(a.y).max(axis=1, keepdims=True), 1e-300)
    return float(np.max(np.abs(a.y - b.y) / scale))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=("Radau", "BDF", "LSODA"), default="Radau")
    parser.add_argument("--t-end", type=float, default=1e5, help="final time (1e5)")
    parser.add_argument("--outputs", type=int, default=11,
                        help="output times, log-spaced from 1e-5 to t-end (11)")
    parser.add_argument("--repeat", type=int, default=3, help="time the best of N (3)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Check the Jacobian, solve with and without it, print and return the comparison."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.t_end <= 1e-5 or args.outputs < 2 or args.repeat < 1:
        parser.error("need --t-end > 1e-5, --outputs >= 2 and --repeat >= 1")
    kernel = jacobian_kernel()
    point = np.array([0.7, 2.5e-5, 0.3])
    jac_error = check_jacobian(kernel, point)
    print("Robertson kinetics, k = (0.04, 3e7, 1e4), y0 = (1, 0, 0), "
          f"t in [0, {args.t_end:g}], {args.method}, rtol {RTOL:g}")
    print(f"Jacobian kernel ({kernel.info()['nodes']} DAG nodes) against the hand-derived "
          f"Jacobian at y = {tuple(point.tolist())}: max relative difference {jac_error:.1e}")

    t_eval = np.concatenate([[0.0], np.geomspace(1e-5, args.t_end, args.outputs)])
    runs = [solve("jac = hybridad kernel", args.method, args.t_end, t_eval,
                  lambda t, y: kernel(y, RATES)[1], args.repeat),
            solve("jac = finite differences", args.method, args.t_end, t_eval, None,
                  args.repeat)]
    print(f"\n  {'':<26}{'nfev':>6}{'njev':>6}{'nlu':>6}{'rhs calls':>11}"
          f"{'ms':>8}{'|sum(y) - 1|':>14}")
    for r in runs:
        print(f"  {r.name:<26}{r.nfev:>6}{r.njev:>6}{r.nlu:>6}{r.rhs_calls:>11}"
              f"{r.seconds * 1e3:>8.1f}{r.conservation_error:>14.2e}")
    print(f"  nfev is SciPy's count; rhs calls counts every call, finite-difference "
          f"columns included;\n  ms is the best of {args.repeat} runs")
    apart = disagreement(*runs)
    exact = runs[0]
    print(f"\n  the two solutions differ by at most {apart:.1e} (relative to each "
          f"component's peak)")
    print(f"  {'t':>10}{'y1':>14}{'y2':>14}{'y3':>14}")
    for j in range(1, len(exact.t), max(1, (len(exact.t) - 1) // 5)):
        y1, y2, y3 = exact.y[:, j]
        print(f"  {exact.t[j]:>10.3g}{y1:>14.6e}{y2:>14.6e}{y3:>14.6e}")
    return {"jacobian_error": jac_error, "runs": runs, "disagreement": apart}


if __name__ == "__main__":
    main()
