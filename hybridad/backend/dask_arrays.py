"""Kernels and ``hybridad.func`` transforms on dask arrays (the optional extra ``dask``).

A kernel called with a ``dask.array`` returns lazy dask arrays: one kernel call per
chunk of the batch dimension (``dask.array.blockwise`` and ``map_blocks`` with explicit
``meta``, so dask never calls the kernel to guess shapes), results chunked as the batch.
Blocks reach the kernel uncopied (``apply_gufunc`` concatenates every block along a
row's own dimensions even when there is one: a copy of each chunk, about 30 ms per
million rows of ten features, nearly half the kernel's own time). Shared
(unbatched) arguments are one graph key that every chunk's task reads. With
``reduce="sum"|"mean"`` each chunk returns its partial sums (and its row count) and
``dask.array.reduction`` adds them in a tree; a mean divides by the total count at the
end, so the result equals the in-process ``reduce=`` to rounding.

``hybridad.func``: a ``vmap``'ed function (and anything composed inside it, such as
``vmap(value_and_grad(f))``) runs once per chunk of the mapped axis, unmapped arguments
shared. ``jit``, ``grad``, ``value_and_grad`` and the Jacobians see their arguments
whole (a function may couple rows), so they run as one task over whole arrays and
return dask arrays of one chunk.

What travels to the workers is a :class:`Portable`: the kernel pickled as expressions
and options (or a transform as its Python function and options), never machine code.
Each process builds it once, on first use, and keeps it in a per-process cache keyed by
the payload's digest and the host CPU, so a worker compiles a kernel once however many
chunks and computations it runs (``process_stats()`` counts the builds). Scheduling,
retries and data movement are dask.distributed's.

This module imports dask only when it is handed a dask array; hybridad imports without
it.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import math
import pickle
import sys
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

F64 = np.dtype(np.float64)


# -- detection: never imports dask ------------------------------------------------------------
def has_dask(args: Sequence[Any], kwargs: dict[str, Any] | None = None) -> bool:
    """Whether any argument (positional or keyword) is a dask array. Costs one dict
    lookup when dask was never imported (then no dask array can exist)."""
    if "dask" not in sys.modules:
        return False
    return any(map(is_dask_array, args)) or bool(kwargs) and any(
        map(is_dask_array, kwargs.values()))  # type: ignore[union-attr]


def is_dask_array(value: Any) -> bool:
    """A dask array (the legacy or the expression-based collection), by duck type."""
    return type(value).__module__.startswith("dask.") and hasattr(value, "chunks") \
        and hasattr(value, "__dask_graph__")


def _dask_array_module() -> Any:
    try:
        import dask.array
    except ImportError as error:      # pragma: no cover - a dask array implies dask
        raise ImportError("hybridad: dask arrays need the 'dask' extra: pip install "
                          "'hybridad[dask]'") from error
    return dask.array


# -- what travels: kernels and transforms as bytes, built once per process ------------------
@functools.cache
def host_cpu() -> str:
    """The host CPU's name and features, as LLVM sees them (compiled code is for it)."""
    import llvmlite.binding as llvm

    return f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"


# (payload digest, host CPU) -> the kernel or transform built from it, in this process
_BUILT: collections.OrderedDict[tuple[str, str], Any] = collections.OrderedDict()
MAX_BUILT = 64
_STATS = {"builds": 0}
_BUILD_LOCK = threading.Lock()


class Portable:
    """A kernel (pickled: expressions and options) or a transform (its function and
    options, by cloudpickle) as bytes and their digest. ``get()`` returns the object
    built from the bytes in this process, building it on first use only: unpickling a
    Portable (as the scheduler does with every graph) compiles nothing."""

    __slots__ = ("payload", "token")

    def __init__(self, token: str, payload: bytes):
        self.token, self.payload = token, payload

    def __reduce__(self) -> tuple:
        return (Portable, (self.token, self.payload))

    def __dask_tokenize__(self) -> str:
        return self.token

    def __repr__(self) -> str:
        return f"Portable({self.token}, {len(self.payload)} bytes)"

    def get(self) -> Any:
        key = (self.token, host_cpu())
        built = _BUILT.get(key)
        if built is not None:
            return built
        with _BUILD_LOCK:              # two threads of a worker never build one twice
            built = _BUILT.get(key)
            if built is None:
                built = _build(pickle.loads(self.payload))
                _STATS["builds"] += 1
                _remember(key, built)
            return built


def _remember(key: tuple[str, str], built: Any) -> None:
    _BUILT[key] = built
    _BUILT.move_to_end(key)
    while len(_BUILT) > MAX_BUILT:
        _BUILT.popitem(last=False)


