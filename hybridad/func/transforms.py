"""JAX / torch.func-style transforms of Python callables, compiled or on tapes.

A function is traced once per signature of input shapes (and keyword arguments): each
positional argument becomes an array of fresh symbols of its shape and the function
runs on those. Later calls only evaluate: by default through LLVM kernels
(``hd.lambdify``, one per kind of result, compiled on first use), with
``backend="tape"`` on a :class:`~hybridad.tape.Tape`.

Called inside another transform's trace (or with symbolic arguments), a transform
returns expressions instead, so transforms compose: it runs the function on its *own*
fresh symbols, differentiates with respect to those, and only then binds them to the
values it was called with. A value the inner function closes over therefore stays a
constant of the inner derivative (no perturbation confusion), and ``grad(f)(2.0)``
inside a trace of ``g`` gives an expression of ``g``'s inputs when ``f`` closes over
them, or plain numbers when it does not.

Keyword arguments are passed through to the function and never differentiated (as in
JAX); each distinct set of keyword values is its own trace (arrays are told apart by
content). ``vmap`` maps keyword arguments over their leading axis, as JAX does.
"""

from __future__ import annotations

import collections
import weakref
import hashlib
import math
from typing import Any, Callable, Sequence

import numpy as np

from ..calculus.diff import directional, weighted_adjoints
from ..calculus.jacobian import gradient as symbolic_gradient
from ..calculus.jacobian import gradient as tensor_gradient
from ..calculus.jacobian import jacobian as symbolic_jacobian
from ..core.build import as_expr, as_operand, fresh_symarray, fresh_symbol
from ..core.expr import Expr
from ..core.scalarize import can_scalarize, element_cost, elements, scalarize
from ..core.substitute import substitute
from ..core.traverse import topo_order
from ..errors import TracingError
from ..backend import Kernel, lambdify
from ..tape import Tape, TensorTape
from .tracing import call_on_symbols, fresh_inputs, inside_trace, tracing

Argnums = int | Sequence[int]


