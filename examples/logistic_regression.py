"""Logistic regression on synthetic data, trained through ONE compiled kernel.

The kernel is written for a single data row: with z = x_row . w + b, the loss is
log1p(exp(-z)) + (1 - y) z (the cross-entropy of sigmoid(z) against the label y). It
has four argument groups [x_row (d,), w (d,), b, y]: a call passes the data X (N, d)
and labels (N,) with their batch dimension and the parameters w, b once, and
``derivatives="gradient", wrt=(w, b), reduce="mean"`` makes the kernel average the
loss and its gradient over the N rows itself (``threads`` splits the rows). There is
no N-row expression and no per-row result array.

The example

1. draws X ~ N(0, 1) (``--rows`` x ``--features``, default 100,000 x 10), true weights
   and bias, and labels y ~ Bernoulli(sigmoid(X w + b)); a held-out set of a quarter
   of the size is drawn the same way;
2. checks the kernel's mean loss and gradient against the closed forms
   mean(log1p(exp(-z)) + (1 - y) z) and X^T (sigmoid(X w + b) - y) / N at the starting
   point w = 0, b = 0 and at a random point (rtol 1e-10);
3. runs ``--gd-steps`` steps of plain gradient descent, then trains with
   ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` (one kernel call per
   evaluation gives both loss and gradient);
4. reports the final training loss, the held-out accuracy (next to the accuracy of the
   true generating weights, the best one can expect) and the correlation of the learned
   weights with the true ones.

    python examples/logistic_regression.py
    python examples/logistic_regression.py --rows 1000000 --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

import hybridad as hd


@dataclass
class Data:
    """Training and held-out rows and the parameters that generated them."""

    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    w_true: np.ndarray
    b_true: float


@dataclass
class Training:
    """Where an optimiser ended and what it cost."""

    name: str
    w: np.ndarray
    b: float
    loss: float
    kernel_calls: int
    seconds: float


def make_data(rows: int, features: int, seed: int) -> Data:
    """Gaussian features, true weights ~ N(0, 1), labels drawn from the model."""
    rng = np.random.default_rng(seed)
    w_true, b_true = rng.standard_normal(features), 0.3
    test_rows = max(rows // 4, 1)
    X = rng.standard_normal((rows + test_rows, features))
    y = (rng.random(rows + test_rows) < sigmoid(X @ w_true + b_true)).astype(np.float64)
    return Data(X[:rows], y[:rows], X[rows:], y[rows:], w_true, b_true)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def loss_kernel(features: int, threads: int) -> hd.Kernel:
    """Mean loss of a batch of rows and its gradient for (w, b), in one kernel."""
    x_row, w = hd.symarray("x", features), hd.symarray("w", features)
    b, y = hd.symbols("b y")
    z = hd.dot(x_row, w) + b
    loss = hd.log1p(hd.exp(-z)) + (1 - y) * z
    return hd.lambdify([x_row, w, b, y], loss, derivatives="gradient", wrt=(w, b),
                       reduce="mean", threads=threads)


def closed_form(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float
                ) -> tuple[float, np.ndarray, float]:
    """Mean loss, d/dw = X^T (sigmoid(z) - y) / N and d/db = mean(sigmoid(z) - y)."""
    z = X @ w + b
    residual = sigmoid(z) - y
    loss = float(np.mean(np.log1p(np.exp(-z)) + (1 - y) * z))
    return loss, X.T @ residual / len(y), float(residual.mean())


def check_against_closed_form(kernel: hd.Kernel, data: Data, w: np.ndarray, b: float
                              ) -> float:
    """Largest relative difference of the kernel's loss and gradient from closed_form."""
    loss, (grad_w, grad_b) = kernel(data.X, w, b, data.y)
    exact_loss, exact_w, exact_b = closed_form(data.X, data.y, w, b)
    ours = np.concatenate([[loss], grad_w, [grad_b]])
    exact = np.concatenate([[exact_loss], exact_w, [exact_b]])
    return float(np.max(np.abs(ours - exact) / np.abs(exact)))


class Objective:
    """theta = (w, b) -> (mean loss, gradient), one kernel call each, counted."""

    def __init__(self, kernel: hd.Kernel, X: np.ndarray, y: np.ndarray):
        self.kernel, self.X, self.y = kernel, X, y
        self.calls = 0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.calls += 1
        loss, (grad_w, grad_b) = self.kernel(self.X, theta[:-1], theta[-1], self.y)
        return float(loss), np.append(grad_w, grad_b)


def gradient_descent(objective: Objective, theta: np.ndarray, steps: int,
                     learning_rate: float) -> Training:
    """Plain full-batch gradient descent with a fixed step."""
    start, calls = time.perf_counter(), objective.calls
    for _ in range(steps):
        _, grad = objective(theta)
        theta = theta - learning_rate * grad
    loss, _ = objective(theta)
    return Training(f"gradient descent, {steps} steps", theta[:-1], float(theta[-1]), loss,
                    objective.calls - calls, time.perf_counter() - start)


