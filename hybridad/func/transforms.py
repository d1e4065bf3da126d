"""JAX / torch.func-style transforms of Python callables, compiled or on tapes.

A function is traced once per signature of input shapes: each positional argument
becomes a symbol array of its shape (``a0_0``, ``a1_2_3``, ...) and the function runs on
those. Later calls only evaluate: by default through LLVM kernels (``hd.lambdify``, one
per kind of result, compiled on first use), with ``backend="tape"`` on a
:class:`~hybridad.tape.Tape`. Called with symbolic arguments (inside another transform,
e.g. ``vmap(grad(f))``), a transform returns expressions instead, so transforms compose.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..calculus.jacobian import gradient as symbolic_gradient
from ..calculus.jacobian import jacobian as symbolic_jacobian
from ..core.build import as_expr, symarray
from ..core.expr import Expr
from ..errors import TracingError
from ..backend import Kernel, lambdify
from ..tape import Tape

Argnums = int | Sequence[int]


class Traced:
    """One trace of ``fun`` for one signature: structure of outputs and the tape."""

    def __init__(self, fun: Callable[..., Any], shapes: tuple[tuple[int, ...], ...],
                 backend: str = "llvm"):
        self.shapes, self.backend = shapes, backend
        self._tape: Tape | None = None
        self._kernels: dict[tuple, Kernel] = {}
        self.symbols = [_symbols_for(k, shape) for k, shape in enumerate(shapes)]
        out = fun(*self.symbols)
        self.is_tuple = isinstance(out, tuple)
        parts = list(out) if self.is_tuple else [out]
        self.out_shapes = [np.shape(p) for p in parts]
        self.outputs = [as_expr(e) for p in parts for e in np.ravel(_as_object(p))]
        self.inputs = [s for sym in self.symbols for s in np.ravel(_as_object(sym))]
        self.offsets = np.cumsum([0] + [int(np.prod(s)) for s in shapes])

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
        return self.backend == "llvm" and bool(self.outputs) and all(
            int(np.prod(s)) > 0 for s in self.shapes)

    def evaluate(self, x: np.ndarray) -> np.ndarray:
        if self.backend == "tape" or not self.outputs:
            return self.tape.evaluate(x)
        return self.kernel(None)(x)

    def value_and_gradient(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        if self.backend == "tape":
            from ..tape import sweeps

            values, adjoints = sweeps.vjp(self.tape.program, x[None, :], np.ones((1, 1, 1)))
            return float(values[0, 0]), adjoints[0, :, 0]
        value, grad = self.kernel("gradient")(x)
        return float(value), grad

    def jacobian(self, x: np.ndarray, mode: str) -> np.ndarray:
        if self.backend == "tape" or not self.outputs or not self.inputs:
            return self.tape.jacobian(x, mode=mode)
        return self.kernel("jacobian", mode)(x)[1]

    def jvp(self, x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == "tape" or not self.outputs or not self.inputs:
            from ..tape import sweeps

            values, dots = sweeps.jvp(self.tape.program, x[None, :], v[None, :, None])
            return values[0], dots[0, :, 0]
        return self.kernel("jvp")(x, v)

    def vjp(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        if self.backend == "tape" or not self.outputs or not self.inputs:
            return self.tape.vjp(x, w)
        return self.kernel("vjp")(x, w)[1]

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


def _symbols_for(k: int, shape: tuple[int, ...]) -> Any:
    return symarray(f"a{k}", (1,))[0] if shape == () else symarray(f"a{k}", shape)


def _as_object(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=object)


def _is_symbolic(args: Sequence[Any]) -> bool:
    """Whether any argument holds an expression (a transform inside another's trace).
    Numeric arrays are answered by their dtype, without looking at every element."""
    return any(_holds_expr(a) for a in args)


def _holds_expr(arg: Any) -> bool:
    if isinstance(arg, np.ndarray) and arg.dtype != object:
        return False
    if isinstance(arg, (float, int, np.floating, np.integer)):
        return False
    return any(isinstance(e, Expr) for e in np.ravel(_as_object(arg)))


def _check_numeric(args: Sequence[Any], name: str) -> None:
    for k, a in enumerate(args):
        kind = np.asarray(a).dtype.kind
        if kind not in "biuf":
            raise TypeError(f"{name}: argument {k} must be a real number or numeric array, "
                            f"got {type(a).__name__} of dtype {np.asarray(a).dtype}")


class _Cache:
    """Traces of one function, keyed by the shapes of its arguments."""

    def __init__(self, fun: Callable[..., Any], backend: str = "llvm"):
        if backend not in ("llvm", "tape"):
            raise ValueError(f"backend must be 'llvm' or 'tape', got {backend!r}")
        self.fun, self.backend = fun, backend
        self.traces: dict[tuple, Traced] = {}
        self.trace_count = 0

    def get(self, args: Sequence[Any], name: str) -> Traced:
        _check_numeric(args, name)
        key = tuple(np.shape(a) for a in args)
        if key not in self.traces:
            self.traces[key] = Traced(self.fun, key, self.backend)
            self.trace_count += 1
        return self.traces[key]


def _argnum_list(argnums: Argnums, n_args: int, name: str) -> list[int]:
    nums = [argnums] if isinstance(argnums, int) else list(argnums)
    for a in nums:
        if not -n_args <= a < n_args:
            raise ValueError(f"{name}: argnums {argnums} out of range for {n_args} arguments")
    return [a % n_args for a in nums]


def _pick(values: list[Any], argnums: Argnums) -> Any:
    return values[0] if isinstance(argnums, int) else tuple(values)


# -- symbolic paths (a transform called inside another transform's trace) --------------
def _symbolic_output(fun: Callable[..., Any], args: Sequence[Any]) -> Expr:
    out = fun(*args)
    if isinstance(out, tuple) or np.shape(out) != ():
        raise TypeError(f"grad requires a scalar output, got shape {np.shape(out)}; "
                        "use jacrev or jacfwd for array outputs")
    return as_expr(out)


def _symbolic_grad(fun: Callable[..., Any], args: Sequence[Any], argnums: Argnums) -> Any:
    out = _symbolic_output(fun, args)
    grads = []
    for a in _argnum_list(argnums, len(args), "grad"):
        wrt = _as_object(args[a])
        grads.append(symbolic_gradient(out, list(np.ravel(wrt))).reshape(wrt.shape)[()]
                     if wrt.ndim == 0 else symbolic_gradient(out, list(wrt.ravel()))
                     .reshape(wrt.shape))
    return _pick(grads, argnums)


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

    def compiled(*args: Any) -> Any:
        if _is_symbolic(args):
            return fun(*args)
        traced = cache.get(args, "jit")
        return traced.structure(traced.evaluate(traced.flat_input(args)))

    compiled.cache = cache  # type: ignore[attr-defined]
    return compiled


def value_and_grad(fun: Callable[..., Any], argnums: Argnums = 0, backend: str = "llvm"
                   ) -> Callable[..., Any]:
    """(value, gradient) of a scalar function from one compiled kernel (or one reverse
    tape sweep); gradients have the shapes of the arguments selected by ``argnums``."""
    cache = _Cache(fun, backend)

    def transformed(*args: Any) -> Any:
        if _is_symbolic(args):
            return as_expr(fun(*args)), _symbolic_grad(fun, args, argnums)
        traced = cache.get(args, "grad")
        if len(traced.outputs) != 1 or traced.out_shapes != [()]:
            raise TypeError(f"grad requires a scalar output, got shape "
                            f"{traced.out_shapes[0] if traced.out_shapes else ()}; "
                            "use jacrev or jacfwd for array outputs")
        x = traced.flat_input(args)
        value, adjoints = traced.value_and_gradient(x)
        grads = [adjoints[traced.columns(a)].reshape(traced.shapes[a])[()]
                 for a in _argnum_list(argnums, len(args), "grad")]
        return value, _pick(grads, argnums)

    transformed.cache = cache  # type: ignore[attr-defined]
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

    def transformed(*args: Any) -> Any:
        return both(*args)[1]

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

    def transformed(*args: Any) -> Any:
        if _is_symbolic(args):
            return _symbolic_jacobian(fun, args, argnums)
        traced = cache.get(args, "jacobian")
        full = traced.jacobian(traced.flat_input(args), mode)
        results = []
        for a in _argnum_list(argnums, len(args), "jacobian"):
            block = full[:, traced.columns(a)]
            results.append(traced.structure(block, traced.shapes[a]))
        return _pick(results, argnums)

    transformed.cache = cache  # type: ignore[attr-defined]
    return transformed


def _symbolic_jacobian(fun: Callable[..., Any], args: Sequence[Any], argnums: Argnums) -> Any:
    out = _as_object(fun(*args))
    results = []
    for a in _argnum_list(argnums, len(args), "jacobian"):
        wrt = _as_object(args[a])
        jac = symbolic_jacobian(list(out.ravel()), list(wrt.ravel()))
        results.append(jac.reshape(out.shape + wrt.shape))
    return _pick(results, argnums)


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


def jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
        backend: str = "llvm") -> tuple[Any, Any]:
    """(fun(*primals), J · tangents) by one forward sweep, as ``jax.jvp``."""
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    for k, (p, t) in enumerate(zip(primals, tangents, strict=True)):
        if np.shape(p) != np.shape(t):
            raise ValueError(f"jvp: tangent {k} must have shape {np.shape(p)}, "
                             f"got {np.shape(t)}")
    if _is_symbolic(tuple(primals) + tuple(tangents)):
        return _symbolic_jvp(fun, primals, tangents)
    traced = _Cache(fun, backend).get(tuple(primals), "jvp")
    values, dots = traced.jvp(traced.flat_input(primals), traced.flat_input(tangents))
    return traced.structure(values), traced.structure(dots)


def vjp(fun: Callable[..., Any], *primals: Any, backend: str = "llvm"
        ) -> tuple[Any, Callable[[Any], tuple]]:
    """(fun(*primals), vjp_fn) as ``jax.vjp``: vjp_fn(cotangent) returns one cotangent
    per primal, each of the primal's shape."""
    if _is_symbolic(primals):
        return _symbolic_vjp(fun, primals)
    traced = _Cache(fun, backend).get(primals, "vjp")
    x = traced.flat_input(primals)
    values = traced.evaluate(x)

    def vjp_fn(cotangent: Any) -> tuple:
        parts = list(cotangent) if traced.is_tuple else [cotangent]
        w = np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])
        if w.shape != (len(traced.outputs),):
            raise ValueError(f"vjp_fn: cotangent must match the output structure "
                             f"{traced.out_shapes}, got {[np.shape(p) for p in parts]}")
        adjoint = traced.vjp(x, w)
        return tuple(adjoint[traced.columns(k)].reshape(traced.shapes[k])[()]
                     for k in range(len(primals)))

    return traced.structure(values), vjp_fn