class Traced:
    """One trace of ``fun`` for one signature: structure of outputs and how to run it.

    Each argument is one fresh tensor symbol (a scalar symbol for a number), so a
    vectorised function is a compact DAG whatever its sizes (``call_on_symbols`` redoes
    the trace on the elements when the function indexes or assigns like a list). A DAG
    whose element-level form is small (``ELEMENT_LIMIT`` scalar nodes) runs as today's
    element-level kernels and tapes over the flattened inputs; a larger one runs at
    tensor level: whole-array numpy (BLAS) evaluation of the tensor derivative DAGs.
    """

    # primal scalar nodes up to which a trace is unrolled: its derivative kernels then
    # compile in about 0.2 s (measured by python -m benchmarks.scalarize_threshold)
    ELEMENT_LIMIT = 2_000

    def __init__(self, fun: Callable[..., Any], shapes: tuple[tuple[int, ...], ...],
                 backend: str = "llvm", kwargs: dict[str, Any] | None = None):
        self.shapes, self.backend = shapes, backend
        self._tape: Tape | None = None
        self._kernels: dict[tuple, Kernel] = {}
        self._tensor_exprs: dict[tuple, list[Expr]] = {}
        self.tensor_symbols = [fresh_symbol(f"a{k}", shape) for k, shape in enumerate(shapes)]
        out = call_on_symbols(fun, self.tensor_symbols, kwargs or {})
        self.is_tuple = isinstance(out, tuple)
        self.parts = [_as_tensor(p) for p in (out if self.is_tuple else (out,))]
        self.out_shapes = [p.shape for p in self.parts]
        _check_closed(self.parts, self.tensor_symbols)
        self.offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes])
        self.element_level = (element_cost(self.parts) <= self.ELEMENT_LIMIT
                              and can_scalarize(self.parts))
        if self.element_level:
            leaves = {s: fresh_symarray(s.param, s.shape) for s in self.tensor_symbols
                      if s.shape}
            self.symbols = [leaves.get(s, s) for s in self.tensor_symbols]
            self.inputs = [e for s in self.symbols for e in np.ravel(_as_object(s))]
            self.outputs = [e for p in self.parts for e in np.ravel(
                _as_object(scalarize(p, leaves)))]
        else:
            self.symbols = list(self.tensor_symbols)
            self.inputs, self.outputs = [], []

    # -- evaluation through the backend (x flat: (n,), or (batch, n) for evaluate) -------
    @property
    def tape(self) -> Tape:
        if self._tape is None:
            self._tape = Tape(self.outputs, self.inputs)
        return self._tape

    def kernel(self, derivatives: str | None, mode: str = "auto") -> Kernel:
        key = (derivatives, mode)
        if key not in self._kernels:
            exprs = self.outputs[0] if derivatives == "gradient" else self.outputs
            self._kernels[key] = lambdify(self.inputs, exprs, derivatives, mode=mode)
        return self._kernels[key]

    def grouped_kernel(self) -> Kernel:
        """Values with one argument group per positional argument, so ``vmap`` passes a
        mapped argument with its batch axis and an unmapped one once (the kernel reads
        it for every row: no copies, no concatenation)."""
        if "groups" not in self._kernels:
            groups = [np.asarray(s, dtype=object) for s in self.symbols]
            self._kernels["groups"] = lambdify(groups, self.outputs)  # type: ignore[index]
        return self._kernels["groups"]  # type: ignore[index]

    def can_group(self) -> bool:
        return self.backend == "llvm" and self.element_level and bool(self.outputs) and all(
            int(np.prod(s)) > 0 for s in self.shapes)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        if not self.element_level:
            return self._tensor_flat("values", x)
        if self.backend == "tape" or not self.outputs:
            return self.tape.evaluate(x)
        return self.kernel(None)(x)

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if not self.element_level:
            flat = self._tensor_flat("gradient", x)
            return float(flat[0]), flat[1:]
        if self.backend == "tape":
            from ..tape import sweeps

            values, adjoints = sweeps.vjp(self.tape.program, x[None, :], np.ones((1, 1, 1)))
            return float(values[0, 0]), adjoints[0, :, 0]
        value, grad = self.kernel("gradient")(x)
        return float(value), grad

    def gradient_runner(self, nums: list[int], single: bool) -> Callable[..., Any]:
        """The per-call path of value_and_grad for float64 arrays of this trace's shapes:
        the inputs as one vector (a view for a single argument), one kernel call, the
        gradients as views of its result."""
        kernel = self.kernel("gradient")
        pieces = [(self.columns(a), self.shapes[a]) for a in nums]
        if len(self.shapes) == 1 and single and self.shapes[0] and \
                len(self.shapes[0]) == 1:
            def run_vector(args: Sequence[np.ndarray]) -> Any:
                value, adjoints = kernel(args[0])     # one 1-d argument: no reshaping
                return float(value), adjoints

            return run_vector
        one_argument = len(self.shapes) == 1

        def run(args: Sequence[np.ndarray]) -> Any:
            x = args[0].reshape(-1) if one_argument else np.concatenate(
                [a.reshape(-1) for a in args])
            value, adjoints = kernel(x)
            grads = [adjoints[columns].reshape(shape)[()] for columns, shape in pieces]
            return float(value), (grads[0] if single else tuple(grads))

        return run

    def tensor_gradient_runner(self, nums: list[int], argnums: Argnums
                               ) -> Callable[..., Any]:
        """The per-call path of value_and_grad at tensor level: the arrays straight to
        the compiled tensor kernel (the tensor tape when there is none)."""
        runner = self._gradient_runner(("gradient", tuple(nums)))
        call = runner.kernel if runner.kernel else runner.tape.evaluate

        def run(args: Sequence[np.ndarray]) -> Any:
            value, *grads = call(*args)
            return float(value), _pick(grads, argnums)

        return run

    def has_fast_path(self) -> bool:
        """Whether calls can go straight to one compiled element-level kernel."""
        return self.backend == "llvm" and self.element_level and bool(self.outputs) and \
            bool(self.inputs)

    def _flat_of(self) -> Callable[[Sequence[np.ndarray]], np.ndarray]:
        """Float64 arguments of this trace's shapes as one input vector (the array itself
        for a single 1-d argument)."""
        if len(self.shapes) == 1 and len(self.shapes[0]) == 1:
            return lambda args: args[0]
        return lambda args: np.concatenate([a.reshape(-1) for a in args])

    def _structure_of(self) -> Callable[[np.ndarray], Any]:
        """The kernel's flat output in the traced structure (a float for one scalar)."""
        if self.out_shapes == [()] and not self.is_tuple:
            return lambda flat: flat[0]
        return self.structure

    def jvp_runner(self) -> Callable[..., Any]:
        """The per-call path of ``jvp``: one jvp-kernel call on the primals and tangents
        as vectors."""
        kernel, flat, shape = self.kernel("jvp"), self._flat_of(), self._structure_of()

        def run(primals: Sequence[np.ndarray], tangents: Sequence[np.ndarray]) -> Any:
            values, dots = kernel(flat(primals), flat(tangents))
            return shape(values), shape(dots)

        return run

    def vjp_runner(self) -> Callable[..., Any]:
        """The per-call path of ``vjp``: the primal kernel now, the vjp kernel when the
        pullback is called."""
        primal, pullback = self.kernel(None), self.kernel("vjp")
        flat, shape, pieces = self._flat_of(), self._structure_of(), [
            (self.columns(k), self.shapes[k]) for k in range(len(self.shapes))]
        n_out, out_shapes, is_tuple = self.n_outputs, self.out_shapes, self.is_tuple

        def run(primals: Sequence[np.ndarray]) -> Any:
            x = flat(primals)
            if x is primals[0]:            # the pullback keeps the point, not the caller's array
                x = x.copy()

            def vjp_fn(cotangent: Any) -> tuple:
                parts = list(cotangent) if is_tuple else [cotangent]
                w = np.concatenate([np.ravel(np.asarray(p, dtype=np.float64))
                                    for p in parts]) if is_tuple else np.asarray(
                    cotangent, dtype=np.float64).reshape(-1)
                if w.shape != (n_out,):
                    raise ValueError(f"vjp_fn: cotangent must match the output structure "
                                     f"{out_shapes}, got {[np.shape(p) for p in parts]}")
                adjoint = pullback(x, w)[1]
                if len(pieces) == 1:
                    return (adjoint.reshape(pieces[0][1])[()],)
                return tuple(adjoint[cols].reshape(s)[()] for cols, s in pieces)

            return shape(primal(x)), vjp_fn

        return run

    def jacobian_runner(self, mode: str, nums: list[int], argnums: Argnums
                        ) -> Callable[..., Any]:
        """The per-call path of ``jacobian``: one jacobian-kernel call, the blocks of the
        selected arguments reshaped to out.shape + in.shape."""
        kernel, flat = self.kernel("jacobian", mode), self._flat_of()
        pieces = [(self.columns(a), self.shapes[a]) for a in nums]

        if len(self.shapes) == 1 and not self.is_tuple and isinstance(argnums, int):
            shape = self.out_shapes[0] + self.shapes[0]        # one block: a reshape

            def run_one(args: Sequence[np.ndarray]) -> Any:
                return kernel(flat(args))[1].reshape(shape)

            return run_one

        def run(args: Sequence[np.ndarray]) -> Any:
            full = kernel(flat(args))[1]
            return _jacobian_tree([self.structure(full[:, cols], shape)
                                   for cols, shape in pieces], self.is_tuple, argnums)

        return run

    def jacobian(self, x: np.ndarray, mode: str) -> np.ndarray:
        if not self.element_level:
            m = sum(math.prod(s) for s in self.out_shapes)
            rows = [self.vjp(x, np.eye(1, m, k)[0]) for k in range(m)]
            return np.array(rows).reshape(m, len(x))
        if self.backend == "tape" or not self.outputs or not self.inputs:
            return self.tape.jacobian(x, mode=mode)
        return self.kernel("jacobian", mode)(x)[1]

    def jvp(self, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.element_level:
            flat = self._tensor_flat("jvp", np.concatenate([x, v]))
            m = sum(math.prod(s) for s in self.out_shapes)
            return flat[:m], flat[m:]
        if self.backend == "tape" or not self.outputs or not self.inputs:
            from ..tape import sweeps

            values, dots = sweeps.jvp(self.tape.program, x[None, :], v[None, :, None])
            return values[0], dots[0, :, 0]
        return self.kernel("jvp")(x, v)

    def vjp(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if not self.element_level:
            return self._tensor_flat("vjp", np.concatenate([x, w]))
        if self.backend == "tape" or not self.outputs or not self.inputs:
            return self.tape.vjp(x, w)
        return self.kernel("vjp")(x, w)[1]

    @property
    def n_outputs(self) -> int:
        """Number of output elements (all parts, flattened)."""
        return sum(math.prod(s) for s in self.out_shapes)

    # -- tensor level: whole-array evaluation of tensor derivative DAGs ----------------
    def _tensor_kind(self, kind: str) -> tuple[list[Expr], list[Expr]]:
        """(expressions, symbols they take, in the flat input's order) for ``kind``."""
        if kind not in self._tensor_exprs:
            symbols = list(self.tensor_symbols)
            if kind == "values":
                exprs = list(self.parts)
            elif kind == "gradient":
                exprs = [self.parts[0]] + list(tensor_gradient(self.parts[0], symbols))
            elif kind == "jvp":
                tangents = [fresh_symbol(f"t{k}", s.shape) for k, s in enumerate(symbols)]
                exprs = list(self.parts) + directional(self.parts, dict(zip(symbols, tangents)))
                symbols += tangents
            else:                                                  # "vjp"
                cotangents = [fresh_symbol(f"w{k}", p.shape) for k, p in enumerate(self.parts)]
                exprs = weighted_adjoints(self.parts, cotangents, symbols)
                symbols += cotangents
            self._tensor_exprs[kind] = [exprs, symbols]
        return self._tensor_exprs[kind][0], self._tensor_exprs[kind][1]

    def tensor_values(self, kind: tuple, args: Sequence[Any]) -> list[Any]:
        """Tensor-level values of ``kind`` (("gradient", argnums) gives the value and the
        gradients for those arguments only), the arguments passed as they are."""
        return self._gradient_runner(kind).evaluate(*args)

    def _gradient_runner(self, kind: tuple) -> "_TensorRunner":
        if kind not in self._tensor_exprs:
            wrt = [self.tensor_symbols[k] for k in kind[1]]
            self._tensor_exprs[kind] = [[self.parts[0]] + list(
                tensor_gradient(self.parts[0], wrt)), list(self.tensor_symbols)]
        exprs, symbols = self._tensor_exprs[kind]
        return self._tensor_tape(kind, exprs, symbols)

    def _tensor_tape(self, kind: Any, exprs: list[Expr], symbols: list[Expr]
                     ) -> "_TensorRunner":
        """What evaluates ``kind``'s expressions at tensor level, built once: a compiled
        tensor kernel (backend "llvm", every operation lowerable) or a tensor tape."""
        key = ("tensor", kind)
        if key not in self._kernels:
            self._kernels[key] = _TensorRunner(exprs, symbols,  # type: ignore[assignment]
                                               self.backend)
        return self._kernels[key]  # type: ignore[return-value]

    def _tensor_flat(self, kind: str, x: np.ndarray) -> np.ndarray:
        """Evaluate ``kind``'s expressions at the flat input ``x`` ((n,) or (batch, n)),
        flattened and concatenated as the element-level kernels return them."""
        exprs, symbols = self._tensor_kind(kind)
        env, start = {}, 0
        lead = x.shape[:-1]
        for s in symbols:
            env[s] = x[..., start:start + s.size].reshape(lead + s.shape)
            start += s.size
        values = self._tensor_tape(kind, exprs, symbols).evaluate(
            *(env[s] for s in symbols)) if exprs else []
        flat = [np.reshape(v, lead + (-1,)) for v in values]
        return np.concatenate(flat, axis=-1) if flat else np.zeros(lead + (0,))

    def flat_input(self, args: Sequence[Any]) -> np.ndarray:
        return np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in args]) \
            if args else np.zeros(0)

    def columns(self, argnum: int) -> slice:
        return slice(int(self.offsets[argnum]), int(self.offsets[argnum + 1]))

    def structure(self, flat: np.ndarray, trailing: tuple[int, ...] = ()) -> Any:
        """Split a flat (m, ...) array into the traced output structure."""
        parts, start = [], 0
        for shape in self.out_shapes:
            size = math.prod(shape)
            part = flat[start:start + size] if len(self.out_shapes) > 1 else flat
            parts.append(part.reshape(shape + trailing))
            start += size
        parts = [p[()] if p.ndim == 0 else p for p in parts]
        return tuple(parts) if self.is_tuple else parts[0]


