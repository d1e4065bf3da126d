"""Neural networks at tensor level: the seeds' networks as hd.tensor expressions.

Every weight, bias and batch is one tensor symbol, so a network is a DAG of a dozen
matrix operations whatever its widths, its gradient another small DAG, and evaluation
is whole-array numpy (BLAS). Each section checks itself and raises on a failed check:

1. Seed 002's MLP 784 -> 512 -> 512 -> 10 (batch 64, ReLU, MSE loss): ``hd.gradient``
   for every weight and bias and ``hd.vjp(L, H, 1.0)`` for the hidden activations
   (PyTorch's ``retain_grad``), against hand-written numpy backprop; the seed's checks on
   fc2, diff1 = |dL/dX - dL/dY W^T| and diff2 = |dL/dW - X^T dL/dY|; the symbolic vjp of
   one linear layer; build + differentiate seconds and DAG sizes.
2. Training that MLP by plain gradient descent on synthetic data (fixed seed): the graph
   is built and differentiated once, each step evaluates loss and gradients.
3. Seed 002's Net3 forward pass 4096 -> 8192 -> 8192 -> 8192 -> 1 on a batch of 256
   (1.3 GB of float64 weights), against the same forward pass in plain numpy.
4. Seed 000's Jacobians of a linear layer y = W x + b (W of shape (n_out, n_in), as
   torch.nn.functional.linear): for the input (= W), the bias (= I), the weights
   (delta_ij x_k, 3-D) and a batch (delta_ab W_ik, 4-D; per sample = W), by
   ``hd.jacobian`` in forward and reverse mode and by ``hybridad.func.jacfwd`` / ``jacrev``.
5. Seed 003's linear MLP 3 -> 128 -> 128 -> 2 at x = (0, 1, 2): the Jacobian equals
   W3 W2 W1 (shape (2, 3), in the seed's orientation W_i of shape (out, in)); rows by
   reverse mode (vjp with unit cotangents), columns by forward mode (jvp with unit
   tangents), and ``hd.jacobian``; the vjp with ones gives the column sums and the jvp
   with ones the row sums (the seed's torch.autograd.backward / forward-AD checks); with
   seed 002's row convention (y = x V, V = W^T) the same network has J^T = V1 V2 V3.

``--small`` (for CI, a few seconds) divides the MLP's widths by 16 (784 -> 49, 512 -> 32,
10 classes kept) and its batch by 8, Net3's widths by 64 and its batch by 8, and uses a
small layer (8 -> 4, batch 3) and hidden width 16 for sections 4 and 5.

    python examples/neural_networks.py             # the seeds' sizes (Net3 needs ~2 GB)
    python examples/neural_networks.py --small     # small sizes, a few seconds
    python examples/neural_networks.py --no-net3   # the seeds' sizes without Net3
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import hybridad as hd
from hybridad.func import jacfwd, jacrev, vmap

Array = np.ndarray
TOLERANCE = 1e-10            # hybridad against numpy backprop, relative to the largest entry


# -- helpers -------------------------------------------------------------------------------
def tensor(name: str, shape: tuple[int, ...]) -> hd.Symbol:
    """``hd.tensor`` named ``name`` plus its shape (``W2_512x512``). Symbols are interned
    by name, so with the sizes in the name the full and the --small networks can live in
    one process (the test suite builds both)."""
    return hd.tensor(f"{name}_{'x'.join(map(str, shape))}", shape)


def max_relative(actual: Any, expected: Any) -> float:
    """max |actual - expected| / max |expected| (shapes must agree)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected,
                                                                        dtype=np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape}, expected {expected.shape}")
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    worst = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    return worst / scale if scale else worst


def check(difference: float, what: str, tolerance: float = TOLERANCE) -> float:
    """Raise AssertionError naming ``what`` when ``difference`` exceeds ``tolerance``."""
    if not difference <= tolerance:
        raise AssertionError(f"{what}: difference {difference:.3g} > {tolerance:g}")
    return difference


def seconds(call: Any) -> tuple[Any, float]:
    """(call(), its wall time in seconds)."""
    start = time.perf_counter()
    out = call()
    return out, time.perf_counter() - start


def median_seconds(call: Any, repeat: int) -> float:
    """Median wall time of ``repeat`` calls."""
    return statistics.median(seconds(call)[1] for _ in range(max(1, repeat)))


