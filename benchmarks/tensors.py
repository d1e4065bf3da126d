"""Tensor-level benchmarks: the seed MLP's loss and gradients, and vectorised Rosenbrock.

a. Seed 002's MLP 784 -> 512 -> 512 -> 10 (batch 64, ReLU, MSE loss): the loss and the
   gradients of all six weights and biases per call, by hybridad
   (``hybridad.func.value_and_grad`` with ``argnums`` over the parameters, and
   ``hd.evaluate`` of a graph built once from ``hd.tensor`` symbols), hand-written numpy
   backprop (the reference), PyTorch eager (``torch.autograd.grad``, float64) and
   ``jax.jit(jax.value_and_grad)`` (float64), the last two only when installed.
b. The gradient of the vectorised Rosenbrock function at n = 10, 1000 and 10**6 by
   ``hybridad.func.grad``, ``scipy.optimize.rosen_der``, ``jax.jit(jax.grad)`` and
   torch eager autograd, against a hand-written numpy gradient (the reference); and the
   size of hybridad's traced DAG (``hd.count_ops``), which does not depend on n.

Every row is set up, called once (the "setup" column: for hybridad tracing, building
and differentiating the DAG, compiling kernels when the trace is small enough to run at
element level, and the first evaluation; for JAX the jit compile) and its result checked
against the numpy reference (rtol 1e-9, atol scaled by the largest entry) before any
timing; a mismatch raises :class:`MismatchError`. Rows are then timed round-robin
(``benchmarks.measure.time_interleaved``): medians of ``--repeat`` samples, ratios to
hybridad's ``value_and_grad`` / ``grad`` row.

    python -m benchmarks.tensors                  # the sizes above, median of 5
    python -m benchmarks.tensors --repeat 9
    python -m benchmarks.tensors --quick --repeat 1      # tiny sizes (the tests)

numpy's BLAS threads are fixed when numpy loads: set OPENBLAS_NUM_THREADS (or
OMP_NUM_THREADS) in the environment to change them; the header prints the setting.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

import hybridad as hd
from hybridad.func import grad, value_and_grad

from .measure import Measurement, Prepared, Row, Skip, prepare_row, time_interleaved
from .report import fmt_ms, fmt_ratio, fmt_us

Arrays = tuple[np.ndarray, ...]
MLP_WIDTHS, MLP_BATCH = (784, 512, 512, 10), 64
# Quick sizes stay above hybridad.func's element-level limit (Traced.ELEMENT_LIMIT, the
# summed sizes of the traced DAG's nodes), so that they take the tensor-level route of the
# full sizes: a smaller MLP is scalarised and compiled to LLVM, which takes many seconds.
QUICK_MLP_WIDTHS, QUICK_MLP_BATCH = (196, 256, 256, 10), 16
ROSENBROCK_SIZES = (10, 1000, 10**6)
QUICK_ROSENBROCK_SIZES = (10, 100, 10_000)
N_PARAMS = 2 * (len(MLP_WIDTHS) - 1)          # W1, b1, W2, b2, W3, b3


class MismatchError(AssertionError):
    """A tool's result differs from the numpy reference (or a required row failed)."""


def import_tool(name: str) -> Any:
    """A peer's module, or Skip when it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise Skip(f"{name} is not installed") from None


@lru_cache(maxsize=1)
def jax_float64() -> tuple[Any, Any]:
    """jax and jax.numpy with float64 switched on (as benchmarks/peers.py does)."""
    jax = import_tool("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    return jax, jnp


def import_peers(names: Sequence[str]) -> None:
    """Import ``names`` and JAX (when installed) once, so that their import time does not
    count as the first row's setup."""
    for name in names:
        try:
            import_tool(name)
        except Skip:
            pass
    try:
        jax_float64()
    except Skip:
        pass


