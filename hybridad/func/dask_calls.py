"""``hybridad.func`` functions called with dask arrays (the optional extra ``dask``).

``vmap``'ed functions split by chunk of the mapped axis; ``jit``, ``grad`` /
``value_and_grad`` and the Jacobians see their arguments whole and run as one lazy task.
The functions travel as their specs (the user's function and the transform's options)
and are rebuilt once per process; the machinery (tasks, shared keys, the per-process
cache) is backend/dask_arrays.py's, which knows nothing of this layer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..backend.dask_arrays import (
    Portable,
    _apply,
    _flat_arrays,
    _inputs,
    _Leaf,
    _leaves,
    _refill,
    _unwrap,
    has_dask,
    portable_built,
    shape_only,
)


def portable_transform(transformed: Callable[..., Any]) -> Portable:
    """A function returned by ``hybridad.func`` as a Portable: the user's function and
    the transform's options, nested transforms as specs (their caches and kernels stay
    behind; each process traces and compiles its own)."""
    return portable_built(transformed, functools.partial(_build_transform, _spec(transformed)))


def _spec(fun: Any) -> tuple:
    """("transform", kind, inner spec, options) for a hybridad.func function, else
    ("function", fun)."""
    spec = getattr(fun, "_dask_spec", None)
    if spec is None:
        return ("function", fun)
    kind, inner, options = spec
    return ("transform", kind, _spec(inner), options)


def _build_transform(spec: tuple) -> Any:
    if spec[0] == "function":
        return spec[1]
    from . import transforms

    _, kind, inner, options = spec
    return getattr(transforms, kind)(_build_transform(inner), **options)


def _chunk_transform(portable: Portable, static: dict[str, Any], n_positional: int,
                     names: tuple[str, ...], n: int, *blocks: Any) -> tuple[np.ndarray, ...]:
    """A hybridad.func function on one chunk (or on whole arrays): positional blocks,
    mapped keyword blocks (``names``) and static keyword values."""
    arrays = _unwrap(blocks)
    keywords = dict(static, **dict(zip(names, arrays[n_positional:])))
    return _flat_arrays(portable.get()(*arrays[:n_positional], **keywords), n)


def call_transform(transformed: Callable[..., Any], args: Sequence[Any],
                   kwargs: dict[str, Any]) -> Any:
    """``jit``, ``value_and_grad`` / ``grad`` or ``jacobian`` (jacfwd, jacrev, hessian)
    called with dask arrays. These functions see their arguments whole (a function may
    couple rows), so the result is one task over the whole arrays: lazy dask arrays of
    one chunk, equal to the in-process call. Splitting work across chunks is ``vmap``'s
    (below), or a kernel's with ``reduce=``."""
    kind, _, options = transformed._dask_spec              # type: ignore[attr-defined]
    if has_dask((), kwargs):
        raise TypeError(f"{kind}: keyword arguments are static (not traced) and cannot be "
                        f"dask arrays; pass arrays positionally")
    shapes = tuple(tuple(np.shape(a)) for a in args)
    template = _transform_template(transformed, kind, options, shapes, kwargs)
    outs = [leaf.shape for leaf in _leaves(template)]
    cores = list(shapes)
    xs = _inputs(args, cores, [False] * len(args), kind)
    func = functools.partial(_chunk_transform, portable_transform(transformed), dict(kwargs),
                             len(args), (), len(outs))
    return _refill(template, _apply(func, xs, cores, outs, [False] * len(args),
                                    f"hybridad_{kind}"))


def _transform_template(transformed: Any, kind: str, options: dict[str, Any],
                        shapes: tuple[tuple[int, ...], ...], kwargs: dict[str, Any]) -> Any:
    """The result structure of a whole-array transform, from a trace in this process
    (shapes only: nothing is evaluated or compiled)."""
    from .traced import _argnum_list, _jacobian_tree, _pick

    name = {"jit": "jit", "value_and_grad": "grad", "jacobian": "jacobian"}[kind]
    traced = transformed.cache.get([shape_only(s) for s in shapes], name, kwargs)
    parts = [_Leaf(s) for s in traced.out_shapes]
    if kind == "jit":
        return tuple(parts) if traced.is_tuple else parts[0]
    nums = _argnum_list(options["argnums"], len(shapes), name)
    if kind == "value_and_grad":
        if traced.out_shapes != [()] or traced.is_tuple:
            raise TypeError(f"grad requires a scalar output, got shape "
                            f"{traced.out_shapes[0] if traced.out_shapes else ()}; "
                            "use jacrev or jacfwd for array outputs")
        return (_Leaf(()), _pick([_Leaf(shapes[a]) for a in nums], options["argnums"]))
    blocks = [tuple(_Leaf(s + shapes[a]) for s in traced.out_shapes) if traced.is_tuple
              else _Leaf(traced.out_shapes[0] + shapes[a]) for a in nums]
    return _jacobian_tree(blocks, traced.is_tuple, options["argnums"])


def call_vmap(mapped: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any],
              axes: list[int | None]) -> Any:
    """A ``vmap``'ed function called with dask arrays: one call of it per chunk of the
    mapped (leading) axis, as lazy dask arrays chunked like that axis. Unmapped
    arguments are shared (one key each); keyword arguments are mapped, as in-process."""
    names = tuple(sorted(kwargs))
    values = tuple(args) + tuple(kwargs[n] for n in names)
    axes = list(axes) + [0] * len(names)
    for ax in axes:
        if ax not in (0, None):
            raise ValueError(f"vmap: in_axes entries must be 0 or None, got {ax}")
    if any(ax == 0 and np.ndim(a) == 0 for a, ax in zip(values, axes)):
        raise ValueError("vmap: a mapped argument (in_axes 0) must have a leading axis, "
                         "got a scalar")
    if not any(ax == 0 for ax in axes):
        raise ValueError("vmap: mapped arguments need one common leading size, got no "
                         "mapped argument")
    batched = [ax == 0 for ax in axes]
    cores = [tuple(np.shape(a))[1:] if b else tuple(np.shape(a))
             for a, b in zip(values, batched)]
    traced = _vmap_trace(mapped, len(args), names, cores)
    parts = [_Leaf(s) for s in traced.out_shapes]
    template = tuple(parts) if traced.is_tuple else parts[0]
    outs = [leaf.shape for leaf in parts]
    xs = _inputs(values, cores, batched, "vmap")
    func = functools.partial(_chunk_transform, portable_transform(mapped), {}, len(args),
                             names, len(outs))
    return _refill(template, _apply(func, xs, cores, outs, batched, "hybridad_vmap"))


def _vmap_trace(mapped: Any, n_positional: int, names: tuple[str, ...],
                cores: list[tuple[int, ...]]) -> Any:
    """The trace of one row (shapes only), kept with the mapped function."""
    from .traced import _Cache
    from .transforms import _keywords_last

    if not names:
        cache = mapped.cache
    else:
        caches = mapped.__dict__.setdefault("_dask_keyword_caches", {})
        if names not in caches:
            _, fun, options = mapped._dask_spec
            caches[names] = _Cache(_keywords_last(fun, n_positional, names),
                                   options["backend"])
        cache = caches[names]
    return cache.get([shape_only(c) for c in cores], "vmap")
