"""Hand-written derivative rules: ``hd.custom_vjp`` and ``hd.custom_jvp`` (JAX's API).

A decorated function called on expressions makes one ``custom`` node whose arguments are
the function's inputs followed by its primal value (the function traced on the inputs);
the node's value is that primal value, and its derivative rules come from the user's
functions, re-run on the node's own arguments whenever a rule is needed (so substitution,
pickling-free rebuilding and nesting keep working). The primal argument itself carries
no derivative. A VJP rule also serves forward mode (the JVP is its transpose: reverse
accumulation of the linear map g -> bwd(res, g)), and a JVP rule serves reverse mode the
same way: linearize, then transpose.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from ..core.build import apply, as_operand, fresh_symbol
from ..core.expr import Expr
from ..core.registry import VARIADIC, Flags, Primitive, register
from ..errors import HybridadError
from .diff import weighted_adjoints, zeros


class CustomRule:
    """The rules of one decorated function (a node's param: hashed by identity)."""

    def __init__(self, name: str, fwd: Callable | None = None, bwd: Callable | None = None,
                 jvp: Callable | None = None):
        self.name, self.fwd, self.bwd, self.jvp = name, fwd, bwd, jvp

    def cotangents(self, args: tuple[Expr, ...], g: Expr) -> tuple:
        """The user's VJP: bwd(residuals, g), one cotangent (or None) per input."""
        _, residuals = self.fwd(*args)
        result = self.bwd(residuals, g)
        result = result if isinstance(result, tuple) else (result,)
        if len(result) != len(args):
            raise HybridadError(f"{self.name}: the bwd rule returned {len(result)} "
                                f"cotangents for {len(args)} inputs")
        return result

    def tangent(self, args: tuple[Expr, ...], tangents: tuple[Expr, ...]) -> Expr:
        """The user's JVP: jvp(primals, tangents)[1]."""
        return as_operand(self.jvp(args, tangents)[1])


def _custom_jvp(t: Expr, node: Expr, i: int) -> Expr | None:
    rule, args = node.param, node.args[:-1]
    if i == len(args):
        return None                                   # the primal value: no derivative
    if rule.jvp is not None:
        tangents = tuple(t if k == i else zeros(a.shape) for k, a in enumerate(args))
        return rule.tangent(args, tangents)
    g = fresh_symbol("custom_g", node.shape)     # transpose of g -> bwd(g)_i
    cotangent = rule.cotangents(args, g)[i]
    if cotangent is None:
        return None
    return weighted_adjoints([as_operand(cotangent)], [t], [g])[0]


def _custom_vjp(g: Expr, node: Expr, i: int) -> Expr | None:
    rule, args = node.param, node.args[:-1]
    if i == len(args):
        return None
    if rule.bwd is not None:
        cotangent = rule.cotangents(args, g)[i]
        return None if cotangent is None else _fit(as_operand(cotangent), args[i].shape)
    t = fresh_symbol("custom_t", args[i].shape)  # transpose of t -> jvp(t)
    tangents = tuple(t if k == i else zeros(a.shape) for k, a in enumerate(args))
    return weighted_adjoints([rule.tangent(args, tangents)], [g], [t])[0]


def _fit(value: Expr, shape: tuple[int, ...]) -> Expr:
    if value.shape != shape:
        from ..core.tensor_ops import broadcast_to

        return broadcast_to(value, shape)
    return value


def _no_sympy(ns: Any, *args: Any) -> Any:
    raise HybridadError("a function with a custom derivative rule has no SymPy form")


CUSTOM = register(Primitive(
    "custom", VARIADIC, lambda *values: values[-2], (), _no_sympy,   # (..., out, rule)
    None, (), Flags.OPAQUE, (), None, lambda e, *args: args[-1], (),
    lambda shapes, rule: shapes[-1], ((_custom_jvp, _custom_vjp),),
    lambda node, texts: (f"{node.param.name}({', '.join(t[0] for t in texts[:-1])})", 6),
    lambda args, rule, shape: args[-1].names))


def _holds_expr(values: tuple) -> bool:
    return any(isinstance(v, Expr) or (hasattr(v, "dtype") and v.dtype == object)
               for v in values)


class _Custom:
    """Shared call path of custom_vjp and custom_jvp."""

    def __init__(self, fun: Callable[..., Any]):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.rule = CustomRule(getattr(fun, "__name__", "custom"))

    def __call__(self, *args: Any) -> Any:
        if not _holds_expr(args):
            return self.fun(*args)                     # numbers: the function itself
        inputs = [as_operand(a) for a in args]
        out = self.fun(*inputs)
        if isinstance(out, tuple):
            raise HybridadError(f"{self.rule.name}: a function with a custom rule returns "
                                f"one value (an expression or array), not a tuple")
        return apply("custom", *inputs, as_operand(out), param=self.rule)


class custom_vjp(_Custom):  # noqa: N801  (JAX's name)
    """A function with a hand-written reverse-mode rule, as ``jax.custom_vjp``:

    >>> import hybridad as hd
    >>> @hd.custom_vjp
    ... def f(x):
    ...     return hd.sin(x)
    >>> def f_fwd(x):
    ...     return hd.sin(x), hd.cos(x)        # output, residuals
    >>> def f_bwd(cos_x, g):
    ...     return (cos_x * g,)
    >>> f.defvjp(f_fwd, f_bwd)
    >>> x = hd.symbols("x")
    >>> print(f(x), "|", hd.gradient(f(x) * 2.0, [x])[0])
    f(x) | 2*cos(x)
    """

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any]) -> None:
        """``fwd(*inputs) -> (output, residuals)``; ``bwd(residuals, g) -> tuple`` of one
        cotangent per input (None for none)."""
        self.rule.fwd, self.rule.bwd = fwd, bwd


class custom_jvp(_Custom):  # noqa: N801  (JAX's name)
    """A function with a hand-written forward-mode rule, as ``jax.custom_jvp``;
    ``f.defjvp(jvp)`` with ``jvp(primals, tangents) -> (output, output tangent)``,
    linear in the tangents (reverse mode transposes it)."""

    def defjvp(self, jvp: Callable[..., Any]) -> None:
        self.rule.jvp = jvp


__all__ = ["CUSTOM", "CustomRule", "custom_jvp", "custom_vjp"]
