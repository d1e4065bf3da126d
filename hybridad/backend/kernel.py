"""``hd.lambdify``: compiled primal and derivative kernels.

The derivative expressions are built on the DAG first (reverse accumulation for
gradients and vector-Jacobian products, forward for Jacobian-vector products), then the
primal and derivative blocks are compiled together, so work they share is done once
per row. Backends: ``"llvm"`` (default, native code), ``"tape"`` and ``"numpy"``
(interpreted; same results, for checking and where no JIT is wanted).
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..calculus.diff import directional, weighted_adjoints
from ..calculus.jacobian import hessian as symbolic_hessian
from ..calculus.jacobian import jacobian as symbolic_jacobian
from ..core.build import fresh_symarray
from ..core.evaluate import evaluate
from ..core.expr import Expr
from ..core.scalarize import at_element_level, element_symbols, replace_symbols
from ..core.traverse import topo_order
from ..tape import Tape
from . import dask_arrays
from .layout import (
    F64,
    Block,
    Group,
    as_block,
    convert_arguments,
    nest,
    out_arrays,
    parse_groups,
    result_structure,
)
from .threads import MIN_ROWS_PER_THREAD, thread_pool  # noqa: F401 (re-exported)

DERIVATIVES = (None, "gradient", "jacobian", "hessian", "jvp", "vjp")
BACKENDS = ("llvm", "tape", "numpy")
REDUCTIONS = (None, "sum", "mean")


# -- building the blocks ------------------------------------------------------------------
def _wrt_groups(wrt: Any, groups: list[Group], caller: str) -> list[int]:
    """Indices of the groups to differentiate: all when ``wrt`` is None; else each item
    of ``wrt`` (a group as passed in ``args``, or a bare Symbol) must match a group."""
    if wrt is None:
        return list(range(len(groups)))
    items = [wrt] if isinstance(wrt, Expr) or _is_symbol_array(wrt) else list(wrt)
    picked = []
    for item in items:
        flat = tuple(np.asarray(item, dtype=object).ravel())
        matches = [k for k, g in enumerate(groups) if g.symbols == flat]
        if not matches:
            raise ValueError(f"{caller}: wrt item {item!r} is not one of the arguments")
        picked.append(matches[0])
    return picked


def _has_shaped_nodes(exprs: Any) -> bool:
    roots = [exprs] if isinstance(exprs, Expr) else [
        e for e in exprs if isinstance(e, Expr)] if isinstance(exprs, (list, tuple)) else []
    return any(node.shape for node in topo_order(roots))


def _is_symbol_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) or (isinstance(x, (list, tuple)) and bool(x) and all(
        isinstance(e, Expr) for e in x))


def _derivative_blocks(kind: str | None, values: Block, groups: list[Group],
                       wrt: list[int], caller: str, mode: str = "auto"
                       ) -> tuple[list[Block], list[Group]]:
    """Blocks after the values block, and extra argument groups (jvp / vjp vectors)."""
    outs = list(values.exprs)
    if kind is None:
        return [], []
    if kind in ("gradient", "hessian") and len(outs) != 1:
        raise ValueError(f"{caller}: derivatives={kind!r} needs a single expression, got "
                         f"{len(outs)}; use 'jacobian'")
    if kind == "gradient":
        grads = weighted_adjoints(outs, [_one()], [s for k in wrt for s in groups[k].symbols])
        return _split(grads, [groups[k] for k in wrt], ()), []
    if kind == "jacobian":
        return [Block(tuple(symbolic_jacobian(outs, list(groups[k].symbols), mode).ravel()),
                      values.shape + groups[k].shape) for k in wrt], []
    if len(wrt) != 1:
        raise ValueError(f"{caller}: derivatives={kind!r} needs exactly one argument to "
                         f"differentiate, got {len(wrt)}; pass wrt=")
    group = groups[wrt[0]]
    if kind == "hessian":
        grad = weighted_adjoints(outs, [_one()], list(group.symbols))
        hess = symbolic_hessian(outs[0], list(group.symbols))
        return [Block(tuple(grad), group.shape),
                Block(tuple(hess.ravel()), group.shape + group.shape)], []
    if kind == "jvp":
        v = _fresh_group("jvp_v", group.shape)
        jv = directional(outs, dict(zip(group.symbols, v.symbols, strict=True)))
        return [Block(tuple(jv), values.shape)], [v]
    w = _fresh_group("vjp_w", values.shape)                       # kind == "vjp"
    wj = weighted_adjoints(outs, list(w.symbols), list(group.symbols))
    return [Block(tuple(wj), group.shape)], [w]


def _one() -> Expr:
    from ..core.build import ONE

    return ONE


def _fresh_group(name: str, shape: tuple[int, ...]) -> Group:
    # fresh: a seed symbol must never be one of the expressions' own symbols
    symbols = fresh_symarray(name, shape if shape else (1,))
    return Group(tuple(np.asarray(symbols, dtype=object).ravel()), shape)


def _split(flat: Sequence[Expr], groups: list[Group], lead: tuple[int, ...]) -> list[Block]:
    blocks, start = [], 0
    for g in groups:
        blocks.append(Block(tuple(flat[start:start + g.size]), lead + g.shape))
        start += g.size
    return blocks


# -- the kernel -----------------------------------------------------------------------------
class Kernel:
    """A compiled function of argument groups returning value and derivative blocks.

    Call with one array per argument group, each of the group's shape (shared by every
    row) or with one leading batch dimension. ``out=`` (numpy's convention) takes arrays
    of the result's shapes, nested like the result; the kernel writes into them directly
    and returns ``out``. The call path is one straight line: the compiled native entry
    (``_native``, when the process's object layout is understood), else one conversion
    of the arguments and one call of the runner (``_call_python``).
    """

    def __init__(self, args: Any, exprs: Any, derivatives: str | None = None, *,
                 wrt: Any = None, reduce: str | None = None, backend: str = "llvm",
                 fastmath: bool = False, opt_level: int = 2, threads: int = 1,
                 mode: str = "auto"):
        _check_options(derivatives, reduce, backend, opt_level, threads)
        self._init_args = (args, exprs, derivatives)
        # tensor symbols and shaped outputs run at element level (small tensors)
        leaves = element_symbols(args)
        if leaves or _has_shaped_nodes(exprs):
            args, wrt = replace_symbols(args, leaves), replace_symbols(wrt, leaves)
            exprs = at_element_level(exprs, leaves)
        self.options = {"wrt": wrt, "reduce": reduce, "backend": backend,
                        "fastmath": fastmath, "opt_level": opt_level, "threads": threads,
                        "mode": mode}
        groups, self.flat_args = parse_groups(args)
        self.values = as_block(exprs)
        wrt_index = _wrt_groups(wrt, groups, "lambdify")
        derivative_blocks, extra = _derivative_blocks(derivatives, self.values, groups,
                                                      wrt_index, "lambdify", mode)
        self.groups = groups + extra
        self.blocks = [self.values] + derivative_blocks
        self.derivatives, self.reduce, self.backend = derivatives, reduce, backend
        self.threads = threads
        self._several_wrt = derivatives in ("gradient", "jacobian") and len(wrt_index) > 1
        self._check_free_symbols()
        self.compile_seconds = 0.0
        self.cache_hit = False
        self._structure = result_structure(derivatives, len(self.blocks), self._several_wrt)
        self._runner = self._make_runner(fastmath, opt_level)
        self._native = getattr(self._runner, "native_entry", lambda f: None)(self._call_python)
        if self._native is not None:
            self.__class__ = _called_through(self._native)

    def _check_free_symbols(self) -> None:
        from ..core.traverse import free_symbols

        known = {s for g in self.groups for s in g.symbols}
        missing = set(free_symbols([x for b in self.blocks for x in b.exprs])) - known
        if missing:
            names = ", ".join(sorted(s.param for s in missing))
            raise ValueError(f"lambdify: the expressions use symbols that are not "
                             f"arguments: {names}")

    def _make_runner(self, fastmath: bool, opt_level: int) -> Any:
        if self.backend == "llvm":
            from .llvm.runner import LLVMRunner

            start = time.perf_counter()
            runner = LLVMRunner(self.groups, self.blocks, self.reduce is not None,
                                fastmath, opt_level, self._structure)
            self.compile_seconds = time.perf_counter() - start
            self.cache_hit = runner.cache_hit
            return runner
        return _InterpretedRunner(self.groups, self.blocks, self.backend)

    # -- calling --------------------------------------------------------------------------
    def _call_python(self, *args: Any, out: Any = None) -> Any:
        """Every call the native entry does not take: one conversion of the arguments,
        one call of the runner writing into ``out`` (checked) or fresh arrays."""
        if dask_arrays.has_dask(args):          # lazy: one kernel call per dask chunk
            return dask_arrays.call_kernel(self, args, out)
        arrays, batch, batched = convert_arguments(args, self.groups, "kernel")
        lead = () if batch is None or self.reduce else (batch,)
        shapes = [lead + b.shape for b in self.blocks]
        if out is None:
            targets = [np.empty(s) for s in shapes]
        else:
            targets = out_arrays(out, self._structure, shapes, "kernel")
            if _overlapping(targets, arrays):       # as numpy: as if computed first
                return self._copy_into(targets, self._call_python(*arrays), out)
        self._runner.run(arrays, batched, batch, targets, self.reduce, self.threads)
        if self.reduce == "mean" and batch is not None:
            _divide(targets, batch)
        if out is not None:
            return out
        return nest(self._structure, [t[()] if t.ndim == 0 else t for t in targets])

    __call__ = _call_python

    def _copy_into(self, targets: list[np.ndarray], result: Any, out: Any) -> Any:
        """``out`` after copying the blocks of ``result`` (computed apart) into it."""
        for target, value in zip(targets, _blocks_of(result, self._structure, len(targets))):
            target[...] = value
        return out

    def info(self) -> dict[str, Any]:
        """What was compiled: backend, DAG nodes per row, LLVM segment functions, IR size,
        compile seconds and whether the compile cache answered."""
        from .llvm.codegen import total_nodes

        info = {"backend": self.backend, "nodes": total_nodes([b.exprs for b in self.blocks]),
                "compile_seconds": self.compile_seconds, "cache_hit": self.cache_hit}
        if self.backend == "llvm":
            info.update(segments=self._runner.segments, ir_chars=self._runner.ir_chars)
        return info

    def to_c(self, name: str = "f") -> tuple[str, str]:
        """``(source, header)``: this kernel as self-contained C99 (libm only), the
        function ``void name(long n_rows, const double *arg0, long stride0, ...,
        double *out0, ...)`` documented in the header (see hybridad/backend/c)."""
        from .c import kernel_to_c

        return kernel_to_c(self, name)

    # -- pickling: the expressions travel, the code is recompiled ------------------------
    def __reduce__(self) -> tuple:
        args, exprs, derivatives = self._init_args
        return (_rebuild, (args, exprs, derivatives, self.options))

    def __repr__(self) -> str:
        return (f"Kernel({', '.join(str(g.shape) for g in self.groups)} -> "
                f"{', '.join(str(b.shape) for b in self.blocks)}, "
                f"derivatives={self.derivatives!r}, backend={self.backend!r})")


def _called_through(entry: Any) -> type:
    """A subclass of :class:`Kernel` whose instances are called straight through the
    builtin ``entry`` (no Python frame per call; the entry itself hands whatever it does
    not take to ``Kernel._call_python``). A builtin function does not bind as a method,
    so the class attribute is called with the call's own arguments."""
    return type("Kernel", (Kernel,), {"__call__": entry, "__slots__": (),
                                      "__module__": Kernel.__module__,
                                      "__qualname__": Kernel.__qualname__,
                                      "__doc__": Kernel.__doc__})


def _divide(targets: list[np.ndarray], batch: int) -> None:
    """Sums to means, in place (NaN for an empty batch)."""
    for t in targets:
        if batch:
            np.divide(t, batch, out=t)
        else:
            t.fill(np.nan)


def _overlapping(targets: list[np.ndarray], arrays: list[np.ndarray]) -> bool:
    """Whether an ``out=`` array may share memory with an argument or another one."""
    return any(np.may_share_memory(t, other) for k, t in enumerate(targets)
               for other in arrays + targets[k + 1:])


def _blocks_of(result: Any, structure: Any, n: int) -> list[Any]:
    """The blocks of a nested result, by index (the inverse of ``nest``)."""
    blocks: list[Any] = [None] * n
    stack = [(structure, result)]
    while stack:
        part, value = stack.pop()
        if isinstance(part, int):
            blocks[part] = value
        else:
            stack.extend(zip(part, value))
    return blocks


def _rebuild(args: Any, exprs: Any, derivatives: str | None, options: dict) -> Kernel:
    # through lambdify's cache: a process that loads the same kernel again (a worker
    # given it with every task) finds the one it built
    return lambdify(args, exprs, derivatives, scalarize=True, **options)


def _check_options(derivatives: Any, reduce: Any, backend: Any, opt_level: Any,
                   threads: Any) -> None:
    for name, value, allowed in (("derivatives", derivatives, DERIVATIVES),
                                 ("reduce", reduce, REDUCTIONS),
                                 ("backend", backend, BACKENDS),
                                 ("opt_level", opt_level, (0, 1, 2, 3))):
        if value not in allowed:
            raise ValueError(f"lambdify: {name} must be one of {allowed}, got {value!r}")
    if not (isinstance(threads, int) and threads >= 1):
        raise ValueError(f"lambdify: threads must be a positive int, got {threads!r}")


# -- interpreted backends ---------------------------------------------------------------------
class _InterpretedRunner:
    """Tape or symbolic evaluation with the same argument handling as native kernels."""

    def __init__(self, groups: list[Group], blocks: list[Block], backend: str):
        self.groups, self.blocks, self.backend = groups, blocks, backend
        self.inputs = [s for g in groups for s in g.symbols]
        self.outputs = [x for b in blocks for x in b.exprs]
        self.tape = Tape(self.outputs, self.inputs) if backend == "tape" else None

    def run(self, arrays: list[np.ndarray], batched: list[bool], batch: int | None,
            outs: list[np.ndarray], reduce: str | None, threads: int) -> None:
        """The same contract as ``LLVMRunner.run``: results written into ``outs``."""
        if batch is None:
            values = self._evaluate(np.concatenate([a.ravel() for a in arrays])[None, :])[0]
        else:
            # the row size is explicit: reshape(0, -1) cannot infer it for zero rows
            columns = [a.reshape(batch, math.prod(a.shape[1:])) if b else
                       np.broadcast_to(a.ravel(), (batch, a.size))
                       for a, b in zip(arrays, batched, strict=True)]
            x = np.concatenate(columns, axis=1) if columns else np.zeros((batch, 0))
            values = self._evaluate(x)
            values = values.sum(axis=0) if reduce is not None else values
        start = 0
        for out, block in zip(outs, self.blocks, strict=True):
            out[...] = values[..., start:start + len(block.exprs)].reshape(out.shape)
            start += len(block.exprs)

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        if self.tape is not None:
            return self.tape.evaluate(x) if x.shape[0] else np.zeros((0, len(self.outputs)))
        env = {s: x[:, j] for j, s in enumerate(self.inputs)}
        values = evaluate(self.outputs, env) if self.outputs else []
        return np.stack([np.broadcast_to(np.asarray(v, dtype=F64), (x.shape[0],))
                         for v in values], axis=1)


def clear_kernel_cache() -> int:
    """Forget every compiled kernel kept for reuse (kernels in use keep their code);
    returns how many were forgotten. Use it to measure compile time, or free memory."""
    from .llvm import engine

    count = engine.cache_size() + len(_KERNELS)
    engine.clear_cache()
    _KERNELS.clear()
    return count


# lambdify's results by (argument symbols, output nodes, derivative kind, options): nodes
# are interned, so an identical request finds its kernel without rebuilding derivatives
# or IR. The most recent MAX_KERNELS are kept.
_KERNELS: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
MAX_KERNELS = 256


def _key_part(value: Any) -> Any:
    """A hashable stand-in for a lambdify argument: expressions by identity (they are
    interned), arrays and sequences by their items; TypeError when there is none."""
    if isinstance(value, Expr) or value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype != object:
            raise TypeError("not a symbolic array")
        return ("array", value.shape, tuple(_key_part(v) for v in value.ravel()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_key_part(v) for v in value))
    raise TypeError(f"no cache key for {type(value).__name__}")


def lambdify(args: Any, exprs: Any, derivatives: str | None = None, *, wrt: Any = None,
             reduce: str | None = None, backend: str = "llvm", fastmath: bool = False,
             opt_level: int = 2, threads: int = 1, mode: str = "auto",
             scalarize: bool | None = None) -> Any:
    """Compile ``exprs`` as a function of ``args`` (see DESIGN.md §2 and the README).

    ``derivatives``: None, "gradient", "jacobian", "hessian", "jvp" (an extra argument v
    shaped like the differentiated group) or "vjp" (an extra argument w shaped like the
    outputs). ``wrt`` picks argument groups; ``reduce`` ("sum" | "mean") accumulates over
    the batch inside the kernel; ``mode`` builds Jacobians by rows ("reverse"), columns
    ("forward") or by shape ("auto"); ``threads`` splits large batches.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> k = hd.lambdify([x1, x2], hd.log(x1) + x1 * x2 - hd.sin(x2), derivatives="gradient")
    >>> value, grad = k([2.0, 5.0])
    >>> round(float(value), 3), [round(float(g), 3) for g in grad]
    (11.652, [5.5, 1.716])

    With tensor symbols among ``args`` (each its own argument), ``scalarize`` chooses
    the level: True unrolls every element (fastest calls for small tensors), False
    compiles loop nests and BLAS calls (compile time independent of sizes), None picks
    by size (``tensor_kernel.SCALARIZE_LIMIT`` scalar nodes).
    """
    try:
        key = _key_part((args, exprs, derivatives, wrt, reduce, backend, fastmath, opt_level,
                         threads, mode, scalarize))
    except TypeError:
        key = None
    if key is not None and key in _KERNELS:
        _KERNELS.move_to_end(key)
        return _KERNELS[key]
    kernel = _build(args, exprs, derivatives, wrt, reduce, backend, fastmath, opt_level,
                    threads, mode, scalarize)
    if key is not None:
        _KERNELS[key] = kernel
        if len(_KERNELS) > MAX_KERNELS:
            _KERNELS.popitem(last=False)
    return kernel


def _build(args: Any, exprs: Any, derivatives: str | None, wrt: Any, reduce: str | None,
           backend: str, fastmath: bool, opt_level: int, threads: int, mode: str,
           scalarize: bool | None) -> Any:
    if backend == "llvm" and _tensor_arguments(args):
        from .tensor_kernel import TensorLambdified, choose_scalarize

        if not choose_scalarize(exprs, scalarize):
            _check_options(derivatives, reduce, backend, opt_level, threads)
            return TensorLambdified(args, exprs, derivatives, wrt=wrt, reduce=reduce,
                                    threads=threads)
    return Kernel(args, exprs, derivatives, wrt=wrt, reduce=reduce, backend=backend,
                  fastmath=fastmath, opt_level=opt_level, threads=threads, mode=mode)


def _tensor_arguments(args: Any) -> bool:
    """Whether ``args`` is a list of symbols with at least one tensor symbol."""
    return isinstance(args, (list, tuple)) and bool(args) and all(
        isinstance(a, Expr) and a.is_symbol for a in args) and any(a.shape for a in args)
