"""The peers as benchmark adapters, each used only if importable.

Symbolic peers (SymPy, SymEngine, CasADi SX) receive the problem's hybridad DAG
converted (SymPy through ``hd.to_sympy``, the others through :mod:`benchmarks.convert`)
and differentiate it themselves; JAX and torch.func run the problem's array function
with their own transforms; the C reference is hand-written Rosenbrock. Every call returns
the tool's native output (jax/torch arrays, casadi DM, lists); turning it into numpy for
the check is not timed.
"""

from __future__ import annotations

import ctypes
import importlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

import hybridad as hd

from .convert import Unsupported, convert, function_table
from .measure import Prepared, Row, Skip
from .problems import Problem, split_flat

# Symbolic differentiation by SymPy/SymEngine walks trees: work ~ inputs x tree size.
SYMPY_MAX_WORK = 3e5
SYMENGINE_MAX_WORK = 4e7
C_SOURCE = Path(__file__).resolve().parent / "c_reference" / "rosenbrock.c"


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise Skip(f"{name} is not installed") from None


def symbolic_work(problem: Problem) -> float:
    """Inputs times the tree size of the outputs: what a tree-walking diff pays."""
    work = problem.n_inputs * hd.count_ops(problem.expression[1], tree=True)
    return work * (2 if problem.kind == "hessian" else 1)


def _check_size(problem: Problem, cap: float, tool: str) -> None:
    work = symbolic_work(problem)
    if work > cap:
        raise Skip(f"size cap: {tool} differentiation would walk ~{work:.1e} tree nodes")


def result_shapes(problem: Problem) -> list[tuple[int, ...]]:
    """Shapes of the canonical result arrays (see problems.py)."""
    lead = (problem.batch,) if problem.batch else ()
    n, m = problem.n_inputs, problem.n_outputs
    if problem.kind == "gradient":
        return [lead, lead + (n,)]
    if problem.kind == "jacobian":
        return [lead + (m, n)]
    return [(n, n)]


def _flat_normalizer(problem: Problem) -> Callable[[Any], tuple[np.ndarray, ...]]:
    """For tools returning a flat list (or (..., K) array) of outputs."""
    def normalize(out: Any) -> tuple[np.ndarray, ...]:
        if isinstance(out, np.ndarray):
            return split_flat(problem, out)
        return split_flat(problem, np.stack(np.broadcast_arrays(*out), axis=-1))
    return normalize


def _flat_derivatives(problem: Problem, outputs: list[Any], symbols: list[Any],
                      diff: Callable[[Any, Any], Any]) -> list[Any]:
    """[f, grad...], the Jacobian or the Hessian row-major, by the tool's ``diff``."""
    if problem.kind == "gradient":
        return [outputs[0], *(diff(outputs[0], s) for s in symbols)]
    if problem.kind == "jacobian":
        return [diff(o, s) for o in outputs for s in symbols]
    grad = [diff(outputs[0], s) for s in symbols]
    return [diff(g, s) for g in grad for s in symbols]


# -- SymPy --------------------------------------------------------------------------------
def sympy_rows(problem: Problem) -> list[Row]:
    sympy = _import("sympy")
    return [Row("sympy", "sympy lambdify", lambda: _sympy_prepared(problem, sympy))]


def _sympy_prepared(problem: Problem, sympy: Any) -> Prepared:
    """sympy.diff, then lambdify(modules="numpy"); a batch passes columns."""
    _check_size(problem, SYMPY_MAX_WORK, "sympy")
    inputs, outputs = problem.expression
    symbols = [hd.to_sympy(s) for s in inputs]
    flat = _flat_derivatives(problem, [hd.to_sympy(o) for o in outputs], symbols, sympy.diff)
    function = sympy.lambdify(symbols, flat, modules="numpy")
    x = problem.point
    return Prepared(lambda: function(*x.T), _flat_normalizer(problem))


# -- SymEngine ----------------------------------------------------------------------------
def symengine_rows(problem: Problem) -> list[Row]:
    se = _import("symengine")
    return [Row("symengine", "symengine llvm", lambda: _symengine_prepared(problem, se))]


def _symengine_constant(se: Any) -> Callable[[float], Any]:
    return lambda v: se.Integer(int(v)) if v.is_integer() else se.RealDouble(v)


