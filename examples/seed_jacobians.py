"""The seeds' autograd experiments, redone with hybridad's function transforms.

Each part computes a Jacobian (or gradient, Hessian, vmap) the way the PyTorch posts do
and checks it against an exact answer; parts a-c also time forward against reverse mode:

a. Jacobian for the inputs of y = W x + b and y = tanh(W x + b): ``jacfwd`` against
   ``jacrev`` and ``jacobian(mode="auto")`` (which mode the tape's cost model picked),
   for (n_in, n_out) = (1024, 16) and (16, 1024); with JAX installed, also
   ``jax.jacfwd`` / ``jax.jacrev`` (jitted) on the same W, b, x.
b. Jacobian for the weights: W is the variable, dy_i/dW_jk = delta_ij x_k (times tanh').
c. Jacobian with a batch: ``vmap(jacrev(f))`` against a loop of per-point Jacobians.
d. A 3-layer linear MLP (3 -> 128 -> 128 -> 2): J = W3 W2 W1, vjp with ones = column
   sums, jvp with ones = row sums.
e. grad of f = sum((x t - y)^2)^0.5 for x and t against the closed form.
f. vmap of dot, and vmap of that (the nested case of torch.vmap's example).
g. Jacobian of x^3 at ones(3) (3 I) and Hessian of sum(x^3) at ones(3) (6 I).

Times are medians of ``--repeat`` evaluations in milliseconds; tracing (running the
function on symbols and building its tape, once per input shape) is reported
separately, since later calls only evaluate.

    python examples/seed_jacobians.py                  # full sizes, median of 5
    python examples/seed_jacobians.py --repeat 3 --sizes 1024x16,16x1024
    python examples/seed_jacobians.py --quick --repeat 1    # small sizes (smoke test)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

import hybridad as hd
from hybridad.func import grad, hessian, jacfwd, jacobian, jacrev, jvp, vjp, vmap

Size = tuple[int, int]                        # (n_in, n_out)
Array = np.ndarray

FULL_SIZES: list[Size] = [(1024, 16), (16, 1024)]
QUICK_SIZES: list[Size] = [(64, 4), (4, 64)]
MODES = ("forward", "reverse", "auto")
ACTIVATIONS = ("linear", "tanh")
RTOL = 1e-12                                  # forward, reverse and exact answers agree
ATOL = 1e-13                                  # to rounding


# -- helpers -------------------------------------------------------------------------------
def parse_size(text: str) -> Size:
    """'1024x16' -> (1024, 16), read as (n_in, n_out)."""
    try:
        n_in, n_out = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 1024x16, got {text!r}") \
            from None
    if n_in < 1 or n_out < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return n_in, n_out


def parse_sizes(text: str) -> list[Size]:
    """'1024x16,16x1024' -> [(1024, 16), (16, 1024)]."""
    return [parse_size(part) for part in text.split(",") if part.strip()]


def make_layer(n_in: int, n_out: int, seed: int = 0) -> tuple[Array, Array, Array]:
    """Random W (n_out, n_in), b (n_out,) and x (n_in,), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out),
            rng.standard_normal(n_in))


def layer(W: Array, b: Array, activation: str) -> Callable[[Any], Any]:
    """x -> W x + b or x -> tanh(W x + b) with W and b as constants."""
    if activation == "linear":
        return lambda x: W @ x + b
    if activation == "tanh":
        return lambda x: np.tanh(W @ x + b)
    raise ValueError(f"activation must be 'linear' or 'tanh', got {activation!r}")


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def trace_ms(transformed: Callable[..., Any], args: Sequence[Any]) -> float:
    """Milliseconds of the first call: tracing for ``args``' shapes and compiling the
    kernel (both once per signature of input shapes, kept in the transform's cache),
    plus one evaluation; the calls timed afterwards only evaluate."""
    start = time.perf_counter()
    transformed(*args)
    return 1e3 * (time.perf_counter() - start)


def picked_mode(transformed: Callable[..., Any], args: Sequence[Any]) -> str:
    """The mode ``jacobian(mode="auto")`` uses for ``args``: the traced tape's
    ``choose_mode()`` (one point, so batch 1)."""
    return transformed.cache.get(tuple(args), "jacobian").tape.choose_mode()


