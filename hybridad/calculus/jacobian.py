"""Gradients, Jacobians and Hessians as object arrays of expression DAGs."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.build import as_expr, as_operand, fresh_symarray
from ..core.expr import Expr, Symbol
from ..errors import ShapeError
from .diff import _check_variable, adjoints, directional, forward_columns, weighted_adjoints


def _variables(wrt: Any, caller: str) -> list[Symbol]:
    flat = np.asarray(wrt, dtype=object).ravel()
    return [_check_variable(v, caller) for v in flat]


def _outputs(exprs: Any) -> list[Expr]:
    return [as_expr(e) for e in np.asarray(exprs, dtype=object).ravel()]


def gradient(f: Expr, wrt: Any) -> Any:
    """∇f by reverse accumulation: one pass, a DAG of size O(size of f), not n copies.

    ``wrt`` a list of scalar symbols (or a symarray) gives an object array of their
    derivatives; a tensor symbol gives one expression of its shape, and a list with
    tensor symbols a list of them.

    >>> import hybridad as hd
    >>> x1, x2 = hd.symbols("x1 x2")
    >>> g = hd.gradient(hd.log(x1) + x1 * x2 - hd.sin(x2), [x1, x2])
    >>> [round(float(gi.evaluate({x1: 2.0, x2: 5.0})), 3) for gi in g]
    [5.5, 1.716]
    """
    f = as_expr(f)
    if f.shape:
        raise ShapeError(f"gradient() needs a scalar expression, got one of shape "
                         f"{f.shape}; use hd.vjp(f, x, G) for a cotangent G")
    if isinstance(wrt, Expr) and wrt.shape:
        return adjoints(f, [_check_variable(wrt, "gradient()")])[0]
    if _has_tensor(wrt):
        return adjoints(f, [_check_variable(w, "gradient()") for w in wrt])
    variables = _variables(wrt, "gradient()")
    out = np.empty(len(variables), dtype=object)
    out[:] = adjoints(f, variables)
    return out


def _has_tensor(wrt: Any) -> bool:
    return isinstance(wrt, (list, tuple)) and any(
        isinstance(w, Expr) and w.shape for w in wrt)


def vjp(y: Expr, x: Any, g: Any) -> Any:
    """The vector-Jacobian product ``g · ∂y/∂x`` as an expression of x's shape (a list
    for a list of symbols), by reverse accumulation seeded with the cotangent ``g`` of
    y's shape. x may be an intermediate node of y (a hidden activation): its adjoint. For ``y = X @ W`` it reads ``G @ W.T`` (x = X) and ``X.T @ G`` (x = W).

    >>> import hybridad as hd
    >>> X, W, G = hd.tensor("X", (4, 3)), hd.tensor("W", (3, 2)), hd.tensor("G", (4, 2))
    >>> print(hd.vjp(X @ W, X, G), "|", hd.vjp(X @ W, W, G))
    G @ W.T | X.T @ G
    """
    y, seed = as_operand(y), as_operand(g)
    if seed.shape not in (y.shape, ()):
        raise ShapeError(f"vjp(): the cotangent must have the output's shape {y.shape}, "
                         f"got {seed.shape}")
    many = isinstance(x, (list, tuple))
    variables = [_check_node(v, "vjp()") for v in (x if many else [x])]
    result = weighted_adjoints([y], [seed], variables)
    return result if many else result[0]


def _check_node(x: Any, caller: str) -> Expr:
    if not isinstance(x, Expr):
        raise TypeError(f"{caller}: can only differentiate with respect to an expression, "
                        f"got {type(x).__name__}")
    return x


def jvp(y: Any, tangents: dict) -> Any:
    """The Jacobian-vector product ``∂y/∂x · v`` summed over the symbols x of
    ``tangents`` (a dict x -> v, v of x's shape), by forward accumulation; one
    expression of y's shape (a list for a list of outputs)."""
    many = isinstance(y, (list, tuple))
    outputs = [as_operand(e) for e in (y if many else [y])]
    seeds = {}
    for x, v in tangents.items():
        variable, seed = _check_variable(x, "jvp()"), as_operand(v)
        if seed.shape not in (variable.shape, ()):
            raise ShapeError(f"jvp(): the tangent of {variable.param} must have its shape "
                             f"{variable.shape}, got {seed.shape}")
        seeds[variable] = seed
    result = directional(outputs, seeds)
    return result if many else result[0]


def jacobian(exprs: Any, wrt: Any, mode: str = "auto") -> Any:
    """Jacobian, shape (m, n): rows by reverse accumulation (``mode="reverse"``, the
    ``"auto"`` choice when m <= n) or columns by forward accumulation. For a shaped
    expression and a tensor symbol, one expression of shape ``y.shape + x.shape`` (as
    JAX), built at tensor level (a batched JVP or VJP, so closed forms stay closed)."""
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"jacobian: mode must be 'auto', 'forward' or 'reverse', got "
                         f"{mode!r}")
    if isinstance(wrt, Expr) and wrt.shape or isinstance(exprs, Expr) and exprs.shape:
        return _tensor_jacobian(as_operand(exprs), _check_variable(wrt, "jacobian()"), mode)
    outputs, variables = _outputs(exprs), _variables(wrt, "jacobian()")
    out = np.empty((len(outputs), len(variables)), dtype=object)
    if mode == "reverse" or mode == "auto" and len(outputs) <= len(variables):
        for i, f in enumerate(outputs):
            out[i, :] = adjoints(f, variables)
    else:
        for j, column in enumerate(forward_columns(outputs, variables)):
            out[:, j] = column
    return out