def _output_parts(out: Any) -> tuple[list[np.ndarray], bool]:
    is_tuple = isinstance(out, tuple)
    return [_as_object(p) for p in (out if is_tuple else (out,))], is_tuple


def _symbolic_jvp(fun: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]
                  ) -> tuple[Any, Any]:
    """(out, J · tangents) as expressions: Σ_k Jacobian block k · tangent k."""
    out = fun(*primals)
    parts, is_tuple = _output_parts(out)
    flat_out = [as_expr(e) for p in parts for e in p.ravel()]
    total = np.zeros(len(flat_out), dtype=object)
    for p, t in zip(primals, tangents, strict=True):
        jac = symbolic_jacobian(flat_out, list(_as_object(p).ravel()))
        total = total + jac.dot(_as_object(t).ravel())
    pieces, start = [], 0
    for part in parts:
        pieces.append(_as_object(total[start:start + part.size]).reshape(part.shape)[()])
        start += part.size
    return out, (tuple(pieces) if is_tuple else pieces[0])


def _symbolic_vjp(fun: Callable[..., Any], primals: Sequence[Any]
                  ) -> tuple[Any, Callable[[Any], tuple]]:
    """(out, vjp_fn) where vjp_fn builds the gradient of Σ w · out as expressions."""
    out = fun(*primals)
    parts, is_tuple = _output_parts(out)
    flat_out = [as_expr(e) for p in parts for e in p.ravel()]

    def vjp_fn(cotangent: Any) -> tuple:
        pieces = list(cotangent) if is_tuple else [cotangent]
        w = [e for piece in pieces for e in _as_object(piece).ravel()]
        if len(w) != len(flat_out):
            raise ValueError(f"vjp_fn: cotangent must match the output structure "
                             f"{[p.shape for p in parts]}, got {[np.shape(c) for c in pieces]}")
        jac = symbolic_jacobian(flat_out, [e for p in primals
                                           for e in _as_object(p).ravel()])
        adjoint = _as_object(w).dot(jac) if len(w) else np.zeros(jac.shape[1], dtype=object)
        result, start = [], 0
        for p in primals:
            size = _as_object(p).size
            result.append(_as_object(adjoint[start:start + size]).reshape(np.shape(p))[()])
            start += size
        return tuple(result)

    return out, vjp_fn