class _TensorRunner:
    """Tensor-level evaluation of expressions of tensor symbols: one compiled
    :class:`~hybridad.backend.tensor_kernel.TensorKernel` call for values of the
    symbols' shapes (backend "llvm"), the :class:`TensorTape` for batches (a leading
    axis), for backend "tape", and for operations without a loop lowering."""

    def __init__(self, exprs: list[Expr], symbols: list[Expr], backend: str):
        self.exprs, self.symbols, self.backend = exprs, symbols, backend
        self._kernel: Any = None if backend == "llvm" else False
        self._tape: TensorTape | None = None

    @property
    def kernel(self) -> Any:
        """The compiled kernel, or False when the expressions cannot be lowered."""
        if self._kernel is None:
            from ..backend.tensor_kernel import NotLowerable, TensorKernel

            try:
                self._kernel = TensorKernel(self.exprs, self.symbols)
            except NotLowerable:
                self._kernel = False
        return self._kernel

    @property
    def tape(self) -> TensorTape:
        if self._tape is None:
            self._tape = TensorTape(self.exprs, self.symbols)
        return self._tape

    def evaluate(self, *values: Any) -> list[np.ndarray]:
        if self.backend == "llvm" and all(np.shape(v) == s.shape for v, s in
                                          zip(values, self.symbols)) and self.kernel:
            return self.kernel(*values)
        return self.tape.evaluate(*values)