def blas_threads() -> str:
    """The BLAS thread setting from the environment ('default' when unset)."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name):
            return f"{name}={os.environ[name]}"
    return f"default (unset; {os.cpu_count()} cores)"


# -- a. the seed MLP ------------------------------------------------------------------------
@dataclass
class MLPProblem:
    """Parameters [W1, b1, W2, b2, W3, b3] (W_k of shape (in, out), seed 002's Y = X W),
    a batch x and targets t."""

    widths: tuple[int, ...]
    batch: int
    params: list[np.ndarray]
    x: np.ndarray
    t: np.ndarray

    @property
    def title(self) -> str:
        return (f"MLP {' -> '.join(map(str, self.widths))}, batch {self.batch}: loss + "
                f"gradients of {len(self.params)} parameters")


def mlp_problem(widths: Sequence[int], batch: int, seed: int = 0) -> MLPProblem:
    """He-initialised parameters, x ~ N(0, 1), targets t = tanh(x A) of a random A."""
    rng = np.random.default_rng(seed)
    params: list[np.ndarray] = []
    for n_in, n_out in itertools.pairwise(widths):
        params += [rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in),
                   0.1 * rng.standard_normal(n_out)]
    x = rng.standard_normal((batch, widths[0]))
    t = np.tanh(x @ (rng.standard_normal((widths[0], widths[-1])) / np.sqrt(widths[0])))
    return MLPProblem(tuple(widths), batch, params, x, t)


def mlp_loss(xp: Any, relu: Callable[[Any], Any], params: Sequence[Any], x: Any,
             t: Any) -> Any:
    """mean((Z - T)^2) of the MLP, written once for hybridad, jax.numpy and torch."""
    h = x
    n_layers = len(params) // 2
    for k in range(n_layers):
        h = h @ params[2 * k] + params[2 * k + 1]
        if k < n_layers - 1:
            h = relu(h)
    return xp.mean((h - t) ** 2)


def numpy_backprop(params: Sequence[np.ndarray], x: np.ndarray, t: np.ndarray) -> Arrays:
    """(loss, dL/dW1, dL/db1, ...) by hand: for Y = X W + b, dL/dX = dL/dY W^T,
    dL/dW = X^T dL/dY, dL/db = column sums of dL/dY; ReLU passes dL/dA = dL/dH (A > 0)."""
    n_layers = len(params) // 2
    inputs, pre = [x], []
    for k in range(n_layers):
        a = inputs[-1] @ params[2 * k] + params[2 * k + 1]
        pre.append(a)
        if k < n_layers - 1:
            inputs.append(np.maximum(a, 0.0))
    residual = pre[-1] - t
    loss = np.mean(residual ** 2)
    d = 2.0 * residual / residual.size
    grads: list[np.ndarray] = [np.empty(0)] * len(params)
    for k in range(n_layers - 1, -1, -1):
        grads[2 * k], grads[2 * k + 1] = inputs[k].T @ d, d.sum(axis=0)
        if k:
            d = (d @ params[2 * k].T) * (pre[k - 1] > 0)
    return (np.asarray(loss), *grads)


def mlp_rows(problem: MLPProblem) -> list[Row]:
    """hybridad (value_and_grad; hd.evaluate of a prebuilt graph), numpy, torch, jax."""
    return [
        Row("hybridad", "hybridad value_and_grad", lambda: _hybridad_mlp(problem),
            hybridad=True, reference=True),
        Row("hybridad", "hybridad value_and_grad, x t closed over",
            lambda: _hybridad_mlp(problem, close_over_data=True), hybridad=True),
        Row("hybridad", "hybridad hd.evaluate (graph built once)",
            lambda: _hybridad_mlp_graph(problem), hybridad=True),
        Row("numpy", "numpy backprop (hand-written)", lambda: _numpy_mlp(problem)),
        Row("torch", "torch eager autograd.grad", lambda: _torch_mlp(problem)),
        Row("jax", "jax jit(value_and_grad)", lambda: _jax_mlp(problem)),
    ]


def _as_float_arrays(out: Any) -> Arrays:
    value, grads = out
    return (np.asarray(value, dtype=np.float64),
            *(np.asarray(g, dtype=np.float64) for g in grads))


def _hybridad_mlp(problem: MLPProblem, close_over_data: bool = False) -> Prepared:
    """value_and_grad(loss, argnums=(0, ..., 5)): its first call (in the setup) traces
    the arrays as tensor symbols, builds and differentiates the DAG; later calls only
    evaluate it (numpy/BLAS at tensor level). With ``close_over_data`` the batch x and
    targets t are constants of the function instead of arguments (hybridad's tensor-level
    trace differentiates with respect to every argument, argnums only selects what is
    returned, so as arguments x and t cost an extra dL/dX product)."""
    hd.clear_kernel_cache()
    argnums = tuple(range(len(problem.params)))
    if close_over_data:
        x, t = problem.x, problem.t
        transformed = value_and_grad(lambda *params: mlp_loss(hd, hd.relu, params, x, t),
                                     argnums=argnums)
        args: tuple[np.ndarray, ...] = tuple(problem.params)
        note = "x, t constants of the trace"
    else:
        def loss(*args: Any) -> Any:
            *params, x, t = args
            return mlp_loss(hd, hd.relu, params, x, t)

        transformed = value_and_grad(loss, argnums=argnums)
        args = (*problem.params, problem.x, problem.t)
        note = "setup: trace + differentiate + first call"
    return Prepared(lambda: transformed(*args), _as_float_arrays, note=note,
                    keep=transformed)


def _hybridad_mlp_graph(problem: MLPProblem) -> Prepared:
    """The same loss from hd.tensor symbols (named after their shapes), hd.gradient once,
    then hd.evaluate of [L, dL/dW1, ...] per call."""
    tag = "x".join(map(str, problem.widths)) + f"_b{problem.batch}"
    symbols = [hd.tensor(f"bench_{name}{k // 2 + 1}_{tag}", p.shape)
               for k, (name, p) in enumerate(zip("Wb" * len(problem.params),
                                                 problem.params))]
    X = hd.tensor(f"bench_X_{tag}", problem.x.shape)
    T = hd.tensor(f"bench_T_{tag}", problem.t.shape)
    loss = mlp_loss(hd, hd.relu, symbols, X, T)
    exprs = [loss, *hd.gradient(loss, symbols)]
    env = {X: problem.x, T: problem.t, **dict(zip(symbols, problem.params))}

    def call() -> list[Any]:
        return hd.evaluate(exprs, env)

    return Prepared(call, lambda out: tuple(np.asarray(v, dtype=np.float64) for v in out),
                    note=f"{hd.count_ops(exprs)} DAG ops")


def mlp_memory_notes(problem: MLPProblem) -> list[str]:
    """Bytes a reverse sweep holds: hybridad's TensorTape for [L, dL/dparams] (its peak of
    live intermediates without the returned gradients, from the static shapes, views
    counted once), against what torch autograd saves for backward (the distinct storages
    the forward pass hands to saved-tensor hooks; activations are those that are not
    leaves, i.e. neither the batch nor a weight)."""
    from hybridad.tape import TensorTape

    tag = "x".join(map(str, problem.widths)) + f"_b{problem.batch}"
    symbols = [hd.tensor(f"mem_p{k}_{tag}", p.shape) for k, p in enumerate(problem.params)]
    X, T = hd.tensor(f"mem_X_{tag}", problem.x.shape), hd.tensor(f"mem_T_{tag}",
                                                                   problem.t.shape)
    loss = mlp_loss(hd, hd.relu, symbols, X, T)
    tape = TensorTape([loss, *hd.gradient(loss, symbols)], [*symbols, X, T])
    notes = [f"hybridad reverse sweep (TensorTape): peak {tape.peak_bytes() / 1e6:.2f} MB "
             f"with the returned gradients, {tape.peak_bytes(outputs=False) / 1e6:.2f} MB "
             "without them"]
    try:
        torch = import_tool("torch")
    except Skip:
        return notes
    params = [torch.from_numpy(p.copy()).requires_grad_() for p in problem.params]
    saved: dict[int, tuple[int, bool]] = {}

    def pack(tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        saved[storage.data_ptr()] = (storage.nbytes(), tensor.grad_fn is None)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        mlp_loss(torch, torch.relu, params, torch.from_numpy(problem.x),
                 torch.from_numpy(problem.t))
    total = sum(n for n, _ in saved.values())
    activations = sum(n for n, leaf in saved.values() if not leaf)
    notes.append(f"torch saves for backward {total / 1e6:.2f} MB, of which activations "
                 f"{activations / 1e6:.2f} MB (the rest: the batch and weights)")
    return notes


def _numpy_mlp(problem: MLPProblem) -> Prepared:
    return Prepared(lambda: numpy_backprop(problem.params, problem.x, problem.t), tuple,
                    note="the reference")


def _torch_mlp(problem: MLPProblem) -> Prepared:
    """Forward pass and torch.autograd.grad each call, float64 on the CPU."""
    torch = import_tool("torch")
    params = [torch.from_numpy(p.copy()).requires_grad_() for p in problem.params]
    x, t = torch.from_numpy(problem.x), torch.from_numpy(problem.t)

    def call() -> Any:
        loss = mlp_loss(torch, torch.relu, params, x, t)
        return loss.detach(), torch.autograd.grad(loss, params)

    def normalize(out: Any) -> Arrays:
        value, grads = out
        return _as_float_arrays((value.numpy(), [g.numpy() for g in grads]))

    return Prepared(call, normalize, note=f"float64, torch threads: {torch.get_num_threads()}")


def _jax_mlp(problem: MLPProblem) -> Prepared:
    """jax.jit(jax.value_and_grad(loss, argnums=(0, ..., 5))), inputs on the device
    once; each call blocks until ready. The setup includes the jit compile."""
    jax, jnp = jax_float64()

    def loss(*args: Any) -> Any:
        *params, x, t = args
        return mlp_loss(jnp, jax.nn.relu, params, x, t)

    fn = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(len(problem.params)))))
    args = [jax.device_put(a) for a in (*problem.params, problem.x, problem.t)]
    return Prepared(lambda: jax.block_until_ready(fn(*args)), _as_float_arrays,
                    note="jit, float64; setup: compile")


# -- b. Rosenbrock --------------------------------------------------------------------------
def rosenbrock(x: Any, xp: Any) -> Any:
    """sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, for hybridad, jax.numpy and torch."""
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosenbrock_gradient(x: np.ndarray) -> np.ndarray:
    """The gradient by hand (the reference): with r_i = x_{i+1} - x_i^2,
    df/dx_i = -400 x_i r_i - 2 (1 - x_i) for i < n - 1, plus 200 r_{i-1} for i > 0."""
    r = x[1:] - x[:-1] ** 2
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * r - 2.0 * (1.0 - x[:-1])
    g[1:] += 200.0 * r
    return g


@dataclass
class RosenbrockProblem:
    n: int
    x: np.ndarray

    @property
    def title(self) -> str:
        return f"Rosenbrock gradient, n = {self.n:,}"


def rosenbrock_problem(n: int, seed: int = 0) -> RosenbrockProblem:
    return RosenbrockProblem(n, np.random.default_rng(seed + n).uniform(-1.5, 1.5, n))


@dataclass
class DagSize:
    """hybridad's trace of Rosenbrock at one n: tensor-level op counts (the function and
    its gradient DAG) and whether it ran at element level (then the scalar op count)."""

    n: int
    function_ops: int
    gradient_ops: int
    element_level: bool
    element_ops: int | None
    function_text: str


def rosenbrock_rows(problem: RosenbrockProblem) -> list[Row]:
    return [
        Row("hybridad", "hybridad grad", lambda: _hybridad_rosenbrock(problem),
            hybridad=True, reference=True),
        Row("scipy", "scipy.optimize.rosen_der", lambda: _scipy_rosenbrock(problem)),
        Row("numpy", "numpy gradient (hand-written)",
            lambda: Prepared(lambda: rosenbrock_gradient(problem.x), lambda g: (g,),
                             note="the reference")),
        Row("torch", "torch eager autograd.grad", lambda: _torch_rosenbrock(problem)),
        Row("jax", "jax jit(grad)", lambda: _jax_rosenbrock(problem)),
        Row("c", "C gcc -O3 (hand-written)", lambda: _c_rosenbrock(problem)),
    ]


def _c_rosenbrock(problem: RosenbrockProblem) -> Prepared:
    """benchmarks/c_reference/rosenbrock.c (value and gradient in one loop), fresh
    output arrays per call, as hybridad's."""
    from .peers import c_library

    function, seconds = c_library()
    x = problem.x

    def call() -> np.ndarray:
        value, gradient = np.empty(()), np.empty(x.shape)
        function(x.ctypes.data, 1, x.size, value.ctypes.data, gradient.ctypes.data)
        return gradient

    return Prepared(call, lambda g: (g,), setup_s=seconds, note="setup: gcc")