def _symbolic_vmap(fun: Callable[..., Any], args: Sequence[Any], axes: list[int | None],
                   batch: int) -> Any:
    """Row by row on expressions (vmap inside another transform's trace), stacked."""
    rows = [fun(*[_as_object(a)[i] if ax == 0 else a for a, ax in
                  zip(args, axes, strict=True)]) for i in range(batch)]
    is_tuple = isinstance(rows[0], tuple) if rows else False
    if not is_tuple:
        return np.stack([_as_object(r) for r in rows])
    return tuple(np.stack([_as_object(r[k]) for r in rows]) for k in range(len(rows[0])))


def vmap(fun: Callable[..., Any], in_axes: int | None | Sequence[int | None] = 0,
         backend: str = "llvm") -> Callable[..., Any]:
    """Map ``fun`` over a leading batch axis (``in_axes`` 0 or None per argument, as
    JAX): traced once per row shape and evaluated for the whole batch in one kernel
    call, each argument an argument group of the kernel (unmapped ones passed once and
    broadcast inside it); ``backend="tape"`` evaluates on a tape instead."""
    cache = _Cache(fun, backend)

    def mapped(*args: Any) -> Any:
        axes = [in_axes] * len(args) if not isinstance(in_axes, (list, tuple)) else list(
            in_axes)
        if len(axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(axes)} entries for {len(args)} args")
        sizes = {np.shape(a)[0] for a, ax in zip(args, axes, strict=True) if ax == 0}
        if len(sizes) != 1:
            raise ValueError(f"vmap: mapped arguments need one common leading size, got "
                             f"{sorted(sizes) or 'no mapped argument'}")
        batch = sizes.pop()
        if _is_symbolic(args):
            return _symbolic_vmap(fun, args, axes, batch)
        rows = [np.asarray(a)[0] if ax == 0 else np.asarray(a) for a, ax in
                zip(args, axes, strict=True)]
        traced = cache.get(rows, "vmap")
        for ax in axes:
            if ax not in (0, None):
                raise ValueError(f"vmap: in_axes entries must be 0 or None, got {ax}")
        if traced.can_group():
            return _unstack(traced, traced.grouped_kernel()(*args))
        x = np.concatenate([_batched(a, ax, batch) for a, ax in zip(args, axes, strict=True)],
                           axis=1)
        return _unstack(traced, traced.evaluate(x))

    mapped.cache = cache  # type: ignore[attr-defined]
    return mapped


def _batched(arg: Any, axis: int | None, batch: int) -> np.ndarray:
    a = np.asarray(arg, dtype=np.float64)
    if axis == 0:
        return a.reshape(batch, -1)
    if axis is None:
        return np.broadcast_to(a.reshape(1, -1), (batch, a.size))
    raise ValueError(f"vmap: in_axes entries must be 0 or None, got {axis}")


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
