"""The primitive registry: the one place that knows each operation.

A :class:`Primitive` holds everything about an operation — numpy evaluation, partial
derivatives written as expression builders, construction-time simplification, SymPy
export, printing, test domain and LLVM lowering. Symbolic diff, tapes and code
generation all read the same entry; nothing else switches on operation names.
The entries themselves live in :mod:`hybridad.core.primitives`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


class Flags(enum.Flag):
    """Properties that drive canonical ordering, sparsity and the tests."""

    NONE = 0
    COMMUTATIVE = enum.auto()  # operands are put in canonical order
    SMOOTH = enum.auto()  # infinitely differentiable on its domain
    LINEAR = enum.auto()  # partials are constants
    ZERO_AT_ZERO = enum.auto()  # f(0, ..., 0) == 0
    NONDIFF = enum.auto()  # piecewise constant: every partial is structurally zero
    COMPARISON = enum.auto()  # returns 1.0 / 0.0
    OPAQUE = enum.auto()  # kept whole at element level (scalar operands only)


# A partial rule receives the node's arguments followed by the node itself (its output,
# which rules such as exp -> out or tanh -> 1 - out*out reuse) and returns an Expr.
PartialRule = Optional[Callable[..., Any]]


@dataclass(frozen=True)
class Infix:
    """How an operator prints: its symbol, binding strength and associativity."""

    symbol: str
    precedence: int
    right_assoc: bool = False


@dataclass(eq=False)
class Primitive:
    """Everything hybridad knows about one operation.

    Attributes
    ----------
    name : str
        Node op name; also the function name used by the printer and the parser.
    arity : int
        Number of arguments; ``VARIADIC`` (-1) for a structural primitive taking any
        number (concatenate, einsum), whose ``linear`` then holds one pair for all.
    numpy : callable
        Reference evaluation on floats or numpy arrays (IEEE semantics, no exceptions).
    partials : tuple
        One rule per argument, each ``rule(*args, out) -> Expr`` or ``None`` for a
        structural zero (comparisons, sign, stop_gradient).
    simplify : callable or None
        ``simplify(*args) -> Expr | None``: a construction-time rewrite, applied after
        canonical ordering and constant folding; its docstring lists its rules.
    sympy : callable
        ``sympy(ns, *args)`` builds the SymPy equivalent; ``ns`` is the bridge's namespace
        (sympy plus hybridad's own SymPy functions), so this module never imports sympy.
    sympy_names : tuple of str
        SymPy function class names that import back as this primitive.
    flags : Flags
    domain : tuple of (lo, hi)
        Per argument, an interval where the op is defined and smooth (for the tests).
    infix : Infix or None
        Operator printing; ``None`` prints as a call ``name(a, b)``.
    llvm : callable
        ``llvm(e, *args)``: the LLVM lowering, written against the backend's emitter
        ``e`` (hybridad/backend/llvm/emitter.py), so this module never imports llvmlite.
    shape : callable or None
        ``None`` for an elementwise primitive (numpy broadcasting of its arguments; its
        partials apply elementwise and reverse mode sums over broadcast axes). Otherwise
        the shape rule of a structural primitive, ``shape(arg_shapes, param) -> shape``,
        raising ``ValueError`` that names the shapes; its ``numpy`` then takes the
        node's static parameter last, ``numpy(*values, param)``.
    linear : tuple
        For a structural primitive, one ``(jvp, vjp)`` pair per argument: ``jvp(t,
        node, i)`` is the node's tangent from argument i's tangent ``t`` and ``vjp(g,
        node, i)`` argument i's cotangent from the node's cotangent ``g`` (the transpose
        of the same linear map), as in JAX. Both are linear in ``t`` / ``g``; their
        coefficients may depend on the node (a bilinear matmul is linear in each argument
        with the others fixed; a max reduction routes through the maxima).
    public : str or None
        The name of the public function (``hd.sin``, ``hd.subtract``), generated from
        this entry; None for operations written only with an operator.
    ufuncs : tuple
        numpy ufuncs that build this operation on expressions (``np.sin(x)``,
        ``np.add(W, 1)``); numpy's object loops also call a method of the ufunc's name.
    doc : str
        The public function's docstring.
    batch : callable or None
        ``batch(node, values, batched) -> value`` for a structural primitive: the
        operation on values of which those flagged in ``batched`` carry one extra
        leading batch axis (the others are shared), giving the result with the batch
        axis; None lets an executor run the rows one by one.
    names : callable or None
        ``names(node_args, param, shape) -> names or None`` for a structural primitive:
        the dimension names of its result (a reduction drops the reduced names, matmul
        keeps the rows of the first and the columns of the second); None drops them.
        Elementwise primitives align names from the right, as they broadcast.
    format : callable or None
        ``format(node, texts) -> (text, precedence)`` for a structural primitive
        (``X @ W``, ``X.T``, ``sum(x, axis=0)``); ``texts`` holds each argument's.
    """

    name: str
    arity: int
    numpy: Callable[..., Any]
    partials: tuple[PartialRule, ...]
    sympy: Callable[..., Any]
    simplify: Optional[Callable[..., Any]] = None
    sympy_names: tuple[str, ...] = ()
    flags: Flags = Flags.NONE
    domain: tuple[tuple[float, float], ...] = ()
    infix: Optional[Infix] = None
    llvm: Any = None
    aliases: tuple[str, ...] = field(default=())
    shape: Optional[Callable[..., Any]] = None
    linear: tuple[Any, ...] = ()
    format: Optional[Callable[..., Any]] = None
    names: Optional[Callable[..., Any]] = None
    user: bool = False          # registered by hd.primitive, not shipped with hybridad
    batch: Optional[Callable[..., Any]] = None
    public: Optional[str] = None
    ufuncs: tuple[Any, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        if self.shape is not None and len(self.linear) != max(self.arity, 1):
            raise ValueError(f"{self.name}: a structural primitive needs one (jvp, vjp) "
                             f"pair per argument")
        if len(self.partials) != max(self.arity, 0):
            raise ValueError(f"{self.name}: {self.arity} arguments but "
                             f"{len(self.partials)} partial rules")
        if self.domain and len(self.domain) != self.arity:
            raise ValueError(f"{self.name}: domain needs one interval per argument")

        # plain attributes: read on every node construction, where Flag.__and__ is slow
        self.commutative = bool(self.flags & Flags.COMMUTATIVE)
        self.structural = self.shape is not None
        # kept whole at element level (its numpy rule does not expand object arrays)
        self.opaque = bool(self.flags & Flags.OPAQUE)

    def __repr__(self) -> str:
        return f"Primitive({self.name!r}, arity={self.arity})"


VARIADIC = -1

PRIMITIVES: dict[str, Primitive] = {}
ALIASES: dict[str, str] = {}


def register(prim: Primitive) -> Primitive:
    """Add ``prim`` to the registry (names and aliases must be new)."""
    for name in (prim.name, *prim.aliases):
        if name in PRIMITIVES or name in ALIASES:
            raise ValueError(f"primitive name {name!r} is already registered")
    PRIMITIVES[prim.name] = prim
    for alias in prim.aliases:
        ALIASES[alias] = prim.name
    return prim


def lookup(name: str) -> Primitive:
    """The primitive called ``name`` (aliases accepted); ``KeyError`` if unknown."""
    return PRIMITIVES[ALIASES.get(name, name)]


def elementwise_names() -> list[str]:
    """Names of hybridad's own elementwise primitives (scalar partial rules), sorted."""
    return sorted(name for name, prim in PRIMITIVES.items()
                  if not prim.structural and not prim.user)