def check_close(actual: Array, expected: Array, what: str, rtol: float = RTOL,
                atol: float = ATOL) -> None:
    """assert_allclose with the shapes checked first and ``what`` in the message."""
    if np.shape(actual) != np.shape(expected):
        raise AssertionError(f"{what}: shape {np.shape(actual)}, expected "
                             f"{np.shape(expected)}")
    assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


@dataclass
class Timing:
    """One timed method: tracing (or compiling) once, then the median evaluation."""

    method: str
    trace_ms: float
    median_ms: float
    note: str = ""


@dataclass
class JacobianRun:
    """Timings and the checked Jacobian of one function at one size."""

    label: str
    n_in: int
    n_out: int
    shape: tuple[int, ...]
    timings: list[Timing] = field(default_factory=list)
    auto_mode: str = ""
    jacobian: Array | None = None

    def timing(self, method: str) -> Timing:
        """The timing row of ``method`` ('forward', 'reverse', 'auto', 'jax.jacfwd', ...)."""
        return next(t for t in self.timings if t.method == method)


def time_modes(fun: Callable[..., Any], args: Sequence[Any], repeat: int,
               argnums: int = 0) -> tuple[dict[str, Array], list[Timing], str]:
    """jacfwd, jacrev and jacobian(mode="auto") of ``fun``: results, timings, auto's pick."""
    transforms = {"forward": jacfwd(fun, argnums), "reverse": jacrev(fun, argnums),
                  "auto": jacobian(fun, argnums, mode="auto")}
    results: dict[str, Array] = {}
    timings: list[Timing] = []
    auto_mode = ""
    for mode, transformed in transforms.items():
        traced_ms = trace_ms(transformed, args)
        results[mode] = transformed(*args)
        note = ""
        if mode == "auto":
            auto_mode = picked_mode(transformed, args)
            note = f"picked {auto_mode}"
        timings.append(Timing(mode, traced_ms,
                              median_ms(lambda t=transformed: t(*args), repeat), note))
    check_close(results["reverse"], results["forward"], "jacrev != jacfwd")
    check_close(results["auto"], results["forward"], "jacobian(mode='auto') != jacfwd")
    return results, timings, auto_mode


# -- a. Jacobian for the inputs -------------------------------------------------------------
def input_jacobian(n_in: int, n_out: int, activation: str = "linear", repeat: int = 5,
                   seed: int = 0, use_jax: bool = False) -> JacobianRun:
    """d y / d x of y = W x + b (or tanh of it) by jacfwd, jacrev and auto, timed.

    Checks forward == reverse == auto and, for the linear case, J == W (for tanh,
    J == diag(1 - tanh(W x + b)^2) W). With ``use_jax``, also times jax.jacfwd and
    jax.jacrev on the same W, b, x and checks them against hybridad's Jacobian."""
    W, b, x = make_layer(n_in, n_out, seed)
    results, timings, auto_mode = time_modes(layer(W, b, activation), (x,), repeat)
    J = results["forward"]
    if activation == "linear":
        check_close(J, W, "Jacobian of W x + b for x != W")
    else:
        check_close(J, (1 - np.tanh(W @ x + b) ** 2)[:, None] * W,
                    "Jacobian of tanh(W x + b) for x != diag(tanh') W")
    if use_jax:
        timings.extend(jax_input_jacobian(W, b, x, activation, repeat, J))
    name = "W x + b" if activation == "linear" else "tanh(W x + b)"
    return JacobianRun(name, n_in, n_out, J.shape, timings, auto_mode, J)


