"""GradBench-style problems through ``hybridad.func``, checked against hand-derived numpy.

Each problem is written once, the way a JAX user writes it: vectorised numpy-style code on
whole arrays (``@``, broadcasting, indexing with ``None``, ``np.sum``, ``np.exp``,
``np.log``, ``np.max`` / ``np.min`` with ``axis=``), which hybridad traces into tensor
nodes; ``hd.logsumexp`` (from ``import hybridad as hd``) is the stable log-sum-exp, as
``jax.nn.logsumexp`` is for JAX. The same source runs on PyTorch (eager, float64,
``torch.autograd.grad``) and on JAX (``jax.jit``, float64) when they are installed.

a. Least squares: f(x) = sum((A x - b)^2), A of shape (m, n); f and df/dx = 2 A^T (A x - b).
   Full: m = 128, n = 1024, 4096, 16392.   Quick: m = 32, n = 8, 256, 1024.
b. Log-sum-exp: f(x) = log sum_i exp(x_i); f and df/dx = softmax(x).
   Full: n = 1000, 160000, 1280000.         Quick: n = 10, 100, 5000.
c. Gaussian mixture (ADBench/GradBench "gmm", simplified to diagonal covariances): the
   log-likelihood of n points x_i in R^d under k Gaussians with weights softmax(alpha),
   means mu_j and standard deviations exp(s_j) (log-std parametrisation),

       L = sum_i logsumexp_j( alpha_j - sum_d s_jd - 1/2 sum_d ((x_id - mu_jd) e^{-s_jd})^2 )
           - n logsumexp(alpha) - n d/2 log(2 pi),

   and its gradient with respect to (alpha, mu, s). The JAX-style source builds the (n, k, d)
   array of scaled differences by broadcasting; a second hybridad row expands the square
   into matrix products (no (n, k, d) array). Full: (d, k, n) = (10, 25, 1000) and
   (64, 100, 1000). Quick: (2, 3, 10) and (4, 5, 200).
d. k-means: cost(C) = sum_i min_j ||x_i - c_j||^2 for centres C (k, d) and points X (n, d),
   with the squared distances as |x|^2 - 2 X C^T + |c|^2 (an (n, k) array, never (n, k, d)).
   Two tables per size: "cost + J" (the gradient by value_and_grad) and "cost + J + diag(H)"
   as GradBench's k-means asks. H is diagonal (each point belongs to one centre and the
   squared distance is separable in the coordinates), so one Hessian-vector product with
   v = ones gives diag(H) = 2 * (points per centre). hybridad rows for diag(H):
   ``hybridad.func.jvp`` of ``value_and_grad`` (nested transforms: the inner gradient is
   taken at tensor level inside the outer trace; before that, nested transforms traced
   element by element and took 228 s to set up at (n, k, d) = (200, 10, 4)), and
   the tensor-level graph ``hd.jvp(hd.gradient(cost, C), {C: V})`` run on a ``TensorTape``
   (hybridad's API below hybridad.func). Full: (n, k, d) = (1000, 100, 16)
   and (10000, 1000, 16). Quick: (10, 3, 2) and (200, 20, 4).
e. The seeds' MLP 784 -> 512 -> 512 -> 10, batch 64, ReLU, MSE loss: the loss and the
   gradients of all six parameters (``benchmarks.tensors``' problem and hand backprop).
   Quick: 196 -> 256 -> 256 -> 10, batch 16.

Every row is set up and called once (the "setup" column: for hybridad tracing,
differentiating, compiling (an element-level LLVM kernel for a small trace, a tensor
kernel or tape for a large one: each hybridad.func row's note says which) and the first
call; for JAX the jit compile and first call; for torch the conversion and first call)
and its result checked against the numpy reference (rtol 1e-9, atol 1e-9 times the
largest entry), then all rows are timed round-robin
(``benchmarks.measure.time_interleaved``): medians of ``--repeat`` samples, ratios to the
first hybridad row. A hybridad row that raises or disagrees with the reference is kept
and marked FAILED with the error in its note, listed again at the end, and the exit
status is 1; a peer's failure only marks its row. Also ``--only a1,d2H,e`` (some tables)
and ``--target-ms`` (length of one timed sample).

    python -m benchmarks.gradbench                   # the full sizes, median of 5
    python -m benchmarks.gradbench --repeat 9
    python -m benchmarks.gradbench --quick --repeat 1       # tiny sizes, seconds (the tests)
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m benchmarks.gradbench   # one thread

numpy's BLAS threads are fixed when numpy loads: set OPENBLAS_NUM_THREADS (or
OMP_NUM_THREADS) in the environment to change them; the header prints the setting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import hybridad as hd
from hybridad.func import jvp, value_and_grad

from .measure import Measurement, Prepared, Row, prepare_row, time_interleaved
from .report import fmt_ms, fmt_ratio
from .tensors import (
    MLP_BATCH,
    MLP_WIDTHS,
    QUICK_MLP_BATCH,
    QUICK_MLP_WIDTHS,
    Section,
    blas_threads,
    import_peers,
    import_tool,
    jax_float64,
    median_cell,
    mlp_loss,
    mlp_problem,
    numpy_backprop,
)
from .tensors import table as tensor_table

Arrays = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Sizes:
    least_squares_m: int
    least_squares_n: tuple[int, ...]
    logsumexp_n: tuple[int, ...]
    gmm: tuple[tuple[int, int, int], ...]          # (d, k, n)
    kmeans: tuple[tuple[int, int, int], ...]       # (n, k, d)
    mlp_widths: tuple[int, ...]
    mlp_batch: int


FULL = Sizes(128, (1024, 4096, 16392), (1000, 160_000, 1_280_000),
             ((10, 25, 1000), (64, 100, 1000)), ((1000, 100, 16), (10_000, 1000, 16)),
             MLP_WIDTHS, MLP_BATCH)
# The quick sizes take both of hybridad.func's routes: small traces (below
# Traced.ELEMENT_LIMIT scalar nodes) compile to element-level LLVM kernels, larger ones run
# at tensor level. Element-level compiles grow fast with size, so the small ones are tiny.
QUICK = Sizes(32, (8, 256, 1024), (10, 100, 5000), ((2, 3, 10), (4, 5, 200)),
              ((10, 3, 2), (200, 20, 4)), QUICK_MLP_WIDTHS, QUICK_MLP_BATCH)


class MismatchError(AssertionError):
    """A numpy reference row failed (the benchmark itself is wrong)."""


def _floats(*values: Any) -> Arrays:
    return tuple(np.asarray(v, dtype=np.float64) for v in values)


def _flat_value_and_grads(out: Any) -> Arrays:
    """(value, g) or (value, (g1, g2, ...)) as a flat tuple of float arrays."""
    value, grads = out
    grads = grads if isinstance(grads, tuple) else (grads,)
    return _floats(value, *(np.asarray(g) for g in grads))


def _torch_arrays(*values: Any) -> Arrays:
    return _floats(*(v.detach().numpy() for v in values))


def _hybridad(transformed: Callable[..., Any], args: Sequence[Any], note: str) -> Prepared:
    """A hybridad.func transform called on ``args``; ``keep`` holds it (for the trace
    level, see :func:`annotate_level`)."""
    return Prepared(lambda: transformed(*args), _flat_value_and_grads, note=note,
                    keep=transformed)


def _torch_value_and_grad(fun: Callable[..., Any], args: Sequence[np.ndarray],
                          argnums: Sequence[int]) -> Prepared:
    """fun(*args) and torch.autograd.grad with respect to args[argnums], float64."""
    torch = import_tool("torch")
    tensors = [torch.from_numpy(np.array(a, dtype=np.float64)) for a in args]
    wrt = [tensors[k].requires_grad_() for k in argnums]

    def call() -> Any:
        value = fun(*tensors)
        return value.detach(), torch.autograd.grad(value, wrt)

    return Prepared(call, lambda out: _torch_arrays(out[0], *out[1]),
                    note=f"float64, torch threads: {torch.get_num_threads()}")


def _jax_value_and_grad(fun: Callable[..., Any], args: Sequence[np.ndarray],
                        argnums: Sequence[int]) -> Prepared:
    """jax.jit(jax.value_and_grad(fun, argnums)), inputs on the device once."""
    jax, _ = jax_float64()
    fn = jax.jit(jax.value_and_grad(fun, argnums=tuple(argnums)))
    device = [jax.device_put(a) for a in args]
    return Prepared(lambda: jax.block_until_ready(fn(*device)), _flat_value_and_grads,
                    note="jit, float64; setup: compile + first call")


def _numpy(call: Callable[[], Arrays]) -> Prepared:
    return Prepared(call, lambda out: _floats(*out), note="the reference (by hand)")


# -- a. least squares -------------------------------------------------------------------------
def least_squares(x: Any, A: Any, b: Any, xp: Any = np) -> Any:
    """sum((A x - b)^2)."""
    return xp.sum((A @ x - b) ** 2)


def least_squares_reference(x: np.ndarray, A: np.ndarray, b: np.ndarray) -> Arrays:
    """f = r.r and df/dx = 2 A^T r with r = A x - b."""
    r = A @ x - b
    return np.asarray(r @ r), 2.0 * (A.T @ r)


@dataclass
class LeastSquares:
    A: np.ndarray
    b: np.ndarray
    x: np.ndarray

    @property
    def title(self) -> str:
        m, n = self.A.shape
        return f"least squares sum((A x - b)^2), A {m} x {n:,}: f + df/dx"


def least_squares_problem(m: int, n: int, seed: int = 0) -> LeastSquares:
    rng = np.random.default_rng([seed, m, n])
    return LeastSquares(rng.standard_normal((m, n)) / np.sqrt(n), rng.standard_normal(m),
                        rng.standard_normal(n))


def least_squares_rows(p: LeastSquares) -> list[Row]:
    def hybridad_args() -> Prepared:
        hd.clear_kernel_cache()
        return _hybridad(value_and_grad(least_squares), (p.x, p.A, p.b),
                         "f(x, A, b), argnums=0")

    def hybridad_closed() -> Prepared:
        hd.clear_kernel_cache()
        A, b = p.A, p.b
        return _hybridad(value_and_grad(lambda x: least_squares(x, A, b)), (p.x,),
                         "A, b constants of the trace")

    def torch_row() -> Prepared:
        torch = import_tool("torch")
        return _torch_value_and_grad(lambda x, A, b: least_squares(x, A, b, torch),
                                     (p.x, p.A, p.b), (0,))

    def jax_row() -> Prepared:
        _, jnp = jax_float64()
        return _jax_value_and_grad(lambda x, A, b: least_squares(x, A, b, jnp),
                                   (p.x, p.A, p.b), (0,))

    return [
        Row("hybridad", "hybridad value_and_grad", hybridad_args, hybridad=True,
            reference=True),
        Row("hybridad", "hybridad value_and_grad, A b closed over", hybridad_closed,
            hybridad=True),
        Row("numpy", "numpy (hand-derived)",
            lambda: _numpy(lambda: least_squares_reference(p.x, p.A, p.b))),
        Row("torch", "torch eager autograd.grad", torch_row),
        Row("jax", "jax jit(value_and_grad)", jax_row),
    ]


# -- b. log-sum-exp ---------------------------------------------------------------------------
def logsumexp_by_hand(x: Any) -> Any:
    """The shifted form written out with numpy calls (max, exp, sum, log)."""
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def logsumexp_reference(x: np.ndarray) -> Arrays:
    """f = m + log(sum exp(x - m)) with m = max(x); df/dx = exp(x - m) / sum exp(x - m)."""
    m = np.max(x)
    e = np.exp(x - m)
    s = np.sum(e)
    return np.asarray(m + np.log(s)), e / s


@dataclass
class LogSumExp:
    x: np.ndarray

    @property
    def title(self) -> str:
        return f"log-sum-exp, n = {self.x.size:,}: f + df/dx"


def logsumexp_problem(n: int, seed: int = 0) -> LogSumExp:
    return LogSumExp(3.0 * np.random.default_rng([seed, n]).standard_normal(n))


def logsumexp_rows(p: LogSumExp) -> list[Row]:
    def hybridad_row(fun: Callable[[Any], Any], note: str) -> Callable[[], Prepared]:
        def setup() -> Prepared:
            hd.clear_kernel_cache()
            return _hybridad(value_and_grad(fun), (p.x,), note)
        return setup

    def torch_row() -> Prepared:
        torch = import_tool("torch")
        return _torch_value_and_grad(lambda x: torch.logsumexp(x, 0), (p.x,), (0,))

    def jax_row() -> Prepared:
        jax, _ = jax_float64()
        return _jax_value_and_grad(jax.nn.logsumexp, (p.x,), (0,))

    return [
        Row("hybridad", "hybridad value_and_grad(hd.logsumexp)",
            hybridad_row(hd.logsumexp, "hd.logsumexp(x)"), hybridad=True, reference=True),
        Row("hybridad", "hybridad value_and_grad, max/exp/log",
            hybridad_row(logsumexp_by_hand, "m + log(sum(exp(x - m))), m = np.max(x)"),
            hybridad=True),
        Row("numpy", "numpy (hand-derived)", lambda: _numpy(lambda: logsumexp_reference(p.x))),
        Row("torch", "torch eager autograd.grad", torch_row),
        Row("jax", "jax jit(value_and_grad)", jax_row),
    ]


# -- c. Gaussian mixture ----------------------------------------------------------------------
def gmm_loglik(alphas: Any, means: Any, logstd: Any, x: Any, xp: Any = np,
               logsumexp: Callable[..., Any] = hd.logsumexp) -> Any:
    """The log-likelihood as JAX code writes it: (n, k, d) scaled differences by
    broadcasting; ``logsumexp(z, axis)`` is hd.logsumexp, torch's or jax.nn's."""
    n, d = x.shape
    scaled = (x[:, None, :] - means[None, :, :]) * xp.exp(-logstd)[None, :, :]
    z = alphas - xp.sum(logstd, axis=1) - 0.5 * xp.sum(scaled ** 2, axis=2)   # (n, k)
    return (xp.sum(logsumexp(z, 1)) - n * logsumexp(alphas, 0)
            - 0.5 * n * d * np.log(2.0 * np.pi))


def gmm_loglik_expanded(alphas: Any, means: Any, logstd: Any, x: Any, xp: Any = np,
                        logsumexp: Callable[..., Any] = hd.logsumexp) -> Any:
    """The same with sum_d (x_d - mu_d)^2 w_d (w = e^{-2s}) expanded into matrix products
    x^2 w^T - 2 x (mu w)^T + sum_d mu^2 w: no (n, k, d) array."""
    n, d = x.shape
    w = xp.exp(-2.0 * logstd)
    q = (x ** 2) @ w.T - 2.0 * (x @ (means * w).T) + xp.sum(means ** 2 * w, axis=1)
    z = alphas - xp.sum(logstd, axis=1) - 0.5 * q
    return (xp.sum(logsumexp(z, 1)) - n * logsumexp(alphas, 0)
            - 0.5 * n * d * np.log(2.0 * np.pi))


def gmm_reference(alphas: np.ndarray, means: np.ndarray, logstd: np.ndarray,
                  x: np.ndarray) -> Arrays:
    """L and (dL/dalpha, dL/dmu, dL/ds) by hand. With z_ij as in the docstring and the
    responsibilities r_ij = softmax_j(z_ij), w = e^{-2s}, R_j = sum_i r_ij:
    dL/dalpha_j = R_j - n softmax(alpha)_j,
    dL/dmu_jd = w_jd sum_i r_ij (x_id - mu_jd) = w_jd ((r^T x)_jd - R_j mu_jd),
    dL/ds_jd = -R_j + w_jd sum_i r_ij (x_id - mu_jd)^2."""
    n, d = x.shape
    w = np.exp(-2.0 * logstd)
    q = (x ** 2) @ w.T - 2.0 * (x @ (means * w).T) + np.sum(means ** 2 * w, axis=1)
    z = alphas - logstd.sum(axis=1) - 0.5 * q
    z_max = z.max(axis=1, keepdims=True)
    e = np.exp(z - z_max)
    s = e.sum(axis=1, keepdims=True)
    r = e / s
    a_max = alphas.max()
    ea = np.exp(alphas - a_max)
    value = (np.sum(z_max[:, 0] + np.log(s[:, 0])) - n * (a_max + np.log(ea.sum()))
             - 0.5 * n * d * np.log(2.0 * np.pi))
    R = r.sum(axis=0)
    rx, rxx = r.T @ x, r.T @ (x ** 2)
    d_alpha = R - n * ea / ea.sum()
    d_means = w * (rx - R[:, None] * means)
    d_logstd = -R[:, None] + w * (rxx - 2.0 * means * rx + R[:, None] * means ** 2)
    return np.asarray(value), d_alpha, d_means, d_logstd


@dataclass
class GMM:
    alphas: np.ndarray
    means: np.ndarray
    logstd: np.ndarray
    x: np.ndarray

    @property
    def args(self) -> tuple[np.ndarray, ...]:
        return self.alphas, self.means, self.logstd, self.x

    @property
    def title(self) -> str:
        (k, d), n = self.means.shape, self.x.shape[0]
        return (f"GMM log-likelihood, d = {d}, k = {k}, n = {n:,}: L + dL/d(alpha, mu, "
                "log-std)")


def gmm_problem(d: int, k: int, n: int, seed: int = 0) -> GMM:
    rng = np.random.default_rng([seed, d, k, n])
    return GMM(rng.standard_normal(k), rng.standard_normal((k, d)),
               0.3 * rng.standard_normal((k, d)), rng.standard_normal((n, d)))


def gmm_rows(p: GMM) -> list[Row]:
    def hybridad_row(fun: Callable[..., Any], note: str) -> Callable[[], Prepared]:
        def setup() -> Prepared:
            hd.clear_kernel_cache()
            return _hybridad(value_and_grad(fun, argnums=(0, 1, 2)), p.args, note)
        return setup

    def torch_row(fun: Callable[..., Any]) -> Callable[[], Prepared]:
        def setup() -> Prepared:
            torch = import_tool("torch")

            def lse(z: Any, axis: int) -> Any:
                return torch.logsumexp(z, axis)

            return _torch_value_and_grad(lambda *a: fun(*a, xp=torch, logsumexp=lse),
                                         p.args, (0, 1, 2))
        return setup

    def jax_row() -> Prepared:
        jax, jnp = jax_float64()

        def lse(z: Any, axis: int) -> Any:
            return jax.nn.logsumexp(z, axis=axis)

        return _jax_value_and_grad(lambda *a: gmm_loglik(*a, xp=jnp, logsumexp=lse),
                                   p.args, (0, 1, 2))

    return [
        Row("hybridad", "hybridad value_and_grad",
            hybridad_row(gmm_loglik, "(n, k, d) broadcast; argnums=(0, 1, 2)"),
            hybridad=True, reference=True),
        Row("hybridad", "hybridad value_and_grad, expanded",
            hybridad_row(gmm_loglik_expanded, "square expanded into matmuls"),
            hybridad=True),
        Row("numpy", "numpy (hand-derived)", lambda: _numpy(lambda: gmm_reference(*p.args))),
        Row("torch", "torch eager autograd.grad", torch_row(gmm_loglik)),
        Row("torch", "torch eager autograd.grad, expanded", torch_row(gmm_loglik_expanded)),
        Row("jax", "jax jit(value_and_grad)", jax_row),
    ]


# -- d. k-means -------------------------------------------------------------------------------
def kmeans_cost(c: Any, x: Any, xp: Any = np,
                row_min: Callable[[Any], Any] = lambda d2: np.min(d2, axis=1)) -> Any:
    """sum_i min_j ||x_i - c_j||^2 with the (n, k) squared distances |x|^2 - 2 x.c + |c|^2."""
    d2 = (xp.sum(x ** 2, axis=1)[:, None] - 2.0 * (x @ c.T)
          + xp.sum(c ** 2, axis=1)[None, :])
    return xp.sum(row_min(d2))


def kmeans_reference(c: np.ndarray, x: np.ndarray) -> Arrays:
    """cost, J = dcost/dC and diag(H) by hand: with a(i) the nearest centre of x_i and
    N_j the number of points nearest c_j, J_j = 2 (N_j c_j - sum_{a(i)=j} x_i) and
    H = diag(2 N_j, repeated over the d coordinates). The assignment is the argmin of the
    same expanded distances as :func:`kmeans_cost`; the cost sums ||x_i - c_a(i)||^2."""
    k = c.shape[0]
    d2 = np.sum(x ** 2, axis=1)[:, None] - 2.0 * (x @ c.T) + np.sum(c ** 2, axis=1)[None, :]
    nearest = np.argmin(d2, axis=1)
    cost = np.sum((x - c[nearest]) ** 2)
    counts = np.bincount(nearest, minlength=k).astype(np.float64)
    sums = np.zeros_like(c)
    np.add.at(sums, nearest, x)
    J = 2.0 * (counts[:, None] * c - sums)
    H = np.repeat(2.0 * counts[:, None], c.shape[1], axis=1)
    return np.asarray(cost), J, H


@dataclass
class KMeans:
    c: np.ndarray
    x: np.ndarray

    def title(self, what: str) -> str:
        (n, d), k = self.x.shape, self.c.shape[0]
        return f"k-means, n = {n:,}, k = {k:,}, d = {d}: {what}"


def kmeans_problem(n: int, k: int, d: int, seed: int = 0) -> KMeans:
    """Points from k blobs, centres started at other random points."""
    rng = np.random.default_rng([seed, n, k, d])
    blobs = 3.0 * rng.standard_normal((k, d))
    x = blobs[rng.integers(0, k, n)] + rng.standard_normal((n, d))
    return KMeans(x[rng.choice(n, k, replace=False)] + 0.5 * rng.standard_normal((k, d)), x)


def _torch_kmeans(c: Any, x: Any) -> Any:
    torch = import_tool("torch")
    return kmeans_cost(c, x, torch, lambda d2: torch.amin(d2, 1))


def kmeans_rows(p: KMeans) -> list[Row]:
    """cost + J."""
    def hybridad_row() -> Prepared:
        hd.clear_kernel_cache()
        return _hybridad(value_and_grad(kmeans_cost), (p.c, p.x), "f(C, X), argnums=0")

    def jax_row() -> Prepared:
        _, jnp = jax_float64()
        return _jax_value_and_grad(
            lambda c, x: kmeans_cost(c, x, jnp, lambda d2: jnp.min(d2, axis=1)),
            (p.c, p.x), (0,))

    return [
        Row("hybridad", "hybridad value_and_grad", hybridad_row, hybridad=True,
            reference=True),
        Row("numpy", "numpy (hand-derived)",
            lambda: _numpy(lambda: kmeans_reference(p.c, p.x)[:2])),
        Row("torch", "torch eager autograd.grad",
            lambda: _torch_value_and_grad(_torch_kmeans, (p.c, p.x), (0,))),
        Row("jax", "jax jit(value_and_grad)", jax_row),
    ]


def kmeans_hessian_rows(p: KMeans) -> list[Row]:
    """cost + J + diag(H), diag(H) as the Hessian-vector product with v = ones."""
    ones = np.ones_like(p.c)

    def hybridad_graph() -> Prepared:
        """hd.gradient and hd.jvp on tensor symbols, one TensorTape for [cost, J, H v]."""
        from hybridad.tape import TensorTape

        (n, d), k = p.x.shape, p.c.shape[0]
        tag = f"{n}_{k}_{d}"
        C, X = hd.tensor(f"gb_C_{tag}", p.c.shape), hd.tensor(f"gb_X_{tag}", p.x.shape)
        V = hd.tensor(f"gb_V_{tag}", p.c.shape)
        cost = kmeans_cost(C, X)
        J = hd.gradient(cost, C)
        exprs = [cost, J, hd.jvp(J, {C: V})]
        tape = TensorTape(exprs, [C, X, V])
        return Prepared(lambda: tape.evaluate(p.c, p.x, ones), lambda out: _floats(*out),
                        note=f"TensorTape of {hd.count_ops(exprs)} DAG ops", keep=tape)

    def hybridad_nested() -> Prepared:
        """jvp(value_and_grad(cost)) at C with tangent ones: ((cost, J), (J.1, H.1))."""
        hd.clear_kernel_cache()
        inner = value_and_grad(kmeans_cost)
        x = p.x

        def cost_and_J(c: Any) -> Any:
            return inner(c, x)

        def call() -> Any:
            return jvp(cost_and_J, (p.c,), (ones,))

        def normalize(out: Any) -> Arrays:
            (cost, J), (_, Hv) = out
            return _floats(cost, J, Hv)

        return Prepared(call, normalize, note="jvp(value_and_grad(cost)), tangent ones; "
                        "the nested grad stays at tensor level")

    def torch_row() -> Prepared:
        """Double backward: J with create_graph, then the VJP of J with ones (H = H^T)."""
        torch = import_tool("torch")
        c = torch.from_numpy(p.c.copy()).requires_grad_()
        x, v = torch.from_numpy(p.x), torch.from_numpy(ones)

        def call() -> Any:
            cost = _torch_kmeans(c, x)
            (J,) = torch.autograd.grad(cost, c, create_graph=True)
            (Hv,) = torch.autograd.grad(J, c, v)
            return cost, J, Hv

        return Prepared(call, lambda out: _torch_arrays(*out),
                        note=f"double backward, torch threads: {torch.get_num_threads()}")

    def jax_row() -> Prepared:
        jax, jnp = jax_float64()

        def cost(c: Any, x: Any) -> Any:
            return kmeans_cost(c, x, jnp, lambda d2: jnp.min(d2, axis=1))

        both = jax.value_and_grad(cost)

        @jax.jit
        def fn(c: Any, x: Any, v: Any) -> Any:
            (value, J), (_, Hv) = jax.jvp(lambda c: both(c, x), (c,), (v,))
            return value, J, Hv

        args = [jax.device_put(a) for a in (p.c, p.x, ones)]
        return Prepared(lambda: jax.block_until_ready(fn(*args)), lambda out: _floats(*out),
                        note="jit(jvp(value_and_grad)), float64; setup: compile")

    return [
        Row("hybridad", "hybridad hd.jvp(hd.gradient) graph", hybridad_graph,
            hybridad=True, reference=True),
        Row("hybridad", "hybridad func jvp(value_and_grad)", hybridad_nested, hybridad=True),
        Row("numpy", "numpy (hand-derived, closed form)",
            lambda: _numpy(lambda: kmeans_reference(p.c, p.x))),
        Row("torch", "torch eager double backward", torch_row),
        Row("jax", "jax jit(jvp(value_and_grad))", jax_row),
    ]


# -- e. the seeds' MLP ------------------------------------------------------------------------
def mlp_rows(widths: Sequence[int], batch: int, seed: int = 0) -> tuple[str, list[Row], Arrays]:
    problem = mlp_problem(widths, batch, seed)
    n_params = len(problem.params)
    args = (*problem.params, problem.x, problem.t)

    def loss(*a: Any, xp: Any = hd, relu: Callable[[Any], Any] = hd.relu) -> Any:
        return mlp_loss(xp, relu, a[:n_params], a[n_params], a[n_params + 1])

    def hybridad_row() -> Prepared:
        hd.clear_kernel_cache()
        return _hybridad(value_and_grad(loss, argnums=tuple(range(n_params))), args,
                         "x, t arguments; argnums = the six parameters")

    def torch_row() -> Prepared:
        torch = import_tool("torch")
        return _torch_value_and_grad(lambda *a: loss(*a, xp=torch, relu=torch.relu), args,
                                     range(n_params))

    def jax_row() -> Prepared:
        jax, jnp = jax_float64()
        return _jax_value_and_grad(lambda *a: loss(*a, xp=jnp, relu=jax.nn.relu), args,
                                   range(n_params))

    rows = [
        Row("hybridad", "hybridad value_and_grad", hybridad_row, hybridad=True,
            reference=True),
        Row("numpy", "numpy backprop (hand-derived)",
            lambda: _numpy(lambda: numpy_backprop(problem.params, problem.x, problem.t))),
        Row("torch", "torch eager autograd.grad", torch_row),
        Row("jax", "jax jit(value_and_grad)", jax_row),
    ]
    return problem.title, rows, numpy_backprop(problem.params, problem.x, problem.t)


# -- running ----------------------------------------------------------------------------------
def failed(row: Measurement) -> bool:
    """A hybridad row that raised or disagrees with the reference."""
    return row.hybridad and row.status in ("error", "MISMATCH")


def trace_route(transform: Any) -> str | None:
    """How a hybridad.func transform's (first) trace runs: element level (LLVM kernel),
    a compiled tensor kernel or the tensor tape; None when it has no trace."""
    cache = getattr(transform, "cache", None)
    if cache is None or not getattr(cache, "traces", None):
        return None
    traced = next(iter(cache.traces.values()))
    if traced.element_level:
        return "element level (LLVM)"
    try:             # hybridad internals: the runners of the tensor-level derivative DAGs
        runners = [v for k, v in traced._kernels.items()
                   if isinstance(k, tuple) and k and k[0] == "tensor"]
        compiled = [getattr(r, "_kernel", None) for r in runners]
    except Exception:  # noqa: BLE001  (an internal change must not stop the benchmark)
        return "tensor level"
    if compiled and all(compiled):
        return "tensor level (compiled tensor kernel)"
    if compiled and any(c is False for c in compiled):
        return "tensor level (tensor tape)"
    return "tensor level"


def annotate_level(rows: list[Measurement]) -> None:
    """Append to each hybridad.func row's note the route its trace took."""
    for row in rows:
        route = trace_route(row.prepared.keep) if row.prepared else None
        if route:
            row.note = f"{row.note}; {route}" if row.note else route


