"""Symbolic batching: an expression with a leading batch axis on some of its leaves.

``batch_expressions(roots, {V: E}, size)`` rebuilds ``roots`` as if every row ``E[i]``
had been put in place of ``V`` and the results stacked, but with one tensor operation
per node instead of ``size`` copies (JAX's vmap, on the DAG). Elementwise nodes
broadcast over the new axis; a structural node goes through its registry entry's
``batch`` rule, the same rule the tensor tape runs on numpy values (the rules are
written with numpy functions and operators, which build nodes on expressions). A node
without a rule is rebuilt row by row and stacked.

This is how a tensor Jacobian keeps its closed form: the Jacobian of ``y = A @ x`` is
the JVP ``A @ v`` batched over the rows of the identity, ``I @ A.T`` read back as
``A``, never ``n`` separate products.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from .build import apply, broadcast_to
from .expr import Expr
from .registry import PRIMITIVES
from .traverse import topo_order


def batch_expressions(roots: Sequence[Expr], batched: Mapping[Expr, Expr], size: int
                      ) -> list[Expr]:
    """``roots`` with each key of ``batched`` replaced by its value, which carries one
    leading batch axis of length ``size``; every result has shape ``(size,) +
    root.shape``. One pass over the topological order (no recursion)."""
    for leaf, value in batched.items():
        if value.shape != (size,) + leaf.shape:
            raise ValueError(f"batch_expressions: the batched value of {leaf} must have "
                             f"shape {(size,) + leaf.shape}, got {value.shape}")
    new: dict[Expr, Expr] = dict(batched)
    for node in topo_order(roots):
        if node in new or not node.args or not any(a in new for a in node.args):
            continue
        args = [new.get(a, a) for a in node.args]
        flags = [a in new for a in node.args]
        new[node] = _batched_node(node, args, flags, size)
    return [new[r] if r in new else broadcast_to(r, (size,) + r.shape) for r in roots]


def _batched_node(node: Expr, args: list[Expr], flags: list[bool], size: int) -> Expr:
    prim = PRIMITIVES[node.op]
    if not prim.structural:
        # a batched operand of lower rank than the node gets 1s after the batch axis, so
        # the unbatched operands broadcast against it from the right
        aligned = [a.reshape((size,) + (1,) * (node.ndim - old.ndim) + old.shape)
                   if flag and old.ndim < node.ndim else a
                   for a, old, flag in zip(args, node.args, flags)]
        result = apply(node.op, *aligned, param=node.param)
    elif prim.batch is not None:
        result = prim.batch(node, args, flags)
    else:
        from .tensor_ops import stack

        result = stack([apply(node.op, *[a[i] if flag else a for a, flag in zip(args, flags)],
                              param=node.param) for i in range(size)])
    target = (size,) + node.shape
    return result if result.shape == target else broadcast_to(result, target)