def lbfgs(objective: Objective, theta: np.ndarray) -> Training:
    """L-BFGS-B with the kernel's loss and gradient from one call (jac=True)."""
    start, calls = time.perf_counter(), objective.calls
    result = minimize(objective, theta, jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-8, "ftol": 1e-12, "maxiter": 500})
    return Training(f"L-BFGS-B, {result.nit} iterations", result.x[:-1],
                    float(result.x[-1]), float(result.fun), objective.calls - calls,
                    time.perf_counter() - start)


def per_call_ms(objective: Objective, data: Data, theta: np.ndarray, repeat: int = 5
                ) -> tuple[float, float]:
    """Best milliseconds of one loss + gradient over the training rows: the kernel, and
    numpy's closed form (for scale)."""
    def best(fun: Any) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fun()
            times.append(time.perf_counter() - start)
        return min(times) * 1e3
    return (best(lambda: objective(theta)),
            best(lambda: closed_form(data.X, data.y, theta[:-1], theta[-1])))


def accuracy(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
    """Share of rows whose label is the side of the decision boundary they fall on."""
    return float(np.mean((X @ w + b > 0) == (y > 0.5)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="training rows (100000)")
    parser.add_argument("--features", type=int, default=10, help="features (10)")
    parser.add_argument("--gd-steps", type=int, default=20,
                        help="plain gradient-descent steps (20)")
    parser.add_argument("--learning-rate", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2, help="kernel threads (2)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Generate, check, train, evaluate; print the report and return the numbers."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rows < 10 or args.features < 1 or args.gd_steps < 0 or args.threads < 1:
        parser.error("need --rows >= 10, --features >= 1, --gd-steps >= 0, --threads >= 1")
    data = make_data(args.rows, args.features, args.seed)
    kernel = loss_kernel(args.features, args.threads)
    start_w, start_b = np.zeros(args.features), 0.0
    rng = np.random.default_rng(args.seed + 1)
    check_start = check_against_closed_form(kernel, data, start_w, start_b)
    check_random = check_against_closed_form(kernel, data, rng.standard_normal(
        args.features), float(rng.standard_normal()))

    print(f"logistic regression: {args.rows} training rows x {args.features} features, "
          f"{len(data.y_test)} held-out rows")
    print(f"kernel: one row's loss, mean over the batch inside the kernel, gradient for "
          f"(w, b); {kernel.info()['nodes']} DAG nodes, compiled in "
          f"{kernel.compile_seconds:.3f} s, {args.threads} thread(s)")
    print(f"against the closed form X^T (sigmoid(Xw + b) - y) / N: max relative "
          f"difference {check_start:.1e} at w = 0, b = 0; {check_random:.1e} at a random "
          "point")

    objective = Objective(kernel, data.X, data.y)
    theta0 = np.append(start_w, start_b)
    runs = [gradient_descent(objective, theta0, args.gd_steps, args.learning_rate),
            lbfgs(objective, theta0)]
    start_loss = objective(theta0)[0]
    true_accuracy = accuracy(data.X_test, data.y_test, data.w_true, data.b_true)
    print(f"\n  {'':<28}{'train loss':>11}{'held-out acc':>14}{'corr(w, w_true)':>17}"
          f"{'calls':>7}{'ms':>8}")
    print(f"  {'start (w = 0, b = 0)':<28}{start_loss:>11.6f}"
          f"{accuracy(data.X_test, data.y_test, start_w, start_b):>14.4f}")
    results = []
    for r in runs:
        acc = accuracy(data.X_test, data.y_test, r.w, r.b)
        corr = float(np.corrcoef(r.w, data.w_true)[0, 1]) if args.features > 1 else 1.0
        results.append({"training": r, "accuracy": acc, "correlation": corr})
        print(f"  {r.name:<28}{r.loss:>11.6f}{acc:>14.4f}{corr:>17.6f}"
              f"{r.kernel_calls:>7}{r.seconds * 1e3:>8.1f}")
    true_loss = closed_form(data.X, data.y, data.w_true, data.b_true)[0]
    print(f"  {'true weights':<28}{true_loss:>11.6f}{true_accuracy:>14.4f}")
    best = runs[-1]
    print(f"\n  L-BFGS-B bias {best.b:.4f} (true {data.b_true}); largest weight error "
          f"{np.max(np.abs(best.w - data.w_true)):.4f}")
    kernel_ms, numpy_ms = per_call_ms(objective, data, np.append(best.w, best.b))
    print(f"  one loss + gradient over the {args.rows} rows: kernel {kernel_ms:.2f} ms, "
          f"numpy closed form {numpy_ms:.2f} ms")
    return {"check_start": check_start, "check_random": check_random,
            "call_ms": (kernel_ms, numpy_ms),
            "start_loss": start_loss, "gd": results[0], "lbfgs": results[1],
            "true_accuracy": true_accuracy, "data": data}


if __name__ == "__main__":
    main()