def _as_tensor(part: Any) -> Expr:
    """A traced output part as one expression: an Expr, a number, a numeric array, or an
    object array of expressions (stacked)."""
    if isinstance(part, Expr):
        return part
    try:
        return as_operand(part if not isinstance(part, (list, tuple)) else
                          np.asarray(part, dtype=object))
    except (TypeError, ValueError) as error:
        raise TracingError(f"a traced function must return expressions or numbers (or "
                           f"arrays or tuples of them): {error}") from None


def _copy(symbols: Any) -> Any:
    return symbols.copy() if isinstance(symbols, np.ndarray) else symbols


def _output_expr(value: Any) -> Expr:
    try:
        return as_expr(value)
    except TypeError as error:
        raise TracingError(f"a traced function must return expressions or numbers (or "
                           f"arrays or tuples of them): {error}") from None


def _check_closed(outputs: list[Expr], inputs: list[Expr]) -> None:
    """A trace's outputs may only use its own inputs: a free symbol means the function
    closed over a symbolic value made elsewhere, which no kernel can be given."""
    own = set(inputs)
    stray = sorted({n.param for n in topo_order(outputs) if n.is_symbol and n not in own})
    if stray:
        shown = ", ".join(stray[:5]) + (", ..." if len(stray) > 5 else "")
        raise TracingError(
            f"the traced function's result uses symbols that are not its arguments "
            f"({shown}); pass symbolic values as arguments, or call the transform inside "
            f"the trace that made them")


def _elements_of(value: Any) -> np.ndarray:
    """An argument as an object array of scalar entries (a tensor expression's entries
    are its index nodes x[i, j])."""
    if isinstance(value, Expr) and value.shape:
        return elements(value)
    return _as_object(value)


def _as_object(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=object)


def _is_symbolic(args: Sequence[Any]) -> bool:
    """Whether any argument holds an expression (a transform inside another's trace).
    Numeric arrays are answered by their dtype, without looking at every element."""
    return any(_holds_expr(a) for a in args)


def _holds_expr(arg: Any) -> bool:
    if isinstance(arg, np.ndarray) and arg.dtype != object:
        return False
    if isinstance(arg, (float, int, np.floating, np.integer, str, bool, type(None))):
        return False
    if isinstance(arg, Expr):
        return True
    try:
        return any(isinstance(e, Expr) for e in np.ravel(_as_object(arg)))
    except (TypeError, ValueError):
        return False