def run_section(name: str, title: str, rows: list[Row], reference: Arrays, repeat: int,
                target_s: float) -> Section:
    """Set every row up and check it against ``reference``; a failing numpy row raises
    MismatchError (the reference itself), any other failure only marks its row. Then the
    rows that ran are timed interleaved."""
    measurements = [prepare_row(row, reference) for row in rows]
    for m in measurements:
        if m.tool == "numpy" and m.status != "ok":
            raise MismatchError(f"{name}: {m.label}: {m.status}: {m.note}")
    annotate_level(measurements)
    time_interleaved(measurements, repeat, target_s)
    for m in measurements:
        m.prepared = None
    return Section(name, title, measurements)


def check_cell(row: Measurement) -> str:
    return "FAILED" if failed(row) else row.status


def _cells(row: Measurement) -> tuple[str, str]:
    """(check, note): a failed or skipped row's note says why."""
    note = row.note if row.status in ("ok", "skipped") else f"{row.status}: {row.note}"
    return check_cell(row), note


def table(section: Section, repeat: int) -> str:
    """benchmarks.tensors' table, with a wider tool column and the reason of a failed row."""
    return tensor_table(section, repeat, width=42, cells=_cells)


SUMMARY_TOOLS = ("numpy", "torch", "jax")


def summary(sections: Sequence[Section]) -> str:
    """One line per table: hybridad's reference row, then each peer's fastest correct row
    as a ratio to it (> 1: hybridad is faster)."""
    head = f"   {'table':<7}{'hybridad':>12}{'setup ms':>11}" + "".join(
        f"{tool:>10}" for tool in SUMMARY_TOOLS)
    lines = [("summary: hybridad's first row per call, and each peer's fastest correct row "
              "as a multiple of it"), head]
    for section in sections:
        ref = section.reference()
        cells = []
        for tool in SUMMARY_TOOLS:
            times = [r for r in section.rows if r.tool == tool and r.status == "ok"
                     and r.median is not None]
            best = min(times, key=lambda r: r.median, default=None)
            cells.append(fmt_ratio(section.ratio(best)) if best else "—")
        lines.append(f"   {section.name:<7}{median_cell(ref) if ref else '—':>12}"
                     f"{fmt_ms(ref.setup_s) if ref else '—':>11}"
                     + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)


