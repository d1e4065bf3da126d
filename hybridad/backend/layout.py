"""Argument groups and output blocks of a kernel, and the checks on call arguments.

A kernel argument is a *group* of symbols with a shape: a flat sequence of Symbols is
one vector group (n,); a sequence whose elements are arrays/lists of Symbols is several
groups; a bare Symbol among them is a scalar group (). A call passes each group either
with its own shape (shared by every row) or with one leading batch dimension.
The checks on arguments and on ``out=``, and the rule of how result blocks nest, are
written here once; the native entry (llvm/pyentry.py) takes only what these would pass
unchanged. Everything here runs before any pointer reaches native code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.build import as_expr
from ..core.expr import Expr

F64 = np.dtype(np.float64)


@dataclass(frozen=True)
class Group:
    """One kernel argument: its symbols (flattened, C order) and their shape."""

    symbols: tuple[Expr, ...]
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.symbols)


@dataclass(frozen=True)
class Block:
    """One kernel output: flat expressions and the shape of one row of results."""

    exprs: tuple[Expr, ...]
    shape: tuple[int, ...]


def _is_symbol(x: Any) -> bool:
    return isinstance(x, Expr) and x.is_symbol


def _group(item: Any, caller: str) -> Group:
    array = np.asarray(item, dtype=object) if not isinstance(item, Expr) else None
    if array is None:
        if not _is_symbol(item):
            raise TypeError(f"{caller}: arguments must be Symbols, got {item!r}")
        return Group((item,), ())
    flat = tuple(array.ravel())
    bad = [x for x in flat if not _is_symbol(x)]
    if bad:
        raise TypeError(f"{caller}: arguments must be Symbols, got {bad[0]!r}")
    return Group(flat, array.shape)


def parse_groups(args: Any, caller: str = "lambdify") -> tuple[list[Group], bool]:
    """Groups of ``args`` and whether ``args`` was one flat vector of symbols."""
    if isinstance(args, Expr):
        return [_group(args, caller)], False
    items = list(np.asarray(args, dtype=object).ravel()) if isinstance(args, np.ndarray) \
        else list(args)
    if isinstance(args, np.ndarray) or all(isinstance(a, Expr) for a in items):
        return [_group(np.asarray(args, dtype=object), caller)], True
    groups = [_group(a, caller) for a in items]
    seen: set[Expr] = set()
    for g in groups:
        repeated = seen.intersection(g.symbols)
        if repeated:
            raise ValueError(f"{caller}: symbol {next(iter(repeated)).param} appears in "
                             "more than one argument")
        seen.update(g.symbols)
    return groups, False


def as_block(exprs: Any) -> Block:
    array = np.asarray(exprs, dtype=object) if not isinstance(exprs, Expr) else None
    if array is None:
        return Block((exprs,), ())
    return Block(tuple(as_expr(e) for e in array.ravel()), array.shape)


def convert_arguments(values: Sequence[Any], groups: Sequence[Group], caller: str
                      ) -> tuple[list[np.ndarray], int | None, list[bool]]:
    """The one check and conversion of call arguments (the native entry takes only what
    would pass here unchanged): C-contiguous, aligned float64 arrays (copied only when
    needed), the common batch size (None when every argument is one point) and, per
    argument, whether it carries the batch dimension."""
    if len(values) != len(groups):
        signature = ", ".join(str(g.shape) for g in groups)
        raise TypeError(f"{caller} takes {len(groups)} argument(s) ({signature}), got "
                        f"{len(values)}")
    arrays = [_as_float64(v, k, caller) for k, v in enumerate(values)]
    batch, batched = _batch_of(arrays, groups, caller)
    return arrays, batch, batched


def _as_float64(value: Any, k: int, caller: str) -> np.ndarray:
    """A C-contiguous, aligned float64 array of ``value`` (copied only when needed)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{caller}: argument {k} must be numeric, got a string {value!r}")
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{caller}: argument {k} must be a real numeric array, got dtype "
                        f"{array.dtype}")
    # not np.ascontiguousarray: it turns a 0-d argument (a scalar group) into shape (1,)
    array = np.asarray(array, dtype=F64, order="C")
    return array if array.flags.aligned else array.copy()