def _build(loaded: Any) -> Any:
    """A kernel as unpickled, or the object a factory makes (a ``hybridad.func``
    function rebuilt from its spec: see func/dask_calls.py)."""
    if isinstance(loaded, tuple) and loaded and loaded[0] == "hybridad-build":
        return loaded[1]()
    return loaded


def process_stats() -> dict[str, Any]:
    """What this process built from payloads: ``builds`` (each one compiled a kernel or
    made a transform), ``tokens`` (the digests kept now), ``cpu`` (the host CPU's name)
    and ``pid``. Read on workers with ``client.run(process_stats)``."""
    import os

    return {"builds": _STATS["builds"], "tokens": [token for token, _ in _BUILT],
            "cpu": host_cpu().split(" ")[0], "pid": os.getpid()}


_PORTABLE: weakref.WeakKeyDictionary[Any, Portable] = weakref.WeakKeyDictionary()


def _portable(obj: Any, payload: Callable[[Any], bytes]) -> Portable:
    """The Portable of a kernel or transform, made once per object; the object itself is
    registered as this process's build, so in-process schedulers never rebuild it."""
    try:
        found = _PORTABLE.get(obj)
    except TypeError:
        found = None
    if found is not None:
        return found
    data = payload(obj)
    portable = Portable("hybridad-" + hashlib.sha256(data).hexdigest()[:32], data)
    with _BUILD_LOCK:
        _remember((portable.token, host_cpu()), obj)
    try:
        _PORTABLE[obj] = portable
    except TypeError:
        pass
    return portable


def portable_kernel(kernel: Any) -> Portable:
    """A kernel (``Kernel`` or ``TensorLambdified``) as a Portable: its own pickle,
    which holds expressions and options."""
    return _portable(kernel, lambda k: pickle.dumps(k, protocol=pickle.HIGHEST_PROTOCOL))


def portable_built(obj: Any, factory: Callable[[], Any]) -> Portable:
    """``obj`` as a Portable whose payload is ``factory`` (by cloudpickle), called once
    per process to make it there."""
    import cloudpickle

    return _portable(obj, lambda _: cloudpickle.dumps(("hybridad-build", factory),
                                                      protocol=pickle.HIGHEST_PROTOCOL))


# -- result structures: templates whose leaves are output shapes ------------------------------
class _Leaf:
    """An output of a template: its shape for one row (or for the whole result)."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)


def _leaves(tree: Any) -> list[Any]:
    """The leaves of nested tuples, depth first (the order kernels produce blocks)."""
    out, stack = [], [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _refill(tree: Any, values: Sequence[Any]) -> Any:
    """``tree`` with its leaves replaced by ``values``, in order."""
    it = iter(values)

    def fill(node: Any) -> Any:
        if isinstance(node, tuple):
            return tuple(fill(n) for n in node)
        return next(it)

    return fill(tree)


def _flat_arrays(result: Any, n: int) -> tuple[np.ndarray, ...]:
    """A chunk's result as ``n`` float64 arrays in block order."""
    flat = tuple(np.asarray(v, dtype=F64) for v in _leaves(result))
    if len(flat) != n:
        raise ValueError(f"hybridad on dask: a chunk returned {len(flat)} arrays, expected "
                         f"{n}")
    return flat


def _unwrap(blocks: Sequence[Any]) -> list[Any]:
    """Each argument's one block: blockwise without concatenation hands a dimension that
    is not in the output (a row's own dimensions, all of them one chunk) as a list of
    one block per such dimension; concatenating would copy every block."""
    out = []
    for block in blocks:
        while isinstance(block, list):
            block = block[0]
        out.append(block)
    return out


def _take(outputs: tuple[np.ndarray, ...], j: int) -> np.ndarray:
    """Output ``j`` of a chunk's tuple of outputs."""
    return outputs[j]


# -- the functions each chunk's task runs ---------------------------------------------------
def _chunk_kernel(portable: Portable, n: int, *blocks: Any) -> tuple[np.ndarray, ...]:
    """One kernel call on one chunk."""
    return _flat_arrays(portable.get()(*_unwrap(blocks)), n)


def _chunk_sums(portable: Portable, rows_from: int, *blocks: Any) -> np.ndarray:
    """One chunk's partial sums (a reduce="sum" kernel), flat, and its row count last:
    shape (1, size + 1), one row of the partials array."""
    arrays = _unwrap(blocks)
    sums = [np.ravel(np.asarray(v, dtype=F64)) for v in _leaves(portable.get()(*arrays))]
    rows = float(arrays[rows_from].shape[0])
    return np.concatenate(sums + [np.array([rows])])[None, :]


def _finish(total: np.ndarray, size: int, mean: bool) -> np.ndarray:
    """The tree-summed partials as flat sums, or means (NaN for no rows, as in-process)."""
    if not mean:
        return total[:size].copy()
    rows = total[size]
    return total[:size] / rows if rows else np.full(size, np.nan)


