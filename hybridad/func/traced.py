"""One trace of a Python function, and the caches that keep traces.

:class:`Traced` runs a function once on fresh symbols for one signature of argument
shapes (and keyword values) and keeps what evaluates it: element-level kernels or tapes
over the flattened inputs when the traced DAG is small, compiled tensor kernels (or
tensor tapes) when it is large, each built on first use, with the per-call runners the
transforms take for float64 arrays. :class:`_Cache` keeps the traces of one function;
``_function_cache`` the traces ``jvp``/``vjp`` keep per function. The transforms
themselves are in transforms.py.
"""

from __future__ import annotations

import collections
import hashlib
import math
import weakref
from typing import Any, Callable, Sequence

import numpy as np

from ..backend import Kernel, lambdify
from ..calculus.diff import directional, weighted_adjoints
from ..calculus.jacobian import gradient as tensor_gradient
from ..core.build import as_expr, as_operand, fresh_symarray, fresh_symbol
from ..core.expr import Expr
from ..core.scalarize import can_scalarize, element_cost, elements, scalarize
from ..core.traverse import topo_order
from ..errors import TracingError
from ..tape import Tape, TensorTape
from .tracing import call_on_symbols, inside_trace

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