def _batch_of(arrays: Sequence[np.ndarray], groups: Sequence[Group], caller: str
              ) -> tuple[int | None, list[bool]]:
    """The common batch size (None when every argument is one point) and, per argument,
    whether it carries the batch dimension."""
    batch: int | None = None
    batched = []
    for k, (a, g) in enumerate(zip(arrays, groups, strict=True)):
        if a.shape == g.shape:
            batched.append(False)
            continue
        if a.ndim == len(g.shape) + 1 and a.shape[1:] == g.shape:
            if batch is not None and a.shape[0] != batch:
                raise ValueError(f"{caller}: arguments have different batch sizes "
                                 f"{batch} and {a.shape[0]} (argument {k})")
            batch = a.shape[0]
            batched.append(True)
            continue
        expected = ("() or (batch,)" if not g.shape else
                    f"{g.shape} or (batch, {', '.join(map(str, g.shape))})")
        raise ValueError(f"{caller}: argument {k} must have shape {expected}, got "
                         f"{a.shape}")
    return batch, batched


# -- results: how blocks nest, and out= ----------------------------------------------------
Structure = int | tuple["Structure", ...]   # a block index or a tuple of structures


def result_structure(derivatives: str | None, n_blocks: int, several_wrt: bool
                     ) -> Structure:
    """How the blocks nest in a result (the one rule, read by the Python path, ``out=``
    and the native entry): block 0 alone, (0, 1, ...) or (0, (1, ...)) for gradients or
    Jacobians of several argument groups."""
    if derivatives is None:
        return 0
    rest = tuple(range(1, n_blocks))
    return (0, rest) if several_wrt else (0, *rest)


def nest(structure: Structure, items: Sequence[Any]) -> Any:
    """``structure`` with block k replaced by ``items[k]`` (structures are at most two
    tuples deep, see :func:`result_structure`)."""
    if isinstance(structure, int):
        return items[structure]
    return tuple([items[part] if isinstance(part, int) else nest(part, items)
                  for part in structure])


def out_arrays(out: Any, structure: Structure, shapes: Sequence[tuple[int, ...]],
               caller: str) -> list[np.ndarray]:
    """numpy's ``out=``: the caller's arrays, by block, after checking that ``out`` nests
    like the result (tuples or lists) and that each is a writable, C-contiguous, aligned
    float64 array of its block's shape; the kernel then writes into them directly."""
    arrays: list[Any] = [None] * len(shapes)
    stack: list[tuple[Structure, Any]] = [(structure, out)]
    while stack:
        part, target = stack.pop()
        if isinstance(part, int):
            arrays[part] = _out_array(target, shapes[part], caller)
            continue
        if not isinstance(target, (tuple, list)) or len(target) != len(part):
            given = type(target).__name__ + (f" of {len(target)}" if isinstance(
                target, (tuple, list)) else "")
            raise ValueError(f"{caller}: out= must nest like the result: {len(part)} "
                             f"items here, got {given}")
        stack.extend(reversed(list(zip(part, target))))    # checked in block order
    return arrays


def _out_array(target: Any, shape: tuple[int, ...], caller: str) -> np.ndarray:
    """``target`` if the kernel may write a block of ``shape`` straight into it."""
    if isinstance(target, np.ndarray) and target.dtype == F64 and target.shape == shape \
            and target.flags.c_contiguous and target.flags.aligned \
            and target.flags.writeable:
        return target
    given = f"{type(target).__name__}"
    if isinstance(target, np.ndarray):
        flags = target.flags
        problems = [name for name, bad in (("read-only", not flags.writeable),
                                           ("not C-contiguous", not flags.c_contiguous),
                                           ("unaligned", not flags.aligned)) if bad]
        given = " ".join([given, str(target.dtype), str(target.shape), *problems])
    raise ValueError(f"{caller}: out= needs a writable float64 C-contiguous array of "
                     f"shape {shape} here, got {given}")
