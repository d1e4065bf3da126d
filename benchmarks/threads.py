"""What ``threads=2`` buys over ``threads=1``: one big call, and a big batch.

(a) the Rosenbrock gradient of n = 10⁶ as a single call of a tensor kernel (threads
share the chunks of its loop stages); (b) a 10⁶-row batch of a small element-level
kernel (threads share the rows). The kernels for one and two threads are called in
turn, block by block, so a noisy machine moves both alike; medians of the blocks (the
first call of a two-thread block wakes the helper thread, which then stays awake
between calls). The two results are checked to be bit-identical before timing.

    python -m benchmarks.threads                 # about 20 seconds
    python -m benchmarks.threads --blocks 60 --n 1000000
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import hybridad as hd


def rosenbrock_call(n: int, threads: int) -> Callable[[], Any]:
    """(a): the value and gradient of the vectorised Rosenbrock function, one call."""
    x = hd.tensor("bench_threads_x", (n,))
    f = hd.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    kernel = hd.lambdify([x], f, derivatives="gradient", threads=threads)
    point = np.linspace(-1.0, 1.0, n)
    return lambda: kernel(point)


def batch_call(rows: int, threads: int) -> Callable[[], Any]:
    """(b): the seeds' example f(x1, x2) = log(x1) + x1 x2 - sin(x2) and its gradient
    over a batch of rows."""
    x1, x2 = hd.symbols("x1 x2")
    kernel = hd.lambdify([[x1, x2]], hd.log(x1) + x1 * x2 - hd.sin(x2),
                         derivatives="gradient", threads=threads)
    points = np.random.default_rng(0).uniform(0.5, 2.0, (rows, 2))
    return lambda: kernel(points)


def block_time(call: Callable[[], Any], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        call()
    return (time.perf_counter() - start) / loops


def compare(name: str, make: Callable[[int], Callable[[], Any]], blocks: int,
            loops: int) -> None:
    calls = {t: make(t) for t in (1, 2)}
    one, two = calls[1](), calls[2]()
    flat = [np.asarray(a) for a in (one if isinstance(one, tuple) else (one,))]
    other = [np.asarray(a) for a in (two if isinstance(two, tuple) else (two,))]
    if not all(np.array_equal(a, b) for a, b in zip(flat, other)):
        raise AssertionError(f"{name}: threads=2 differs from threads=1")
    for call in calls.values():        # warm up (pool threads, pages)
        block_time(call, loops)
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(blocks):
        for t, call in calls.items():
            times[t].append(block_time(call, loops))
    one_ms, two_ms = (float(np.median(times[t])) * 1e3 for t in (1, 2))
    print(f"{name:44s} {one_ms:10.3f} {two_ms:10.3f} {one_ms / two_ms:8.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10**6,
                        help="Rosenbrock size and batch rows (default 10**6)")
    parser.add_argument("--blocks", type=int, default=40, help="timed blocks per kernel")
    parser.add_argument("--loops", type=int, default=5, help="calls per block")
    args = parser.parse_args(argv)
    print(f"threads=2 against threads=1 ({os.cpu_count()} CPUs; medians of "
          f"{args.blocks} blocks of {args.loops} calls, interleaved)")
    print(f"{'':44s} {'1 thread ms':>10s} {'2 threads':>10s} {'speedup':>9s}")
    compare(f"(a) Rosenbrock gradient, n = {args.n}, one call",
            lambda t: rosenbrock_call(args.n, t), args.blocks, args.loops)
    compare(f"(b) log(x1)+x1*x2-sin(x2) gradient, {args.n} rows",
            lambda t: batch_call(args.n, t), args.blocks, args.loops)


if __name__ == "__main__":
    main()
