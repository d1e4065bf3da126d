"""``hd.primitive``: a user's own operation, registered like the built-in ones.

One call makes one registry entry; evaluation, every derivative mode, tapes, printing,
the parser (a call ``name(a, b)``) and, with ``llvm=``, kernels read it from there, as
they read the built-in entries. Nothing else needs to know the new operation.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..errors import HybridadError
from .build import apply, elementwise
from .expr import Expr
from .registry import Flags, Primitive, register


def _no_sympy(name: str) -> Callable[..., Any]:
    def sympy(ns: Any, *args: Any) -> Any:
        raise HybridadError(f"the user primitive {name!r} has no SymPy form (pass sympy=)")

    return sympy


def primitive(name: str, numpy: Callable[..., Any], partials: Sequence[Any] | None = None,
              shape: Callable[..., Any] | None = None, jvp: Sequence[Any] | None = None,
              transpose: Sequence[Any] | None = None, llvm: Callable[..., Any] | None = None,
              sympy: Callable[..., Any] | None = None, doc: str = "") -> Callable[..., Expr]:
    """Register operation ``name`` and return its builder (``f(x)`` makes nodes).

    Elementwise (``shape=None``, numpy broadcasting): ``partials`` has one rule per
    argument, ``rule(*args, out) -> Expr`` (None for no dependence), as the built-in
    entries. Structural: ``shape(arg_shapes) -> shape`` and, per argument, ``jvp[i](t,
    node)`` and ``transpose[i](g, node)`` (the linear map and its transpose, as JAX).
    ``numpy`` evaluates on numpy arrays (and, for element-level code, on object arrays
    of expressions). ``llvm(e, *args)`` lowers a scalar elementwise operation for
    kernels; without it kernels raise a clear error (tapes and numpy still run it).

    >>> import numpy as np, hybridad as hd
    >>> softplus = hd.primitive("softplus_doc", lambda x: np.logaddexp(0.0, x),
    ...                         partials=(lambda x, out: hd.sigmoid(x),))
    >>> x = hd.symbols("x")
    >>> print(hd.diff(softplus(x), x), hd.parse("softplus_doc(x)") is softplus(x))
    sigmoid(x) True
    """
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(f"primitive(): a name is an identifier, got {name!r}")
    if shape is None:
        if partials is None:
            raise ValueError(f"primitive({name!r}): an elementwise operation needs "
                             f"partials=, one rule per argument")
        entry = Primitive(name, len(partials), numpy, tuple(partials),
                          sympy or _no_sympy(name), llvm=llvm, user=True)
        register(entry)
        builder = _elementwise_builder(name)
    else:
        if jvp is None or transpose is None or len(jvp) != len(transpose):
            raise ValueError(f"primitive({name!r}): a structural operation needs jvp= and "
                             f"transpose=, one rule per argument each")
        linear = tuple((_with_index(j), _with_index(t)) for j, t in zip(jvp, transpose))
        entry = Primitive(name, len(jvp), lambda *values: numpy(*values[:-1]),
                          (None,) * len(jvp), sympy or _no_sympy(name), flags=Flags.NONE,
                          llvm=llvm, shape=lambda shapes, param: tuple(shape(shapes)),
                          linear=linear, user=True)
        register(entry)
        builder = _structural_builder(name)
    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = doc or f"The user primitive {name!r}."
    return builder


def _with_index(rule: Callable[..., Any]) -> Callable[..., Any]:
    return lambda value, node, i: rule(value, node)


def _elementwise_builder(name: str) -> Callable[..., Any]:
    def builder(*args: Any) -> Any:
        return elementwise(name, *args)

    return builder


def _structural_builder(name: str) -> Callable[..., Expr]:
    def builder(*args: Any) -> Expr:
        return apply(name, *args)

    return builder