def dag_size(transformed: Any, n: int) -> DagSize:
    """Op counts of the (only) trace in ``transformed.cache.traces``."""
    traced = next(iter(transformed.cache.traces.values()))
    function = traced.parts[0]
    gradient = hd.gradient(function, traced.tensor_symbols[0])
    return DagSize(n, hd.count_ops(function), hd.count_ops(gradient),
                   traced.element_level,
                   hd.count_ops(traced.outputs) if traced.element_level else None,
                   str(function))


def _hybridad_rosenbrock(problem: RosenbrockProblem) -> Prepared:
    """grad(rosenbrock): the first call (in the setup) traces x as one tensor symbol and
    compiles (an LLVM kernel at element level for small n; the tensor gradient DAG,
    evaluated by numpy, for large n). ``keep`` holds the transform (see :func:`dag_size`)."""
    hd.clear_kernel_cache()
    transformed = grad(lambda x: rosenbrock(x, hd))
    x = problem.x
    return Prepared(lambda: transformed(x), lambda g: (g,),
                    note="setup: trace + compile + first call", keep=transformed)


def _scipy_rosenbrock(problem: RosenbrockProblem) -> Prepared:
    optimize = import_tool("scipy.optimize")
    return Prepared(lambda: optimize.rosen_der(problem.x), lambda g: (g,))


