"""``hd.Tape``: numeric forward and reverse AD by interpreting a linearized DAG."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Sequence

import numpy as np

from ..calculus.jacobian import gradient as symbolic_gradient
from ..core.build import as_expr
from ..core.scalarize import element_symbols, replace_symbols, scalarize
from ..core.expr import Expr
from . import sweeps
from .linearize import Program, linearize
from .tables import trace_tables

# Cost model of a Jacobian sweep, in seconds per tape edge; fitted by least squares (on
# relative error) with `python benchmarks/tape_crossover.py` on the project's 2-core
# machine class, where it then picks the faster mode in 28 of 28 cases (layers, reductions
# and fan-outs at batch 1 and 16; the misses of other runs are ties within 15%). The
# fixed costs are the interpreter's per-edge work (numpy calls, list bookkeeping),
# different for the two sweeps; ELEMENT_COST is paid per direction and batch point;
# STORE_COST, per batch point for the partial the reverse sweep keeps until it runs
# backwards, fitted to 0 there (numpy allocates a fresh array per partial either way).
FORWARD_EDGE_COST = 1.65e-6
REVERSE_EDGE_COST = 2.3e-6
ELEMENT_COST = 1.2e-9
STORE_COST = 0.0


class Tape:
    """A flat instruction list for ``outputs`` as functions of ``inputs``.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> t = hd.Tape([hd.log(x1) + x1 * x2 - hd.sin(x2)], [x1, x2])
    >>> [round(float(g), 3) for g in t.gradient([2.0, 5.0])]
    [5.5, 1.716]
    """

    def __init__(self, outputs: Expr | Sequence[Expr], inputs: Sequence[Expr]):
        leaves = element_symbols(inputs)
        if leaves or any(isinstance(o, Expr) and o.shape for o in (
                [outputs] if isinstance(outputs, Expr) else list(outputs))):
            # shaped values run element by element, flattened in row-major order
            inputs = [e for s in replace_symbols(inputs, leaves) for e in np.ravel(
                np.asarray(s, dtype=object))]
            outputs = [e for o in ([outputs] if isinstance(outputs, Expr) else outputs)
                       for e in np.ravel(np.asarray(scalarize(o, leaves), dtype=object))]
        single = isinstance(outputs, Expr)
        self.outputs = [outputs] if single else [as_expr(o) for o in np.ravel(
            np.asarray(outputs, dtype=object))]
        self.inputs = list(np.ravel(np.asarray(inputs, dtype=object)))
        self.program: Program = linearize(self.outputs, self.inputs)
        self._hessian_tape: Tape | None = None

    # -- sizes ---------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return len(self.inputs)

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    @property
    def n_instructions(self) -> int:
        """Instructions computing primal values and partials."""
        return len(self.program.instructions)

    @cached_property
    def n_edges(self) -> int:
        """Chain-rule edges (multiply-adds per direction in a sweep)."""
        return sum(len(s.edges) for s in self.program.steps)

    @cached_property
    def n_sweep_ops(self) -> int:
        """Array operations of one sweep: a multiply per edge whose partial is not ±1,
        and an add per edge beyond the first of each step (the same count forward and
        backward); each runs over directions × batch elements."""
        products = sum(1 for s in self.program.steps for _, reg, scale in s.edges
                       if reg is not None or abs(scale) != 1.0)
        adds = sum(max(len(s.edges) - 1, 0) for s in self.program.steps)
        return products + adds

    @property
    def peak_slots(self) -> int:
        """Work registers needed at once (after reuse by liveness)."""
        return self.program.peak_slots

    def __repr__(self) -> str:
        return (f"Tape({self.n_outputs} outputs, {self.n_inputs} inputs, "
                f"{self.n_instructions} instructions, {self.n_edges} edges, "
                f"peak {self.peak_slots} slots)")

    # -- evaluation and sweeps -------------------------------------------------------
    def evaluate(self, x: Any) -> np.ndarray:
        """x (n,) or (batch, n) -> (m,) or (batch, m)."""
        points, batched = self._points(x, "evaluate")
        values = sweeps.evaluate(self.program, points)
        return values if batched else values[0]

    def jvp(self, x: Any, v: Any) -> np.ndarray:
        """Forward sweep J v: v (n,) -> (m,), v (n, k) -> (m, k); batch dims lead."""
        points, batched = self._points(x, "jvp")
        directions, squeeze = self._directions(v, points.shape[0], batched, self.n_inputs,
                                               "jvp", "v", "inputs")
        _, tangents = sweeps.jvp(self.program, points, directions)
        return self._shape_result(tangents, batched, squeeze)

    def vjp(self, x: Any, w: Any) -> np.ndarray:
        """Reverse sweep Jᵀ w: w (m,) -> (n,), w (m, k) -> (n, k); batch dims lead."""
        points, batched = self._points(x, "vjp")
        cotangents, squeeze = self._directions(w, points.shape[0], batched, self.n_outputs,
                                               "vjp", "w", "outputs")
        _, adjoints = sweeps.vjp(self.program, points, cotangents)
        return self._shape_result(adjoints, batched, squeeze)

    def gradient(self, x: Any) -> np.ndarray:
        """∇f for a single output: (n,) or (batch, n), by one reverse sweep."""
        if self.n_outputs != 1:
            raise ValueError(f"Tape.gradient needs one output, the tape has "
                             f"{self.n_outputs}; use jacobian() or vjp()")
        return self.vjp(x, np.ones(1))

    def jacobian(self, x: Any, mode: str = "auto") -> np.ndarray:
        """(m, n), or (batch, m, n): n forward directions or m reverse cotangents."""
        mode = self.choose_mode(np.shape(x)[0] if np.ndim(x) == 2 else 1) \
            if mode == "auto" else mode
        if mode == "forward":
            return self.jvp(x, self._identity(x, self.n_inputs))
        if mode == "reverse":
            return np.swapaxes(self.vjp(x, self._identity(x, self.n_outputs)), -1, -2)
        raise ValueError(f"Tape.jacobian: mode must be 'auto', 'forward' or 'reverse', "
                         f"got {mode!r}")

    # -- cost model ------------------------------------------------------------------
    def sweep_cost(self, mode: str, batch: int = 1) -> float:
        """Modelled seconds of the Jacobian sweep in ``mode`` (primal work excluded,
        since both modes pay it): the sweep's fixed interpreter cost per edge, plus the
        elements of its array operations, which carry n directions forward and m
        cotangents backward; the reverse sweep also keeps each edge's partial per batch
        point."""
        if mode == "forward":
            return (self.n_edges * FORWARD_EDGE_COST
                    + self.n_sweep_ops * ELEMENT_COST * self.n_inputs * batch)
        if mode == "reverse":
            return (self.n_edges * (REVERSE_EDGE_COST + STORE_COST * batch)
                    + self.n_sweep_ops * ELEMENT_COST * self.n_outputs * batch)
        raise ValueError(f"Tape.sweep_cost: mode must be 'forward' or 'reverse', got {mode!r}")

    def choose_mode(self, batch: int = 1) -> str:
        """'forward' or 'reverse', whichever :meth:`sweep_cost` models as cheaper."""
        forward, reverse = self.sweep_cost("forward", batch), self.sweep_cost("reverse", batch)
        return "forward" if forward < reverse else "reverse"

    # -- second order ------------------------------------------------------------------
    def _gradient_tape(self) -> Tape:
        if self.n_outputs != 1:
            raise ValueError(f"Hessians need one output, the tape has {self.n_outputs}")
        if self._hessian_tape is None:
            grad = symbolic_gradient(self.outputs[0], self.inputs)
            self._hessian_tape = Tape(list(grad), self.inputs)
        return self._hessian_tape

    def hvp(self, x: Any, v: Any) -> np.ndarray:
        """Hessian-vector product H v without forming H: a forward sweep over the tape
        of the reverse-accumulated gradient (forward-over-reverse)."""
        return self._gradient_tape().jvp(x, v)

    def hessian(self, x: Any) -> np.ndarray:
        """(n, n) or (batch, n, n): n forward directions over the gradient tape."""
        return self._gradient_tape().jvp(x, self._identity(x, self.n_inputs))

    # -- traces ------------------------------------------------------------------------
    def trace(self, x: Any, mode: str = "forward", seed: int = 0) -> str:
        """The textbook primal trace and tangent (forward) or adjoint (reverse) trace."""
        points, batched = self._points(x, "trace")
        if batched:
            raise ValueError(f"Tape.trace: x must be one point of shape ({self.n_inputs},),"
                             f" got {np.shape(x)}")
        return trace_tables(linearize(self.outputs, self.inputs, order="level"), points[0],
                            mode, seed)

    def to_dot(self) -> str:
        """Graphviz DOT text of the tape: inputs, instructions (value, formula, register)
        and outputs, with each operand edge labelled by its local partial derivative."""
        from .dot import tape_to_dot

        return tape_to_dot(self)

    # -- validation --------------------------------------------------------------------
    @staticmethod
    def _identity(x: Any, size: int) -> np.ndarray:
        """Unit directions; 3-D for a batch so that (batch, size) is never ambiguous."""
        eye = np.eye(size)
        return np.broadcast_to(eye, (np.shape(x)[0], size, size)) if np.ndim(x) == 2 else eye

    def _points(self, x: Any, caller: str) -> tuple[np.ndarray, bool]:
        array = _as_float_array(x, f"Tape.{caller}", "x")
        n = self.n_inputs
        if array.ndim == 1 and array.shape[0] == n:
            return array[None, :], False
        if array.ndim == 2 and array.shape[1] == n:
            return array, True
        raise ValueError(f"Tape.{caller}: x must have shape ({n},) or (batch, {n}) for "
                         f"{n} inputs, got {array.shape}")

    @staticmethod
    def _directions(v: Any, batch: int, batched: bool, size: int, caller: str, name: str,
                    what: str) -> tuple[np.ndarray, bool]:
        """Directions as (batch, size, k), and whether k was implicit (result squeezed).

        Accepted: (size,) and (size, k), shared by every point; with a batch of x also
        (batch, size) and (batch, size, k), one per point. A 2-D array of shape
        (batch, size) is read as one direction per point.
        """
        a = _as_float_array(v, f"Tape.{caller}", name)
        if batched and a.ndim == 3 and a.shape[:2] == (batch, size):
            return a, False
        if batched and a.ndim == 2 and a.shape == (batch, size):
            return a[:, :, None], True
        if a.ndim == 1 and a.shape[0] == size:
            return np.broadcast_to(a[None, :, None], (batch, size, 1)), True
        if a.ndim == 2 and a.shape[0] == size:
            return np.broadcast_to(a[None], (batch,) + a.shape), False
        extra = f", or with a leading batch dimension {batch}" if batched else ""
        raise ValueError(f"Tape.{caller}: {name} must have shape ({size},) or ({size}, k) "
                         f"for {size} {what}{extra}, got {a.shape}")

    @staticmethod
    def _shape_result(result: np.ndarray, batched: bool, squeeze: bool) -> np.ndarray:
        if squeeze:
            result = result[..., 0]
        return result if batched else result[0]


def _as_float_array(value: Any, caller: str, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False)
    raise TypeError(f"{caller}: {name} must be a numeric array, got dtype {array.dtype}")