def warm_up() -> None:
    """Import the peers and scipy's BLAS (which hybridad's compiled tensor kernels call for
    large matrix products), and make one small element-level and one tensor-level
    hybridad kernel, so that imports and one-time initialisation do not count as the first
    row's setup."""
    import_peers(("torch", "scipy.linalg.cython_blas"))
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((64, 512)), rng.standard_normal(64)
    for x in (rng.standard_normal(3), rng.standard_normal(512)):
        value_and_grad(lambda x: np.sum(np.exp(A[:, :x.size] @ x - b) ** 2)
                       + hd.logsumexp(x))(x)
    hd.clear_kernel_cache()


def sections_to_run(sizes: Sizes, seed: int
                    ) -> list[tuple[str, Callable[[], tuple[str, list[Row], Arrays]]]]:
    """(name, make) per table; ``make`` builds the problem, its rows and its reference
    lazily, so only one problem's arrays are alive at a time."""
    plan: list[tuple[str, Callable[[], tuple[str, list[Row], Arrays]]]] = []
    for k, n in enumerate(sizes.least_squares_n):
        def make_ls(n: int = n) -> tuple[str, list[Row], Arrays]:
            p = least_squares_problem(sizes.least_squares_m, n, seed)
            return p.title, least_squares_rows(p), least_squares_reference(p.x, p.A, p.b)
        plan.append((f"a{k + 1}", make_ls))
    for k, n in enumerate(sizes.logsumexp_n):
        def make_lse(n: int = n) -> tuple[str, list[Row], Arrays]:
            p = logsumexp_problem(n, seed)
            return p.title, logsumexp_rows(p), logsumexp_reference(p.x)
        plan.append((f"b{k + 1}", make_lse))
    for k, (d, kk, n) in enumerate(sizes.gmm):
        def make_gmm(d: int = d, kk: int = kk, n: int = n) -> tuple[str, list[Row], Arrays]:
            p = gmm_problem(d, kk, n, seed)
            return p.title, gmm_rows(p), gmm_reference(*p.args)
        plan.append((f"c{k + 1}", make_gmm))
    for k, (n, kk, d) in enumerate(sizes.kmeans):
        def make_km(n: int = n, kk: int = kk, d: int = d) -> tuple[str, list[Row], Arrays]:
            p = kmeans_problem(n, kk, d, seed)
            return p.title("cost + J"), kmeans_rows(p), kmeans_reference(p.c, p.x)[:2]

        def make_kmh(n: int = n, kk: int = kk, d: int = d) -> tuple[str, list[Row], Arrays]:
            p = kmeans_problem(n, kk, d, seed)
            return (p.title("cost + J + diag(H) (H v, v = ones)"), kmeans_hessian_rows(p),
                    kmeans_reference(p.c, p.x))
        plan += [(f"d{k + 1}", make_km), (f"d{k + 1}H", make_kmh)]
    plan.append(("e", lambda: mlp_rows(sizes.mlp_widths, sizes.mlp_batch, seed)))
    return plan