# -- arguments -------------------------------------------------------------------------------
def _inputs(args: Sequence[Any], cores: Sequence[tuple[int, ...]], batched: Sequence[bool],
            caller: str) -> list[Any]:
    """The arguments as float64 dask arrays ready for blockwise: batched ones chunked
    along the batch only (other dimensions rechunked to one chunk, batch chunks aligned
    to the first dask argument's), shared ones a single chunk (one key, read by every
    chunk's task). Shapes are checked as the in-process call checks them."""
    da = _dask_array_module()
    _check_shapes(args, cores, batched, caller)
    batch_chunks = next((a.chunks[0] for a, b in zip(args, batched) if b and
                         is_dask_array(a)), None)
    xs = []
    for arg, core, b in zip(args, cores, batched):
        if is_dask_array(arg):
            x = arg if arg.dtype == F64 else arg.astype(F64)
            wanted = ((batch_chunks,) if b else ()) + tuple((n,) for n in core)
            if x.chunks != wanted:
                x = x.rechunk(wanted)
        else:                          # a numpy batch follows the dask arguments' chunks
            lead = ((batch_chunks or -1),) if b else ()
            x = da.from_array(np.asarray(arg, dtype=F64), chunks=lead + (-1,) * len(core))
        xs.append(x)
    return xs


def _check_shapes(args: Sequence[Any], cores: Sequence[tuple[int, ...]],
                  batched: Sequence[bool], caller: str) -> None:
    """Dtypes, shapes and a common batch size, with the in-process call's messages."""
    batch = None
    for k, (arg, core, b) in enumerate(zip(args, cores, batched)):
        if isinstance(arg, (str, bytes)):
            raise TypeError(f"{caller}: argument {k} must be numeric, got a string {arg!r}")
        dtype = arg.dtype if is_dask_array(arg) else np.asarray(arg).dtype
        if dtype.kind not in "biuf":
            raise TypeError(f"{caller}: argument {k} must be a real numeric array, got "
                            f"dtype {dtype}")
        shape = tuple(np.shape(arg))
        wanted = (shape[:1] + core) if b else core
        if shape != wanted:
            expected = f"(batch, {', '.join(map(str, core))})" if b else str(core)
            raise ValueError(f"{caller}: argument {k} must have shape {expected}, got "
                             f"{shape}")
        if b and not math.isnan(shape[0]):
            if batch is not None and shape[0] != batch:
                raise ValueError(f"{caller}: arguments have different batch sizes {batch} "
                                 f"and {shape[0]} (argument {k})")
            batch = shape[0]


def _batched_by_shape(args: Sequence[Any], cores: Sequence[tuple[int, ...]],
                      caller: str) -> list[bool]:
    """Per argument, whether it carries the batch dimension (a kernel's rule: the
    group's shape is shared, one more leading dimension is a batch)."""
    flags = []
    for k, (arg, core) in enumerate(zip(args, cores)):
        shape = tuple(np.shape(arg))
        if shape == core:
            flags.append(False)
        elif len(shape) == len(core) + 1 and shape[1:] == core:
            flags.append(True)
        else:
            expected = ("() or (batch,)" if not core else
                        f"{core} or (batch, {', '.join(map(str, core))})")
            raise ValueError(f"{caller}: argument {k} must have shape {expected}, got "
                             f"{shape}")
    return flags


# -- building the lazy results ---------------------------------------------------------------
def _pairs(xs: Sequence[Any], cores: Sequence[tuple[int, ...]], batched: Sequence[bool]
           ) -> list[Any]:
    """blockwise's (array, index) pairs: the batch dimension "b" where there is one, and
    each argument's own dimensions, which are not in the output (one chunk each)."""
    pairs: list[Any] = []
    for k, (x, core, b) in enumerate(zip(xs, cores, batched)):
        pairs += [x, (("b",) if b else ()) + tuple(f"i{k}_{d}" for d in range(len(core)))]
    return pairs


def _apply(func: Callable[..., Any], xs: list[Any], cores: Sequence[tuple[int, ...]],
           out_cores: Sequence[tuple[int, ...]], batched: Sequence[bool], token: str
           ) -> list[Any]:
    """One task per batch chunk (one task in all without a batch) returning a tuple of
    outputs (blockwise, blocks passed uncopied), then each output as a dask array of
    ``(batch,) + core`` or ``core`` (map_blocks); explicit meta everywhere, so dask
    never calls ``func`` to learn shapes or dtypes."""
    da = _dask_array_module()
    lead = ("b",) if any(batched) else ()
    tuples = da.blockwise(func, lead, *_pairs(xs, cores, batched), concatenate=False,
                          dtype=object, meta=np.empty((0,) * len(lead), dtype=object),
                          token=token)
    outputs = []
    for j, core in enumerate(out_cores):
        ndim = len(lead) + len(core)
        outputs.append(tuples.map_blocks(
            _take, j, chunks=tuples.chunks + tuple((n,) for n in core),
            new_axis=list(range(len(lead), ndim)) if core else None, dtype=F64,
            meta=np.empty((0,) * ndim, dtype=F64), token=f"{token}_{j}"))
    return outputs


