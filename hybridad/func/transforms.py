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

What one trace keeps and how it is evaluated (kernels, tapes, per-call runners, the
caches of traces) is in traced.py.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from ..backend import dask_arrays
from ..calculus.diff import directional, weighted_adjoints
from ..calculus.jacobian import gradient as symbolic_gradient
from ..calculus.jacobian import gradient as tensor_gradient
from ..calculus.jacobian import jacobian as symbolic_jacobian
from ..core.build import as_expr, as_operand, fresh_symbol
from ..core.expr import Expr
from ..core.scalarize import scalarize
from ..core.substitute import substitute
from ..errors import TracingError
from . import dask_calls
from .traced import (
    _FUNCTION_CACHES,  # noqa: F401  (tests look at the per-function caches)
    Argnums,
    Traced,
    _argnum_list,
    _as_object,
    _as_tensor,
    _Cache,
    _copy,
    _elements_of,
    _function_cache,
    _holds_expr,
    _jacobian_tree,
    _output_expr,
    _pick,
    _plain_key,
    _symbolic_call,
)
from .tracing import call_on_symbols, fresh_inputs, inside_trace, tracing


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
        if dask_arrays.has_dask(args, kwargs):      # lazy, one task over whole arrays
            return dask_calls.call_transform(compiled, args, kwargs)
        if _symbolic_call(args, kwargs):
            nested = _Nested.of(fun, args, kwargs)
            return nested.bind(nested.out, args)
        traced = cache.get(args, "jit", kwargs)
        return traced.structure(traced.evaluate(traced.flat_input(args)))

    compiled.cache = cache  # type: ignore[attr-defined]
    compiled._dask_spec = ("jit", fun, {"backend": backend})  # type: ignore[attr-defined]
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
        if dask_arrays.has_dask(args, kwargs):      # lazy, one task over whole arrays
            return dask_calls.call_transform(transformed, args, kwargs)
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
    transformed._dask_spec = ("value_and_grad", fun,  # type: ignore[attr-defined]
                              {"argnums": argnums, "backend": backend})
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
    transformed._dask_spec = ("grad", fun,  # type: ignore[attr-defined]
                              {"argnums": argnums, "backend": backend})
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
        if dask_arrays.has_dask(args, kwargs):      # lazy, one task over whole arrays
            return dask_calls.call_transform(transformed, args, kwargs)
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
    transformed._dask_spec = ("jacobian", fun, {  # type: ignore[attr-defined]
        "argnums": argnums, "mode": mode, "backend": backend})
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
        if dask_arrays.has_dask(args, kwargs):      # lazy, one call per chunk of rows
            return dask_calls.call_vmap(mapped, args, kwargs, axes)
        if not kwargs:
            return _map(fun, cache, args, axes)
        names = tuple(sorted(kwargs))
        if names not in keyword_caches:
            keyword_caches[names] = _Cache(_keywords_last(fun, len(args), names), backend)
        return _map(keyword_caches[names].fun, keyword_caches[names],
                    args + tuple(kwargs[n] for n in names), axes + [0] * len(names))

    mapped.cache = cache  # type: ignore[attr-defined]
    mapped._dask_spec = ("vmap", fun,  # type: ignore[attr-defined]
                         {"in_axes": in_axes, "backend": backend})
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
    # the trace needs one row's shapes; a batch of zero rows traces at zeros
    rows = [(np.asarray(a)[0] if batch else np.zeros(np.shape(a)[1:])) if ax == 0
            else np.asarray(a) for a, ax in zip(args, axes, strict=True)]
    traced = cache.get(rows, "vmap")
    if traced.can_group():
        return _unstack(traced, traced.grouped_kernel()(*args))
    x = np.concatenate([_batched(a, ax, batch) for a, ax in zip(args, axes, strict=True)],
                       axis=1)
    return _unstack(traced, traced.evaluate(x))


def _batched(arg: Any, axis: int | None, batch: int) -> np.ndarray:
    a = np.asarray(arg, dtype=np.float64)
    if axis == 0:
        return a.reshape(batch, math.prod(a.shape[1:]))   # (0, -1) is ambiguous
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
