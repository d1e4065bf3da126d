"""hybridad's three modes as benchmark adapters: symbolic evaluation, tape, LLVM kernel.

The tape result is every problem's reference: each tool is checked against it.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np

import hybridad as hd
from hybridad.tape import sweeps

from .measure import Prepared, Row, Skip
from .problems import Problem, split_flat



def derivative_exprs(problem: Problem) -> tuple[list[hd.Expr], list[hd.Expr]]:
    """Inputs, and the flat outputs as symbolic DAGs: [f, grad...], the Jacobian or the
    Hessian."""
    inputs, outputs = problem.build()
    if problem.kind == "gradient":
        return inputs, [outputs[0], *hd.gradient(outputs[0], inputs)]
    if problem.kind == "jacobian":
        return inputs, list(hd.jacobian(outputs, inputs).ravel())
    return inputs, list(hd.hessian(outputs[0], inputs).ravel())


# -- symbolic evaluation ------------------------------------------------------------------
def evaluate_rows(problem: Problem) -> list[Row]:
    return [Row("evaluate", "hybridad evaluate", lambda: _evaluate_prepared(problem),
                hybridad=True)]


def _evaluate_prepared(problem: Problem) -> Prepared:
    """hd.evaluate of the derivative DAG; the symbol -> value map is built per call."""
    inputs, exprs = derivative_exprs(problem)
    columns = problem.point.T          # rows of x.T: one value (or batch column) per symbol

    def call() -> list[Any]:
        return hd.evaluate(exprs, dict(zip(inputs, columns)))

    def normalize(out: list[Any]) -> tuple[np.ndarray, ...]:
        return split_flat(problem, np.stack(np.broadcast_arrays(*out), axis=-1))

    return Prepared(call, normalize)


# -- tape ---------------------------------------------------------------------------------
def tape_rows(problem: Problem) -> list[Row]:
    return [Row("tape", "hybridad tape", lambda: tape_prepared(problem), hybridad=True)]


def tape_prepared(problem: Problem) -> Prepared:
    """hd.Tape: value and gradient by one reverse sweep (the sweep that
    hybridad.func.value_and_grad runs), Jacobian mode="auto", Hessian forward-over-reverse."""
    inputs, outputs = problem.build()
    tape = hd.Tape(outputs, inputs)
    x = problem.point
    if problem.kind == "gradient":
        points = x if problem.batch else x[None, :]
        ones = np.broadcast_to(np.ones((1, 1, 1)), (points.shape[0], 1, 1))

        def call() -> Any:
            return sweeps.vjp(tape.program, points, ones)

        def normalize(out: Any) -> tuple[np.ndarray, ...]:
            values, adjoints = out
            if problem.batch:
                return values[:, 0], adjoints[:, :, 0]
            return values[0, 0], adjoints[0, :, 0]
        return Prepared(call, normalize)
    if problem.kind == "jacobian":
        return Prepared(lambda: tape.jacobian(x, mode="auto"), lambda out: (out,),
                        note=f"mode auto: {tape.choose_mode(problem.batch or 1)}")
    return Prepared(lambda: tape.hessian(x), lambda out: (out,))


def tape_reference(problem: Problem) -> tuple[np.ndarray, ...]:
    """The canonical result every tool is checked against."""
    prepared = tape_prepared(problem)
    return prepared.normalize(prepared.call())


# -- LLVM kernels (hd.lambdify, DESIGN.md §2) ----------------------------------------------
def lambdify_accepts(name: str) -> bool:
    """Whether hd.lambdify takes the keyword ``name`` (e.g. threads=)."""
    try:
        parameters = inspect.signature(hd.lambdify).parameters
    except (TypeError, ValueError):
        return False
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def llvm_rows(problem: Problem) -> list[Row]:
    """hybridad llvm, plus threads= on batches and the primal kernel on gradients."""
    if not hasattr(hd, "lambdify"):
        raise Skip("llvm backend not available (hd.lambdify does not exist yet)")
    rows = [Row("llvm", "hybridad llvm", lambda: _llvm_prepared(problem), hybridad=True,
                reference=True)]
    threads = os.cpu_count() or 1
    if problem.batch and threads > 1 and lambdify_accepts("threads"):
        rows.append(Row("llvm", f"hybridad llvm threads={threads}",
                        lambda: _llvm_prepared(problem, threads=threads), hybridad=True))
    if problem.kind == "gradient":
        rows.append(Row("llvm", "hybridad llvm primal", lambda: _llvm_primal(problem),
                        hybridad=True, partial=True))
    return rows


def _llvm_prepared(problem: Problem, **options: Any) -> Prepared:
    """One kernel computing the value with its derivatives; results by the §2 contract:
    gradient -> (value, grad), jacobian -> (values, J), hessian -> (value, grad, H)."""
    clear_compile_cache()
    inputs, outputs = problem.build()
    exprs = outputs[0] if problem.kind in ("gradient", "hessian") else outputs
    kernel = hd.lambdify(inputs, exprs, derivatives=problem.kind, backend="llvm", **options)
    x = problem.point

    def normalize(out: Any) -> tuple[np.ndarray, ...]:
        if problem.kind == "gradient":
            return np.asarray(out[0]), np.asarray(out[1])
        return (np.asarray(out[-1]),)      # J of (values, J); H of (value, grad, H)

    return Prepared(lambda: kernel(x), normalize, note=_cache_note(kernel))


def _llvm_primal(problem: Problem) -> Prepared:
    """The primal kernel alone (value only; compare it with the gradient row)."""
    clear_compile_cache()
    inputs, outputs = problem.build()
    kernel = hd.lambdify(inputs, outputs[0], backend="llvm")
    x = problem.point
    return Prepared(lambda: kernel(x), lambda out: (np.asarray(out),), compare=1,
                    note="; ".join(filter(None, ["value only", _cache_note(kernel)])))


def clear_compile_cache() -> None:
    """Empty the kernel cache so that setup times measure compiling, not a lookup of an
    earlier problem's identical kernel."""
    hd.clear_kernel_cache()


def _cache_note(kernel: Any) -> str:
    return "compile cache hit" if getattr(kernel, "cache_hit", False) else ""


ADAPTERS = {"evaluate": evaluate_rows, "tape": tape_rows, "llvm": llvm_rows}