def _torch_rosenbrock(problem: RosenbrockProblem) -> Prepared:
    torch = import_tool("torch")
    x = torch.from_numpy(problem.x.copy()).requires_grad_()

    def call() -> Any:
        return torch.autograd.grad(rosenbrock(x, torch), x)[0]

    return Prepared(call, lambda g: (g.numpy().astype(np.float64),),
                    note=f"float64, torch threads: {torch.get_num_threads()}")


def _jax_rosenbrock(problem: RosenbrockProblem) -> Prepared:
    jax, jnp = jax_float64()
    fn = jax.jit(jax.grad(lambda x: rosenbrock(x, jnp)))
    x = jax.device_put(problem.x)
    return Prepared(lambda: jax.block_until_ready(fn(x)),
                    lambda g: (np.asarray(g, dtype=np.float64),),
                    note="jit, float64; setup: compile")


# -- running --------------------------------------------------------------------------------
@dataclass
class Section:
    """One problem's measured rows."""

    name: str
    title: str
    rows: list[Measurement]
    notes: list[str] = field(default_factory=list)

    def row(self, label: str) -> Measurement:
        return next(r for r in self.rows if r.label == label)

    def reference(self) -> Measurement | None:
        """The hybridad row marked ``reference`` (value_and_grad / grad) if it ran."""
        return next((r for r in self.rows if r.reference and r.median is not None), None)

    def ratio(self, row: Measurement) -> float | None:
        ref = self.reference()
        if ref is None or row.median is None:
            return None
        return row.median / ref.median