def _symbolic_call(args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a transform must answer with expressions: it runs inside a trace, or
    some argument (positional or keyword) is symbolic."""
    return inside_trace() or _is_symbolic(args) or _is_symbolic(list(kwargs.values()))


_FLOAT64 = np.dtype(np.float64)


def _plain_key(args: Sequence[Any]) -> tuple | None:
    """The arguments' shapes when every one is a float64 ndarray (the fast path)."""
    key: tuple = ()
    for a in args:
        if type(a) is not np.ndarray or a.dtype is not _FLOAT64 and a.dtype != _FLOAT64:
            return None
        key += (a.shape,)
    return key


def _check_numeric(args: Sequence[Any], name: str) -> None:
    for k, a in enumerate(args):
        kind = np.asarray(a).dtype.kind
        if kind not in "biuf":
            raise TypeError(f"{name}: argument {k} must be a real number or numeric array, "
                            f"got {type(a).__name__} of dtype {np.asarray(a).dtype}")


def _static_key(value: Any) -> Any:
    """A hashable stand-in for a keyword value (arrays by dtype, shape and a digest of
    their bytes), or None when the value cannot be told apart reliably."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return None
        digest = hashlib.blake2b(np.ascontiguousarray(value).tobytes(), digest_size=16)
        return ("ndarray", value.dtype.str, value.shape, digest.digest())
    try:
        hash(value)
    except TypeError:
        return None
    return (type(value), value)


class _Cache:
    """Traces of one function, keyed by the shapes of its arguments and the values of
    its keyword arguments (the most recent ``MAX_TRACES`` kept)."""

    MAX_TRACES = 64

    def __init__(self, fun: Callable[..., Any], backend: str = "llvm"):
        if backend not in ("llvm", "tape"):
            raise ValueError(f"backend must be 'llvm' or 'tape', got {backend!r}")
        self.fun, self.backend = fun, backend
        self.traces: collections.OrderedDict[tuple, Traced] = collections.OrderedDict()
        self.trace_count = 0
        # per-call paths for float64 arrays of a known signature: (kind, shapes) -> runner
        self.fast: dict[tuple, Callable[..., Any]] = {}

    def get(self, args: Sequence[Any], name: str, kwargs: dict[str, Any] | None = None
            ) -> Traced:
        _check_numeric(args, name)
        kwargs = kwargs or {}
        shapes = tuple(np.shape(a) for a in args)
        keys = tuple((k, _static_key(v)) for k, v in sorted(kwargs.items()))
        cacheable = all(key is not None for _, key in keys)
        key = (shapes, keys)
        if cacheable and key in self.traces:
            self.traces.move_to_end(key)
            return self.traces[key]
        traced = Traced(self.fun, shapes, self.backend, kwargs)
        self.trace_count += 1
        if cacheable:
            self.traces[key] = traced
            if len(self.traces) > self.MAX_TRACES:
                self.traces.popitem(last=False)
        return traced


class _Nested:
    """A transform called inside a trace: ``fun`` run once on its own fresh symbols.

    Derivatives are taken with respect to those symbols; :meth:`bind` then replaces
    them by the values the transform was called with (numbers or expressions of the
    enclosing trace). Results that bind to constants come back as numpy floats.
    """

    def __init__(self, fun: Callable[..., Any], shapes: Sequence[tuple[int, ...]],
                 kwargs: dict[str, Any]):
        self.symbols, self.flat = fresh_inputs(tuple(shapes), hint="n")
        with tracing():
            self.out = fun(*[_copy(s) for s in self.symbols], **kwargs)
        self.parts, self.is_tuple = _output_parts(self.out)
        self.flat_out = [_output_expr(e) for p in self.parts for e in p.ravel()]

    @classmethod
    def of(cls, fun: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
           ) -> "_Nested":
        return cls(fun, [np.shape(a) for a in args], kwargs)

    def inputs(self, argnums: Sequence[int] | None = None) -> list[Expr]:
        nums = range(len(self.flat)) if argnums is None else argnums
        return [s for k in nums for s in self.flat[k]]

    def structure(self, flat: np.ndarray, trailing: tuple[int, ...] = ()) -> Any:
        """Split an object array of shape (m,) + ``trailing`` (one entry per flat
        output) into the function's output structure."""
        pieces, start = [], 0
        for part in self.parts:
            pieces.append(flat[start:start + part.size].reshape(part.shape + trailing))
            start += part.size
        return tuple(pieces) if self.is_tuple else pieces[0]

    def bind(self, tree: Any, args: Sequence[Any]) -> Any:
        """``tree`` (an Expr, array or tuple of them) with this call's symbols replaced by
        ``args``; constant leaves become numpy floats."""
        mapping = {s: as_expr(v) for group, a in zip(self.flat, args, strict=True)
                   for s, v in zip(group, _elements_of(a).ravel(), strict=True)}
        leaves, rebuild = _flatten(tree)
        sizes = [leaf.size for leaf in leaves]
        flat = substitute([as_expr(e) for leaf in leaves for e in leaf.ravel()], mapping)
        bound, start = [], 0
        for leaf, size in zip(leaves, sizes, strict=True):
            bound.append(_concrete(_object_vector(flat[start:start + size]).reshape(
                leaf.shape)))
            start += size
        return rebuild(bound)


def _object_vector(items: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = list(items)
    return out


def _flatten(tree: Any) -> tuple[list[np.ndarray], Callable[[list[Any]], Any]]:
    """Leaves of a (shallow) tuple tree as object arrays, and how to put them back."""
    if isinstance(tree, tuple):
        children = [_flatten(t) for t in tree]
        counts = [len(leaves) for leaves, _ in children]

        def rebuild(values: list[Any]) -> Any:
            out, start = [], 0
            for (_, child), count in zip(children, counts, strict=True):
                out.append(child(values[start:start + count]))
                start += count
            return tuple(out)

        return [leaf for leaves, _ in children for leaf in leaves], rebuild
    return [_as_object(tree)], lambda values: values[0]


def _concrete(block: np.ndarray) -> Any:
    """Constants as float64 (a 0-d block as a numpy scalar), expressions as they are."""
    if all(isinstance(e, Expr) and e.is_constant for e in block.ravel()):
        values = np.array([e.param for e in block.ravel()], dtype=np.float64)
        return values.reshape(block.shape)[()]
    return block[()] if block.ndim == 0 else block


# id(fun) -> (weak reference to fun, {backend: _Cache}); an entry leaves with its function
_FUNCTION_CACHES: dict[int, tuple[Any, dict[str, _Cache]]] = {}


def _function_cache(fun: Callable[..., Any], backend: str) -> _Cache:
    """The traces of ``fun`` kept for ``jvp`` / ``vjp`` calls (which take the function
    each time rather than returning a transformed one): per function object, so calling
    ``jvp(f, ...)`` in a loop traces f once per signature. Looked up by ``id`` (a weak
    reference confirms it is the same object), which is cheaper than a weak dictionary."""
    entry = _FUNCTION_CACHES.get(id(fun))
    if entry is None or entry[0]() is not fun:
        key = id(fun)
        try:
            ref = weakref.ref(fun, lambda _, key=key: _FUNCTION_CACHES.pop(key, None))
        except TypeError:                   # not weak-referenceable: no caching
            return _Cache(fun, backend)
        entry = _FUNCTION_CACHES[key] = (ref, {})
    per_backend = entry[1]
    cache = per_backend.get(backend)
    if cache is None:
        # the cache calls fun through a weak proxy: a strong reference would keep the
        # function, and so its entry, alive forever
        cache = per_backend[backend] = _Cache(weakref.proxy(fun), backend)
    return cache


def _argnum_list(argnums: Argnums, n_args: int, name: str) -> list[int]:
    nums = [argnums] if isinstance(argnums, int) else list(argnums)
    for a in nums:
        if not -n_args <= a < n_args:
            raise ValueError(f"{name}: argnums {argnums} out of range for {n_args} arguments")
    return [a % n_args for a in nums]


def _pick(values: list[Any], argnums: Argnums) -> Any:
    return values[0] if isinstance(argnums, int) else tuple(values)


def _jacobian_tree(blocks: list[Any], is_tuple: bool, argnums: Argnums) -> Any:
    """Jacobian blocks (one per selected argument, each structured by the outputs) in
    JAX's nesting: the outputs' structure outside, the arguments' inside."""
    if not is_tuple:
        return _pick(blocks, argnums)
    return tuple(_pick([block[i] for block in blocks], argnums)
                 for i in range(len(blocks[0])))


# -- symbolic paths (a transform called inside another transform's trace) --------------
def _scalar_output(out: Any, name: str = "grad") -> Expr:
    if isinstance(out, tuple) or np.shape(out) != ():
        shape = "a tuple" if isinstance(out, tuple) else f"shape {np.shape(out)}"
        raise TypeError(f"{name} requires a scalar output, got {shape}; "
                        "use jacrev or jacfwd for array outputs")
    return _output_expr(out)


def _symbolic_value_and_grad(fun: Callable[..., Any], args: Sequence[Any],
                             kwargs: dict[str, Any], argnums: Argnums) -> tuple[Any, Any]:
    if _tensor_level(args):
        return _tensor_value_and_grad(fun, args, kwargs, argnums)
    nested = _Nested.of(fun, args, kwargs)
    out = _scalar_output(nested.out)
    grads = [symbolic_gradient(out, nested.flat[a]).reshape(np.shape(args[a]))
             for a in _argnum_list(argnums, len(args), "grad")]
    value, bound = nested.bind((out, tuple(grads)), args)
    return value, _pick(list(bound), argnums)


def _tensor_level(args: Sequence[Any]) -> bool:
    """Whether a nested call's arguments are expressions of an enclosing tensor-level
    trace (each a whole array), so the nested transform can stay at tensor level."""
    return any(isinstance(a, Expr) and a.shape for a in args) and all(
        isinstance(a, Expr) or not _holds_expr(a) for a in args)


def _tensor_value_and_grad(fun: Callable[..., Any], args: Sequence[Any],
                           kwargs: dict[str, Any], argnums: Argnums) -> tuple[Any, Any]:
    """value_and_grad inside a tensor-level trace: ``fun`` on fresh tensor symbols, the
    tensor gradient (a handful of nodes, whatever the sizes), then the fresh symbols
    replaced by the enclosing trace's arguments (so jvp(grad(f)) or hessian(f) of a large
    array never goes element by element)."""
    symbols = [fresh_symbol(f"n{k}", np.shape(a)) for k, a in enumerate(args)]
    out = _scalar_output(_as_tensor(call_on_symbols(fun, symbols, kwargs)))
    nums = _argnum_list(argnums, len(args), "grad")
    grads = tensor_gradient(out, [symbols[a] for a in nums])
    value, *bound = substitute([out, *grads], {s: as_operand(a) for s, a in zip(symbols, args)})
    return value, _pick(bound, argnums)


def _symbolic_jacobian(fun: Callable[..., Any], args: Sequence[Any],
                       kwargs: dict[str, Any], argnums: Argnums, mode: str) -> Any:
    nested = _Nested.of(fun, args, kwargs)
    results = []
    for a in _argnum_list(argnums, len(args), "jacobian"):
        jac = symbolic_jacobian(nested.flat_out, nested.flat[a], mode=mode)
        results.append(nested.structure(jac, np.shape(args[a])))
    return _jacobian_tree(list(nested.bind(tuple(results), args)), nested.is_tuple, argnums)


# -- public transforms -------------------------------------------------------------------
def jit(fun: Callable[..., Any], backend: str = "llvm") -> Callable[..., Any]:
    """Trace once per input-shape signature, then evaluate compiled; same outputs as fun.

    >>> import numpy as np, hybridad as hd
    >>> from hybridad.func import jit
    >>> f = jit(lambda x: hd.log(x[0]) + x[0] * x[1] - hd.sin(x[1]))
    >>> round(float(f(np.array([2.0, 5.0]))), 3)
    11.652
    """
    cache = _Cache(fun, backend)

    def compiled(*args: Any, **kwargs: Any) -> Any:
        if _symbolic_call(args, kwargs):
            nested = _Nested.of(fun, args, kwargs)
            return nested.bind(nested.out, args)
        traced = cache.get(args, "jit", kwargs)
        return traced.structure(traced.evaluate(traced.flat_input(args)))

    compiled.cache = cache  # type: ignore[attr-defined]
    return compiled


def value_and_grad(fun: Callable[..., Any], argnums: Argnums = 0, backend: str = "llvm"
                   ) -> Callable[..., Any]:
    """(value, gradient) of a scalar function from one compiled kernel (or one reverse
    tape sweep); gradients have the shapes of the arguments selected by ``argnums``.
    Keyword arguments are passed to ``fun`` and not differentiated."""
    cache = _Cache(fun, backend)
    fast: dict[tuple, Callable[..., Any]] = {}

    def transformed(*args: Any, **kwargs: Any) -> Any:
        key = None if kwargs else _plain_key(args)
        if key is not None and key in fast and not inside_trace():
            return fast[key](args)
        if _symbolic_call(args, kwargs):
            return _symbolic_value_and_grad(fun, args, kwargs, argnums)
        nums = _argnum_list(argnums, len(args), "grad")
        traced = cache.get(args, "grad", kwargs)
        if key is not None and backend == "llvm" and traced.out_shapes == [()]:
            fast[key] = traced.gradient_runner(nums, isinstance(argnums, int)) \
                if traced.element_level else traced.tensor_gradient_runner(nums, argnums)
        if traced.out_shapes != [()]:
            raise TypeError(f"grad requires a scalar output, got shape "
                            f"{traced.out_shapes[0] if traced.out_shapes else ()}; "
                            "use jacrev or jacfwd for array outputs")
        if not traced.element_level:
            value, *grads = traced.tensor_values(("gradient", tuple(nums)), args)
            return float(value), _pick(list(grads), argnums)
        x = traced.flat_input(args)
        value, adjoints = traced.value_and_gradient(x)
        grads = [adjoints[traced.columns(a)].reshape(traced.shapes[a])[()] for a in nums]
        return value, _pick(grads, argnums)

    transformed.cache = cache  # type: ignore[attr-defined]
    transformed.fast = fast  # type: ignore[attr-defined]
    return transformed


def grad(fun: Callable[..., Any], argnums: Argnums = 0, backend: str = "llvm"
         ) -> Callable[..., Any]:
    """Gradient of a scalar function (reverse mode), as ``jax.grad``.

    >>> import numpy as np, hybridad as hd
    >>> from hybridad.func import grad
    >>> g = grad(lambda x: hd.log(x[0]) + x[0] * x[1] - hd.sin(x[1]))
    >>> np.round(g(np.array([2.0, 5.0])), 3)
    array([5.5  , 1.716])
    """
    both = value_and_grad(fun, argnums, backend)
    fast = both.fast  # type: ignore[attr-defined]

    def transformed(*args: Any, **kwargs: Any) -> Any:
        if not kwargs:
            run = fast.get(_plain_key(args))
            if run is not None and not inside_trace():
                return run(args)[1]
        return both(*args, **kwargs)[1]

    transformed.cache = both.cache  # type: ignore[attr-defined]
    return transformed


def jacobian(fun: Callable[..., Any], argnums: Argnums = 0, mode: str = "auto",
             backend: str = "llvm") -> Callable[..., Any]:
    """Jacobian with shape out.shape + in.shape (as JAX). ``mode`` 'forward' builds it by
    columns (tangents), 'reverse' by rows (adjoints), 'auto' by shape (compiled) or by
    the tape's cost model (``backend="tape"``)."""
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', got "
                         f"{mode!r}")
    cache = _Cache(fun, backend)

    def transformed(*args: Any, **kwargs: Any) -> Any:
        key = None if kwargs else _plain_key(args)
        if key is not None and not inside_trace():
            run = cache.fast.get(key)
            if run is not None:
                return run(args)
        if _symbolic_call(args, kwargs):
            return _symbolic_jacobian(fun, args, kwargs, argnums, mode)
        nums = _argnum_list(argnums, len(args), "jacobian")
        traced = cache.get(args, "jacobian", kwargs)
        if key is not None and traced.has_fast_path():
            cache.fast[key] = traced.jacobian_runner(mode, nums, argnums)
        full = traced.jacobian(traced.flat_input(args), mode)
        results = [traced.structure(full[:, traced.columns(a)], traced.shapes[a])
                   for a in nums]
        return _jacobian_tree(results, traced.is_tuple, argnums)

    transformed.cache = cache  # type: ignore[attr-defined]
    return transformed


def jacfwd(fun: Callable[..., Any], argnums: Argnums = 0, backend: str = "llvm"
           ) -> Callable[..., Any]:
    """Jacobian by forward mode (one direction per input element)."""
    return jacobian(fun, argnums, mode="forward", backend=backend)


def jacrev(fun: Callable[..., Any], argnums: Argnums = 0, backend: str = "llvm"
           ) -> Callable[..., Any]:
    """Jacobian by reverse mode (one cotangent per output element)."""
    return jacobian(fun, argnums, mode="reverse", backend=backend)


def hessian(fun: Callable[..., Any], argnums: int = 0, backend: str = "llvm"
            ) -> Callable[..., Any]:
    """Hessian of a scalar function, shape in.shape + in.shape (forward over reverse)."""
    return jacfwd(grad(fun, argnums, backend), argnums, backend)


def _check_tangents(primals: Sequence[Any], tangents: Sequence[Any]) -> None:
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for k, (p, t) in enumerate(zip(primals, tangents, strict=True)):
        if np.shape(p) != np.shape(t):
            raise ValueError(f"jvp: tangent {k} must have shape {np.shape(p)}, "
                             f"got {np.shape(t)}")


def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        backend: str = "llvm") -> tuple[Any, Any]:
    """(fun(*primals), J · tangents) by one forward sweep, as ``jax.jvp``."""
    cache = _function_cache(fun, backend)
    key = _plain_key(primals)
    if key is not None and not inside_trace() and key == _plain_key(tangents):
        run = cache.fast.get(("jvp", key))
        if run is not None:
            return run(primals, tangents)
    primals, tangents = tuple(primals), tuple(tangents)
    _check_tangents(primals, tangents)
    if _symbolic_call(primals + tangents, {}):
        return _symbolic_jvp(fun, primals, tangents)
    traced = cache.get(primals, "jvp")
    if key is not None and traced.has_fast_path():
        cache.fast[("jvp", key)] = traced.jvp_runner()
    values, dots = traced.jvp(traced.flat_input(primals), traced.flat_input(tangents))
    return traced.structure(values), traced.structure(dots)


