"""Argument groups and output blocks of a kernel, and the checks on call arguments.

A kernel argument is a *group* of symbols with a shape: a flat sequence of Symbols is
one vector group (n,); a sequence whose elements are arrays/lists of Symbols is several
groups; a bare Symbol among them is a scalar group (). A call passes each group either
with its own shape (shared by every row) or with one leading batch dimension.
Everything here runs before any pointer reaches native code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

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


def convert_argument(value: Any, group: Group, k: int, caller: str) -> np.ndarray:
    """A C-contiguous float64 array of ``value`` (copied only when needed)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{caller}: argument {k} must be numeric, got a string {value!r}")
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{caller}: argument {k} must be a real numeric array, got dtype "
                        f"{array.dtype}")
    # not np.ascontiguousarray: it turns a 0-d argument (a scalar group) into shape (1,)
    return np.asarray(array, dtype=F64, order="C")


def batch_of(arrays: Sequence[np.ndarray], groups: Sequence[Group], caller: str
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