def _reduced(func: Callable[..., Any], xs: list[Any], cores: Sequence[tuple[int, ...]],
             batched: Sequence[bool], out_cores: Sequence[tuple[int, ...]], mean: bool
             ) -> list[Any]:
    """Partial sums per chunk (blockwise), added by a tree reduction
    (``dask.array.reduction``), then the means (or sums) split into the output blocks."""
    da = _dask_array_module()
    size = sum(math.prod(c) for c in out_cores)
    partials = da.blockwise(func, ("b", "f"), *_pairs(xs, cores, batched),
                            new_axes={"f": size + 1}, adjust_chunks={"b": 1},
                            concatenate=False, dtype=F64, meta=np.empty((0, 0), dtype=F64),
                            token="hybridad_partials")
    total = da.reduction(partials, np.sum, np.sum, combine=np.sum, axis=0, dtype=F64,
                         concatenate=True, meta=np.empty((0,), dtype=F64),
                         name="hybridad_tree_sum")
    flat = total.map_blocks(_finish, size, mean, chunks=((size,),), dtype=F64,
                            meta=np.empty((0,), dtype=F64))
    outputs, start = [], 0
    for core in out_cores:
        n = math.prod(core)
        outputs.append(flat[start:start + n].reshape(core))
        start += n
    return outputs


# -- kernels ---------------------------------------------------------------------------------
def call_kernel(kernel: Any, args: Sequence[Any], out: Any = None) -> Any:
    """A ``Kernel`` or ``TensorLambdified`` called with dask arrays: its result structure
    with lazy dask arrays for leaves (see the module docstring)."""
    if out is not None:
        raise TypeError("kernel: out= cannot take results computed on dask arrays (they "
                        "are lazy); call without out= and .compute() the result")
    cores, outs, template, sum_kernel = _kernel_layout(kernel)
    if len(args) != len(cores):
        signature = ", ".join(str(c) for c in cores)
        raise TypeError(f"kernel takes {len(cores)} argument(s) ({signature}), got "
                        f"{len(args)}")
    batched = _batched_by_shape(args, cores, "kernel")
    xs = _inputs(args, cores, batched, "kernel")
    reduce = getattr(kernel, "reduce", None)
    if reduce is not None and any(batched):
        portable = portable_kernel(sum_kernel())
        func = functools.partial(_chunk_sums, portable, batched.index(True))
        values = _reduced(func, xs, cores, batched, outs, reduce == "mean")
    else:
        if reduce is not None and _is_tensor_kernel(kernel):
            raise ValueError("kernel: reduce= needs a batch (a leading dimension)")
        func = functools.partial(_chunk_kernel, portable_kernel(kernel), len(outs))
        values = _apply(func, xs, cores, outs, batched, "hybridad_kernel")
    return _refill(template, values)


def _is_tensor_kernel(kernel: Any) -> bool:
    return type(kernel).__name__ == "TensorLambdified"


def _kernel_layout(kernel: Any) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]], Any,
                                         Callable[[], Any]]:
    """(argument shapes, output block shapes, result template, the reduce="sum"
    variant's maker) of a Kernel or a TensorLambdified."""
    from .kernel import lambdify
    from .layout import nest

    if _is_tensor_kernel(kernel):
        cores = [a.shape for a in kernel.args]
        outs = [e.shape for block in kernel.blocks for e in block]
        template = kernel._structure([_Leaf(s) for s in outs], scalars=False)
        args, exprs, derivatives, wrt, _, threads = kernel._init

        def tensor_sums() -> Any:
            return lambdify(args, exprs, derivatives, wrt=wrt, reduce="sum",
                            threads=threads, scalarize=False)

        return cores, outs, template, tensor_sums
    cores = [g.shape for g in kernel.groups]
    outs = [b.shape for b in kernel.blocks]
    template = nest(kernel._structure, [_Leaf(s) for s in outs])

    def sums() -> Any:
        if kernel.reduce == "sum":
            return kernel
        options = dict(kernel.options, reduce="sum")
        return lambdify(*kernel._init_args, scalarize=True, **options)

    return cores, outs, template, sums


def shape_only(shape: tuple[int, ...]) -> np.ndarray:
    """Zeros of ``shape`` that own no memory (a trace reads shapes only)."""
    return np.broadcast_to(np.zeros((), dtype=F64), shape)