def _symengine_prepared(problem: Problem, se: Any) -> Prepared:
    """SymEngine's diff, then Lambdify(backend="llvm", cse=True); batches as (batch, n)."""
    _check_size(problem, SYMENGINE_MAX_WORK, "symengine")
    inputs, outputs = problem.expression
    symbols = [se.Symbol(s.param) for s in inputs]
    try:
        built = convert(outputs, dict(zip(inputs, symbols)), function_table(se, 0),
                        _symengine_constant(se))
    except Unsupported as error:
        raise Skip(str(error)) from None
    flat = _flat_derivatives(problem, built, symbols, lambda e, s: e.diff(s))
    kernel = se.Lambdify(symbols, flat, backend="llvm", cse=True)
    x = problem.point
    return Prepared(lambda: kernel(x), _flat_normalizer(problem), note="cse=True")


# -- CasADi SX ----------------------------------------------------------------------------
CASADI_VARIANTS = {
    "casadi F(x)": "plain call, returns casadi DM",
    "casadi buffer trigger": "F.buffer(): trigger only, fixed buffers",
    "casadi buffer fresh": "F.buffer(): fresh output arrays, set_arg/set_res each call",
}


def casadi_rows(problem: Problem) -> list[Row]:
    ca = _import("casadi")
    return [Row("casadi", label, lambda label=label: _casadi_prepared(problem, ca, label))
            for label in CASADI_VARIANTS]


def casadi_function(problem: Problem, ca: Any) -> Any:
    """SX Function x -> canonical outputs (column-major, so Jacobians are built
    transposed); a batch maps it serially over columns, so that a (batch, n) C array is
    exactly its (n, batch) column-major input."""
    inputs, outputs = problem.expression
    x = ca.SX.sym("x", problem.n_inputs)
    try:
        ys = convert(outputs, {s: x[i] for i, s in enumerate(inputs)},
                     function_table(ca, 1), float)
    except Unsupported as error:
        raise Skip(str(error)) from None
    if problem.kind == "gradient":
        results = [ca.SX(ys[0]), ca.densify(ca.gradient(ys[0], x))]
    elif problem.kind == "jacobian":
        results = [ca.densify(ca.jacobian(ca.vertcat(*ys), x)).T]
    else:
        results = [ca.densify(ca.hessian(ys[0], x)[0]).T]
    function = ca.Function("F", [x], results)
    return function.map(problem.batch, "serial") if problem.batch else function


def _casadi_prepared(problem: Problem, ca: Any, label: str) -> Prepared:
    function = casadi_function(problem, ca)
    shapes = result_shapes(problem)
    x = problem.point
    note = CASADI_VARIANTS[label]
    if label == "casadi F(x)":
        xt = x.T

        def normalize_dm(out: Any) -> tuple[np.ndarray, ...]:
            parts = out if isinstance(out, tuple) else (out,)
            return tuple(np.array(p).T.reshape(s) for p, s in zip(parts, shapes))
        return Prepared(lambda: function(xt), normalize_dm, note=note)
    buffer, trigger = function.buffer()
    flat_x = x.reshape(-1)
    owned = (function, buffer, flat_x)    # the trigger does not own what it points into

    def fresh() -> list[np.ndarray]:
        results = [np.empty(s) for s in shapes]
        buffer.set_arg(0, memoryview(flat_x))
        for i, r in enumerate(results):
            buffer.set_res(i, memoryview(r.reshape(-1)))
        trigger()
        return results

    if label == "casadi buffer fresh":
        return Prepared(fresh, tuple, note=note, keep=owned)
    fixed = fresh()
    return Prepared(trigger, lambda _: tuple(r.copy() for r in fixed), note=note,
                    keep=(owned, fixed))


# -- JAX ----------------------------------------------------------------------------------
TRANSFORMS = {"gradient": ("value_and_grad",), "jacobian": ("jacfwd", "jacrev"),
              "hessian": ("hessian",)}


