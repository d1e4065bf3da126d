"""SciPy optimisers fed by hybridad kernels: exact derivatives, fewer evaluations.

Part 1 minimises the Rosenbrock function of n variables (default 10),
f(x) = sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2, minimum 0 at x = (1, ..., 1),
from x0 = (0, ..., 0) with ``scipy.optimize.minimize``:

* "trust-exact" and "Newton-CG" with ``jac`` and ``hess`` from ONE kernel
  (``hd.lambdify(x, f, derivatives="hessian")`` returns value, gradient and Hessian in
  one native call). SciPy asks for fun, jac and hess separately at the same point, so
  the kernel's last point is cached and those calls share one kernel call;
* "BFGS" with the same kernel's gradient (its Hessian unused), and "BFGS" with SciPy's
  finite differences (no jac).

The kernel is first checked against ``scipy.optimize.rosen_der`` / ``rosen_hess``.

Part 2 fits y = a exp(-b t) + c to synthetic noisy data with
``scipy.optimize.least_squares``, the Jacobian of the residuals from a kernel with
argument groups [t, y, p]: t and y carry the data rows (a batch dimension), the
parameters p are passed once and shared by every row, and ``derivatives="jacobian",
wrt=p`` gives the residuals (N,) and their Jacobian (N, 3) in one call. Compared with
``jac="2-point"`` (finite differences).

For every run the table counts the calls of the user's Python function (for hybridad,
kernel calls; for finite differences, every evaluation SciPy made, gradient ones
included), SciPy's iterations and evaluation counters, the final error and wall time.

    python examples/scipy_optimisation.py
    python examples/scipy_optimisation.py --n 50 --points 200 --noise 0

For large n, BFGS's wall time can be dominated by its dense n x n updates running on
threaded BLAS on a busy machine; ``OPENBLAS_NUM_THREADS=1`` (or ``OMP_NUM_THREADS=1``)
keeps such timings steady.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares, minimize, rosen, rosen_der, rosen_hess

import hybridad as hd

TRUE_PARAMS = np.array([2.5, 1.3, 0.5])          # a, b, c of y = a exp(-b t) + c
START_PARAMS = np.array([1.0, 0.5, 0.0])


@dataclass
class Run:
    """One optimiser run: what it cost and how close it got."""

    name: str
    calls: int                   # calls of the Python objective or of the kernel
    nit: int | None
    nfev: int
    njev: int | None
    nhev: int | None
    error: float                 # max |x - x*| (Rosenbrock) or max |p - p_truth| (fit)
    seconds: float
    success: bool
    x: np.ndarray = field(repr=False)


# -- evaluation counting and sharing -------------------------------------------------------
class SharedPoint:
    """Calls ``kernel(x)`` once per distinct point and returns its cached result, so the
    fun / jac / hess callbacks of one iterate share one kernel call."""

    def __init__(self, kernel: Callable[..., Any], *fixed: np.ndarray):
        self.kernel, self.fixed = kernel, fixed
        self.calls = 0
        self._x: np.ndarray | None = None
        self._result: Any = None

    def __call__(self, x: np.ndarray) -> Any:
        if self._x is None or not np.array_equal(x, self._x):
            self._x = np.array(x, dtype=np.float64)
            self._result = self.kernel(*self.fixed, self._x)
            self.calls += 1
        return self._result

    def part(self, k: int) -> Callable[[np.ndarray], Any]:
        """The callback returning element k of the kernel's result."""
        return lambda x: self(x)[k]


class Counted:
    """A plain function that counts its calls (finite differences call it a lot)."""

    def __init__(self, fun: Callable[[np.ndarray], Any]):
        self.fun, self.calls = fun, 0

    def __call__(self, x: np.ndarray) -> Any:
        self.calls += 1
        return self.fun(x)


# -- part 1: Rosenbrock ----------------------------------------------------------------------
def rosenbrock_kernel(n: int) -> hd.Kernel:
    """Value, gradient and Hessian of the n-variable Rosenbrock function in one kernel."""
    x = hd.symarray("x", n)
    f = hd.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    return hd.lambdify(x, f, derivatives="hessian")


def check_rosenbrock_kernel(kernel: hd.Kernel, x: np.ndarray) -> float:
    """Largest relative difference from SciPy's hand-written rosen / der / hess."""
    value, grad, hess = kernel(x)
    pairs = ((value, rosen(x)), (grad, rosen_der(x)), (hess, rosen_hess(x)))
    return max(float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))) for a, b in pairs)


def minimize_run(name: str, counter: Any, x0: np.ndarray, **options: Any) -> Run:
    """``scipy.optimize.minimize`` timed, its counters and error against all ones."""
    start = time.perf_counter()
    result = minimize(x0=x0, **options)
    seconds = time.perf_counter() - start
    return Run(name, counter.calls, result.nit, result.nfev, result.get("njev"),
               result.get("nhev"), float(np.max(np.abs(result.x - 1.0))), seconds,
               bool(result.success), result.x)