REQUIRED_TOOLS = ("hybridad", "numpy", "scipy")


def run_section(name: str, title: str, rows: list[Row], reference: Arrays, repeat: int,
                target_s: float,
                inspect: Callable[[list[Measurement]], None] | None = None) -> Section:
    """Set every row up and check it against ``reference`` (raising MismatchError on a
    difference, or when a hybridad / numpy / scipy row fails), call ``inspect`` on the
    set-up rows, then time them interleaved."""
    measurements = [prepare_row(row, reference) for row in rows]
    for m in measurements:
        if m.status == "MISMATCH":
            raise MismatchError(f"{name}: {m.label} differs from the numpy reference: "
                                f"{m.note}")
        if m.tool in REQUIRED_TOOLS and m.status != "ok":
            raise MismatchError(f"{name}: {m.label} did not run: {m.status}: {m.note}")
    if inspect is not None:
        inspect(measurements)
    time_interleaved(measurements, repeat, target_s)
    for m in measurements:
        m.prepared = None
    return Section(name, title, measurements)


def median_cell(row: Measurement) -> str:
    """A row's median per call, in us or ms ("—" when it was not timed)."""
    if row.median is None:
        return "—"
    return f"{fmt_us(row.median)} us" if row.median < 1e-3 else f"{fmt_ms(row.median)} ms"


def _cells(row: Measurement) -> tuple[str, str]:
    """(check, note) of a row: a failed row's note is its first clause."""
    if row.status == "ok":
        return "ok", row.note
    return row.status, row.note.split(";")[0]


def table(section: Section, repeat: int, width: int = 40,
          cells: Callable[[Measurement], tuple[str, str]] = _cells) -> str:
    """Tool, median per call, ratio to hybridad, setup (set up + first call), check, note;
    ``width`` is the tool column's, ``cells`` gives a row's (check, note)."""
    ref = section.reference()
    lines = [f"{section.name}. {section.title}",
             (f"   median of {repeat} per call; ratio to {ref.label if ref else '—'}; "
              "setup = set up + first call; check = against the numpy reference"),
             f"   {'tool':<{width}}{'median':>12}{'ratio':>8}{'setup ms':>11}  {'check':<9}note"]
    timed = sorted((r for r in section.rows if r.median is not None), key=lambda r: r.median)
    for row in timed + [r for r in section.rows if r.median is None]:
        check, note = cells(row)
        lines.append(f"   {row.label:<{width}}{median_cell(row):>12}"
                     f"{fmt_ratio(section.ratio(row)):>8}{fmt_ms(row.setup_s):>11}  "
                     f"{check:<9}{note}".rstrip())
    lines += [f"   * {note}" for note in section.notes]
    return "\n".join(lines)


