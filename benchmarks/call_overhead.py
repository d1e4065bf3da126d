"""What a call costs over the arithmetic: ``hybridad.func`` transforms over their kernel,
one point of the seeds' example with ``out=`` against CasADi, and batch threads.

1. Each transform of the vectorised Rosenbrock function (n = 50 by default) is called
   with float64 arrays of its traced shape, which sends it straight to one compiled
   kernel; the kernel is also called alone. The two are timed in turn, block by block,
   and the median of the per-block differences is the overhead (a noisy machine moves
   both alike).
2. The seeds' example f = log(x1) + x1*x2 - sin(x2) at (2, 5), value and gradient, one
   point: ``k(x)`` (fresh result arrays), ``k(x, out=(v, g))`` (the caller's arrays,
   written in place) and, when CasADi is importable, the same SX function's lowest-
   overhead Python call we found: ``Function.buffer()`` with its argument and results
   bound once to fixed numpy buffers, timed on ``trigger()`` alone (no argument
   handling, nothing allocated); ``F(DM)``, its ordinary call, for reference.
   Medians over interleaved blocks.
3. The same kernel on a batch of ``--rows`` points with ``threads=1`` and ``2``,
   fresh results and ``out=``: median milliseconds over interleaved calls.

    python -m benchmarks.call_overhead                  # about 25 seconds
    python -m benchmarks.call_overhead --n 1000 --blocks 100 --rows 0
"""

from __future__ import annotations

import argparse
import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

import hybridad as hd
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


def transform_overhead(n: int, blocks: int, loops: int) -> None:
    print(f"per-call overhead over the kernel, Rosenbrock n = {n} (medians of "
          f"{blocks} blocks of {loops} calls)")
    print(f"{'transform':10s} {'kernel µs':>10s} {'transform µs':>13s} {'overhead µs':>12s}")
    for name, (transform, kernel) in pairs(n).items():
        kernel_times, differences = [], []
        for _ in range(blocks):
            own = block_time(kernel, loops)
            differences.append(block_time(transform, loops) - own)
            kernel_times.append(own)
        base, extra = np.median(kernel_times) * 1e6, np.median(differences) * 1e6
        print(f"{name:10s} {base:10.2f} {base + extra:13.2f} {extra:12.2f}")


# -- the seeds' example, one point, against CasADi ------------------------------------------
def seeds_kernel(threads: int = 1) -> Any:
    x1, x2 = hd.symbols("x1 x2")
    f = hd.log(x1) + x1 * x2 - hd.sin(x2)
    return hd.lambdify([x1, x2], f, derivatives="gradient", threads=threads)


def casadi_calls(x: np.ndarray, namespace: dict[str, Any]) -> dict[str, str]:
    """CasADi's calls of the same SX function (as statements on ``namespace``), or none
    when CasADi is missing. The buffer's argument and results are bound once to numpy
    arrays (kept in ``namespace``: the trigger does not own them), checked against
    hybridad's numbers."""
    try:
        import casadi as ca
    except ImportError:
        return {}
    s = ca.SX.sym("x", 2)
    f = ca.log(s[0]) + s[0] * s[1] - ca.sin(s[1])
    function = ca.Function("F", [s], [f, ca.gradient(f, s)])
    buffer, trigger = function.buffer()
    point, value, gradient = x.copy(), np.empty(1), np.empty(2)
    buffer.set_arg(0, memoryview(point))
    buffer.set_res(0, memoryview(value))
    buffer.set_res(1, memoryview(gradient))
    trigger()
    expected = seeds_kernel()(x)
    assert np.allclose(value[0], expected[0]) and np.allclose(gradient, expected[1])
    namespace.update(function=function, buffer=buffer, trigger=trigger, dm=ca.DM(x),
                     kept=(point, value, gradient))
    return {"CasADi buffer trigger (fixed buffers)": "trigger()",
            "CasADi F(DM) (reference)": "function(dm)"}


def one_point(blocks: int, loops: int) -> None:
    """µs per call of the seeds' example: hybridad fresh and out=, CasADi. Statements
    timed by timeit (no wrapper function around any of them)."""
    x = np.array([2.0, 5.0])
    namespace = {"k": seeds_kernel(), "x": x, "out": (np.empty(()), np.empty(2))}
    calls = {"hybridad k(x) (fresh arrays)": "k(x)",
             "hybridad k(x, out=(v, g))": "k(x, out=out)", **casadi_calls(x, namespace)}
    timers = {name: timeit.Timer(stmt, globals=namespace) for name, stmt in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(blocks):
        for name, timer in timers.items():
            times[name].append(timer.timeit(loops) / loops)
    median = {name: float(np.median(t)) * 1e6 for name, t in times.items()}
    print(f"\nseeds' example value + gradient, one point (µs per call, medians of {blocks} "
          f"interleaved blocks of {loops} calls)")
    for name, micro in median.items():
        print(f"  {name:40s} {micro:8.3f}")
    ours, theirs = median["hybridad k(x, out=(v, g))"], median.get(
        "CasADi buffer trigger (fixed buffers)")
    if theirs is None:
        print("  (CasADi not importable: no comparison)")
    else:
        print(f"  out= / CasADi fixed buffers: {ours / theirs:.2f}x")


# -- batch threads ------------------------------------------------------------------------------
def batch_threads(rows: int, repeat: int) -> None:
    """Median ms per batch of ``rows`` points, threads 1 and 2, fresh and out=."""
    x = np.random.default_rng(0).random((rows, 2)) + 0.5
    out = (np.empty(rows), np.empty((rows, 2)))
    kernels = {t: seeds_kernel(t) for t in (1, 2)}
    calls = {(t, mode): (lambda k=k: k(x)) if mode == "fresh" else
             (lambda k=k: k(x, out=out)) for t, k in kernels.items()
             for mode in ("fresh", "out=")}
    times: dict[tuple[int, str], list[float]] = {key: [] for key in calls}
    for call in calls.values():
        call()                                              # warm: pool, pages
    for _ in range(repeat):
        for key, call in calls.items():
            times[key].append(block_time(call, 1))
    print(f"\nseeds' example value + gradient, batch of {rows:,} rows (median ms of {repeat} "
          f"interleaved calls)")
    for mode in ("fresh", "out="):
        one, two = (float(np.median(times[t, mode])) * 1e3 for t in (1, 2))
        print(f"  {mode:6s} threads=1 {one:8.2f}   threads=2 {two:8.2f}   "
              f"speedup {one / two:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="Rosenbrock size (default 50)")
    parser.add_argument("--blocks", type=int, default=300, help="timed blocks per pair")
    parser.add_argument("--loops", type=int, default=200, help="calls per block")
    parser.add_argument("--rows", type=int, default=10**6,
                        help="batch rows for the threads table (0: skip it)")
    parser.add_argument("--repeat", type=int, default=30, help="calls per batch variant")
    args = parser.parse_args(argv)
    transform_overhead(args.n, args.blocks, args.loops)
    one_point(args.blocks, args.loops)
    if args.rows:
        batch_threads(args.rows, args.repeat)


if __name__ == "__main__":
    main()
