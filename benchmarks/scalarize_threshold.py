"""Where unrolling stops paying: element-level (scalarized) kernels against loop kernels.

``hd.lambdify(..., scalarize=None)`` and ``hybridad.func`` unroll a tensor program into
one scalar instruction per element when it is small, and compile loop nests when it is
large. Unrolled kernels are the fastest per call (no loop, no indexing) but their
compile time grows with the number of scalar nodes; loop kernels compile in about the
same time whatever the sizes. For the vectorised Rosenbrock value + gradient at growing
n this prints, for both, the setup (build, compile, first call) and the median per call,
so the threshold (``hybridad.backend.tensor_kernel.SCALARIZE_LIMIT``) can be read off:
the largest program whose unrolled compile stays near a JIT's (~0.2 s).

    python -m benchmarks.scalarize_threshold            # about 30 seconds
    python -m benchmarks.scalarize_threshold --sizes 10 100 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import hybridad as hd
from hybridad.backend.tensor_kernel import SCALARIZE_LIMIT
from hybridad.core.scalarize import element_cost


def rosenbrock(x: hd.Expr) -> hd.Expr:
    return hd.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def measure(n: int, scalarize: bool, calls: int) -> tuple[float, float]:
    """(setup seconds, median per-call seconds over 5 blocks of ``calls``)."""
    x = hd.tensor(f"threshold_x{n}", (n,))
    point = np.linspace(-1.0, 1.0, n)
    hd.clear_kernel_cache()
    start = time.perf_counter()
    kernel = hd.lambdify([x], rosenbrock(x), "gradient", scalarize=scalarize)
    kernel(point)
    setup = time.perf_counter() - start
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            kernel(point)
        blocks.append((time.perf_counter() - start) / calls)
    return setup, float(np.median(blocks))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 30, 100, 300, 1000, 3000])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    print(f"Rosenbrock value + gradient; SCALARIZE_LIMIT = {SCALARIZE_LIMIT} scalar nodes")
    print(f"{'n':>6} {'scalar nodes':>13} {'unrolled setup s':>17} {'per call µs':>12} "
          f"{'loops setup s':>14} {'per call µs':>12}  chosen")
    for n in args.sizes:
        x = hd.tensor(f"threshold_x{n}", (n,))
        f = rosenbrock(x)
        nodes = element_cost([f, hd.gradient(f, x)])
        unrolled, loops = measure(n, True, args.calls), measure(n, False, args.calls)
        chosen = "unrolled" if element_cost([f]) <= SCALARIZE_LIMIT else "loops"
        print(f"{n:>6} {nodes:>13,} {unrolled[0]:>17.3f} {unrolled[1] * 1e6:>12.2f} "
              f"{loops[0]:>14.3f} {loops[1] * 1e6:>12.2f}  {chosen}")


if __name__ == "__main__":
    main()