def vjp(fun: Callable[..., Any], *primals: Any, backend: str = "llvm"
        ) -> tuple[Any, Callable[[Any], tuple]]:
    """(fun(*primals), vjp_fn) as ``jax.vjp``: vjp_fn(cotangent) returns one cotangent
    per primal, each of the primal's shape."""
    cache = _function_cache(fun, backend)
    key = _plain_key(primals)
    if key is not None and not inside_trace():
        run = cache.fast.get(("vjp", key))
        if run is not None:
            return run(primals)
    if _symbolic_call(primals, {}):
        return _symbolic_vjp(fun, primals)
    traced = cache.get(primals, "vjp")
    if key is not None and traced.has_fast_path():
        cache.fast[("vjp", key)] = run = traced.vjp_runner()
        return run(primals)
    x = traced.flat_input(primals)
    values = traced.evaluate(x)

    def vjp_fn(cotangent: Any) -> tuple:
        parts = list(cotangent) if traced.is_tuple else [cotangent]
        w = np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])
        if w.shape != (traced.n_outputs,):
            raise ValueError(f"vjp_fn: cotangent must match the output structure "
                             f"{traced.out_shapes}, got {[np.shape(p) for p in parts]}")
        adjoint = traced.vjp(x, w)
        return tuple(adjoint[traced.columns(k)].reshape(traced.shapes[k])[()]
                     for k in range(len(primals)))

    return traced.structure(values), vjp_fn