def duration(seconds: float) -> str:
    """'12.3 ms' below a second, '1.23 s' above."""
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def shape_text(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


# -- 1. the seed 002 MLP --------------------------------------------------------------------
@dataclass(frozen=True)
class MLPSizes:
    """Widths (input, hidden..., output) and batch of an MLP."""

    widths: tuple[int, ...] = (784, 512, 512, 10)
    batch: int = 64

    @classmethod
    def seed(cls, small: bool = False) -> MLPSizes:
        """Seed 002's 784 -> 512 -> 512 -> 10, batch 64; ``small``: widths / 16 (the 10
        outputs kept), batch / 8."""
        if not small:
            return cls()
        return cls((784 // 16, 512 // 16, 512 // 16, 10), 64 // 8)

    @property
    def text(self) -> str:
        return " -> ".join(map(str, self.widths)) + f", batch {self.batch}"


@dataclass
class MLPGraph:
    """The MLP as tensor expressions and its derivatives (built once, evaluated often).

    Layer k computes A_k = H_{k-1} @ W_k + b_k, then H_k = relu(A_k) for the hidden
    layers (H_0 = X); the last layer's A is the output Z; L = mean((Z - T)^2). ``fc2``
    is seed 002's second layer: its input activation H_1 and output activation A_2."""

    sizes: MLPSizes
    X: hd.Symbol
    T: hd.Symbol
    weights: list[hd.Symbol]
    biases: list[hd.Symbol]
    pre: list[hd.Expr]                  # A_1, A_2, ..., Z
    hidden: list[hd.Expr]               # H_1, H_2, ...
    loss: hd.Expr
    grads: list[hd.Expr]                # dL/dW_1, dL/db_1, dL/dW_2, ... (parameter order)
    hidden_grads: list[hd.Expr]         # dL/dH_1, ... by hd.vjp (retain_grad)
    pre_grads: list[hd.Expr]            # dL/dA_1, ... by hd.vjp
    build_s: float = 0.0                # symbols + forward expression
    differentiate_s: float = 0.0        # hd.gradient and the hd.vjp's

    @property
    def params(self) -> list[hd.Symbol]:
        """W_1, b_1, W_2, b_2, ... (the order of ``grads``)."""
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    @property
    def param_names(self) -> list[str]:
        return [f"{kind}{k + 1}" for k in range(len(self.weights)) for kind in "Wb"]

    def env(self, params: Sequence[Array], x: Array, t: Array) -> dict:
        """The evaluation environment for parameter values in ``params`` order."""
        return {self.X: x, self.T: t, **dict(zip(self.params, params, strict=True))}

    def ops(self) -> dict[str, int]:
        """DAG sizes: the loss, all gradients, and loss + gradients + hidden adjoints."""
        return {"loss": hd.count_ops(self.loss), "gradients": hd.count_ops(self.grads),
                "all": hd.count_ops([self.loss, *self.grads, *self.hidden_grads,
                                     *self.pre_grads])}


def build_mlp(sizes: MLPSizes) -> MLPGraph:
    """The MLP of ``sizes`` from tensor symbols, its loss, and every derivative: the
    gradient for all weights and biases (one reverse accumulation) and the adjoints of
    the hidden activations H_k and pre-activations A_k (hd.vjp with cotangent 1.0)."""
    start = time.perf_counter()
    widths, batch = sizes.widths, sizes.batch
    X, T = tensor("nn_X", (batch, widths[0])), tensor("nn_T", (batch, widths[-1]))
    weights = [tensor(f"nn_W{k + 1}", (n_in, n_out))
               for k, (n_in, n_out) in enumerate(itertools.pairwise(widths))]
    biases = [tensor(f"nn_b{k + 1}", (n_out,)) for k, n_out in enumerate(widths[1:])]
    pre, hidden, H = [], [], X
    for k, (W, b) in enumerate(zip(weights, biases)):
        A = H @ W + b
        pre.append(A)
        if k < len(weights) - 1:
            H = hd.relu(A)
            hidden.append(H)
    loss = hd.mean((pre[-1] - T) ** 2)
    built = time.perf_counter()
    params = [p for pair in zip(weights, biases) for p in pair]
    grads = list(hd.gradient(loss, params))
    hidden_grads = [hd.vjp(loss, H, 1.0) for H in hidden]
    pre_grads = [hd.vjp(loss, A, 1.0) for A in pre]
    done = time.perf_counter()
    return MLPGraph(sizes, X, T, weights, biases, pre, hidden, loss, grads, hidden_grads,
                    pre_grads, built - start, done - built)


def init_params(sizes: MLPSizes, seed: int = 0) -> list[Array]:
    """He-initialised weights (normal, variance 2 / fan_in) and small random biases, in
    ``MLPGraph.params`` order."""
    rng = np.random.default_rng(seed)
    params: list[Array] = []
    for n_in, n_out in itertools.pairwise(sizes.widths):
        params.append(rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in))
        params.append(0.1 * rng.standard_normal(n_out))
    return params


def synthetic_data(sizes: MLPSizes, seed: int = 1) -> tuple[Array, Array]:
    """Inputs x ~ N(0, 1) and targets t = tanh(x A) of a fixed random teacher A (so the
    targets are a smooth function of the inputs that the MLP can fit)."""
    rng = np.random.default_rng(seed)
    n_in, n_out = sizes.widths[0], sizes.widths[-1]
    x = rng.standard_normal((sizes.batch, n_in))
    teacher = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
    return x, np.tanh(x @ teacher)


def numpy_backprop(params: Sequence[Array], x: Array, t: Array) -> dict[str, Any]:
    """Loss and gradients by hand with the seed's linear-layer rules: for Y = X W + b,
    dL/dX = dL/dY W^T, dL/dW = X^T dL/dY, dL/db = column sums of dL/dY; through ReLU
    dL/dA = dL/dH * (A > 0); the MSE gives dL/dZ = 2 (Z - T) / Z.size.

    Returns ``loss``, ``grads`` (parameter order), ``hidden_grads`` (dL/dH_k) and
    ``pre_grads`` (dL/dA_k, the last one dL/dZ)."""
    weights, biases = params[0::2], params[1::2]
    inputs, pre = [x], []
    for k, (W, b) in enumerate(zip(weights, biases)):
        A = inputs[-1] @ W + b
        pre.append(A)
        if k < len(weights) - 1:
            inputs.append(np.maximum(A, 0.0))
    residual = pre[-1] - t
    loss = float(np.mean(residual ** 2))
    dA = 2.0 * residual / residual.size
    grads: list[Array] = [np.empty(0)] * len(params)
    hidden_grads: list[Array] = [np.empty(0)] * (len(weights) - 1)
    pre_grads: list[Array] = [np.empty(0)] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        pre_grads[k] = dA
        grads[2 * k] = inputs[k].T @ dA                 # dL/dW = X^T dL/dY
        grads[2 * k + 1] = dA.sum(axis=0)                # dL/db
        if k:
            dH = dA @ weights[k].T                       # dL/dX = dL/dY W^T
            hidden_grads[k - 1] = dH
            dA = dH * (pre[k - 1] > 0)                   # through the ReLU
    return {"loss": loss, "grads": grads, "hidden_grads": hidden_grads,
            "pre_grads": pre_grads}


@dataclass
class LayerForms:
    """hybridad's vjp of one linear layer Y = X W + b with cotangent G, as text."""

    dX: str
    dW: str
    db: str


def layer_vjp_forms(batch: int, d1: int, d2: int) -> LayerForms:
    """The vjp's of Y = X W + b for X, W and b: ``G @ W.T``, ``X.T @ G``, ``sum(G, axis=0)``
    (the symbols carry their shapes in their names)."""
    X, W, b = tensor("X", (batch, d1)), tensor("W", (d1, d2)), tensor("b", (d2,))
    G = tensor("G", (batch, d2))
    Y = X @ W + b
    return LayerForms(str(hd.vjp(Y, X, G)), str(hd.vjp(Y, W, G)), str(hd.vjp(Y, b, G)))


@dataclass
class MLPCheck:
    """Section 1's results: hybridad's numbers, the differences to numpy backprop, the
    seed's diff1 / diff2 on fc2, and timings."""

    graph: MLPGraph
    loss: float
    max_grad_diff: dict[str, float]     # per parameter, relative to the largest entry
    max_hidden_diff: float              # dL/dH_k and dL/dA_k against numpy backprop
    diff1: float                        # sum |dL/dX - dL/dY W2^T| on fc2 (the seed's)
    diff2: float                        # sum |dL/dW2 - X^T dL/dY| on fc2
    forms: LayerForms
    evaluate_s: float                   # median hd.evaluate of loss + gradients
    numpy_s: float                      # median numpy_backprop
    values: dict[str, Any] = field(default_factory=dict, repr=False)


def check_mlp(sizes: MLPSizes, seed: int = 0, repeat: int = 3) -> MLPCheck:
    """Build and differentiate the MLP, evaluate every derivative at random parameters
    and data, and check them against :func:`numpy_backprop` (< 1e-10 relative) and the
    seed's fc2 identities (which hold exactly: hybridad's dL/dH_1 *is* dL/dA_2 @ W2.T)."""
    graph = build_mlp(sizes)
    params = init_params(sizes, seed)
    x, t = synthetic_data(sizes, seed + 1)
    env = graph.env(params, x, t)
    n_grads, n_hidden = len(graph.grads), len(graph.hidden_grads)
    exprs = [graph.loss, *graph.grads, *graph.hidden_grads, *graph.pre_grads]
    out = hd.evaluate(exprs, env)
    loss, grads = float(out[0]), out[1:1 + n_grads]
    hidden_grads = out[1 + n_grads:1 + n_grads + n_hidden]
    pre_grads = out[1 + n_grads + n_hidden:]
    ref = numpy_backprop(params, x, t)

    check(abs(loss - ref["loss"]) / abs(ref["loss"]), "loss != numpy")
    grad_diff = {name: check(max_relative(g, r), f"dL/d{name} != numpy backprop")
                 for name, g, r in zip(graph.param_names, grads, ref["grads"])}
    hidden_diff = max([check(max_relative(g, r), f"dL/dH{k + 1} != numpy backprop")
                       for k, (g, r) in enumerate(zip(hidden_grads, ref["hidden_grads"]))]
                      + [check(max_relative(g, r), f"dL/dA{k + 1} != numpy backprop")
                         for k, (g, r) in enumerate(zip(pre_grads, ref["pre_grads"]))])

    # The seed's retain_grad checks on fc2: X = H_1 (input activation), Y = A_2 (output).
    fc2_X = hd.evaluate(graph.hidden[0], env)
    dX, dY, W2, dW2 = hidden_grads[0], pre_grads[1], params[2], grads[2]
    diff1 = float(np.sum(np.abs(dX - dY @ W2.T)))
    diff2 = float(np.sum(np.abs(dW2 - fc2_X.T @ dY)))
    check(max_relative(dY @ W2.T, dX), "diff1: dL/dX != dL/dY W^T")
    check(max_relative(fc2_X.T @ dY, dW2), "diff2: dL/dW != X^T dL/dY")

    grad_exprs = [graph.loss, *graph.grads]
    evaluate_s = median_seconds(lambda: hd.evaluate(grad_exprs, env), repeat)
    numpy_s = median_seconds(lambda: numpy_backprop(params, x, t), repeat)
    forms = layer_vjp_forms(sizes.batch, sizes.widths[1], sizes.widths[2])
    return MLPCheck(graph, loss, grad_diff, hidden_diff, diff1, diff2, forms, evaluate_s,
                    numpy_s, {"grads": grads, "hidden_grads": hidden_grads,
                              "pre_grads": pre_grads, "reference": ref})


# -- 2. training ---------------------------------------------------------------------------
@dataclass
class TrainRun:
    """Losses of plain gradient descent (one per step, before the step's update)."""

    sizes: MLPSizes
    learning_rate: float
    losses: list[float]
    step_s: float                       # median seconds per step (evaluate + update)

    @property
    def first(self) -> float:
        return self.losses[0]

    @property
    def last(self) -> float:
        return self.losses[-1]


def train(sizes: MLPSizes, steps: int = 40, learning_rate: float = 0.1, seed: int = 0,
          graph: MLPGraph | None = None) -> TrainRun:
    """Gradient descent p <- p - lr dL/dp on fixed synthetic data: the graph is built and
    differentiated once (or reused), each step evaluates loss and gradients with
    ``hd.evaluate``. Raises if the loss does not decrease."""
    graph = graph or build_mlp(sizes)
    params = init_params(sizes, seed)
    x, t = synthetic_data(sizes, seed + 1)
    exprs = [graph.loss, *graph.grads]
    losses, times = [], []
    for _ in range(steps):
        start = time.perf_counter()
        loss, *grads = hd.evaluate(exprs, graph.env(params, x, t))
        params = [p - learning_rate * g for p, g in zip(params, grads)]
        times.append(time.perf_counter() - start)
        losses.append(float(loss))
    if not losses[-1] < losses[0]:
        raise AssertionError(f"training did not reduce the loss: {losses[0]:.6g} -> "
                             f"{losses[-1]:.6g}")
    return TrainRun(sizes, learning_rate, losses, statistics.median(times))


# -- 3. Net3 forward -----------------------------------------------------------------------
@dataclass(frozen=True)
class Net3Sizes:
    widths: tuple[int, ...] = (4096, 8192, 8192, 8192, 1)
    batch: int = 256

    @classmethod
    def seed(cls, small: bool = False) -> Net3Sizes:
        """Seed 002's Net3; ``small``: every width / 64 (the single output kept), batch / 8."""
        if not small:
            return cls()
        full = cls()
        return cls(tuple(max(1, w // 64) for w in full.widths), full.batch // 8)

    @property
    def weight_bytes(self) -> int:
        return 8 * sum(a * b for a, b in itertools.pairwise(self.widths))


@dataclass
class Net3Run:
    sizes: Net3Sizes
    build_s: float                      # symbols and the forward expression
    init_s: float                       # drawing the random weights
    evaluate_s: float                   # hd.evaluate of the forward pass
    numpy_s: float                      # the same forward pass in plain numpy
    max_diff: float                     # relative to the largest output
    output_shape: tuple[int, ...]
    ops: int


def net3_forward(sizes: Net3Sizes, seed: int = 0) -> Net3Run:
    """Net3: x -> relu(x W0) -> relu(. W1) -> relu(. W2) -> . W3 (no biases; weights
    standard normal, as the seed's MyLinear's torch.randn(in, out)); evaluated once by
    hybridad and once in plain numpy, checked equal."""
    start = time.perf_counter()
    X = tensor("net3_X", (sizes.batch, sizes.widths[0]))
    weights = [tensor(f"net3_W{k}", (a, b))
               for k, (a, b) in enumerate(itertools.pairwise(sizes.widths))]
    z: hd.Expr = X
    for k, W in enumerate(weights):
        z = z @ W
        if k < len(weights) - 1:
            z = hd.relu(z)
    build_s = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    (x, values), init_s = seconds(lambda: (
        rng.standard_normal((sizes.batch, sizes.widths[0])),
        [rng.standard_normal((a, b)) for a, b in itertools.pairwise(sizes.widths)]))
    env = {X: x, **dict(zip(weights, values))}
    out, evaluate_s = seconds(lambda: hd.evaluate(z, env))

    def plain() -> Array:
        h = x
        for k, w in enumerate(values):
            h = h @ w
            if k < len(values) - 1:
                h = np.maximum(h, 0.0)
        return h

    expected, numpy_s = seconds(plain)
    diff = check(max_relative(out, expected), "Net3 forward != numpy", 1e-12)
    return Net3Run(sizes, build_s, init_s, evaluate_s, numpy_s, diff, np.shape(out),
                   hd.count_ops(z))


# -- 4. seed 000: Jacobians of a linear layer -------------------------------------------------
@dataclass
class LayerJacobians:
    """The Jacobians of y = W x + b (and of a batch Y = X W^T + b), with the maximum
    difference of each route to its closed form."""

    n_in: int
    n_out: int
    batch: int
    shapes: dict[str, tuple[int, ...]]
    diffs: dict[str, float]             # route -> max |J - closed form| (relative)
    times: dict[str, float]             # route -> seconds (first call, incl. tracing)
    values: dict[str, Array] = field(default_factory=dict, repr=False)


def layer_jacobians(n_in: int, n_out: int, batch: int, seed: int = 0) -> LayerJacobians:
    """Seed 000's three Jacobians, each by ``hd.jacobian`` (forward and reverse mode, on
    tensor symbols) and by ``jacfwd`` / ``jacrev`` (on a Python function of numpy values):

    * input:   dy_i/dx_k = W_ik, shape (n_out, n_in);
    * bias:    dy_i/db_j = delta_ij, shape (n_out, n_out);
    * weights: dy_i/dW_jk = delta_ij x_k, shape (n_out, n_out, n_in);
    * batch:   dY_ai/dX_bk = delta_ab W_ik, shape (batch, n_out, batch, n_in), and per
      sample (``vmap(jacrev(f))``) W for every row, shape (batch, n_out, n_in)."""
    rng = np.random.default_rng(seed)
    Wv, bv = rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out)
    xv, Xv = rng.standard_normal(n_in), rng.standard_normal((batch, n_in))
    W, b = tensor("lin_W", (n_out, n_in)), tensor("lin_b", (n_out,))
    x, X = tensor("lin_x", (n_in,)), tensor("lin_X", (batch, n_in))
    y, Y = W @ x + b, X @ W.T + b
    env = {W: Wv, b: bv, x: xv, X: Xv}
    closed = {
        "input": Wv,
        "bias": np.eye(n_out),
        "weights": np.einsum("ij,k->ijk", np.eye(n_out), xv),
        "batch": np.einsum("ab,ik->aibk", np.eye(batch), Wv),
        "per sample": np.broadcast_to(Wv, (batch, n_out, n_in)),
    }
    symbolic = {"input": (y, x), "bias": (y, b), "weights": (y, W), "batch": (Y, X)}
    functions = {
        "input": (lambda v: Wv @ v + bv, xv),
        "bias": (lambda v: Wv @ xv + v, bv),
        "weights": (lambda w: w @ xv + bv, Wv),
        "batch": (lambda V: V @ Wv.T + bv, Xv),
    }
    diffs, times, values, shapes = {}, {}, {}, {}
    for what, (out, wrt) in symbolic.items():
        for mode in ("forward", "reverse"):
            J, built_s = seconds(lambda o=out, w=wrt, m=mode: hd.jacobian(o, w, mode=m))
            Jv, eval_s = seconds(lambda j=J: hd.evaluate(j, env))
            key = f"{what}: hd.jacobian {mode}"
            values[key], times[key] = Jv, built_s + eval_s
            diffs[key] = check(max_relative(Jv, closed[what]), key, 1e-14)
        function, at = functions[what]
        for name, transform in (("jacfwd", jacfwd), ("jacrev", jacrev)):
            key = f"{what}: {name}"
            Jv, times[key] = seconds(lambda t=transform, f=function, a=at: t(f)(a))
            values[key] = Jv
            diffs[key] = check(max_relative(Jv, closed[what]), key, 1e-14)
        shapes[what] = closed[what].shape
    Jv, times["per sample: vmap(jacrev)"] = seconds(
        lambda: vmap(jacrev(functions["input"][0]))(Xv))
    values["per sample: vmap(jacrev)"] = Jv
    diffs["per sample: vmap(jacrev)"] = check(max_relative(Jv, closed["per sample"]),
                                              "vmap(jacrev) per sample != W", 1e-14)
    shapes["per sample"] = closed["per sample"].shape
    return LayerJacobians(n_in, n_out, batch, shapes, diffs, times, values)


# -- 5. seed 003: W3 W2 W1 -------------------------------------------------------------------
@dataclass
class CompositionRun:
    """J of h(x) = W3 (W2 (W1 x + b1) + b2) + b3 by several routes, against W3 W2 W1."""

    sizes: tuple[int, int, int, int]
    product: Array                      # W3 W2 W1, shape (n_out, n_in)
    reverse: Array                      # rows: vjp with unit cotangents e_i
    forward: Array                      # columns: jvp with unit tangents e_j
    jacobian: Array | None              # hd.jacobian (element level), if computed
    row_convention: Array               # d(x V1 V2 V3)/dx with V = W^T: equals J^T
    vjp_ones: Array                     # = product.sum(axis=0) (column sums)
    jvp_ones: Array                     # = product.sum(axis=1) (row sums)
    reverse_text: str                   # hybridad's vjp expression for one row
    forward_text: str                   # hybridad's jvp expression for one column
    diffs: dict[str, float]
    jacobian_s: float = 0.0


def composition_jacobian(n_in: int = 3, hidden: int = 128, n_out: int = 2, seed: int = 0,
                         element_level: bool = True) -> CompositionRun:
    """Seed 003's check that the Jacobian of three linear layers is W3 W2 W1.

    In the seed's (PyTorch's) orientation W1 is (hidden, n_in), W2 (hidden, hidden), W3
    (n_out, hidden), so J = W3 W2 W1 has shape (n_out, n_in). Reverse mode builds row i
    as hd.vjp(h, x, e_i) = W1^T (W2^T (W3^T e_i)), forward mode column j as
    hd.jvp(h, {x: e_j}) = W3 (W2 (W1 e_j)); ``element_level`` also runs ``hd.jacobian``
    (which materialises every entry: seconds at hidden 128). In seed 002's row
    convention (y = x V + c with V_i = W_i^T) the Jacobian of the same network is read
    as d y_i / d x_j too, and equals (V1 V2 V3)^T = W3 W2 W1."""
    rng = np.random.default_rng(seed)
    shapes = [(hidden, n_in), (hidden, hidden), (n_out, hidden)]
    Wv = [rng.standard_normal(s) for s in shapes]
    bv = [rng.standard_normal(s[0]) for s in shapes]
    Ws = [tensor(f"mlp3_W{k + 1}", s) for k, s in enumerate(shapes)]
    bs = [tensor(f"mlp3_b{k + 1}", (s[0],)) for k, s in enumerate(shapes)]
    x = tensor("mlp3_x", (n_in,))
    h: hd.Expr = x
    for W, b in zip(Ws, bs):
        h = W @ h + b
    env = {x: np.arange(float(n_in)), **dict(zip(Ws, Wv)), **dict(zip(bs, bv))}
    product = Wv[2] @ Wv[1] @ Wv[0]

    eye_out, eye_in = np.eye(n_out), np.eye(n_in)
    rows = [hd.vjp(h, x, eye_out[i]) for i in range(n_out)]
    columns = [hd.jvp(h, {x: eye_in[j]}) for j in range(n_in)]
    reverse, forward = hd.evaluate([hd.stack(rows), hd.stack(columns, axis=1)], env)
    vjp_ones, jvp_ones = hd.evaluate([hd.vjp(h, x, np.ones(n_out)),
                                      hd.jvp(h, {x: np.ones(n_in)})], env)

    # Seed 002's row convention: y = x V + c with V_i = W_i^T (shape (in, out)).
    Vs = [tensor(f"mlp3_V{k + 1}", s[::-1]) for k, s in enumerate(shapes)]
    y: hd.Expr = x
    for V, b in zip(Vs, bs):
        y = y @ V + b
    env_rows = {**env, **{V: w.T for V, w in zip(Vs, Wv)}}
    row_rows = [hd.vjp(y, x, eye_out[i]) for i in range(n_out)]
    row_convention = hd.evaluate(hd.stack(row_rows), env_rows)
    V_product = Wv[0].T @ Wv[1].T @ Wv[2].T                      # V1 V2 V3, (n_in, n_out)

    # Sums of `hidden` products in different orders: compare relative to the largest entry.
    tol = 1e-13
    diffs = {
        "reverse (vjp rows)": check(max_relative(reverse, product), "vjp rows != W3 W2 W1",
                                    tol),
        "forward (jvp columns)": check(max_relative(forward, product),
                                       "jvp columns != W3 W2 W1", tol),
        "vjp(ones) = column sums": check(max_relative(vjp_ones, product.sum(axis=0)),
                                         "vjp with ones != column sums", tol),
        "jvp(ones) = row sums": check(max_relative(jvp_ones, product.sum(axis=1)),
                                      "jvp with ones != row sums", tol),
        "row convention = (V1 V2 V3)^T": check(max_relative(row_convention, V_product.T),
                                               "row convention J != (V1 V2 V3)^T", tol),
    }
    jacobian, jacobian_s = None, 0.0
    if element_level:
        start = time.perf_counter()
        jacobian = hd.evaluate(hd.jacobian(h, x), env)
        jacobian_s = time.perf_counter() - start
        diffs["hd.jacobian"] = check(max_relative(jacobian, product),
                                     "hd.jacobian != W3 W2 W1", tol)
    if product.shape != (n_out, n_in):
        raise AssertionError(f"W3 W2 W1 has shape {product.shape}, expected "
                             f"{(n_out, n_in)}")
    return CompositionRun((n_in, hidden, hidden, n_out), product, reverse, forward,
                          jacobian, row_convention, vjp_ones, jvp_ones, str(rows[0]),
                          str(columns[0]), diffs, jacobian_s)


# -- printing -------------------------------------------------------------------------------
def matrix_text(a: Array, indent: str = "     ") -> str:
    text = np.array2string(np.asarray(a), precision=4, suppress_small=True)
    return "\n".join(indent + line for line in text.splitlines())


def shorten(text: str, width: int = 150) -> str:
    return text if len(text) <= width else text[:width - 5] + " ..."


def print_mlp(run: MLPCheck) -> None:
    graph = run.graph
    ops = graph.ops()
    print(f"1. Seed 002's MLP {graph.sizes.text}, ReLU, MSE loss (tensor symbols)")
    print(f"   build {graph.build_s * 1e3:.2f} ms, differentiate (hd.gradient for "
          f"{len(graph.params)} parameters + {len(graph.hidden_grads) + len(graph.pre_grads)}"
          f" hd.vjp) {graph.differentiate_s * 1e3:.2f} ms")
    print(f"   DAG sizes: loss {ops['loss']} ops, loss + all gradients "
          f"{hd.count_ops([graph.loss, *graph.grads])} ops (gradients alone "
          f"{ops['gradients']}), with the hidden adjoints {ops['all']} ops")
    print(f"   loss L = {run.loss:.12g}")
    print("   hybridad against hand-written numpy backprop (max |difference| / max |entry|):")
    print("     " + ", ".join(f"dL/d{name} {d:.1e}" for name, d in run.max_grad_diff.items()))
    print(f"     hidden adjoints dL/dH_k, dL/dA_k (hd.vjp(L, H, 1.0), retain_grad): "
          f"{run.max_hidden_diff:.1e}")
    print(f"   the seed's fc2 checks: diff1 = sum|dL/dX - dL/dY W^T| = {run.diff1}, "
          f"diff2 = sum|dL/dW - X^T dL/dY| = {run.diff2}")
    print(f"   dL/dW3 = {shorten(str(graph.grads[4]))}")
    print(f"   dL/dH1 = {shorten(str(graph.hidden_grads[0]))}")
    print("   one linear layer Y = X @ W + b with output cotangent G: hd.vjp gives")
    print(f"     dX = {run.forms.dX}    dW = {run.forms.dW}    db = {run.forms.db}")
    print(f"   loss + gradients: hd.evaluate {run.evaluate_s * 1e3:.2f} ms, numpy backprop "
          f"{run.numpy_s * 1e3:.2f} ms (median)")


def print_training(run: TrainRun) -> None:
    steps = len(run.losses)
    print(f"\n2. Gradient descent on the MLP ({run.sizes.text}), {steps} steps, lr "
          f"{run.learning_rate:g}, synthetic data t = tanh(x A)")
    marks = sorted({0, steps // 4, steps // 2, 3 * steps // 4, steps - 1})
    print("   " + ", ".join(f"step {k}: {run.losses[k]:.6f}" for k in marks))
    print(f"   loss {run.first:.6f} -> {run.last:.6f} ({run.last / run.first:.1%} of the "
          f"first); {run.step_s * 1e3:.2f} ms per step (hd.evaluate + update)")


def print_net3(run: Net3Run) -> None:
    sizes = run.sizes
    size = sizes.weight_bytes
    memory = f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.2f} MB"
    print(f"\n3. Net3 forward {' -> '.join(map(str, sizes.widths))}, batch {sizes.batch} "
          f"({memory} of float64 weights, {run.ops} DAG ops)")
    print(f"   build {run.build_s * 1e3:.2f} ms, weights drawn in {duration(run.init_s)}")
    print(f"   hd.evaluate {duration(run.evaluate_s)}, plain numpy {duration(run.numpy_s)}; "
          f"output {shape_text(run.output_shape)}, max relative difference "
          f"{run.max_diff:.1e}")


def print_layer(run: LayerJacobians) -> None:
    print(f"\n4. Seed 000's Jacobians of y = W x + b, W {shape_text((run.n_out, run.n_in))}, "
          f"and of a batch Y = X W^T + b, X {shape_text((run.batch, run.n_in))}")
    closed = {"input": "W", "bias": "I", "weights": "delta_ij x_k",
              "batch": "delta_ab W_ik", "per sample": "W for every row"}
    for what, shape in run.shapes.items():
        routes = [k for k in run.diffs if k.startswith(f"{what}: ")]
        cells = ", ".join(f"{k.split(': ')[1]} {run.diffs[k]:.0e} "
                          f"({run.times[k] * 1e3:.0f} ms)" for k in routes)
        print(f"   {what:<10} {shape_text(shape):<16} == {closed[what]:<15} {cells}")
    print("   (differences to the closed form; times include tracing / building the "
          "Jacobian)")


def print_composition(run: CompositionRun) -> None:
    print(f"\n5. Seed 003's linear MLP {' -> '.join(map(str, run.sizes))} at x = "
          f"{tuple(range(run.sizes[0]))}: J = W3 W2 W1, shape {shape_text(run.product.shape)}")
    print(f"   reverse, row 0:    {run.reverse_text}")
    print(f"   forward, column 0: {run.forward_text}")
    print(matrix_text(run.product))
    for name, diff in run.diffs.items():
        print(f"   {name:<32} max relative difference {diff:.1e}")
    if run.jacobian is not None:
        print(f"   (hd.jacobian materialises every entry at element level: "
              f"{run.jacobian_s:.2f} s)")
    print(f"   vjp(ones) = {np.round(run.vjp_ones, 4)}, jvp(ones) = "
          f"{np.round(run.jvp_ones, 4)}")


# -- main -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true",
                        help="small sizes (a few seconds; used by the tests)")
    parser.add_argument("--no-net3", action="store_true",
                        help="skip Net3 (its full size needs ~2 GB of memory)")
    parser.add_argument("--steps", type=int, default=40,
                        help="gradient descent steps (default 40)")
    parser.add_argument("--lr", type=float, default=0.1,
                        help="learning rate (default 0.1)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="median of N evaluations for the timings (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run sections 1-5, print them; return 0 (a failed check raises)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.steps < 2 or args.repeat < 1:
        parser.error("--steps must be at least 2 and --repeat at least 1")
    sizes = MLPSizes.seed(args.small)
    mlp = check_mlp(sizes, args.seed, args.repeat)
    print_mlp(mlp)
    print_training(train(sizes, args.steps, args.lr, args.seed, mlp.graph))
    if args.no_net3:
        print("\n3. Net3: skipped (--no-net3)")
    else:
        print_net3(net3_forward(Net3Sizes.seed(args.small), args.seed))
    n_in, n_out, batch = (8, 4, 3) if args.small else (64, 16, 8)
    print_layer(layer_jacobians(n_in, n_out, batch, args.seed))
    print_composition(composition_jacobian(hidden=16 if args.small else 128, seed=args.seed))
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