def warm_up() -> None:
    """Import the peers (and scipy.optimize) once, so that their import time does not
    count as the first row's setup."""
    import_peers(("scipy.optimize", "torch"))


def run(quick: bool = False, repeat: int = 5, target_s: float | None = None,
        seed: int = 0, out: Any = None) -> list[Section]:
    """Both parts; prints each table as soon as it is measured (to ``out``, default
    stdout) and returns the sections."""
    out = out or sys.stdout
    target = target_s if target_s is not None else (0.002 if quick else 0.02)
    widths, batch = (QUICK_MLP_WIDTHS, QUICK_MLP_BATCH) if quick else (MLP_WIDTHS, MLP_BATCH)
    sections = []

    warm_up()
    mlp = mlp_problem(widths, batch, seed)

    def trace_level(rows: list[Measurement]) -> None:
        for row in rows:
            if row.label.startswith("hybridad value_and_grad") and row.prepared:
                traced = next(iter(row.prepared.keep.cache.traces.values()))
                level = "element level (LLVM)" if traced.element_level else "tensor level"
                row.note = f"{row.note}; {level}"

    section = run_section("a", mlp.title, mlp_rows(mlp),
                          numpy_backprop(mlp.params, mlp.x, mlp.t), repeat, target,
                          trace_level)
    first = section.row("hybridad value_and_grad").setup_s
    section.notes.append(f"hybridad build + differentiate + first call: {first:.3f} s")
    section.notes.extend(mlp_memory_notes(mlp))
    print(table(section, repeat) + "\n", file=out, flush=True)
    sections.append(section)

    sizes: list[DagSize] = []
    for k, n in enumerate(QUICK_ROSENBROCK_SIZES if quick else ROSENBROCK_SIZES):
        problem = rosenbrock_problem(n, seed)
        def record(rows: list[Measurement], n: int = n) -> None:
            hybridad_row = next(r for r in rows if r.label == "hybridad grad")
            sizes.append(dag_size(hybridad_row.prepared.keep, n))

        section = run_section(f"b{k + 1}", problem.title, rosenbrock_rows(problem),
                              (rosenbrock_gradient(problem.x),), repeat, target, record)
        size = sizes[-1]
        level = (f"element level: {size.element_ops} scalar ops, LLVM kernel"
                 if size.element_level else "tensor level: a compiled loop kernel")
        section.notes.append("hybridad's grad evaluates f with the gradient (it is "
                             "value_and_grad without the value); the others only the "
                             "gradient")
        section.notes.append(f"hybridad DAG: f {size.function_ops} ops, gradient "
                             f"{size.gradient_ops} ops (hd.count_ops, tensor level); "
                             f"runs at {level}")
        print(table(section, repeat) + "\n", file=out, flush=True)
        sections.append(section)
    smallest, largest = sizes[0], sizes[-1]
    print(f"hybridad's traced Rosenbrock: {smallest.function_text}\n"
          f"   n = {smallest.n:,}: f {smallest.function_ops} ops, gradient "
          f"{smallest.gradient_ops} ops; n = {largest.n:,}: f {largest.function_ops} ops, "
          f"gradient {largest.gradient_ops} ops (the DAG does not grow with n)",
          file=out, flush=True)
    return sections


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.tensors",
        description="Time the seed MLP's loss + gradients and the Rosenbrock gradient "
                    "through hybridad, numpy/scipy, PyTorch and JAX (when installed).")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (median)")
    parser.add_argument("--target-ms", type=float, default=None,
                        help="length of one timed sample (default 20, 2 with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run and print both parts; 0 on success (a mismatch raises MismatchError)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    target = None if args.target_ms is None else args.target_ms / 1e3
    print(f"hybridad {hd.__version__}, numpy {np.__version__}; BLAS threads: "
          f"{blas_threads()}\n", flush=True)
    run(args.quick, args.repeat, target, args.seed)
    print("\nevery row was checked against the numpy reference before timing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