def jax_input_jacobian(W: Array, b: Array, x: Array, activation: str, repeat: int,
                       expected: Array) -> list[Timing]:
    """jax.jit(jax.jacfwd(f)) and jax.jit(jax.jacrev(f)) in float64: compile time (first
    call) and median of ``repeat`` calls with block_until_ready; checked against
    ``expected``."""
    import jax
    import jax.numpy as jnp

    timings = []
    with _jax_x64(jax):
        Wj, bj, xj = jnp.asarray(W), jnp.asarray(b), jnp.asarray(x)

        def f(v: Any) -> Any:
            z = Wj @ v + bj
            return z if activation == "linear" else jnp.tanh(z)

        for name, transform in (("jax.jacfwd", jax.jacfwd), ("jax.jacrev", jax.jacrev)):
            compiled = jax.jit(transform(f))
            start = time.perf_counter()
            J = compiled(xj).block_until_ready()          # warm-up: trace and compile
            compile_ms = 1e3 * (time.perf_counter() - start)
            check_close(np.asarray(J), expected, f"{name} != hybridad's Jacobian",
                        rtol=1e-10, atol=1e-12)
            timings.append(Timing(name, compile_ms,
                                  median_ms(lambda c=compiled: c(xj).block_until_ready(),
                                            repeat), "jit, float64"))
    return timings


def _jax_x64(jax: Any) -> contextlib.AbstractContextManager:
    """A context with JAX's float64 switched on, without changing it for the process
    (``jax.enable_x64`` in newer JAX, ``jax.experimental.enable_x64`` in older)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax import experimental

    return experimental.enable_x64()


def jax_available() -> bool:
    """Whether ``jax`` can be imported (without importing it)."""
    return importlib.util.find_spec("jax") is not None


# -- b. Jacobian for the weights ------------------------------------------------------------
def exact_weight_jacobian(W: Array, b: Array, x: Array, activation: str) -> Array:
    """d y_i / d W_jk = delta_ij x_k, times tanh'(z_i) for tanh: shape (n_out, n_out, n_in)."""
    n_out = W.shape[0]
    J = np.einsum("ij,k->ijk", np.eye(n_out), x)
    if activation == "tanh":
        J *= (1 - np.tanh(W @ x + b) ** 2)[:, None, None]
    return J


def weight_jacobian(n_in: int, n_out: int, activation: str = "linear", repeat: int = 5,
                    seed: int = 0) -> JacobianRun:
    """d y / d W with x and b constants, by jacfwd (n_out n_in directions), jacrev
    (n_out cotangents) and auto; checked against :func:`exact_weight_jacobian`."""
    W, b, x = make_layer(n_in, n_out, seed)

    def f(weights: Any) -> Any:
        return layer(weights, b, activation)(x)

    results, timings, auto_mode = time_modes(f, (W,), repeat)
    J = results["forward"]
    check_close(J, exact_weight_jacobian(W, b, x, activation),
                f"Jacobian for the weights ({activation}) != delta_ij x_k")
    name = "W x + b" if activation == "linear" else "tanh(W x + b)"
    return JacobianRun(name, n_in, n_out, J.shape, timings, auto_mode, J)


# -- c. Jacobian with a batch ---------------------------------------------------------------
@dataclass
class BatchRun:
    """vmap(jacrev(f)) over a batch against a loop of per-point jacrev(f)."""

    n_in: int
    n_out: int
    batch: int
    timings: list[Timing]
    batched: Array
    per_point: Array


def batch_jacobian(n_in: int, n_out: int, batch: int = 8, repeat: int = 5,
                   seed: int = 0) -> BatchRun:
    """Jacobians of tanh(W x + b) for a batch of x: vmap(jacrev(f)) in one tape call,
    checked equal to stacking jacrev(f)(x_i) point by point."""
    W, b, _ = make_layer(n_in, n_out, seed)
    xs = np.random.default_rng(seed + 1).standard_normal((batch, n_in))
    f = layer(W, b, "tanh")

    batched_fn = vmap(jacrev(f))
    start = time.perf_counter()
    batched = batched_fn(xs)
    batched_trace = 1e3 * (time.perf_counter() - start)
    point_fn = jacrev(f)
    point_trace = trace_ms(point_fn, (xs[0],))
    per_point = np.stack([point_fn(x) for x in xs])

    check_close(batched, per_point, "vmap(jacrev(f)) != per-point jacrev(f)")
    expected = (1 - np.tanh(xs @ W.T + b) ** 2)[:, :, None] * W[None]
    check_close(batched, expected, "batched Jacobian != diag(tanh') W per point")
    timings = [
        Timing("vmap(jacrev)", batched_trace, median_ms(lambda: batched_fn(xs), repeat),
               "trace column: first call"),
        Timing("loop of jacrev", point_trace,
               median_ms(lambda: [point_fn(x) for x in xs], repeat), f"{batch} calls"),
    ]
    return BatchRun(n_in, n_out, batch, timings, batched, per_point)


