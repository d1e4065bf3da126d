"""Logistic regression on 10 million rows held by a dask cluster, with ONE kernel.

The kernel is written for one data row (z = x_row . w + b, loss log1p(exp(-z)) +
(1 - y) z) with ``derivatives="gradient", wrt=(w, b), reduce="mean"``. Called with dask
arrays X (N, d) and y (N,) chunked along the rows and the parameters w, b as plain
numbers, it returns a lazy (loss, (dL/dw, dL/db)): each chunk's task sums its rows'
losses and gradients inside the kernel, and a tree reduction adds the chunks' partial
sums. The workers compile the kernel once each (it travels as expressions) and run it
on the chunks they hold; dask.distributed does the scheduling.

The example

1. starts a ``LocalCluster`` of ``--workers`` processes (one thread each) and makes the
   data on the workers: X ~ N(0, 1) of ``--rows`` x ``--features`` in chunks of
   ``--chunk-rows``, labels y ~ Bernoulli(sigmoid(X w_true + b_true)), seeded;
2. runs ``--steps`` steps of gradient descent with the kernel on the cluster;
3. runs the same steps in this process, with the same kernel on the same data (the
   chunks computed here from the same seeds) and ``threads=--threads``;
4. prints both runs' losses, parameters and time per step, and how far apart they are
   (the chunk partials are added in another order than the in-process pieces, so the
   two agree to rounding, not to the bit).

    python examples/dask_logistic_regression.py                  # 10^7 rows, ~30 s
    python examples/dask_logistic_regression.py --rows 200000 --chunk-rows 25000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import hybridad as hd


@dataclass
class Descent:
    """Where gradient descent started and ended, and what a step cost."""

    name: str
    start_loss: float
    loss: float
    w: np.ndarray
    b: float
    seconds_per_step: float


def loss_kernel(features: int, threads: int) -> Any:
    """Mean logistic loss of a batch of rows and its gradient for (w, b), one kernel."""
    x_row, w = hd.symarray("x", features), hd.symarray("w", features)
    b, y = hd.symbols("b y")
    z = hd.dot(x_row, w) + b
    loss = hd.log1p(hd.exp(-z)) + (1 - y) * z
    return hd.lambdify([x_row, w, b, y], loss, derivatives="gradient", wrt=(w, b),
                       reduce="mean", threads=threads)


def make_data(rows: int, features: int, chunk_rows: int, seed: int) -> tuple[Any, Any, Any]:
    """Lazy X, y (dask arrays, chunked along the rows) and the true weights."""
    import dask.array as da

    w_true = np.random.default_rng(seed).standard_normal(features)
    rng = da.random.default_rng(seed + 1)
    X = rng.standard_normal((rows, features), chunks=(chunk_rows, features))
    p = 1.0 / (1.0 + da.exp(-(X @ w_true + 0.3)))
    y = (rng.random(rows, chunks=chunk_rows) < p).astype(np.float64)
    return X, y, w_true


def descend(name: str, evaluate: Any, features: int, steps: int, learning_rate: float
            ) -> Descent:
    """Plain full-batch gradient descent from w = 0, b = 0; ``evaluate(w, b)`` returns
    (loss, (dL/dw, dL/db)) as numbers."""
    w, b = np.zeros(features), 0.0
    start = time.perf_counter()
    start_loss, _ = evaluate(w, b)
    for _ in range(steps):
        _, (grad_w, grad_b) = evaluate(w, b)
        w, b = w - learning_rate * grad_w, b - learning_rate * float(grad_b)
    loss, _ = evaluate(w, b)
    seconds = (time.perf_counter() - start) / (steps + 2)
    return Descent(name, float(start_loss), float(loss), w, b, seconds)


def on_cluster(kernel: Any, X: Any, y: Any) -> Any:
    """``evaluate(w, b)``: the kernel on the cluster's chunks, computed at once."""
    import dask

    def evaluate(w: np.ndarray, b: float) -> Any:
        return dask.compute(kernel(X, w, b, y))[0]

    return evaluate


def in_process(kernel: Any, X: np.ndarray, y: np.ndarray) -> Any:
    """``evaluate(w, b)``: the same kernel on numpy arrays in this process."""
    return lambda w, b: kernel(X, w, b, y)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows (10000000)")
    parser.add_argument("--features", type=int, default=10, help="features (10)")
    # at least 19 times dask's cost per chunk in kernel time (python -m
    # benchmarks.dask_throughput: ~1.4 million rows here), and a whole number per worker
    parser.add_argument("--chunk-rows", type=int, default=1_250_000,
                        help="rows per dask chunk (1250000)")
    parser.add_argument("--steps", type=int, default=20, help="gradient-descent steps (20)")
    parser.add_argument("--learning-rate", type=float, default=2.0, help="step size (2.0)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads of the in-process kernel (2)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def report(runs: list[Descent], w_true: np.ndarray) -> dict[str, float]:
    """Print the two runs side by side and how far apart they are."""
    print(f"\n  {'':<30}{'start loss':>12}{'final loss':>20}{'bias':>12}{'s / step':>10}")
    for r in runs:
        print(f"  {r.name:<30}{r.start_loss:>12.6f}{r.loss:>20.15f}{r.b:>12.6f}"
              f"{r.seconds_per_step:>10.3f}")
    dask_run, local = runs
    loss_diff = abs(dask_run.loss - local.loss)
    param_diff = float(np.max(np.abs(np.append(dask_run.w - local.w, dask_run.b - local.b))))
    print(f"\n  |loss difference|          {loss_diff:.1e}")
    print(f"  max |parameter difference| {param_diff:.1e}")
    with np.printoptions(precision=6, suppress=True, linewidth=100):
        print(f"  w on the cluster  {dask_run.w}")
        print(f"  w in-process      {local.w}")
        print(f"  w true            {w_true}")
    return {"loss_difference": loss_diff, "parameter_difference": param_diff}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Make the data on a cluster, descend there and here, print and return the runs."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if min(args.rows, args.features, args.chunk_rows, args.workers, args.threads) < 1 \
            or args.steps < 0:
        parser.error("need positive --rows, --features, --chunk-rows, --workers, "
                     "--threads and --steps >= 0")
    import dask
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        X_lazy, y_lazy, w_true = make_data(args.rows, args.features, args.chunk_rows,
                                           args.seed)
        X, y = client.persist([X_lazy, y_lazy])        # made and kept on the workers
        kernel = loss_kernel(args.features, threads=1)
        chunks = len(X.chunks[0])
        print(f"logistic regression on dask: {args.rows} rows x {args.features} features "
              f"in {chunks} chunks of up to {args.chunk_rows} rows, {args.workers} "
              f"workers x 1 thread")
        print(f"kernel: one row's loss and its gradient for (w, b), reduce=\"mean\"; "
              f"{kernel.info()['nodes']} DAG nodes; gradient descent, {args.steps} "
              f"steps of {args.learning_rate}")
        on_dask = descend(f"dask, {args.workers} workers", on_cluster(kernel, X, y),
                          args.features, args.steps, args.learning_rate)
    # the same chunks, from the same seeds, made here
    X_local, y_local = dask.compute(X_lazy, y_lazy, scheduler="sync")
    local_kernel = loss_kernel(args.features, threads=args.threads)
    local = descend(f"in-process, {args.threads} thread(s)",
                    in_process(local_kernel, X_local, y_local), args.features, args.steps,
                    args.learning_rate)
    differences = report([on_dask, local], w_true)
    return {"dask": on_dask, "local": local, "w_true": w_true, "chunks": chunks,
            **differences}


if __name__ == "__main__":
    main()