def rosenbrock_runs(kernel: hd.Kernel, x0: np.ndarray) -> list[Run]:
    """trust-exact, Newton-CG and BFGS on the kernel; BFGS on finite differences."""
    runs = []
    tolerances = {"trust-exact": {"gtol": 1e-10}, "Newton-CG": {"xtol": 1e-12}}
    for method, options in tolerances.items():
        shared = SharedPoint(kernel)
        runs.append(minimize_run(f"{method} (hybridad H)", shared, x0, method=method,
                                 fun=shared.part(0), jac=shared.part(1),
                                 hess=shared.part(2), options=options))
    shared = SharedPoint(kernel)
    runs.append(minimize_run("BFGS (hybridad grad)", shared, x0, method="BFGS",
                             fun=shared.part(0), jac=shared.part(1),
                             options={"gtol": 1e-10}))
    plain = Counted(rosen)
    runs.append(minimize_run("BFGS (finite diff)", plain, x0, method="BFGS", fun=plain,
                             options={"gtol": 1e-10}))
    return runs


# -- part 2: curve fitting ---------------------------------------------------------------------
def decay_kernel() -> hd.Kernel:
    """Residual a exp(-b t) + c - y of one data row and its Jacobian for p = (a, b, c)."""
    t, y = hd.symbols("t y")
    p = hd.symarray("p", 3)
    residual = p[0] * hd.exp(-p[1] * t) + p[2] - y
    return hd.lambdify([t, y, p], residual, derivatives="jacobian", wrt=p)


def synthetic_data(points: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """t in [0, 4] and y = a exp(-b t) + c (true parameters) plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 4.0, points)
    a, b, c = TRUE_PARAMS
    return t, a * np.exp(-b * t) + c + noise * rng.standard_normal(points)


def fit_run(name: str, counter: Any, **options: Any) -> Run:
    """``scipy.optimize.least_squares`` from START_PARAMS, timed, error against truth."""
    start = time.perf_counter()
    result = least_squares(x0=START_PARAMS, xtol=1e-12, ftol=1e-12, gtol=1e-12, **options)
    seconds = time.perf_counter() - start
    return Run(name, counter.calls, None, result.nfev, result.njev, None,
               float(np.max(np.abs(result.x - TRUE_PARAMS))), seconds,
               bool(result.success), result.x)


def fitting_runs(kernel: hd.Kernel, t: np.ndarray, y: np.ndarray) -> list[Run]:
    """least_squares with the kernel's Jacobian, and with 2-point finite differences."""
    shared = SharedPoint(kernel, t, y)
    plain = Counted(lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y)
    return [fit_run("least_squares (hybridad J)", shared, fun=shared.part(0),
                    jac=shared.part(1)),
            fit_run("least_squares (2-point)", plain, fun=plain, jac="2-point")]


# -- report --------------------------------------------------------------------------------------
def _show(count: int | None) -> str:
    return "-" if count is None else str(count)


def table(runs: list[Run], error_label: str) -> str:
    """The runs as aligned rows."""
    header = (f"   {'method':<28}{'calls':>6}{'nit':>6}{'nfev':>6}{'njev':>6}{'nhev':>6}"
              f"{error_label:>13}{'ms':>9}")
    lines = [header]
    for r in runs:
        lines.append(f"   {r.name:<28}{r.calls:>6}{_show(r.nit):>6}{r.nfev:>6}"
                     f"{_show(r.njev):>6}{_show(r.nhev):>6}{r.error:>13.2e}"
                     f"{r.seconds * 1e3:>9.1f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10, help="Rosenbrock variables (10)")
    parser.add_argument("--points", type=int, default=50, help="data points to fit (50)")
    parser.add_argument("--noise", type=float, default=0.01,
                        help="standard deviation of the data's noise (0.01)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run both parts, print their tables, return the runs and checks."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.n < 2 or args.points < 3:
        parser.error("need --n >= 2 and --points >= 3")

    kernel = rosenbrock_kernel(args.n)
    x0 = np.zeros(args.n)
    kernel_error = check_rosenbrock_kernel(kernel, np.linspace(-1.5, 1.5, args.n))
    print(f"1. Rosenbrock, n = {args.n}, from x0 = 0 (minimum at x = 1)")
    print(f"   kernel: value + gradient + Hessian, {kernel.info()['nodes']} DAG nodes, "
          f"compiled in {kernel.compile_seconds:.3f} s;\n   max relative difference from "
          f"scipy.optimize.rosen / rosen_der / rosen_hess: {kernel_error:.1e}")
    rosen_runs = rosenbrock_runs(kernel, x0)
    print(table(rosen_runs, "max|x - 1|"))

    t, y = synthetic_data(args.points, args.noise, args.seed)
    fit_kernel = decay_kernel()
    print(f"\n2. least_squares: y = a exp(-b t) + c, {args.points} points, noise "
          f"{args.noise:g}, truth (a, b, c) = {tuple(TRUE_PARAMS.tolist())}, start "
          f"{tuple(START_PARAMS.tolist())}")
    fit_runs = fitting_runs(fit_kernel, t, y)
    print(table(fit_runs, "max|p - p*|"))
    for r in fit_runs:
        print(f"   {r.name:<28}(a, b, c) = ({r.x[0]:.6f}, {r.x[1]:.6f}, {r.x[2]:.6f})")
    print("\n   'calls': kernel calls (hybridad; fun, jac and hess of one point share one) "
          "or calls of the\n   plain function (finite differences, gradient evaluations "
          "included)")
    return {"kernel_error": kernel_error, "rosenbrock": rosen_runs, "fit": fit_runs,
            "truth": TRUE_PARAMS}


if __name__ == "__main__":
    main()