def run(quick: bool = False, repeat: int = 5, target_s: float | None = None,
        seed: int = 0, only: Sequence[str] | None = None, out: Any = None
        ) -> list[Section]:
    """Every table (or those named in ``only``, e.g. ["a1", "d2H"]); prints each as soon as
    it is measured (to ``out``, default stdout), then the summary and the hybridad
    failures; returns the sections."""
    out = out or sys.stdout
    target = target_s if target_s is not None else (0.002 if quick else 0.02)
    warm_up()
    sections = []
    for name, make in sections_to_run(QUICK if quick else FULL, seed):
        if only and name not in only:
            continue
        title, rows, reference = make()
        section = run_section(name, title, rows, reference, repeat, target)
        print(table(section, repeat) + "\n", file=out, flush=True)
        sections.append(section)
    print(summary(sections) + "\n", file=out, flush=True)
    print(failures(sections), file=out, flush=True)
    return sections


def failures(sections: Sequence[Section]) -> str:
    """The failed hybridad rows (error or mismatch) with their notes, and the hybridad rows
    that were not run."""
    bad = [(s.name, r) for s in sections for r in s.rows if failed(r)]
    skipped = [(s.name, r) for s in sections for r in s.rows
               if r.hybridad and r.status == "skipped"]
    lines = ["hybridad failures: none" if not bad else "hybridad failures:"]
    lines += [f"   {name}: {row.label}: {row.status}: {row.note}" for name, row in bad]
    if skipped:
        lines.append("hybridad rows not run:")
        lines += [f"   {name}: {row.label}: {row.note}" for name, row in skipped]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gradbench",
        description="GradBench-style problems (least squares, log-sum-exp, GMM, k-means, "
                    "the seeds' MLP) through hybridad.func, PyTorch and JAX (when "
                    "installed), checked against hand-derived numpy.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (median)")
    parser.add_argument("--target-ms", type=float, default=None,
                        help="length of one timed sample (default 20, 2 with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--only", default=None,
                        help="comma-separated tables to run, e.g. a1,c2,d2H,e")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run and print the tables; 0 when every hybridad row that ran matched its reference,
    1 when one failed (the failures are listed at the end)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    target = None if args.target_ms is None else args.target_ms / 1e3
    print(f"hybridad {hd.__version__}, numpy {np.__version__}; BLAS threads: "
          f"{blas_threads()}\n", flush=True)
    sections = run(args.quick, args.repeat, target, args.seed, only)
    print("\nevery row that ran was checked against the hand-derived numpy reference "
          "before timing")
    return 1 if any(failed(r) for s in sections for r in s.rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