@lru_cache(maxsize=1)
def _jax() -> tuple[Any, Any]:
    jax = _import("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    return jax, jnp


def jax_rows(problem: Problem) -> list[Row]:
    _jax()
    rows = []
    for name in TRANSFORMS[problem.kind]:
        label = f"jax jit(vmap({name}))" if problem.batch else f"jax jit({name})"
        rows.append(Row("jax", label, lambda name=name: _jax_prepared(problem, name)))
    return rows


def _jax_prepared(problem: Problem, transform: str) -> Prepared:
    """jax.jit of the transform (vmapped for a batch), float64, input placed on the
    device once; each call blocks until the result is ready."""
    jax, jnp = _jax()
    data = {k: jnp.asarray(v) for k, v in problem.data.items()}
    fn = getattr(jax, transform)(lambda x: problem.function(x, jnp, data))
    fn = jax.jit(jax.vmap(fn) if problem.batch else fn)
    x = jax.device_put(problem.point)
    return Prepared(lambda: jax.block_until_ready(fn(x)), _array_normalizer(problem),
                    note="input on device")


def _array_normalizer(problem: Problem, swap: bool = False
                      ) -> Callable[[Any], tuple[np.ndarray, ...]]:
    """(value, grad) or a single array (Jacobian, Hessian), from jax or torch arrays;
    ``swap`` for torch.func.grad_and_value's (grad, value) order."""
    def normalize(out: Any) -> tuple[np.ndarray, ...]:
        if problem.kind == "gradient":
            value, grad = (out[1], out[0]) if swap else out
            return np.asarray(value, dtype=np.float64), np.asarray(grad, dtype=np.float64)
        return (np.asarray(out, dtype=np.float64),)
    return normalize


# -- torch.func ---------------------------------------------------------------------------
def torch_rows(problem: Problem) -> list[Row]:
    _import("torch")
    rows = []
    for name in TRANSFORMS[problem.kind]:
        name = "grad_and_value" if name == "value_and_grad" else name
        label = f"torch.func vmap({name})" if problem.batch else f"torch.func {name}"
        rows.append(Row("torch", label, lambda name=name: _torch_prepared(problem, name)))
    return rows


def _torch_prepared(problem: Problem, transform: str) -> Prepared:
    """torch.func transform (vmapped for a batch), float64 on the CPU, eager."""
    import torch
    import torch.func as tf
    data = {k: torch.from_numpy(v) for k, v in problem.data.items()}
    fn = getattr(tf, transform)(lambda x: problem.function(x, torch, data))
    fn = tf.vmap(fn) if problem.batch else fn
    x = torch.from_numpy(problem.point)
    return Prepared(lambda: fn(x), _array_normalizer(problem, swap=True),
                    note=f"eager, {torch.get_num_threads()} threads")


# -- hand-written C -------------------------------------------------------------------------
@lru_cache(maxsize=1)
def c_library() -> tuple[Any, float]:
    """rosenbrock.c built with gcc -O3 -march=native into a temporary directory and
    loaded: (the ctypes function, seconds gcc took)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise Skip("gcc not found")
    with tempfile.TemporaryDirectory(prefix="hybridad-bench-") as tmp:
        library = Path(tmp) / "librosenbrock.so"
        start = time.perf_counter()
        subprocess.run([gcc, "-O3", "-march=native", "-shared", "-fPIC", str(C_SOURCE),
                        "-o", str(library)], check=True, capture_output=True)
        seconds = time.perf_counter() - start
        function = ctypes.CDLL(str(library)).rosenbrock
    function.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                         ctypes.c_void_p]
    function.restype = None
    return function, seconds


def c_rows(problem: Problem) -> list[Row]:
    if problem.c_reference != "rosenbrock":
        return []
    return [Row("c", "C gcc -O3 (hand-written)", lambda: _c_prepared(problem))]


def _c_prepared(problem: Problem) -> Prepared:
    """One ctypes call with the batch loop inside C, fresh output arrays per call."""
    function, seconds = c_library()
    x = problem.point
    batch, n = (problem.batch or 1), problem.n_inputs
    value_shape = (batch,) if problem.batch else ()

    def call() -> tuple[np.ndarray, np.ndarray]:
        value, grad = np.empty(value_shape), np.empty(x.shape)
        function(x.ctypes.data, batch, n, value.ctypes.data, grad.ctypes.data)
        return value, grad

    return Prepared(call, tuple, setup_s=seconds, note="setup: gcc; called through ctypes")


ADAPTERS = {"c": c_rows, "sympy": sympy_rows, "symengine": symengine_rows,
            "jax": jax_rows, "torch": torch_rows, "casadi": casadi_rows}