# -- d. the 3-layer linear MLP ---------------------------------------------------------------
@dataclass
class MLPRun:
    """Jacobian, vjp and jvp of a linear 3-layer MLP against W3 W2 W1."""

    sizes: tuple[int, int, int, int]
    product: Array
    forward: Array
    reverse: Array
    vjp_ones: Array
    jvp_ones: Array


def mlp_jacobian(n_in: int = 3, hidden: int = 128, n_out: int = 2, seed: int = 0) -> MLPRun:
    """h(x) = W3 (W2 (W1 x + b1) + b2) + b3 at x = (0, 1, ..., n_in - 1).

    Checks: jacfwd == jacrev == W3 W2 W1; the vjp with a ones cotangent equals the
    column sums of W3 W2 W1 (reverse mode), the jvp with a ones tangent its row sums
    (forward mode)."""
    rng = np.random.default_rng(seed)
    W1, W2, W3 = (rng.standard_normal((hidden, n_in)), rng.standard_normal((hidden, hidden)),
                  rng.standard_normal((n_out, hidden)))
    b1, b2, b3 = rng.standard_normal(hidden), rng.standard_normal(hidden), \
        rng.standard_normal(n_out)

    def h(x: Any) -> Any:
        return W3 @ (W2 @ (W1 @ x + b1) + b2) + b3

    x = np.arange(float(n_in))
    product = W3 @ W2 @ W1
    # Sums of `hidden` products in different orders: allow rounding relative to the
    # largest entry.
    atol = 1e-12 * float(np.abs(product).max())
    forward, reverse = jacfwd(h)(x), jacrev(h)(x)
    check_close(forward, product, "jacfwd of the MLP != W3 W2 W1", atol=atol)
    check_close(reverse, product, "jacrev of the MLP != W3 W2 W1", atol=atol)
    _, pullback = vjp(h, x)
    (vjp_ones,) = pullback(np.ones(n_out))
    _, jvp_ones = jvp(h, (x,), (np.ones(n_in),))
    check_close(vjp_ones, product.sum(axis=0), "vjp with ones != column sums", atol=atol)
    check_close(jvp_ones, product.sum(axis=1), "jvp with ones != row sums", atol=atol)
    return MLPRun((n_in, hidden, hidden, n_out), product, forward, reverse, vjp_ones,
                  jvp_ones)


# -- e. gradient for two arguments -----------------------------------------------------------
@dataclass
class GradRun:
    """grad(f, argnums=(0, 1)) of f = |x t - y| against the closed form."""

    x: Array
    t: Array
    y: Array
    value: float
    grad_x: Array
    grad_t: Array
    closed_x: Array
    closed_t: Array