def _output_parts(out: Any) -> tuple[list[np.ndarray], bool]:
    """The parts of a function's output as object arrays of scalar expressions (a
    shaped expression at element level)."""
    is_tuple = isinstance(out, tuple)
    return [np.asarray(scalarize(p), dtype=object) if isinstance(p, Expr) and p.shape
            else _as_object(p) for p in (out if is_tuple else (out,))], is_tuple


def _symbolic_jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]
                  ) -> tuple[Any, Any]:
    """(out, J · tangents) as expressions: one forward accumulation over the nested
    trace, seeded with the tangents (numbers or expressions of the enclosing trace)."""
    nested = _Nested.of(fun, primals, {})
    seeds = {s: as_expr(t) for group, tangent in zip(nested.flat, tangents, strict=True)
             for s, t in zip(group, _elements_of(tangent).ravel(), strict=True)}
    dots = directional(nested.flat_out, seeds)
    out = nested.structure(_object_vector(nested.flat_out))
    return nested.bind((out, nested.structure(_object_vector(dots))), primals)


def _symbolic_vjp(fun: Callable[..., Any], primals: Sequence[Any]
                  ) -> tuple[Any, Callable[[Any], tuple]]:
    """(out, vjp_fn) where vjp_fn builds Σ w · out's gradient as expressions (one reverse
    accumulation over the nested trace), bound to the primals."""
    nested = _Nested.of(fun, primals, {})
    out = nested.bind(nested.structure(_object_vector(nested.flat_out)), primals)

    def vjp_fn(cotangent: Any) -> tuple:
        pieces = list(cotangent) if nested.is_tuple else [cotangent]
        w = [as_expr(e) for piece in pieces for e in _elements_of(piece).ravel()]
        if len(w) != len(nested.flat_out):
            raise ValueError(f"vjp_fn: cotangent must match the output structure "
                             f"{[p.shape for p in nested.parts]}, got "
                             f"{[np.shape(c) for c in pieces]}")
        adjoint = weighted_adjoints(nested.flat_out, w, nested.inputs())
        result, start = [], 0
        for group, p in zip(nested.flat, primals, strict=True):
            result.append(_object_vector(adjoint[start:start + len(group)]).reshape(
                np.shape(p)))
            start += len(group)
        return nested.bind(tuple(result), primals)

    return out, vjp_fn


