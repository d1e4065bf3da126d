"""What a ``hybridad.func`` transform costs per call over the compiled kernel it runs.

Each transform of the vectorised Rosenbrock function (n = 50 by default) is called with
float64 arrays of its traced shape, which sends it straight to one compiled kernel; the
kernel is also called alone. The two are timed in turn, block by block, and the median
of the per-block differences is the overhead (a noisy machine moves both alike).

    python -m benchmarks.call_overhead                  # about 20 seconds
    python -m benchmarks.call_overhead --n 1000 --blocks 100
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np

from hybridad.func import grad, jacfwd, jvp, vjp
from hybridad.func.transforms import _function_cache


def rosenbrock(x: Any) -> Any:
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def pairs(n: int) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """(transform call, the bare kernel call it makes) per transform."""
    x, v, w = np.linspace(-1.0, 1.0, n), np.ones(n), np.ones(1)
    gradient, jacobian = grad(rosenbrock), jacfwd(rosenbrock)
    gradient(x), jacobian(x), jvp(rosenbrock, (x,), (v,))
    _, pullback = vjp(rosenbrock, x)
    traced = _function_cache(rosenbrock, "llvm").get((x,), "jvp")
    kernels = {kind: traced.kernel(kind) for kind in ("gradient", "jvp", "vjp", None)}
    forward = traced.kernel("jacobian", "forward")
    return {
        "grad": (lambda: gradient(x), lambda: kernels["gradient"](x)),
        "jvp": (lambda: jvp(rosenbrock, (x,), (v,)), lambda: kernels["jvp"](x, v)),
        "vjp": (lambda: vjp(rosenbrock, x), lambda: kernels[None](x)),
        "pullback": (lambda: pullback(1.0), lambda: kernels["vjp"](x, w)),
        "jacfwd": (lambda: jacobian(x), lambda: forward(x)),
    }


def block_time(call: Callable[[], Any], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        call()
    return (time.perf_counter() - start) / loops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="Rosenbrock size (default 50)")
    parser.add_argument("--blocks", type=int, default=300, help="timed blocks per pair")
    parser.add_argument("--loops", type=int, default=200, help="calls per block")
    args = parser.parse_args(argv)
    print(f"per-call overhead over the kernel, Rosenbrock n = {args.n} (medians of "
          f"{args.blocks} blocks of {args.loops} calls)")
    print(f"{'transform':10s} {'kernel µs':>10s} {'transform µs':>13s} {'overhead µs':>12s}")
    for name, (transform, kernel) in pairs(args.n).items():
        kernel_times, differences = [], []
        for _ in range(args.blocks):
            own = block_time(kernel, args.loops)
            differences.append(block_time(transform, args.loops) - own)
            kernel_times.append(own)
        base, extra = np.median(kernel_times) * 1e6, np.median(differences) * 1e6
        print(f"{name:10s} {base:10.2f} {base + extra:13.2f} {extra:12.2f}")


if __name__ == "__main__":
    main()