def two_argument_gradient(seed: int = 0) -> GradRun:
    """f(x, t) = sum((x t - y)^2)^0.5 with t = (2, 3) and random x, y (y a constant):
    df/dx = t (x t - y) / f and df/dt = x (x t - y) / f."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal(2), rng.standard_normal(2)
    t = np.array([2.0, 3.0])

    def f(x: Any, t: Any) -> Any:
        return hd.sum((x * t - y) ** 2) ** 0.5

    grad_x, grad_t = grad(f, argnums=(0, 1))(x, t)
    value = float(np.sqrt(np.sum((x * t - y) ** 2)))
    closed_x, closed_t = t * (x * t - y) / value, x * (x * t - y) / value
    check_close(grad_x, closed_x, "df/dx != t (x t - y) / f")
    check_close(grad_t, closed_t, "df/dt != x (x t - y) / f")
    return GradRun(x, t, y, value, grad_x, grad_t, closed_x, closed_t)


# -- f. vmap of dot --------------------------------------------------------------------------
@dataclass
class VmapRun:
    """vmap(hd.dot) and vmap(vmap(hd.dot)) on ones."""

    single: Array                 # vd(ones(N, C), ones(N, C)): (N,)
    nested: Array                 # vvd(ones(N, D, C), ones(N, D, C)): (N, D) of C's


def vmap_of_dot(n: int = 3, d: int = 2, c: int = 5) -> VmapRun:
    """vd = vmap(hd.dot) maps (N, C), (N, C) -> (N,); vvd = vmap(vd) maps (N, D, C),
    (N, D, C) -> (N, D). On ones(3, 2, 5) the result is all 5s of shape (3, 2)."""
    vd = vmap(hd.dot)
    single = vd(np.ones((n, c)), np.ones((n, c)))
    assert_array_equal(single, np.full(n, float(c)), err_msg="vmap(hd.dot) on ones")
    nested = vmap(vd)(np.ones((n, d, c)), np.ones((n, d, c)))
    assert_array_equal(nested, np.full((n, d), float(c)), err_msg="vmap(vmap(hd.dot))")
    return VmapRun(single, nested)


# -- g. Jacobian and Hessian of cubes --------------------------------------------------------
def cube_derivatives(n: int = 3) -> tuple[Array, Array]:
    """(Jacobian of x^3, Hessian of sum(x^3)) at ones(n): 3 I and 6 I."""
    J = jacobian(lambda x: x ** 3)(np.ones(n))
    H = hessian(lambda x: hd.sum(x ** 3))(np.ones(n))
    assert_array_equal(J, 3 * np.eye(n), err_msg="Jacobian of x**3 at ones != 3 I")
    assert_array_equal(H, 6 * np.eye(n), err_msg="Hessian of sum(x**3) at ones != 6 I")
    return J, H


# -- printing ---------------------------------------------------------------------------------
def timing_table(runs: Sequence[JacobianRun], size_title: str = "n_in  n_out") -> str:
    """One row per method: size, function, Jacobian shape, trace ms, median ms, note."""
    header = (f"{size_title}  {'function':<14} {'jacobian':<13} {'method':<15}"
              f"{'trace ms':>10} {'median ms':>10}  note")
    lines = [header]
    for run in runs:
        head = f"{run.n_in:>4} {run.n_out:>6}  {run.label:<14} {run.shape!s:<13}"
        for k, t in enumerate(run.timings):
            lines.append(f"{head if k == 0 else ' ' * len(head)} {t.method:<15}"
                         f"{t.trace_ms:>10.1f} {t.median_ms:>10.2f}  {t.note}".rstrip())
    return "\n".join(lines)


def matrix_text(a: Array, indent: str = "    ") -> str:
    """A small matrix printed with numpy, indented."""
    text = np.array2string(np.asarray(a), precision=4, suppress_small=True)
    return "\n".join(indent + line for line in text.splitlines())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="The PyTorch autograd seeds' Jacobian experiments with hybridad.")
    parser.add_argument("--sizes", type=parse_sizes, default=None,
                        help="n_in x n_out sizes for part a, e.g. 1024x16,16x1024 "
                             "(default; --quick: 64x4,4x64)")
    parser.add_argument("--weights-size", type=parse_size, default=None,
                        help="n_in x n_out for the weights Jacobian (default 64x16; "
                             "--quick: 8x4)")
    parser.add_argument("--batch-size", type=parse_size, default=None,
                        help="n_in x n_out for the batched Jacobian (default 64x16; "
                             "--quick: 8x4)")
    parser.add_argument("--batch", type=int, default=8, help="batch of x (default 8)")
    parser.add_argument("--hidden", type=int, default=None,
                        help="hidden width of the MLP (default 128; --quick: 16)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="time the median of N evaluations (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, for smoke tests")
    parser.add_argument("--jax", choices=("auto", "on", "off"), default="auto",
                        help="also time jax.jacfwd/jacrev: auto (if installed), on, off")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run parts a-g, print the tables and checks; return 0 (a failed check raises)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    weights_size = args.weights_size or ((8, 4) if args.quick else (64, 16))
    batch_size = args.batch_size or ((8, 4) if args.quick else (64, 16))
    hidden = args.hidden or (16 if args.quick else 128)
    have_jax = jax_available()
    if args.jax == "on" and not have_jax:
        parser.error("--jax on: JAX is not installed (pip install jax)")
    use_jax = have_jax and args.jax != "off"

    print(f"hybridad seed experiments (median of {args.repeat}, milliseconds; 'trace' is "
          "the first call: tracing + compiling the kernel, once per input shape)")
    if not have_jax:
        print("JAX is not installed: the jax.jacfwd / jax.jacrev rows are skipped")
    elif not use_jax:
        print("JAX rows switched off (--jax off)")

    print("\na. Jacobian for the inputs x (W, b constants)")
    runs = [input_jacobian(n_in, n_out, activation, args.repeat, args.seed, use_jax)
            for n_in, n_out in sizes for activation in ACTIVATIONS]
    print(timing_table(runs))
    print("   checks: forward == reverse == auto; W x + b: J == W; "
          "tanh: J == diag(tanh') W")

    print("\nb. Jacobian for the weights W (x, b constants): shape (n_out, n_out, n_in)")
    runs = [weight_jacobian(*weights_size, activation, args.repeat, args.seed)
            for activation in ACTIVATIONS]
    print(timing_table(runs))
    print("   checks: forward == reverse == auto == delta_ij x_k (times tanh'(z_i))")

    print(f"\nc. Jacobian with a batch of {args.batch}: tanh(W x + b), "
          f"n_in x n_out = {batch_size[0]}x{batch_size[1]}")
    batch = batch_jacobian(*batch_size, args.batch, args.repeat, args.seed)
    print(f"   {'method':<16}{'trace ms':>10} {'median ms':>10}  note")
    for t in batch.timings:
        print(f"   {t.method:<16}{t.trace_ms:>10.1f} {t.median_ms:>10.2f}  {t.note}")
    print(f"   checks: vmap(jacrev(f)) {batch.batched.shape} == per-point jacrev(f) "
          "== diag(tanh') W")

    mlp = mlp_jacobian(hidden=hidden, seed=args.seed)
    print(f"\nd. Linear MLP {' -> '.join(map(str, mlp.sizes))} at x = (0, 1, 2)")
    print("   J (jacfwd and jacrev) == W3 W2 W1 =")
    print(matrix_text(mlp.product, "     "))
    print(f"   vjp(ones(2)) = {np.round(mlp.vjp_ones, 4)} == column sums of W3 W2 W1 "
          "(reverse)")
    print(f"   jvp(ones(3)) = {np.round(mlp.jvp_ones, 4)} == row sums of W3 W2 W1 "
          "(forward)")

    g = two_argument_gradient(args.seed)
    print("\ne. f = sum((x t - y)^2)^0.5, t = (2, 3): grad(f, argnums=(0, 1))")
    print(f"   x = {np.round(g.x, 4)}, y = {np.round(g.y, 4)}, f = {g.value:.6f}")
    print(f"   df/dx = {np.round(g.grad_x, 6)}   closed form t (x t - y) / f "
          f"= {np.round(g.closed_x, 6)}")
    print(f"   df/dt = {np.round(g.grad_t, 6)}   closed form x (x t - y) / f "
          f"= {np.round(g.closed_t, 6)}")

    v = vmap_of_dot()
    print("\nf. vmap of dot on ones")
    print(f"   vmap(hd.dot)(ones(3, 5), ones(3, 5)) = {v.single}")
    print("   vmap(vmap(hd.dot))(ones(3, 2, 5), ones(3, 2, 5)) =")
    print(matrix_text(v.nested, "     "))

    J, H = cube_derivatives()
    print("\ng. jacobian(lambda x: x ** 3)(ones(3)) =")
    print(matrix_text(J))
    print("   hessian(lambda x: hd.sum(x ** 3))(ones(3)) =")
    print(matrix_text(H))
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