def hessian(f: Expr, wrt: Any) -> Any:
    """Hessian, shape (n, n), by forward-over-reverse; exactly symmetric (the lower
    triangle is mirrored, so H[i, j] is H[j, i]). For a tensor symbol x, one expression
    of shape ``x.shape + x.shape``: the Jacobian of the tensor-level gradient."""
    if isinstance(wrt, Expr) and wrt.shape:
        x = _check_variable(wrt, "hessian()")
        return _tensor_jacobian(gradient(f, x), x, "auto")
    variables = _variables(wrt, "hessian()")
    grad = adjoints(as_expr(f), variables)
    n = len(variables)
    out = np.empty((n, n), dtype=object)
    for j, column in enumerate(forward_columns(grad, variables)):
        out[j:, j] = column[j:]
        out[j, j + 1:] = out[j + 1:, j]
    return out


def _tensor_jacobian(y: Expr, x: Symbol, mode: str) -> Expr:
    """d y / d x of shape y.shape + x.shape at tensor level: the VJP batched over the
    rows of an identity seed (reverse, the "auto" choice when y has no more elements
    than x) or the JVP batched over its columns (forward). Operations keep their
    closed forms: the Hessian of ``x @ A @ x`` comes out as ``A + A.T`` whatever n."""
    from ..core.batching import batch_expressions
    from ..core.build import constant_node, fresh_symbol
    from ..core.tensor_ops import reshape, transpose

    m, n = y.size, x.size
    if m == 0 or n == 0:
        return constant_node(np.zeros(y.shape + x.shape))
    if not y.shape:
        return gradient(y, x) if x.shape else adjoints(y, [x])[0]
    if mode == "reverse" or mode == "auto" and m <= n:
        cotangent = fresh_symbol("jac_g", y.shape)
        seed = constant_node(np.eye(m).reshape((m,) + y.shape))
        rows = batch_expressions([vjp(y, x, cotangent)], {cotangent: seed}, m)[0]
        return reshape(rows, y.shape + x.shape)
    tangent = fresh_symbol("jac_v", x.shape)
    seed = constant_node(np.eye(n).reshape((n,) + x.shape))
    columns = batch_expressions([jvp(y, {x: tangent})], {tangent: seed}, n)[0]
    moved = transpose(columns, tuple(range(1, y.ndim + 1)) + (0,))
    return reshape(moved, y.shape + x.shape)


def hvp(f: Expr, x: Any, v: Any) -> Any:
    """The Hessian-vector product ∇²f · v as an expression of x's shape, by forward
    accumulation over the reverse-mode gradient (never the Hessian itself)."""
    grad = gradient(f, x) if isinstance(x, Expr) and x.shape else None
    if grad is None:
        variable = _check_variable(x, "hvp()")
        grad = adjoints(as_expr(f), [variable])[0]
    return jvp(grad, {x: v})
