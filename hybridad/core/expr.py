"""Expression nodes and the intern table.

Every node is immutable and interned: the same operation on the same children (with the
same parameter) is the same Python object, so equality is identity and hashing is
``id``-based and O(1). Nothing here recurses into structure.

The intern table is keyed on ``(op, ids of the children, param)`` and holds its values
weakly. Keying on ids rather than on the child objects keeps the table from owning the
children: freeing a 100,000-deep chain then goes through the nodes' own ``args`` tuples
(which CPython frees without deep C recursion) instead of a cascade of table callbacks.
An id is only reused after its object died, and a parent keeps its children alive, so a
live entry's key can never be stale; ``_lookup`` re-checks the children anyway.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import weakref
from typing import Any

import numpy as np

from ..errors import HybridadError, TracingError

_serials = itertools.count(1)
_table: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

SYMBOL = "symbol"
CONSTANT = "const"
ARRAY = "array"      # a constant with a shape (a read-only float64 numpy array)


class Expr:
    """A node of the expression DAG.

    Attributes
    ----------
    op : str
        Primitive name (a key of the registry), ``"symbol"``, ``"const"`` or ``"array"``.
    args : tuple of Expr
        Children, in canonical order for commutative operations.
    param : object
        The name of a symbol, the float value of a constant, the array of an array
        constant, or an operation's static parameter (axes, a shape, an index);
        ``None`` otherwise.
    serial : int
        Creation number; orders commutative operands deterministically across runs.
    shape : tuple of int
        The static shape of the node's value; ``()`` for a scalar.
    names : tuple or None
        Optional dimension names (a str or None per dimension), given to tensor symbols
        and propagated by operations; None when no dimension is named.
    """

    __slots__ = ("op", "args", "param", "serial", "shape", "names", "__weakref__")

    op: str
    args: tuple[Expr, ...]
    param: Any
    serial: int
    shape: tuple[int, ...]
    names: tuple[str | None, ...] | None

    def __init__(self, *_: Any) -> None:
        raise TypeError("Expr nodes are made by hybridad's constructors, not instantiated")

    # -- structure ---------------------------------------------------------------------
    @property
    def is_symbol(self) -> bool:
        return self.op == SYMBOL

    @property
    def is_constant(self) -> bool:
        return self.op == CONSTANT

    @property
    def is_leaf(self) -> bool:
        return not self.args

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def evaluate(self, env: dict | None = None, **values: Any) -> Any:
        """Numeric value for the symbol values in ``env`` (numpy arrays broadcast).

        >>> import hybridad as hd
        >>> x1, x2 = hd.symbols("x1 x2")
        >>> f = hd.log(x1) + x1 * x2 - hd.sin(x2)
        >>> round(float(f.evaluate({x1: 2.0, x2: 5.0})), 3)
        11.652
        """
        from .evaluate import evaluate

        return evaluate([self], env, **values)[0]

    # -- Python protocol ----------------------------------------------------------------
    def __bool__(self) -> bool:
        raise TracingError(
            "cannot use a symbolic value as a bool (as in 'if x > 0:'); "
            "use hd.where(x > 0, a, b) to choose between two values"
        )

    def __float__(self) -> float:
        if self.op == CONSTANT:
            return float(self.param)
        raise TypeError(
            f"cannot convert the symbolic expression {self} to float; "
            "evaluate it with .evaluate({symbol: value})"
        )

    def __index__(self) -> int:
        raise TypeError("a symbolic expression cannot be used as an index")

    def __str__(self) -> str:
        from .printing import to_text

        return to_text(self)

    def __repr__(self) -> str:
        return str(self)

    def __reduce__(self):
        # Pickled as a flat table in topological order (no recursion, no parsing);
        # unpickling rebuilds through the constructors, so interning is preserved.
        from .serialize import to_table, from_table

        return (from_table, (to_table([self]), True))

    def __copy__(self) -> Expr:
        return self

    def __deepcopy__(self, memo: dict) -> Expr:
        return self


# Symbol, Constant and Operation are siblings, never subclasses of one another: Python
# gives a *subclass* on the right of a comparison priority (``(-a) < b`` would call
# ``b.__gt__``), which would build the mirrored node for what the user wrote.
class Operation(Expr):
    """An operation node: ``op`` is a registry name, ``args`` its operands."""

    __slots__ = ()


class Symbol(Expr):
    """A named scalar variable. Interned by name."""

    __slots__ = ()

    @property
    def name(self) -> str:
        return self.param


class Constant(Expr):
    """A float64 constant. Interned by bit pattern (so ``-0.0`` and ``0.0`` differ)."""

    __slots__ = ()

    @property
    def value(self) -> float:
        return self.param


class ArrayConstant(Expr):
    """A constant array (read-only float64). Interned by shape and content."""

    __slots__ = ()

    @property
    def value(self) -> np.ndarray:
        return self.param


def _new(cls: type, op: str, args: tuple, param: Any, key: tuple,
         shape: tuple[int, ...] = (), names: tuple | None = None) -> Expr:
    node = object.__new__(cls)
    object.__setattr__(node, "op", op)
    object.__setattr__(node, "args", args)
    object.__setattr__(node, "param", param)
    object.__setattr__(node, "serial", next(_serials))
    object.__setattr__(node, "shape", shape)
    object.__setattr__(node, "names", names)
    _table[key] = node
    return node


def _frozen_setattr(self: Expr, name: str, value: Any) -> None:
    raise AttributeError("expression nodes are immutable")


Expr.__setattr__ = _frozen_setattr  # type: ignore[method-assign]


RESERVED_NAMES = frozenset({"inf", "nan"})


def symbol(name: str, shape: tuple[int, ...] | None = None,
           names: tuple[str | None, ...] | None = None) -> Symbol:
    """The interned symbol called ``name`` (an ASCII identifier; not ``inf`` or ``nan``,
    which the parser reads as constants). ``shape=None`` finds the symbol of any shape
    (a new one is a scalar); a shape (or dimension names) that differs from the existing
    symbol's is an error.
    """
    if not (isinstance(name, str) and name.isidentifier() and name.isascii()):
        raise ValueError(f"a symbol name must be an ASCII identifier, got {name!r}")
    if name in RESERVED_NAMES:
        raise ValueError(f"{name!r} cannot be a symbol name: it is the constant {name}")
    key = (SYMBOL, (), name)
    node = _table.get(key)
    if node is None:
        return _new(Symbol, SYMBOL, (), name, key, () if shape is None else shape, names)
    if shape is not None and node.shape != shape:
        raise HybridadError(f"symbol {name!r} already exists with shape {node.shape}; "
                            f"cannot make it again with shape {shape}")
    if names is not None and node.names != names:
        raise HybridadError(f"symbol {name!r} already exists with dimension names "
                            f"{node.names}; cannot make it again with names {names}")
    return node


def is_live_symbol(name: str) -> bool:
    """Whether a symbol called ``name`` exists now (some live expression may use it)."""
    return (SYMBOL, (), name) in _table


def constant(value: float) -> Constant:
    """The interned constant with this float64 value (all NaNs share one node)."""
    value = float(value)
    bits = "nan" if math.isnan(value) else value.hex()
    key = (CONSTANT, (), bits)
    node = _table.get(key)
    return node if node is not None else _new(Constant, CONSTANT, (), value, key)


def array_constant(values: Any) -> ArrayConstant:
    """The interned constant array with these float64 values (shape and content; the
    key holds a digest, and a hit is confirmed by comparing the arrays)."""
    array = np.array(values, dtype=np.float64)      # a private copy
    array.flags.writeable = False
    digest = hashlib.blake2b(array.tobytes(), digest_size=16).digest()
    key = (ARRAY, (), (array.shape, digest))
    node = _table.get(key)
    if node is not None and np.array_equal(node.param, array, equal_nan=True):
        return node
    return _new(ArrayConstant, ARRAY, (), array, key, array.shape)


def intern_op(op: str, args: tuple[Expr, ...], param: Any = None,
              shape: tuple[int, ...] = (), names: tuple | None = None) -> Expr:
    """The interned node ``op(*args)`` of ``shape``; the caller has already canonicalised
    ``args`` and computed the shape and names (functions of op, args and param)."""
    key = (op, tuple(map(id, args)), param)
    node = _table.get(key)
    if node is not None and node.args == args:
        return node
    return _new(Operation, op, args, param, key, shape, names)


def live_node_count() -> int:
    """Number of nodes currently alive in the intern table (for tests and diagnostics)."""
    return len(_table)


def is_number(value: Any) -> bool:
    """True for Python and numpy real scalars (bool included), not for Expr."""
    return isinstance(value, (int, float, np.integer, np.floating, np.bool_)) and not (
        isinstance(value, Expr)
    )