def _symbolic_vmap(fun: Callable[..., Any], args: Sequence[Any], axes: list[int | None],
                   batch: int) -> Any:
    """vmap inside another transform's trace: ``fun`` traced once on fresh symbols of one
    row, then bound to each row (rows of mapped arguments, unmapped ones whole) and
    stacked along a new leading axis."""
    row_shapes = [np.shape(a)[1:] if ax == 0 else np.shape(a) for a, ax in
                  zip(args, axes, strict=True)]
    nested = _Nested(fun, row_shapes, {})
    out = nested.structure(_object_vector(nested.flat_out))
    rows = [nested.bind(out, [_elements_of(a)[i] if ax == 0 else a for a, ax in
                              zip(args, axes, strict=True)]) for i in range(batch)]
    if not nested.is_tuple:
        return _stack(rows, nested.parts[0].shape)
    return tuple(_stack([r[k] for r in rows], part.shape)
                 for k, part in enumerate(nested.parts))


def _stack(rows: list[Any], shape: tuple[int, ...]) -> Any:
    """Rows (numbers or object arrays) stacked; float64 when every row is numeric."""
    if all(isinstance(r, (np.ndarray, np.floating)) and np.asarray(r).dtype != object
           for r in rows):
        return np.asarray(rows, dtype=np.float64).reshape((len(rows),) + shape)
    out = np.empty((len(rows),) + shape, dtype=object)
    for i, r in enumerate(rows):
        out[i] = r
    return out


def vmap(fun: Callable[..., Any], in_axes: int | None | Sequence[int | None] = 0,
         backend: str = "llvm") -> Callable[..., Any]:
    """Map ``fun`` over a leading batch axis (``in_axes`` 0 or None per argument, as
    JAX): traced once per row shape and evaluated for the whole batch in one kernel
    call, each argument an argument group of the kernel (unmapped ones passed once and
    broadcast inside it); ``backend="tape"`` evaluates on a tape instead. Keyword
    arguments are mapped over their leading axis, as in JAX."""
    cache = _Cache(fun, backend)
    keyword_caches: dict[tuple[str, ...], _Cache] = {}

    def mapped(*args: Any, **kwargs: Any) -> Any:
        axes = [in_axes] * len(args) if not isinstance(in_axes, (list, tuple)) else list(
            in_axes)
        if len(axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(axes)} entries for {len(args)} args")
        if not kwargs:
            return _map(fun, cache, args, axes)
        names = tuple(sorted(kwargs))
        if names not in keyword_caches:
            keyword_caches[names] = _Cache(_keywords_last(fun, len(args), names), backend)
        return _map(keyword_caches[names].fun, keyword_caches[names],
                    args + tuple(kwargs[n] for n in names), axes + [0] * len(names))

    mapped.cache = cache  # type: ignore[attr-defined]
    return mapped


def _keywords_last(fun: Callable[..., Any], n_positional: int, names: tuple[str, ...]
                   ) -> Callable[..., Any]:
    """``fun`` taking its keyword arguments ``names`` as trailing positional ones."""
    def positional(*args: Any) -> Any:
        return fun(*args[:n_positional], **dict(zip(names, args[n_positional:],
                                                     strict=True)))

    return positional


def _map(fun: Callable[..., Any], cache: _Cache, args: Sequence[Any],
         axes: list[int | None]) -> Any:
    for ax in axes:
        if ax not in (0, None):
            raise ValueError(f"vmap: in_axes entries must be 0 or None, got {ax}")
    sizes = {np.shape(a)[0] for a, ax in zip(args, axes, strict=True)
             if ax == 0 and np.ndim(a) > 0}
    if any(ax == 0 and np.ndim(a) == 0 for a, ax in zip(args, axes, strict=True)):
        raise ValueError("vmap: a mapped argument (in_axes 0) must have a leading axis, "
                         "got a scalar")
    if len(sizes) != 1:
        raise ValueError(f"vmap: mapped arguments need one common leading size, got "
                         f"{sorted(sizes) or 'no mapped argument'}")
    batch = sizes.pop()
    if _symbolic_call(args, {}):
        return _symbolic_vmap(fun, args, axes, batch)
    rows = [np.asarray(a)[0] if ax == 0 else np.asarray(a) for a, ax in
            zip(args, axes, strict=True)]
    traced = cache.get(rows, "vmap")
    if traced.can_group():
        return _unstack(traced, traced.grouped_kernel()(*args))
    x = np.concatenate([_batched(a, ax, batch) for a, ax in zip(args, axes, strict=True)],
                       axis=1)
    return _unstack(traced, traced.evaluate(x))


def _batched(arg: Any, axis: int | None, batch: int) -> np.ndarray:
    a = np.asarray(arg, dtype=np.float64)
    if axis == 0:
        return a.reshape(batch, -1)
    return np.broadcast_to(a.reshape(1, -1), (batch, a.size))


def _unstack(traced: Traced, values: np.ndarray) -> Any:
    """(batch, m) -> the output structure with a leading batch axis on each part."""
    batch = values.shape[0]
    parts, start = [], 0
    for shape in traced.out_shapes:
        size = int(np.prod(shape))
        parts.append(values[:, start:start + size].reshape((batch,) + shape))
        start += size
    return tuple(parts) if traced.is_tuple else parts[0]


__all__ = ["TracingError", "grad", "hessian", "jacfwd", "jacobian", "jacrev", "jit", "jvp",
           "value_and_grad", "vjp", "vmap"]
