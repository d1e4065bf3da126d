"""Throughput of one value + gradient kernel on dask, against the same kernel in-process.

The kernel is the logistic loss of one row (``--features`` wide) with its gradient for
the weights, ``reduce="mean"``: each call returns the mean loss and gradient over all
rows. It runs on ``--rows`` rows (default 10⁷)

* in this process, ``threads=1`` and ``threads=2``;
* on a ``LocalCluster`` of 1 and of 2 worker processes (one thread each), the rows made
  on the workers and kept there in chunks of ``--chunk-rows``; a call is one
  ``dask.compute`` (chunk partial sums, a tree reduction, the result sent back).

Every configuration's result is checked against the in-process one (relative 1e-12)
before it is timed; times are medians of ``--repeat`` calls.

Then the cost dask adds per chunk: on one worker, the same ``--overhead-rows`` rows as
few large chunks and as many tiny ones; the difference of the two medians over the
difference of the chunk counts is the overhead per chunk, c. With r the kernel's time
per row (in-process, one thread), a chunk of n rows spends c / (c + n r) of its time on
overhead, under 5 % when n >= 19 c / r: the rule printed last.

    python -m benchmarks.dask_throughput                   # about a minute
    python -m benchmarks.dask_throughput --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import hybridad as hd


def loss_kernel(features: int, threads: int) -> Any:
    """Mean logistic loss of a batch and its gradient for the weights, one kernel."""
    x_row, w = hd.symarray("x", features), hd.symarray("w", features)
    y = hd.symbols("y")
    z = hd.dot(x_row, w)
    loss = hd.log1p(hd.exp(-z)) + (1 - y) * z
    return hd.lambdify([x_row, w, y], loss, derivatives="gradient", wrt=w, reduce="mean",
                       threads=threads)


def lazy_rows(rows: int, features: int, chunk_rows: int, seed: int) -> tuple[Any, Any]:
    """X (rows, features) and labels y as dask arrays made from seeds (no data here)."""
    import dask.array as da

    rng = da.random.default_rng(seed)
    X = rng.standard_normal((rows, features), chunks=(chunk_rows, features))
    y = (rng.random(rows, chunks=chunk_rows) < 0.5).astype(np.float64)
    return X, y


def median_seconds(call: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def check(name: str, got: Any, expected: Any) -> None:
    """Loss and gradient equal to rounding, or an error naming the configuration."""
    for a, b in zip((got[0], got[1]), (expected[0], expected[1])):
        if not np.allclose(a, b, rtol=1e-12, atol=0):
            raise AssertionError(f"{name}: result differs from the in-process kernel: "
                                 f"{a} against {b}")


def on_cluster(workers: int, args: argparse.Namespace, weights: np.ndarray,
               expected: Any) -> tuple[float, tuple[float, float] | None]:
    """(median seconds of one computation on ``workers`` workers, the seconds dask adds
    per chunk and per computation, measured on one worker only, else None)."""
    import dask
    from distributed import Client, LocalCluster

    kernel = loss_kernel(args.features, threads=1)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        data = client.persist(list(lazy_rows(args.rows, args.features, args.chunk_rows,
                                             args.seed)))

        def run() -> Any:
            return dask.compute(kernel(data[0], weights, data[1]))[0]

        check(f"dask, {workers} worker(s)", run(), expected)
        seconds = median_seconds(run, args.repeat)
        data.clear()                         # the workers drop the rows
        overhead = per_chunk_overhead(client, kernel, args, weights) if workers == 1 \
            else None
    return seconds, overhead


def per_chunk_overhead(client: Any, kernel: Any, args: argparse.Namespace,
                       weights: np.ndarray) -> tuple[float, float]:
    """Seconds dask adds per chunk (the same rows as few and as many chunks) and the
    median time of the few-chunk computation (for the cost per computation)."""
    import dask

    times = {}
    for chunks in (args.few_chunks, args.many_chunks):
        X, y = client.persist(list(lazy_rows(args.overhead_rows, args.features,
                                             -(-args.overhead_rows // chunks),
                                             args.seed + 1)))

        def run(X: Any = X, y: Any = y) -> Any:
            return dask.compute(kernel(X, weights, y))

        run()                                                        # warm up
        times[chunks] = median_seconds(run, args.repeat)
    per_chunk = (times[args.many_chunks] - times[args.few_chunks]) / (
        args.many_chunks - args.few_chunks)
    return per_chunk, times[args.few_chunks]


def in_process(args: argparse.Namespace, weights: np.ndarray) -> tuple[dict[str, float], Any]:
    """Median seconds of the kernel with threads=1 and 2 on the same rows, made here
    from the same seeds (freed on return), and the result every run must equal."""
    import dask

    X, y = dask.compute(*lazy_rows(args.rows, args.features, args.chunk_rows, args.seed),
                        scheduler="sync")
    kernels = {t: loss_kernel(args.features, threads=t) for t in (1, 2)}
    expected = kernels[1](X, weights, y)
    rows = {}
    for t, kernel in kernels.items():
        check(f"in-process, threads={t}", kernel(X, weights, y), expected)
        rows[f"in-process, threads={t}"] = median_seconds(
            functools.partial(kernel, X, weights, y), args.repeat)
    return rows, expected


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows (10**7)")
    parser.add_argument("--features", type=int, default=10, help="features per row (10)")
    parser.add_argument("--chunk-rows", type=int, default=1_000_000,
                        help="rows per dask chunk (10**6)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per median (5)")
    parser.add_argument("--overhead-rows", type=int, default=200_000,
                        help="rows of the per-chunk overhead measurement (200000)")
    parser.add_argument("--few-chunks", type=int, default=10)
    parser.add_argument("--many-chunks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Time every configuration, print the table and the chunk-size rule."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.rows, args.features, args.chunk_rows, args.repeat, args.overhead_rows) < 1 \
            or not 1 <= args.few_chunks < args.many_chunks:
        parser.error("need positive sizes and 1 <= --few-chunks < --many-chunks")
    weights = np.linspace(-0.5, 0.5, args.features)
    rows, expected = in_process(args, weights)
    overhead = (0.0, 0.0)
    for workers in (1, 2):
        seconds, measured = on_cluster(workers, args, weights, expected)
        rows[f"dask, {workers} worker{'s' if workers > 1 else ''}"] = seconds
        overhead = measured if measured is not None else overhead
    return report(rows, overhead, args)


def report(rows: dict[str, float], overheads: tuple[float, float],
           args: argparse.Namespace) -> dict[str, Any]:
    """Print the medians, the overhead model (a computation of k chunks and N rows takes
    about fixed + k c + N r on one worker) and the rule; return them."""
    chunks = -(-args.rows // args.chunk_rows)
    print(f"value + gradient of the logistic loss ({args.features} features), "
          f'reduce="mean", {args.rows} rows; dask: {chunks} chunks of {args.chunk_rows} '
          f"rows, made and kept on the workers; medians of {args.repeat}; "
          f"{os.cpu_count()} CPUs")
    base = rows["in-process, threads=1"]
    print(f"\n  {'':<26}{'seconds':>10}{'Mrows/s':>10}{'vs 1 thread':>13}")
    for name, seconds in rows.items():
        print(f"  {name:<26}{seconds:>10.3f}{args.rows / seconds / 1e6:>10.1f}"
              f"{base / seconds:>12.2f}x")
    per_row = base / args.rows
    overhead, few_seconds = overheads
    fixed = few_seconds - args.few_chunks * overhead - args.overhead_rows * per_row
    minimum = 19 * max(overhead, 0.0) / per_row
    row_bytes = 8 * (args.features + 1)
    print(f"\n  per-chunk overhead (1 worker; {args.overhead_rows} rows as "
          f"{args.few_chunks} and as {args.many_chunks} chunks): {overhead * 1e3:.2f} ms")
    print(f"  kernel time per row (in-process, 1 thread): {per_row * 1e9:.1f} ns")
    print(f"  fixed cost per computation (submit, schedule, gather): {fixed * 1e3:.0f} ms")
    print(f"  rule: overhead under 5 % needs chunks of at least 19 c / r = "
          f"{minimum:,.0f} rows ({minimum * row_bytes / 1e6:.1f} MB of float64 rows); "
          f"{args.chunk_rows} rows per chunk here spends "
          f"{100 * overhead / (overhead + args.chunk_rows * per_row):.1f} % on it")
    print(f"  (whatever the kernel: give each chunk at least 19 c = "
          f"{19 * overhead * 1e3:.0f} ms of kernel work)")
    return {"seconds": rows, "overhead_seconds": overhead, "fixed_seconds": fixed,
            "row_seconds": per_row, "minimum_chunk_rows": minimum}


if __name__ == "__main__":
    main()
